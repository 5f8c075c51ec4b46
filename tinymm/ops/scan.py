"""Products, truth reductions, cumulative scans and sorting: prod, any, all, cumsum, cumprod,
cummax, cummin, logcumsumexp, sort, argsort, topk, plus std_mean / var_mean.

Scans run along one axis (``dim``, negative allowed; a 0-d tensor is its own scan). Their
backward passes are scans too: cumsum's gradient is the reversed cumulative sum of g; cummax
and cummin send each gradient to the index that produced the value; sort and topk scatter it
back to the positions they took it from.
"""
from __future__ import annotations

import collections

import numpy as np

from tinymm.autograd import Function
from tinymm.autograd_graph import node_output, operand
from tinymm.ops._util import DTypeNotImplementedError, EmptyReductionError, ShapeError, keep_flag, normalize_dim, normalize_dims, refuse_complex, xp_of
from tinymm.ops.convert import as_tensor, cast, to_float
from tinymm.ops.index import add_at
from tinymm.ops.reduce import mean, std, var
from tinymm.ops.shape import cat
from tinymm.tensor import Tensor

SortResult = collections.namedtuple("SortResult", ["values", "indices"])


def _rev(a, axis):
    return xp_of(a).flip(a, axis=axis)


def _rev_cumsum(a, axis):
    return _rev(_rev(a, axis).cumsum(axis=axis), axis)


def _rev_cumsum_t(t: Tensor, axis: int) -> Tensor:
    """``_rev_cumsum`` on Tensors (create_graph): recorded, differentiable again."""
    return t.flip(axis).cumsum(axis).flip(axis)


def _exclusive_cumprod_t(t: Tensor, axis: int) -> Tensor:
    """Π_{k<i} t_k along ``axis`` (1 at i = 0), on Tensors."""
    one = t.narrow(axis, 0, 1) * 0 + 1
    return cat([one, t.narrow(axis, 0, t.shape[axis] - 1)], axis).cumprod(axis)


def _shifted(a, axis, fill, first: bool):
    """``a`` moved one step along ``axis`` (towards the end when ``first``), ``fill`` entering."""
    xp = xp_of(a)
    pad_shape = list(a.shape)
    pad_shape[axis] = 1
    pad = xp.full(pad_shape, fill, a.dtype)
    n = a.shape[axis]
    if first:
        body = xp.take(a, xp.arange(0, n - 1), axis=axis)
        return xp.concatenate([pad, body], axis=axis)
    body = xp.take(a, xp.arange(1, n), axis=axis)
    return xp.concatenate([body, pad], axis=axis)


# ----------------------------------------------------------------------------- prod / any / all


class Prod(Function):
    """Product over one axis (or all elements, flattened first). The gradient of each element
    is the product of all the others, computed from exclusive prefix and suffix products so a
    zero in the input gives the right (finite) answer."""

    @staticmethod
    def forward(ctx, x, axis, keepdim):
        ctx.meta = (x.shape, axis, keepdim)
        ctx.save_for_backward(x)
        flat = x.reshape(-1) if axis is None else x
        out = flat.prod(axis=0 if axis is None else axis, keepdims=keepdim and axis is not None)
        if axis is None and keepdim:
            out = out.reshape((1,) * x.ndim)
        return xp_of(x).asarray(out)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        shape, axis, keepdim = ctx.meta
        a = x.reshape(-1) if axis is None else x
        ax = 0 if axis is None else axis
        if a.shape[ax] == 0:
            return xp_of(x).zeros(shape, x.dtype)
        left = _shifted(a, ax, 1, True).cumprod(axis=ax)
        right = _rev(_shifted(_rev(a, ax), ax, 1, True).cumprod(axis=ax), ax)
        others = left * right
        if axis is None:
            return (g.reshape(()) * others).reshape(shape)
        if not keepdim:
            g = xp_of(g).expand_dims(g, axis)
        return g * others

    @staticmethod
    def backward_graph(ctx, g):
        """The same exclusive prefix and suffix products, on Tensors (create_graph)."""
        (x,) = ctx.saved_arrays
        shape, axis, keepdim = ctx.meta
        X = operand(ctx, 0, x)
        a = X.reshape(-1) if axis is None else X
        ax = 0 if axis is None else axis
        if a.shape[ax] == 0:
            return X * 0
        others = _exclusive_cumprod_t(a, ax) * _exclusive_cumprod_t(a.flip(ax), ax).flip(ax)
        if axis is None:
            return (g.reshape(()) * others).reshape(shape)
        return (g if keepdim else g.unsqueeze(axis)) * others


