"""Indexing and selection: getitem (basic and integer-array), where, masked_fill, one_hot.

Integer-array indexing may pick one element several times, so its backward is a
scatter-*add* (``numpy.add.at``); basic indexing (ints, slices, None, ...) picks each element
at most once and can assign the gradient directly.
"""
from __future__ import annotations

import warnings

import numpy as np

from tinymm.autograd import Function
from tinymm.autograd_graph import sum_to
from tinymm.backend import get_default_dtype
from tinymm.ops._util import DTypeError, broadcasts_to, IndexRangeError, ShapeError, ValueRangeError, normalize_dim, unbroadcast, xp_of
from tinymm.ops.convert import as_tensor, cast, operands
from tinymm.ops.scalar_fit import check_scalar_fits
from tinymm.tensor import Tensor, storage_version


def is_basic_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in items)


def add_at(out, index, g):
    """``out[index] += g`` where an index may repeat (each repeat adds): NumPy or CuPy."""
    xp = xp_of(out)
    if xp.__name__ == "numpy":
        xp.add.at(out, index, g)
    else:
        import cupyx

        cupyx.scatter_add(out, index, g)


def _into_zeros(g, shape, dtype, index):
    """Zeros of ``shape`` with ``g`` added at ``index`` (an index repeated adds)."""
    out = xp_of(g).zeros(shape, dtype)
    if is_basic_index(index):
        out[index] = g
    else:
        add_at(out, index, g)
    return out


def index_view(arr, index):
    """``arr[index]``, except that a single element comes back as a 0-d view, not a NumPy
    scalar (a copy): ``x[0].add_(1)`` must write into x, as PyTorch's element views do."""
    out = arr[index]
    if isinstance(out, np.generic):
        return arr[(*index, Ellipsis) if isinstance(index, tuple) else (index, Ellipsis)]
    if (not out.flags.c_contiguous and arr.flags.c_contiguous and out.ndim > 1
            and not is_basic_index(index)):
        # NumPy lays an array index on a later axis out first in memory (x[:, [0, 2]] comes
        # back transposed); PyTorch's copy of a contiguous tensor is contiguous, and code
        # relies on it (x[:, idx].view(n, -1); F.pad's reflect and interpolate gather so)
        out = xp_of(out).ascontiguousarray(out)
    return out


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.meta = (x.shape, x.dtype, index)
        return index_view(x, index)

    @staticmethod
    def backward(ctx, g):
        shape, dtype, index = ctx.meta
        return _into_zeros(g, shape, dtype, index)

    @staticmethod
    def backward_graph(ctx, g):
        shape, dtype, index = ctx.meta
        return IndexPutZeros.apply(g, shape, index)


class IndexPutZeros(Function):
    """Zeros of ``shape`` with ``g`` added at ``index`` (repeats add): GetItem's backward as an
    op of its own, so a gradient taken with ``create_graph=True`` through an index is
    differentiable again. It is linear; its own backward is the indexing."""

    @staticmethod
    def forward(ctx, g, shape, index):
        ctx.index = index
        return _into_zeros(g, shape, g.dtype, index)

    @staticmethod
    def backward(ctx, gg):
        return gg[ctx.index]

    @staticmethod
    def backward_graph(ctx, gg):
        return GetItem.apply(gg, ctx.index)


def array_index(index):
    """Replace Tensors inside an index by their arrays (lists become integer arrays)."""
    if isinstance(index, tuple):
        return tuple(array_index(i) for i in index)
    if isinstance(index, Tensor):
        if index.dtype.kind not in "iub":
            raise IndexError(f"index tensors must be integer or bool, got {index.dtype}")
        if index._data.dtype == np.uint8:
            # PyTorch still reads a uint8 index as a mask (the masks of code before bool
            # tensors, mask.byte()), with this warning
            warnings.warn("indexing with dtype torch.uint8 is now deprecated, please use a dtype torch.bool instead.",
                          UserWarning, stacklevel=3)
            return index._data.astype(bool)
        return index._data
    if isinstance(index, (str, bytes)):
        # NumPy's IndexError lists what indices may be; PyTorch reads a string as data to
        # build an index tensor from, and refuses it as a TypeError
        raise TypeError(f"new(): invalid data type '{type(index).__name__}': a tensor cannot be indexed by the "
                        f"string {index!r} (only ints, slices, None, Ellipsis, bool or integer tensors)")
    if isinstance(index, list):
        arr = np.asarray(index)
        return arr.astype(np.int64) if arr.size == 0 else arr  # x[[]]: no rows (NumPy would read [] as floats)
    if isinstance(index, slice) and index.step is not None:
        # PyTorch has no negative strides: x[::-1] is refused (flip copies instead)
        if index.step == 0:
            raise ValueError("slice step cannot be zero")
        if index.step < 0:
            raise ValueError(f"step must be greater than zero (got {index.step}): use flip() to reverse")
    return index


