"""Regressions found by a hostile review of the layers against PyTorch (branch revc).

One test per fix, named for the behaviour; each builds the same module in torch and tinymm
with copied weights and compares outputs and gradients, or the exception class on bad input.
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


def _copy(tmod, mmod):
    mmod.load_state_dict({k: tm.tensor(v.detach().numpy().copy()) for k, v in tmod.state_dict().items()})


def _compare(tmod, mmod, x, call=None, atol=1e-5):
    """Same weights, same input: outputs and the gradients of input and parameters agree."""
    call = call or (lambda m, a: m(a))
    _copy(tmod, mmod)
    tx = torch.tensor(x, requires_grad=True)
    mx = tm.tensor(x, requires_grad=True)
    tout, mout = call(tmod, tx), call(mmod, mx)
    np.testing.assert_allclose(mout.detach().numpy(), tout.detach().numpy(), atol=atol, rtol=1e-4)
    r = np.random.default_rng(1).standard_normal(tuple(tout.shape)).astype(x.dtype)
    (tout * torch.tensor(r)).sum().backward()
    (mout * tm.tensor(r)).sum().backward()
    np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), atol=atol * 10, rtol=1e-4)
    mparams = dict(mmod.named_parameters())
    for name, p in tmod.named_parameters():
        np.testing.assert_allclose(mparams[name].grad.numpy(), p.grad.numpy(), atol=atol * 10, rtol=1e-4)
    return mout


def _x(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ----------------------------------------------------------------------------- convolution


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("n,padding", [(1, 2), (2, (1, 2)), (2, "same"), (3, 1)])
def test_conv_padding_modes_pad_then_convolve(mode, n, padding):
    kw = dict(padding=padding, padding_mode=mode, bias=True)
    tmod = getattr(tnn, f"Conv{n}d")(2, 3, 2 if padding == "same" else 3, **kw)
    mmod = getattr(mnn, f"Conv{n}d")(2, 3, 2 if padding == "same" else 3, **kw)
    assert repr(mmod) == repr(tmod)
    _compare(tmod, mmod, _x(2, 2, *([5] * n)))


def test_conv_transpose_repr_puts_output_padding_before_groups():
    kw = dict(stride=2, output_padding=1, groups=2, bias=False)
    assert repr(mnn.ConvTranspose2d(4, 4, 3, **kw)) == repr(tnn.ConvTranspose2d(4, 4, 3, **kw))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_conv_transpose_output_padding_reached_through_dilation(n):
    # output_padding < dilation but >= padding + stride: the extra positions hold the bias
    kw = dict(stride=1, dilation=2, output_padding=1)
    tmod = getattr(tnn, f"ConvTranspose{n}d")(2, 3, 2, **kw)
    mmod = getattr(mnn, f"ConvTranspose{n}d")(2, 3, 2, **kw)
    _compare(tmod, mmod, _x(2, 2, *([3] * n)))


def test_conv_transpose3d_input_gradient_is_zeros_when_no_depth_is_reached():
    kw = dict(stride=3, padding=1)
    tmod, mmod = tnn.ConvTranspose3d(3, 1, (1, 3, 1), **kw), mnn.ConvTranspose3d(3, 1, (1, 3, 1), **kw)
    _compare(tmod, mmod, _x(2, 3, 2, 5, 3))


# ----------------------------------------------------------------------------- pooling


def _compare_fn(tfn, mfn, x, atol=1e-5):
    tx, mx = torch.tensor(x, requires_grad=True), tm.tensor(x, requires_grad=True)
    tout, mout = tfn(tx), mfn(mx)
    touts = tout if isinstance(tout, tuple) else (tout,)
    mouts = mout if isinstance(mout, tuple) else (mout,)
    for t, m in zip(touts, mouts):
        np.testing.assert_allclose(m.detach().numpy(), t.detach().numpy(), atol=atol, rtol=1e-4)
        assert str(m.dtype) == str(t.dtype).replace("torch.", "tinymm.")
    r = np.random.default_rng(1).standard_normal(tuple(touts[0].shape)).astype(x.dtype)
    (touts[0] * torch.tensor(r)).sum().backward()
    (mouts[0] * tm.tensor(r)).sum().backward()
    np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), atol=atol * 10, rtol=1e-4)


@pytest.mark.parametrize("adaptive", [False, True])
def test_max_pool3d_returns_indices_and_gives_ties_one_gradient(adaptive):
    # after a ReLU most values tie at 0: PyTorch sends each window's gradient to one element
    x = np.maximum(_x(2, 3, 5, 4, 6), 0)
    if adaptive:
        _compare_fn(lambda a: TF.adaptive_max_pool3d(a, (3, 2, 4), True),
                    lambda a: MF.adaptive_max_pool3d(a, (3, 2, 4), True), x)
    else:
        kw = dict(kernel_size=(3, 2, 2), stride=(2, 1, 2), padding=1, ceil_mode=True, return_indices=True)
        _compare_fn(lambda a: TF.max_pool3d(a, **kw), lambda a: MF.max_pool3d(a, **kw), x)
        _compare_fn(lambda a: tnn.MaxPool3d(2, return_indices=True)(a), lambda a: mnn.MaxPool3d(2, return_indices=True)(a), x)


@pytest.mark.parametrize("n", [1, 2])
def test_adaptive_max_pool_and_max_unpool_accept_an_empty_batch(n):
    x = _x(0, 3, *([5] * n))
    _compare_fn(lambda a: getattr(TF, f"adaptive_max_pool{n}d")(a, 3, True),
                lambda a: getattr(MF, f"adaptive_max_pool{n}d")(a, 3, True), x)

    def unpool(F):
        def f(a):
            y, i = getattr(F, f"max_pool{n}d")(a, 2, return_indices=True)
            return getattr(F, f"max_unpool{n}d")(y, i, 2)
        return f
    _compare_fn(unpool(TF), unpool(MF), x)


@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("p", [float("inf"), -float("inf")])
def test_lp_pool_infinite_norm_is_max_or_min_of_abs(n, p):
    x = _x(2, 3, *([6] * n))
    _compare_fn(lambda a: getattr(TF, f"lp_pool{n}d")(a, p, 2), lambda a: getattr(MF, f"lp_pool{n}d")(a, p, 2), x)


def test_avg_pool3d_refuses_an_input_smaller_than_the_kernel_even_with_padding():
    with pytest.raises(RuntimeError):
        TF.avg_pool3d(torch.ones(1, 1, 5, 6, 1), 3, 2, 1)
    with pytest.raises(RuntimeError):
        MF.avg_pool3d(tm.ones(1, 1, 5, 6, 1), 3, 2, 1)


def test_adaptive_pool1d_refuses_none_output_size():
    for name in ("adaptive_avg_pool1d", "adaptive_max_pool1d"):
        with pytest.raises(TypeError):
            getattr(TF, name)(torch.ones(2, 5), (None,))
        with pytest.raises(TypeError):
            getattr(MF, name)(tm.ones(2, 5), (None,))


# ----------------------------------------------------------------------------- interpolate, pad


@pytest.mark.parametrize("kw", [dict(size=(7, 4)), dict(scale_factor=1.7), dict(size=5, align_corners=True),
                                dict(scale_factor=(0.6, 2.5), recompute_scale_factor=True)])
def test_interpolate_bicubic(kw):
    x = _x(2, 3, 5, 6, dtype=np.float64)
    _compare_fn(lambda a: TF.interpolate(a, mode="bicubic", **kw), lambda a: MF.interpolate(a, mode="bicubic", **kw), x)


@pytest.mark.parametrize("n,kw", [(1, dict(size=4)), (2, dict(scale_factor=0.5)), (2, dict(size=(7, 3))),
                                  (3, dict(size=(2, 3, 5)))])
def test_interpolate_area_is_adaptive_average(n, kw):
    x = _x(2, 3, *([6] * n))
    _compare_fn(lambda a: TF.interpolate(a, mode="area", **kw), lambda a: MF.interpolate(a, mode="area", **kw), x)
    with pytest.raises(ValueError):
        MF.interpolate(tm.tensor(x), mode="area", align_corners=True, **kw)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_non_constant_modes_refuse_the_wrong_rank_as_pytorch(mode):
    for shape, widths in (((2, 3, 4, 5), (1, 1)), ((2, 3, 4, 5, 6), (1, 1, 1, 1)), ((5,), (1, 1))):
        with pytest.raises(NotImplementedError):
            TF.pad(torch.ones(shape), widths, mode=mode)
        with pytest.raises(NotImplementedError):
            MF.pad(tm.ones(*shape), widths, mode=mode)


def test_pad_refuses_cropping_below_zero():
    with pytest.raises(RuntimeError):
        TF.pad(torch.ones(2, 1), (-1, -1))
    with pytest.raises(RuntimeError):
        MF.pad(tm.ones(2, 1), (-1, -1))
    assert MF.pad(tm.ones(2, 3), (-2, -1)).shape == (2, 0)


# ----------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize("make", [
    lambda nn: nn.BatchNorm2d(3, affine=True, bias=False), lambda nn: nn.BatchNorm1d(3, affine=False),
    lambda nn: nn.InstanceNorm1d(3), lambda nn: nn.InstanceNorm2d(3, affine=True, bias=False),
    lambda nn: nn.GroupNorm(1, 3, bias=False), lambda nn: nn.GroupNorm(1, 3),
    lambda nn: nn.LayerNorm(4), lambda nn: nn.LayerNorm((3, 4), bias=False), lambda nn: nn.LayerNorm(4, elementwise_affine=False),
    lambda nn: nn.SyncBatchNorm(3, bias=False)])
def test_norm_repr_names_the_bias_as_pytorch(make):
    assert repr(make(mnn)) == repr(make(tnn))


def test_lazy_instance_norm_defaults_are_pytorchs():
    t, m = tnn.LazyInstanceNorm2d(), mnn.LazyInstanceNorm2d()
    t(torch.ones(2, 3, 4, 4))
    m(tm.ones(2, 3, 4, 4))
    assert repr(m) == repr(t)
    assert list(m.state_dict()) == list(t.state_dict())
    t, m = tnn.LazyBatchNorm1d(bias=False), mnn.LazyBatchNorm1d(bias=False)
    t(torch.ones(2, 3))
    m(tm.ones(2, 3))
    assert list(m.state_dict()) == list(t.state_dict())


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 2, 2), (2, 3, 0)])
def test_batch_norm_training_on_an_empty_batch_keeps_the_running_statistics(shape):
    n = len(shape) - 2 if len(shape) > 2 else 1
    t, m = getattr(tnn, f"BatchNorm{n}d")(3), getattr(mnn, f"BatchNorm{n}d")(3)
    x = np.ones(shape, np.float32)
    tout, mout = t(torch.tensor(x)), m(tm.tensor(x))
    assert mout.shape == tuple(tout.shape)
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(m.state_dict()[k].detach().numpy(), v.detach().numpy())
    with pytest.raises(ValueError):
        m(tm.ones(1, 3))


# ----------------------------------------------------------------------------- recurrent


def test_rnn_repr_omits_nonlinearity_and_rnn_cell_repr_names_it_as_pytorch():
    assert repr(mnn.RNN(2, 3, nonlinearity="relu")) == repr(tnn.RNN(2, 3, nonlinearity="relu"))
    assert repr(mnn.RNNCell(2, 3, bias=False, nonlinearity="relu")) == repr(tnn.RNNCell(2, 3, bias=False, nonlinearity="relu"))


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_recurrent_layers_accept_an_empty_batch(kind):
    kw = dict(num_layers=2, bidirectional=True, batch_first=True)
    tmod, mmod = getattr(tnn, kind)(3, 4, **kw), getattr(mnn, kind)(3, 4, **kw)
    _copy(tmod, mmod)
    x = np.zeros((0, 5, 3), np.float32)
    tx, mx = torch.tensor(x, requires_grad=True), tm.tensor(x, requires_grad=True)
    tout, mout = tmod(tx), mmod(mx)
    th, mh = (tout[1][0], mout[1][0]) if kind == "LSTM" else (tout[1], mout[1])
    assert mout[0].shape == tuple(tout[0].shape) and mh.shape == tuple(th.shape)
    (mout[0].sum() + mh.sum()).backward()
    for name, p in mmod.named_parameters():
        np.testing.assert_array_equal(p.grad.numpy(), 0, err_msg=name)


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_recurrent_cells_accept_an_empty_batch(kind):
    tmod, mmod = getattr(tnn, kind)(3, 4), getattr(mnn, kind)(3, 4)
    tout, mout = tmod(torch.zeros(0, 3)), mmod(tm.zeros(0, 3))
    tout = tout[0] if kind == "LSTMCell" else tout
    mout = mout[0] if kind == "LSTMCell" else mout
    assert mout.shape == tuple(tout.shape)


def test_recurrent_dtype_mismatch_is_pytorchs_error_class():
    with pytest.raises(ValueError):
        tnn.LSTM(2, 3)(torch.zeros(2, 3, 2, dtype=torch.float64))
    with pytest.raises(ValueError):
        mnn.LSTM(2, 3)(tm.zeros(2, 3, 2, dtype=tm.float64))
    with pytest.raises(RuntimeError):
        tnn.GRUCell(2, 3)(torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(RuntimeError):
        mnn.GRUCell(2, 3)(tm.zeros(3, 2, dtype=tm.float64))


def test_recurrent_cell_with_zero_hidden_size_builds():
    assert mnn.GRUCell(2, 0).weight_ih.shape == tuple(tnn.GRUCell(2, 0).weight_ih.shape)


def test_unpad_and_unpack_sequence_invert_pad_and_pack():
    import torch.nn.utils.rnn as TU
    import tinymm.nn.utils.rnn as MU
    seqs = [_x(n, 2, seed=n) for n in (3, 1, 2)]
    tp = TU.pad_sequence([torch.tensor(s) for s in seqs], batch_first=True)
    mp = MU.pad_sequence([tm.tensor(s) for s in seqs], batch_first=True)
    for t, m in zip(TU.unpad_sequence(tp, torch.tensor([3, 1, 2]), batch_first=True),
                    MU.unpad_sequence(mp, [3, 1, 2], batch_first=True)):
        np.testing.assert_array_equal(m.detach().numpy(), t.detach().numpy())
    tpk = TU.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    mpk = MU.pack_sequence([tm.tensor(s) for s in seqs], enforce_sorted=False)
    for t, m in zip(TU.unpack_sequence(tpk), MU.unpack_sequence(mpk)):
        np.testing.assert_array_equal(m.detach().numpy(), t.detach().numpy())


# ----------------------------------------------------------------------------- embedding, linear, activations


@pytest.mark.parametrize("kw", [dict(max_norm=1.0), dict(max_norm=0.5, norm_type=1.0), dict(scale_grad_by_freq=True),
                                dict(padding_idx=0, max_norm=1.0, scale_grad_by_freq=True)])
def test_embedding_max_norm_and_scale_grad_by_freq(kw):
    t, m = tnn.Embedding(6, 3, **kw), mnn.Embedding(6, 3, **kw)
    assert repr(m) == repr(t)
    _copy(t, m)
    idx = np.array([[0, 1, 1], [5, 2, 1]])
    tout, mout = t(torch.tensor(idx)), m(tm.tensor(idx))
    np.testing.assert_allclose(mout.detach().numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.weight.detach().numpy(), t.weight.detach().numpy(), rtol=1e-5, atol=1e-6)  # renormed in place
    r = np.random.default_rng(1).standard_normal(tuple(tout.shape)).astype(np.float32)
    (tout * torch.tensor(r)).sum().backward()
    (mout * tm.tensor(r)).sum().backward()
    np.testing.assert_allclose(m.weight.grad.numpy(), t.weight.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("freeze", [True, False])
def test_embedding_from_pretrained(freeze):
    w = _x(4, 3)
    t = tnn.Embedding.from_pretrained(torch.tensor(w), freeze=freeze, padding_idx=1)
    m = mnn.Embedding.from_pretrained(tm.tensor(w), freeze=freeze, padding_idx=1)
    assert m.weight.requires_grad == t.weight.requires_grad and repr(m) == repr(t)
    np.testing.assert_array_equal(m(tm.tensor(np.array([1, 3]))).detach().numpy(), t(torch.tensor([1, 3])).detach().numpy())
    tb = tnn.EmbeddingBag.from_pretrained(torch.tensor(w), freeze=freeze, mode="sum")
    mb = mnn.EmbeddingBag.from_pretrained(tm.tensor(w), freeze=freeze, mode="sum")
    assert mb.weight.requires_grad == tb.weight.requires_grad
    with pytest.raises(AssertionError):
        mnn.Embedding.from_pretrained(tm.ones(3))
    with pytest.raises(AssertionError):
        mnn.Embedding(4, 2, padding_idx=4)


def test_embedding_bag_include_last_offset_ends_the_last_bag():
    w = _x(6, 3)
    inp, off = np.array([0, 2, 1, 5, 0, 3, 4]), np.array([0, 2, 2, 5])
    for mode in ("sum", "max"):
        t = TF.embedding_bag(torch.tensor(inp), torch.tensor(w), torch.tensor(off), mode=mode, include_last_offset=True)
        m = MF.embedding_bag(tm.tensor(inp), tm.tensor(w), tm.tensor(off), mode=mode, include_last_offset=True)
        np.testing.assert_allclose(m.detach().numpy(), t.detach().numpy(), rtol=1e-6)


def test_linear_shape_errors_are_runtime_errors_and_zero_in_features_builds():
    with pytest.raises(RuntimeError):
        mnn.Linear(3, 4)(tm.ones(2, 5))
    t, m = tnn.Linear(0, 4), mnn.Linear(0, 4)
    assert m.weight.shape == tuple(t.weight.shape)
    np.testing.assert_array_equal(m.bias.detach().numpy(), 0)


ACTIVATIONS = [("ReLU", ()), ("ReLU6", ()), ("LeakyReLU", (0.2,)), ("ELU", ()), ("CELU", ()), ("SELU", ()),
               ("Hardtanh", ()), ("Hardsigmoid", ()), ("Hardswish", ()), ("SiLU", ()), ("Mish", ()),
               ("Threshold", (0.5, 2.0))]


@pytest.mark.parametrize("name,args", ACTIVATIONS)
def test_inplace_activations_write_into_their_input_and_keep_gradients(name, args):
    t, m = getattr(tnn, name)(*args, inplace=True), getattr(mnn, name)(*args, inplace=True)
    assert repr(m) == repr(t)
    x = _x(2, 3, 4, dtype=np.float64)
    ta, ma = torch.tensor(x, requires_grad=True), tm.tensor(x, requires_grad=True)
    tb, mb = ta * 2, ma * 2
    tout, mout = t(tb), m(mb)
    assert (mout is mb) and (tout is tb)
    np.testing.assert_allclose(mb.detach().numpy(), tb.detach().numpy(), rtol=1e-12)
    r = np.random.default_rng(1).standard_normal(x.shape)
    (tout * torch.tensor(r)).sum().backward()
    (mout * tm.tensor(r)).sum().backward()
    np.testing.assert_allclose(ma.grad.numpy(), ta.grad.numpy(), rtol=1e-6, atol=1e-9)
    with pytest.raises(RuntimeError):  # a leaf that requires grad refuses, as PyTorch's
        m(tm.tensor(x, requires_grad=True))
    plain = tm.tensor(x)
    assert m(plain) is plain and not np.array_equal(plain.detach().numpy(), x) or name == "Threshold"


def test_dropout_inplace_and_repr():
    t, m = tnn.Dropout(0.3, inplace=True), mnn.Dropout(0.3, inplace=True)
    assert repr(m) == repr(t)
    x = tm.ones(100)
    assert m(x) is x and (x.detach().numpy() == 0).any()


@pytest.mark.parametrize("ndim", [0, 1, 2, 3, 4])
def test_softmax_without_dim_uses_pytorchs_implicit_dim(ndim):
    x = np.asarray(np.random.default_rng(ndim).standard_normal((3,) * ndim)).astype(np.float32)
    for name in ("Softmax", "LogSoftmax", "Softmin"):
        with pytest.warns(UserWarning):
            got = getattr(mnn, name)()(tm.tensor(x)).detach().numpy()
        with pytest.warns(UserWarning):
            want = getattr(tnn, name)()(torch.tensor(x)).detach().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert repr(getattr(mnn, name)()) == repr(getattr(tnn, name)())
    with pytest.warns(UserWarning):
        np.testing.assert_allclose(MF.softmax(tm.tensor(x)).detach().numpy(), TF.softmax(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [lambda nn: nn.Flatten(), lambda nn: nn.Flatten(0, 2), lambda nn: nn.Unflatten(1, [2, 2]),
                                  lambda nn: nn.Hardshrink(), lambda nn: nn.Softshrink(0.3), lambda nn: nn.GLU(),
                                  lambda nn: nn.Hardswish(inplace=True), lambda nn: nn.ELU(inplace=True)])
def test_layer_reprs_as_pytorch(make):
    assert repr(make(mnn)) == repr(make(tnn))


# ----------------------------------------------------------------------------- Module API and containers


def _net(nn, lib):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(2, 3, 1)
            self.seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
            self.shared = self.seq[0]
            self.register_buffer("tmp", lib.zeros(2), persistent=False)
            self.p = nn.Parameter(lib.ones(2))
    return Net()


def test_state_dict_lists_a_shared_module_under_each_name_and_takes_prefix_and_keep_vars():
    t, m = _net(tnn, torch), _net(mnn, tm)
    assert list(m.state_dict()) == list(t.state_dict())
    assert list(m.state_dict(prefix="x.")) == list(t.state_dict(prefix="x."))
    assert m.state_dict(keep_vars=True)["p"] is m.p
    assert [n for n, _ in m.named_modules(remove_duplicate=False)] == [n for n, _ in t.named_modules(remove_duplicate=False)]
    assert [n for n, _ in m.named_parameters(remove_duplicate=False)] == \
        [n for n, _ in t.named_parameters(remove_duplicate=False)]


def test_load_state_dict_errors_are_runtime_errors_and_the_result_prints_as_pytorchs():
    t, m = _net(tnn, torch), _net(mnn, tm)
    assert repr(m.load_state_dict(m.state_dict())) == repr(t.load_state_dict(t.state_dict()))
    sd = m.state_dict()
    del sd["conv.weight"]
    with pytest.raises(RuntimeError):
        m.load_state_dict(sd)
    res = m.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["conv.weight"]
    sd = m.state_dict()
    sd["conv.bias"] = tm.ones(7)
    with pytest.raises(RuntimeError):
        m.load_state_dict(sd, strict=False)
    sd = {k: tm.tensor(v.detach().numpy().astype(np.float64)) for k, v in m.state_dict().items()}
    m.load_state_dict(sd, assign=True)
    assert str(m.conv.weight.dtype) == "tinymm.float64"


def test_apply_visits_children_in_order_then_the_module():
    t, m = _net(tnn, torch), _net(mnn, tm)
    tseen, mseen = [], []
    t.apply(lambda mod: tseen.append(type(mod).__name__))
    m.apply(lambda mod: mseen.append(type(mod).__name__))
    assert mseen == tseen


def test_setattr_keeps_registrations_as_pytorch():
    for nn, lib in ((tnn, torch), (mnn, tm)):
        lin = nn.Linear(2, 2)
        with pytest.raises(TypeError):
            lin.weight = lib.ones(2, 2)  # a plain tensor cannot replace a parameter
        bn = nn.BatchNorm1d(2)
        bn.running_mean = lib.ones(2)  # a tensor assigned to a buffer stays a buffer
        assert "running_mean" in bn.state_dict()
        s = nn.Sequential(nn.ReLU(), nn.Tanh())
        s.__setattr__("0", nn.Sigmoid())  # re-assigning keeps the child's place
        assert list(s._modules) == ["0", "1"]
        with pytest.raises(TypeError):
            nn.Module().add_module("a", 3)
        with pytest.raises(KeyError):
            nn.Module().register_buffer("a.b", None)


def test_sequential_and_module_list_operations_as_pytorch():
    def ops(nn):
        s = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 3), nn.Tanh())
        out = [list(s[1:3]._modules), type(s[-1]).__name__]
        s.insert(1, nn.Identity())
        s.extend([nn.ReLU()])
        del s[0]
        s[0] = nn.Tanh()
        out += [[type(x).__name__ for x in s], list(s._modules), type(s.pop(1)).__name__, len(s + nn.Sequential(nn.ReLU()))]
        with pytest.raises(IndexError):
            s[10]
        ml = nn.ModuleList([nn.ReLU(), nn.Tanh()])
        ml.insert(0, nn.Identity())
        ml += [nn.Sigmoid()]
        del ml[0]
        out += [[type(x).__name__ for x in ml], list(ml._modules)]
        md = nn.ModuleDict({"a": nn.ReLU()})
        md.update([("b", nn.Tanh())])
        out += [type(md.pop("a")).__name__, list(md.keys())]
        return out
    assert ops(mnn) == ops(tnn)


def test_module_half_and_type_cast_floating_tensors():
    m = mnn.Linear(2, 3)
    assert str(m.half().weight.dtype) == "tinymm.float16"
    assert str(m.type(np.float64).weight.dtype) == "tinymm.float64"


# ----------------------------------------------------------------------------- losses


@pytest.mark.parametrize("shape", [(3, 4, 2, 5), (2, 3, 4), (4,), (0, 3, 2)])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_nll_loss_takes_pytorchs_nd_and_unbatched_layouts(shape, reduction):
    rng = np.random.default_rng(0)
    x = np.log(rng.random(shape) + 0.1)
    target_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    y = rng.integers(0, shape[0 if len(shape) == 1 else 1], size=target_shape)
    w = rng.random(shape[0 if len(shape) == 1 else 1]) + 0.5
    _compare_fn(lambda a: TF.nll_loss(a, torch.tensor(y), torch.tensor(w), ignore_index=1, reduction=reduction),
                lambda a: MF.nll_loss(a, tm.tensor(y), tm.tensor(w), ignore_index=1, reduction=reduction), x)


def test_nll_loss_mean_over_only_ignored_targets_is_nan_with_zero_gradient():
    x = np.log(np.full((2, 3), 0.3))
    _compare_fn(lambda a: TF.nll_loss(a, torch.tensor([1, 1]), ignore_index=1),
                lambda a: MF.nll_loss(a, tm.tensor(np.array([1, 1])), ignore_index=1), x)


def test_cross_entropy_unbatched_probability_target_gets_its_gradient():
    x, p = _x(4, dtype=np.float64), np.full(4, 0.25)
    tp, mp = torch.tensor(p, requires_grad=True), tm.tensor(p, requires_grad=True)
    TF.cross_entropy(torch.tensor(x), tp).backward()
    MF.cross_entropy(tm.tensor(x), mp).backward()
    np.testing.assert_allclose(mp.grad.numpy(), tp.grad.numpy(), rtol=1e-10)


def test_cross_entropy_argument_errors_are_runtime_errors():
    x = tm.tensor(_x(3, 4))
    for kw in (dict(label_smoothing=1.5), dict(weight=tm.ones(3))):
        with pytest.raises(RuntimeError):
            MF.cross_entropy(x, tm.tensor(np.array([0, 1, 1])), **kw)
    with pytest.raises(RuntimeError):
        MF.cross_entropy(x, tm.ones(3, 5))


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"])
def test_regression_losses_broadcast_with_pytorchs_warning(name):
    x, t = _x(3, 1), _x(3, 4, seed=1)
    with pytest.warns(UserWarning):
        _compare_fn(lambda a: getattr(TF, name)(a, torch.tensor(t)), lambda a: getattr(MF, name)(a, tm.tensor(t)), x)
    with pytest.raises(RuntimeError):
        getattr(MF, name)(tm.ones(3, 2), tm.ones(3, 4))


def test_weighted_losses_keep_weights_as_buffers_and_print_as_pytorch():
    for cls, kw in (("CrossEntropyLoss", dict(weight=np.ones(4, np.float32))), ("NLLLoss", dict(weight=np.ones(4, np.float32))),
                    ("BCEWithLogitsLoss", dict(pos_weight=np.ones(4, np.float32))), ("BCELoss", dict()),
                    ("MSELoss", dict(reduction="sum"))):
        t = getattr(tnn, cls)(**{k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()})
        m = getattr(mnn, cls)(**{k: tm.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()})
        assert list(m.state_dict()) == list(t.state_dict())
        assert repr(m) == repr(t)
