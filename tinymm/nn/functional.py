"""Floor 4: differentiable neural-network ops with PyTorch's names and signatures.

The elementary ops (``relu``, ``softmax``, ``pad``, ...) are re-exported from ``tinymm.ops``.
Ops defined here that are hot get one fused ``Function`` each instead of a chain of small
ones: ``linear`` (x·Wᵀ + b), ``layer_norm`` (the ``tinymm.kernels.norm`` family),
``embedding``, ``dropout``, and the losses in ``tinymm.nn.losses``.
"""
from __future__ import annotations

import numpy as np

from tinymm import backend
from tinymm.autograd import Function
from tinymm.ops import (  # noqa: F401  (re-exported)
    gelu,
    log_softmax,
    one_hot,
    pad,
    relu,
    sigmoid,
    silu,
    softmax,
    tanh,
)
from tinymm.ops._util import xp_of
from tinymm.ops.api import as_tensor, clamp, mul, sum
from tinymm.ops.index import _scatter_add
from tinymm.tensor import Tensor

from tinymm.nn.sdpa import scaled_dot_product_attention  # noqa: F401,E402  (re-exported)
from tinymm.nn.losses import (  # noqa: F401,E402  (re-exported)
    binary_cross_entropy_with_logits,
    cross_entropy,
    l1_loss,
    mse_loss,
    nll_loss,
)


def _check_device(name, **tensors):
    kinds = {k: v.device for k, v in tensors.items() if isinstance(v, Tensor)}
    if len(set(kinds.values())) > 1:
        raise ValueError(f"{name}: tensors on different devices: " + ", ".join(f"{k} on {d}" for k, d in kinds.items()))


def _check_dtype(name, **tensors):
    kinds = {k: v.dtype for k, v in tensors.items() if isinstance(v, Tensor)}
    if len(set(kinds.values())) > 1:
        raise TypeError(f"{name}: dtype mismatch: " + ", ".join(f"{k} is {d}" for k, d in kinds.items()))


# ----------------------------------------------------------------------------- linear


class LinearFn(Function):
    """y = x·Wᵀ + b over the last axis of x (any leading dims).

    Saves x and W. Backward: dx = dy·W, dW = dyᵀ·x (summed over all leading dims), db = Σ dy.
    """

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        # One (rows, in) x (in, out) GEMM over all leading dims, not one per batch item.
        out = x.reshape(-1, x.shape[-1]) @ weight.T
        if bias is not None:
            out += bias
        return out.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_arrays
        nx, nw, nb = (list(ctx.needs_input_grad) + [False])[:3]
        g2 = g.reshape(-1, g.shape[-1])
        gx = (g2 @ weight).reshape(x.shape) if nx else None
        gw = (g2.T @ x.reshape(-1, x.shape[-1])) if nw else None
        gb = g2.sum(axis=0) if (ctx.has_bias and nb) else None
        return gx, gw, gb


def linear(input, weight, bias=None):
    """``input (..., in) @ weight(out, in).T + bias(out)``."""
    x, w = as_tensor(input, "linear"), as_tensor(weight, "linear")
    if w.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {w.shape}")
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"linear: input has {x.shape[-1] if x.ndim else 0} features (shape {x.shape}), weight expects {w.shape[1]}")
    if bias is not None:
        bias = as_tensor(bias, "linear")
        if bias.shape != (w.shape[0],):
            raise ValueError(f"linear: bias has shape {bias.shape}, expected ({w.shape[0]},)")
    _check_device("linear", input=x, weight=w, bias=bias)
    _check_dtype("linear", input=x, weight=w, bias=bias)
    return LinearFn.apply(x, w, bias)


# ----------------------------------------------------------------------------- dropout


class DropoutFn(Function):
    """Zero each element with probability p and scale the rest by 1/(1−p); saves the mask."""

    @staticmethod
    def forward(ctx, x, p):
        keep = backend.rng(backend.device_of(x)).random(x.shape) >= p
        scale = x.dtype.type(1.0 / (1.0 - p))
        mask = keep.astype(x.dtype) * scale
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_arrays
        return g * mask


def dropout(input, p: float = 0.5, training: bool = True):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    x = as_tensor(input, "dropout")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return DropoutFn.apply(x, p)


# ----------------------------------------------------------------------------- embedding


