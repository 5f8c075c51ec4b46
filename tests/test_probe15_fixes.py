"""probe15's gaps, each checked against PyTorch: ``torch.nn.attention.flex_attention`` (score_mod,
mask_mod / create_block_mask / and_masks / or_masks, GQA, fully masked rows, lse, the BlockMask's
tile summary). PyTorch's FlexAttention has no CPU backward, so gradients (query, key, value and a
tensor a score_mod captures) are checked against PyTorch autograd on the same math written out."""
import math
import warnings

import numpy as np
import pytest

import tinymm
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

DOC = np.array([0] * 3 + [1] * 5 + [2] * 3 + [3] * 2)  # 13 tokens, four documents


def _mods(lib, m, bias):
    d = lib.tensor(DOC)

    def causal(b, h, qi, ki):
        return qi >= ki

    def document(b, h, qi, ki):
        return d[qi] == d[ki]

    def no_first_row(b, h, qi, ki):  # row 0 allows nothing: output 0, lse -inf
        return (qi > 0) & (qi >= ki)

    def alibi(score, b, h, qi, ki):
        return score + bias[h] * (ki - qi)

    def softcap(score, b, h, qi, ki):
        return 2.0 * lib.tanh(score / 2.0)

    masks = {None: None, "causal_doc": m.and_masks(causal, document), "causal_or_doc": m.or_masks(causal, document),
             "no_first_row": no_first_row}
    return masks, {None: None, "alibi": alibi, "softcap": softcap}


def _torch_reference(q, k, v, score_mod, mask_mod, scale):
    """The flex math in plain torch ops, for gradients."""
    G = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(G, 1), v.repeat_interleave(G, 1)
    s = q @ k.transpose(-2, -1) * scale
    b, h, qi, ki = (torch.arange(n).view(*[n if j == i else 1 for j in range(4)]) for i, n in enumerate(s.shape))
    if score_mod is not None:
        s = score_mod(s, b, h, qi, ki)
    if mask_mod is not None:
        s = torch.where(mask_mod(b, h, qi, ki), s, -math.inf)
    empty = (s == -math.inf).all(-1, keepdim=True)
    safe = torch.where(empty, 0.0, s)
    lse = torch.logsumexp(safe, -1, keepdim=True)
    w = torch.where(empty, 0.0, torch.exp(s - lse))
    return w @ v, torch.where(empty, -math.inf, lse).squeeze(-1)


CASES = [(None, None, 2, 2, None), ("causal_doc", None, 4, 2, 2), ("causal_doc", "alibi", 4, 2, None),
         ("causal_or_doc", "softcap", 3, 3, 2), ("no_first_row", "alibi", 6, 2, None), (None, "alibi", 2, 1, None)]


