r"""Scaled dot-product attention in plain NumPy: the specification the fused kernels must match.

Shapes
------
    q  (B, H, Nq, D)     queries          B batch, H heads
    k  (B, H, Nk, D)     keys             Nq query rows, Nk keys
    v  (B, H, Nk, Dv)    values           D head dim of q and k, Dv of v (may differ)
    o  (B, H, Nq, Dv)    output
    lse (B, H, Nq)       log-sum-exp of each row of scores, natural log

Forward, for one (batch, head)
------------------------------
    S   = scale * q @ k^T + bias                 (Nq, Nk)   scale defaults to 1/sqrt(D)
    lse = log(sum_j exp(S_ij))                   (Nq,)
    P   = exp(S - lse[:, None])                  (Nq, Nk)   each row sums to 1
    o   = P @ v                                  (Nq, Dv)

``bias`` collects every mask, all of them broadcast to (B, H, Nq, Nk):

* ``mask`` bool: True = attend (PyTorch's convention); False adds -inf.
* ``mask`` floating: added as it is ("additive mask"; -inf blocks a key).
* ``is_causal``: key j is visible from query i only when j <= i, the *top-left* aligned
  lower triangle ``ones(Nq, Nk).tril(0)`` that PyTorch's ``scaled_dot_product_attention`` uses,
  also when Nq != Nk. Unlike PyTorch, ``is_causal`` may be combined with ``mask``: both apply.
* key padding is a bool mask of shape (B, 1, 1, Nk).

A row whose keys are all masked has lse = -inf, P = 0 and o = 0 (not NaN), and gets zero
gradient.

What forward saves for backward: nothing but its output ``o`` and ``lse``. The (Nq, Nk)
probabilities are recomputed from ``lse`` in backward (FlashAttention's interface); the
attention matrix is never stored between the two passes.

Backward, given dO = dL/do
--------------------------
    P   = exp(scale * q @ k^T + bias - lse[:, None])    recomputed
    dv  = P^T @ dO
    dP  = dO @ v^T
    Di  = rowsum(dO * o)             ( = rowsum(P * dP), the softmax Jacobian's correction)
    dS  = P * (dP - Di[:, None])     gradient of the scores
    dq  = scale * dS @ k
    dk  = scale * dS^T @ q

The gradient with respect to a floating (additive) mask would be dS itself; it is not
returned (masks are treated as constants).

Dropout (unfused; the fused kernels do not take it)
--------------------------------------------------
``dropout_p`` with ``dropout_mask``, a bool keep-mask broadcastable to (B, H, Nq, Nk) drawn by
the caller, replaces P by  P * keep / (1 - dropout_p)  in o = P @ v (lse is unchanged). Backward
is the same with dP multiplied by keep / (1 - dropout_p), and Di = rowsum(dO * o) still equals
rowsum(P * dP). Pass the same keep-mask to backward.

The reference materialises every (Nq, Nk) matrix: it is written to be read, not to be fast.
It runs on NumPy or CuPy arrays alike (``xp`` is whichever module the inputs belong to).
"""
import numpy as np

from .._common import array_module
from ._inputs import check_backward_inputs, check_forward_inputs, mask_as_bias, resolve_scale


def attention_bias(mask, is_causal, Nq, Nk, dtype, xp=np):
    """Everything added to the scaled scores, broadcastable to (B, H, Nq, Nk): 0 or -inf for
    bool masks and causality, any value for floating masks; a (1, 1, 1, 1) zero when nothing is masked."""
    bias = mask_as_bias(mask, dtype)
    if bias is None:
        bias = xp.zeros((1, 1, 1, 1), dtype)
    if is_causal:
        visible = xp.tril(xp.ones((Nq, Nk), dtype=bool))  # top-left aligned: key j <= query i
        bias = bias + xp.where(visible, 0.0, -np.inf).astype(dtype)
    return bias


def _dropout_scale(dropout_p, dropout_mask, dtype):
    """keep / (1 - p) as an array (or 1.0 without dropout)."""
    if not dropout_p:
        return 1.0
    if dropout_mask is None:
        raise ValueError("attention: dropout_p > 0 needs dropout_mask (bool, True = keep)")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"attention: dropout_p must be in [0, 1), got {dropout_p}")
    return dropout_mask.astype(dtype) / dtype.type(1.0 - dropout_p)


def reference_forward(q, k, v, mask=None, is_causal=False, scale=None,
                      dropout_p=0.0, dropout_mask=None):
    """Attention forward. Returns ``(o, lse)``: o (B, H, Nq, Dv), lse (B, H, Nq) natural log.

    Fully-masked rows give o = 0 and lse = -inf. Dropout: see the module docstring.
    """
    B, H, Nq, Nk, D, Dv = check_forward_inputs(q, k, v, mask)
    scale = resolve_scale(scale, D)
    xp = array_module(q)

    s = scale * (q @ xp.swapaxes(k, -1, -2)) + attention_bias(mask, is_causal, Nq, Nk, q.dtype, xp)
    m = xp.max(s, axis=-1, keepdims=True)                       # (B, H, Nq, 1) row maximum
    m = xp.where(xp.isneginf(m), 0.0, m)                        # fully-masked row: any finite shift
    e = xp.exp(s - m)                                           # exp(-inf) = 0 for masked keys
    total = xp.sum(e, axis=-1, keepdims=True)                   # 0 only for fully-masked rows
    with np.errstate(divide="ignore"):
        lse = (m + xp.log(total))[..., 0]                       # log(0) = -inf for those rows
    p = e / xp.where(total > 0, total, 1.0)
    o = (p * _dropout_scale(dropout_p, dropout_mask, q.dtype)) @ v
    return o.astype(q.dtype, copy=False), lse.astype(q.dtype, copy=False)


def reference_backward(q, k, v, o, lse, do, mask=None, is_causal=False, scale=None,
                       dropout_p=0.0, dropout_mask=None):
    """Attention backward. Returns ``(dq, dk, dv)``, shaped like q, k, v.

    P is recomputed from ``lse``; rows with lse = -inf (fully masked) contribute nothing.
    """
    B, H, Nq, Nk, D, Dv = check_backward_inputs(q, k, v, o, lse, do, mask)
    scale = resolve_scale(scale, D)
    xp = array_module(q)

    s = scale * (q @ xp.swapaxes(k, -1, -2)) + attention_bias(mask, is_causal, Nq, Nk, q.dtype, xp)
    row_masked = xp.isneginf(lse)[..., None]                    # (B, H, Nq, 1)
    p = xp.where(row_masked, 0.0, xp.exp(s - xp.where(row_masked, 0.0, lse[..., None])))
    keep = _dropout_scale(dropout_p, dropout_mask, q.dtype)     # 1.0 without dropout

    dv = xp.swapaxes(p * keep, -1, -2) @ do
    dp = (do @ xp.swapaxes(v, -1, -2)) * keep
    di = xp.sum(do * o, axis=-1, keepdims=True)
    ds = p * (dp - di)
    dq = scale * (ds @ k)
    dk = scale * (xp.swapaxes(ds, -1, -2) @ q)
    return tuple(g.astype(q.dtype, copy=False) for g in (dq, dk, dv))
