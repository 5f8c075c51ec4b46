"""What the probe's PyTorch scripts (DCGAN, actor-critic, ...) found missing or different, each
compared with PyTorch: nn.init filling a tensor's ``.data``, ``flip(dims=...)``, ``isin``,
``normal``, formatting a 0-d tensor, and the printed ``load_state_dict`` mismatch."""
import numpy as np
import pytest

import tinymm as tm
import tinymm.nn as tnn
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


@pytest.mark.parametrize("init, args", [("normal_", (0.0, 0.02)), ("uniform_", (-0.1, 0.1)), ("constant_", (0.5,)),
                                        ("zeros_", ()), ("ones_", ()), ("xavier_uniform_", ()),
                                        ("kaiming_normal_", ()), ("orthogonal_", ()), ("eye_", ())])
def test_init_fills_a_tensors_data_in_place(init, args):
    """``nn.init.normal_(m.weight.data, ...)``: ``.data`` is a Tensor sharing the Parameter's
    memory, so the Parameter changes, with exactly what the same call on it would draw."""
    w, twin = tnn.Linear(5, 4).weight, tnn.Linear(5, 4).weight
    tm.manual_seed(3)
    view = w.data
    assert getattr(tnn.init, init)(view, *args) is view and not view.requires_grad
    tm.manual_seed(3)
    getattr(tnn.init, init)(twin, *args)
    np.testing.assert_array_equal(w.detach().numpy(), twin.detach().numpy())


def test_init_data_statistics_match_torchs_formula():
    w = tnn.Conv2d(8, 16, 4, bias=False).weight
    tnn.init.normal_(w.data, 1.0, 0.02)
    assert abs(w.detach().numpy().mean() - 1.0) < 0.005 and abs(w.detach().numpy().std() - 0.02) < 0.003


def test_init_refuses_what_is_not_a_tensor():
    for bad in ([1.0, 2.0], np.zeros(3)):  # as PyTorch: AttributeError
        with pytest.raises(AttributeError):
            tnn.init.normal_(bad)


def test_data_is_a_detached_tensor_sharing_memory():
    m = tnn.Linear(3, 2)
    p = m.weight
    p.grad = tm.ones_like(p)
    before = p.detach().numpy().copy()
    p.data.add_(p.grad, alpha=-0.1)  # the word-LM example's SGD step
    np.testing.assert_allclose(p.detach().numpy(), before - 0.1)
    m.bias.data.zero_()
    assert (m.bias.detach().numpy() == 0).all() and m.bias.requires_grad and not m.bias.data.requires_grad
    target = tnn.Linear(3, 2)
    target.weight.data.copy_(0.5 * p.data + 0.5 * target.weight.data)  # a soft target update
    assert target.weight.grad_fn is None and target.weight.is_leaf
    x = tm.ones(2, 2, requires_grad=True)
    y = x * 3
    assert y.data.grad_fn is None and y.data.is_leaf
    x.data = tm.zeros(3)  # assignment replaces the values, shape included
    assert x.shape == (3,) and x.requires_grad
    with pytest.raises(TypeError, match="has to be a tensor, but got list"):
        x.data = [1.0, 2.0]  # as PyTorch: only a Tensor


@needs_torch
@pytest.mark.parametrize("call", [lambda t, x: t.flip(x, dims=[0, 2]), lambda t, x: x.flip(dims=(1,)),
                                  lambda t, x: t.flip(x, dims=[-1]), lambda t, x: x.flip(0, 1), lambda t, x: x.flip([2])])
def test_flip_dims_keyword_as_torch(call):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x, xt = tm.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, yt = call(tm, x), call(torch, xt)
    np.testing.assert_array_equal(y.detach().numpy(), yt.detach().numpy())
    g = np.arange(24, dtype=np.float32).reshape(2, 3, 4) * 0.5
    y.backward(tm.tensor(g)); yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())


def test_flip_dims_given_twice_is_a_type_error():
    with pytest.raises(TypeError):
        tm.flip(tm.ones(2, 2), 0, dims=[1])