@pytest.mark.parametrize("mask,mod,Hq,Hkv,B_mask", CASES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_flex_attention_matches_torch_forward_and_its_math_backward(mask, mod, Hq, Hkv, B_mask, dtype):
    rng = np.random.default_rng(Hq * 10 + Hkv)
    L, E, Ev, block = len(DOC), 7, 5, 4
    arrays = [rng.standard_normal(s).astype(dtype) for s in ((2, Hq, L, E), (2, Hkv, L, E), (2, Hkv, L, Ev), (Hq,))]
    tol = dict(atol=1e-9, rtol=1e-9) if dtype == "float64" else dict(atol=2e-5, rtol=2e-5)
    from torch.nn.attention import flex_attention as TF
    from tinymm.nn.attention import flex_attention as MF

    results = {}
    for lib, m in ((torch, TF), (tinymm, MF)):
        q, k, v, bias = (lib.tensor(a, requires_grad=True) for a in arrays)
        masks, mods = _mods(lib, m, bias)
        bm = None if mask is None else m.create_block_mask(masks[mask], B_mask, None, L, L, device="cpu",
                                                             BLOCK_SIZE=block)
        kw = dict(score_mod=mods[mod], block_mask=bm, enable_gqa=Hq != Hkv, return_aux=m.AuxRequest(lse=True))
        if lib is torch:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out, aux = m.flex_attention(q.detach(), k.detach(), v.detach(), **kw)
            ref_out, ref_lse = _torch_reference(q, k, v, mods[mod], masks[mask], 1 / math.sqrt(E))
            np.testing.assert_allclose(ref_out.detach().numpy(), out.detach().numpy(), **tol)
            np.testing.assert_allclose(ref_lse.detach().numpy(), aux.lse.detach().numpy(), **tol)
            grad_of = (ref_out, ref_lse)
        else:
            out, aux = m.flex_attention(q, k, v, **kw)
            grad_of = (out, aux.lse)
        assert out.shape == (2, Hq, L, Ev) and out.dtype == q.dtype
        (grad_of[0].square().sum() + grad_of[1].clamp(min=-10).sum()).backward()
        results[lib] = [out.detach().numpy(), aux.lse.detach().numpy(), q.grad.numpy(), k.grad.numpy(),
                        v.grad.numpy(), np.zeros(1) if bias.grad is None else bias.grad.numpy()]
        if bm is not None:
            results[lib] += [bm.to_dense().numpy(), np.array(bm.sparsity()), np.array(bm.shape),
                             bm.kv_num_blocks.numpy(), bm.full_kv_num_blocks.numpy()]
    for i, (a, b) in enumerate(zip(results[torch], results[tinymm])):
        assert a.shape == b.shape, f"item {i}: {a.shape} vs {b.shape}"
        np.testing.assert_allclose(b, a, err_msg=f"item {i}", **tol)
    if mask == "no_first_row":
        assert np.all(results[tinymm][0][:, :, 0] == 0) and np.all(np.isneginf(results[tinymm][1][:, :, 0]))


def test_flex_attention_defaults_scale_return_lse_and_create_mask():
    from torch.nn.attention import flex_attention as TF
    from tinymm.nn.attention import flex_attention as MF

    rng = np.random.default_rng(3)
    a = [rng.standard_normal((1, 2, 9, 4)).astype(np.float32) for _ in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_out, t_lse = TF.flex_attention(*(torch.tensor(x) for x in a), scale=0.3, return_lse=True)
    m_out, m_lse = MF.flex_attention(*(tinymm.tensor(x) for x in a), scale=0.3, return_lse=True)
    np.testing.assert_allclose(m_out.numpy(), t_out.numpy(), atol=1e-6)
    np.testing.assert_allclose(m_lse.numpy(), t_lse.numpy(), atol=1e-6)
    plain = MF.flex_attention(*(tinymm.tensor(x) for x in a))
    sdpa = tinymm.nn.functional.scaled_dot_product_attention(*(tinymm.tensor(x) for x in a))
    np.testing.assert_allclose(plain.numpy(), sdpa.numpy(), atol=1e-6)

    def sliding(b, h, qi, ki):
        return (qi - ki).abs() <= 2

    def neg_inf_far(score, b, h, qi, ki):
        return torch_or_tm.where((qi - ki).abs() <= 1, score, -math.inf)

    for torch_or_tm, m in ((torch, TF), (tinymm, MF)):
        mask = m.create_mask(sliding, 2, None, 6, 7, device="cpu")
        from_score = m.create_mask(neg_inf_far, None, 3, 5, 5, device="cpu")
        noop = m.create_block_mask(m.noop_mask, None, None, 6, 6, device="cpu", BLOCK_SIZE=2)
        if torch_or_tm is torch:
            want = (mask.numpy(), from_score.numpy(), noop.to_dense().numpy(), noop.sparsity())
        else:
            got = (mask.numpy(), from_score.numpy(), noop.to_dense().numpy(), noop.sparsity())
    for w, g in zip(want, got):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    assert got[0].shape == (2, 1, 6, 7) and got[0].dtype == np.bool_


def test_flex_attention_refuses_what_torch_refuses():
    from tinymm.nn.attention.flex_attention import create_block_mask, flex_attention

    q = tinymm.zeros(1, 4, 8, 4)
    kv = tinymm.zeros(1, 2, 8, 4)
    with pytest.raises(ValueError, match="enable_gqa=True"):
        flex_attention(q, kv, kv)
    with pytest.raises(ValueError, match="multiple of kv heads"):
        flex_attention(q, tinymm.zeros(1, 3, 8, 4), tinymm.zeros(1, 3, 8, 4), enable_gqa=True)
    with pytest.raises(ValueError, match="same embedding dimension"):
        flex_attention(q, tinymm.zeros(1, 4, 8, 5), tinymm.zeros(1, 4, 8, 5))
    with pytest.raises(NotImplementedError, match="4D"):
        flex_attention(q[0], q[0], q[0])
    bm = create_block_mask(lambda b, h, qi, ki: qi >= ki, None, None, 16, 16, device="cpu")
    with pytest.raises(ValueError, match="larger length"):
        flex_attention(q, q, q, block_mask=bm)
    with pytest.raises(ValueError, match="smaller length"):
        flex_attention(tinymm.zeros(1, 4, 20, 4), tinymm.zeros(1, 4, 20, 4), tinymm.zeros(1, 4, 20, 4), block_mask=bm)
    with pytest.raises(ValueError, match="return_lse and return_aux"):
        from tinymm.nn.attention.flex_attention import AuxRequest
        flex_attention(q, q, q, return_lse=True, return_aux=AuxRequest(lse=True))


def test_flex_attention_is_importable_as_torch_spells_it():
    import tinymm.nn.attention.flex_attention as fa
    from tinymm.nn.attention import MultiheadAttention, sdpa_kernel  # noqa: F401  (the module became a package)

    assert tinymm.nn.attention.flex_attention is fa
    assert {"flex_attention", "create_block_mask", "and_masks", "or_masks", "BlockMask"} <= set(dir(fa))


@pytest.mark.parametrize("method,args", [("new_ones", ()), ("new_zeros", ((2, 3),)), ("new_empty", ((0, 2),)),
                                         ("new_full", ((2,), 7)), ("new_tensor", ([1.5, -2.0],))])
def test_new_factories_take_an_explicit_device_and_size_keyword(method, args):
    # FlexAttention's noop_mask and and_masks call b.new_ones(size=(), dtype=torch.bool, device=b.device)
    results = []
    for lib in (torch, tinymm):
        x = lib.ones(3, dtype=lib.int64)
        kw = {"dtype": lib.bool} if method == "new_ones" else {}
        made = getattr(x, method)(*args, device=x.device, **kw) if args else x.new_ones(size=(), device=x.device, **kw)
        results.append((tuple(made.shape), str(made.dtype).split(".")[-1],
                        None if method == "new_empty" else made.tolist()))
    assert results[0] == results[1]
