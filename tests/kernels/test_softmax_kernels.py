"""kernels/softmax/: reference vs finite differences and PyTorch; Numba CPU and CUDA vs reference.

The pattern (shared by every kernel family's tests):
  1. the plain NumPy reference's backward matches central finite differences in float64;
  2. the reference matches PyTorch, forward and backward, when torch is installed;
  3. the Numba CPU kernels match the reference on hypothesis-drawn shapes, float32 and float64;
  4. the CUDA kernels match the reference through the simulator (tiny shapes) or on a GPU;
Every version is reached through the dispatch's ``impl=`` keyword. Fast kernels are compared with the reference evaluated in float64 on the same inputs, so a
float32 kernel is held to float32 tolerances rather than to the float32 reference's own error.
"""
import functools
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cuda_helpers import SIMULATED, to_cuda, to_host
from numeric import numeric_grad
from tinymm.kernels import softmax as S
from tinymm.kernels.softmax import cpu as S_cpu
from tinymm.kernels.softmax import cuda as S_cuda
from tinymm.kernels.softmax import reference as S_ref

DTYPES = [np.float32, np.float64]


def tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if np.dtype(dtype) == np.float32 else dict(rtol=1e-11, atol=1e-12)


def assert_close(actual, expected, dtype, scale=1.0):
    """actual has the given dtype and matches expected (computed in float64) within dtype tolerance."""
    actual = to_host(actual)
    assert actual.dtype == np.dtype(dtype), f"dtype {actual.dtype}, expected {np.dtype(dtype)}"
    assert actual.shape == expected.shape, f"shape {actual.shape}, expected {expected.shape}"
    t = tol(dtype)
    np.testing.assert_allclose(actual, expected, rtol=t["rtol"], atol=t["atol"] * scale)




def f64(*arrays):
    return [None if a is None else (a.astype(np.float64) if a.dtype.kind == "f" else a) for a in arrays]


# Cross-entropy settings that matter: weight, ignore_index (outside and inside [0, C)), smoothing.
CE_CASES = [
    dict(),
    dict(use_weight=True),
    dict(label_smoothing=0.1),
    dict(use_weight=True, label_smoothing=0.2, ignore_index=-100),
    dict(use_weight=True, ignore_index=2),
    dict(label_smoothing=1.0),
]


def make_ce(rng, n, c, dtype, use_weight=False, label_smoothing=0.0, ignore_index=-100, prob=False):
    x = rng.standard_normal((n, c)).astype(dtype) * 3
    w = rng.uniform(0.2, 2.0, c).astype(dtype) if use_weight else None
    if prob:
        p = rng.uniform(0, 1, (n, c))
        t = (p / p.sum(axis=1, keepdims=True)).astype(dtype)
    else:
        t = rng.integers(0, c, n)
        if n > 1:
            t[rng.random(n) < 0.25] = ignore_index
    g = rng.standard_normal(n).astype(dtype)
    kw = dict(weight=w, ignore_index=ignore_index, label_smoothing=label_smoothing)
    return x, t, g, kw


