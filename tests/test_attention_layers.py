"""Attention layers (floors 4-5) against PyTorch: SDPA with every mask kind, MultiheadAttention,
Transformer encoder/decoder layers and the patch embedding, with copied weights, forward and
backward; gradcheck of the fused Function in float64; named errors for bad input."""
import numpy as np
import pytest

import tinymm as tm
import tinymm.nn.functional as F
from tinymm import nn
from helpers import TORCH_REASON, check_op, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)
if torch is not None:
    import torch.nn.functional as TF

rng = np.random.default_rng(0)


def _mask(kind, B, H, L, S):
    if kind == "none":
        return None
    if kind == "bool":
        m = rng.random((B, H, L, S)) > 0.3
        m[..., 0] = True  # keep at least one key per row (torch would give NaN otherwise)
        return m
    if kind == "bool_broadcast":
        m = rng.random((L, S)) > 0.3
        m[:, 0] = True
        return m
    if kind == "float":
        return rng.standard_normal((1, H, L, S)).astype(np.float32)
    if kind == "key_padding":
        m = np.ones((B, 1, 1, S), bool)
        m[0, ..., S - 2 :] = False
        return m
    raise ValueError(kind)


@needs_torch
@pytest.mark.parametrize("kind", ["none", "bool", "bool_broadcast", "float", "key_padding"])
@pytest.mark.parametrize("L,S", [(5, 5), (3, 7)])
def test_sdpa_matches_torch_for_every_mask_kind(kind, L, S):
    B, H, D = 2, 3, 8
    m = _mask(kind, B, H, L, S)
    tmm = None if m is None else tm.tensor(m)
    tom = None if m is None else torch.as_tensor(m)
    check_op([(B, H, L, D), (B, H, S, D), (B, H, S, 6)],
             lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=tmm),
             lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, attn_mask=tom), atol=1e-5, gradcheck=False)


@needs_torch
@pytest.mark.parametrize("L,S", [(6, 6), (4, 7), (7, 4)])
def test_sdpa_causal_matches_torch_including_unequal_lengths(L, S):
    check_op([(2, 2, L, 8), (2, 2, S, 8), (2, 2, S, 8)],
             lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
             lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-5, gradcheck=False)


@needs_torch
def test_sdpa_scale_and_3d_inputs():
    check_op([(2, 5, 8), (2, 6, 8), (2, 6, 8)],
             lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=0.3),
             lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, scale=0.3), atol=1e-5, gradcheck=False)


def test_sdpa_gradcheck_float64_fused_and_unfused():
    mask = tm.tensor(rng.random((1, 1, 4, 5)) > 0.3)
    for causal in (False, True):
        check_op([(1, 2, 4, 3), (1, 2, 5, 3), (1, 2, 5, 2)],
                 lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=None if causal else mask, is_causal=causal),
                 False, dtype="float64")
    from tinymm.nn.functional.attention import attention_weights

    check_op([(1, 2, 4, 3), (1, 2, 5, 3)], lambda q, k: attention_weights(q, k, mask), False, dtype="float64")


def test_sdpa_keeps_probs_only_for_backward_and_frees_them(monkeypatch):
    """The fused Function asks the kernels to keep P only when a backward can follow, passes it
    to backward, and drops it with the other saved arrays; the gradients are the same as when
    P is recomputed (the limit set to 0)."""
    import weakref

    from tinymm.kernels.attention import cpu

    calls = []
    real_forward = cpu.cpu_forward

    def spy(q, k, v, mask=None, is_causal=False, scale=None, keep_probs=False):
        out = real_forward(q, k, v, mask, is_causal, scale, keep_probs)
        calls.append(keep_probs)
        if keep_probs and out[2] is not None:
            calls.append(weakref.ref(out[2]))
        return out

    monkeypatch.setattr(cpu, "cpu_forward", spy)
    data = [rng.standard_normal((2, 2, 9, 5)).astype(np.float32) for _ in range(4)]
    with tm.no_grad():
        F.scaled_dot_product_attention(*(tm.tensor(a) for a in data[:3]), is_causal=True)
    assert calls == [False]
    grads = []
    for limit in (cpu.SAVED_PROBS_BYTES, 0):
        monkeypatch.setattr(cpu, "SAVED_PROBS_BYTES", limit)
        q, k, v = (tm.tensor(a, requires_grad=True) for a in data[:3])
        calls.clear()
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        assert calls[0] is True and len(calls) == (2 if limit else 1)
        out.backward(tm.tensor(data[3]))
        if limit:
            assert calls[1]() is None, "P still alive after backward"
        grads.append([t.grad.numpy() for t in (q, k, v)])
    for kept, recomputed in zip(*grads):
        np.testing.assert_allclose(kept, recomputed, rtol=1e-5, atol=1e-6)


