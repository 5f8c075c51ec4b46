"""kernels/conv: the reference against finite differences and PyTorch; the CPU kernels (both
strategies, serial and parallel) against the reference on hypothesis-drawn shapes.

The fast kernels are compared with the reference evaluated in float64 on the same inputs:
float32 within a tolerance scaled by the size of the sums, float64 tightly.
"""
import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numeric import numeric_grad
from tinymm.kernels import conv as K
from tinymm.kernels.conv import cpu

DTYPES = [np.float32, np.float64]


# ----------------------------------------------------------------------------- shared helpers


def geometry(stride=1, padding=0, dilation=1, groups=1):
    """The kernels' (stride, padding, dilation, groups) from ints, pairs or ((t, b), (l, r))."""
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    pads = padding if isinstance(padding, tuple) and isinstance(padding[0], tuple) else tuple((p, p) for p in pair(padding))
    return pair(stride), pads, pair(dilation), groups


@st.composite
def conv_case(draw, max_batch=4, max_channels=6, max_size=17, max_kernel=5, max_stride=3, max_dilation=3):
    """(B, C, H, W, O, kh, kw, geometry, has_bias, seed): groups divide the channels (depthwise
    included), padding is symmetric, asymmetric ("same" for an even kernel) or none, sizes are
    raised just enough for the dilated kernel to fit the padded input. H = kh = 1 is conv1d."""
    B = draw(st.integers(1, max_batch))
    groups = draw(st.integers(1, max_channels))
    Cg = draw(st.integers(1, max_channels // groups))
    Og = draw(st.integers(1, max_channels // groups))
    one_d = draw(st.booleans())
    kh = 1 if one_d else draw(st.integers(1, max_kernel))
    kw = draw(st.integers(1, max_kernel))
    dh = 1 if one_d else draw(st.integers(1, max_dilation))
    dw = draw(st.integers(1, max_dilation))
    kind = draw(st.sampled_from(["zero", "symmetric", "same"]))
    if kind == "same":  # PyTorch's "same": stride 1, total d (k - 1), the odd one after
        sh = sw = 1
        th, tw = dh * (kh - 1), dw * (kw - 1)
        pads = ((th // 2, th - th // 2), (tw // 2, tw - tw // 2))
    else:
        sh = 1 if one_d else draw(st.integers(1, max_stride))
        sw = draw(st.integers(1, max_stride))
        ph = 0 if one_d or kind == "zero" else draw(st.integers(0, 3))
        pw = 0 if kind == "zero" else draw(st.integers(0, 3))
        pads = ((ph, ph), (pw, pw))
    H = 1 if one_d else draw(st.integers(1, max_size))
    W = draw(st.integers(1, max_size))
    H = max(H, dh * (kh - 1) + 1 - sum(pads[0]))
    W = max(W, dw * (kw - 1) + 1 - sum(pads[1]))
    has_bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    return B, groups * Cg, H, W, groups * Og, kh, kw, ((sh, sw), pads, (dh, dw), groups), has_bias, seed


def make(rng, B, C, H, W, O, kh, kw, geom, has_bias, dtype):
    """x, w, bias, dy for one case (dy shaped like the output)."""
    groups = geom[3]
    x = rng.standard_normal((B, C, H, W)).astype(dtype)
    w = rng.standard_normal((O, C // groups, kh, kw)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype) if has_bias else None
    (sh, sw), ((pt, pb), (pl, pr)), (dh, dw), _ = geom
    Ho = K.output_size(H, kh, sh, dh, pt, pb)
    Wo = K.output_size(W, kw, sw, dw, pl, pr)
    dy = rng.standard_normal((B, O, Ho, Wo)).astype(dtype)
    return x, w, b, dy


def f64(a):
    return None if a is None else a.astype(np.float64)


def assert_close(name, got, want, dtype, terms):
    """float32: error bounded by the size of the sums (``terms`` products of N(0, 1) numbers)."""
    assert got.dtype == np.dtype(dtype), f"{name}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
    if np.dtype(dtype) == np.float32:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-6 * max(1, terms), err_msg=name)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-11 * max(1, terms), err_msg=name)


def check_against_reference(forward, backward, case, dtype, to_device=lambda a: a, to_host=lambda a: a):
    """forward and backward of one implementation against the float64 reference."""
    B, C, H, W, O, kh, kw, geom, has_bias, seed = case
    rng = np.random.default_rng(seed)
    x, w, b, dy = make(rng, B, C, H, W, O, kh, kw, geom, has_bias, dtype)
    want_y = K.reference_forward(f64(x), f64(w), f64(b), *geom)
    want_dx, want_dw, want_db = K.reference_backward(f64(x), f64(w), f64(dy), *geom, has_bias=has_bias)
    dev = [to_device(a) for a in (x, w, b, dy)]
    y = to_host(forward(dev[0], dev[1], dev[2], *geom))
    Cg, Og = C // geom[3], O // geom[3]
    sum_terms = Cg * kh * kw
    assert_close("y", y, want_y, dtype, sum_terms)
    dx, dw, db = (to_host(a) for a in backward(dev[0], dev[1], dev[3], *geom, has_bias=has_bias))
    assert_close("dx", dx, want_dx, dtype, Og * kh * kw)
    assert_close("dw", dw, want_dw, dtype, B * dy.shape[2] * dy.shape[3])
    if has_bias:
        assert_close("db", db, want_db, dtype, B * dy.shape[2] * dy.shape[3])
    else:
        assert db is None


@contextlib.contextmanager
def cpu_strategy(direct, parallel, packed=None, shifted=False):
    """Force the CPU kernels' choices: direct loop or im2col + GEMM, parallel or serial loops,
    (``packed``, None: the machine's default) the im2col products through the packed tile
    kernel (forward: im2col into panels; backward: dy's tile packed, from one panel of output
    channels up) or through BLAS, and (``shifted``) stride-1 convolutions of any size through
    the shifted kernels, which skip im2col (off by default, so that tests of the im2col path
    reach it whatever their shapes)."""
    saved = (cpu.DIRECT_MAX_CG_OG, cpu.CPU_PARALLEL_MIN_WORK, cpu.PACKED_FORWARD, cpu.PACKED_BACKWARD,
             cpu.SHIFTED, cpu.SHIFTED_BACKWARD_MIN_OG)
    cpu.DIRECT_MAX_CG_OG = 10**9 if direct else -1
    cpu.CPU_PARALLEL_MIN_WORK = 0 if parallel else 10**18
    if packed is not None:
        cpu.PACKED_FORWARD = cpu.PACKED_BACKWARD = packed
    cpu.SHIFTED = shifted
    cpu.SHIFTED_BACKWARD_MIN_OG = 0  # backward too, whatever the channel counts
    try:
        yield
    finally:
        (cpu.DIRECT_MAX_CG_OG, cpu.CPU_PARALLEL_MIN_WORK, cpu.PACKED_FORWARD, cpu.PACKED_BACKWARD,
         cpu.SHIFTED, cpu.SHIFTED_BACKWARD_MIN_OG) = saved


# ----------------------------------------------------------------------------- reference vs finite differences

FD_CASES = [  # (B, C, H, W, O, kh, kw, geometry)
    (2, 2, 5, 6, 3, 3, 3, geometry()),
    (1, 4, 6, 5, 2, 3, 2, geometry(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)),
    (2, 3, 4, 4, 3, 2, 2, geometry(padding=((0, 1), (0, 1)), groups=3)),  # "same" for k2, depthwise
    (1, 2, 1, 9, 4, 1, 3, geometry(stride=(1, 2), padding=((0, 0), (2, 2)), dilation=(1, 3))),  # conv1d
]


@pytest.mark.parametrize("B,C,H,W,O,kh,kw,geom", FD_CASES)
def test_reference_backward_matches_finite_differences(B, C, H, W, O, kh, kw, geom):
    rng = np.random.default_rng(3)
    x, w, b, dy = make(rng, B, C, H, W, O, kh, kw, geom, True, np.float64)

    def loss():
        return float((K.reference_forward(x, w, b, *geom) * dy).sum())

    dx, dw, db = K.reference_backward(x, w, dy, *geom)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dw, numeric_grad(loss, w), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, numeric_grad(loss, b), rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- reference vs PyTorch


@pytest.mark.parametrize("B,C,H,W,O,kh,kw,geom", FD_CASES)
def test_reference_matches_torch(B, C, H, W, O, kh, kw, geom):
    torch = pytest.importorskip("torch", reason="PyTorch (dev extra) is not installed")
    rng = np.random.default_rng(4)
    x, w, b, dy = make(rng, B, C, H, W, O, kh, kw, geom, True, np.float64)
    stride, ((pt, pb), (pl, pr)), dilation, groups = geom
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    padded = torch.nn.functional.pad(xt, (pl, pr, pt, pb))  # torch's conv pads symmetrically only
    yt = torch.nn.functional.conv2d(padded, wt, bt, stride, 0, dilation, groups)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(K.reference_forward(x, w, b, *geom), yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    dx, dw, db = K.reference_backward(x, w, dy, *geom)
    for got, want in ((dx, xt.grad), (dw, wt.grad), (db, bt.grad)):
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- CPU kernels vs reference


@settings(max_examples=40)
@given(conv_case(), st.sampled_from(DTYPES), st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_cpu_matches_reference(case, dtype, direct, parallel, packed, shifted):
    with cpu_strategy(direct, parallel, packed, shifted):
        check_against_reference(K.forward, K.backward, case, dtype)


SHIFTED_CASES = [  # (B, C, H, W, O, kh, kw, geometry): sizes off every tile multiple
    (3, 16, 16, 16, 32, 3, 3, geometry(padding=1)),          # the seed's second layer, smaller batch
    (2, 9, 7, 11, 13, 3, 3, geometry(padding=1)),            # rows not a multiple of MR, Q not of NR
    (2, 12, 9, 10, 10, 3, 5, geometry(padding=((2, 1), (0, 3)), dilation=(2, 1))),
    (4, 32, 13, 9, 24, 3, 3, geometry(padding=((1, 1), (2, 0)), dilation=(1, 2), groups=2)),
    (3, 48, 12, 12, 63, 3, 3, geometry(padding=1, groups=3)),  # 21 output channels per group
    (2, 8, 6, 5, 70, 2, 2, geometry(padding=((1, 0), (1, 0)))),  # "same" for k2; 70 > 2 panels
    (2, 40, 1, 37, 64, 1, 5, geometry(padding=((0, 0), (2, 2)))),  # conv1d
    (2, 5, 4, 4, 3, 3, 3, geometry()),                       # no padding: output smaller than input
    (3, 16, 15, 16, 32, 3, 3, geometry(stride=2, padding=1)),  # the vqa backbone's layers
    (2, 8, 13, 11, 9, 3, 5, geometry(stride=(2, 3), padding=((2, 1), (0, 3)), dilation=(2, 1))),
    (3, 16, 9, 7, 12, 2, 2, geometry(stride=2, padding=((1, 0), (1, 0)), groups=2)),
    (2, 9, 8, 8, 40, 1, 1, geometry(stride=2)),               # 3 of 4 phases without a tap
    (2, 3, 16, 16, 33, 4, 4, geometry(stride=4)),             # patches: one tap per phase
    (2, 5, 6, 7, 6, 3, 3, geometry(stride=(3, 2), padding=2, dilation=2)),  # phases without input rows
    (2, 40, 1, 37, 64, 1, 5, geometry(stride=(1, 2), padding=((0, 0), (2, 2)), dilation=(1, 3))),
    (3, 8, 9, 11, 8, 3, 3, geometry(padding=1, groups=8)),   # depthwise (one-row tiles)
    (2, 6, 9, 8, 12, 5, 5, geometry(stride=2, padding=2, groups=6)),  # depthwise, 2 outputs each
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,C,H,W,O,kh,kw,geom", SHIFTED_CASES)
def test_shifted_matches_reference(dtype, B, C, H, W, O, kh, kw, geom):
    """The shifted kernels (no im2col) against the reference: forward and every gradient,
    both loop versions, then each gradient alone."""
    for parallel in (False, True):
        with cpu_strategy(direct=False, parallel=parallel, shifted=True):
            assert cpu.use_shifted(B, 2 if parallel else 1, C // geom[3], O // geom[3], dtype)
            check_against_reference(K.forward, K.backward, (B, C, H, W, O, kh, kw, geom, True, B + C), dtype)
    rng = np.random.default_rng(C + O)
    x, w, b, dy = make(rng, B, C, H, W, O, kh, kw, geom, False, dtype)
    want = K.reference_backward(f64(x), f64(w), f64(dy), *geom, has_bias=False)
    with cpu_strategy(direct=False, parallel=True, shifted=True):
        dx, dw_only, db = K.backward(x, w, dy, *geom, has_bias=False, need_input=False, need_weight=True)
        assert dx is None and db is None
        assert_close("dw alone", dw_only, want[1], dtype, B * dy.shape[2] * dy.shape[3])
        dx_only, dw, db = K.backward(x, w, dy, *geom, has_bias=True, need_input=True, need_weight=False)
        assert dw is None
        assert_close("dx alone", dx_only, want[0], dtype, (O // geom[3]) * kh * kw)
        assert_close("db without dw", db, dy.astype(np.float64).sum(axis=(0, 2, 3)), dtype, B * dy.shape[2] * dy.shape[3])


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_with_the_machines_defaults(parallel, stride):
    """With the defaults a depthwise convolution runs its forward shifted, and its backward
    shifted at stride 1 (dw by dot products) and through the direct loops at stride 2; each
    with a channel multiplier of 1 and 2; all match the reference."""
    for O in (16, 32):
        with cpu_strategy(direct=True, parallel=parallel, shifted=True):
            cpu.DIRECT_MAX_CG_OG, cpu.SHIFTED_BACKWARD_MIN_OG = 4, 1
            threads = 2 if parallel else 1
            assert cpu.use_shifted(3, threads) and cpu.use_direct(1, O // 16)
            assert cpu.use_shifted(3, threads, 1, O // 16, np.float64, (stride, stride)) == (stride == 1)
            check_against_reference(K.forward, K.backward,
                                    (3, 16, 10, 9, O, 3, 3, geometry(stride=stride, padding=1, groups=16), True, 5),
                                    np.float64)


def test_shifted_only_where_it_applies():
    """An image for every thread; backward only from a panel of output channels and MR input
    channels per group; otherwise the im2col path, with the same results."""
    nr = cpu.panel_width(np.float32)
    with cpu_strategy(direct=False, parallel=True, shifted=True):
        assert cpu.use_shifted(4, 2) and cpu.use_shifted(4, 2, 3, 1, np.float32)
        cpu.SHIFTED_BACKWARD_MIN_OG = 1
        assert cpu.use_shifted(4, 2, cpu.MR, nr, np.float32)
        assert not cpu.use_shifted(4, 2, cpu.MR, nr - 1, np.float32)
        assert not cpu.use_shifted(4, 2, cpu.MR - 1, nr, np.float32)
        assert not cpu.use_shifted(1, 2)
        cpu.SHIFTED = False
        assert not cpu.use_shifted(4, 2)
