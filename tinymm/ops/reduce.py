"""Reductions (sum, mean, var, max/min, logsumexp) and softmax/log-softmax.

A reduction's backward broadcasts the incoming gradient back over the reduced axes. The
softmax family runs through the fused kernels in ``tinymm.kernels.softmax`` (last axis of a
2-D array); other axes are moved last first.
"""
from __future__ import annotations

import builtins
import collections

import numpy as np

from tinymm.autograd import Function
from tinymm.autograd_graph import node_output, operand
from tinymm.ops._util import (
    DTypeError,
    DTypeNotImplementedError,
    EmptyReductionError,
    keep_flag,
    normalize_dim,
    normalize_dims,
    refuse_complex,
    torch_dtype_name,
    xp_of,
)
from tinymm.ops.convert import as_tensor, cast, to_float
from tinymm.ops.elementwise import maximum, minimum, sqrt
from tinymm.tensor import Tensor


def _expand_back(g, in_shape, axes, keepdim):
    """Reshape a reduced gradient so it lines up with the input's axes, then broadcast it into
    a new array (writing into ``empty`` is several times cheaper than ``broadcast_to`` for small
    tensors, and a fresh array can become a leaf's ``.grad`` without a copy)."""
    if axes is not None and not keepdim:
        shape = list(in_shape)
        for a in axes:
            shape[a] = 1
        g = g.reshape(shape)
    out = xp_of(g).empty(in_shape, g.dtype)
    out[...] = g
    return out


def _expand_back_graph(g, in_shape, axes, keepdim):
    """``_expand_back`` with Tensor ops (for ``create_graph=True``)."""
    if axes is not None and not keepdim:
        shape = list(in_shape)
        for a in axes:
            shape[a] = 1
        g = g.reshape(tuple(shape))
    return g.expand(tuple(in_shape))


def _count(shape, axes) -> int:
    if axes is None:
        return int(np.prod(shape)) if shape else 1
    return int(np.prod([shape[a] for a in axes]))


class _AxisReduce(Function):
    """``x.<method>(axis=axes, keepdims=keepdim)``; saves only the input shape and the axes,
    which is all a linear reduction's backward needs."""

    method = None  # "sum" or "mean"

    @classmethod
    def forward(cls, ctx, x, axes=None, keepdim=False):
        ctx.meta = (x.shape, axes, keepdim)
        return getattr(x, cls.method)(axis=axes, keepdims=keepdim)


class Sum(_AxisReduce):
    method = "sum"

    @staticmethod
    def backward(ctx, g):
        shape, axes, keepdim = ctx.meta
        return _expand_back(g, shape, axes, keepdim)

    @staticmethod
    def backward_graph(ctx, g):
        return _expand_back_graph(g, *ctx.meta)


def sum(x, dim=None, keepdim=False, *, dtype=None, **np_style):
    """Sum over ``dim`` (all when None); integer and bool input sum to int64, as PyTorch;
    ``dtype`` casts the input first."""
    x = as_tensor(x, "sum")
    if dtype is not None:
        x = cast(x, dtype)
    if dim is None and not np_style:  # x.sum(): nothing to normalise
        axes, keep = None, bool(keepdim)
    else:
        axes = normalize_dims("sum", x.ndim, dim, np_style.get("axis"))
        keep = keep_flag(keepdim, np_style)
    if x._data.dtype.kind not in "fc":
        kind = x._data.dtype.kind
        # a given dtype is kept (NumPy would widen an int32 sum to int64 on its own)
        return Tensor._wrap(x._data.sum(axis=axes, keepdims=keep, dtype=np.int64 if kind in "biu" and dtype is None else x._data.dtype))
    return Sum.apply(x, axes, keep)