def test_fully_masked_rows_give_zeros_not_nan():
    q, k, v = (tm.tensor(rng.standard_normal((1, 1, 3, 4)), requires_grad=True) for _ in range(3))
    mask = np.ones((1, 1, 3, 3), bool)
    mask[0, 0, 1] = False  # query row 1 sees nothing
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=tm.tensor(mask))
    assert np.isfinite(out.detach().numpy()).all() and not out.detach().numpy()[0, 0, 1].any()
    out.sum().backward()
    assert np.isfinite(q.grad.numpy()).all() and not q.grad.numpy()[0, 0, 1].any()
    from tinymm.nn.functional.attention import attention_weights

    w = attention_weights(q, k, tm.tensor(mask))
    assert np.isfinite(w.detach().numpy()).all() and not w.detach().numpy()[0, 0, 1].any()


def test_sdpa_dropout_takes_the_unfused_path_and_is_unbiased():
    q, k, v = (tm.tensor(rng.standard_normal((1, 1, 64, 8))) for _ in range(3))
    plain = F.scaled_dot_product_attention(q, k, v).detach().numpy()
    tm.manual_seed(0)
    outs = np.mean([F.scaled_dot_product_attention(q, k, v, dropout_p=0.3).detach().numpy() for _ in range(200)], axis=0)
    assert np.abs(outs - plain).mean() < 0.05 * np.abs(plain).mean() + 0.02
    np.testing.assert_allclose(F.scaled_dot_product_attention(q, k, v, dropout_p=0.3, training=False).detach().numpy(), plain, atol=1e-6)


def test_sdpa_bad_input_names_shapes():
    q, k = tm.randn(1, 2, 4, 8), tm.randn(1, 2, 5, 7)
    with pytest.raises(ValueError, match=r"last dim 8 != key's 7"):
        F.scaled_dot_product_attention(q, k, tm.randn(1, 2, 5, 7))
    k = tm.randn(1, 2, 5, 8)
    with pytest.raises(ValueError, match=r"attn_mask of shape \(3, 5\) does not broadcast to \(1, 2, 4, 5\)"):
        F.scaled_dot_product_attention(q, k, k, attn_mask=tm.tensor(np.ones((3, 5), bool)))
    with pytest.raises(TypeError, match="attn_mask must be bool or floating"):
        F.scaled_dot_product_attention(q, k, k, attn_mask=tm.tensor(np.ones((4, 5), np.int64)))


def _copy_into_tinymm(tor_module, tm_module):
    tm_module.load_state_dict({k: v.detach().numpy() for k, v in tor_module.state_dict().items()})


def _compare(tm_out, tor_out, tm_module, tor_module, inputs_tm=(), inputs_torch=(), atol=2e-5):
    np.testing.assert_allclose(tm_out.detach().numpy(), tor_out.detach().numpy(), atol=atol, rtol=1e-4)
    r = rng.standard_normal(tm_out.shape).astype(np.float32)
    (tm_out * tm.tensor(r)).sum().backward()
    (tor_out * torch.tensor(r)).sum().backward()
    tgrads = dict(tor_module.named_parameters())
    for name, p in tm_module.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tgrads[name].grad.numpy(), atol=atol * 10, rtol=1e-3, err_msg=name)
    for a, b in zip(inputs_tm, inputs_torch):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=atol * 10, rtol=1e-3)


@needs_torch
@pytest.mark.parametrize("need_weights,average", [(False, True), (True, True), (True, False)])
@pytest.mark.parametrize("masks", ["none", "key_padding", "bool_attn", "float_attn", "both"])
def test_multihead_self_attention_matches_torch(need_weights, average, masks):
    torch.manual_seed(0)
    E, H, B, L = 12, 3, 2, 5
    tor = torch.nn.MultiheadAttention(E, H, batch_first=True)
    ours = nn.MultiheadAttention(E, H, batch_first=True)
    _copy_into_tinymm(tor, ours)
    x = rng.standard_normal((B, L, E)).astype(np.float32)
    kpm = np.zeros((B, L), bool)
    kpm[1, -2:] = True  # True = padding, do not attend (MHA convention)
    am_bool = np.triu(np.ones((L, L), bool), 1)
    am_float = rng.standard_normal((L, L)).astype(np.float32)
    kw_tm, kw_t = {}, {}
    if masks in ("key_padding", "both"):
        kw_tm["key_padding_mask"], kw_t["key_padding_mask"] = tm.tensor(kpm), torch.as_tensor(kpm)
    if masks in ("bool_attn", "both"):
        kw_tm["attn_mask"], kw_t["attn_mask"] = tm.tensor(am_bool), torch.as_tensor(am_bool)
    if masks == "float_attn":
        kw_tm["attn_mask"], kw_t["attn_mask"] = tm.tensor(am_float), torch.as_tensor(am_float)
    xt, xto = tm.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    o1, w1 = ours(xt, xt, xt, need_weights=need_weights, average_attn_weights=average, **kw_tm)
    o2, w2 = tor(xto, xto, xto, need_weights=need_weights, average_attn_weights=average, **kw_t)
    if need_weights:
        np.testing.assert_allclose(w1.detach().numpy(), w2.detach().numpy(), atol=1e-5)
    else:
        assert w1 is None
    _compare(o1, o2, ours, tor, [xt], [xto])


