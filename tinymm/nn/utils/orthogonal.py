"""``parametrizations.orthogonal``: a weight kept orthogonal (orthonormal columns, or rows when
it is wide) while an optimizer updates an unconstrained tensor.

For a tall n×k weight (a wide one is handled transposed) the unconstrained X maps to Q by
- ``"matrix_exp"``: the skew-symmetric A = L − Lᴴ from L = tril(X) (padded with zero columns
  to n×n), Q = exp(A)[:, :k];
- ``"cayley"``: the same A, Q = (I − A/2)⁻¹ (I + A/2), first k columns;
- ``"householder"``: the reflectors below X's diagonal, Q = H₁⋯H_k (τᵢ = 2 / (1 + ‖vᵢ‖²)),
  each column's sign taken from X's diagonal (its integer part, as PyTorch).
With ``use_trivialization`` (the default) Q is then multiplied on the left by a buffer ``base``:
registering stores the weight, made orthogonal (QR with R's diagonal made positive, its columns
completed at random when the weight is not square), as ``base`` and starts X where the map
gives the identity, so the weight is unchanged at first. Without it, X is the weight's
Householder form (householder only). State-dict keys are PyTorch's:
``parametrizations.weight.original`` and ``parametrizations.weight.0.base``.
"""
from __future__ import annotations

import numpy as np

from tinymm.autograd import no_grad
from tinymm.factories import eye, randn, zeros
from tinymm.linalg import householder_product, matrix_exp, qr, solve
from tinymm.nn.module import Module
from tinymm.nn.utils.parametrize import register_parametrization
from tinymm.ops.shape import cat
from tinymm.tensor import Tensor

MAPS = ("matrix_exp", "cayley", "householder")


def _orthonormalize(A: Tensor) -> Tensor:
    """The Q of A's QR with R's diagonal positive (unique when A has full column rank)."""
    Q, R = qr(A)
    sign = R.diagonal(dim1=-2, dim2=-1).sgn()
    return Q * sign.unsqueeze(-2)


def _is_orthonormal(Q: Tensor) -> bool:
    n, k = Q.shape[-2], Q.shape[-1]
    tol = 10.0 * n * float(np.finfo(Q._data.dtype).eps)
    gram = (Q.mH @ Q)._data
    return bool(np.allclose(gram, np.eye(k, dtype=gram.dtype), rtol=1e-5, atol=tol))


class _Orthogonal(Module):
    def __init__(self, weight: Tensor, orthogonal_map: str, use_trivialization: bool = True):
        super().__init__()
        if weight.is_complex() and orthogonal_map == "householder":
            raise ValueError("The householder parametrization does not support complex tensors.")
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X: Tensor) -> Tensor:
        n, k = X.shape[-2], X.shape[-1]
        wide = n < k
        if wide:
            X, n, k = X.mT, k, n
        if self.orthogonal_map == "householder":
            V = X.tril(diagonal=-1)
            tau = 2.0 / (1.0 + (V * V).sum(dim=-2))
            Q = householder_product(V, tau)
            Q = Q * X.diagonal(dim1=-2, dim2=-1).int().unsqueeze(-2)
        else:
            L = X.tril()
            if n != k:
                L = cat([L, zeros(*X.shape[:-2], n, n - k, dtype=X.dtype, device=X.device)], dim=-1)
            A = L - L.mH
            if self.orthogonal_map == "matrix_exp":
                Q = matrix_exp(A)
            else:
                I = eye(n, dtype=A.dtype, device=A.device)
                Q = solve(I - 0.5 * A, I + 0.5 * A)
            if n != k:
                Q = Q[..., :k]
        if "base" in self._buffers:
            Q = self.base @ Q
        return Q.mT if wide else Q

    def right_inverse(self, Q: Tensor) -> Tensor:
        if tuple(Q.shape) != self.shape:
            raise ValueError(f"Expected a matrix or batch of matrices of shape {self.shape}. "
                             f"Got a tensor of shape {tuple(Q.shape)}.")
        with no_grad():
            given = Q
            n, k = Q.shape[-2], Q.shape[-1]
            wide = n < k
            if wide:
                Q, n, k = Q.mT, k, n
            if "base" not in self._buffers:
                if self.orthogonal_map != "householder":
                    raise NotImplementedError("It is not possible to assign to the matrix exponential "
                                              "or the Cayley parametrizations when use_trivialization=False.")
                X = _householder_form(Q)
                return X.mT if wide else X
            if n == k:
                Q = Q.clone() if _is_orthonormal(Q) else _orthonormalize(Q)
            else:  # complete the columns at random to a square orthogonal base
                extra = randn(*Q.shape[:-2], n, n - k, dtype=Q.dtype, device=Q.device)
                Q = _orthonormalize(cat([Q, extra], dim=-1))
            self.base = Q
            start = zeros(*given.shape, dtype=given.dtype, device=given.device)
            start.diagonal(dim1=-2, dim2=-1).fill_(-1.0)  # the map sends -I to I
            return start


def _householder_form(Q: Tensor) -> Tensor:
    """LAPACK geqrf's packed form of tall Q: R on and above the diagonal (its diagonal's signs
    only, flipped where a reflector is trivial), the reflectors' vectors below it."""
    arr = Q._data
    flat = arr.reshape(-1, *arr.shape[-2:])
    out = np.empty_like(flat)
    for i, m in enumerate(flat):
        h, tau = np.linalg.qr(np.asarray(m), mode="raw")  # h is the transposed geqrf output
        a = h.T.astype(arr.dtype, copy=True)
        d = np.sign(np.diagonal(a)).copy()
        d[tau == 0] *= -1
        np.fill_diagonal(a, d)
        out[i] = a
    return Tensor._wrap(out.reshape(arr.shape))


def orthogonal(module: Module, name: str = "weight", orthogonal_map: str | None = None, *,
               use_trivialization: bool = True) -> Module:
    """Keep ``module.<name>`` orthogonal (PyTorch's ``parametrizations.orthogonal``); the map
    defaults to ``"matrix_exp"`` for square or complex weights, else ``"householder"``."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        square = weight.shape[-2] == weight.shape[-1]
        orthogonal_map = "matrix_exp" if square or weight.is_complex() else "householder"
    if orthogonal_map not in MAPS:
        raise ValueError(f'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". Got: {orthogonal_map}')
    orth = _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization)
    return register_parametrization(module, name, orth, unsafe=True)