# ----------------------------------------------------------------------------- 1. reference vs finite differences


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_reference_softmax_backward_matches_finite_differences(rng, name):
    fwd = functools.partial(getattr(S, f"{name}_forward"), impl="reference")
    bwd = functools.partial(getattr(S, f"{name}_backward"), impl="reference")
    x = rng.standard_normal((3, 5))
    gy = rng.standard_normal((3, 5))
    num = numeric_grad(lambda: float((fwd(x) * gy).sum()), x)
    np.testing.assert_allclose(bwd(fwd(x), gy), num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("case", CE_CASES + [dict(prob=True), dict(prob=True, use_weight=True, label_smoothing=0.3)])
def test_reference_cross_entropy_backward_matches_finite_differences(rng, case):
    x, t, g, kw = make_ce(rng, 6, 4, np.float64, **case)
    if not case.get("prob"):
        t[0] = kw["ignore_index"]  # at least one ignored row
        t[1] = 1
    num = numeric_grad(lambda: float((S.cross_entropy_forward(x, t, **kw, impl="reference")[0] * g).sum()), x)
    _, lse = S.cross_entropy_forward(x, t, **kw, impl="reference")
    np.testing.assert_allclose(S.cross_entropy_backward(x, t, lse, g, **kw, impl="reference"), num, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- 2. reference vs PyTorch


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_reference_softmax_matches_torch(rng, name):
    torch = pytest.importorskip("torch", reason="PyTorch (dev extra) is not installed")
    x = rng.standard_normal((4, 9))
    gy = rng.standard_normal((4, 9))
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(torch, name)(xt, dim=1)
    yt.backward(torch.tensor(gy))
    y = getattr(S, f"{name}_forward")(x, impl="reference")
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(getattr(S, f"{name}_backward")(y, gy, impl="reference"), xt.grad.numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("case", CE_CASES + [dict(prob=True), dict(prob=True, use_weight=True, label_smoothing=0.3)])
def test_reference_cross_entropy_matches_torch(rng, case):
    torch = pytest.importorskip("torch", reason="PyTorch (dev extra) is not installed")
    F = torch.nn.functional
    x, t, g, kw = make_ce(rng, 7, 5, np.float64, **case)
    xt = torch.tensor(x, requires_grad=True)
    wt = None if kw["weight"] is None else torch.tensor(kw["weight"])
    lt = F.cross_entropy(xt, torch.tensor(t), weight=wt, ignore_index=kw["ignore_index"],
                         label_smoothing=kw["label_smoothing"], reduction="none")
    lt.backward(torch.tensor(g))
    loss, lse = S.cross_entropy_forward(x, t, **kw, impl="reference")
    np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=1e-12, atol=1e-13)
    dx = S.cross_entropy_backward(x, t, lse, g, **kw, impl="reference")
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("prob", [False, True])
def test_documented_mean_reduction_matches_torch(rng, prob):
    """The module docstring says how PyTorch's 'mean' divides; check it, so callers can trust it."""
    torch = pytest.importorskip("torch", reason="PyTorch (dev extra) is not installed")
    x, t, _, kw = make_ce(rng, 8, 5, np.float64, use_weight=True, label_smoothing=0.1, prob=prob)
    loss, _ = S.cross_entropy_forward(x, t, **kw)
    if prob:
        mean = loss.sum() / len(x)
    else:
        keep = t != kw["ignore_index"]
        mean = loss.sum() / kw["weight"][t[keep]].sum()
    expected = torch.nn.functional.cross_entropy(
        torch.tensor(x), torch.tensor(t), weight=torch.tensor(kw["weight"]),
        ignore_index=kw["ignore_index"], label_smoothing=kw["label_smoothing"], reduction="mean")
    np.testing.assert_allclose(mean, expected.item(), rtol=1e-12)


# ----------------------------------------------------------------------------- 3. Numba CPU vs reference

shapes = dict(m=st.integers(1, 70), n=st.integers(1, 300), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))


@given(**shapes)
def test_cpu_softmax_and_log_softmax_match_reference(m, n, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((m, n)) * 4).astype(dtype)
    gy = rng.standard_normal((m, n)).astype(dtype)
    x64, gy64 = f64(x, gy)
    for name in ("softmax", "log_softmax"):
        y = getattr(S, f"{name}_forward")(x)
        y64 = getattr(S, f"{name}_forward")(x64, impl="reference")
        assert_close(y, y64, dtype, scale=4)
        # backward from the kernel's own y, checked against the reference on the same y
        gx = getattr(S, f"{name}_backward")(y, gy)
        assert_close(gx, getattr(S, f"{name}_backward")(y.astype(np.float64), gy64, impl="reference"), dtype, scale=4)


@given(**shapes, case=st.sampled_from(CE_CASES + [dict(prob=True), dict(prob=True, use_weight=True, label_smoothing=0.3)]),
       target_dtype=st.sampled_from([np.int64, np.int32]))
def test_cpu_cross_entropy_matches_reference(m, n, dtype, seed, case, target_dtype):
    rng = np.random.default_rng(seed)
    case = dict(case)
    if case.get("ignore_index", -100) >= n:
        case["ignore_index"] = -100
    x, t, g, kw = make_ce(rng, m, n, dtype, **case)
    if not case.get("prob"):
        t = t.astype(target_dtype)
    x64, t64, g64, w64 = f64(x, t, g, kw["weight"])
    kw64 = dict(kw, weight=w64)
    loss, lse = S.cross_entropy_forward(x, t, **kw)
    rloss, rlse = S.cross_entropy_forward(x64, t64, **kw64, impl="reference")
    scale = 1 + np.abs(rlse).max()
    assert_close(lse, rlse, dtype, scale=scale)
    assert_close(loss, rloss, dtype, scale=scale * 10)
    dx = S.cross_entropy_backward(x, t, lse, g, **kw)
    rdx = S.cross_entropy_backward(x64, t64, lse.astype(np.float64), g64, **kw64, impl="reference")
    assert_close(dx, rdx, dtype, scale=4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cpu_large_logits_stay_finite(dtype):
    x = np.array([[1e4, -1e4, 0.0, 9999.0], [-1e4, -1e4, -1e4, -1e4]], dtype=dtype)
    t = np.array([1, 3])
    for y in (S.softmax_forward(x), S.log_softmax_forward(x)):
        assert np.isfinite(y).all()
    loss, lse = S.cross_entropy_forward(x, t, label_smoothing=0.1)
    assert np.isfinite(loss).all() and np.isfinite(lse).all()
    np.testing.assert_allclose(loss[0], S.cross_entropy_forward(x.astype(np.float64), t, label_smoothing=0.1, impl="reference")[0][0], rtol=1e-6)
    dx = S.cross_entropy_backward(x, t, lse, np.ones(2, dtype), label_smoothing=0.1)
    assert np.isfinite(dx).all()
    np.testing.assert_allclose(S.softmax_forward(x).sum(axis=1), 1, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cpu_rows_with_some_minus_inf_are_fine_and_all_minus_inf_rows_give_nan(dtype):
    x = np.array([[-np.inf, 0.0, np.log(3.0)], [-np.inf, -np.inf, -np.inf]], dtype=dtype)
    y = S.softmax_forward(x)
    np.testing.assert_allclose(y[0], [0.0, 0.25, 0.75], rtol=1e-6)
    assert y[0, 0] == 0.0
    assert np.isnan(y[1]).all()  # documented: as PyTorch


@pytest.mark.parametrize("dtype", DTYPES)
def test_cpu_a_nan_makes_its_row_nan_and_only_its_row(dtype):
    x = np.array([[0.0, np.nan, 1.0, 2.0], [1.0, 2.0, 3.0, 4.0], [np.nan, 0.0, 0.0, 0.0]], dtype=dtype)
    t = np.array([0, 3, 1])
    for y in (S.softmax_forward(x), S.log_softmax_forward(x)):
        assert np.isnan(y[[0, 2]]).all() and np.isfinite(y[1]).all()
    loss, lse = S.cross_entropy_forward(x, t)
    assert np.isnan(loss[[0, 2]]).all() and np.isnan(lse[[0, 2]]).all() and np.isfinite(loss[1])
    dx = S.cross_entropy_backward(x, t, lse, np.ones(3, dtype))
    assert np.isnan(dx[[0, 2]]).all() and np.isfinite(dx[1]).all()


def _exp_through_kernel(loop, a):
    """exp of every element of the float32 array ``a``, computed by a CPU loop as it runs in
    production (``_exp`` inlined in a loop compiled with the family's fastmath flags): the
    log-softmax backward of y = [a, 0] with gy = [0, ..., 0, 1] is gx = [-exp(a), 0]."""
    y = np.concatenate([a, np.zeros((a.shape[0], 1), a.dtype)], axis=1)
    gy = np.zeros_like(y)
    gy[:, -1] = 1
    gx = np.empty_like(y)
    loop(y, gy, gx, True)
    assert (gx[:, -1] == 0).all()
    return -gx[:, :-1]


@pytest.mark.parametrize("version", ["serial", "parallel"])
def test_cpu_float32_exp_is_within_about_an_ulp_of_exp(version):
    """``_exp_f32`` (a vectorisable polynomial, used for float32 in place of libm's expf)
    against exp in float64 on a dense grid over exp's whole normal float32 range."""
    loop = getattr(S_cpu._softmax_backward_cpu, version)
    grid = np.linspace(-87.3, 88.3, 1 << 20, dtype=np.float32).reshape(1024, 1024)
    e = _exp_through_kernel(loop, grid)
    assert e.dtype == np.float32
    ref = np.exp(grid.astype(np.float64))
    ulps = np.abs(e - ref) / np.spacing(ref.astype(np.float32)).astype(np.float64)
    assert ulps.max() < 2.0, f"max error {ulps.max():.2f} ulp at x = {grid.flat[ulps.argmax()]}"
    rel = np.abs(e / ref - 1)
    assert rel.max() < 2.4e-7
    # around 0, where the reduced argument is the whole argument and results are near 1
    small = np.linspace(-1, 1, 20001, dtype=np.float32)[None, :]
    ref = np.exp(small.astype(np.float64))
    assert (np.abs(_exp_through_kernel(loop, small) - ref) / np.spacing(ref.astype(np.float32))).max() < 2.0


def test_cpu_float32_exp_special_values():
    loop = S_cpu._softmax_backward_cpu.serial
    x = np.array([[-np.inf, -3e38, -1e4, -200.0, -104.0, -88.0, -87.7, 0.0, -0.0, 1.0, 88.0, 89.0, 1e4, np.inf,
                   np.nan]], np.float32)
    e = _exp_through_kernel(loop, x)[0]
    np.testing.assert_array_equal(e[:6], 0.0)  # exp of -inf and of very negative numbers is exactly 0
    assert 0.0 <= e[6] < 1.2e-38  # below the smallest normal float32: 0 or subnormal
    np.testing.assert_array_equal(e[7:9], [1.0, 1.0])
    np.testing.assert_allclose(e[9:11], np.exp([1.0, 88.0]), rtol=2.4e-7)
    np.testing.assert_array_equal(e[11:14], np.inf)  # overflow is inf, never NaN
    assert np.isnan(e[14])


@pytest.mark.parametrize("spread", [1e4, 1e30, 3e38])
def test_cpu_float32_softmax_of_extreme_logits_has_no_nan(spread):
    """Inputs are max-shifted, so exp only sees x - max <= 0, down to -inf when the shift overflows."""
    x = np.array([[spread, -spread, 0.0, 1.0], [-spread, -spread, -spread, spread]], np.float32)
    for y in (S.softmax_forward(x), np.exp(S.log_softmax_forward(x))):
        assert not np.isnan(y).any()
        np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(S.softmax_forward(x), [[1, 0, 0, 0], [0, 0, 0, 1]])


@pytest.fixture(params=["serial", "parallel"])
def cpu_version(request, monkeypatch):
    """Run the public CPU functions through the serial or the parallel loops, whatever the size."""
    monkeypatch.setattr(S_cpu, "CPU_PARALLEL_MIN_ELEMENTS", 0 if request.param == "parallel" else 1 << 62)
    return request.param


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (37, 300)])
def test_cpu_serial_and_parallel_loops_match_reference(rng, cpu_version, dtype, shape):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    x64, gy64 = f64(x, gy)
    for name in ("softmax", "log_softmax"):
        y = getattr(S, f"{name}_forward")(x)
        assert_close(y, getattr(S, f"{name}_forward")(x64, impl="reference"), dtype, scale=4)
        gx = getattr(S, f"{name}_backward")(y, gy)
        assert_close(gx, getattr(S, f"{name}_backward")(y.astype(np.float64), gy64, impl="reference"), dtype, scale=4)
    for case in (dict(use_weight=True, label_smoothing=0.2), dict(prob=True, label_smoothing=0.1)):
        x, t, g, kw = make_ce(rng, *shape, dtype, **case)
        x64, t64, g64, w64 = f64(x, t, g, kw["weight"])
        loss, lse = S.cross_entropy_forward(x, t, **kw)
        rloss, rlse = S.cross_entropy_forward(x64, t64, **dict(kw, weight=w64), impl="reference")
        assert_close(lse, rlse, dtype, scale=10)
        assert_close(loss, rloss, dtype, scale=100)
        dx = S.cross_entropy_backward(x, t, lse, g, **kw)
        rdx = S.cross_entropy_backward(x64, t64, lse.astype(np.float64), g64, **dict(kw, weight=w64), impl="reference")
        assert_close(dx, rdx, dtype, scale=4)


def test_cpu_loops_are_compiled_serial_and_parallel_under_distinct_cache_names():
    """Numba's disk cache keys a function by qualified name and line, not by compile flags: the
    two versions must come from differently named functions or they overwrite each other."""
    loops = S_cpu._softmax_forward_cpu
    assert not loops.serial.targetoptions.get("parallel")
    assert loops.parallel.targetoptions.get("parallel")
    assert loops.serial.py_func.__qualname__ == "_softmax_forward_cpu_serial"
    assert loops.parallel.py_func.__qualname__ == "_softmax_forward_cpu"
    assert loops.for_work(S_cpu.CPU_PARALLEL_MIN_ELEMENTS - 1, S_cpu.CPU_PARALLEL_MIN_ELEMENTS) is loops.serial
    assert loops.for_work(S_cpu.CPU_PARALLEL_MIN_ELEMENTS, S_cpu.CPU_PARALLEL_MIN_ELEMENTS) is loops.parallel


def test_cpu_empty_and_non_contiguous_inputs(rng):
    assert S.softmax_forward(np.zeros((0, 5), np.float32)).shape == (0, 5)
    assert S.cross_entropy_forward(np.zeros((0, 5)), np.zeros(0, np.int64))[0].shape == (0,)
    x = rng.standard_normal((6, 4))
    np.testing.assert_allclose(S.softmax_forward(x.T), S.softmax_forward(x.T.copy(), impl="reference"), rtol=1e-12)


# ----------------------------------------------------------------------------- 4. CUDA vs reference (simulator or GPU)


@pytest.fixture
def small_cuda_block(monkeypatch):
    """8 threads per block: the simulator runs one Python thread per CUDA thread, and rows of
    40 then take five strides per thread."""
    monkeypatch.setattr(S_cuda, "CUDA_BLOCK", 8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 40)])
