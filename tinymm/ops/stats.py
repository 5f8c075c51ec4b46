"""Statistics over a tensor's values: NaN-ignoring sum and mean, quantiles, the mode,
unique values, counting (``bincount``) and histograms (``histc``).

The differentiable ones (nansum, nanmean, quantile, mode's values) are built from ops that
already carry gradients (``sum``, ``sort``, ``index_select``, ``lerp``, ``gather``, and
NanToZero, whose gradient multiplies by the not-NaN mask as PyTorch's nansum does), so their
backward is theirs: a quantile's gradient goes to the one or two order statistics it
interpolates, the mode's to the element its index names. The counting ops return integers
or counts and have no gradient, as in PyTorch.
"""
from __future__ import annotations

import collections

import numpy as np

from tinymm.autograd import Function
from tinymm.ops._util import (
    DTypeError,
    DTypeNotImplementedError,
    ShapeError,
    ValueRangeError,
    normalize_dim,
    xp_of,
)
from tinymm.ops.convert import as_tensor, cast
from tinymm.ops.index import gather
from tinymm.ops.maths import isnan, lerp
from tinymm.ops.reduce import sum
from tinymm.ops.scan import sort
from tinymm.ops.shape import reshape, squeeze, unsqueeze
from tinymm.tensor import Tensor

ModeResult = collections.namedtuple("ModeResult", ["values", "indices"])


def _float_only(name, x):
    if x.dtype.kind not in "fc":
        raise DTypeError(f"{name}(): expected input to have floating point dtype but got {x.dtype}")


class NanToZero(Function):
    """NaN → 0; the gradient is g·[x is not NaN], a product as PyTorch's nansum backward, so an
    inf/NaN incoming gradient stays NaN at a NaN element (nanmean of an all-NaN slice)."""

    @staticmethod
    def forward(ctx, x):
        nan = xp_of(x).isnan(x)
        ctx.save_for_backward(nan)
        return xp_of(x).where(nan, 0, x).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (nan,) = ctx.saved_arrays
        return g * ~nan

    @staticmethod
    def backward_graph(ctx, g):
        (nan,) = ctx.saved_arrays
        return g * Tensor._wrap(~nan)


def nansum(x, dim=None, keepdim=False, *, dtype=None):
    """Sum treating NaN as zero; integer input sums to int64 (it has no NaN)."""
    x = as_tensor(x, "nansum")
    if dtype is not None:
        x = cast(x, dtype)
    if x.dtype.kind in "fc":
        x = NanToZero.apply(x)
    return sum(x, dim, keepdim)


def nanmean(x, dim=None, keepdim=False, *, dtype=None):
    """Mean of the non-NaN elements (NaN where all are NaN); floating input only."""
    x = as_tensor(x, "nanmean")
    if dtype is not None:
        x = cast(x, dtype)
    _float_only("nanmean", x)
    count = sum(Tensor._wrap((~isnan(x)._data).astype(x.dtype)), dim, keepdim)
    with np.errstate(invalid="ignore", divide="ignore"):  # an all-NaN slice is 0/0 = NaN, silently
        return nansum(x, dim, keepdim) / count


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def quantile(x, q, dim=None, keepdim=False, *, interpolation: str = "linear"):
    """The q-th quantiles of ``x`` (all of it when ``dim`` is None, else along ``dim``).

    The sorted values v[0..n-1] are read at position q·(n − 1), between v[floor] and
    v[ceil] by ``interpolation``. A 1-D ``q`` adds a leading dim of len(q). A slice holding
    NaN gives NaN (as PyTorch; ``nanquantile`` skips them instead)."""
    return _quantile("quantile", x, q, dim, keepdim, interpolation, ignore_nan=False)


def nanquantile(x, q, dim=None, keepdim=False, *, interpolation: str = "linear"):
    """``quantile`` over the non-NaN values of each slice (NaN where all are NaN)."""
    return _quantile("nanquantile", x, q, dim, keepdim, interpolation, ignore_nan=True)


