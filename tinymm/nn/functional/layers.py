"""Floor 4: ``linear`` (one fused GEMM), ``dropout`` (and its channel and alpha forms),
``embedding`` and ``bilinear``."""
from __future__ import annotations

import warnings

import numpy as np

from tinymm import backend
from tinymm.autograd import Function
from tinymm.autograd_graph import operand
from tinymm.ops.inplace import apply_inplace
from tinymm.ops._util import xp_of
from tinymm.ops.convert import as_tensor
from tinymm.ops._util import DTypeError, IndexRangeError
from tinymm.ops.index import add_at
from tinymm.ops import stack
from tinymm.tensor import Tensor

from tinymm.nn.functional._checks import ShapeError, check_same_device, check_same_dtype
from tinymm.nn.functional.sparse_embedding import SparseEmbeddingFn


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

    @staticmethod
    def backward_graph(ctx, g):
        x, weight = ctx.saved_arrays
        nx, nw, nb = (list(ctx.needs_input_grad) + [False])[:3]
        X, W = operand(ctx, 0, x), operand(ctx, 1, weight)
        g2 = g.reshape(-1, g.shape[-1])
        gx = (g2 @ W).reshape(x.shape) if nx else None
        gw = g2.transpose(0, 1) @ X.reshape(-1, x.shape[-1]) if nw else None
        gb = g2.sum(dim=0) if (ctx.has_bias and nb) else None
        return gx, gw, gb


def linear(input, weight, bias=None):
    """``input (..., in) @ weight(out, in).T + bias(out)``."""
    x, w = as_tensor(input, "linear"), as_tensor(weight, "linear")
    if w.ndim != 2:
        raise ShapeError(f"linear: weight must be 2-D (out_features, in_features), got shape {tuple(w.shape)}")
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise ShapeError(f"linear: input has {x.shape[-1] if x.ndim else 0} features (shape {tuple(x.shape)}), weight expects {w.shape[1]}")
    if bias is not None:
        bias = as_tensor(bias, "linear")
        if bias.shape != (w.shape[0],):
            raise ShapeError(f"linear: bias has shape {tuple(bias.shape)}, expected ({w.shape[0]},)")
    check_same_device("linear", input=x, weight=w, bias=bias)
    check_same_dtype("linear", input=x, weight=w, bias=bias)
    if w.shape[1] == 0:  # no input features: the output is the bias (its GEMM would reshape an empty -1)
        out = x.sum(-1, keepdim=True) + w.sum(1)
        return out if bias is None else out + bias
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

    @staticmethod
    def backward_graph(ctx, g):
        (mask,) = ctx.saved_arrays
        return g * Tensor._wrap(mask)


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if inplace:
        return apply_inplace("dropout_", lambda t: dropout(t, p, training), input)
    x = as_tensor(input, "dropout")
    if x.dtype.kind != "f":
        raise DTypeError(f"dropout: needs a floating tensor, got {x.dtype}")
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
    def forward(ctx, weight, indices, padding_idx=None, scale_grad_by_freq=False):
        ctx.save_for_backward(indices)
        ctx.meta = (weight.shape, weight.dtype, padding_idx, scale_grad_by_freq)
        return weight[indices]

    @staticmethod
    def backward(ctx, g):
        (indices,) = ctx.saved_arrays
        return _embedding_weight_grad(g, indices, *ctx.meta), None

    @staticmethod
    def backward_graph(ctx, g):
        (indices,) = ctx.saved_arrays
        return EmbeddingBackFn.apply(g, indices, *ctx.meta), None


class EmbeddingBackFn(Function):
    """``EmbeddingFn``'s weight gradient as an op of its own, for ``create_graph=True``: forward
    is the array backward (rows scatter-added, scaled by frequency, padding row zero); its own
    backward picks the rows of the incoming gradient, zero at ``padding_idx``, and, as
    PyTorch's ``embedding_dense_double_backward``, without the frequency scale (the embedding's
    forward node already applies it once on the way back, so a second derivative agrees with
    finite differences of the first gradient)."""

    @staticmethod
    def forward(ctx, g, indices, shape, dtype, padding_idx, scale_grad_by_freq):
        ctx.padding_idx = padding_idx
        ctx.save_for_backward(indices)
        return _embedding_weight_grad(g, indices, shape, dtype, padding_idx, scale_grad_by_freq)

    @staticmethod
    def backward(ctx, gw):
        (indices,) = ctx.saved_arrays
        out = gw[indices]
        if ctx.padding_idx is not None:
            out = out * (indices != ctx.padding_idx)[..., None].astype(out.dtype)
        return out

    @staticmethod
    def backward_graph(ctx, gw):
        (indices,) = ctx.saved_arrays
        out = EmbeddingFn.apply(gw, indices, None, False)
        if ctx.padding_idx is not None:
            out = out * Tensor._wrap((indices != ctx.padding_idx)[..., None].astype(gw.dtype))
        return out


