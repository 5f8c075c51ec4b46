"""Scaled dot-product attention as a differentiable op (floor 4).

    Attention(Q, K, V) = softmax(Q·Kᵀ·scale + mask) · V

``scaled_dot_product_attention`` follows ``torch.nn.functional.scaled_dot_product_attention``:
q (..., L, E), k (..., S, E), v (..., S, Ev); a bool ``attn_mask`` marks the keys each query
may attend to (True = attend), a float mask is added to the scores; ``is_causal`` masks the
keys after each query (top-left aligned, as PyTorch); rows with no visible key give zeros.

With ``dropout_p == 0`` it is one fused Function over ``tinymm.kernels.attention``: forward
saves q, k, v, the output and the per-row log-sum-exp, and backward recomputes the
probabilities block by block; only a small L×S probability matrix (at most
``kernels.attention.cpu.SAVED_PROBS_BYTES``, CPU) is kept instead, and freed by backward. Dropout on the attention weights needs
the weights themselves, so ``dropout_p > 0`` takes the unfused path of ordinary ops.
"""
from __future__ import annotations

import math

import numpy as np

from tinymm.autograd import Function, is_grad_enabled
from tinymm import ops as O
from tinymm.ops._util import broadcasts_to, xp_of
from tinymm.tensor import Tensor
from tinymm.nn.functional.half import computes_in_float32
from tinymm.sdp_backends import check_sdpa_enabled  # probe3


class SDPAFn(Function):
    @staticmethod
    def forward(ctx, q, k, v, mask, is_causal, scale):
        from tinymm.kernels import attention as K

        # The kernels may keep the attention matrix when it is small (see kernels/attention),
        # worth it only when a backward will follow.
        if is_grad_enabled() and any(ctx.needs_input_grad[:3]):
            o, lse, probs = K.forward(q, k, v, mask=mask, is_causal=is_causal, scale=scale, keep_probs=True)
        else:
            (o, lse), probs = K.forward(q, k, v, mask=mask, is_causal=is_causal, scale=scale), None
        ctx.save_for_backward(q, k, v, o, lse, mask, probs)  # freed with the rest after backward
        ctx.meta = (is_causal, scale)
        return o

    @staticmethod
    def backward(ctx, g):
        from tinymm.kernels import attention as K

        q, k, v, o, lse, mask, probs = ctx.saved_arrays
        is_causal, scale = ctx.meta
        g = xp_of(g).ascontiguousarray(g)
        dq, dk, dv = K.backward(q, k, v, o, lse, g, mask=mask, is_causal=is_causal, scale=scale, probs=probs)
        return dq, dk, dv

    @staticmethod
    def backward_graph(ctx, g):
        """The attention gradients on Tensors, the probabilities P recomputed (unfused, as
        ``attention_weights``) so they stay differentiable: dV = Pᵀ·g, dP = g·Vᵀ,
        dS = P ⊙ (dP − rowsum(dP ⊙ P))·scale, dQ = dS·K, dK = dSᵀ·Q."""
        from tinymm.autograd_graph import operand

        q, k, v, _, _, mask, _ = ctx.saved_arrays
        is_causal, scale = ctx.meta
        nq, nk, nv = ctx.needs_input_grad[:3]
        Q, Kt, V = operand(ctx, 0, q), operand(ctx, 1, k), operand(ctx, 2, v)
        scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
        P = attention_weights(Q, Kt, None if mask is None else Tensor._wrap(mask), is_causal, scale)
        dP = O.matmul(g, O.transpose(V, -2, -1))
        dS = P * (dP - (dP * P).sum(dim=-1, keepdim=True)) * scale
        return (O.matmul(dS, Kt) if nq else None, O.matmul(O.transpose(dS, -2, -1), Q) if nk else None,
                O.matmul(O.transpose(P, -2, -1), g) if nv else None)


def _as_4d(t: Tensor, name: str):
    if t.ndim < 2:
        raise ValueError(f"scaled_dot_product_attention: {name} must be (..., N, D), got shape {tuple(t.shape)}")
    if t.ndim == 2:
        return O.reshape(t, (1, 1) + t.shape)
    if t.ndim == 3:
        return O.unsqueeze(t, 1)
    if t.ndim == 4:
        return t
    lead = int(np.prod(t.shape[:-3]))
    return O.reshape(t, (lead,) + t.shape[-3:])


def _mask_4d(mask, q_ndim: int, target: tuple):
    """Align a mask written for the caller's (..., L, S) layout with the 4-D kernel layout."""
    a = mask._data
    if q_ndim == 3 and a.ndim == 3:  # (B, L, S) for (B, L, E) inputs -> (B, 1, L, S)
        return a[:, None]
    if q_ndim <= 4:
        return a
    # More than two leading dims are folded into one; the mask must follow that fold.
    return xp_of(a).broadcast_to(a, target).reshape((-1,) + target[-3:])


def attention_weights(q: Tensor, k: Tensor, attn_mask=None, is_causal: bool = False, scale=None,
                      empty_rows_nan: bool = False) -> Tensor:
    """softmax(q·kᵀ·scale + mask) as an ordinary differentiable tensor (..., L, S); rows with
    no visible key are all zero (SDPA's), or NaN with ``empty_rows_nan`` (the plain softmax of
    -inf that nn.MultiheadAttention's need_weights path gives in PyTorch). The unfused path, used
    for dropout and ``need_weights``."""
    e = q.shape[-1]
    scale = 1.0 / math.sqrt(e) if scale is None else scale
    scores = O.matmul(q, O.transpose(k, -2, -1)) * scale
    xp = xp_of(scores._data)
    L, S = scores.shape[-2], scores.shape[-1]
    visible = None
    if attn_mask is not None:
        if attn_mask.dtype.kind == "b":
            visible = attn_mask._data
        else:
            scores = scores + attn_mask.to(scores.dtype)
    if is_causal:
        causal = xp.tril(xp.ones((L, S), dtype=bool))
        visible = causal if visible is None else (visible & causal)
    if visible is not None:
        scores = O.masked_fill(scores, Tensor._wrap(~visible), -np.inf)
    # A row of only -inf would give NaN; shift it to zeros and zero its weights afterwards.
    finite_row = xp.isfinite(scores._data).any(axis=-1, keepdims=True)
    scores = O.where(Tensor._wrap(xp.broadcast_to(finite_row, scores.shape)), scores, 0.0)
    weights = O.softmax(scores, -1)
    keep = xp.where(finite_row, 1.0, np.nan) if empty_rows_nan else finite_row
    return weights * Tensor._wrap(keep.astype(scores.dtype))