def _quantile(name, x, q, dim, keepdim, interpolation, ignore_nan):
    x = as_tensor(x, name)
    if x.dtype not in (np.float32, np.float64):
        raise DTypeError(f"{name}() input tensor must be either float or double dtype, got {x.dtype}")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"{name}() interpolation must be one of {', '.join(_INTERPOLATIONS)}. Got '{interpolation}'")
    if isinstance(q, Tensor) and q.dtype != x.dtype:  # probe8: PyTorch refuses a float32 q for float64 x
        raise DTypeError(f"{name}() q tensor must be same dtype as the input tensor (got q {q.dtype}, input {x.dtype})")
    scalar_q = np.ndim(q._data if isinstance(q, Tensor) else q) == 0  # a 0-d tensor q too, as PyTorch
    qa = np.asarray(q.numpy(force=True) if isinstance(q, Tensor) else q, dtype=np.float64).reshape(-1)
    if isinstance(q, Tensor) and q.ndim > 1:
        raise ShapeError(f"{name}() q must be a scalar or 1D tensor, got shape {tuple(q.shape)}")
    if np.isnan(qa).any() or (qa < 0).any() or (qa > 1).any():
        raise ValueRangeError(f"{name}() q values must be in the range [0, 1], got {qa.tolist()}")
    if x.numel() == 0:
        raise ShapeError(f"{name}() input tensor must be non-empty")
    orig_ndim = x.ndim
    if dim is None:
        x, axis = reshape(x, -1), 0
    else:
        axis = normalize_dim(name, x.ndim, dim)
        if x.ndim == 0:
            x = reshape(x, 1)
    xp = xp_of(x._data)
    values = sort(x, axis).values  # NaN sorts last
    n = x.shape[axis]
    if ignore_nan:
        # Each slice has its own count of non-NaN values: positions differ per slice.
        valid = (~xp.isnan(x._data)).sum(axis=axis, keepdims=True)  # (..., 1, ...)
        pos = xp.asarray(qa).reshape((-1,) + (1,) * x.ndim) * (xp.maximum(valid, 1) - 1)[None]
    else:
        pos = xp.asarray(qa).reshape((-1,) + (1,) * x.ndim) * (n - 1)
        pos = xp.broadcast_to(pos, (len(qa),) + tuple(1 if i == axis else s for i, s in enumerate(x.shape)))
    if not ignore_nan:
        nan_rows = xp.isnan(x._data).any(axis=axis, keepdims=True)
        if nan_rows.any():
            # As PyTorch: a slice holding NaN reads its last sorted value, a NaN (its gradient goes there).
            pos = xp.where(nan_rows[None], n - 1, pos)
    lo = xp.floor(pos).astype(np.int64)
    hi = xp.ceil(pos).astype(np.int64)
    if interpolation == "lower":
        hi = lo
    elif interpolation == "higher":
        lo = hi
    elif interpolation == "nearest":
        lo = hi = xp.round(pos).astype(np.int64)
    # Gather v[lo] and v[hi] slice by slice: values (…, n, …) -> (Q, …, 1, …) each.
    full = (len(qa),) + tuple(1 if i == axis else s for i, s in enumerate(x.shape))
    stacked = unsqueeze(values, 0).expand(len(qa), *values.shape)
    v_lo = gather(stacked, axis + 1, Tensor._wrap(xp.broadcast_to(lo, full).copy()))
    v_hi = gather(stacked, axis + 1, Tensor._wrap(xp.broadcast_to(hi, full).copy()))
    if interpolation == "midpoint":
        w = 0.5 * (hi != lo)
    elif interpolation == "linear":
        w = pos - lo
    else:
        w = xp.zeros(full)
    out = lerp(v_lo, v_hi, Tensor._wrap(xp.broadcast_to(xp.asarray(w, dtype=x.dtype), full).copy()))
    out = squeeze(out, axis + 1)  # (Q, reduced...)
    if keepdim:
        if dim is None:
            out = reshape(out, (len(qa),) + (1,) * orig_ndim)
        elif orig_ndim:
            out = unsqueeze(out, axis + 1)
    return squeeze(out, 0) if scalar_q else out