def test_cuda_softmax_and_log_softmax_match_reference(rng, small_cuda_block, dtype, shape):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    x64, gy64 = f64(x, gy)
    for name in ("softmax", "log_softmax"):
        y = to_host(getattr(S, f"{name}_forward")(to_cuda(x), impl="cuda"))
        assert_close(y, getattr(S, f"{name}_forward")(x64, impl="reference"), dtype, scale=4)
        gx = getattr(S, f"{name}_backward")(to_cuda(y), to_cuda(gy), impl="cuda")
        assert_close(gx, getattr(S, f"{name}_backward")(y.astype(np.float64), gy64, impl="reference"), dtype, scale=4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [dict(use_weight=True, label_smoothing=0.2), dict(ignore_index=2),
                                  dict(prob=True, use_weight=True, label_smoothing=0.3)])
def test_cuda_cross_entropy_matches_reference(rng, small_cuda_block, dtype, case):
    x, t, g, kw = make_ce(rng, 3, 37, dtype, **case)
    if not case.get("prob"):
        t[:] = [kw["ignore_index"], 5, 36]
    x64, t64, g64, w64 = f64(x, t, g, kw["weight"])
    kw64 = dict(kw, weight=w64)
    c = to_cuda
    loss, lse = S.cross_entropy_forward(c(x), c(t), weight=c(kw["weight"]), ignore_index=kw["ignore_index"],
                                        label_smoothing=kw["label_smoothing"], impl="cuda")
    rloss, rlse = S.cross_entropy_forward(x64, t64, **kw64, impl="reference")
    assert_close(lse, rlse, dtype, scale=10)
    assert_close(loss, rloss, dtype, scale=100)
    dx = S.cross_entropy_backward(c(x), c(t), lse, c(g), weight=c(kw["weight"]), ignore_index=kw["ignore_index"],
                                  label_smoothing=kw["label_smoothing"], impl="cuda")
    rdx = S.cross_entropy_backward(x64, t64, to_host(lse).astype(np.float64), g64, **kw64, impl="reference")
    assert_close(dx, rdx, dtype, scale=4)


