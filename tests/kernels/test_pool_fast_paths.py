"""kernels/pool.py's CPU fast paths (eleventh session): windows wholly inside the plane.

Max pooling skips the bounds tests for inside windows (2x2 and 3x3 with literal sizes); average
pooling sums the 2x2 and 3x3 windows of the regular runs with literal sizes. Both must give what
the general loops give, bit for bit (same taps, same order), on every shape: odd sizes, padding,
ceil_mode, count_include_pad, divisor_override, dilation, 1-D (height-1 planes), float32 and
float64. The backward passes write into ``out`` (zeroing it themselves) and the layers return
arrays of their own, so that the engine adopts them as ``.grad`` without a copy.
"""
import itertools

import numpy as np
import pytest

import tinymm as tm
import tinymm.nn.functional as F
from tinymm.kernels import pool as P

DTYPES = [np.float32, np.float64]

# (H, W, kernel, stride, padding, ceil_mode, count_include_pad)
AVG_CASES = [
    (32, 32, 3, 2, 1, False, True), (33, 31, 3, 2, 1, True, False), (7, 9, 2, 2, 0, True, True),
    (9, 11, 3, 1, 1, False, False), (1, 13, (1, 3), (1, 2), (0, 1), False, True), (5, 5, 3, 3, 0, True, True),
    (16, 16, 2, 1, 1, True, False), (6, 4, 3, 2, 0, False, True),
]
# (H, W, kernel, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    (32, 32, 2, 2, 0, 1, False), (32, 32, 3, 2, 1, 1, False), (33, 31, 3, 2, 1, 1, True), (7, 9, 2, 2, 1, 1, True),
    (9, 11, 3, 1, 1, 2, False), (1, 13, (1, 3), (1, 2), (0, 1), 1, False), (5, 6, 2, 3, 1, 1, True),
    (10, 10, 3, 3, 1, 1, True), (8, 8, 4, 2, 2, 1, False), (3, 3, 3, 1, 1, 1, False),
]


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


def _general(args):
    """The CPU window arguments with the regular runs switched off: the general loops only."""
    return (*args[:3], 0, 0, 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("H, W, k, s, p, ceil, cip", AVG_CASES)
@pytest.mark.parametrize("override", [None, 7])
def test_avg_fast_path_is_the_general_loop_bit_for_bit(H, W, k, s, p, ceil, cip, override, dtype):
    rng = np.random.default_rng(H * W)
    (kh, kw), (sh, sw), (ph, pw) = _pair(k), _pair(s), _pair(p)
    hwin, wwin = P.avg_pool_windows(H, kh, sh, ph, ceil, cip), P.avg_pool_windows(W, kw, sw, pw, ceil, cip)
    if override is not None:
        hwin = (hwin[0], hwin[1], hwin[2] * 0 + override)
        wwin = (wwin[0], wwin[1], wwin[2] * 0 + 1)
    x = (rng.standard_normal((3, H, W)) * 10).astype(dtype)
    hw, ww = P._cpu_windows(hwin, x.dtype), P._cpu_windows(wwin, x.dtype)
    y = P.avg_pool_forward(x, hwin, wwin)
    y_general = np.empty_like(y)
    P._avg_forward_cpu.serial(x, *_general(hw), *_general(ww), y_general)
    np.testing.assert_array_equal(y, y_general)
    np.testing.assert_allclose(y, P.reference_avg_pool_forward(x.astype(np.float64), hwin, wwin),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5 if dtype == np.float32 else 1e-12)

    gy = rng.standard_normal(y.shape).astype(dtype)
    out = np.full((3 * H * W,), np.nan, dtype)  # garbage: the kernel must zero it
    dx = P.avg_pool_backward(gy, hwin, wwin, (H, W), out=out)
    assert dx is out
    dx_general = np.full((3, H, W), np.nan, dtype)
    P._avg_backward_cpu.serial(gy, *_general(hw), *_general(ww), dx_general)
    np.testing.assert_array_equal(dx.reshape(3, H, W), dx_general)
    np.testing.assert_allclose(dx.reshape(3, H, W), P.reference_avg_pool_backward(gy, hwin, wwin, (H, W)),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("H, W, k, s, p, d, ceil", MAX_CASES)
@pytest.mark.parametrize("kind", ["normal", "ties_nan_inf"])
def test_max_fast_path_matches_the_reference_exactly(H, W, k, s, p, d, ceil, kind, dtype):
    rng = np.random.default_rng(H + 100 * W)
    if kind == "normal":
        x = rng.standard_normal((2, H, W)).astype(dtype)
    else:  # ties (first maximum wins), NaNs (win), -inf everywhere in some windows
        x = rng.integers(-1, 2, (2, H, W)).astype(dtype)
        x[rng.random(x.shape) < 0.1] = np.nan
        x[0, : H // 2] = -np.inf
    args = (_pair(k), _pair(s), _pair(p), _pair(d), ceil)
    y, idx = P.max_pool_forward(x, *args)
    ry, ridx = P.reference_max_pool_forward(x, *args)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(idx, ridx)
    gy = rng.standard_normal(y.shape).astype(dtype)
    out = np.full((2, H, W), np.nan, dtype)
    dx = P.max_pool_backward(gy, idx, (H, W), out=out)
    assert dx is out
    np.testing.assert_array_equal(dx, P.reference_max_pool_backward(gy, ridx, (H, W)))


def test_regular_run():
    assert P.regular_run(P.avg_pool_windows(32, 3, 2, 1)) == (1, 16, 3)  # window 0 clipped by padding
    assert P.regular_run(P.avg_pool_windows(7, 2, 2, 0, ceil_mode=True)) == (0, 3, 2)  # the last one clipped
    assert P.regular_run(P.adaptive_pool_windows(8, 1)) == (0, 1, 8)
    start, end, _ = P.adaptive_pool_windows(10, 4)  # widths 3, 3, 3, 3: one run; 10 -> 3 gives 4, 4, 4
    assert P.regular_run((start, end, end - start)) == (0, 4, 3)
    assert P.regular_run(P.adaptive_pool_windows(10, 3)) == (0, 3, 4)
    assert P.regular_run((np.array([0, 2, 3, 5]), np.array([2, 3, 5, 7]), None)) == (2, 4, 2)  # the longest run
    assert P.regular_run((np.zeros(0, np.int64), np.zeros(0, np.int64), None)) == (0, 0, 0)


def test_memoised_windows_are_read_only():
    start, end, div = P.avg_pool_windows(9, 3, 2, 1, True, False)
    assert P.avg_pool_windows(9, 3, 2, 1, True, False)[0] is start
    for a in (start, end, div, *P.adaptive_pool_windows(9, 4)):
        with pytest.raises(ValueError):
            a[0] = 5


@pytest.mark.parametrize("op, shape", [
    (lambda t: F.max_pool2d(t, 3, 2, 1), (2, 3, 9, 8)), (lambda t: F.max_pool1d(t, 2), (2, 3, 9)),
    (lambda t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=False), (3, 9, 8)),
    (lambda t: F.avg_pool1d(t, 3, 2, 1, ceil_mode=True), (2, 3, 9)),
    (lambda t: F.adaptive_avg_pool2d(t, 1), (2, 3, 4, 4)),
])
def test_layer_gradient_is_adopted_not_copied(op, shape):
    """The backward's dx is an array of its own in the input's shape: the engine makes it
    x.grad as it is (a view would be copied first)."""
    x = tm.tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32), requires_grad=True)
    y = op(x)
    y.backward(tm.ones(*y.shape))
    assert x.grad.shape == x.shape
    assert x.grad._data.base is None and x.grad._data.flags.c_contiguous