class Mean(_AxisReduce):
    method = "mean"

    @staticmethod
    def backward(ctx, g):
        shape, axes, keepdim = ctx.meta
        n = builtins.max(_count(shape, axes), 1)
        if g.dtype == np.float16:  # 1/n in float32: n may exceed float16's largest value, 65504
            return _expand_back((g.astype(np.float32) / n).astype(np.float16), shape, axes, keepdim)
        return _expand_back(g / g.dtype.type(n), shape, axes, keepdim)

    @staticmethod
    def backward_graph(ctx, g):
        shape, axes, keepdim = ctx.meta
        return _expand_back_graph(g / builtins.max(_count(shape, axes), 1), shape, axes, keepdim)


def mean(x, dim=None, keepdim=False, *, dtype=None, **np_style):
    """Mean over ``dim`` (all when None). As PyTorch, the input must be floating point, or
    ``dtype`` a floating type it is cast to first: an integer mean has no dtype to infer."""
    x = as_tensor(x, "mean")
    if dtype is not None:
        if np.dtype(dtype).kind not in "fc":
            raise DTypeError("mean(): could not infer output dtype. Optional dtype must be either a floating "
                             f"point or complex dtype. Got: {torch_dtype_name(dtype)}")
        x = cast(x, dtype)
    elif x._data.dtype.kind not in "fc":
        raise DTypeError("mean(): could not infer output dtype. Input dtype must be either a floating point "
                         f"or complex dtype. Got: {torch_dtype_name(x.dtype)}")
    axes = normalize_dims("mean", x.ndim, dim, np_style.get("axis"))
    return Mean.apply(x, axes, keep_flag(keepdim, np_style))


class Var(Function):
    """Variance with ``correction`` (PyTorch's default 1: the unbiased estimate)."""

    @staticmethod
    def forward(ctx, x, axes=None, keepdim=False, correction=1):
        if x.dtype == np.float16:  # float16 overflows counts and sums of squares: work in float32
            return Var.forward(ctx, x.astype(np.float32), axes, keepdim, correction).astype(np.float16)
        ctx.meta = (x.shape, axes, keepdim)
        mean = x.mean(axis=axes, keepdims=True)
        centered = x - mean
        n = _count(x.shape, axes)
        ctx.denom = builtins.max(n - correction, 0)
        ctx.save_for_backward(centered)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (centered * centered).sum(axis=axes, keepdims=keepdim) / x.dtype.type(ctx.denom)

    @staticmethod
    def backward(ctx, g):
        (centered,) = ctx.saved_arrays
        shape, axes, keepdim = ctx.meta
        gb = _expand_back(g.astype(centered.dtype, copy=False), shape, axes, keepdim)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = gb * centered * centered.dtype.type(2.0 / ctx.denom if ctx.denom else np.inf)
        return out.astype(g.dtype, copy=False)

    @staticmethod
    def backward_graph(ctx, g):
        (centered,) = ctx.saved_arrays
        shape, axes, keepdim = ctx.meta
        if centered.dtype != g.dtype:  # float16 input, computed in float32
            return NotImplemented
        x = ctx.inputs[0]
        c = x - x.mean(dim=axes, keepdim=True)  # recomputed, so the second derivative reaches x
        # forward saved a new array, whose version says nothing about x: compare the values
        if not xp_of(centered).array_equal(c._data, centered, equal_nan=True):
            raise RuntimeError("one of the variables needed for gradient computation has been modified by an "
                               "inplace operation: the input of VarBackward0 changed after forward. "
                               "Make the change on a clone(), or after backward().")
        return _expand_back_graph(g, shape, axes, keepdim) * c * (2.0 / ctx.denom if ctx.denom else np.inf)


def _correction(unbiased, correction, np_style) -> int:
    ddof = np_style.pop("ddof", None)
    given = [v for v in (unbiased, correction, ddof) if v is not None]
    if len(given) > 1:
        raise TypeError("var/std: give only one of unbiased, correction, ddof")
    if correction is not None:
        return int(correction)
    if ddof is not None:
        return int(ddof)
    if unbiased is not None:
        return 1 if unbiased else 0
    return 1  # PyTorch's default: the unbiased (Bessel-corrected) estimate


