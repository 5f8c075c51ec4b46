"""kernels/norm.py: LayerNorm (every version through the dispatch's ``impl=``) reference vs finite differences and PyTorch; CPU and CUDA vs reference.

Same pattern as test_softmax_kernels.py: the fast kernels are compared with the reference
evaluated in float64 on the same inputs, with tolerances for the kernel's dtype.
"""
import functools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cuda_helpers import to_cuda, to_host
from numeric import numeric_grad
from tinymm.kernels import norm as L

DTYPES = [np.float32, np.float64]
REF_FWD = functools.partial(L.forward, impl="reference")
REF_BWD = functools.partial(L.backward, impl="reference")
CUDA_FWD = functools.partial(L.forward, impl="cuda")
CUDA_BWD = functools.partial(L.backward, impl="cuda")
AFFINE = [(True, True), (True, False), (False, True), (False, False)]  # (weight, bias)


def tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if np.dtype(dtype) == np.float32 else dict(rtol=1e-11, atol=1e-12)


def assert_close(actual, expected, dtype, scale=1.0):
    if expected is None:
        assert actual is None
        return
    actual = to_host(actual)
    assert actual.dtype == np.dtype(dtype), f"dtype {actual.dtype}, expected {np.dtype(dtype)}"
    assert actual.shape == expected.shape, f"shape {actual.shape}, expected {expected.shape}"
    t = tol(dtype)
    np.testing.assert_allclose(actual, expected, rtol=t["rtol"], atol=t["atol"] * scale)




def make(rng, m, n, dtype, has_w, has_b, offset=0.0):
    x = (rng.standard_normal((m, n)) * 2 + offset).astype(dtype)
    w = rng.standard_normal(n).astype(dtype) if has_w else None
    b = rng.standard_normal(n).astype(dtype) if has_b else None
    gy = rng.standard_normal((m, n)).astype(dtype)
    return x, w, b, gy


def f64(a):
    return None if a is None else a.astype(np.float64)


def expected(x, w, b, gy, eps):
    """Reference forward and backward in float64; backward from the reference's own mean/rstd."""
    y, mean, rstd = REF_FWD(f64(x), f64(w), f64(b), eps)
    grads = REF_BWD(f64(gy), f64(x), mean, rstd, f64(w), b is not None)
    return (y, mean, rstd), grads


# ----------------------------------------------------------------------------- reference vs finite differences


@pytest.mark.parametrize("has_w,has_b", AFFINE)
def test_reference_backward_matches_finite_differences(rng, has_w, has_b):
    x, w, b, gy = make(rng, 3, 5, np.float64, has_w, has_b)
    eps = 1e-3

    def loss():
        return float((REF_FWD(x, w, b, eps)[0] * gy).sum())

    _, mean, rstd = REF_FWD(x, w, b, eps)
    dx, dw, db = REF_BWD(gy, x, mean, rstd, w, has_b)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-8)
    if has_w:
        np.testing.assert_allclose(dw, numeric_grad(loss, w), rtol=1e-6, atol=1e-8)
    else:
        assert dw is None
    if has_b:
        np.testing.assert_allclose(db, numeric_grad(loss, b), rtol=1e-6, atol=1e-8)
    else:
        assert db is None


# ----------------------------------------------------------------------------- reference vs PyTorch


@pytest.mark.parametrize("has_w,has_b", AFFINE)
def test_reference_matches_torch(rng, has_w, has_b):
    torch = pytest.importorskip("torch", reason="PyTorch (dev extra) is not installed")
    x, w, b, gy = make(rng, 4, 7, np.float64, has_w, has_b, offset=3.0)
    eps = 1e-5
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True) if has_w else None
    bt = torch.tensor(b, requires_grad=True) if has_b else None
    yt, mean_t, rstd_t = torch.ops.aten.native_layer_norm(xt, [7], wt, bt, eps)
    yt.backward(torch.tensor(gy))
    y, mean, rstd = REF_FWD(x, w, b, eps)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(mean, mean_t.detach().numpy().reshape(-1), rtol=1e-13)
    np.testing.assert_allclose(rstd, rstd_t.detach().numpy().reshape(-1), rtol=1e-12)
    dx, dw, db = REF_BWD(gy, x, mean, rstd, w, has_b)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    if has_w:
        np.testing.assert_allclose(dw, wt.grad.numpy(), rtol=1e-10, atol=1e-12)
    if has_b:
        np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- Numba CPU vs reference


