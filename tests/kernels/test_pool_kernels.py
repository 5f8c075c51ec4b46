"""kernels/pool.py: reference vs finite differences and PyTorch; CPU and CUDA vs reference.

The reference is the specification; the fast kernels must give the same values and, for max
pooling, the same indices (tie rule and NaNs included) on hypothesis-drawn shapes.
"""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cuda_helpers import to_cuda, to_host
from helpers import TORCH_REASON, torch
from numeric import numeric_grad
from tinymm.kernels import pool as P

DTYPES = [np.float32, np.float64]


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if np.dtype(dtype) == np.float32 else dict(rtol=1e-12, atol=1e-13)


@st.composite
def max_cases(draw, max_size=17, max_planes=4):
    """(x shape (B, H, W), kernel, stride, padding, dilation, ceil_mode) with an output."""
    B = draw(st.integers(1, max_planes))
    H, W = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    k = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = tuple(draw(st.integers(0, k[a] // 2)) for a in range(2))
    ceil = draw(st.booleans())
    assume(P.pool_output_size(H, k[0], s[0], p[0], d[0], ceil) >= 1)
    assume(P.pool_output_size(W, k[1], s[1], p[1], d[1], ceil) >= 1)
    return (B, H, W), k, s, p, d, ceil


@st.composite
def avg_cases(draw, max_size=17, max_planes=4):
    """(x shape, hwin, wwin): average (any count_include_pad / ceil_mode / override) or adaptive."""
    B = draw(st.integers(1, max_planes))
    H, W = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    if draw(st.booleans()):
        oh, ow = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
        return (B, H, W), P.adaptive_pool_windows(H, oh), P.adaptive_pool_windows(W, ow)
    k = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = tuple(draw(st.integers(0, k[a] // 2)) for a in range(2))
    ceil, cip = draw(st.booleans()), draw(st.booleans())
    assume(P.pool_output_size(H, k[0], s[0], p[0], 1, ceil) >= 1)
    assume(P.pool_output_size(W, k[1], s[1], p[1], 1, ceil) >= 1)
    return (B, H, W), P.avg_pool_windows(H, k[0], s[0], p[0], ceil, cip), P.avg_pool_windows(W, k[1], s[1], p[1], ceil, cip)


def make_x(rng, shape, dtype, kind):
    """``kind``: "normal"; "ties" (few distinct values, so windows tie); "nan" (ties and NaNs)."""
    if kind == "normal":
        return rng.standard_normal(shape).astype(dtype)
    x = rng.integers(-2, 3, shape).astype(dtype)
    if kind == "nan":
        x[rng.random(shape) < 0.1] = np.nan
    return x


# ----------------------------------------------------------------------------- sizes


def test_output_size_follows_torch_ceil_rule():
    # L=5, k=2, s=2: floor -> 2, ceil -> 3 (the last window starts at 4, inside the input)
    assert P.pool_output_size(5, 2, 2, 0) == 2
    assert P.pool_output_size(5, 2, 2, 0, ceil_mode=True) == 3
    # L=4, k=2, s=2, p=1: ceil would give 4 windows, but the 4th would start at 6 - 1 = 5 > L + p - 1
    assert P.pool_output_size(4, 2, 2, 1, ceil_mode=True) == 3
    assert P.pool_output_size(2, 3, 1, 0) == 0  # callers refuse it


def test_adaptive_windows_are_torch_formulas():
    start, end, div = P.adaptive_pool_windows(10, 4)
    assert start.tolist() == [0, 2, 5, 7]
    assert end.tolist() == [3, 5, 8, 10]
    assert div.tolist() == [3, 3, 3, 3]


# ----------------------------------------------------------------------------- reference vs finite differences


def test_max_reference_backward_matches_finite_differences(rng):
    x = rng.permutation(2 * 7 * 6).reshape(2, 7, 6).astype(np.float64)  # distinct: no ties, max is smooth
    args = ((3, 2), (2, 1), (1, 1), (1, 2), True)
    y, idx = P.reference_max_pool_forward(x, *args)
    gy = rng.standard_normal(y.shape)

    def loss():
        return float((P.reference_max_pool_forward(x, *args)[0] * gy).sum())

    dx = P.reference_max_pool_backward(gy, idx, (7, 6))
    np.testing.assert_allclose(dx, numeric_grad(loss, x, h=1e-3), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("windows", [
    lambda H, W: (P.avg_pool_windows(H, 3, 2, 1, True, True), P.avg_pool_windows(W, 2, 1, 1, False, True)),
    lambda H, W: (P.avg_pool_windows(H, 3, 2, 1, True, False), P.avg_pool_windows(W, 3, 3, 1, True, False)),
    lambda H, W: (P.adaptive_pool_windows(H, 3), P.adaptive_pool_windows(W, 4)),
], ids=["count_include_pad", "exclude_pad", "adaptive"])
def test_avg_reference_backward_matches_finite_differences(rng, windows):
    x = rng.standard_normal((2, 7, 6))
    hwin, wwin = windows(7, 6)
    gy = rng.standard_normal((2, len(hwin[0]), len(wwin[0])))

    def loss():
        return float((P.reference_avg_pool_forward(x, hwin, wwin) * gy).sum())

    dx = P.reference_avg_pool_backward(gy, hwin, wwin, (7, 6))
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-7, atol=1e-9)


# ----------------------------------------------------------------------------- reference vs PyTorch


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
@settings(max_examples=25)
@given(case=max_cases(), kind=st.sampled_from(["normal", "ties", "nan"]), seed=st.integers(0, 2**32 - 1))
def test_max_reference_matches_torch(case, kind, seed):
    shape, k, s, p, d, ceil = case
    x = make_x(np.random.default_rng(seed), shape, np.float64, kind)
    y, idx = P.reference_max_pool_forward(x, k, s, p, d, ceil)
    ty, tidx = torch.nn.functional.max_pool2d(torch.tensor(x), k, s, p, d, ceil, return_indices=True)
    np.testing.assert_array_equal(y, ty.detach().numpy())  # NaNs compare equal here
    np.testing.assert_array_equal(idx, tidx.detach().numpy())


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
@settings(max_examples=25)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 17), st.integers(1, 17)), k=st.integers(1, 5),
       s=st.integers(1, 3), p=st.integers(0, 2), ceil=st.booleans(), cip=st.booleans(),
       override=st.sampled_from([None, 3]), seed=st.integers(0, 2**32 - 1))
def test_avg_reference_matches_torch(shape, k, s, p, ceil, cip, override, seed):
    B, H, W = shape
    assume(p <= k // 2)
    assume(min(P.pool_output_size(H, k, s, p, 1, ceil), P.pool_output_size(W, k, s, p, 1, ceil)) >= 1)
    x = np.random.default_rng(seed).standard_normal(shape)
    hwin, wwin = P.avg_pool_windows(H, k, s, p, ceil, cip), P.avg_pool_windows(W, k, s, p, ceil, cip)
    if override is not None:
        hwin, wwin = (hwin[0], hwin[1], hwin[2] * 0 + override), (wwin[0], wwin[1], wwin[2] * 0 + 1)
    y = P.reference_avg_pool_forward(x, hwin, wwin)
    ty = torch.nn.functional.avg_pool2d(torch.tensor(x), k, s, p, ceil, cip, override)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
@settings(max_examples=25)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 17), st.integers(1, 17)),
       out=st.tuples(st.integers(1, 17), st.integers(1, 17)), seed=st.integers(0, 2**32 - 1))
def test_adaptive_reference_matches_torch(shape, out, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    y = P.reference_avg_pool_forward(x, P.adaptive_pool_windows(shape[1], out[0]), P.adaptive_pool_windows(shape[2], out[1]))
    np.testing.assert_allclose(y, torch.nn.functional.adaptive_avg_pool2d(torch.tensor(x), out).detach().numpy(),
                               rtol=1e-12, atol=1e-13)


# ----------------------------------------------------------------------------- fast kernels vs reference


def check_max(impl, case, dtype, kind, seed, put=lambda a: a):
    shape, k, s, p, d, ceil = case
    rng = np.random.default_rng(seed)
    x = make_x(rng, shape, dtype, kind)
    ry, ridx = P.reference_max_pool_forward(x, k, s, p, d, ceil)
    y, idx = P.max_pool_forward(put(x), k, s, p, d, ceil, impl=impl)
    y, idx = to_host(y), to_host(idx)
    assert y.dtype == np.dtype(dtype) and idx.dtype == np.int64
    np.testing.assert_array_equal(y, ry)  # a max is exact
    np.testing.assert_array_equal(idx, ridx)
    gy = rng.standard_normal(ry.shape).astype(dtype)
    dx = to_host(P.max_pool_backward(put(gy), put(idx), shape[1:], impl=impl))
    assert dx.dtype == np.dtype(dtype)
    np.testing.assert_allclose(dx, P.reference_max_pool_backward(gy.astype(np.float64), ridx, shape[1:]), **tol(dtype))


def check_avg(impl, case, dtype, seed, put=lambda a: a):
    shape, hwin, wwin = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    y = to_host(P.avg_pool_forward(put(x), hwin, wwin, impl=impl))
    assert y.dtype == np.dtype(dtype)
    np.testing.assert_allclose(y, P.reference_avg_pool_forward(x.astype(np.float64), hwin, wwin), **tol(dtype))
    gy = rng.standard_normal(y.shape).astype(dtype)
    dx = to_host(P.avg_pool_backward(put(gy), hwin, wwin, shape[1:], impl=impl))
    assert dx.dtype == np.dtype(dtype)
    np.testing.assert_allclose(dx, P.reference_avg_pool_backward(gy.astype(np.float64), hwin, wwin, shape[1:]),
                               **tol(dtype))


@given(case=max_cases(), dtype=st.sampled_from(DTYPES), kind=st.sampled_from(["normal", "ties", "nan"]),
       seed=st.integers(0, 2**32 - 1))
def test_max_cpu_matches_reference(case, dtype, kind, seed):
    check_max("cpu", case, dtype, kind, seed)


@given(case=avg_cases(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))
def test_avg_cpu_matches_reference(case, dtype, seed):
    check_avg("cpu", case, dtype, seed)


def test_dispatch_by_array_type_and_impl_names(rng):
    x = rng.standard_normal((2, 5, 5)).astype(np.float32)
    y_default, _ = P.max_pool_forward(x, (2, 2), (2, 2), (0, 0), (1, 1))
    y_cpu, _ = P.max_pool_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), impl="cpu")
    np.testing.assert_array_equal(y_default, y_cpu)
    with pytest.raises(ValueError, match="impl"):
        P.max_pool_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), impl="gpu")