def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None, **np_style):
    """Variance over ``dim``; PyTorch's positional order ``var(dim, unbiased, keepdim)``,
    ``correction`` (default 1) or NumPy's ``ddof``."""
    x = as_tensor(x, "var")
    if x._data.dtype.kind not in "fc":
        raise DTypeError(f"std and var only support floating point and complex dtypes (got {torch_dtype_name(x.dtype)})")
    c = _correction(unbiased, correction, np_style)
    axes = normalize_dims("var", x.ndim, dim, np_style.get("axis"))
    if x._data.dtype.kind == "c":  # cplx: the mean of |z − mean|², a real tensor
        from tinymm.ops.complex_ops import complex_var

        return complex_var(x, axes, keep_flag(keepdim, np_style), c)
    return Var.apply(x, axes, keep_flag(keepdim, np_style), c)


def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None, **np_style):
    """The square root of ``var``; where it is 0 (a constant row) the gradient is 0, as
    PyTorch's, not sqrt's infinite slope times zero (NaN)."""
    from tinymm.ops.index import where

    v = var(x, dim, unbiased, keepdim, correction=correction, **np_style)
    zero = Tensor._wrap(v._data == 0)
    if not bool(zero._data.any()):
        return sqrt(v)
    # the double where keeps sqrt's backward away from 0
    return where(zero, 0.0, sqrt(where(zero, 1.0, v)))


class MaxMinDim(Function):
    """Max or min along one axis: (values, indices). The gradient goes to the chosen index."""

    @staticmethod
    def forward(ctx, x, axis, keepdim=False, which="max"):
        xp = xp_of(x)
        idx = (xp.argmax if which == "max" else xp.argmin)(x, axis=axis)
        idx_k = xp.expand_dims(idx, axis)
        values = xp.take_along_axis(x, idx_k, axis=axis)
        ctx.meta = (x.shape, x.dtype, axis, keepdim)
        ctx.save_for_backward(idx_k)
        ctx.mark_non_differentiable(1)
        if not keepdim:
            values = values.squeeze(axis)
            return values, idx.astype(np.int64)
        return values, idx_k.astype(np.int64)

    @staticmethod
    def backward(ctx, g, _gi):
        (idx_k,) = ctx.saved_arrays
        shape, dtype, axis, keepdim = ctx.meta
        xp = xp_of(g)
        out = xp.zeros(shape, dtype)
        if not keepdim:
            g = xp.expand_dims(g, axis)
        xp.put_along_axis(out, idx_k, g, axis=axis)
        return out

    @staticmethod
    def backward_graph(ctx, g, _gi):
        from tinymm.ops.index import IndexPutZeros  # index.py builds on this module

        (idx_k,) = ctx.saved_arrays
        shape, _, axis, keepdim = ctx.meta
        xp = xp_of(idx_k)
        # put_along_axis as an advanced index: idx_k on ``axis``, each position's own elsewhere
        where_ = tuple(idx_k if d == axis else xp.arange(n).reshape([-1 if e == d else 1 for e in range(idx_k.ndim)])
                       for d, n in enumerate(idx_k.shape))
        return IndexPutZeros.apply(g if keepdim else g.unsqueeze(axis), shape, where_)


