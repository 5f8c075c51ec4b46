"""cholesky_solve's gradient as PyTorch's: the factor's gradient fills the whole matrix (the
formula for A = L Lᴴ with L taken whole), batched and broadcast, and twice differentiable."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch


def _factor(rng, batch, n, dtype, upper):
    a = rng.standard_normal(batch + (n, n))
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(batch + (n, n))
    spd = a @ np.conj(np.swapaxes(a, -1, -2)) + n * np.eye(n)
    low = np.linalg.cholesky(spd)
    return (np.conj(np.swapaxes(low, -1, -2)) if upper else low).astype(dtype)


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("b_batch,l_batch", [((), ()), ((2,), (2,)), ((3, 1), (2,)), ((2,), ())])
@pytest.mark.parametrize("dtype", ["float64"])  # complex: tinymm's solve_triangular is real-only
def test_values_and_gradients_match_torch(upper, b_batch, l_batch, dtype):
    if torch is None:
        pytest.skip(TORCH_REASON)
    rng = np.random.default_rng(len(b_batch) * 7 + len(l_batch) + upper)
    L = _factor(rng, l_batch, 4, dtype, upper)
    B = rng.standard_normal(b_batch + (4, 3)).astype(dtype)
    W = rng.standard_normal(np.broadcast_shapes(b_batch, l_batch) + (4, 3))
    out = []
    for lib in (tm, torch):
        l, b = lib.tensor(L, requires_grad=True), lib.tensor(B, requires_grad=True)
        x = lib.cholesky_solve(b, l, upper=upper)
        (x * lib.tensor(W.astype(dtype))).real.sum().backward() if dtype.startswith("complex") else \
            (x * lib.tensor(W)).sum().backward()
        out.append((x.detach().numpy(), l.grad.numpy(), b.grad.numpy()))
    for ours, ref in zip(*out):
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)
    assert np.abs(np.triu(out[0][1], 1) if not upper else np.tril(out[0][1], -1)).max() > 0  # whole matrix


def test_only_the_triangle_is_read_for_values():
    rng = np.random.default_rng(3)
    L = _factor(rng, (), 3, "float64", False)
    junk = L + np.triu(rng.standard_normal((3, 3)), 1)
    b = rng.standard_normal((3, 2))
    np.testing.assert_allclose(tm.cholesky_solve(tm.tensor(b), tm.tensor(junk)).numpy(),
                               tm.cholesky_solve(tm.tensor(b), tm.tensor(L)).numpy(), rtol=1e-12)


@pytest.mark.parametrize("upper", [False, True])
def test_gradcheck_and_gradgradcheck(upper):
    rng = np.random.default_rng(5)
    L = tm.tensor(_factor(rng, (2,), 3, "float64", upper), requires_grad=True)
    B = tm.tensor(rng.standard_normal((2, 3, 2)), requires_grad=True)
    # (through the triangle, as finite differences see only what the values read)
    fn = lambda b, l: tm.cholesky_solve(b, l.triu() if upper else l.tril(), upper=upper)  # noqa: E731
    assert tm.autograd.gradcheck(fn, (B, L))
    assert tm.autograd.gradgradcheck(fn, (B, L))