def _embedding_weight_grad(g, indices, shape, dtype, padding_idx, scale_grad_by_freq):
    xp = xp_of(g)
    gw = xp.zeros(shape, dtype)
    flat, rows = indices.reshape(-1), g.reshape(-1, shape[1])
    if scale_grad_by_freq:  # each row's gradient over how often the batch used it
        counts = xp.bincount(flat, minlength=shape[0])
        rows = rows / counts[flat].astype(dtype)[:, None]
    add_at(gw, flat, rows)
    if padding_idx is not None:
        gw[padding_idx] = 0
    return gw


def embedding_renorm_(weight, indices, max_norm: float, norm_type: float = 2.0):
    """PyTorch's ``max_norm``: each row of ``weight`` that ``indices`` use and whose
    ``norm_type``-norm exceeds ``max_norm`` is scaled in place to max_norm / (norm + 1e-7).
    Not differentiable (the weight's values change under the graph, as in PyTorch)."""
    xp = xp_of(weight._data)
    rows = xp.unique(indices.reshape(-1))
    if not rows.size:
        return
    norms = xp.linalg.norm(weight._data[rows].astype(np.float64), ord=norm_type, axis=1)
    big = norms > max_norm
    scale = (max_norm / (norms[big] + 1e-7)).astype(weight.dtype)
    weight._data[rows[big]] *= scale[:, None]


class PaddingIdxError(ValueError, AssertionError):
    """A padding_idx outside the table (PyTorch asserts: catchable as AssertionError too)."""


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False):
    """Rows of ``weight`` (num_embeddings, dim) at the integer ``input`` indices. ``max_norm``
    renormalises the used rows of ``weight`` in place first; ``scale_grad_by_freq`` divides each
    row's gradient by its count in ``input``; ``sparse=True``: the weight's gradient is a sparse
    COO tensor (``sparse_embedding``)."""
    idx = as_tensor(input, "embedding")
    w = as_tensor(weight, "embedding")
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"embedding: indices must be integers (int64 or int32), got {idx.dtype}")
    if w.ndim != 2:
        raise ShapeError(f"embedding: weight must be 2-D (num_embeddings, dim), got shape {tuple(w.shape)}")
    check_same_device("embedding", input=idx, weight=w)
    n = w.shape[0]
    if idx._data.size:
        lo, hi = int(idx._data.min()), int(idx._data.max())
        if lo < 0 or hi >= n:
            raise IndexRangeError(f"embedding: index out of range in self: values span [{lo}, {hi}], the table has {n} rows")
    if padding_idx is not None and not -n <= padding_idx < n:
        raise PaddingIdxError(f"embedding: padding_idx {padding_idx} must be within num_embeddings ({n})")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n
    if max_norm is not None:
        embedding_renorm_(w, idx._data, float(max_norm), float(norm_type))
    if sparse:
        return SparseEmbeddingFn.apply(w, idx._data, padding_idx, bool(scale_grad_by_freq))
    return EmbeddingFn.apply(w, idx._data, padding_idx, bool(scale_grad_by_freq))




# ----------------------------------------------------------------------------- channel and alpha dropout


def _keep_mask(x, shape, p):
    """A 0/1 array of ``shape`` (broadcastable to x), 1 with probability 1 − p, on x's device."""
    return (backend.rng(x.device).random(shape) >= p).astype(x.dtype)