def _split_ints_first(index):
    """PyTorch applies integer indices before advanced ones: ``t[0, :, idx]`` selects row 0
    and then indexes, giving (3, 2) for a (2, 3, 4) tensor where NumPy's placement rule would
    give (2, 3). Return (basic, advanced): ``x[basic][advanced]`` is PyTorch's result, or
    None when the index has no integer beside an array."""
    if type(index) is not tuple or len(index) < 2:  # one item cannot mix the two kinds
        return None
    items = index
    arrays = [i for i in items if hasattr(i, "shape") and not isinstance(i, (int, np.integer))]
    ints = [i for i in items if isinstance(i, (int, np.integer)) and not isinstance(i, bool)]
    if not arrays or not ints:
        return None
    basic, advanced = [], []
    for i in items:
        if isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            basic.append(i)
        elif hasattr(i, "shape"):
            k = i.ndim if i.dtype.kind == "b" else 1
            basic.extend([slice(None)] * k)
            advanced.append(i)
        elif i is None:
            basic.append(None)
            advanced.append(slice(None))
        elif i is Ellipsis:
            basic.append(Ellipsis)
            advanced.append(Ellipsis)
        else:
            basic.append(i)
            advanced.append(slice(None))
    return tuple(basic), tuple(advanced)


def numpy_index(shape, index):
    """An index that NumPy applies with PyTorch's meaning, for ``x[index] = value``: unchanged
    unless integers meet integer arrays (then the element positions PyTorch would address,
    as a tuple of integer arrays)."""
    split = _split_ints_first(index)
    if split is None:
        return index
    basic, advanced = split
    positions = np.arange(int(np.prod(shape))).reshape(shape)[basic][advanced]
    return np.unravel_index(positions, shape)


def getitem(x, index):
    """``x[index]`` with PyTorch's semantics: basic indices give views, integer arrays and
    masks copy; integer indices apply before the array indices (see ``_split_ints_first``)."""
    x = as_tensor(x, "getitem")
    index = array_index(index)
    items = index if isinstance(index, tuple) else (index,)
    if type(x._data) is np.ndarray:
        if any(hasattr(i, "__cuda_array_interface__") for i in items):
            raise ValueError("getitem: a CUDA index cannot index a tensor on cpu")
    else:  # host index arrays are copied to the GPU tensor's device
        xp = xp_of(x._data)
        moved = tuple(xp.asarray(i) if isinstance(i, np.ndarray) else i for i in items)
        index = moved if isinstance(index, tuple) else moved[0]
    split = _split_ints_first(index)
    if split is not None:
        basic, advanced = split
        return getitem(getitem(x, basic), advanced)
    if x._data.dtype.kind not in "fc":
        return Tensor._wrap(index_view(x._data, index))
    out = GetItem.apply(x, index)
    if is_basic_index(index):  # a view: remember of what, for in-place writes into it (ops/inplace.py)
        out._view_src = (x, index, storage_version(out._data))
    return out


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        ctx.shapes = (getattr(a, "shape", ()), getattr(b, "shape", ()))
        return xp_of(cond).where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved_arrays
        _, na, nb = ctx.needs_input_grad
        sa, sb = ctx.shapes
        xp = xp_of(g)
        # select, not multiply by the mask: a NaN/inf gradient in the branch not taken must
        # not leak through (as PyTorch; ``where(ok, x, 0)`` is the usual guard against it)
        zero = xp.zeros((), dtype=g.dtype)
        return (
            None,
            unbroadcast(xp.where(cond, g, zero), sa) if na else None,
            unbroadcast(xp.where(cond, zero, g), sb) if nb else None,
        )

    @staticmethod
    def backward_graph(ctx, g):
        (cond,) = ctx.saved_arrays
        _, na, nb = ctx.needs_input_grad
        sa, sb = ctx.shapes
        c = Tensor._wrap(cond)
        return (None, sum_to(where(c, g, 0.0), sa) if na else None, sum_to(where(c, 0.0, g), sb) if nb else None)


