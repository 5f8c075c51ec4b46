"""Convolution on AMX tiles (``kernels/conv/amx.py``): forward, input and weight gradients
against the float64 reference on odd shapes, the dispatch from ``cpu.py``, and the fallback
when an input is not fit for the tiles. Runs only where AMX is usable; elsewhere the module
is skipped with the reason (``cpu.py``'s own kernels are tested in test_conv_kernels.py)."""
import contextlib

import numba
import numpy as np
import pytest

from tinymm.kernels.attention import _amx
from tinymm.kernels.conv import amx as A
from tinymm.kernels.conv import cpu, reference_backward, reference_forward

pytestmark = pytest.mark.skipif(not _amx.available(), reason="AMX not usable here (CPU, OS or Numba target)")


@pytest.fixture(autouse=True)
def small_convolutions_too(monkeypatch):
    """The tiles for these small cases too (by default they start at MIN_MULTIPLY_ADDS)."""
    monkeypatch.setattr(A, "MIN_MULTIPLY_ADDS", 0)

# (B, C, H, W, O, kh, kw, ((pt, pb), (pl, pr))): sizes off 16, asymmetric and zero padding,
# 1x1, non-square kernels, one image, more images than threads
CASES = [
    (2, 64, 32, 32, 64, 3, 3, ((1, 1), (1, 1))),
    (3, 32, 7, 9, 96, 3, 3, ((1, 1), (1, 1))),
    (1, 64, 5, 5, 64, 5, 5, ((2, 2), (2, 2))),
    (2, 96, 12, 20, 32, 1, 1, ((0, 0), (0, 0))),
    (1, 96, 8, 8, 64, 3, 3, ((0, 0), (0, 0))),
    (5, 32, 6, 11, 96, 3, 3, ((2, 0), (1, 1))),
    (1, 64, 17, 3, 64, 3, 2, ((1, 1), (0, 1))),
    (2, 64, 1, 40, 64, 1, 5, ((0, 0), (2, 2))),  # conv1d
]


def _case(B, C, H, W, O, kh, kw, pads, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, C, H, W)).astype(np.float32)
    w = (rng.standard_normal((O, C, kh, kw)) / np.sqrt(C * kh * kw)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    y64 = reference_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), (1, 1), pads, (1, 1), 1)
    dy = rng.standard_normal(y64.shape).astype(np.float32)
    grads64 = reference_backward(x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64), (1, 1), pads,
                                 (1, 1), 1, True)
    return x, w, b, dy, y64, grads64


@contextlib.contextmanager
def _threads_for(B):
    """At most B Numba threads: the tiles take work only when every thread has an image."""
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(B, before)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _close(got, want, tol=2e-6):
    assert got is not None and got.shape == want.shape
    assert np.abs(got - want).max() <= tol * np.abs(want).max()


@pytest.mark.parametrize("case", CASES)
def test_forward_and_gradients_match_reference(case):
    *shape, pads = case
    x, w, b, dy, y64, (dx64, dw64, db64) = _case(*shape, pads)
    with _threads_for(shape[0]):
        _close(A.amx_conv(x, w, b, (1, 1), pads), y64)
        _close(A.amx_input_grad(x.shape, w, dy, pads), dx64)
        dw, db = A.amx_weight_grad(x, w.shape, dy, pads)
    _close(dw, dw64)
    _close(db, db64)


@pytest.mark.parametrize("case", CASES[:3])
def test_cpu_kernels_take_the_tiles_and_agree(case):
    *shape, pads = case
    x, w, b, dy, y64, (dx64, dw64, db64) = _case(*shape, pads, seed=1)
    with _threads_for(shape[0]):
        assert A.amx_conv(x, w, b, (1, 1), pads) is not None  # (these go to the tiles)
        _close(cpu.cpu_forward(x, w, b, (1, 1), pads), y64)
        for got, want in zip(cpu.cpu_backward(x, w, dy, (1, 1), pads), (dx64, dw64, db64)):
            _close(got, want)
        dx, dw, db = cpu.cpu_backward(x, w, dy, (1, 1), pads, has_bias=False, need_input=False)
    assert dx is None and db is None
    _close(dw, dw64)


def test_where_the_tiles_do_not_apply(monkeypatch):
    x, w, b, dy, *_ = _case(2, 64, 8, 8, 64, 3, 3, ((1, 1), (1, 1)))
    assert A.amx_conv(x, w, b, (2, 2), ((1, 1), (1, 1))) is None  # stride
    assert A.amx_conv(x, w, b, (1, 1), ((1, 1), (1, 1)), (2, 2)) is None  # dilation
    assert A.amx_conv(x.astype(np.float64), w.astype(np.float64), None, (1, 1), ((1, 1), (1, 1))) is None
    assert A.amx_conv(x[:, :48], w[:, :48], b, (1, 1), ((1, 1), (1, 1))) is None  # C not a multiple of 32
    assert A.amx_conv(x, w, b, (1, 1), ((3, 3), (1, 1))) is None  # padding past the kernel
    assert not A.worth_it(16, 32) and not A.worth_it(32, 32) and A.worth_it(32, 64) and A.worth_it(64, 64)
    if numba.get_num_threads() > 1:  # fewer images than threads: the other kernels
        assert A.amx_conv(x[:1], w, b, (1, 1), ((1, 1), (1, 1))) is None
    monkeypatch.setattr(A, "MIN_MULTIPLY_ADDS", 1 << 27)  # too little work
    assert A.amx_conv(x, w, b, (1, 1), ((1, 1), (1, 1))) is None
    assert A.amx_weight_grad(x, w.shape, dy, ((1, 1), (1, 1))) is None


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e-30, 2.0**70])
def test_inputs_unfit_for_the_tiles_go_to_the_other_kernels(bad):
    pads = ((1, 1), (1, 1))
    x, w, b, dy, *_ = _case(2, 64, 8, 8, 64, 3, 3, pads)
    if bad == 1e-30:
        x = x * np.float32(bad)
    else:
        x[1, 3, 4, 5] = bad
    assert A.amx_conv(x, w, b, (1, 1), pads) is None
    assert A.amx_weight_grad(x, w.shape, dy, pads) is None
    want = cpu._cpu_backward_blas(x, w, dy, (1, 1), pads, (1, 1), 1, True, True, True)
    for got, ref in zip(cpu.cpu_backward(x, w, dy, (1, 1), pads), want):
        finite = np.isfinite(ref)
        np.testing.assert_array_equal(np.isfinite(got), finite)
        np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-5, atol=1e-5 * np.abs(ref[finite]).max())


def test_backward_mixes_the_tiles_and_the_other_kernels(monkeypatch):
    """Weights too large for the forward's and dx's tiles (MAX_WEIGHT_PIECE_BYTES), dw still
    on them: dx from the other kernels alone, both right."""
    pads = ((1, 1), (1, 1))
    shape = (2, 64, 9, 7, 96, 3, 3)
    x, w, b, dy, y64, (dx64, dw64, db64) = _case(*shape, pads, seed=2)
    monkeypatch.setattr(A, "MAX_WEIGHT_PIECE_BYTES", 1024)
    with _threads_for(shape[0]):
        assert A.amx_input_grad(x.shape, w, dy, pads) is None
        assert A.amx_weight_grad(x, w.shape, dy, pads) is not None
        for got, want in zip(cpu.cpu_backward(x, w, dy, (1, 1), pads), (dx64, dw64, db64)):
            _close(got, want)
        dx, dw, db = cpu.cpu_backward(x, w, dy, (1, 1), pads, has_bias=False, need_weight=False)
    _close(dx, dx64)
    assert dw is None and db is None
