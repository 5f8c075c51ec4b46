"""The PyTorch surface, third pass (nn): ``*_with_indices`` pooling (3-D too), ``lp_pool3d``,
``max_unpool3d``, the deprecated upsample aliases, ``F.multi_head_attention_forward`` with a
torch MultiheadAttention's weights, ``RNNBase``/``RNNCellBase``, ``nn.Buffer``,
``UninitializedParameter``, ``LPPool3d``/``MaxUnpool3d``, the BatchNorm fusion utilities,
``skip_init`` and the ``nn.utils.rnn`` helpers, each against PyTorch."""
import numpy as np
import pytest

import tinymm as tm
import tinymm.nn as nn
import tinymm.nn.functional as F
from helpers import TORCH_REASON, check_op, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

if torch is not None:
    import torch.nn.functional as TF


def same_error(fn):
    with pytest.raises(Exception) as want:
        fn(torch, TF)
    with pytest.raises(want.type):
        fn(tm, F)


# ----------------------------------------------------------------------------- pooling

POOLS = {
    "max_pool1d_with_indices": ((2, 3, 9), lambda f, x: f.max_pool1d_with_indices(x, 3, 2, 1)),
    "max_pool2d_with_indices": ((2, 2, 7, 6), lambda f, x: f.max_pool2d_with_indices(x, 3, 2, 1, ceil_mode=True)),
    "max_pool3d_with_indices": ((2, 1, 4, 5, 3), lambda f, x: f.max_pool3d_with_indices(x, 2)),
    "max_pool3d_pad_dil": ((1, 2, 7, 6, 8), lambda f, x: f.max_pool3d_with_indices(x, (3, 2, 3), (2, 1, 2), (1, 1, 0),
                                                                                  (1, 2, 2), True)),
    "max_pool3d_unbatched": ((2, 4, 5, 6), lambda f, x: f.max_pool3d(x, 3, 2, 1, return_indices=True)),
    "adaptive_max_pool1d_with_indices": ((2, 3, 11), lambda f, x: f.adaptive_max_pool1d_with_indices(x, 4)),
    "adaptive_max_pool2d_with_indices": ((2, 3, 7, 5), lambda f, x: f.adaptive_max_pool2d_with_indices(x, (3, 2))),
    "adaptive_max_pool3d_with_indices": ((1, 2, 5, 4, 3), lambda f, x: f.adaptive_max_pool3d_with_indices(x, (2, 3, 2))),
    "adaptive_max_pool3d_none": ((2, 5, 7, 6), lambda f, x: f.adaptive_max_pool3d(x, (None, 3, 2), True)),
}


@pytest.mark.parametrize("name", sorted(POOLS))
def test_pool_with_indices(name):
    shape, fn = POOLS[name]
    out = check_op([shape], lambda x: fn(F, x)[0], lambda x: fn(TF, x)[0],
                   gradcheck=name in ("max_pool3d_with_indices", "adaptive_max_pool3d_with_indices"))
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    idx, tidx = fn(F, tm.tensor(x))[1], fn(TF, torch.tensor(x))[1]
    assert idx.dtype == np.int64 and tuple(out.shape) == tuple(idx.shape)
    np.testing.assert_array_equal(idx.detach().numpy(), tidx.detach().numpy())


def test_max_pool3d_nan_wins_and_errors():
    x = np.zeros((1, 1, 2, 2, 2), np.float32)
    x[0, 0, 1, 0, 1] = np.nan
    got = F.max_pool3d_with_indices(tm.tensor(x), 2)
    want = TF.max_pool3d_with_indices(torch.tensor(x), 2)
    assert np.isnan(got[0].item()) and got[1].item() == want[1].item()
    same_error(lambda m, f: f.max_pool3d_with_indices(m.ones(1, 1, 4, 4, 4), 2, padding=2))
    same_error(lambda m, f: f.max_pool3d_with_indices(m.ones(1, 1, 1, 4, 4), 2))