def where(condition, a=None, b=None):
    """``where(cond, a, b)``: a where cond else b (tensors or Python scalars, broadcast);
    ``where(cond)`` is ``nonzero(cond, as_tuple=True)``."""
    cond = as_tensor(condition, "where")
    if a is None and b is None:
        return nonzero(cond, as_tuple=True)
    if cond.dtype.kind != "b":
        raise DTypeError(f"where: condition must be bool, got {cond.dtype}")
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        # Two scalars: a tensor of the result type (float scalars give the default dtype).
        xp = xp_of(cond._data)
        if isinstance(a, float) or isinstance(b, float):
            dt = get_default_dtype()
        elif isinstance(a, bool) and isinstance(b, bool):
            dt = np.bool_
        else:
            dt = np.int64
        return Tensor._wrap(xp.where(cond._data, xp.asarray(a, dt), xp.asarray(b, dt)).astype(dt, copy=False))
    a, b = operands("where", a, b)
    for t in (a, b):
        if isinstance(t, Tensor) and type(t._data) is not type(cond._data):
            raise ValueError(f"where: condition is on {cond.device}, a value on {t.device}")
    return Where.apply(cond, a, b)


class MaskedFill(Function):
    @staticmethod
    def forward(ctx, x, mask, value):
        ctx.save_for_backward(mask)
        out = xp_of(x).where(mask, x.dtype.type(value), x)
        return out.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_arrays
        return unbroadcast(g * ~mask, g.shape), None

    @staticmethod
    def backward_graph(ctx, g):
        (mask,) = ctx.saved_arrays
        return where(Tensor._wrap(mask), 0.0, g), None


def masked_fill(x, mask, value):
    x = as_tensor(x, "masked_fill")
    mask = as_tensor(mask, "masked_fill")
    if mask.dtype.kind != "b":
        raise DTypeError(f"masked_fill: mask must be bool (only boolean masks are supported), got {mask.dtype}")
    if type(mask._data) is not type(x._data):
        raise ValueError(f"masked_fill: mask is on {mask.device}, the tensor on {x.device}")
    if not broadcasts_to(mask.shape, x.shape):
        raise ShapeError(f"masked_fill: mask of shape {tuple(mask.shape)} does not broadcast to the tensor's shape {tuple(x.shape)}")
    if isinstance(value, Tensor):
        if value.ndim:
            raise ShapeError(f"masked_fill: only supports a 0-dimensional value tensor, but got one of shape {tuple(value.shape)}")
        value = value.item()
    value = check_scalar_fits(value, x._data.dtype, half_overflows=True)
    if x._data.dtype.kind not in "fc":
        return Tensor._wrap(xp_of(x._data).where(mask._data, value, x._data).astype(x.dtype))
    return MaskedFill.apply(x, mask, value)


# ----------------------------------------------------------------------------- one_hot


def one_hot(x, num_classes: int = -1) -> Tensor:
    """Integer class indices (...,) → int64 one-hot (..., num_classes), as ``F.one_hot``."""
    x = as_tensor(x, "one_hot")
    if x.dtype.kind not in "iu":
        raise DTypeError(f"one_hot: is only applicable to an integer index tensor (LongTensor), got {x.dtype}")
    xp = xp_of(x._data)
    if num_classes == -1:
        if not x._data.size:
            raise ValueRangeError("one_hot: can not infer the total number of classes from an empty tensor")
        num_classes = int(x._data.max()) + 1
    if x._data.size and (int(x._data.min()) < 0 or int(x._data.max()) >= num_classes):
        raise ValueRangeError(
            f"one_hot: class values must be in [0, {num_classes}), got min {int(x._data.min())}, max {int(x._data.max())}"
        )
    return Tensor._wrap((x._data[..., None] == xp.arange(num_classes)).astype(np.int64))


# ----------------------------------------------------------------------------- gather / scatter


def nonzero(x, *, as_tuple: bool = False):
    """Indices of the non-zero elements: (n, ndim) int64, or one array per dim with ``as_tuple``."""
    x = as_tensor(x, "nonzero")
    xp = xp_of(x._data)
    data = x._data if x.ndim else x._data.reshape(1)
    idx = xp.nonzero(data)
    if as_tuple:
        return tuple(Tensor._wrap(i.astype(np.int64)) for i in idx)
    out = xp.stack(idx, axis=1).astype(np.int64) if idx else xp.zeros((0, 0), np.int64)
    if x.ndim == 0:
        out = out[:, :0]
    return Tensor._wrap(out)


def argwhere(x):
    return nonzero(x)