class MaxMinAll(Function):
    """Max or min over several (or all) axes; ties share the gradient evenly (as PyTorch's amax)."""

    @staticmethod
    def forward(ctx, x, axes=None, keepdim=False, which="max", nan_wins=True):
        out = (x.max if which == "max" else x.min)(axis=axes, keepdims=True)
        ctx.meta = (x.shape, axes, keepdim, nan_wins)
        ctx.save_for_backward(x, out)
        return out if keepdim else out.reshape(_reduced_shape(x.shape, axes))

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_arrays
        shape, axes, keepdim, nan_wins = ctx.meta
        xp = xp_of(x)
        # A NaN is the max (and min) where present: max()/min() send the gradient to the NaN(s)
        # only; amax/amin compare x == out and so give NaN gradients, as PyTorch does.
        hit = (x == out) | (xp.isnan(x) & xp.isnan(out)) if nan_wins else (x == out)
        n = hit.sum(axis=axes, keepdims=True)
        gk = g.reshape(out.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (hit * (gk / n)).astype(x.dtype, copy=False)

    @staticmethod
    def backward_graph(ctx, g):
        x, out = ctx.saved_arrays
        _, _, _, nan_wins = ctx.meta
        xp = xp_of(x)
        hit = (x == out) | (xp.isnan(x) & xp.isnan(out)) if nan_wins else (x == out)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = (hit / hit.sum(axis=ctx.meta[1], keepdims=True)).astype(x.dtype, copy=False)
        return g.reshape(out.shape) * Tensor._wrap(share)


MaxResult = collections.namedtuple("MaxResult", ["values", "indices"])


def _max_min(which, x, dim, keepdim, np_style):
    if isinstance(dim, Tensor):  # torch.max(a, b) is the elementwise maximum
        return (maximum if which == "max" else minimum)(x, dim)
    x = as_tensor(x, which)
    refuse_complex(x, f"{which}_all")
    axis = np_style.get("axis")
    keep = keep_flag(keepdim, np_style)
    if x._data.size == 0:
        _refuse_empty_reduction(which, x, None if dim is None else (normalize_dim(which, x.ndim, dim),))
    if dim is None:
        # No dim (or NumPy's axis=): values only, as numpy.max returns.
        axes = normalize_dims(which, x.ndim, None, axis)
        if x._data.dtype.kind not in "fc":
            return Tensor._wrap(getattr(x._data, which)(axis=axes, keepdims=keep))
        return MaxMinAll.apply(x, axes, keep, which)
    # PyTorch's dim=: (values, indices) along one axis.
    d = normalize_dim(which, x.ndim, dim)
    if x.ndim == 0:
        return MaxResult(x * 1 if x.dtype.kind in "fc" else Tensor._wrap(x._data.copy()),
                         Tensor._wrap(xp_of(x._data).zeros((), np.int64)))
    if x._data.dtype.kind not in "fc":
        xp = xp_of(x._data)
        idx = (xp.argmax if which == "max" else xp.argmin)(x._data, axis=d)
        vals = xp.take_along_axis(x._data, xp.expand_dims(idx, d), axis=d)
        if not keep:
            vals = vals.squeeze(d)
        else:
            idx = xp.expand_dims(idx, d)
        return MaxResult(Tensor._wrap(vals), Tensor._wrap(idx.astype(np.int64)))
    values, indices = MaxMinDim.apply(x, d, keep, which)
    return MaxResult(values, indices)


def max(x, dim=None, keepdim=False, **np_style):
    """``x.max()`` → the max; ``x.max(dim)`` → (values, indices); ``x.max(axis=...)`` → values
    (NumPy's spelling gets NumPy's return); ``max(a, b)`` with a tensor b → elementwise."""
    return _max_min("max", x, dim, keepdim, np_style)


def min(x, dim=None, keepdim=False, **np_style):
    return _max_min("min", x, dim, keepdim, np_style)


def _arg(which, x, dim, keepdim, np_style):
    x = as_tensor(x, which)
    refuse_complex(x, f"{which}(): does not support complex input")
    if x._data.dtype.kind == "b":  # PyTorch has no bool arg-reduction (use .int() or .nonzero())
        raise DTypeError(f"{which}(): does not support bool input (cast it with .int() first)")
    axis = np_style.get("axis")
    keep = keep_flag(keepdim, np_style)
    d = dim if dim is not None else axis
    if x._data.size == 0:
        _refuse_empty_reduction(which, x, None if d is None else (normalize_dim(which, x.ndim, d),))
    xp = xp_of(x._data)
    f = xp.argmax if which == "argmax" else xp.argmin
    if d is None:
        out = f(x._data.reshape(-1))
        return Tensor._wrap(xp.asarray(out, dtype=np.int64).reshape((1,) * x.ndim if keep else ()))
    d = normalize_dim(which, x.ndim, d)
    if x.ndim == 0:
        return Tensor._wrap(xp.zeros((), np.int64))
    return Tensor._wrap(f(x._data, axis=d, keepdims=keep).astype(np.int64))


def argmax(x, dim=None, keepdim=False, **np_style):
    return _arg("argmax", x, dim, keepdim, np_style)


def argmin(x, dim=None, keepdim=False, **np_style):
    return _arg("argmin", x, dim, keepdim, np_style)


def _reduced_shape(shape, axes):
    if axes is None:
        return ()
    return tuple(s for i, s in enumerate(shape) if i not in axes)


class LogSumExp(Function):
    """log Σ exp(x), shifted by the max so nothing overflows; rows of -inf give -inf."""

    @staticmethod
    def forward(ctx, x, axes=None, keepdim=False):
        xp = xp_of(x)
        m = x.max(axis=axes, keepdims=True, initial=-np.inf)
        m_safe = xp.where(xp.isfinite(m), m, 0).astype(x.dtype, copy=False)
        s = xp.exp(x - m_safe).sum(axis=axes, keepdims=True)
        with np.errstate(divide="ignore"):
            out = xp.log(s) + m_safe
        ctx.meta = (x.shape, axes, keepdim)
        ctx.save_for_backward(x, out)
        return out if keepdim else out.reshape(_reduced_shape(x.shape, axes))

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_arrays
        xp = xp_of(x)
        with np.errstate(invalid="ignore"):
            p = xp.exp(x - out)
        p = xp.where(xp.isnan(p), 0, p).astype(x.dtype, copy=False)
        return g.reshape(out.shape) * p

    @staticmethod
    def backward_graph(ctx, g):
        """g·exp(x − lse) with lse this op's own output (so the softmax it forms stays
        differentiable in x); NaN where a row is all −inf becomes 0, as on the array path."""
        from tinymm.ops.index import where  # index.py builds on this module

        x, out = ctx.saved_arrays
        keep_shape = out.shape
        lse = node_output(ctx, out.reshape(_out_shape(ctx, out))).reshape(keep_shape)
        X = operand(ctx, 0, x)
        with np.errstate(invalid="ignore"):
            bad = xp_of(x).isnan(xp_of(x).exp(x - out))
        p = (X - lse).exp()
        if bad.any():
            p = where(Tensor._wrap(bad), 0.0, p)
        return g.reshape(keep_shape) * p


def _out_shape(ctx, out):
    """The shape LogSumExp handed back: ``out`` (kept dims) without them unless keepdim."""
    shape, axes, keepdim = ctx.meta
    return out.shape if keepdim else _reduced_shape(shape, axes)


def logsumexp(x, dim=None, keepdim=False, **np_style):
    x = to_float(as_tensor(x, "logsumexp"))
    axes = normalize_dims("logsumexp", x.ndim, dim, np_style.get("axis"))
    return LogSumExp.apply(x, axes, keep_flag(keepdim, np_style))


# ----------------------------------------------------------------------------- softmax


def _to_rows(x, axis):
    """Move ``axis`` last and flatten the rest: the (M, N) layout the softmax kernels take."""
    xp = xp_of(x)
    moved = xp.moveaxis(x, axis, -1) if axis != x.ndim - 1 else x
    rows = x.size // x.shape[axis] if x.shape[axis] else int(np.prod(moved.shape[:-1]))  # -1 is ambiguous at size 0
    return xp.ascontiguousarray(moved.reshape(rows, x.shape[axis])), moved.shape


def _from_rows(y2, moved_shape, axis, ndim):
    xp = xp_of(y2)
    y = y2.reshape(moved_shape)
    # contiguous, as PyTorch's softmax output (and gradient): F.softmax(x, 1).view(n, -1) works
    return xp.ascontiguousarray(xp.moveaxis(y, -1, axis)) if axis != ndim - 1 else y


class _RowSoftmax(Function):
    """Softmax or log-softmax along one axis through the fused row kernels.

    Saves only the output y: both backward formulas need nothing else
    (softmax: y·(g − Σ g·y); log-softmax: g − exp(y)·Σ g).
    """

    kernel = None  # "softmax" or "log_softmax": the name prefix in tinymm.kernels.softmax

    @classmethod
    def forward(cls, ctx, x, axis):
        from tinymm.kernels import softmax as K

        x2, moved = _to_rows(x, axis)
        y2 = getattr(K, f"{cls.kernel}_forward")(x2)
        ctx.meta = (moved, axis, x.ndim)
        ctx.save_for_backward(y2)
        return _from_rows(y2, moved, axis, x.ndim)

    @classmethod
    def backward(cls, ctx, g):
        from tinymm.kernels import softmax as K

        (y2,) = ctx.saved_arrays
        moved, axis, ndim = ctx.meta
        g2, _ = _to_rows(g, axis)
        return _from_rows(getattr(K, f"{cls.kernel}_backward")(y2, g2), moved, axis, ndim)

    @classmethod
    def backward_graph(cls, ctx, g):
        (y2,) = ctx.saved_arrays
        moved, axis, ndim = ctx.meta
        y = node_output(ctx, _from_rows(y2, moved, axis, ndim))  # the output, its node this op
        if cls.kernel == "softmax":
            return y * (g - (g * y).sum(dim=axis, keepdim=True))
        return g - y.exp() * g.sum(dim=axis, keepdim=True)


class Softmax(_RowSoftmax):
    kernel = "softmax"


class LogSoftmax(_RowSoftmax):
    kernel = "log_softmax"


def _one_axis(fn_cls, name, x, dim, dtype):
    x = as_tensor(x, name)
    if dtype is not None:
        x = cast(x, dtype)
    elif x._data.dtype.kind not in "fc":  # PyTorch has no integer softmax kernel (dtype= casts first)
        raise DTypeNotImplementedError(f'"{name}_lastdim_kernel_impl" not implemented for '
                                       f"'{torch_dtype_name(x.dtype)}'")
    if x.dtype == np.float16:  # the kernels are float32/float64: float32 inside, as PyTorch's CPU
        return cast(_one_axis(fn_cls, name, cast(x, np.float32), dim, None), np.float16)
    if x.ndim == 0:  # a 0-d tensor is a row of one (dim 0 or -1, as PyTorch)
        normalize_dim(name, 0, dim)
        return fn_cls.apply(x.reshape(1), 0).reshape(())
    return fn_cls.apply(x, normalize_dim(name, x.ndim, dim))


def softmax(x, dim=-1, dtype=None):
    return _one_axis(Softmax, "softmax", x, dim, dtype)


def log_softmax(x, dim=-1, dtype=None):
    return _one_axis(LogSoftmax, "log_softmax", x, dim, dtype)


def _refuse_empty_reduction(name, x, axes):
    """max/min-like reductions have no identity: reducing over a dim of size 0 is an
    IndexError, as in PyTorch (other dims may be empty)."""
    if x._data.size:
        return
    reduced = range(x.ndim) if axes is None else axes
    if axes is None or builtins.any(x.shape[a] == 0 for a in reduced):
        raise EmptyReductionError(f"{name}: cannot reduce over a dimension of size 0 (shape {tuple(x.shape)}): "
                         "the operation has no identity")


def _amax_amin(which, x, dim, keepdim):
    name = "a" + which
    x = as_tensor(x, name)
    axes = None if dim is None or dim == () else normalize_dims(name, x.ndim, dim)
    _refuse_empty_reduction(name, x, axes)
    if x._data.dtype.kind not in "fc":
        return Tensor._wrap(xp_of(x._data).asarray(getattr(x._data, which)(axis=axes, keepdims=bool(keepdim))))
    return MaxMinAll.apply(x, axes, bool(keepdim), which, False)


def amax(x, dim=(), keepdim=False):
    """Max over ``dim`` (all dims when empty or None); ties share the gradient evenly, and a
    NaN gives NaN gradients (PyTorch's amax, unlike its max())."""
    refuse_complex(x, "max_values_cpu")
    return _amax_amin("max", x, dim, keepdim)


def amin(x, dim=(), keepdim=False):
    refuse_complex(x, "min_values_cpu")
    return _amax_amin("min", x, dim, keepdim)