def test_avg_windows_of_all_kernel_sizes_bit_for_bit():
    """Every square and non-square kernel up to 4x4 (only 2x2 and 3x3 take the fast path)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 12, 11)).astype(np.float32)
    for kh, kw in itertools.product(range(1, 5), repeat=2):
        hwin, wwin = P.avg_pool_windows(12, kh, 1, kh // 2), P.avg_pool_windows(11, kw, 2, kw // 2, True)
        hw, ww = P._cpu_windows(hwin, x.dtype), P._cpu_windows(wwin, x.dtype)
        y_general = np.empty((2, len(hwin[0]), len(wwin[0])), np.float32)
        P._avg_forward_cpu.serial(x, *_general(hw), *_general(ww), y_general)
        np.testing.assert_array_equal(P.avg_pool_forward(x, hwin, wwin), y_general)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B, H, W", [(1, 1, 1), (7, 3, 5), (21, 8, 8), (16, 1, 9), (35, 4, 4)])
def test_global_average_is_the_sequential_float64_sum(B, H, W, dtype):
    """Whole-plane windows (adaptive_avg_pool2d(x, 1), avg_pool2d over the whole plane), four
    planes at a time in blocks of 16: each plane's sum is still the float64 sum in memory
    order, divided in float64 by the float32/64 divisor, as the general loop computes it."""
    rng = np.random.default_rng(B)
    x = (rng.standard_normal((B, H, W)) * 100).astype(dtype)
    for hwin, wwin in [(P.adaptive_pool_windows(H, 1), P.adaptive_pool_windows(W, 1)),
                       (P.avg_pool_windows(H, H, 1, 0), P.avg_pool_windows(W, W, 1, 0))]:
        y = P.avg_pool_forward(x, hwin, wwin)
        assert y.shape == (B, 1, 1)
        div = float(dtype(hwin[2][0]) * dtype(wwin[2][0]))
        expected = []
        for plane in x:
            acc = 0.0
            for v in plane.ravel().tolist():
                acc += v
            expected.append(acc / div)
        np.testing.assert_array_equal(y.ravel(), np.array(expected).astype(dtype))
        np.testing.assert_allclose(y, P.reference_avg_pool_forward(x.astype(np.float64), hwin, wwin), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B, H, W", [(1, 1, 1), (7, 3, 5), (21, 8, 8)])
def test_global_average_backward_is_the_scatter(B, H, W, dtype):
    """Whole-plane windows: dx is a fill with 0 + gy / divisor (in gy's dtype), what the
    scatter into a zeroed plane gives; a -0.0 gradient lands as +0.0 as there."""
    rng = np.random.default_rng(B)
    gy = rng.standard_normal((B, 1, 1)).astype(dtype)
    gy[0] = -0.0
    for hwin, wwin, div in [(P.adaptive_pool_windows(H, 1), P.adaptive_pool_windows(W, 1), H * W),
                            (P.avg_pool_windows(H, H, 1, 0), P.avg_pool_windows(W, W, 1, 0), H * W)]:
        dx = P.avg_pool_backward(gy, hwin, wwin, (H, W), out=np.full(B * H * W, np.nan, dtype)).reshape(B, H, W)
        expected = dtype(0) + gy / dtype(div)
        np.testing.assert_array_equal(dx, np.broadcast_to(expected, (B, H, W)))
        assert not np.signbit(dx[0]).any()