def _along(index, axis):
    """The advanced index that addresses ``x[..., index[i, j, k], ...]`` at axis ``axis`` and
    ``x[i, j, k]`` elsewhere, for gather/scatter (index may be smaller than x off ``axis``)."""
    xp = xp_of(index)
    parts = []
    for d in range(index.ndim):
        if d == axis:
            parts.append(index)
        else:
            shape = [1] * index.ndim
            shape[d] = index.shape[d]
            parts.append(xp.arange(index.shape[d]).reshape(shape))
    return tuple(parts)


def _check_gather(name, x, dim, index, src=None):
    index = as_tensor(index, name)
    if index.dtype.kind not in "iu":
        raise DTypeError(f"{name}: index must be an integer tensor (int64 or int32), got {index.dtype}")
    if x.ndim != index.ndim and not (x.ndim == 0 and index.ndim <= 1):
        raise ShapeError(f"{name}: index has {index.ndim} dims ({tuple(index.shape)}), the tensor {x.ndim} ({tuple(x.shape)})")
    axis = normalize_dim(name, x.ndim, dim)
    if x.ndim == 0:
        return index, axis
    for d in range(x.ndim):
        if d != axis and index.shape[d] > x.shape[d]:
            raise ShapeError(f"{name}: index {tuple(index.shape)} is larger than the tensor {tuple(x.shape)} at dim {d}")
        if src is not None and index.shape[d] > src.shape[d]:
            raise ShapeError(f"{name}: index {tuple(index.shape)} is larger than src {tuple(src.shape)} at dim {d}")
    if index._data.size:
        lo, hi = int(index._data.min()), int(index._data.max())
        if lo < 0 or hi >= x.shape[axis]:  # no negative (wrap-around) indices here, as PyTorch
            raise IndexRangeError(f"{name}: index {lo if lo < 0 else hi} is out of bounds for dimension {axis} "
                                  f"with size {x.shape[axis]}")
    return index, axis


class Gather(Function):
    @staticmethod
    def forward(ctx, x, index, axis):
        ctx.meta = (x.shape, x.dtype)
        where_ = _along(index, axis)
        ctx.save_for_backward(*where_)
        return x[where_]

    @staticmethod
    def backward(ctx, g):
        shape, dtype = ctx.meta
        out = xp_of(g).zeros(shape, dtype)
        add_at(out, tuple(ctx.saved_arrays), g)
        return out, None

    @staticmethod
    def backward_graph(ctx, g):
        shape, _ = ctx.meta
        return IndexPutZeros.apply(g, shape, tuple(ctx.saved_arrays)), None


def gather(x, dim, index, *, sparse_grad=False):
    """``out[i][j][k] = x[index[i][j][k]][j][k]`` for dim 0 (and so on): PyTorch's gather."""
    x = as_tensor(x, "gather")
    index, axis = _check_gather("gather", x, dim, index)
    if x.ndim == 0:
        return getitem(x.reshape(1), index._data)
    if x.dtype.kind not in "fc":
        return Tensor._wrap(x._data[_along(index._data, axis)])
    return Gather.apply(x, index._data, axis)


def take_along_dim(x, indices, dim=None):
    """``torch.take_along_dim``: gather along ``dim`` after broadcasting ``x`` and ``indices``
    against each other in every other dim (PyTorch does; gather itself does not); with
    ``dim=None``, both are flattened first."""
    x, indices = as_tensor(x, "take_along_dim"), as_tensor(indices, "take_along_dim")
    if dim is None:
        return gather(x.reshape(-1), 0, indices.reshape(-1))
    if x.ndim != indices.ndim:
        raise ShapeError(f"take_along_dim: input and indices should have the same number of dimensions, but got "
                         f"{x.ndim} dimensions for input, and {indices.ndim} dimensions for indices")
    d = normalize_dim("take_along_dim", x.ndim, dim)
    try:
        other = np.broadcast_shapes(*((s[:d] + (1,) + s[d + 1:]) for s in (tuple(x.shape), tuple(indices.shape))))
    except ValueError:
        raise ShapeError(f"take_along_dim: input {tuple(x.shape)} and indices {tuple(indices.shape)} do not broadcast "
                         f"outside dim {d}") from None
    if tuple(x.shape[:d] + x.shape[d + 1:]) != other[:d] + other[d + 1:]:
        x = x.expand(*other[:d], x.shape[d], *other[d + 1:])
    if tuple(indices.shape[:d] + indices.shape[d + 1:]) != other[:d] + other[d + 1:]:
        indices = indices.expand(*other[:d], indices.shape[d], *other[d + 1:])
    return gather(x, d, indices)