def test_max_pool3d_module_with_indices_and_unpool3d():
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 6, 4)).astype(np.float32)
    y, i = nn.MaxPool3d(2, return_indices=True)(tm.tensor(x))
    ty, ti = torch.nn.MaxPool3d(2, return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(i.detach().numpy(), ti.detach().numpy())
    check_op([tuple(y.shape)], lambda v: nn.MaxUnpool3d(2)(v, i), lambda v: torch.nn.MaxUnpool3d(2)(v, ti),
             gradcheck=False)
    check_op([tuple(y.shape)], lambda v: F.max_unpool3d(v, i, 2, output_size=(5, 7, 5)),
             lambda v: TF.max_unpool3d(v, ti, 2, output_size=(5, 7, 5)), gradcheck=False)


def test_lp_pool3d():
    check_op([(1, 2, 4, 2, 2)], lambda x: F.lp_pool3d(x, 2.0, 2), lambda x: TF.lp_pool3d(x, 2.0, 2), positive=True,
             atol=1e-4)
    check_op([(2, 3, 5, 5, 5)], lambda x: nn.LPPool3d(3, (2, 3, 2), stride=(1, 2, 2))(x),
             lambda x: torch.nn.LPPool3d(3, (2, 3, 2), stride=(1, 2, 2))(x), positive=True, atol=1e-4, gradcheck=False)


def test_upsample_aliases():
    with pytest.warns(UserWarning):
        check_op([(1, 2, 3, 4)], lambda x: F.upsample_nearest(x, scale_factor=2),
                 lambda x: TF.upsample_nearest(x, scale_factor=2))
    with pytest.warns(UserWarning):
        check_op([(1, 2, 3, 4)], lambda x: F.upsample_bilinear(x, size=(5, 7)),
                 lambda x: TF.upsample_bilinear(x, size=(5, 7)))


# ----------------------------------------------------------------------------- multi_head_attention_forward


def _mha_pair(E=8, H=2, kdim=None, vdim=None, bias=True, add_bias_kv=False, seed=0):
    torch.manual_seed(seed)
    tmha = torch.nn.MultiheadAttention(E, H, bias=bias, add_bias_kv=add_bias_kv, kdim=kdim, vdim=vdim)
    if bias:
        with torch.no_grad():
            tmha.in_proj_bias.normal_()
            tmha.out_proj.bias.normal_()
    params = {n: p.detach().numpy() for n, p in tmha.named_parameters()}
    return tmha, params


def _args(lib, params, names):
    return [None if n is None or n not in params else lib.tensor(params[n], requires_grad=True) for n in names]


MHA_CASES = {
    "self": dict(),
    "key_padding_mask": dict(kpm=True),
    "bool_attn_mask": dict(bool_mask=True),
    "float_attn_mask_heads": dict(float_mask=True, average=False),
    "separate_proj": dict(kdim=5, vdim=6),
    "bias_kv_zero_attn": dict(add_bias_kv=True, zero_attn=True, kpm=True),
    "no_weights": dict(need_weights=False, kpm=True),
    "no_bias": dict(bias=False),
    "unbatched": dict(unbatched=True),
    "causal_hint": dict(causal=True, need_weights=False),
}


@pytest.mark.parametrize("case", sorted(MHA_CASES))
def test_multi_head_attention_forward_matches_torch(case):
    c = MHA_CASES[case]
    E, H, L, S, N = 8, 2, 4, 5, 3
    tmha, params = _mha_pair(E, H, c.get("kdim"), c.get("vdim"), c.get("bias", True), c.get("add_bias_kv", False))
    if c.get("causal"):
        S = L
    rng = np.random.default_rng(2)
    shapes = [(L, N, E), (S, N, c.get("kdim") or E), (S, N, c.get("vdim") or E)]
    if c.get("unbatched"):
        shapes = [(s[0], s[2]) for s in shapes]
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in shapes)
    kpm = rng.random((N, S)) < 0.3 if c.get("kpm") else None
    if kpm is not None:
        kpm[:, 0] = False
    mask = None
    if c.get("bool_mask"):
        mask = rng.random((L, S)) < 0.3
        mask[:, 0] = False
    elif c.get("float_mask"):
        mask = rng.standard_normal((N * H, L, S)).astype(np.float32)
    elif c.get("causal"):
        mask = np.triu(np.ones((L, S), bool), 1)
    separate = c.get("kdim") is not None
    names = ["in_proj_weight", "in_proj_bias", "bias_k", "bias_v", "out_proj.weight", "out_proj.bias",
             "q_proj_weight", "k_proj_weight", "v_proj_weight"]

    def run(lib, fn):
        a = _args(lib, params, names)
        x = [lib.tensor(t, requires_grad=True) for t in (q, k, v)]
        out, w = fn(*x, E, H, a[0], a[1], a[2], a[3], c.get("zero_attn", False), 0.0, a[4], a[5], training=True,
                    key_padding_mask=None if kpm is None else lib.tensor(kpm),
                    need_weights=c.get("need_weights", True), attn_mask=None if mask is None else lib.tensor(mask),
                    use_separate_proj_weight=separate, q_proj_weight=a[6], k_proj_weight=a[7], v_proj_weight=a[8],
                    average_attn_weights=c.get("average", True), is_causal=c.get("causal", False))
        loss = (out * out).sum() + (0 if w is None else (w * w).sum())
        loss.backward()
        grads = [t.grad.numpy() for t in x + [t for t in a if t is not None]]
        return out.detach().numpy(), None if w is None else w.detach().numpy(), grads

    got, want = run(tm, F.multi_head_attention_forward), run(torch, TF.multi_head_attention_forward)
    np.testing.assert_allclose(got[0], want[0], atol=1e-5, rtol=1e-4)
    assert (got[1] is None) == (want[1] is None)
    if want[1] is not None:
        np.testing.assert_allclose(got[1], want[1], atol=1e-5, rtol=1e-4)
    for g, w in zip(got[2], want[2]):
        np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-3)


