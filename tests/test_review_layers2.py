"""Regressions from a second hostile review of the layers against PyTorch (branch revd).

Each test runs the same call in torch and tinymm and compares values, gradients, or the
exception class on bad input; shapes are tiny (CI time).
"""
from __future__ import annotations

import numpy as np
import pytest

import tinymm as tm
import tinymm.nn as mnn
import tinymm.nn.functional as MF

from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

if torch is not None:
    import torch.nn as tnn
    import torch.nn.functional as TF


def _x(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _both(tcall, mcall, *arrays, atol=1e-5):
    """tcall/mcall on the same arrays (all requiring grad): values and gradients agree."""
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ms = [tm.tensor(a, requires_grad=True) for a in arrays]
    tout, mout = tcall(*ts), mcall(*ms)
    np.testing.assert_allclose(mout.detach().numpy(), tout.detach().numpy(), atol=atol, rtol=1e-4)
    r = np.random.default_rng(1).standard_normal(tuple(tout.shape)).astype(arrays[0].dtype)
    (tout * torch.tensor(r)).sum().backward()
    (mout * tm.tensor(r)).sum().backward()
    for t, m in zip(ts, ms):
        np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), atol=atol * 10, rtol=1e-4)
    return mout


# ----------------------------------------------------------------------------- losses


@pytest.mark.parametrize("dtype", [np.int32, np.int16, np.int8, np.bool_])
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_class_index_targets_must_be_int64_or_uint8(loss, dtype):
    x, t = _x(3, 4), np.array([1, 0, 1]).astype(dtype)
    with pytest.raises(RuntimeError, match="Long or Byte") as err:
        getattr(TF, loss)(torch.tensor(x), torch.tensor(t))
    with pytest.raises(type(err.value), match="Long or Byte.*" + np.dtype(dtype).name):
        getattr(MF, loss)(tm.tensor(x), tm.tensor(t))


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_uint8_class_index_targets_work(loss):
    t = np.array([1, 0, 3], np.uint8)
    _both(lambda x: getattr(TF, loss)(x, torch.tensor(t)), lambda x: getattr(MF, loss)(x, tm.tensor(t)), _x(3, 4))


# ----------------------------------------------------------------------------- embedding bag


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding_idx", [None, 5])
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_last_offset_short_of_the_input(mode, padding_idx, dtype):
    """offsets[-1] < len(input): PyTorch's last bag runs to the end of the input, except its
    float32 sum/mean (no padding_idx) that adds rows only up to offsets[-1] (a mean still
    divides by the count up to the end; those gradients are uninitialised memory in torch)."""
    idx, off = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3]), np.array([0, 3, 4, 6])
    kw = dict(mode=mode, include_last_offset=True, padding_idx=padding_idx)
    tcall = lambda w: TF.embedding_bag(torch.tensor(idx), w, torch.tensor(off), **kw)
    mcall = lambda w: MF.embedding_bag(tm.tensor(idx), w, tm.tensor(off), **kw)
    w = _x(12, 3, dtype=dtype)
    if dtype == np.float32 and padding_idx is None and mode != "max":
        want = tcall(torch.tensor(w)).detach().numpy()
        np.testing.assert_allclose(mcall(tm.tensor(w)).detach().numpy(), want, rtol=1e-6, atol=1e-6)
    else:
        _both(tcall, mcall, w)


def test_embedding_bag_offsets_errors_are_runtime_errors():
    idx, w = tm.tensor(np.arange(4)), tm.tensor(_x(5, 2))
    for off, last in (([1, 3], False), ([0, 5], True), ([], True)):
        with pytest.raises(RuntimeError):
            TF.embedding_bag(torch.arange(4), torch.tensor(_x(5, 2)), torch.tensor(off, dtype=torch.long),
                             include_last_offset=last)
        with pytest.raises(RuntimeError):
            MF.embedding_bag(idx, w, tm.tensor(np.array(off, np.int64)), include_last_offset=last)


# ----------------------------------------------------------------------------- interpolate


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("kw", [dict(size=(3, 5)), dict(size=(11, 4)), dict(scale_factor=(0.3, 0.6)),
                                dict(size=(2, 3), align_corners=True)])