def _src_part(src, index):
    """The part of ``src`` that the index addresses (src may be larger than index)."""
    return src[tuple(slice(0, n) for n in index.shape)]


class Scatter(Function):
    """``out = x`` with ``out[index along axis] = src`` (or ``+=`` when ``add``). Gradients:
    x gets g (with the overwritten positions zeroed when not ``add``); src gets g gathered."""

    @staticmethod
    def forward(ctx, x, src, index, axis, add):
        where_ = _along(index, axis)
        ctx.meta = (getattr(src, "shape", None), add)
        ctx.save_for_backward(*where_)
        out = x.copy()
        part = _src_part(src, index) if hasattr(src, "shape") else src
        if add:
            add_at(out, where_, part)
        else:
            out[where_] = part
        return out

    @staticmethod
    def backward(ctx, g):
        where_ = tuple(ctx.saved_arrays)
        src_shape, add = ctx.meta
        nx, ns = ctx.needs_input_grad[:2]
        gx = gs = None
        if nx:
            gx = g if add else g.copy()
            if not add:
                gx[where_] = 0
        if ns:
            gs = xp_of(g).zeros(src_shape, g.dtype)
            part = g[where_]
            gs[tuple(slice(0, n) for n in part.shape)] = part
        return gx, gs, None

    @staticmethod
    def backward_graph(ctx, g):
        where_ = tuple(ctx.saved_arrays)
        src_shape, add = ctx.meta
        nx, ns = ctx.needs_input_grad[:2]
        gx = gs = None
        if nx:
            gx = g
            if not add:
                hit = xp_of(g._data).zeros(g.shape, bool)
                hit[where_] = True
                gx = where(Tensor._wrap(hit), 0.0, g)
        if ns:
            part = GetItem.apply(g, where_)
            gs = part if tuple(part.shape) == tuple(src_shape) else \
                IndexPutZeros.apply(part, src_shape, tuple(slice(0, n) for n in part.shape))
        return gx, gs, None


def _scatter(name, x, dim, index, src, add):
    x = as_tensor(x, name)
    value = not isinstance(src, Tensor) and not hasattr(src, "shape") and not isinstance(src, list)
    if not value:
        src = as_tensor(src, name)
        if src.dtype != x.dtype:
            src = cast(src, x.dtype)
    index, axis = _check_gather(name, x, dim, index, None if value else src)
    return Scatter.apply(x, src, index._data, axis, add)


def scatter(x, dim, index, src=None, *, value=None, reduce=None):
    """PyTorch's ``scatter``: ``out[index[i][j]][j] = src[i][j]`` (dim 0); ``src`` may be a
    number. ``reduce="add"``/``"multiply"`` as the deprecated PyTorch option."""
    if src is None:
        src = value
    src = check_scalar_fits(src, as_tensor(x, "scatter")._data.dtype, half_overflows=True)
    if reduce == "add":
        return scatter_add(x, dim, index, src)
    if reduce == "multiply":
        return scatter_reduce(x, dim, index, src, "prod")
    if reduce is not None:
        raise ValueError(f"scatter: reduce must be None, 'add' or 'multiply', got {reduce!r}")
    return _scatter("scatter", x, dim, index, src, add=False)


def scatter_add(x, dim, index, src):
    """``out = x; out[index[i][j]][j] += src[i][j]`` (dim 0); repeated indices all add."""
    return _scatter("scatter_add", x, dim, index, src, add=True)