def test_multi_head_attention_forward_errors():
    w, b = tm.ones(24, 8), tm.ones(24)
    ow, ob = tm.ones(8, 8), tm.ones(8)
    q = tm.ones(4, 2, 8)
    with pytest.raises(RuntimeError):  # embed dim check, as PyTorch's AssertionError-free RuntimeError
        F.multi_head_attention_forward(q, q, q, 6, 2, w, b, None, None, False, 0.0, ow, ob)
    with pytest.raises(RuntimeError):
        F.multi_head_attention_forward(q, q, q, 8, 2, w, b, None, None, False, 0.0, ow, ob,
                                       attn_mask=tm.zeros(3, 3))
    with pytest.raises(RuntimeError):
        F.multi_head_attention_forward(q, q, q, 8, 2, w, b, None, None, False, 0.0, ow, ob, is_causal=True)


# ----------------------------------------------------------------------------- nn classes


def test_rnn_base_classes():
    for cls, tcls in ((nn.RNN, torch.nn.RNN), (nn.LSTM, torch.nn.LSTM), (nn.GRU, torch.nn.GRU)):
        m = cls(3, 4, num_layers=2, bidirectional=True)
        assert isinstance(m, nn.RNNBase) and m.flatten_parameters() is None
        t = tcls(3, 4, num_layers=2, bidirectional=True)
        assert [[tuple(w.shape) for w in ws] for ws in m.all_weights] == \
            [[tuple(w.shape) for w in ws] for ws in t.all_weights]
    for cls in (nn.RNNCell, nn.LSTMCell, nn.GRUCell):
        assert isinstance(cls(3, 4), nn.RNNCellBase)


def test_buffer_registration():
    for lib in (tm, torch):
        m = lib.nn.Module()
        m.b = lib.nn.Buffer(lib.ones(2))
        m.c = lib.nn.Buffer(lib.zeros(1), persistent=False)
        assert sorted(dict(m.named_buffers())) == ["b", "c"] and list(m.state_dict()) == ["b"]
        m.b = lib.ones(3)  # a plain tensor assigned to a buffer's name stays a buffer
        assert tuple(dict(m.named_buffers())["b"].shape) == (3,)
        m.c = lib.ones(4)
        assert list(m.state_dict()) == ["b"]
        with pytest.raises(TypeError):
            m.b = 3
        assert tuple(lib.nn.Buffer().shape) == (0,)


def test_lazy_layers_hold_uninitialized_parameters():
    for lib in (tm, torch):
        layer = lib.nn.LazyLinear(3)
        w = layer.weight
        assert isinstance(w, lib.nn.UninitializedParameter) and isinstance(w, lib.nn.Parameter)
        layer(lib.ones(2, 4))
        assert layer.weight is w and type(w) is lib.nn.Parameter and tuple(w.shape) == (3, 4)


