"""``torch.special``'s orthogonal polynomials against PyTorch: a grid of x (inside, on and
outside [-1, 1], ±inf) and n (negative, fractional, NaN, small and past the closed-form
thresholds), float64 to 1e-9 and float32 to 1e-4 for n <= 37; dtypes, broadcasting, errors."""
import numpy as np
import pytest

import tinymm as tm
import tinymm.ops.orthogonal_polynomials as OP
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)
XS = np.array([-2.0, -1.5, -1.0, -0.999, -0.7, -0.3, 0.0, 0.2, 0.5, 0.9, 1.0, 1.3, 2.5, -np.inf, np.inf])
NS = np.array([-3, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 20, 37, 2.7, -0.5, np.nan, 300, 1000])


@pytest.mark.parametrize("name", OP.__all__)
def test_values_match_torch(name):
    X, N = np.meshgrid(XS, NS)
    for dtype, tol, small_n in ((np.float64, 1e-9, False), (np.float32, 1e-4, True)):
        keep = (np.nan_to_num(N, nan=0) <= 37) if small_n else np.ones(N.shape, bool)
        want = getattr(torch.special, name)(torch.tensor(X.astype(dtype)), torch.tensor(N.astype(dtype))).numpy()
        got = getattr(tm.special, name)(tm.tensor(X.astype(dtype)), tm.tensor(N.astype(dtype)))
        assert got.dtype == getattr(tm, np.dtype(dtype).name) and not got.requires_grad
        got = got.numpy()
        close = np.isclose(got, want, rtol=tol, atol=tol, equal_nan=True) | ~(np.isfinite(got) | np.isfinite(want))
        assert close[keep].all(), (dtype, X[keep][~close[keep]], N[keep][~close[keep]])


def test_dtypes_broadcasting_and_errors():
    f = tm.special.chebyshev_polynomial_t
    assert f(tm.tensor([1, 2]), 2).dtype == tm.float32  # integers give the default dtype
    assert f(tm.ones(2), tm.ones(2, dtype=tm.float64)).dtype == tm.float64
    assert f(2.0, tm.tensor([0.0, 1.0, 2.0])).tolist() == [1.0, 2.0, 7.0]
    assert f(tm.ones(3, 1), tm.ones(1, 4)).shape == (3, 4)
    assert not f(tm.ones(2, requires_grad=True), 2).requires_grad  # no derivative, as in PyTorch
    with pytest.raises(RuntimeError, match="size|broadcast"):
        f(tm.ones(2), tm.ones(3))
    with pytest.raises(NotImplementedError, match="ComplexFloat"):
        f(tm.ones(2, dtype=tm.complex64), 2)
    with pytest.raises(NotImplementedError, match="Half"):
        f(tm.ones(2, dtype=tm.float16), 2)
    with pytest.raises(TypeError, match="must be Tensor or Number"):
        f([1.0], 2)
    assert np.isnan(f(tm.tensor([np.nan]), 2.0).item())  # (PyTorch 2.13 returns a finite number here)
