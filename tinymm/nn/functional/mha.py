"""Floor 4: ``multi_head_attention_forward``, PyTorch's functional multi-head attention.

With PyTorch's full signature and its order of operations (sequence-first inputs):

    q, k, v = projections of query (L, N, E), key (S, N, kdim), value (S, N, vdim)
    [bias_k, bias_v appended to k, v as one more key position; masks padded by one column]
    heads: q (N·H, L, d), k and v (N·H, S, d)   (or static_k / static_v given in that layout)
    [add_zero_attn: a zero key/value position appended; masks padded]
    mask = attn_mask (float: added; bool: True blocks) + key_padding_mask (N, S)
    need_weights: w = dropout(softmax(q·kᵀ/√d + mask)); out = w·v  (the weights returned are w)
    otherwise:    out = scaled_dot_product_attention(q, k, v, mask, dropout_p, is_causal)
    out → (L, N, E) → out_proj

Given the weights of a ``torch.nn.MultiheadAttention``, it returns PyTorch's output and
attention weights (averaged over heads unless ``average_attn_weights=False``).
"""
from __future__ import annotations

import warnings

import numpy as np

from tinymm import ops as O
from tinymm.ops._util import xp_of
from tinymm.tensor import Tensor

from tinymm.nn.functional._checks import ShapeError
from tinymm.nn.functional.attention import scaled_dot_product_attention
from tinymm.nn.functional.layers import dropout, linear


class AttentionShapeError(ShapeError, AssertionError):
    """Query/key/value/key_padding_mask shapes that do not fit: PyTorch's
    multi_head_attention_forward checks these with ``assert`` (AssertionError); this is that
    and tinymm's ShapeError (RuntimeError, ValueError)."""


class AttentionMaskDTypeError(TypeError, AssertionError):
    """A mask that is neither bool nor floating (PyTorch asserts; TypeError as tinymm raised)."""


def warn_mismatched_masks(mask, mask_name: str, other, other_name: str) -> None:
    """PyTorch's deprecation warning for a bool mask beside a float one (or two float dtypes)."""
    if mask is not None and other is not None and getattr(mask, "dtype", None) != getattr(other, "dtype", None):
        warnings.warn(f"Support for mismatched {mask_name} and {other_name} is deprecated. Use same type for both "
                      "instead.", UserWarning, stacklevel=4)


def merge_masks(key_padding_mask, attn_mask, batch: int, heads: int, L: int, S: int, dtype):
    """PyTorch-convention masks → one SDPA mask broadcastable to (B, H, L, S): bool with
    True = attend when both are bool, else an additive float mask (−inf where blocked)."""
    warn_mismatched_masks(key_padding_mask, "key_padding_mask", attn_mask, "attn_mask")
    parts = []
    if attn_mask is not None:
        am = O.as_tensor(attn_mask, "MultiheadAttention")
        if am.ndim == 2:
            if am.shape != (L, S):
                raise ShapeError(f"MultiheadAttention: 2-D attn_mask must be (L, S) = {(L, S)}, got {tuple(am.shape)}")
            a = am._data[None, None]
        elif am.ndim == 3:
            if am.shape != (batch * heads, L, S):
                raise ShapeError(f"MultiheadAttention: 3-D attn_mask must be (B*H, L, S) = {(batch * heads, L, S)}, got {tuple(am.shape)}")
            a = am._data.reshape(batch, heads, L, S)
        else:
            raise ValueError(f"MultiheadAttention: attn_mask must be 2-D or 3-D, got shape {tuple(am.shape)}")
        parts.append(a)
    if key_padding_mask is not None:
        kp = O.as_tensor(key_padding_mask, "MultiheadAttention")
        if kp.shape != (batch, S):
            raise AttentionShapeError(f"MultiheadAttention: key_padding_mask must be (B, S) = {(batch, S)}, got {tuple(kp.shape)}")
        parts.append(kp._data[:, None, None, :])
    if not parts:
        return None
    for p in parts:
        if p.dtype.kind not in "bf":
            raise AttentionMaskDTypeError(f"MultiheadAttention: masks must be bool or floating, got {p.dtype}")
    xp = xp_of(parts[0])
    if all(p.dtype.kind == "b" for p in parts):
        blocked = parts[0]
        for p in parts[1:]:
            blocked = blocked | p
        return Tensor._wrap(~blocked)
    total = None
    for p in parts:
        add = xp.where(p, -np.inf, 0.0).astype(dtype) if p.dtype.kind == "b" else p.astype(dtype)
        total = add if total is None else total + add
    return Tensor._wrap(total)