def test_fuse_conv_bn_and_linear_bn():
    import torch.nn.utils as tu

    rng = np.random.default_rng(0)
    stats = {k: rng.uniform(0.5, 1.5, 4).astype(np.float32) for k in ("weight", "bias", "running_mean", "running_var")}

    def build(lib, kind):
        if kind == "conv":
            layer, bn = lib.nn.Conv2d(3, 4, 3), lib.nn.BatchNorm2d(4)
        elif kind == "tconv":
            layer, bn = lib.nn.ConvTranspose2d(3, 4, 3), lib.nn.BatchNorm2d(4)
        else:
            layer, bn = lib.nn.Linear(3, 4), lib.nn.BatchNorm1d(4)
        with lib.no_grad():
            layer.weight.copy_(lib.tensor(rng_w[kind]))
            layer.bias.copy_(lib.tensor(rng_b))
            for k, v in stats.items():
                getattr(bn, k).copy_(lib.tensor(v))
        return layer.eval(), bn.eval()

    rng_w = {"conv": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
             "tconv": rng.standard_normal((3, 4, 3, 3)).astype(np.float32),
             "linear": rng.standard_normal((4, 3)).astype(np.float32)}
    rng_b = rng.standard_normal(4).astype(np.float32)
    x4 = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    x2 = rng.standard_normal((5, 3)).astype(np.float32)
    for kind, x in (("conv", x4), ("tconv", x4), ("linear", x2)):
        layer, bn = build(tm, kind)
        tlayer, tbn = build(torch, kind)
        if kind == "linear":
            fused, tfused = nn.utils.fuse_linear_bn_eval(layer, bn), tu.fuse_linear_bn_eval(tlayer, tbn)
        else:
            fused = nn.utils.fuse_conv_bn_eval(layer, bn, transpose=kind == "tconv")
            tfused = tu.fuse_conv_bn_eval(tlayer, tbn, transpose=kind == "tconv")
        assert isinstance(fused.weight, nn.Parameter) and fused is not layer
        np.testing.assert_allclose(fused.weight.detach().numpy(), tfused.weight.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(fused.bias.detach().numpy(), tfused.bias.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(fused(tm.tensor(x)).detach().numpy(), bn(layer(tm.tensor(x))).detach().numpy(), rtol=1e-4, atol=1e-5)
    w, b = nn.utils.fuse_conv_bn_weights(tm.ones(4, 3, 1, 1), None, tm.zeros(4), tm.ones(4), 1e-5, None, None)
    tw, tb = tu.fuse_conv_bn_weights(torch.ones(4, 3, 1, 1), None, torch.zeros(4), torch.ones(4), 1e-5, None, None)
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(b.detach().numpy(), tb.detach().numpy(), rtol=1e-6)
    layer, bn = build(tm, "conv")
    with pytest.raises(AssertionError):
        nn.utils.fuse_conv_bn_eval(layer.train(), bn)
    with pytest.raises(AssertionError):
        nn.utils.fuse_linear_bn_eval(tm.nn.Linear(3, 4).eval(), tm.nn.BatchNorm1d(3).eval())


def test_skip_init():
    import torch.nn.utils as tu

    m = nn.utils.skip_init(nn.Linear, 3, 4, bias=False)
    assert isinstance(m, nn.Linear) and tuple(m.weight.shape) == (4, 3) and m.bias is None

    class NoDevice(nn.Module):
        def __init__(self):
            super().__init__()

    class TNoDevice(torch.nn.Module):
        def __init__(self):
            super().__init__()

    with pytest.raises(RuntimeError):
        tu.skip_init(TNoDevice)
    with pytest.raises(RuntimeError):
        nn.utils.skip_init(NoDevice)


def test_rnn_utils_unpad_unpack_invert():
    import torch.nn.utils.rnn as trnn

    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((n, 3)).astype(np.float32) for n in (4, 2, 3)]
    for batch_first in (False, True):
        def run(lib, rnn):
            xs = [lib.tensor(s, requires_grad=True) for s in seqs]
            padded = rnn.pad_sequence(xs, batch_first=batch_first)
            out = rnn.unpad_sequence(padded, lib.tensor([4, 2, 3]), batch_first=batch_first)
            sum(((o * (i + 1)) ** 2).sum() for i, o in enumerate(out)).backward()
            return [o.detach().numpy() for o in out] + [x.grad.numpy() for x in xs]

        for g, w in zip(run(tm, nn.utils.rnn), run(torch, trnn)):
            np.testing.assert_allclose(g, w, rtol=1e-6)
    for enforce in (False,):
        packed = nn.utils.rnn.pack_sequence([tm.tensor(s) for s in seqs], enforce_sorted=enforce)
        tpacked = trnn.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=enforce)
        for g, w in zip(nn.utils.rnn.unpack_sequence(packed), trnn.unpack_sequence(tpacked)):
            np.testing.assert_allclose(g.detach().numpy(), w.detach().numpy())
    perm = [2, 0, 3, 1]
    np.testing.assert_array_equal(nn.utils.rnn.invert_permutation(tm.tensor(perm)).detach().numpy(),
                                  trnn.invert_permutation(torch.tensor(perm)).detach().numpy())
    assert nn.utils.rnn.invert_permutation(None) is None