def test_cuda_rows_longer_than_the_block(rng):
    """The default block size (128) with a row of 130: each thread strides over two columns."""
    assert S_cuda.CUDA_BLOCK == 128
    x = (rng.standard_normal((1, 130)) * 4).astype(np.float32)
    t = np.array([129])
    y = S.softmax_forward(to_cuda(x), impl="cuda")
    assert_close(y, S.softmax_forward(x.astype(np.float64), impl="reference"), np.float32)
    loss, lse = S.cross_entropy_forward(to_cuda(x), to_cuda(t), label_smoothing=0.1, impl="cuda")
    rloss, rlse = S.cross_entropy_forward(x.astype(np.float64), t, label_smoothing=0.1, impl="reference")
    assert_close(loss, rloss, np.float32, scale=10)
    assert_close(lse, rlse, np.float32, scale=10)


def test_cuda_large_logits_stay_finite(small_cuda_block):
    x = np.array([[1e4, -1e4, 0.0, 9999.0]], dtype=np.float32)
    y = to_host(S.softmax_forward(to_cuda(x), impl="cuda"))
    assert np.isfinite(y).all()
    loss, lse = S.cross_entropy_forward(to_cuda(x), to_cuda(np.array([1])), impl="cuda")
    assert np.isfinite(to_host(loss)).all()
    expected = 2e4 + np.log1p(np.exp(-1.0))  # lse - x_1, with lse = 1e4 + log(1 + e^-1)
    np.testing.assert_allclose(to_host(loss), [expected], rtol=1e-6)