def test_interpolate_antialias_matches_torch(mode, kw):
    """PyTorch's antialias filter widens with the downsampling factor (and is Keys' A = −0.5
    cubic for bicubic); float64 pins the weights, float32 the usual tolerance."""
    for dtype, atol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        _both(lambda x: TF.interpolate(x, mode=mode, antialias=True, **kw),
              lambda x: MF.interpolate(x, mode=mode, antialias=True, **kw), _x(2, 2, 9, 7, dtype=dtype), atol=atol)


@pytest.mark.parametrize("mode,ndim", [("nearest", 4), ("area", 4), ("linear", 3), ("trilinear", 5)])
def test_interpolate_antialias_other_modes_raise(mode, ndim):
    x = _x(*(1, 1) + (4,) * (ndim - 2))
    with pytest.raises(ValueError) as err:
        TF.interpolate(torch.tensor(x), scale_factor=0.5, mode=mode, antialias=True)
    with pytest.raises(type(err.value), match="anti-alias"):
        MF.interpolate(tm.tensor(x), scale_factor=0.5, mode=mode, antialias=True)


# ----------------------------------------------------------------------------- packing


@pytest.mark.parametrize("lengths", [[4.0, 2.0, 1.0], [3.7, 2, 1], "float_tensor", "bool_tensor", "int32_array"])
def test_pack_padded_sequence_accepts_what_torch_accepts(lengths):
    """PyTorch converts lengths to int64 (floats truncate toward zero, bools are 0/1)."""
    from torch.nn.utils.rnn import pack_padded_sequence as tpack
    from tinymm.nn.utils.rnn import pack_padded_sequence as mpack

    arrays = {"float_tensor": np.array([4.9, 2.0, 1.0]), "bool_tensor": np.array([True, True, True]),
              "int32_array": np.array([4, 2, 1], np.int32)}
    if isinstance(lengths, str):
        tl, ml = torch.tensor(arrays[lengths]), tm.tensor(arrays[lengths])
    else:
        tl = ml = lengths
    x = _x(4, 3, 2)
    tp, mp = tpack(torch.tensor(x), tl), mpack(tm.tensor(x), ml)
    assert mp.batch_sizes.tolist() == tp.batch_sizes.tolist()
    np.testing.assert_array_equal(mp.data.detach().numpy(), tp.data.detach().numpy())


@pytest.mark.parametrize("shape,lengths", [((4,), [4]), ((4, 0, 2), []), ((0, 2, 2), [0, 0]), ((4, 3, 0), [4, 2, 1]),
                                           ((4, 3, 2), [4, 2, 0]), ((4, 3, 2), [[4, 2, 1]]), ((4, 3, 2), [4, 2])])
def test_pack_padded_sequence_rejects_what_torch_rejects(shape, lengths):
    from torch.nn.utils.rnn import pack_padded_sequence as tpack
    from tinymm.nn.utils.rnn import pack_padded_sequence as mpack

    with pytest.raises(Exception) as err:
        tpack(torch.zeros(shape), lengths)
    with pytest.raises(type(err.value)):
        mpack(tm.zeros(*shape), lengths)


# ----------------------------------------------------------------------------- transposed convolution


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("spatial,padding", [(2, 0), (2, 1), (0, 0)])
def test_conv_transpose_empty_batch_gives_empty_output(n, spatial, padding):
    """An empty batch is fine in PyTorch, even when the output planes come out empty."""
    tmod = getattr(tnn, f"ConvTranspose{n}d")(2, 3, 1, padding=padding)
    mmod = getattr(mnn, f"ConvTranspose{n}d")(2, 3, 1, padding=padding)
    x = np.zeros((0, 2) + (spatial,) * n, np.float32)
    tout, mout = tmod(torch.tensor(x)), mmod(tm.tensor(x))
    assert tuple(mout.shape) == tuple(tout.shape)
    tout.sum().backward()
    mout.sum().backward()
    np.testing.assert_array_equal(mmod.weight.grad.numpy(), tmod.weight.grad.numpy())


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("xshape,wshape", [((1, 2, 0), (2, 3, 1)), ((2, 0), (2, 3, 1)), ((1, 0, 2), (0, 3, 1)),
                                           ((1, 2, 2), (2, 0, 1)), ((1, 2, 2), (2, 3, 0))])