def _check_dropout(fn, x, p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{fn}: dropout probability has to be between 0 and 1, but got {p}")
    if x.dtype.kind != "f":
        raise DTypeError(f"{fn}: needs a floating tensor, got {x.dtype}")


def _feature_mask_shape(fn, x, spatial):
    """The mask shape that zeroes whole channels of a batched (N, C, *spatial) or unbatched
    (C, *spatial) input."""
    if x.ndim not in (spatial + 1, spatial + 2):
        raise ShapeError(f"{fn}: Expected {spatial + 1}D or {spatial + 2}D input, but received a {x.ndim}D input "
                         f"of shape {tuple(x.shape)}")
    lead = 2 if x.ndim == spatial + 2 else 1
    return tuple(x.shape[:lead]) + (1,) * spatial


def _dropout2d_mask_shape(x):
    """PyTorch 2's dropout2d masks the first two dims of any input of rank >= 2, warning off
    ranks other than 4 and 3; a 3-D input is read as (N, C, L), not as unbatched (C, H, W)."""
    if x.ndim < 2:
        raise ShapeError(f"dropout2d: Expected 3D or 4D input, but received a {x.ndim}D input of shape {tuple(x.shape)}")
    if x.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                      "behavior is desired - input is interpreted as shape (N, C, L), as PyTorch does")
    elif x.ndim != 4:
        warnings.warn(f"dropout2d: Received a {x.ndim}-D input to dropout2d, which PyTorch deprecates; "
                      f"dropout2d is meant for 3D or 4D inputs")
    return tuple(x.shape[:2]) + (1,) * (x.ndim - 2)


def _feature_dropout(fn, input, p, training, spatial):
    x = as_tensor(input, fn)
    _check_dropout(fn, x, p)
    shape = _dropout2d_mask_shape(x) if fn == "dropout2d" else _feature_mask_shape(fn, x, spatial)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return x * Tensor._wrap(_keep_mask(x, shape, p) * x.dtype.type(1.0 / (1.0 - p)))


def dropout1d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of (N, C, L) or (C, L) with probability p, scale the rest by 1/(1−p)."""
    if inplace:
        return apply_inplace("dropout1d_", lambda t: dropout1d(t, p, training), input)
    return _feature_dropout("dropout1d", input, p, training, 1)


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of (N, C, H, W) with probability p, scale the rest by 1/(1−p). As in
    PyTorch 2 (with its warning), a 3-D input is (N, C, L): each (n, c) row is one channel."""
    if inplace:
        return apply_inplace("dropout2d_", lambda t: dropout2d(t, p, training), input)
    return _feature_dropout("dropout2d", input, p, training, 2)