class EmbeddingFn(Function):
    """Rows of ``weight`` picked by integer ``indices``; backward scatter-adds into the rows
    (an index used twice gets both gradients). The ``padding_idx`` row gets none."""

    @staticmethod
    def forward(ctx, weight, indices, padding_idx=None):
        ctx.save_for_backward(indices)
        ctx.meta = (weight.shape, weight.dtype, padding_idx)
        return weight[indices]

    @staticmethod
    def backward(ctx, g):
        (indices,) = ctx.saved_arrays
        shape, dtype, padding_idx = ctx.meta
        xp = xp_of(g)
        gw = xp.zeros(shape, dtype)
        _scatter_add(gw, indices.reshape(-1), g.reshape(-1, shape[1]))
        if padding_idx is not None:
            gw[padding_idx] = 0
        return gw, None


def embedding(input, weight, padding_idx=None):
    idx = as_tensor(input, "embedding")
    w = as_tensor(weight, "embedding")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got {idx.dtype}")
    if w.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, dim), got shape {w.shape}")
    _check_device("embedding", input=idx, weight=w)
    n = w.shape[0]
    if idx.data.size:
        lo, hi = int(idx.data.min()), int(idx.data.max())
        if lo < 0 or hi >= n:
            raise IndexError(f"embedding: index out of range: values span [{lo}, {hi}], the table has {n} rows")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n
    return EmbeddingFn.apply(w, idx.data, padding_idx)


# ----------------------------------------------------------------------------- layer norm


class LayerNormFn(Function):
    """LayerNorm over the trailing ``normalized_shape`` dims through ``tinymm.kernels.norm``.

    Saves x (as rows), the per-row mean and 1/std; never the normalised output.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, n, eps):
        from tinymm.kernels import norm as K

        x2 = xp_of(x).ascontiguousarray(x.reshape(-1, n))
        w = None if weight is None else weight.reshape(n)
        b = None if bias is None else bias.reshape(n)
        y, mean, rstd = K.layer_norm_forward(x2, w, b, eps)
        ctx.save_for_backward(x2, mean, rstd, w)
        ctx.meta = (x.shape, None if weight is None else weight.shape, bias is not None)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        from tinymm.kernels import norm as K

        x2, mean, rstd, w = ctx.saved_arrays
        shape, wshape, has_bias = ctx.meta
        g2 = xp_of(g).ascontiguousarray(g.reshape(x2.shape))
        dx, dw, db = K.layer_norm_backward(g2, x2, mean, rstd, w, has_bias)
        return (
            dx.reshape(shape),
            None if dw is None else dw.reshape(wshape),
            None if db is None else db.reshape(wshape),
        )


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    x = as_tensor(input, "layer_norm")
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if x.ndim < k or x.shape[x.ndim - k :] != normalized_shape:
        raise ValueError(f"layer_norm: input shape {x.shape} does not end with normalized_shape {normalized_shape}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != normalized_shape:
            raise ValueError(f"layer_norm: {name} has shape {tuple(p.shape)}, expected {normalized_shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"layer_norm: input must be floating, got {x.dtype}")
    _check_device("layer_norm", input=x, weight=weight, bias=bias)
    _check_dtype("layer_norm", input=x, weight=weight, bias=bias)
    n = int(np.prod(normalized_shape))
    return LayerNormFn.apply(x, weight, bias, n, float(eps))


# ----------------------------------------------------------------------------- norms


class VectorNormFn(Function):
    """The 2-norm along ``axis`` (kept); its gradient at a zero vector is 0, not NaN."""

    @staticmethod
    def forward(ctx, x, axis):
        xp = xp_of(x)
        out = xp.sqrt((x * x).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_arrays
        xp = xp_of(x)
        safe = xp.where(out == 0, 1, out).astype(x.dtype, copy=False)
        return g * x / safe


def _norm2(x, dim):
    from tinymm.ops._util import normalize_dim

    return VectorNormFn.apply(x, normalize_dim("norm", x.ndim, dim))


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12):
    """``x / max(‖x‖_p, eps)`` along ``dim`` (p = 2 only)."""
    if p != 2.0:
        raise NotImplementedError(f"normalize: only p=2 is supported, got p={p}")
    x = as_tensor(input, "normalize")
    return x / clamp(_norm2(x, dim), min=eps)


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8):
    """Σ x1·x2 / (max(‖x1‖, eps)·max(‖x2‖, eps)) along ``dim``, with broadcasting."""
    a, b = as_tensor(x1, "cosine_similarity"), as_tensor(x2, "cosine_similarity")
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"cosine_similarity: shapes {a.shape} and {b.shape} do not broadcast") from None
    d = dim % len(shape)
    if a.ndim < len(shape):
        a = a.reshape((1,) * (len(shape) - a.ndim) + a.shape)
    if b.ndim < len(shape):
        b = b.reshape((1,) * (len(shape) - b.ndim) + b.shape)
    na = clamp(_norm2(a, d), min=eps)
    nb = clamp(_norm2(b, d), min=eps)
    return sum(mul(a / na, b / nb), dim=d)
