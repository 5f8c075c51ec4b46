"""``linalg.eig``/``eigvals`` of general matrices: values (A V = V diag λ, unit columns, the
eigenvalues PyTorch finds), gradients of phase-invariant losses against PyTorch's, float64
gradcheck, and PyTorch's errors."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch


def _matrices(dtype, shape=(2, 4, 4), seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        A = A + 1j * rng.standard_normal(shape)
    return A.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
def test_decomposition(dtype):
    A = _matrices(dtype)
    L, V = tm.linalg.eig(tm.tensor(A))
    want = {np.float32: tm.complex64, np.float64: tm.complex128}.get(dtype, tm.tensor(A).dtype)
    assert L.dtype == want and V.dtype == want and L.shape == (2, 4) and V.shape == (2, 4, 4)
    tol = 1e-4 if np.dtype(dtype).itemsize <= 8 and dtype != np.float64 else 1e-10
    Ln, Vn = L.numpy(), V.numpy()
    np.testing.assert_allclose(A @ Vn, Vn * Ln[..., None, :], atol=tol * 10)
    np.testing.assert_allclose(np.linalg.norm(Vn, axis=-2), 1.0, atol=tol)
    np.testing.assert_allclose(tm.linalg.eigvals(tm.tensor(A)).numpy(), Ln)
    empty = tm.linalg.eig(tm.zeros(3, 0, 0, dtype=tm.float64))
    assert empty.eigenvalues.shape == (3, 0) and empty.eigenvectors.dtype == tm.complex128


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_values_and_gradients_match_torch(dtype):
    A = _matrices(dtype, seed=1)
    rng = np.random.default_rng(2)
    w, u = rng.standard_normal((2, 4, 4)), rng.standard_normal((2, 4))
    grads = []
    for lib in (tm, torch):
        a = lib.tensor(A, requires_grad=True)
        L, V = lib.linalg.eig(a)
        key = np.lexsort((L.detach().numpy().imag.round(8), L.detach().numpy().real.round(8)), axis=-1)
        grads.append(np.take_along_axis(L.detach().numpy(), key, -1))
        # a loss that does not depend on each eigenvector's phase (else there is no gradient)
        loss = (V.abs() ** 2 * lib.tensor(w)).sum() + (L.real * lib.tensor(u)).sum() + (L.imag ** 2).sum()
        loss.backward()
        grads.append(a.grad.numpy())
        b = lib.tensor(A, requires_grad=True)
        lib.linalg.eigvals(b).abs().sum().backward()
        grads.append(b.grad.numpy())
    for mine, theirs in zip(grads[:3], grads[3:]):
        np.testing.assert_allclose(mine, theirs, atol=1e-9)


def test_gradcheck_real_input():
    A = tm.tensor(_matrices(np.float64, shape=(3, 3), seed=3), requires_grad=True)
    assert tm.autograd.gradcheck(lambda a: tm.linalg.eigvals(a).abs(), A)
    assert tm.autograd.gradcheck(lambda a: tm.linalg.eig(a).eigenvectors.abs(), A)


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
@pytest.mark.parametrize("call", [
    lambda L: L.linalg.eig(L.ones(2, 3)),
    lambda L: L.linalg.eig(L.ones(3)),
    lambda L: L.linalg.eigvals(L.ones(2, 2, dtype=L.int64)),
    lambda L: L.linalg.eig(L.tensor([[0.0, -2.0], [1.0, 0.5]], requires_grad=True))[1].real.sum().backward(),
])
def test_errors_match_torch(call):
    with pytest.raises(Exception) as want:
        call(torch)
    with pytest.raises(want.type):
        call(tm)