def prod(x, dim=None, keepdim=False, *, dtype=None):
    """Product of all elements, or along one ``dim``; integer and bool input give int64."""
    x = as_tensor(x, "prod")
    if dtype is not None:
        x = cast(x, dtype)
    elif x.dtype.kind in "bi" or x.dtype.kind == "u":
        x = cast(x, np.int64)
    axis = None if dim is None else normalize_dim("prod", x.ndim, dim)
    if x.ndim == 0:
        axis = None
    if x.dtype.kind not in "fc":
        return Tensor._wrap(xp_of(x._data).asarray(Prod.forward(_Scratch(), x._data, axis, bool(keepdim))).astype(x.dtype, copy=False))
    return Prod.apply(x, axis, bool(keepdim))


class _Scratch:
    """A context for running a forward on arrays that need no graph (integer inputs)."""

    def save_for_backward(self, *arrays):
        pass

    def mark_non_differentiable(self, *i):
        pass


def _truth(name):
    def op(x, dim=None, keepdim=False, **np_style):
        x = as_tensor(x, name)
        axes = normalize_dims(name, x.ndim, dim, np_style.get("axis"))
        keep = keep_flag(keepdim, np_style)
        xp = xp_of(x._data)
        out = xp.asarray(getattr(xp, name)(x._data != 0, axis=axes, keepdims=keep))
        # PyTorch's documented exception: uint8 input gives a uint8 result (0/1), every other dtype bool
        return Tensor._wrap(out.astype(np.uint8) if x._data.dtype == np.uint8 else out)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = (f"``{name}``: True where {'any' if name == 'any' else 'every'} element (over ``dim``) is non-zero "
                  "(uint8 0/1 for uint8 input, as PyTorch).")
    return op


any = _truth("any")
all = _truth("all")


def count_nonzero(x, dim=None):
    x = as_tensor(x, "count_nonzero")
    axes = normalize_dims("count_nonzero", x.ndim, dim)
    return Tensor._wrap(xp_of(x._data).asarray((x._data != 0).sum(axis=axes), dtype=np.int64))