def _pad_column(mask):
    """One more key position (unmasked) at the end of a mask's last dim."""
    if mask is None:
        return None
    return O.pad(mask, (0, 1), value=False if mask.dtype.kind == "b" else 0.0)


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias,
                                 bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias,
                                 training=True, key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None,
                                 v_proj_weight=None, static_k=None, static_v=None, average_attn_weights=True,
                                 is_causal=False):
    """PyTorch's ``F.multi_head_attention_forward`` (see the module docstring); returns
    ``(output (L, N, E), weights (N, L, S) / (N, H, L, S) or None)``, without N when unbatched."""
    fn = "multi_head_attention_forward"
    query, key, value = (O.as_tensor(t, fn) for t in (query, key, value))
    unbatched = query.ndim == 2
    if unbatched:
        if key.ndim != 2 or value.ndim != 2:
            raise AttentionShapeError(f"{fn}: for unbatched (2-D) query, expected key and value to be 2-D, got "
                             f"{key.ndim}-D and {value.ndim}-D tensors")
        query, key, value = (O.unsqueeze(t, 1) for t in (query, key, value))
        if key_padding_mask is not None:
            key_padding_mask = O.unsqueeze(O.as_tensor(key_padding_mask, fn), 0)
    elif query.ndim != 3 or key.ndim != 3 or value.ndim != 3:
        raise AttentionShapeError(f"{fn}: query, key and value must be 3-D (batched) or 2-D (unbatched), got "
                         f"{query.ndim}-D, {key.ndim}-D and {value.ndim}-D")
    L, N, E = query.shape
    S = key.shape[0]
    if E != embed_dim_to_check:
        raise AttentionShapeError(f"{fn}: was expecting embedding dimension of {embed_dim_to_check}, but got {E}")
    if E % num_heads:
        raise ShapeError(f"{fn}: embed_dim {E} not divisible by num_heads {num_heads}")
    if key.shape[:2] != value.shape[:2]:
        raise AttentionShapeError(f"{fn}: key shape {tuple(key.shape)} does not match value shape {tuple(value.shape)}")
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the Transformer module "
                           "method `generate_square_subsequent_mask` to create this mask.")
    H, d = num_heads, E // num_heads

    # projections
    if use_separate_proj_weight:
        if q_proj_weight is None or k_proj_weight is None or v_proj_weight is None:
            raise ValueError(f"{fn}: use_separate_proj_weight is True but q_proj_weight, k_proj_weight or "
                             "v_proj_weight is None")
        bq = bk = bv = None
        if in_proj_bias is not None:
            bq, bk, bv = in_proj_bias[:E], in_proj_bias[E:2 * E], in_proj_bias[2 * E:]
        q, k, v = linear(query, q_proj_weight, bq), linear(key, k_proj_weight, bk), linear(value, v_proj_weight, bv)
    else:
        if in_proj_weight is None:
            raise ValueError(f"{fn}: use_separate_proj_weight is False but in_proj_weight is None")
        w, b = in_proj_weight, in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E:2 * E], b[2 * E:])
        q, k, v = linear(query, w[:E], bq), linear(key, w[E:2 * E], bk), linear(value, w[2 * E:], bv)

    # masks, PyTorch's order: attn_mask as (1 | N·H, L, S)
    if attn_mask is not None:
        attn_mask = O.as_tensor(attn_mask, fn)
        if attn_mask.dtype.kind not in "bf":
            raise AttentionMaskDTypeError(f"{fn}: only bool and floating types of attn_mask are supported, got {attn_mask.dtype}")
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (L, S):
                raise ShapeError(f"The shape of the 2D attn_mask is {tuple(attn_mask.shape)}, but should be {(L, S)}.")
            attn_mask = O.unsqueeze(attn_mask, 0)
        elif attn_mask.ndim == 3:
            if tuple(attn_mask.shape) != (N * H, L, S):
                raise ShapeError(f"The shape of the 3D attn_mask is {tuple(attn_mask.shape)}, but should be "
                                 f"{(N * H, L, S)}.")
        else:
            raise ShapeError(f"attn_mask's dimension {attn_mask.ndim} is not supported")
    if key_padding_mask is not None:
        key_padding_mask = O.as_tensor(key_padding_mask, fn)

    if bias_k is not None and bias_v is not None:
        if static_k is not None or static_v is not None:
            raise ValueError(f"{fn}: bias cannot be added to static key/value")
        k = O.cat([k, O.expand(O.reshape(bias_k, 1, 1, E), 1, N, E)], 0)
        v = O.cat([v, O.expand(O.reshape(bias_v, 1, 1, E), 1, N, E)], 0)
        attn_mask, key_padding_mask = _pad_column(attn_mask), _pad_column(key_padding_mask)
    elif (bias_k is None) != (bias_v is None):
        raise ValueError(f"{fn}: bias_k and bias_v must both be given or both be None")

    q = O.transpose(O.reshape(q, L, N * H, d), 0, 1)  # (N·H, L, d)
    k = O.transpose(O.reshape(k, k.shape[0], N * H, d), 0, 1) if static_k is None else O.as_tensor(static_k, fn)
    v = O.transpose(O.reshape(v, v.shape[0], N * H, d), 0, 1) if static_v is None else O.as_tensor(static_v, fn)
    for name, t in (("static_k", k), ("static_v", v)):
        if t.ndim != 3 or t.shape[0] != N * H or t.shape[2] != d:
            raise ShapeError(f"{fn}: expecting {name} of shape ({N * H}, S, {d}), got {tuple(t.shape)}")
    if add_zero_attn:
        zeros = Tensor._wrap(xp_of(k._data).zeros((N * H, 1, d), k.dtype))
        k, v = O.cat([k, zeros], 1), O.cat([v, zeros.to(v.dtype)], 1)
        attn_mask, key_padding_mask = _pad_column(attn_mask), _pad_column(key_padding_mask)
    S = k.shape[1]

    if key_padding_mask is not None and tuple(key_padding_mask.shape) != (N, S):
        raise AttentionShapeError(f"{fn}: expecting key_padding_mask shape of {(N, S)}, but got {tuple(key_padding_mask.shape)}")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # the hint alone drives SDPA's causal mask, as PyTorch
    else:
        is_causal = False if key_padding_mask is not None else is_causal
    # one mask broadcastable to (N, H, L, S): bool True = attend, or additive float
    mask = None
    if attn_mask is not None or key_padding_mask is not None:
        am = None
        if attn_mask is not None:
            am = attn_mask if attn_mask.shape[0] == N * H else O.expand(attn_mask, N * H, L, S)
        mask = merge_masks(key_padding_mask, am, N, H, L, S, q.dtype)

    p = dropout_p if training else 0.0
    q4, k4, v4 = (O.reshape(t, N, H, t.shape[1], d) for t in (q, k, v))
    weights = None
    if need_weights:
        scores = O.matmul(q4 * float(1.0 / np.sqrt(d)), O.transpose(k4, -2, -1))  # (N, H, L, S)
        if mask is not None:
            scores = O.masked_fill(scores, ~mask, -np.inf) if mask.dtype.kind == "b" else scores + mask
        w = O.softmax(scores, -1)
        if p > 0.0:
            w = dropout(w, p, True)
        out = O.matmul(w, v4)
        weights = O.mean(w, 1) if average_attn_weights else w
    else:
        out = scaled_dot_product_attention(q4, k4, v4, attn_mask=mask, dropout_p=p, is_causal=is_causal,
                                           training=training)
    out = O.reshape(O.permute(out, 2, 0, 1, 3), L, N, E)  # (L, N, E)
    out = linear(out, out_proj_weight, out_proj_bias)
    if unbatched:
        out = O.squeeze(out, 1)
        weights = None if weights is None else O.squeeze(weights, 0)
    return out, weights