@needs_torch
def test_cross_attention_with_other_modality_dims_matches_torch():
    torch.manual_seed(1)
    E, H, kdim, vdim = 8, 2, 5, 7
    tor = torch.nn.MultiheadAttention(E, H, kdim=kdim, vdim=vdim, batch_first=True)
    ours = nn.MultiheadAttention(E, H, kdim=kdim, vdim=vdim, batch_first=True)
    assert sorted(ours.state_dict()) == sorted(tor.state_dict())
    _copy_into_tinymm(tor, ours)
    text = rng.standard_normal((2, 4, E)).astype(np.float32)
    img_k = rng.standard_normal((2, 9, kdim)).astype(np.float32)
    img_v = rng.standard_normal((2, 9, vdim)).astype(np.float32)
    o1, _ = ours(tm.tensor(text), tm.tensor(img_k), tm.tensor(img_v), need_weights=False)
    o2, _ = tor(torch.tensor(text), torch.tensor(img_k), torch.tensor(img_v), need_weights=False)
    _compare(o1, o2, ours, tor)


@needs_torch
def test_multihead_attention_sequence_first():
    torch.manual_seed(2)
    tor = torch.nn.MultiheadAttention(8, 2, batch_first=False)
    ours = nn.MultiheadAttention(8, 2, batch_first=False)
    _copy_into_tinymm(tor, ours)
    x = rng.standard_normal((5, 3, 8)).astype(np.float32)  # (L, B, E)
    o1, _ = ours(tm.tensor(x), tm.tensor(x), tm.tensor(x), need_weights=False)
    o2, _ = tor(torch.tensor(x), torch.tensor(x), torch.tensor(x), need_weights=False)
    _compare(o1, o2, ours, tor)


@needs_torch
def test_defaults_are_pytorchs_sequence_first_and_unbatched_input_works():
    """PyTorch code that never says batch_first passes (L, B, E): it must not be read as (B, L, E)."""
    torch.manual_seed(7)
    tor, ours = torch.nn.MultiheadAttention(8, 2), nn.MultiheadAttention(8, 2)
    assert ours.batch_first is False and nn.TransformerEncoderLayer(8, 2).self_attn.batch_first is False
    assert nn.TransformerDecoderLayer(8, 2).multihead_attn.batch_first is False
    _copy_into_tinymm(tor, ours)
    x = rng.standard_normal((5, 3, 8)).astype(np.float32)  # (L, B, E), L != B
    o1, w1 = ours(tm.tensor(x), tm.tensor(x), tm.tensor(x))
    o2, w2 = tor(torch.tensor(x), torch.tensor(x), torch.tensor(x))
    np.testing.assert_allclose(w1.detach().numpy(), w2.detach().numpy(), atol=1e-5)
    _compare(o1, o2, ours, tor)
    u = rng.standard_normal((4, 8)).astype(np.float32)  # unbatched (L, E)
    kpm = np.array([False, False, False, True])
    ut, uto = tm.tensor(u, requires_grad=True), torch.tensor(u, requires_grad=True)
    o1, w1 = ours(ut, ut, ut, key_padding_mask=tm.tensor(kpm), average_attn_weights=False)
    o2, w2 = tor(uto, uto, uto, key_padding_mask=torch.as_tensor(kpm), average_attn_weights=False)
    assert o1.shape == (4, 8) and w1.shape == tuple(w2.shape) == (2, 4, 4)
    np.testing.assert_allclose(w1.detach().numpy(), w2.detach().numpy(), atol=1e-5)
    _compare(o1, o2, ours, tor, [ut], [uto])
    with pytest.raises(ValueError, match="unbatched"):
        ours(ut, tm.tensor(x), tm.tensor(x))


def test_multihead_attention_returns_the_weights_after_dropout():
    # as PyTorch: the returned weights are the dropped-out ones that multiplied v
    m = nn.MultiheadAttention(8, 2, dropout=0.5)
    x = tm.randn(6, 3, 8)
    _, w = m(x, x, x, average_attn_weights=False)
    assert 0.2 < (w.detach().numpy() == 0).mean() < 0.8
    m.eval()
    _, w = m(x, x, x, average_attn_weights=False)
    assert (w.detach().numpy() > 0).all()


