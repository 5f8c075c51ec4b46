"""Floor 4: ``layer_norm`` (the ``tinymm.kernels.norm`` family), ``normalize`` and ``cosine_similarity``."""
from __future__ import annotations

import numpy as np

from tinymm.autograd import Function
from tinymm.autograd_graph import checked_operand, node_output
from tinymm.ops._util import torch_dtype_name, xp_of
from tinymm import ops as O
from tinymm.ops.out_arg import with_out
from tinymm.ops import as_tensor, clamp, mul, sum
from tinymm.tensor import Tensor

from tinymm.nn.functional._checks import DTypeNotImplementedError, check_same_device, check_same_dtype
from tinymm.nn.functional.half import computes_in_float32


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
        ctx.eps = eps
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

    @staticmethod
    def backward_graph(ctx, g):
        """The same gradients on Tensors, the row statistics recomputed from x so they stay
        differentiable: x̂ = (x − μ)·r, r = 1/√(σ² + eps); dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))
        with ĝ = g·w; dw = Σ g·x̂, db = Σ g over the rows."""
        x2, _, _, w = ctx.saved_arrays  # the statistics are recomputed, differentiably
        shape, wshape, has_bias = ctx.meta
        nx, nw, nb = ctx.needs_input_grad[:3]
        n = x2.shape[1]
        # dbl: a copy made by the reshape was missed here; checked_operand compares values
        X = checked_operand(ctx, 0, x2).reshape(-1, n)
        mu = X.mean(dim=1, keepdim=True)
        xc = X - mu
        r = ((xc * xc).mean(dim=1, keepdim=True) + ctx.eps).rsqrt()
        xhat = xc * r
        g2 = g.reshape(-1, n)
        W = None
        if w is not None:
            W = ctx.inputs[1].reshape(n) if nw else Tensor._wrap(w)
        dx = dw = db = None
        if nx:
            gh = g2 if W is None else g2 * W
            dx = (r * (gh - gh.mean(dim=1, keepdim=True) - xhat * (gh * xhat).mean(dim=1, keepdim=True))).reshape(shape)
        if nw and w is not None:
            dw = (g2 * xhat).sum(dim=0).reshape(wshape)
        if nb and has_bias:
            db = g2.sum(dim=0).reshape(wshape)
        return dx, dw, db


@computes_in_float32  # revd: float16 layers
def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """PyTorch's ``F.layer_norm`` over the trailing ``normalized_shape`` dims. Checks everything
    here, once (shapes, dtypes, devices, eps); the Function and the kernels trust it."""
    x = as_tensor(input, "layer_norm")
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    if not normalized_shape:
        raise O.ShapeError(f"layer_norm: normalized_shape must name at least one dim, got () for input {tuple(x.shape)}")
    for s in normalized_shape:
        if not isinstance(s, (int, np.integer)):
            raise TypeError(f"layer_norm: normalized_shape must hold ints, got {normalized_shape}")
    k = len(normalized_shape)
    if x.ndim < k or x.shape[x.ndim - k :] != normalized_shape:
        raise O.ShapeError(f"layer_norm: input shape {tuple(x.shape)} does not end with normalized_shape {normalized_shape}")
    n = int(np.prod(normalized_shape))
    if n == 0:
        raise ValueError(f"layer_norm: normalized_shape {normalized_shape} has no elements to normalise over")
    if x.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise DTypeNotImplementedError(f"layer_norm: input has dtype {x.dtype}, expected float32 or float64")
    params = {}
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None:
            p = as_tensor(p, "layer_norm")
            if tuple(p.shape) != normalized_shape:
                raise O.ShapeError(f"layer_norm: {name} has shape {tuple(p.shape)}, expected {normalized_shape}")
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

    @staticmethod
    def backward_graph(ctx, g):
        x, out = ctx.saved_arrays
        zero = Tensor._wrap((out == 0).astype(x.dtype))
        return g * ctx.inputs[0] / (node_output(ctx, out) + zero)