def mode(x, dim=-1, keepdim=False):
    """The most frequent value along ``dim`` (the smallest of equally frequent ones) and the
    index of its last occurrence, as PyTorch: (values, indices)."""
    x = as_tensor(x, "mode")
    if x.ndim == 0:
        return ModeResult(x * 1 if x.dtype.kind in "fc" else Tensor._wrap(x._data.copy()),
                          Tensor._wrap(xp_of(x._data).zeros((), np.int64)))
    axis = normalize_dim("mode", x.ndim, dim)
    if x.shape[axis] == 0:
        raise IndexError(f"mode(): expected a non-empty dim {axis}, got shape {tuple(x.shape)}")
    xp = xp_of(x._data)
    rows = xp.moveaxis(x._data, axis, -1)
    order = xp.argsort(rows, axis=-1, kind="stable")  # equal values keep their index order
    s = xp.take_along_axis(rows, order, axis=-1)
    # Runs of equal sorted values, over all rows at once (each row's first element starts a run):
    # the run length at every position, then per row the first longest run (the smallest value).
    starts = xp.ones(s.shape, bool)
    starts[..., 1:] = s[..., 1:] != s[..., :-1]
    flat = starts.reshape(-1)
    run_of = xp.cumsum(flat) - 1
    run_start = xp.flatnonzero(flat)
    run_len = xp.diff(xp.concatenate([run_start, xp.asarray([flat.shape[0]])]))
    length = run_len[run_of].reshape(s.shape)
    best = xp.argmax(length, axis=-1)[..., None]
    last = best + xp.take_along_axis(length, best, axis=-1) - 1  # the run's last sorted position
    idx = xp.take_along_axis(order, last, axis=-1)  # stable: the last original index
    idx = xp.moveaxis(idx, -1, axis).astype(np.int64)
    values = gather(x, axis, Tensor._wrap(idx))
    if not keepdim:
        values, idx = squeeze(values, axis), idx.squeeze(axis)
    return ModeResult(values, Tensor._wrap(idx))


def unique(x, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, dim=None):
    """The distinct values (always sorted, as PyTorch's CPU unique), optionally with the inverse
    indices (``x`` = out[inverse]) and counts; with ``dim``, distinct slices along it."""
    x = as_tensor(x, "unique")
    xp = xp_of(x._data)
    if dim is None:
        # NaN != NaN: each NaN is its own value, as PyTorch (NumPy merges them by default)
        vals, inv, cnt = xp.unique(x._data, return_inverse=True, return_counts=True, equal_nan=False)
        inv = inv.reshape(x.shape)
    else:
        axis = normalize_dim("unique", x.ndim, dim)
        _refuse_empty_unselected("unique", x.shape, axis)
        vals, inv, cnt = np.unique(x.numpy(force=True), return_inverse=True, return_counts=True, axis=axis)
        vals, inv, cnt = xp.asarray(vals), xp.asarray(inv.reshape(-1)), xp.asarray(cnt)
    return _unique_result(vals, inv, cnt, return_inverse, return_counts)


def _refuse_empty_unselected(name, shape, axis):
    """PyTorch refuses distinct slices along ``axis`` when another dim has size 0 (every
    slice is then empty, and equal: whether that makes one slice or none is undefined)."""
    if any(n == 0 for d, n in enumerate(shape) if d != axis):
        raise ShapeError(f"{name}: shape {tuple(shape)} has 0-sized dimensions besides dim {axis}: There are 0 sized "
                         f"dimensions, and they aren't selected, so unique cannot be applied")