def test_multihead_attention_bad_input():
    with pytest.raises(ValueError, match="num_heads=5 does not divide embed_dim=12"):
        nn.MultiheadAttention(12, 5)
    m = nn.MultiheadAttention(8, 2, batch_first=True)
    with pytest.raises(ValueError, match=r"key_padding_mask must be \(B, S\) = \(2, 4\), got \(2, 3\)"):
        x = tm.randn(2, 4, 8)
        m(x, x, x, key_padding_mask=tm.tensor(np.zeros((2, 3), bool)))
    with pytest.raises(ValueError, match=r"query must be \(B, N, 8\)"):
        m(tm.randn(2, 4, 6), tm.randn(2, 4, 8), tm.randn(2, 4, 8))


@needs_torch
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_encoder_layer_matches_torch(norm_first, activation):
    torch.manual_seed(3)
    kw = dict(d_model=16, nhead=4, dim_feedforward=32, dropout=0.0, activation=activation, norm_first=norm_first, batch_first=True)
    tor = torch.nn.TransformerEncoderLayer(**kw)
    ours = nn.TransformerEncoderLayer(**kw)
    _copy_into_tinymm(tor, ours)
    x = rng.standard_normal((2, 6, 16)).astype(np.float32)
    kpm = np.zeros((2, 6), bool)
    kpm[0, -1] = True
    xt, xto = tm.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    o1 = ours(xt, src_key_padding_mask=tm.tensor(kpm))
    o2 = tor(xto, src_key_padding_mask=torch.as_tensor(kpm))
    _compare(o1, o2, ours, tor, [xt], [xto])


@needs_torch
def test_transformer_encoder_stack_with_final_norm_matches_torch():
    torch.manual_seed(4)
    layer_t = torch.nn.TransformerEncoderLayer(16, 2, 32, 0.0, batch_first=True)
    tor = torch.nn.TransformerEncoder(layer_t, 2, norm=torch.nn.LayerNorm(16), enable_nested_tensor=False)
    ours = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, 0.0, batch_first=True), 2, norm=nn.LayerNorm(16))
    assert sorted(ours.state_dict()) == sorted(tor.state_dict())
    _copy_into_tinymm(tor, ours)
    x = rng.standard_normal((3, 5, 16)).astype(np.float32)
    causal = np.triu(np.ones((5, 5), bool), 1)
    o1 = ours(tm.tensor(x), mask=tm.tensor(causal))
    o2 = tor(torch.tensor(x), mask=torch.as_tensor(causal))
    _compare(o1, o2, ours, tor)


@needs_torch
def test_transformer_decoder_layer_matches_torch():
    torch.manual_seed(5)
    tor = torch.nn.TransformerDecoderLayer(16, 4, 32, 0.0, batch_first=True)
    ours = nn.TransformerDecoderLayer(16, 4, 32, 0.0, batch_first=True)
    _copy_into_tinymm(tor, ours)
    tgt = rng.standard_normal((2, 4, 16)).astype(np.float32)
    mem = rng.standard_normal((2, 7, 16)).astype(np.float32)
    o1 = ours(tm.tensor(tgt), tm.tensor(mem), tgt_is_causal=True)
    o2 = tor(torch.tensor(tgt), torch.tensor(mem), tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(4), tgt_is_causal=True)
    _compare(o1, o2, ours, tor)


@needs_torch
def test_patch_embedding_equals_strided_conv2d():
    torch.manual_seed(6)
    conv = torch.nn.Conv2d(3, 10, kernel_size=4, stride=4)
    ours = nn.PatchEmbedding(img_size=16, patch_size=4, in_chans=3, embed_dim=10)
    _copy_into_tinymm(conv, ours)
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    o1 = ours(tm.tensor(x))
    o2 = conv(torch.tensor(x)).flatten(2).transpose(1, 2)
    _compare(o1, o2, ours, conv)


def test_sinusoidal_table_formula():
    from tinymm.nn.positional import sinusoidal_table

    pe = sinusoidal_table(50, 8)
    pos, i = 7, 2
    np.testing.assert_allclose(pe[pos, 2 * i], np.sin(pos / 10000 ** (2 * i / 8)), rtol=1e-5)
    np.testing.assert_allclose(pe[pos, 2 * i + 1], np.cos(pos / 10000 ** (2 * i / 8)), rtol=1e-5)
    enc = nn.SinusoidalPositionalEncoding(8, max_len=10)
    x = tm.zeros(1, 4, 8)
    np.testing.assert_allclose(enc(x).detach().numpy()[0], pe[:4], rtol=1e-6)
    assert "pe" not in enc.state_dict()
    with pytest.raises(ValueError, match="exceeds max_len=10"):
        enc(tm.zeros(1, 11, 8))
