"""Floor 4: ``linear`` (one fused GEMM), ``dropout`` and ``embedding``."""
from __future__ import annotations


from tinymm import backend
from tinymm.autograd import Function
from tinymm.ops._util import xp_of
from tinymm.ops.convert import as_tensor
from tinymm.ops.index import scatter_add

from tinymm.nn.functional._checks import check_same_device, check_same_dtype


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
    check_same_device("linear", input=x, weight=w, bias=bias)
    check_same_dtype("linear", input=x, weight=w, bias=bias)
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
        scatter_add(gw, indices.reshape(-1), g.reshape(-1, shape[1]))
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
    check_same_device("embedding", input=idx, weight=w)
    n = w.shape[0]
    if idx.data.size:
        lo, hi = int(idx.data.min()), int(idx.data.max())
        if lo < 0 or hi >= n:
            raise IndexError(f"embedding: index out of range: values span [{lo}, {hi}], the table has {n} rows")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n
    return EmbeddingFn.apply(w, idx.data, padding_idx)