@needs_torch
@pytest.mark.parametrize("el, te, kw", [([[1, 2], [3, 4]], 2, {}), (2, [1, 2], {}), ([1.0, 2.0, 5.0], [2, 5], {"invert": True}),
                                         ([3, 1, 3], [3, 3, 9], {"assume_unique": False}), ([0, 7], [], {})])
def test_isin_as_torch(el, te, kw):
    def build(lib):
        mk = (lambda v: v if isinstance(v, int) else lib.tensor(v, dtype=lib.float32 if any(isinstance(i, float) for i in np.ravel(v)) else lib.int64))
        return lib.isin(mk(el), mk(te), **kw)
    got, want = build(tm), build(torch)
    assert got.dtype == np.bool_ and tuple(got.shape) == tuple(want.shape)
    np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())


@needs_torch
def test_isin_needs_a_tensor():
    for lib in (tm, torch):
        with pytest.raises(TypeError):
            lib.isin(1, 2)


@needs_torch
@pytest.mark.parametrize("build", [lambda t: t.normal(t.zeros(3, 1), t.ones(4) * 2), lambda t: t.normal(t.zeros(5), 0.5),
                                   lambda t: t.normal(1.0, t.ones(2, 2, dtype=t.float64)),
                                   lambda t: t.normal(2.0, 3.0, size=(3, 2)), lambda t: t.normal(2.0, 3.0, (4,))])
def test_normal_shapes_and_dtypes_as_torch(build):
    got, want = build(tm), build(torch)
    assert tuple(got.shape) == tuple(want.shape) and str(got.dtype) == str(want.dtype).replace("torch.", "tinymm.")


def test_normal_draws_follow_mean_and_std():
    tm.manual_seed(0)
    x = tm.normal(tm.tensor([[-3.0], [4.0]]), tm.tensor([0.5, 2.0]).repeat(2000)).detach().numpy()  # (2, 4000)
    np.testing.assert_allclose(x.mean(axis=1), [-3.0, 4.0], atol=0.1)
    np.testing.assert_allclose(x[:, 0::2].std(axis=1), [0.5, 0.5], rtol=0.06)
    np.testing.assert_allclose(x[:, 1::2].std(axis=1), [2.0, 2.0], rtol=0.06)
    g1, g2 = tm.Generator().manual_seed(7), tm.Generator().manual_seed(7)
    np.testing.assert_array_equal(tm.normal(0.0, 1.0, (4,), generator=g1).detach().numpy(),
                                  tm.normal(0.0, 1.0, (4,), generator=g2).detach().numpy())


@needs_torch
@pytest.mark.parametrize("call", [lambda t: t.normal(t.zeros(2), t.ones(3)), lambda t: t.normal(t.zeros(2), -1.0),
                                  lambda t: t.normal(1.0, 2.0)])
def test_normal_bad_input_raises_torchs_class(call):
    with pytest.raises(Exception) as theirs:
        call(torch)
    with pytest.raises(type(theirs.value)):
        call(tm)


@needs_torch
@pytest.mark.parametrize("spec", [".2f", ".3e", "", ">8.1f", "d"])
def test_format_of_a_0d_tensor_as_torch(spec):
    value = 3 if spec == "d" else 1.23456
    assert format(tm.tensor(value), spec) == format(torch.tensor(value), spec)


@needs_torch
def test_format_of_a_1_element_tensor_or_parameter_with_a_spec_is_a_type_error():
    for lib in (tm, torch):
        with pytest.raises(TypeError):
            format(lib.tensor([2.5]), ".1f")
        with pytest.raises(TypeError):
            format(lib.nn.Parameter(lib.tensor(2.5)), ".1f")


@needs_torch
def test_load_state_dict_mismatch_prints_as_torch():
    theirs = torch.nn.Linear(2, 2).load_state_dict({"weight": torch.zeros(2, 2), "x": torch.zeros(1)}, strict=False)
    ours = tnn.Linear(2, 2).load_state_dict({"weight": tm.zeros(2, 2), "x": tm.zeros(1)}, strict=False)
    assert repr(ours) == repr(theirs) and str(ours) == str(theirs)
    assert repr(tnn.Linear(2, 2).load_state_dict(tnn.Linear(2, 2).state_dict())) == "<All keys matched successfully>"