class ScatterReduce(Function):
    """scatter_reduce with ``reduce`` in sum/prod/mean/amax/amin. The gradient follows
    PyTorch: sum as scatter_add, mean divided by the count, amax/amin shared evenly by every
    element (self or src) equal to the result, prod as out/element (inputs without zeros)."""

    @staticmethod
    def forward(ctx, x, src, index, axis, reduce, include_self):
        xp = xp_of(x)
        where_ = _along(index, axis)
        part = _src_part(src, index)
        out = x.copy()
        touched = xp.zeros(x.shape, bool)
        touched[where_] = True
        count = xp.zeros(x.shape, x.dtype if x.dtype.kind in "fc" else np.float64)
        add_at(count, where_, 1)
        if not include_self:
            ident = {"sum": 0, "mean": 0, "prod": 1, "amax": -np.inf, "amin": np.inf}[reduce]
            if x.dtype.kind not in "fc" and reduce in ("amax", "amin"):
                info = np.iinfo(x.dtype)
                ident = info.min if reduce == "amax" else info.max
            out[touched] = ident
        else:
            count = count + 1
        if reduce in ("sum", "mean"):
            add_at(out, where_, part)
        elif xp is np:
            {"prod": np.multiply, "amax": np.maximum, "amin": np.minimum}[reduce].at(out, where_, part)
        else:
            raise NotImplementedError(f"scatter_reduce: reduce={reduce!r} on CUDA")
        if reduce == "mean":
            c = xp.where(touched, count, 1)
            if x.dtype.kind in "fc":
                out = xp.where(touched, out / c, out).astype(x.dtype)
            else:
                out = xp.where(touched, xp.floor_divide(out, c.astype(x.dtype)), out)
        ctx.meta = (reduce, include_self, src.shape)
        ctx.save_for_backward(x, src, out, touched, count, *where_)
        return out

    @staticmethod
    def backward(ctx, g):
        x, src, out, touched, count, *where_ = ctx.saved_arrays
        where_ = tuple(where_)
        reduce, include_self, src_shape = ctx.meta
        xp = xp_of(g)
        # opse: the index's shape is the broadcast of where_'s parts (where_[0] alone is an
        # arange of shape (n, 1, ...) when the scatter axis is not 0)
        part = src[tuple(slice(0, n) for n in np.broadcast_shapes(*(w.shape for w in where_)))]
        if reduce == "sum":
            gx, gpart = g.copy(), g[where_]
        elif reduce == "mean":
            c = xp.where(touched, count, 1).astype(g.dtype)
            gx, gpart = g / c, (g / c)[where_]
        elif reduce == "prod":
            with np.errstate(all="ignore"):
                gx = xp.where(touched, g * out / x, g)
                gpart = (g * out)[where_] / part
        else:
            hits = xp.zeros(x.shape, g.dtype)
            self_hit = (x == out) & touched if include_self else xp.zeros(x.shape, bool)
            hits += self_hit
            src_hit = part == out[where_]
            add_at(hits, where_, src_hit.astype(g.dtype))
            share = g / xp.where(hits == 0, 1, hits)
            gx = xp.where(touched, share * self_hit, g)
            gpart = share[where_] * src_hit
        if not include_self and reduce != "prod":
            gx = xp.where(touched, 0, gx)
        if not include_self and reduce == "prod":
            gx = xp.where(touched, 0, gx)
        gs = xp.zeros(src_shape, g.dtype)
        gs[tuple(slice(0, n) for n in gpart.shape)] = gpart
        na, ns = ctx.needs_input_grad[:2]
        return (gx.astype(g.dtype, copy=False) if na else None, gs if ns else None, None)

    @staticmethod
    def backward_graph(ctx, g):
        """sum, mean, amax and amin on Tensors (each a constant mask or divisor times g, so
        linear in g; the winners of amax/amin are constants, as in PyTorch); prod has no
        differentiable form here and gives its first-order gradient only."""
        x, src, out, touched, count, *where_ = ctx.saved_arrays
        where_ = tuple(where_)
        reduce, include_self, src_shape = ctx.meta
        if reduce == "prod":
            return NotImplemented
        xp = xp_of(x)
        gx_zero = touched if not include_self else xp.zeros(x.shape, bool)
        if reduce == "sum":
            share, self_hit = g, None
        elif reduce == "mean":
            share, self_hit = g / Tensor._wrap(xp.where(touched, count, 1).astype(x.dtype)), None
        else:
            part = src[tuple(slice(0, n) for n in np.broadcast_shapes(*(w.shape for w in where_)))]
            hits = xp.zeros(x.shape, x.dtype)
            self_hit = (x == out) & touched if include_self else xp.zeros(x.shape, bool)
            hits += self_hit
            src_hit = part == out[where_]
            add_at(hits, where_, src_hit.astype(x.dtype))
            share = g / Tensor._wrap(xp.where(hits == 0, 1, hits))
        gx = share if self_hit is None else where(Tensor._wrap(touched & ~self_hit), 0.0, where(
            Tensor._wrap(touched), share, g))
        gx = where(Tensor._wrap(gx_zero), 0.0, gx)
        gpart = GetItem.apply(share, where_)
        if self_hit is not None:
            gpart = gpart * Tensor._wrap(src_hit.astype(x.dtype))
        gs = gpart if tuple(gpart.shape) == tuple(src_shape) else \
            IndexPutZeros.apply(gpart, src_shape, tuple(slice(0, n) for n in gpart.shape))
        na, ns = ctx.needs_input_grad[:2]
        return (gx if na else None, gs if ns else None, None)