def dropout3d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) with probability p."""
    if inplace:
        return apply_inplace("dropout3d_", lambda t: dropout3d(t, p, training), input)
    return _feature_dropout("dropout3d", input, p, training, 3)


_ALPHA_PRIME = 1.7580993408473766  # SELU's scale · alpha: the value SELU saturates to, negated


def _alpha_dropout(fn, input, p, training, mask_shape):
    """Dropped entries become SELU's saturation value −α′, then an affine map a·x + b keeps
    the mean and variance of a SELU-normalised input: a = ((1 − p)(1 + p·α′²))^−½."""
    x = as_tensor(input, fn)
    _check_dropout(fn, x, p)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    shape = mask_shape(x)
    keep = _keep_mask(x, shape, p)
    a = 1.0 / np.sqrt((_ALPHA_PRIME ** 2 * p + 1) * (1 - p))
    b = ((keep - 1) * _ALPHA_PRIME * a + _ALPHA_PRIME * a * p).astype(x.dtype)
    return x * Tensor._wrap((keep * a).astype(x.dtype)) + Tensor._wrap(b)


def alpha_dropout(input, p: float = 0.5, training: bool = False, inplace: bool = False):
    """Dropout for SELU networks (keeps zero mean and unit variance); off unless ``training``."""
    if inplace:
        return apply_inplace("alpha_dropout_", lambda t: alpha_dropout(t, p, training), input)
    return _alpha_dropout("alpha_dropout", input, p, training, lambda x: tuple(x.shape))


def feature_alpha_dropout(input, p: float = 0.5, training: bool = False, inplace: bool = False):
    """``alpha_dropout`` of whole channels of (N, C, *)."""
    if inplace:
        return apply_inplace("feature_alpha_dropout_", lambda t: feature_alpha_dropout(t, p, training), input)
    return _alpha_dropout("feature_alpha_dropout", input, p, training,
                          lambda x: tuple(x.shape[:2]) + (1,) * (x.ndim - 2))


# ----------------------------------------------------------------------------- bilinear


def bilinear(input1, input2, weight, bias=None):
    """y_o = Σ_ij x1_i · W_oij · x2_j + b_o over inputs (..., in1) and (..., in2) with the same
    leading dims; weight (out, in1, in2). Computed as one GEMM x1 · W (in1, out·in2) then a
    product-sum with x2, so autograd needs nothing of its own."""
    fn = "bilinear"
    x1, x2, w = as_tensor(input1, fn), as_tensor(input2, fn), as_tensor(weight, fn)
    if w.ndim != 3:
        raise ShapeError(f"{fn}: weight must be 3-D (out_features, in1_features, in2_features), got shape {tuple(w.shape)}")
    O, I1, I2 = w.shape
    if x1.ndim == 0 or x1.shape[-1] != I1:
        raise ShapeError(f"{fn}: input1 has shape {tuple(x1.shape)}, expected (..., {I1}) for weight of shape {tuple(w.shape)}")
    if x2.ndim == 0 or x2.shape[-1] != I2:
        raise ShapeError(f"{fn}: input2 has shape {tuple(x2.shape)}, expected (..., {I2}) for weight of shape {tuple(w.shape)}")
    if x1.shape[:-1] != x2.shape[:-1]:
        raise ShapeError(f"{fn}: input1 {tuple(x1.shape)} and input2 {tuple(x2.shape)} must have the same leading dims")
    if bias is not None:
        bias = as_tensor(bias, fn)
        if tuple(bias.shape) != (O,):
            raise ShapeError(f"{fn}: bias has shape {tuple(bias.shape)}, expected ({O},)")
    check_same_device(fn, input1=x1, input2=x2, weight=w, bias=bias)
    check_same_dtype(fn, input1=x1, input2=x2, weight=w, bias=bias)
    lead = tuple(x1.shape[:-1])
    t = x1.reshape(-1, I1) @ w.permute(1, 0, 2).reshape(I1, O * I2)  # (rows, O·in2)
    y = (t.reshape(-1, O, I2) * x2.reshape(-1, 1, I2)).sum(dim=-1)  # (rows, O)
    if bias is not None:
        y = y + bias
    return y.reshape(lead + (O,))


# ----------------------------------------------------------------------------- embedding bag


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type: float = 2, scale_grad_by_freq: bool = False,
                  mode: str = "mean", sparse: bool = False, per_sample_weights=None,
                  include_last_offset: bool = False, padding_idx=None):
    """Sums, means or maxima of bags of embedding rows, without the (bags, n, dim) tensor.

    ``input`` (B, n) is B bags of n indices; or 1-D indices with ``offsets`` (B,) marking where
    each bag starts (``include_last_offset``: B + 1 offsets, the last one at most len(input);
    PyTorch's quirks when it is less are kept, see below). Entries
    equal to ``padding_idx`` are left out (a mean counts only the rest); an empty bag gives
    zeros. ``per_sample_weights`` (same shape as ``input``) scale each row, ``mode='sum'``
    only. ``sparse=True``: the weight's gradient is sparse, as ``embedding``'s (not with
    ``mode='max'``, as PyTorch)."""
    fn = "embedding_bag"
    if sparse and mode == "max":
        raise ValueError("max mode does not support sparse weights")
    idx, w = as_tensor(input, fn), as_tensor(weight, fn)
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"{fn}: mode has to be one of sum, mean or max, got {mode!r}")
    if scale_grad_by_freq:
        raise NotImplementedError(f"{fn}: scale_grad_by_freq is not supported")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{fn}: input must hold integer indices, got {idx.dtype}")
    if max_norm is not None and idx._data.size:
        embedding_renorm_(w, idx._data, float(max_norm), float(norm_type))
    if w.ndim != 2:
        raise ShapeError(f"{fn}: weight must be 2-D (num_embeddings, embedding_dim), got shape {tuple(w.shape)}")
    xp = xp_of(idx._data)
    flat = idx._data
    sum_end = idx._data.size  # rows from here on count in a mean but add nothing (include_last_offset)
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError(f"{fn}: if input is 2D, then offsets has to be None, as input is treated as a mini-batch "
                             f"of fixed length sequences")
        B, n = idx.shape
        starts = xp.arange(B, dtype=np.int64) * n
        flat = flat.reshape(-1)
    elif idx.ndim == 1:
        if offsets is None:
            raise ValueError(f"{fn}: offsets has to be a 1D Tensor but got None")
        starts = as_tensor(offsets, fn)._data.astype(np.int64).reshape(-1)
        if starts.size and (int(starts[0]) != 0 or (starts[1:] < starts[:-1]).any()):
            raise ShapeError(f"{fn}: offsets must start at 0 and not decrease, got {offsets}")
        if include_last_offset:
            if not starts.size:
                raise ShapeError(f"{fn}: include_last_offset: number of offset should be at least 1")
            end = int(starts[-1])
            if end > flat.shape[0]:
                raise ShapeError(f"{fn}: offsets[-1] can not be greater than input's length {flat.shape[0]} "
                                 f"but got offsets[-1] of {end}")
            # PyTorch's quirk when offsets[-1] < len(input): the last bag runs to the end of the
            # input, except that its float32 sum/mean kernel (no padding_idx) adds rows only up
            # to offsets[-1] while a mean still divides by the count up to the end. (That
            # kernel leaves the later rows' gradients uninitialised; here they get none.)
            starts = starts[:-1]
            if not starts.size:
                flat = flat[:0]
            elif w.dtype == np.float32 and padding_idx is None and mode != "max":
                sum_end = end
        B = starts.shape[0]
    else:
        raise ShapeError(f"{fn}: input has to be 1D or 2D Tensor, but got Tensor of dimension {idx.ndim}")
    psw = None
    if per_sample_weights is not None:
        if mode != "sum":
            raise NotImplementedError(f"{fn}: per_sample_weights was not None. per_sample_weights is only supported "
                                      f"for mode='sum' (got mode='{mode}'). Please open a feature request on GitHub.")
        psw = as_tensor(per_sample_weights, fn)
        if tuple(psw.shape) != tuple(idx.shape):
            raise ShapeError(f"{fn}: per_sample_weights has shape {tuple(psw.shape)}, expected the input's "
                             f"{tuple(idx.shape)}")
        psw = psw.reshape(-1)[:flat.shape[0]]  # empty when include_last_offset leaves no bag
    total = flat.shape[0]
    # bag id of every index (offsets may repeat: empty bags)
    bag = xp.zeros(total, np.int64)
    if total and B:
        inner = starts[1:]
        xp.add.at(bag, inner[inner < total], 1)
        bag = xp.cumsum(bag)
    keep = xp.ones(total, bool)
    if padding_idx is not None:
        pad = padding_idx % w.shape[0]
        keep = flat != pad
    rows = embedding(Tensor._wrap(flat), w, padding_idx, sparse=sparse)  # (total, D)
    if psw is not None:
        rows = rows * psw.reshape(-1, 1)
    D = w.shape[1]
    if mode == "max":
        out = []
        ends = list(starts[1:].tolist()) + [total]
        for s, e in zip(starts.tolist(), ends):
            sel = xp.nonzero(keep[s:e])[0] + s
            out.append(rows[sel].amax(dim=0) if sel.size else Tensor._wrap(xp.zeros(D, w.dtype)))
        return _stack_rows(out, D, w)
    added = keep if sum_end >= total else keep & (xp.arange(total) < sum_end)
    scatter_idx = Tensor._wrap(xp.ascontiguousarray(xp.broadcast_to(bag[added][:, None], (int(added.sum()), D))))
    kept_rows = rows if bool(added.all()) else rows[Tensor._wrap(xp.nonzero(added)[0])]
    sums = Tensor._wrap(xp.zeros((B, D), w.dtype)).scatter_add(0, scatter_idx, kept_rows)
    if mode == "sum":
        return sums
    counts = xp.zeros(B, w.dtype)
    xp.add.at(counts, bag[keep], 1)
    return sums / Tensor._wrap(xp.maximum(counts, 1).reshape(-1, 1))


def _stack_rows(rows, D, w):
    """(B, D) from B one-row tensors (an empty list gives an empty (0, D))."""
    if not rows:
        return Tensor._wrap(xp_of(w._data).zeros((0, D), w.dtype))
    return stack(rows, 0)