@needs_torch
@pytest.mark.parametrize("layer_kw, nested, grad, pad_row", [
    ({}, True, False, [0, 0, 0, 1, 1]),                         # PyTorch's nested path: zeros at the padding
    ({"activation": "gelu"}, True, False, [0, 0, 0, 0, 1]),
    ({}, True, True, [0, 0, 0, 1, 1]),                          # grad enabled: the ordinary path
    ({}, False, False, [0, 0, 0, 1, 1]),                        # enable_nested_tensor=False
    ({"norm_first": True}, True, False, [0, 0, 0, 1, 1]),       # a layer the nested path refuses
    ({}, True, False, [1, 0, 0, 0, 0]),                         # left padding fails the mask check
])
def test_transformer_encoder_eval_padding_as_torch(layer_kw, nested, grad, pad_row):
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    pad = np.array([pad_row, [0, 0, 0, 0, 0]], bool)
    theirs = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, **layer_kw), 2,
                                         norm=torch.nn.LayerNorm(8), enable_nested_tensor=nested).eval()
    ours = tnn.TransformerEncoder(tnn.TransformerEncoderLayer(8, 2, 16, batch_first=True, **layer_kw), 2,
                                  norm=tnn.LayerNorm(8), enable_nested_tensor=nested).eval()
    ours.load_state_dict({k: tm.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    with torch.set_grad_enabled(grad):
        want = theirs(torch.tensor(x), src_key_padding_mask=torch.tensor(pad)).detach().numpy()
    with tm.set_grad_enabled(grad):
        got = ours(tm.tensor(x), src_key_padding_mask=tm.tensor(pad)).detach().numpy()
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)
    assert ours.use_nested_tensor == theirs.use_nested_tensor


def _bn_net(lib):
    return lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.BatchNorm1d(4), lib.nn.ReLU(), lib.nn.Linear(4, 2))