def test_cpu_parallel_loops_match_serial(rng, monkeypatch):
    """The parallel versions (used for large inputs) give the same results as the serial ones."""
    monkeypatch.setattr(P, "CPU_PARALLEL_MIN_ELEMENTS", 0)
    check_max("cpu", ((5, 9, 8), (3, 3), (2, 2), (1, 1), (1, 1), True), np.float32, "ties", 7)
    check_avg("cpu", ((5, 9, 8), P.avg_pool_windows(9, 3, 2, 1, True, False), P.adaptive_pool_windows(8, 3)),
              np.float64, 7)


# The simulator runs every CUDA thread as a Python thread: tiny shapes only.
@settings(max_examples=8)
@given(case=max_cases(max_size=6, max_planes=2), dtype=st.sampled_from(DTYPES),
       kind=st.sampled_from(["normal", "ties", "nan"]), seed=st.integers(0, 2**32 - 1))
def test_max_cuda_matches_reference(case, dtype, kind, seed):
    check_max("cuda", case, dtype, kind, seed, put=to_cuda)


@settings(max_examples=8)
@given(case=avg_cases(max_size=6, max_planes=2), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))
def test_avg_cuda_matches_reference(case, dtype, seed):
    check_avg("cuda", case, dtype, seed, put=to_cuda)


@pytest.mark.parametrize("impl", ["reference", "cpu", "cuda"])
def test_window_that_misses_the_input(impl):
    """H = 1, kernel 2, padding 1, dilation 2: taps at -1 and 1 both miss; PyTorch gives -inf and
    index 1 (outside the plane), and its gradient goes nowhere."""
    x = np.ones((1, 1, 1))
    y, idx = P.max_pool_forward(to_cuda(x) if impl == "cuda" else x, (2, 1), (1, 1), (1, 0), (2, 1), impl=impl)
    assert to_host(y).tolist() == [[[-np.inf]]] and to_host(idx).tolist() == [[[1]]]
    dx = P.max_pool_backward(np.ones((1, 1, 1)), to_host(idx), (1, 1), impl=impl)
    assert to_host(dx).tolist() == [[[0.0]]]