@computes_in_float32  # revd: float16 layers
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0, is_causal: bool = False,
                                 scale=None, enable_gqa: bool = False, training: bool = True):
    """PyTorch's SDPA (see the module docstring). ``dropout_p`` applies only when ``training``.
    ``enable_gqa``: key/value may have fewer heads (dim −3) than query, a divisor of its count;
    each key/value head serves a group of query heads. ``is_causal`` together with an
    ``attn_mask`` is refused, as PyTorch refuses it. A float mask that requires grad gets
    its gradient (it takes the unfused path, which keeps the score matrix)."""
    q, k, v = (O.as_tensor(t, "scaled_dot_product_attention") for t in (query, key, value))
    check_sdpa_enabled(q.device.type)  # probe3: sdpa_kernel may have switched every viable backend off
    if is_causal and attn_mask is not None:
        raise RuntimeError("scaled_dot_product_attention: an explicit attn_mask must not be set when is_causal=True")
    if enable_gqa and q.ndim >= 3 and k.ndim == q.ndim and k.shape[-3] != q.shape[-3]:
        hq, hk = q.shape[-3], k.shape[-3]
        if hk == 0 or hq % hk or v.shape[-3] != hk:
            raise O.ShapeError(f"scaled_dot_product_attention: with enable_gqa the query heads ({hq}) must be a multiple "
                               f"of the key/value heads (key {tuple(k.shape)}, value {tuple(v.shape)})")
        k = O.repeat_interleave(k, hq // hk, dim=-3)
        v = O.repeat_interleave(v, hq // hk, dim=-3)
    for name, t in (("key", k), ("value", v)):
        if t.ndim != q.ndim:
            raise O.ShapeError(f"scaled_dot_product_attention: query has shape {tuple(q.shape)}, {name} {tuple(t.shape)}: same number of dims expected")
    if q.ndim < 2:
        raise O.ShapeError(f"scaled_dot_product_attention: query, key and value must be at least 2-D (..., L, E), got "
                           f"query {tuple(q.shape)}, key {tuple(k.shape)}, value {tuple(v.shape)}")
    if q.dtype.kind != "f" or k.dtype != q.dtype or v.dtype != q.dtype:  # RuntimeError, as PyTorch's
        raise O.DTypeError(f"scaled_dot_product_attention: query, key and value must share one floating dtype, got "
                           f"query {q.dtype}, key {k.dtype}, value {v.dtype}")
    if q.shape[-1] != k.shape[-1]:
        raise O.ShapeError(f"scaled_dot_product_attention: query's last dim {q.shape[-1]} != key's {k.shape[-1]} (query {tuple(q.shape)}, key {tuple(k.shape)})")
    if k.shape[-2] != v.shape[-2]:
        raise O.ShapeError(f"scaled_dot_product_attention: key has {k.shape[-2]} positions, value {v.shape[-2]} (key {tuple(k.shape)}, value {tuple(v.shape)})")
    if q.shape[:-2] != k.shape[:-2] or k.shape[:-2] != v.shape[:-2]:
        raise O.ShapeError(f"scaled_dot_product_attention: leading dims differ: query {tuple(q.shape)}, key {tuple(k.shape)}, value {tuple(v.shape)}")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1], got {dropout_p}")
    mask = None
    if attn_mask is not None:
        mask = O.as_tensor(attn_mask, "scaled_dot_product_attention")
        if mask.dtype.kind not in "bf":
            raise O.DTypeError(f"scaled_dot_product_attention: attn_mask must be bool or floating, got {mask.dtype}")
        target = q.shape[:-2] + (q.shape[-2], k.shape[-2])
        if not broadcasts_to(mask.shape, target):
            raise O.ShapeError(f"scaled_dot_product_attention: attn_mask of shape {tuple(mask.shape)} does not broadcast to {tuple(target)}")
        if mask.dtype.kind == "f" and mask.dtype != q.dtype:
            mask = mask.to(q.dtype)
    if dropout_p > 0.0 and training:
        from tinymm.nn.functional.layers import dropout

        w = attention_weights(q, k, mask, is_causal, scale)
        return O.matmul(dropout(w, dropout_p, True), v)
    if mask is not None and mask.requires_grad:
        return O.matmul(attention_weights(q, k, mask, is_causal, scale), v)
    out_shape = q.shape[:-1] + (v.shape[-1],)
    q4, k4, v4 = (_as_4d(t, n) for t, n in ((q, "query"), (k, "key"), (v, "value")))
    xp = xp_of(q._data)
    q4, k4, v4 = (t if t._data.flags.c_contiguous else O.clone(t) for t in (q4, k4, v4))
    m4 = None if mask is None else xp.ascontiguousarray(_mask_4d(mask, q.ndim, target))
    out = SDPAFn.apply(q4, k4, v4, m4, bool(is_causal), scale)
    return O.reshape(out, out_shape) if out.shape != out_shape else out
