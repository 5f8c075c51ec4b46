"""Floor 4: ``layer_norm`` (the ``tinymm.kernels.norm`` family), ``normalize`` and ``cosine_similarity``."""
from __future__ import annotations

import numpy as np

from tinymm.autograd import Function
from tinymm.ops._util import xp_of
from tinymm.ops import as_tensor, clamp, mul, sum

from tinymm.nn.functional._checks import check_same_device, check_same_dtype


# ----------------------------------------------------------------------------- layer norm


class LayerNormFn(Function):
    """LayerNorm over the trailing ``normalized_shape`` dims through ``tinymm.kernels.norm``.

    Trusts its inputs (``layer_norm`` checked them). Saves x (as C-contiguous rows), the per-row
    mean and 1/std; never the normalised output.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, n, eps):
        from tinymm.kernels import norm as K

        x2 = xp_of(x).ascontiguousarray(x.reshape(-1, n))
        w = None if weight is None else weight.reshape(n)
        b = None if bias is None else bias.reshape(n)
        y, mean, rstd = K.forward(x2, w, b, eps)
        ctx.save_for_backward(x2, mean, rstd, w)
        ctx.meta = (x.shape, None if weight is None else weight.shape, bias is not None)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        from tinymm.kernels import norm as K

        x2, mean, rstd, w = ctx.saved_arrays
        shape, wshape, has_bias = ctx.meta
        g2 = xp_of(g).ascontiguousarray(g.reshape(x2.shape))
        dx, dw, db = K.backward(g2, x2, mean, rstd, w, has_bias)
        return (
            dx.reshape(shape),
            None if dw is None else dw.reshape(wshape),
            None if db is None else db.reshape(wshape),
        )


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """PyTorch's ``F.layer_norm`` over the trailing ``normalized_shape`` dims. Checks everything
    here, once (shapes, dtypes, devices, eps); the Function and the kernels trust it."""
    x = as_tensor(input, "layer_norm")
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if x.ndim < k or x.shape[x.ndim - k :] != normalized_shape:
        raise ValueError(f"layer_norm: input shape {x.shape} does not end with normalized_shape {normalized_shape}")
    n = int(np.prod(normalized_shape))
    if n == 0:
        raise ValueError(f"layer_norm: normalized_shape {normalized_shape} has no elements to normalise over")
    if x.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"layer_norm: input has dtype {x.dtype}, expected float32 or float64")
    params = {}
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None:
            p = as_tensor(p, "layer_norm")
            if tuple(p.shape) != normalized_shape:
                raise ValueError(f"layer_norm: {name} has shape {tuple(p.shape)}, expected {normalized_shape}")
        params[name] = p
    check_same_device("layer_norm", input=x, **params)
    check_same_dtype("layer_norm", input=x, **params)
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)) or not eps >= 0:
        raise ValueError(f"layer_norm: eps must be a number >= 0, got {eps!r}")
    return LayerNormFn.apply(x, params["weight"], params["bias"], n, float(eps))


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