def _norm2(x, dim):
    from tinymm.ops._util import normalize_dim

    return VectorNormFn.apply(x, normalize_dim("norm", x.ndim, dim))


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None):
    """``x / max(‖x‖_p, eps)`` along ``dim``, for any p (inf included); ``out=`` as PyTorch's."""
    if out is not None:
        return with_out(normalize, "normalize")(input, p, dim, eps, out=out)
    x = as_tensor(input, "normalize")
    if x._data.dtype.kind not in "fc":
        raise O.DTypeError(f"normalize: linalg.vector_norm: Expected a floating point or complex tensor as input. "
                           f"Got {torch_dtype_name(x._data.dtype)}")
    if float(p) == 2.0:
        return x / clamp(_norm2(x, dim), min=eps)
    return x / clamp(O.norm(x, float(p), dim, keepdim=True), min=eps)


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8):
    """Σ x1·x2 / (max(‖x1‖, eps)·max(‖x2‖, eps)) along ``dim``, with broadcasting."""
    a, b = as_tensor(x1, "cosine_similarity"), as_tensor(x2, "cosine_similarity")
    common = np.result_type(a._data.dtype, b._data.dtype)
    if common.kind not in "fc":
        raise O.DTypeError(f"cosine_similarity: expected common dtype to be floating point, yet common dtype is "
                           f"{torch_dtype_name(common)}")
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise O.ShapeError(f"cosine_similarity: shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast") from None
    d = dim % len(shape)
    # broadcast first, as PyTorch: a size-1 dim along ``dim`` is a vector repeated, not a shorter one
    if tuple(a.shape) != shape:
        a = O.broadcast_to(a, shape)
    if tuple(b.shape) != shape:
        b = O.broadcast_to(b, shape)
    # PyTorch clamps the norms in place without grad: the value is max(‖x‖, eps), the gradient
    # flows as through ‖x‖ (a straight-through clamp)
    na, nb = _norm2(a, d), _norm2(b, d)
    na = na + (clamp(na, min=eps) - na).detach()
    nb = nb + (clamp(nb, min=eps) - nb).detach()
    return sum(mul(a / na, b / nb), dim=d)


# ----------------------------------------------------------------------------- group / RMS norm


def _check_affine(fn, name, p, channels, x):
    if p is None:
        return None
    p = as_tensor(p, fn)
    if tuple(p.shape) != (channels,):
        raise O.ShapeError(f"{fn}: {name} has shape {tuple(p.shape)}, expected ({channels},) for an input of shape "
                           f"{tuple(x.shape)}")
    return p


