"""kernels/batchnorm.py: reference vs finite differences and PyTorch; CPU and CUDA vs reference.

Both modes are covered: batch statistics (training, with and without running statistics to
update) and running statistics (eval). The fast kernels are compared with the reference
evaluated in float64 on the same inputs.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cuda_helpers import to_cuda, to_host
from helpers import TORCH_REASON, torch
from numeric import numeric_grad
from tinymm.kernels import batchnorm as K

DTYPES = [np.float32, np.float64]
AFFINE = [(True, True), (True, False), (False, True), (False, False)]  # (weight, bias)
# (training, running statistics given)
MODES = [(True, True), (True, False), (False, True)]


def tol(dtype, scale=1.0):
    if np.dtype(dtype) == np.float32:
        return dict(rtol=2e-5, atol=2e-5 * scale)
    return dict(rtol=1e-10, atol=1e-11 * scale)


def make(rng, shape, dtype, has_w, has_b, offset=0.0):
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + offset).astype(dtype)
    w = rng.standard_normal(c).astype(dtype) if has_w else None
    b = rng.standard_normal(c).astype(dtype) if has_b else None
    rm = rng.standard_normal(c).astype(dtype)
    rv = rng.uniform(0.5, 2.0, c).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    return x, w, b, rm, rv, gy


def f64(a):
    return None if a is None else a.astype(np.float64)


# ----------------------------------------------------------------------------- reference vs finite differences


@pytest.mark.parametrize("has_w,has_b", AFFINE)
@pytest.mark.parametrize("training", [True, False])
def test_reference_backward_matches_finite_differences(rng, has_w, has_b, training):
    x, w, b, rm, rv, gy = make(rng, (3, 2, 4), np.float64, has_w, has_b)
    eps = 1e-3

    # training: batch statistics, no running ones to update; eval: the running ones, only read
    running = (None, None) if training else (rm, rv)

    def loss():
        return float((K.reference_forward(x, w, b, *running, training, eps=eps)[0] * gy).sum())

    _, mean, rstd = K.reference_forward(x, w, b, *running, training, eps=eps)
    dx, dw, db = K.reference_backward(gy, x, mean, rstd, w, batch_stats=training)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-8)
    if has_w:
        np.testing.assert_allclose(dw, numeric_grad(loss, w), rtol=1e-6, atol=1e-8)
    if has_b:
        np.testing.assert_allclose(db, numeric_grad(loss, b), rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- reference vs PyTorch


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
@pytest.mark.parametrize("training,with_running", MODES)
@pytest.mark.parametrize("shape", [(5, 3, 1), (4, 3, 7)])
def test_reference_matches_torch(rng, training, with_running, shape):
    x, w, b, rm, rv, gy = make(rng, shape, np.float64, True, True, offset=3.0)
    rm_t, rv_t = torch.tensor(rm), torch.tensor(rv)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.batch_norm(xt, rm_t if with_running else None, rv_t if with_running else None, wt, bt,
                                        training, 0.3, 1e-5)
    yt.backward(torch.tensor(gy))
    y, mean, rstd = K.reference_forward(x, w, b, rm if with_running else None, rv if with_running else None,
                                        training, 0.3, 1e-5)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rm, rm_t.detach().numpy(), rtol=1e-12, atol=1e-14)  # updated in place (unbiased var)
    np.testing.assert_allclose(rv, rv_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    dx, dw, db = K.reference_backward(gy, x, mean, rstd, w, batch_stats=training or not with_running)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(dw, wt.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-9, atol=1e-11)


# ----------------------------------------------------------------------------- fast kernels vs reference


def check(impl, shape, dtype, affine, mode, offset, seed, put=lambda a: a):
    training, with_running = mode
    rng = np.random.default_rng(seed)
    x, w, b, rm, rv, gy = make(rng, shape, dtype, *affine, offset=offset)
    if not with_running:
        rm = rv = None
    ref_rm, ref_rv = f64(rm), f64(rv)
    ry, rmean, rrstd = K.reference_forward(f64(x), f64(w), f64(b), ref_rm, ref_rv, training, 0.1, 1e-5)
    dev_rm, dev_rv = put(rm), put(rv)
    y, mean, rstd = K.forward(put(x), put(w), put(b), dev_rm, dev_rv, training, 0.1, 1e-5, impl=impl)
    scale = 1 + offset
    for got, want, s in ((y, ry, 4), (mean, rmean, scale), (rstd, rrstd, 1)):
        got = to_host(got)
        assert got.dtype == np.dtype(dtype) and got.shape == want.shape
        np.testing.assert_allclose(got, want, **tol(dtype, s))
    if with_running:
        np.testing.assert_allclose(to_host(dev_rm), ref_rm, **tol(dtype, scale))
        np.testing.assert_allclose(to_host(dev_rv), ref_rv, **tol(dtype, scale * scale))
    # backward from the kernel's own saved statistics, against the reference given the same
    batch_stats = training or not with_running
    grads = K.backward(put(gy), put(x), mean, rstd, put(w), batch_stats, impl=impl)
    want = K.reference_backward(f64(gy), f64(x), f64(to_host(mean)), f64(to_host(rstd)), f64(w), batch_stats)
    m = shape[0] * shape[2]
    for got, exp, s in zip(grads, want, (4, m * scale, m)):
        got = to_host(got)
        assert got.dtype == np.dtype(dtype) and got.shape == exp.shape
        np.testing.assert_allclose(got, exp, **tol(dtype, s))


@given(shape=st.tuples(st.integers(2, 9), st.integers(1, 6), st.integers(1, 40)), dtype=st.sampled_from(DTYPES),
       affine=st.sampled_from(AFFINE), mode=st.sampled_from(MODES), offset=st.sampled_from([0.0, 20.0]),
       seed=st.integers(0, 2**32 - 1))
def test_cpu_matches_reference(shape, dtype, affine, mode, offset, seed):
    check("cpu", shape, dtype, affine, mode, offset, seed)


@pytest.mark.parametrize("affine", AFFINE)
@pytest.mark.parametrize("mode", MODES)
def test_cpu_rows_path_matches_reference(affine, mode):
    """(N, C) inputs (S = 1) run their own loops, in row order."""
    check("cpu", (7, 5, 1), np.float32, affine, mode, 10.0, 11)
    check("cpu", (2, 3, 1), np.float64, affine, mode, 0.0, 12)


def test_cpu_parallel_loops_match_serial(monkeypatch):
    monkeypatch.setattr(K, "CPU_PARALLEL_MIN_ELEMENTS", 0)
    for mode in MODES:
        check("cpu", (4, 5, 33), np.float32, (True, True), mode, 5.0, 3)


def test_dispatch_rejects_unknown_impl(rng):
    x = rng.standard_normal((2, 3, 4))
    with pytest.raises(ValueError, match="impl"):
        K.forward(x, impl="gpu")


# The simulator runs every CUDA thread as a Python thread: tiny shapes only.
@settings(max_examples=8)
@given(shape=st.tuples(st.integers(2, 4), st.integers(1, 3), st.integers(1, 9)), dtype=st.sampled_from(DTYPES),
       affine=st.sampled_from(AFFINE), mode=st.sampled_from(MODES), seed=st.integers(0, 2**32 - 1))
def test_cuda_matches_reference(shape, dtype, affine, mode, seed):
    check("cuda", shape, dtype, affine, mode, 3.0, seed, put=to_cuda)