# ``numba.cuda`` for the kernel below, a module global bound in the test, as in the kernel
# files: the simulator swaps a kernel's global ``cuda`` (not a local one) for its fake module.
cuda = None


def test_cuda_static_shared_arrays_are_one_array_per_block():
    """All of a block's threads reach each ``cuda.shared.array(32, float64)`` together, right
    after a barrier. Under the simulator that needs the lock tests/conftest.py puts on
    ``FakeCUDAShared.array``: without it, about 2 launches in 100 gave threads arrays of their own."""
    global cuda
    from numba import cuda, float64

    if SIMULATED:
        from numba.cuda.simulator.kernelapi import FakeCUDAShared

        assert getattr(FakeCUDAShared.array, "locked_by_tinymm_conftest", False)

    @cuda.jit
    def two_block_sums(x, out):
        tid = cuda.threadIdx.x
        cuda.syncthreads()
        a = cuda.shared.array(32, float64)
        a[tid] = x[tid]
        cuda.syncthreads()
        b = cuda.shared.array(32, float64)
        b[tid] = 2 * x[tid]
        cuda.syncthreads()
        if tid == 0:
            sa = 0.0
            sb = 0.0
            for k in range(32):
                sa += a[k]
                sb += b[k]
            out[0] = sa
            out[1] = sb

    x = np.arange(32, dtype=np.float64)
    for _ in range(20):
        out = to_cuda(np.zeros(2))
        two_block_sums[1, 32](to_cuda(x), out)
        np.testing.assert_array_equal(to_host(out), [496.0, 992.0])


