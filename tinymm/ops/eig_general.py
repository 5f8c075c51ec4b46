"""``torch.linalg.eig`` and ``eigvals``: eigenvalues and eigenvectors of general (non-symmetric)
square matrices, which are complex even for real input (complex64 for float32, complex128 for
float64). Values are LAPACK's geev through ``numpy.linalg.eig`` (PyTorch's routine too: each
eigenvector has unit 2-norm); CuPy has no general eigensolver, so "cuda" tensors are solved on
the host and the results moved back (PyTorch's MAGMA path also runs geev on the CPU).

Backward (PyTorch's formula; E_ij = conj(λ_j − λ_i), diagonal set to 1):

    Ā = V^{-H} (D + (V^H V̄ − V^H V Re(diag(V^H V̄))) / E) V^H,   D's diagonal = λ̄ (the quotient's is replaced),

real part for real A. An eigenvector is defined only up to a phase e^{iφ}; a loss that depends on
that phase has no gradient, and backward refuses it as PyTorch does (Im diag(V^H V̄) must be ~0).
Repeated eigenvalues make E singular: the gradient is then inf/NaN, as in PyTorch.
"""
from __future__ import annotations

import collections

import numpy as np

from tinymm import backend
from tinymm.autograd import Function
from tinymm.ops._util import xp_of
from tinymm.ops.decompositions import lapack, matrix_arg, mT
from tinymm.tensor import Tensor

EigResult = collections.namedtuple("EigResult", ["eigenvalues", "eigenvectors"])

_COMPLEX_OF = {np.dtype(np.float32): np.complex64, np.dtype(np.float64): np.complex128,
               np.dtype(np.complex64): np.complex64, np.dtype(np.complex128): np.complex128}


class Eig(Function):
    complex_grad = True

    @staticmethod
    def forward(ctx, a):
        device = backend.device_of(a)
        out = _COMPLEX_OF[a.dtype]
        if a.size == 0:
            L, V = np.zeros(a.shape[:-1], out), np.zeros(a.shape, out)
        else:
            L, V = lapack("linalg.eig", np.linalg.eig, backend.to_device(a, "cpu"))
            L, V = L.astype(out, copy=False), V.astype(out, copy=False)
        L, V = backend.to_device(L, device), backend.to_device(V, device)
        ctx.save_for_backward(L, V)
        ctx.real_input = a.dtype.kind == "f"
        return L, V

    @staticmethod
    def backward(ctx, gL, gV):
        L, V = ctx.saved_arrays
        xp = xp_of(V)
        n = L.shape[-1]
        idx = xp.arange(n)
        Vh = xp.conj(mT(V))
        VhgV = Vh @ gV
        diag = VhgV[..., idx, idx]
        if V.size and not np.allclose(backend.to_device(diag.imag, "cpu"), 0, rtol=1e-2, atol=1e-2):
            raise RuntimeError("linalg_eig_backward: The eigenvectors in the complex case are specified up to "
                               "multiplication by e^{i phi}. The specified loss function depends on this quantity, "
                               "so it is ill-defined.")
        E = xp.conj(L[..., None, :] - L[..., :, None])
        E[..., idx, idx] = 1
        with np.errstate(all="ignore"):
            inner = (VhgV - Vh @ (V * diag.real[..., None, :])) / E
        inner[..., idx, idx] = gL
        gA = xp.linalg.solve(Vh, inner @ Vh) if V.size else inner
        return gA.real.copy() if ctx.real_input else gA


def _square(name: str, A) -> Tensor:
    return matrix_arg(name, A, square=True, kernel="linalg_eig", complex_ok=True)


def eig(A, *, out=None):
    """``torch.linalg.eig``: (eigenvalues, eigenvectors as columns), both complex, of the square
    matrices A (batched over leading dims), so that A V = V diag(λ)."""
    return EigResult(*Eig.apply(_square("linalg.eig", A)))


def eigvals(A, *, out=None):
    """``torch.linalg.eigvals``: the eigenvalues of ``eig`` (complex; differentiable)."""
    return Eig.apply(_square("linalg.eigvals", A))[0]