def scatter_reduce(x, dim, index, src, reduce, *, include_self: bool = True):
    """PyTorch's ``scatter_reduce``: reduce ``src`` into ``x`` at ``index`` along ``dim`` with
    "sum", "prod", "mean", "amax" or "amin"; ``include_self`` counts x's own value."""
    if reduce not in ("sum", "prod", "mean", "amax", "amin"):
        raise ValueError(f"scatter_reduce: reduce must be sum, prod, mean, amax or amin, got {reduce!r}")
    x = as_tensor(x, "scatter_reduce")
    src = as_tensor(src, "scatter_reduce")
    if src.dtype != x.dtype:
        src = cast(src, x.dtype)
    index, axis = _check_gather("scatter_reduce", x, dim, index, src)
    return ScatterReduce.apply(x, src, index._data, axis, reduce, bool(include_self))


def index_select(x, dim, index):
    """The slices of ``x`` at ``index`` (1-D integers) along ``dim``."""
    x = as_tensor(x, "index_select")
    index = as_tensor(index, "index_select")
    if index.dtype.kind not in "iu":
        raise DTypeError(f"index_select: index must be an integer tensor (int64 or int32), got {index.dtype}")
    if index.ndim > 1:
        raise IndexError(f"index_select: index is supposed to be a vector (0-d or 1-D), got shape {tuple(index.shape)}")
    if x.ndim == 0:
        normalize_dim("index_select", 0, dim)  # only 0 or -1 (IndexError otherwise, as PyTorch)
        if index.numel() != 1:
            raise ShapeError(f"index_select(): Index to scalar can have only 1 value, got {index.numel()} value(s)")
        return getitem(x.reshape(1), index._data.reshape(-1)).reshape(())
    axis = normalize_dim("index_select", x.ndim, dim)
    n = x.shape[axis]
    if index._data.size and (int(index._data.min()) < 0 or int(index._data.max()) >= n):
        bad = int(index._data.min()) if int(index._data.min()) < 0 else int(index._data.max())
        raise IndexRangeError(f"index_select: index {bad} is out of range for dimension {axis} with size {n} "
                              "(negative indices are not accepted)")
    return getitem(x, (slice(None),) * axis + (index._data.reshape(-1),))


# ----------------------------------------------------------------------------- index_add, take, searchsorted


class IndexAdd(Function):
    """``out = x`` with ``out[..., index[i], ...] += alpha · source[..., i, ...]`` along ``axis``
    (a repeated index adds each time). Gradients: x gets g; source gets alpha · g at index."""

    @staticmethod
    def forward(ctx, x, source, index, axis, alpha):
        ctx.meta = (index, axis, alpha)
        out = x.copy()
        add_at(out, (slice(None),) * axis + (index,), source if alpha == 1 else source * alpha)
        return out

    @staticmethod
    def backward(ctx, g):
        index, axis, alpha = ctx.meta
        nx, ns = ctx.needs_input_grad[:2]
        gs = None
        if ns:
            gs = xp_of(g).take(g, index, axis=axis)
            gs = gs if alpha == 1 else gs * alpha
        return (g if nx else None), gs

    @staticmethod
    def backward_graph(ctx, g):
        index, axis, alpha = ctx.meta
        nx, ns = ctx.needs_input_grad[:2]
        gs = None
        if ns:
            gs = GetItem.apply(g, (slice(None),) * axis + (index,))
            gs = gs if alpha == 1 else gs * alpha
        return (g if nx else None), gs


def check_index_add(name, x, dim, index, source):
    """Validated (x, source, index array, axis) for index_add / index_add_."""
    x, source, index = as_tensor(x, name), as_tensor(source, name), as_tensor(index, name)
    if index.dtype.kind not in "iu" or index.ndim > 1:
        raise IndexError(f"{name}: index must be a 0-d or 1-D integer tensor, got {index.dtype} of shape {tuple(index.shape)}")
    if x.dtype != source.dtype:
        raise DTypeError(f"{name}: self ({x.dtype}) and source ({source.dtype}) must have the same scalar type")
    idx = index._data.reshape(-1)
    if x.ndim == 0:
        x1, s1 = x.reshape(1), source.reshape(1)
        return x1, s1, idx, 0
    axis = normalize_dim(name, x.ndim, dim)
    s_shape = tuple(source.shape) if source.ndim else (1,)
    want = tuple(x.shape[:axis]) + (idx.shape[0],) + tuple(x.shape[axis + 1:])
    if s_shape != want:
        raise ShapeError(f"{name}: source has shape {tuple(source.shape)}, expected {want} (self {tuple(x.shape)} "
                         f"with dim {axis} of size len(index) = {idx.shape[0]})")
    n = x.shape[axis]
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n):
        bad = int(idx.min()) if int(idx.min()) < 0 else int(idx.max())
        raise IndexRangeError(f"{name}: index {bad} is out of bounds for dimension {axis} with size {n} "
                              "(negative indices are not accepted, as in PyTorch)")
    return x, source.reshape(*want), idx, axis