# ----------------------------------------------------------------------------- 5. dispatch and import


def test_first_invalid_target_finds_the_first_bad_index(rng):
    t = np.array([0, 2, -100, 3, -1], np.int64)
    for impl in ("reference", "cpu", "cuda"):
        assert S.first_invalid_target(t, 3, -100, impl=impl) == 3
        assert S.first_invalid_target(t[:3], 3, -100, impl=impl) == -1
        assert S.first_invalid_target(np.array([0, -100], np.int64), 3, 0, impl=impl) == 1


def test_dispatch_runs_the_version_impl_names(rng):
    x = rng.standard_normal((2, 3))
    assert np.array_equal(S.softmax_forward(x, impl="reference"), S_ref.softmax_forward(x))
    with pytest.raises(ValueError, match="impl must be one of"):
        S.softmax_forward(x, impl="gpu")


def test_importing_the_module_compiles_nothing_and_leaves_cuda_alone():
    code = (
        "import sys, tinymm.kernels.softmax as s, tinymm.kernels.softmax.cpu as c\n"
        "assert 'tinymm.kernels.softmax.cuda' not in sys.modules\n"
        "assert not [m for m in sys.modules if m.startswith('numba.cuda') or m.startswith('numba_cuda')], 'cuda imported'\n"
        "assert not c._softmax_forward_cpu.serial.signatures, 'compiled at import'\n"
        "assert not c._softmax_forward_cpu.parallel.signatures, 'compiled at import'\n"
        "assert not c._exp_f32.signatures, 'compiled at import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