def var_mean(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(var, mean) over ``dim``, as ``torch.var_mean``."""
    return var(x, dim, unbiased, keepdim, correction=correction), mean(x, dim, keepdim)


def std_mean(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return std(x, dim, unbiased, keepdim, correction=correction), mean(x, dim, keepdim)


# ----------------------------------------------------------------------------- scans


def _scan_axis(name, x, dim):
    return normalize_dim(name, x.ndim, dim)


class Cumsum(Function):
    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        return x.cumsum(axis=axis)

    @staticmethod
    def backward(ctx, g):
        return _rev_cumsum(g, ctx.axis)

    @staticmethod
    def backward_graph(ctx, g):
        return _rev_cumsum_t(g, ctx.axis)


def _running(name, fn_cls, x, dim, dtype):
    """cumsum/cumprod: integer and bool input give int64 (as PyTorch); ``dtype`` casts first."""
    x = as_tensor(x, name)
    if dtype is not None:
        x = cast(x, dtype)
    elif x.dtype.kind in "biu":
        x = cast(x, np.int64)
    _scan_axis(name, x, dim)  # a 0-d tensor takes dim 0 or -1 only (IndexError otherwise, as PyTorch)
    if x.ndim == 0:
        return x * 1 if x.dtype.kind in "fc" else Tensor._wrap(x._data.copy())
    axis = _scan_axis(name, x, dim)
    if x.dtype.kind not in "fc":
        return Tensor._wrap(getattr(x._data, name)(axis=axis, dtype=x._data.dtype))  # (NumPy would widen int32)
    return fn_cls.apply(x, axis)


def cumsum(x, dim, *, dtype=None):
    """Running sum along ``dim``."""
    return _running("cumsum", Cumsum, x, dim, dtype)


class Cumprod(Function):
    """Running product. Gradient: dL/dx_i = Σ_{j≥i} g_j·Π_{k≤j, k≠i} x_k.

    Without zeros that is revcumsum(g·out)/x. With zeros, along each lane with its first zero at
    z: positions before z still use revcumsum(g·out)/x (out_j is 0 from z on, as the true terms
    are); position z gets Σ_{j≥z} g_j·Π_{k≤j, k≠z} x_k, which is revcumsum(g·cp)_z where cp is the
    running product with x_z replaced by 1; positions after z get 0 (every term holds x_z).
    Three scans: O(n), not one product per position."""

    @staticmethod
    def forward(ctx, x, axis):
        out = x.cumprod(axis=axis)
        ctx.axis = axis
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_arrays
        axis = ctx.axis
        xp = xp_of(x)
        zero = x == 0
        if not zero.any():
            return _rev_cumsum(g * out, axis) / x
        zeros_so_far = zero.cumsum(axis=axis)
        before = zeros_so_far == 0
        first = zero & (zeros_so_far == 1)
        grad = xp.where(before, _rev_cumsum(g * out, axis) / xp.where(before, x, 1), 0)
        at_first = _rev_cumsum(g * xp.where(first, 1, x).cumprod(axis=axis), axis)
        return xp.where(first, at_first, grad).astype(x.dtype, copy=False)

    @staticmethod
    def backward_graph(ctx, g):
        """``backward``'s formula on Tensors (create_graph), without zeros in x."""
        x, out = ctx.saved_arrays
        axis = ctx.axis
        X, Y = operand(ctx, 0, x), node_output(ctx, out)
        if not (x == 0).any():
            return _rev_cumsum_t(g * Y, axis) / X
        # With zeros, backward's masks would make the gradient past a zero a constant 0, whose
        # derivative in that zero is not 0. Here each position's sum is written out instead,
        # dL/dx_i = Π_{k<i} x_k · (g_i + Σ_{j>i} g_j Π_{i<k≤j} x_k): n products along the axis,
        # O(n²), only for create_graph through a zero.
        n = x.shape[axis]
        left = _exclusive_cumprod_t(X, axis)
        parts = []
        for i in range(n):
            term = g.narrow(axis, i, 1)
            if i + 1 < n:
                after = X.narrow(axis, i + 1, n - i - 1).cumprod(axis)
                term = term + (g.narrow(axis, i + 1, n - i - 1) * after).sum(axis, keepdim=True)
            parts.append(left.narrow(axis, i, 1) * term)
        return cat(parts, axis)


def cumprod(x, dim, *, dtype=None):
    """Running product along ``dim``."""
    return _running("cumprod", Cumprod, x, dim, dtype)


def _cum_extreme(x, axis, which):
    """Running max/min values and the index of the (last) element that set each one; a NaN
    wins from where it appears, as in PyTorch."""
    xp = xp_of(x)
    acc = xp.fmax if False else (xp.maximum if which == "max" else xp.minimum)
    values = acc.accumulate(x, axis=axis)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    pos = xp.arange(x.shape[axis]).reshape(shape)
    if x.dtype.kind in "fc":
        setter = (x == values) | xp.isnan(x)
        # Once a NaN appeared the index stays on the first NaN.
        first_nan_seen = xp.logical_or.accumulate(xp.isnan(x), axis=axis)
        before = _shifted(first_nan_seen, axis, False, True)
        setter = setter & ~before
    else:
        setter = x == values
    idx = xp.maximum.accumulate(xp.where(setter, pos, 0), axis=axis)
    return values, idx.astype(np.int64)


class CumExtreme(Function):
    @staticmethod
    def forward(ctx, x, axis, which):
        values, idx = _cum_extreme(x, axis, which)
        ctx.meta = (x.shape, x.dtype, axis)
        ctx.save_for_backward(idx)
        ctx.mark_non_differentiable(1)
        return values, idx

    @staticmethod
    def backward(ctx, g, _gi):
        (idx,) = ctx.saved_arrays
        shape, dtype, axis = ctx.meta
        xp = xp_of(g)
        out = xp.zeros(shape, dtype)
        # Several outputs may share an index: accumulate, moving the axis last for add.at.
        o = xp.moveaxis(out, axis, -1)
        i = xp.moveaxis(idx, axis, -1)
        gm = xp.moveaxis(g, axis, -1)
        lead = np.indices(i.shape[:-1]) if i.ndim > 1 else ()
        index = tuple(l[..., None] for l in lead) + (i,)
        add_at(o, index, gm)
        return out

    @staticmethod
    def backward_graph(ctx, g, _gi):
        (idx,) = ctx.saved_arrays
        shape, dtype, axis = ctx.meta
        return g.new_zeros(shape).scatter_add(axis, Tensor._wrap(idx), g)


def _cum_ext(name, which):
    def op(x, dim):
        x = as_tensor(x, name)
        _scan_axis(name, x, dim)  # a 0-d tensor takes dim 0 or -1 only
        if x.ndim == 0:
            return SortResult(x * 1 if x.dtype.kind in "fc" else Tensor._wrap(x._data.copy()),
                              Tensor._wrap(xp_of(x._data).zeros((), np.int64)))
        axis = _scan_axis(name, x, dim)
        if x.dtype.kind not in "fc":
            v, i = _cum_extreme(x._data, axis, which)
            return SortResult(Tensor._wrap(v), Tensor._wrap(i))
        v, i = CumExtreme.apply(x, axis, which)
        return SortResult(v, i)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Running {which} along ``dim``: (values, indices), as ``torch.{name}``."
    return op


cummax = _cum_ext("cummax", "max")
cummin = _cum_ext("cummin", "min")


class LogCumSumExp(Function):
    """out_j = log Σ_{i≤j} exp(x_i). Gradient: dL/dx_i = Σ_{j≥i} g_j·exp(x_i − out_j),
    computed in float64 against the largest output so nothing overflows."""

    @staticmethod
    def forward(ctx, x, axis):
        xp = xp_of(x)
        out = xp.logaddexp.accumulate(x, axis=axis)
        ctx.axis = axis
        ctx.save_for_backward(x, out)
        return out.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_arrays
        axis = ctx.axis
        xp = xp_of(x)
        x64, o64, g64 = x.astype(np.float64), out.astype(np.float64), g.astype(np.float64)
        with np.errstate(all="ignore"):
            m = _finite_max(o64, axis)
            w = _rev_cumsum(g64 * xp.exp(m - o64), axis)
            grad = w * xp.exp(x64 - m)
            grad = xp.where(xp.isnan(grad), 0, grad)
        return grad.astype(x.dtype)

    @staticmethod
    def backward_graph(ctx, g):
        """``backward``'s formula on Tensors (create_graph), with the same constant shift m."""
        x, out = ctx.saved_arrays
        axis = ctx.axis
        xp = xp_of(x)
        X, Y = operand(ctx, 0, x), node_output(ctx, out)
        m = Tensor._wrap(_finite_max(out, axis).astype(x.dtype))
        grad = _rev_cumsum_t(g * (m - Y).exp(), axis) * (X - m).exp()
        return grad.where(Tensor._wrap(~xp.isnan(grad._data)), 0.0)


def _finite_max(out, axis):
    """The largest finite value along ``axis`` (kept as a length-1 axis), 0 where none is: the
    shift that keeps logcumsumexp's gradient from overflowing."""
    xp = xp_of(out)
    m = xp.max(xp.where(xp.isfinite(out), out, -np.inf), axis=axis, keepdims=True)
    return xp.where(xp.isfinite(m), m, 0)


def logcumsumexp(x, dim):
    x = to_float(as_tensor(x, "logcumsumexp"))
    _scan_axis("logcumsumexp", x, dim)  # a 0-d tensor takes dim 0 or -1 only
    if x.ndim == 0:
        return x * 1
    axis = _scan_axis("logcumsumexp", x, dim)
    if x.numel() == 0:
        return x * 1  # nothing to scan (the backward's max would have no identity)
    return LogCumSumExp.apply(x, axis)


# ----------------------------------------------------------------------------- sorting


def _argsort(a, axis, descending):
    """Stable argsort along ``axis``; descending keeps equal elements in their original order
    and puts NaN first (ascending: last), as PyTorch."""
    xp = xp_of(a)
    if not descending:
        return xp.argsort(a, axis=axis, kind="stable")
    n = a.shape[axis]
    flipped = xp.flip(a, axis=axis)
    order = xp.argsort(flipped, axis=axis, kind="stable")
    return xp.flip(n - 1 - order, axis=axis)


class Gathered(Function):
    """Values taken along ``axis`` at ``idx`` (a permutation or a subset of distinct positions);
    the gradient is put back at those positions."""

    @staticmethod
    def forward(ctx, x, idx, axis):
        ctx.meta = (x.shape, axis)
        ctx.save_for_backward(idx)
        return xp_of(x).take_along_axis(x, idx, axis=axis)

    @staticmethod
    def backward(ctx, g):
        (idx,) = ctx.saved_arrays
        shape, axis = ctx.meta
        xp = xp_of(g)
        out = xp.zeros(shape, g.dtype)
        xp.put_along_axis(out, idx, g, axis=axis)
        return out, None

    @staticmethod
    def backward_graph(ctx, g):
        from tinymm.ops.index import scatter  # index.py builds on this module

        (idx,) = ctx.saved_arrays
        shape, axis = ctx.meta
        # idx holds distinct positions along axis: scatter into zeros is put_along_axis, and
        # scatter's backward gathers them again
        zeros = Tensor._wrap(xp_of(idx).zeros(shape, g.dtype))
        return scatter(zeros, axis, Tensor._wrap(idx), g), None


def _take_sorted(x, idx, axis):
    if x.dtype.kind in "fc":
        return Gathered.apply(x, idx, axis)
    return Tensor._wrap(xp_of(x._data).take_along_axis(x._data, idx, axis=axis))


def sort(x, dim=-1, descending=False, stable=False):
    """(values, indices) sorted along ``dim``; ties keep their order (a stable sort)."""
    x = as_tensor(x, "sort")
    refuse_complex(x, "Sort does not support complex dtypes on CPU")
    if x.ndim == 0:
        return SortResult(x * 1 if x.dtype.kind in "fc" else Tensor._wrap(x._data.copy()),
                          Tensor._wrap(xp_of(x._data).zeros((), np.int64)))
    axis = normalize_dim("sort", x.ndim, dim)
    idx = _argsort(x._data, axis, descending).astype(np.int64)
    return SortResult(_take_sorted(x, idx, axis), Tensor._wrap(idx))


def argsort(x, dim=-1, descending=False, stable=False):
    x = as_tensor(x, "argsort")
    refuse_complex(x, "Sort does not support complex dtypes on CPU")
    if x.ndim == 0:
        return Tensor._wrap(xp_of(x._data).zeros((), np.int64))
    axis = normalize_dim("argsort", x.ndim, dim)
    return Tensor._wrap(_argsort(x._data, axis, descending).astype(np.int64))


def msort(x):
    return sort(x, 0).values


def topk(x, k, dim=-1, largest=True, sorted=True):
    """The ``k`` largest (or smallest) elements along ``dim`` (the last when None): (values, indices)."""
    x = as_tensor(x, "topk")
    refuse_complex(x, "topk_cpu")
    dim = -1 if dim is None else dim
    k = int(k)
    n = 1 if x.ndim == 0 else x.shape[normalize_dim("topk", x.ndim, dim)]
    if not 0 <= k <= n:
        raise ShapeError(f"topk: k={k} is out of range for dimension of size {n} (shape {tuple(x.shape)})")
    if x.ndim == 0:
        return sort(x)
    axis = normalize_dim("topk", x.ndim, dim)
    xp = xp_of(x._data)
    idx = _argsort(x._data, axis, largest).astype(np.int64)
    idx = xp.take(idx, xp.arange(k), axis=axis)
    return SortResult(_take_sorted(x, idx, axis), Tensor._wrap(idx))


def kthvalue(x, k, dim=-1, keepdim=False):
    """The k-th smallest element (1-based) along ``dim``: (values, indices)."""
    x = as_tensor(x, "kthvalue")
    axis = normalize_dim("kthvalue", x.ndim, dim)
    n = 1 if x.ndim == 0 else x.shape[axis]
    if n == 0:
        raise EmptyReductionError(f"kthvalue(): Expected reduction dim {axis} to have non-zero size.")
    if not 1 <= int(k) <= n:
        raise ShapeError(f"kthvalue(): selected number k={k} out of range for dimension {axis} of size {n}")
    if x.ndim == 0:  # the one element, index 0 (probe16: the dim slicing below needs a real dim)
        return topk(x, 1, dim, largest=False)
    v, i = topk(x, k, dim, largest=False)
    sel = [slice(None)] * x.ndim
    sel[axis] = slice(k - 1, k)
    from tinymm.ops.index import getitem
    from tinymm.ops.shape import squeeze

    v, i = getitem(v, tuple(sel)), Tensor._wrap(i._data[tuple(sel)])
    if not keepdim:
        v, i = squeeze(v, axis), Tensor._wrap(i._data.squeeze(axis))
    return SortResult(v, i)


class MedianAll(Function):
    """The lower median of all elements, NaN when any element is NaN (PyTorch's). The
    gradient is shared equally by every element equal to it (every NaN when it is NaN), as
    PyTorch's median() without a dim: a deterministic subgradient."""

    @staticmethod
    def forward(ctx, x, value):
        ctx.save_for_backward(x)
        ctx.value = value
        return xp_of(x).asarray(value, dtype=x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        xp = xp_of(x)
        hit = xp.isnan(x) if np.isnan(ctx.value) else x == ctx.value
        return (g * hit).astype(x.dtype, copy=False) / x.dtype.type(hit.sum()), None


def median(x, dim=None, keepdim=False):
    """The lower median (PyTorch's): of all elements (a 0-d tensor) or along ``dim``
    (values, indices). NaN propagates: a row holding a NaN has median NaN (its first NaN's
    index); ``nanmedian`` skips them."""
    x = as_tensor(x, "median")
    refuse_complex(x, "median_cpu")
    if x._data.dtype.kind == "b":
        raise DTypeNotImplementedError(f"\"median_cpu\" not implemented for 'Bool' (median of a bool tensor; "
                                       f"cast it with .int() first)")
    if dim is None:
        flat = x.reshape(-1)
        if flat.shape[0] == 0:
            if x.dtype.kind not in "fc":
                # (PyTorch returns the dtype's minimum here, a value no element had)
                raise EmptyReductionError(f"median(): the median of an empty {x.dtype} tensor is undefined")
            return flat.sum() * float("nan")  # NaN, as PyTorch; the gradient is the empty zeros
        value = kthvalue(flat.detach(), (flat.shape[0] + 1) // 2, 0).values
        if x.dtype.kind not in "fc":
            return value
        xp = xp_of(x._data)
        v = float("nan") if bool(xp.isnan(flat._data).any()) else float(value._data)
        return MedianAll.apply(x, v)
    axis = normalize_dim("median", x.ndim, dim)  # (a 0-d tensor takes 0 or -1 only)
    n = 1 if x.ndim == 0 else x.shape[axis]
    if x.ndim == 0:
        return sort(x)
    res = kthvalue(x, (n + 1) // 2, dim, keepdim)
    if x.dtype.kind != "f":
        return res
    xp = xp_of(x._data)
    axis = normalize_dim("median", x.ndim, dim)
    nan = xp.isnan(x._data)
    if not bool(nan.any()):
        return res
    from tinymm.ops.index import gather
    from tinymm.ops.shape import squeeze

    idx = res.indices._data if keepdim else xp.expand_dims(res.indices._data, axis)
    idx = xp.where(nan.any(axis=axis, keepdims=True), nan.argmax(axis=axis, keepdims=True), idx)
    values = gather(x, axis, Tensor._wrap(idx))
    if not keepdim:
        values, idx = squeeze(values, axis), idx.squeeze(axis)
    return SortResult(values, Tensor._wrap(idx))