def index_add(x, dim, index, source, *, alpha=1):
    """A copy of ``x`` with ``alpha · source`` added at ``index`` along ``dim``."""
    x0 = as_tensor(x, "index_add")
    x1, source, idx, axis = check_index_add("index_add", x0, dim, index, source)
    if x1.dtype.kind not in "fc":
        return Tensor._wrap(IndexAdd.forward(_Ctx(), x1._data, source._data, idx, axis, alpha).reshape(x0.shape))
    out = IndexAdd.apply(x1, source, idx, axis, alpha)
    return out if x0.ndim else out.reshape(())


class _Ctx:
    """A context for a forward run without recording (integer tensors)."""

    def save_for_backward(self, *a):
        pass


def take(input, index):
    """``input`` read as 1-D at ``index``: the result has ``index``'s shape."""
    x, index = as_tensor(input, "take"), as_tensor(index, "take")
    if index.dtype.kind not in "iu":
        raise IndexError(f"take: index must be an integer tensor, got {index.dtype}")
    n = x.numel()
    if index._data.size and (int(index._data.min()) < -n or int(index._data.max()) >= n):
        bad = int(index._data.max()) if int(index._data.max()) >= n else int(index._data.min())
        raise IndexError(f"take: out of range: tried to access index {bad} on a tensor of {n} elements")
    return getitem(x.reshape(-1), index._data)


def searchsorted(sorted_sequence, values, *, out_int32: bool = False, right: bool = False, side=None, sorter=None):
    """For each value, the index where it would be inserted to keep ``sorted_sequence``
    (sorted along its last dim) sorted: the first such index (``right=False``, side "left")
    or the last. An N-D sequence matches ``values``' leading dims, one row per row."""
    seq = as_tensor(sorted_sequence, "searchsorted")
    scalar = not isinstance(values, Tensor) and np.ndim(values) == 0
    vals = as_tensor(values, "searchsorted")
    if seq.ndim == 0:
        raise ShapeError("searchsorted: boundaries tensor should have positive dimension, but got 0 dimension")
    if side is not None:
        if side not in ("left", "right"):
            raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
        if right and side == "left":
            raise ValueError("searchsorted: side and right can't be set to opposites, got side of left while right was True")
        right = side == "right"
    if sorter is not None and tuple(as_tensor(sorter).shape) != tuple(seq.shape):
        raise ShapeError(f"searchsorted: boundary and sorter must have the same size, but got boundary tensor "
                         f"{list(seq.shape)} and sorter tensor {list(as_tensor(sorter).shape)}")
    s = seq._data if sorter is None else xp_of(seq._data).take_along_axis(seq._data, as_tensor(sorter)._data, axis=-1)
    v = vals._data
    xp = xp_of(s)
    how = "right" if right else "left"
    if seq.ndim <= 1:
        out = xp.searchsorted(s.reshape(-1), v, side=how)
    else:
        if scalar or seq.shape[:-1] != vals.shape[:-1]:
            raise ShapeError(f"searchsorted: boundaries tensor should be 1 dimension or the first N-1 dimensions of "
                             f"boundaries tensor and input value tensor must match, but we got boundaries tensor "
                             f"{list(seq.shape)} and input value tensor {list(vals.shape)}")
        s2, v2 = s.reshape(-1, s.shape[-1]), v.reshape(-1, v.shape[-1])
        out = xp.stack([xp.searchsorted(a, b, side=how) for a, b in zip(s2, v2)]).reshape(v.shape)
    return Tensor._wrap(xp.asarray(out).astype(np.int32 if out_int32 else np.int64))


def bucketize(input, boundaries, *, out_int32: bool = False, right: bool = False):
    """The bucket of each input element among 1-D ``boundaries``: i such that
    boundaries[i-1] < x <= boundaries[i] (``right=False``) or boundaries[i-1] <= x < boundaries[i]."""
    b = as_tensor(boundaries, "bucketize")
    if b.ndim != 1:
        raise ShapeError(f"bucketize: boundaries tensor must be 1 dimension, but got dim({b.ndim})")
    return searchsorted(b, input, out_int32=out_int32, right=right)