def test_conv_transpose_empty_input_or_weight_raises(n, xshape, wshape):
    xs = xshape + (xshape[-1],) * (n - 1)
    ws = wshape + (wshape[-1],) * (n - 1)
    with pytest.raises(RuntimeError):
        getattr(TF, f"conv_transpose{n}d")(torch.zeros(xs), torch.zeros(ws))
    with pytest.raises(RuntimeError):
        getattr(MF, f"conv_transpose{n}d")(tm.zeros(*xs), tm.zeros(*ws))


def test_conv_transpose3d_names_itself_on_an_empty_plane_output():
    x, w = tm.zeros(1, 2, 2, 2, 2), tm.zeros(2, 3, 1, 1, 1)
    with pytest.raises(RuntimeError, match="conv_transpose3d.*size"):
        MF.conv_transpose3d(x, w, padding=(0, 0, 1))


# ----------------------------------------------------------------------------- lp pooling


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("p", [2.0, 1.5, 3.0])
def test_lp_pool_zero_windows_have_torch_gradients(nd, p):
    """A window of zeros: PyTorch's relu backward masks the infinite d(out^(1/p)) away (0,
    not NaN); a negative sum with an odd p stays NaN in both."""
    x = _x(1, 2, *(1,) * (nd - 1), 6, dtype=np.float64)
    x[0, 0, ..., :2] = 0
    x[0, 1, ..., 2:4] = 0
    k = 2 if nd == 1 else (1, 2)
    ts, ms = torch.tensor(x, requires_grad=True), tm.tensor(x, requires_grad=True)
    tout, mout = getattr(TF, f"lp_pool{nd}d")(ts, p, k), getattr(MF, f"lp_pool{nd}d")(ms, p, k)
    np.testing.assert_allclose(mout.detach().numpy(), tout.detach().numpy(), rtol=1e-12)
    tout.sum().backward()
    mout.sum().backward()
    np.testing.assert_allclose(ms.grad.numpy(), ts.grad.numpy(), rtol=1e-12)
    assert np.isfinite(ms.grad.numpy()[0, 0, ..., :2]).all()


def test_relu_gradient_masks_nonfinite_upstream_like_torch():
    x = np.array([0.0, 1.0, -1.0])
    up = np.array([np.inf, 2.0, np.nan])
    ts, ms = torch.tensor(x, requires_grad=True), tm.tensor(x, requires_grad=True)
    (torch.relu(ts) * torch.tensor(up)).sum().backward()
    (tm.relu(ms) * tm.tensor(up)).sum().backward()
    np.testing.assert_array_equal(ms.grad.numpy(), ts.grad.numpy())


# ----------------------------------------------------------------------------- max pooling


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kw", [dict(kernel_size=2, stride=2, padding=1, ceil_mode=True),
                                dict(kernel_size=2, stride=3, padding=1, ceil_mode=True),
                                dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)])
def test_max_pool_windows_reaching_into_padding(nd, kw):
    """ceil_mode drops a last window that would start in the right padding, as torch."""
    shape = (1, 2) + (3,) * (nd - 1) + (5,)
    _both(lambda x: getattr(TF, f"max_pool{nd}d")(x, **kw), lambda x: getattr(MF, f"max_pool{nd}d")(x, **kw), _x(*shape))