def _unique_result(vals, inv, cnt, return_inverse, return_counts):
    out = [Tensor._wrap(vals)]
    if return_inverse:
        out.append(Tensor._wrap(inv.astype(np.int64)))
    if return_counts:
        out.append(Tensor._wrap(cnt.astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def unique_consecutive(x, return_inverse: bool = False, return_counts: bool = False, dim=None):
    """Each run of equal consecutive values (or slices along ``dim``) collapsed to one."""
    x = as_tensor(x, "unique_consecutive")
    xp = xp_of(x._data)
    if dim is None:
        flat = x._data.reshape(-1)
        new = xp.ones(flat.shape, bool)
        new[1:] = flat[1:] != flat[:-1]
        vals = flat[new]
        shape = x.shape
    else:
        axis = normalize_dim("unique_consecutive", x.ndim, dim)
        _refuse_empty_unselected("unique_consecutive", x.shape, axis)
        rows = xp.moveaxis(x._data, axis, 0).reshape(x.shape[axis], x.numel() // max(x.shape[axis], 1))
        new = xp.ones(rows.shape[0], bool)
        new[1:] = (rows[1:] != rows[:-1]).any(axis=1)
        vals = xp.compress(new, x._data, axis=axis)
        shape = (x.shape[axis],)
    inv = (xp.cumsum(new) - 1).reshape(shape)
    starts = xp.flatnonzero(new)
    cnt = xp.diff(xp.concatenate([starts, xp.asarray([new.shape[0]])]))
    return _unique_result(vals, inv, cnt, return_inverse, return_counts)


def bincount(x, weights=None, minlength: int = 0):
    """How often each value 0..max occurs in a 1-D non-negative integer tensor (int64), or
    the sum of ``weights`` per value (in the weights' dtype; float64 for integer weights)."""
    x = as_tensor(x, "bincount")
    if x.dtype.kind not in "iub":  # NotImplementedError, as PyTorch's
        raise DTypeNotImplementedError(f"\"bincount_cpu\" not implemented for '{x.dtype}': bincount needs integers")
    if x.ndim != 1:
        raise ShapeError(f"bincount only supports 1-d non-negative integral inputs, got {x.dtype} of shape {tuple(x.shape)}")
    if x._data.size and int(x._data.min()) < 0:
        raise ValueRangeError("bincount only supports 1-d non-negative integral inputs (found a negative value)")
    if minlength < 0:
        raise ValueRangeError(f"bincount: minlength should be >= 0, got {minlength}")
    xp = xp_of(x._data)
    if weights is None:
        return Tensor._wrap(xp.bincount(x._data, minlength=minlength).astype(np.int64))
    w = as_tensor(weights, "bincount")
    if w.shape != x.shape:
        raise ShapeError(f"bincount: weights should be 1-d and have the same length as input, got {tuple(w.shape)} "
                         f"and {tuple(x.shape)}")
    dt = w.dtype if w.dtype.kind in "fc" else np.float64
    return Tensor._wrap(xp.bincount(x._data, weights=w._data, minlength=minlength).astype(dt))


def histc(x, bins: int = 100, min: float = 0, max: float = 0):
    """A histogram of ``bins`` equal bins over [min, max] (the data's range when both are 0);
    values outside are ignored, the last bin includes max. Floating input only."""
    x = as_tensor(x, "histc")
    if x.dtype.kind not in "fc":
        raise DTypeNotImplementedError(f'"histc" not implemented for {x.dtype} (histc needs a floating tensor)')
    if bins <= 0:
        raise ShapeError(f"histc: bins must be > 0, got {bins}")
    xp = xp_of(x._data)
    lo, hi = float(min), float(max)
    if lo == hi and x.numel():
        lo, hi = float(x._data.min()), float(x._data.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise ShapeError(f"histc: max must be larger than min, got min {min} and max {max}")
    # PyTorch's bin of v, in the input's dtype (so float32 rounding at the edges agrees):
    # trunc((v - lo)·bins / (hi - lo)), the right edge falling in the last bin
    d = x.dtype.type
    a = x._data.reshape(-1)
    left, right = d(lo), d(hi)
    v = a[(a >= left) & (a <= right)]  # NaN fails both
    pos = ((v - left) * d(bins) / (right - left)).astype(np.int64)
    pos = xp.minimum(pos, int(bins) - 1)
    return Tensor._wrap(xp.bincount(pos, minlength=int(bins)).astype(x.dtype))