@given(m=st.integers(1, 70), n=st.integers(1, 300), dtype=st.sampled_from(DTYPES), affine=st.sampled_from(AFFINE),
       offset=st.sampled_from([0.0, 50.0]), seed=st.integers(0, 2**32 - 1))
def test_cpu_matches_reference(m, n, dtype, affine, offset, seed):
    rng = np.random.default_rng(seed)
    x, w, b, gy = make(rng, m, n, dtype, *affine, offset=offset)
    eps = 1e-5
    (ry, rmean, rrstd), (rdx, rdw, rdb) = expected(x, w, b, gy, eps)
    y, mean, rstd = L.forward(x, w, b, eps)
    scale = 1 + offset
    assert_close(mean, rmean, dtype, scale)
    assert_close(rstd, rrstd, dtype)
    assert_close(y, ry, dtype, 4)
    # backward from the kernel's own saved mean/rstd, against the reference given the same
    rdx, rdw, rdb = REF_BWD(f64(gy), f64(x), f64(mean), f64(rstd), f64(w), b is not None)
    dx, dw, db = L.backward(gy, x, mean, rstd, w, b is not None)
    assert_close(dx, rdx, dtype, 4 * np.sqrt(n))
    assert_close(dw, rdw, dtype, 4 * np.sqrt(m))
    assert_close(db, rdb, dtype, 4 * np.sqrt(m))


@pytest.fixture(params=["serial", "parallel"])
def cpu_version(request, monkeypatch):
    """Run the public CPU functions through the serial or the parallel loops, whatever the size
    (the parallel backward also splits the rows into chunks)."""
    monkeypatch.setattr(L, "CPU_PARALLEL_MIN_ELEMENTS", 0 if request.param == "parallel" else 1 << 62)
    return request.param


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", [(True, True), (False, False)])
@pytest.mark.parametrize("shape", [(1, 1), (37, 300)])
def test_cpu_serial_and_parallel_loops_match_reference(rng, cpu_version, dtype, affine, shape):
    x, w, b, gy = make(rng, *shape, dtype, *affine, offset=5.0)
    (ry, rmean, rrstd), _ = expected(x, w, b, gy, 1e-5)
    y, mean, rstd = L.forward(x, w, b, 1e-5)
    assert_close(mean, rmean, dtype, 6)
    assert_close(rstd, rrstd, dtype)
    assert_close(y, ry, dtype, 4)
    rdx, rdw, rdb = REF_BWD(f64(gy), f64(x), f64(mean), f64(rstd), f64(w), b is not None)
    dx, dw, db = L.backward(gy, x, mean, rstd, w, b is not None)
    assert_close(dx, rdx, dtype, 4 * np.sqrt(shape[1]))
    assert_close(dw, rdw, dtype, 4 * np.sqrt(shape[0]))
    assert_close(db, rdb, dtype, 4 * np.sqrt(shape[0]))


def test_cpu_zero_eps_on_a_constant_row_gives_inf_and_nan_not_an_error(cpu_version):
    """Documented: rstd = 1/sqrt(0) = inf and y = 0 * inf = NaN, as PyTorch; no ZeroDivisionError."""
    y, mean, rstd = L.forward(np.full((2, 4), 3.0), eps=0.0)
    assert np.isinf(rstd).all() and np.isnan(y).all()
    np.testing.assert_array_equal(mean, 3.0)