@pytest.mark.parametrize("nd", [2, 3])
def test_max_pool_window_all_in_padding_is_minus_inf(nd):
    """Dilation over a size-1 dim can put every tap of a window in the padding: torch gives
    -inf there (and its backward then aborts the process on an out-of-range index, so only
    the values are compared); tinymm's gradient for such windows is zero."""
    kw = dict(kernel_size=2, stride=2, padding=1, dilation=2, ceil_mode=True)
    x = _x(*(1, 1) + (1,) * (nd - 1) + (5,))
    want = getattr(TF, f"max_pool{nd}d")(torch.tensor(x), **kw).detach().numpy()
    mx = tm.tensor(x, requires_grad=True)
    got = getattr(MF, f"max_pool{nd}d")(mx, **kw)
    assert np.isneginf(want).all()
    np.testing.assert_array_equal(got.detach().numpy(), want)
    got.sum().backward()
    np.testing.assert_array_equal(mx.grad.numpy(), np.zeros_like(x))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_padding_over_half_the_kernel_raises(nd):
    x = _x(*(1, 1) + (5,) * nd)
    with pytest.raises(RuntimeError) as err:
        getattr(TF, f"max_pool{nd}d")(torch.tensor(x), 3, padding=2)
    with pytest.raises(type(err.value), match="padding"):
        getattr(MF, f"max_pool{nd}d")(tm.tensor(x), 3, padding=2)


# ----------------------------------------------------------------------------- constructor errors


_BAD_CONSTRUCTORS = {
    "Conv2d groups": lambda nn: nn.Conv2d(3, 4, 3, groups=2),
    "Conv2d negative channels": lambda nn: nn.Conv2d(-1, 4, 3),
    "ConvTranspose2d groups": lambda nn: nn.ConvTranspose2d(3, 4, 3, groups=2),
    "Linear negative": lambda nn: nn.Linear(-1, 3),
    "Bilinear negative": lambda nn: nn.Bilinear(2, -1, 3),
    "Embedding padding_idx": lambda nn: nn.Embedding(4, 2, padding_idx=4),
    "Embedding negative": lambda nn: nn.Embedding(-1, 2),
    "EmbeddingBag padding_idx": lambda nn: nn.EmbeddingBag(4, 2, padding_idx=-5),
    "MultiheadAttention heads": lambda nn: nn.MultiheadAttention(6, 4),
    "MultiheadAttention zero heads": lambda nn: nn.MultiheadAttention(6, 0),
    "TransformerEncoderLayer heads": lambda nn: nn.TransformerEncoderLayer(6, 4),
    "LayerNorm negative": lambda nn: nn.LayerNorm(-1),
    "RMSNorm negative": lambda nn: nn.RMSNorm(-1),
    "BatchNorm1d negative": lambda nn: nn.BatchNorm1d(-1),
    "GroupNorm groups": lambda nn: nn.GroupNorm(3, 4),
    "RNN float size": lambda nn: nn.RNN(2, 3.0),
    "LSTM zero hidden": lambda nn: nn.LSTM(2, 0),
    "GRU proj_size": lambda nn: nn.GRU(2, 3, proj_size=1),
    "RNN proj_size": lambda nn: nn.RNN(2, 3, proj_size=0),
    "ConstantPad2d no value": lambda nn: nn.ConstantPad2d(1),
}


@pytest.mark.parametrize("case", sorted(_BAD_CONSTRUCTORS))
def test_constructor_errors_have_torch_classes(case):
    with pytest.raises(Exception) as err:
        _BAD_CONSTRUCTORS[case](tnn)
    with pytest.raises(type(err.value)):
        _BAD_CONSTRUCTORS[case](mnn)


def test_constructors_torch_accepts():
    assert mnn.BatchNorm1d(0).num_features == tnn.BatchNorm1d(0).num_features == 0
    assert tuple(mnn.Linear(0, 3).weight.shape) == tuple(tnn.Linear(0, 3).weight.shape)


# ----------------------------------------------------------------------------- sparse embeddings