@computes_in_float32  # revd: float16 layers
def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5):
    """Normalise (N, C, *) over each group of C/num_groups channels and all spatial positions,
    then scale and shift per channel. Each (sample, group) is one row of ``layer_norm``'s
    kernel; the per-channel affine is two broadcast ops after it."""
    fn = "group_norm"
    x = as_tensor(input, fn)
    if x.ndim < 2:
        raise O.ShapeError(f"{fn}: expected an input of at least 2 dims (N, C, *), got shape {tuple(x.shape)}")
    if x.dtype.kind != "f":
        raise DTypeNotImplementedError(f"{fn}: input must be float32 or float64, got {x.dtype}")
    N, C = x.shape[0], x.shape[1]
    if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)) or num_groups <= 0:
        raise ValueError(f"{fn}: num_groups must be a positive int, got {num_groups!r}")
    if C % num_groups:
        raise O.ShapeError(f"{fn}: Expected number of channels in input to be divisible by num_groups, but got "
                           f"input of shape {tuple(x.shape)} and num_groups={num_groups}")
    w = _check_affine(fn, "weight", weight, C, x)
    b = _check_affine(fn, "bias", bias, C, x)
    check_same_device(fn, input=x, weight=w, bias=b)
    check_same_dtype(fn, input=x, weight=w, bias=b)
    n = int(np.prod(x.shape[1:])) // num_groups
    if n == 0 or N == 0:
        return x * 1.0
    y = LayerNormFn.apply(x.reshape(N, num_groups, n), None, None, n, float(eps)).reshape(x.shape)
    shape = (1, C) + (1,) * (x.ndim - 2)
    if w is not None:
        y = y * w.reshape(shape)
    if b is not None:
        y = y + b.reshape(shape)
    return y


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / √(mean(x²) + eps) · weight over the trailing ``normalized_shape`` dims;
    ``eps=None`` is the input dtype's machine epsilon (PyTorch's default)."""
    fn = "rms_norm"
    x = as_tensor(input, fn)
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    k = len(normalized_shape)
    if not k or x.ndim < k or tuple(x.shape[x.ndim - k:]) != normalized_shape:
        raise O.ShapeError(f"{fn}: input shape {tuple(x.shape)} does not end with normalized_shape {normalized_shape}")
    if x.dtype.kind != "f":
        raise DTypeNotImplementedError(f"{fn}: input must be float32 or float64, got {x.dtype}")
    if weight is not None:
        weight = as_tensor(weight, fn)
        if tuple(weight.shape) != normalized_shape:
            raise O.ShapeError(f"{fn}: weight has shape {tuple(weight.shape)}, expected {normalized_shape}")
        check_same_device(fn, input=x, weight=weight)
        check_same_dtype(fn, input=x, weight=weight)
    if x.dtype == np.float16 and (weight is None or weight.dtype == np.float16):
        # revd: float32 inside, float32's eps by default, as PyTorch's CPU kernel
        return rms_norm(x.float(), normalized_shape, None if weight is None else weight.float(), eps).half()
    if eps is None:
        eps = float(np.finfo(x.dtype).eps)
    dims = tuple(range(x.ndim - k, x.ndim))
    y = x * O.rsqrt(O.mean(x * x, dim=dims, keepdim=True) + eps)
    return y * weight if weight is not None else y


# ----------------------------------------------------------------------------- distances


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
    """‖x1 − x2 + eps‖_p over the last dim, with broadcasting (PyTorch adds eps to the
    difference so the gradient at equal points is finite)."""
    a, b = as_tensor(x1, "pairwise_distance"), as_tensor(x2, "pairwise_distance")
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise O.ShapeError(f"pairwise_distance: shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast") from None
    d = a - b + eps
    if d.ndim == 0:
        raise O.ShapeError("pairwise_distance: inputs must have at least 1 dim, got scalars")
    return O.norm(d, float(p), -1, keepdim=keepdim)


def pdist(input, p: float = 2.0):
    """The p-norm distances between all pairs of rows of (N, M) input, as the N(N−1)/2
    entries above the diagonal, row by row."""
    x = as_tensor(input, "pdist")
    if x.ndim != 2:
        raise O.ShapeError(f"pdist: expected a 2-D (N, M) input, got shape {tuple(x.shape)}")
    n = x.shape[0]
    i, j = np.triu_indices(n, 1)
    if not len(i):
        return x.sum(dim=1)[:0]
    return O.norm(x[i] - x[j], float(p), -1)


def local_response_norm(input, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
    """x_c / (k + alpha/size · Σ x_c'²)^beta, the sum over the ``size`` channels around c
    (size//2 before, (size−1)//2 after, zeros beyond the edges) of (N, C, *) input."""
    x = as_tensor(input, "local_response_norm")
    if x.ndim < 3:
        raise O.ShapeError(f"local_response_norm: Expected 3D or higher dimensionality input (got {x.ndim} "
                           f"dimensions, shape {tuple(x.shape)})")
    if x._data.size == 0:
        return x * 1.0
    C = x.shape[1]
    before, after = size // 2, (size - 1) // 2
    sq = x * x
    xp = xp_of(x._data)
    parts = [sq]
    if before:
        parts.insert(0, Tensor._wrap(xp.zeros((x.shape[0], before) + tuple(x.shape[2:]), x.dtype)))
    if after:
        parts.append(Tensor._wrap(xp.zeros((x.shape[0], after) + tuple(x.shape[2:]), x.dtype)))
    padded = O.cat(parts, dim=1) if len(parts) > 1 else sq
    total = padded[:, 0:C]
    for j in range(1, size):
        total = total + padded[:, j:j + C]
    return x / (total * (alpha / size) + k) ** beta