@pytest.mark.parametrize("m", [1, 7, 257])
def test_cpu_parameter_gradients_are_summed_over_every_row_exactly_once(rng, m, cpu_version):
    """More rows than threads and chunks that do not divide them: no row lost, none counted twice."""
    x, w, b, gy = make(rng, m, 3, np.float64, True, True)
    _, mean, rstd = L.forward(x, w, b)
    _, dw, db = L.backward(gy, x, mean, rstd, w, True)
    _, rdw, rdb = REF_BWD(gy, x, mean, rstd, w, True)
    np.testing.assert_allclose(dw, rdw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, rdb, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cpu_large_values_and_constant_rows(dtype):
    x = np.array([[1e4, -1e4, 3.0, 1e4 - 1], [7.0, 7.0, 7.0, 7.0]], dtype=dtype)
    b = np.array([1.0, 2.0, 3.0, 4.0], dtype=dtype)
    y, mean, rstd = L.forward(x, None, b, 1e-5)
    assert np.isfinite(y).all()
    ry, _, _ = REF_FWD(x.astype(np.float64), None, b.astype(np.float64), 1e-5)
    np.testing.assert_allclose(y, ry, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(y[1], b)  # a constant row normalises to 0, then + bias
    dx, dw, db = L.backward(np.ones_like(x), x, mean, rstd, None, True)
    assert np.isfinite(dx).all() and dw is None
    np.testing.assert_allclose(db, [2, 2, 2, 2])


def test_cpu_empty_batch_and_non_contiguous_input(rng):
    y, mean, rstd = L.forward(np.zeros((0, 4), np.float32), np.ones(4, np.float32))
    assert y.shape == (0, 4) and mean.shape == (0,)
    dx, dw, db = L.backward(np.zeros((0, 4)), np.zeros((0, 4)), np.zeros(0), np.zeros(0), np.ones(4), True)
    assert dx.shape == (0, 4)
    np.testing.assert_array_equal(dw, 0)
    np.testing.assert_array_equal(db, 0)
    x = rng.standard_normal((5, 6))
    np.testing.assert_allclose(L.forward(x.T)[0], REF_FWD(x.T.copy())[0], rtol=1e-12, atol=1e-13)


# ----------------------------------------------------------------------------- CUDA vs reference (simulator or GPU)


@pytest.fixture
def small_cuda_block(monkeypatch):
    """8 threads per block and 2 rows per dweight/dbias chunk: the simulator runs one Python
    thread per CUDA thread; rows of 40 take five strides; 3 rows make two chunks."""
    monkeypatch.setattr(L, "CUDA_BLOCK", 8)
    monkeypatch.setattr(L, "CUDA_PARAM_GRAD_ROWS", 2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", [(True, True), (False, True), (False, False)])
def test_cuda_matches_reference(rng, small_cuda_block, dtype, affine):
    x, w, b, gy = make(rng, 3, 40, dtype, *affine, offset=5.0)
    c = to_cuda
    (ry, rmean, rrstd), _ = expected(x, w, b, gy, 1e-5)
    y, mean, rstd = CUDA_FWD(c(x), c(w), c(b), 1e-5)
    assert_close(mean, rmean, dtype, 6)
    assert_close(rstd, rrstd, dtype)
    assert_close(y, ry, dtype, 4)
    mean, rstd = to_host(mean), to_host(rstd)
    rdx, rdw, rdb = REF_BWD(f64(gy), f64(x), f64(mean), f64(rstd), f64(w), b is not None)
    dx, dw, db = CUDA_BWD(c(gy), c(x), c(mean), c(rstd), c(w), b is not None)
    assert_close(dx, rdx, dtype, 20)
    assert_close(dw, rdw, dtype, 4)
    assert_close(db, rdb, dtype, 4)


def test_cuda_rows_longer_than_the_block(rng):
    """The default block size (128) with rows of 130 columns."""
    assert L.CUDA_BLOCK == 128
    x, w, b, gy = make(rng, 1, 130, np.float32, True, True)
    (ry, rmean, rrstd), _ = expected(x, w, b, gy, 1e-5)
    y, mean, rstd = CUDA_FWD(to_cuda(x), to_cuda(w), to_cuda(b), 1e-5)
    assert_close(y, ry, np.float32, 4)
    rdx, rdw, rdb = REF_BWD(f64(gy), f64(x), f64(to_host(mean)), f64(to_host(rstd)), f64(w), True)
    dx, dw, db = CUDA_BWD(to_cuda(gy), to_cuda(x), mean, rstd, to_cuda(w), True)
    assert_close(dx, rdx, np.float32, 20)
    assert_close(dw, rdw, np.float32, 4)
    assert_close(db, rdb, np.float32, 4)