def test_sparse_embeddings_give_torchs_sparse_gradient_which_adam_refuses():
    """(probe8) torch's sparse=True gives a sparse weight.grad that Adam refuses; so does
    tinymm's, at every sparse=True entry point (tests/test_probe8_fixes.py has the rest)."""
    x = _x(5, 2)
    for lib, nn_, F_ in ((tm, mnn, MF), (torch, tnn, torch.nn.functional)):
        w, idx = lib.tensor(x), lib.tensor(np.array([1, 2, 1]))
        for make in (lambda: nn_.Embedding(5, 2, sparse=True), lambda: nn_.EmbeddingBag(5, 2, sparse=True),
                     lambda: nn_.EmbeddingBag.from_pretrained(w.clone(), sparse=True, freeze=False)):
            m = make()
            out = m(idx) if isinstance(m, nn_.Embedding) else m(idx, lib.tensor(np.array([0])))
            out.sum().backward()
            assert m.weight.grad.is_sparse
            with pytest.raises(RuntimeError, match="Adam does not support sparse gradients"):
                lib.optim.Adam(m.parameters()).step()
        for f in (lambda v: F_.embedding(idx, v, sparse=True),
                  lambda v: F_.embedding_bag(idx, v, lib.tensor(np.array([0])), mode="sum", sparse=True)):
            v = w.clone().requires_grad_(True)
            f(v).sum().backward()
            assert v.grad.is_sparse
            np.testing.assert_allclose(v.grad.to_dense().numpy(), [[0, 0], [2, 2], [1, 1], [0, 0], [0, 0]])


# ----------------------------------------------------------------------------- float16 (Module.half)


def _half_nets(lib):
    nn = lib.nn
    mlp = nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.GELU(), nn.Linear(8, 3), nn.LogSoftmax(-1))
    cnn = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 4, 1), nn.GroupNorm(2, 4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Softmax(-1))
    seq = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True)
    rnn = nn.LSTM(4, 3, batch_first=True)
    return {"mlp": (mlp, (3, 6)), "cnn": (cnn, (2, 2, 4, 4)), "transformer": (seq, (2, 3, 4)), "lstm": (rnn, (2, 3, 4))}


@pytest.mark.parametrize("net", ["mlp", "cnn", "transformer", "lstm"])
def test_half_modules_run_in_float16_like_torch(net):
    """Kernels without float16 run in float32 inside and round back, as PyTorch's CPU ones."""
    torch.manual_seed(0)
    tmod, shape = _half_nets(torch)[net]
    mmod, _ = _half_nets(tm)[net]
    mmod.load_state_dict({k: tm.tensor(v.detach().numpy().copy()) for k, v in tmod.state_dict().items()})
    tmod.half()
    mmod.half()
    x = _x(*shape, dtype=np.float16)
    tx, mx = torch.tensor(x, requires_grad=True), tm.tensor(x, requires_grad=True)
    tout, mout = tmod(tx), mmod(mx)
    tout, mout = (tout[0], mout[0]) if isinstance(tout, tuple) else (tout, mout)
    assert mout.dtype == np.float16
    np.testing.assert_allclose(mout.detach().numpy().astype(np.float32), tout.detach().float().detach().numpy(), atol=1e-2, rtol=1e-2)
    r = _x(*tuple(tout.shape), seed=1, dtype=np.float16)
    (tout * torch.tensor(r)).sum().backward()
    (mout * tm.tensor(r)).sum().backward()
    assert mx.grad.dtype == np.float16
    np.testing.assert_allclose(mx.grad.numpy().astype(np.float32), tx.grad.float().detach().numpy(), atol=2e-2, rtol=2e-2)
    mparams = dict(mmod.named_parameters())
    for name, p in tmod.named_parameters():
        assert mparams[name].grad.dtype == np.float16
        np.testing.assert_allclose(mparams[name].grad.numpy().astype(np.float32), p.grad.float().detach().numpy(),
                                   atol=2e-2, rtol=2e-2, err_msg=name)
    for name, b in tmod.named_buffers():  # batch norm's running statistics are updated in float16
        got = dict(mmod.named_buffers())[name]
        assert got.dtype == b.detach().numpy().dtype
        np.testing.assert_allclose(got.detach().numpy().astype(np.float32), b.float().detach().numpy(), atol=1e-2, err_msg=name)


def test_half_mixed_with_float32_is_still_a_dtype_error():
    with pytest.raises(RuntimeError):
        TF.conv2d(torch.zeros(1, 2, 3, 3, dtype=torch.float16), torch.zeros(1, 2, 1, 1))
    with pytest.raises(RuntimeError):
        MF.conv2d(tm.zeros(1, 2, 3, 3, dtype=np.float16), tm.zeros(1, 2, 1, 1))