def _twins():
    torch.manual_seed(0)
    theirs = _bn_net(torch)
    ours = _bn_net(tm)
    ours.load_state_dict({k: tm.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    return theirs, ours


@needs_torch
@pytest.mark.parametrize("kind, use_buffers", [("swa", False), ("swa", True), ("ema", False),
                                                ("ema", True), ("avg_fn", False)])
def test_averaged_model_as_torch(kind, use_buffers):
    theirs, ours = _twins()
    kw = {}
    if kind == "ema":
        kw = {"t": {"multi_avg_fn": torch.optim.swa_utils.get_ema_multi_avg_fn(0.9)},
              "m": {"multi_avg_fn": tm.optim.swa_utils.get_ema_multi_avg_fn(0.9)}}
    elif kind == "avg_fn":
        kw = {"t": {"avg_fn": torch.optim.swa_utils.get_ema_avg_fn(0.8)}, "m": {"avg_fn": tm.optim.swa_utils.get_ema_avg_fn(0.8)}}
    avg_t = torch.optim.swa_utils.AveragedModel(theirs, use_buffers=use_buffers, **kw.get("t", {}))
    avg_m = tm.optim.swa_utils.AveragedModel(ours, use_buffers=use_buffers, **kw.get("m", {}))
    rng = np.random.default_rng(1)
    opt_t, opt_m = torch.optim.SGD(theirs.parameters(), lr=0.1), tm.optim.SGD(ours.parameters(), lr=0.1)
    for _ in range(4):
        x = rng.standard_normal((5, 3)).astype(np.float32)
        for net, opt, lib in ((theirs, opt_t, torch), (ours, opt_m, tm)):
            opt.zero_grad()
            net(lib.tensor(x)).pow(2).mean().backward()
            opt.step()
        avg_t.update_parameters(theirs)
        avg_m.update_parameters(ours)
    want, got = avg_t.state_dict(), avg_m.state_dict()
    assert list(got) == list(want)
    for k in want:
        np.testing.assert_allclose(got[k].detach().numpy(), want[k].detach().numpy(), rtol=1e-6, atol=1e-7, err_msg=k)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    avg_t.eval(); avg_m.eval()
    np.testing.assert_allclose(avg_m(tm.tensor(x)).detach().numpy(), avg_t(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


@needs_torch
def test_averaged_model_refuses_two_averaging_functions():
    for lib in (torch, tm):
        with pytest.raises(AssertionError):
            lib.optim.swa_utils.AveragedModel(lib.nn.Linear(2, 2), avg_fn=lambda *a: a[0],
                                              multi_avg_fn=lambda *a: None)


@needs_torch
def test_update_bn_as_torch():
    theirs, ours = _twins()
    rng = np.random.default_rng(2)
    batches = [rng.standard_normal((6, 3)).astype(np.float32) for _ in range(3)]
    theirs.eval(); ours.eval()
    torch.optim.swa_utils.update_bn([(torch.tensor(b), 0) for b in batches], theirs)
    tm.optim.swa_utils.update_bn([(tm.tensor(b), 0) for b in batches], ours)
    assert not ours.training and ours[1].momentum == theirs[1].momentum == 0.1
    for k in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        np.testing.assert_allclose(ours.state_dict()[k].detach().numpy(), theirs.state_dict()[k].detach().numpy(), rtol=1e-6, err_msg=k)


@needs_torch
@pytest.mark.parametrize("strategy, anneal_epochs, swa_lr", [("cos", 3, 0.05), ("linear", 4, [0.05, 0.2]), ("cos", 0, 0.01)])
def test_swalr_as_torch(strategy, anneal_epochs, swa_lr):
    lrs = {}
    for lib in (torch, tm):
        opt = lib.optim.SGD([{"params": [lib.nn.Parameter(lib.zeros(2))]}, {"params": [lib.nn.Parameter(lib.zeros(1))], "lr": 0.3}], lr=0.5)
        sched = lib.optim.swa_utils.SWALR(opt, swa_lr=swa_lr, anneal_epochs=anneal_epochs, anneal_strategy=strategy)
        seq = [sched.get_last_lr()]
        for _ in range(6):
            opt.step()
            sched.step()
            seq.append(sched.get_last_lr())
        lrs[lib] = seq
    np.testing.assert_allclose(np.array(lrs[tm]), np.array(lrs[torch]), rtol=1e-12)


@needs_torch
@pytest.mark.parametrize("kw", [{"anneal_strategy": "step"}, {"anneal_epochs": -1}, {"swa_lr": [0.1, 0.2]}])
def test_swalr_bad_arguments_raise_value_error_as_torch(kw):
    for lib in (torch, tm):
        opt = lib.optim.SGD([lib.nn.Parameter(lib.zeros(2))], lr=0.5)
        with pytest.raises(ValueError):
            lib.optim.swa_utils.SWALR(opt, **{"swa_lr": 0.1, **kw})


@needs_torch
@pytest.mark.parametrize("values, bins, lo, hi", [
    (np.arange(24, dtype=np.float32) / 10, 4, 0, 2.4),          # float32 rounding at the bin edges decides
    (np.random.default_rng(0).standard_normal(400).astype(np.float32), 7, -1, 1),
    (np.random.default_rng(1).standard_normal(200).astype(np.float32), 10, 0, 0),  # the data's range
    (np.array([0.1, np.nan, 0.7, 1.0, -0.2], np.float32), 5, 0, 1),   # NaN and outside ignored, max in the last bin
    (np.random.default_rng(2).random(300), 9, 0.1, 0.9),               # float64
    (np.array([1.0, 1.0], np.float32), 3, 0, 0),                     # one value: [v-1, v+1]
])
def test_histc_bins_as_torch(values, bins, lo, hi):
    want = torch.histc(torch.tensor(values), bins, lo, hi).detach().numpy()
    got = tm.histc(tm.tensor(values), bins, lo, hi).detach().numpy()
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
