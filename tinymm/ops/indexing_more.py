"""The rest of PyTorch's indexing family: write-into-a-region ops, ``as_strided``, the splits.

Region writes (``index_copy``, ``index_fill``, ``index_put``, ``select_scatter``,
``slice_scatter``, ``diagonal_scatter``, ``masked_scatter``, ``put``) are one Function,
``WriteRegion``: the output is a copy of ``x`` with ``out[index] = src`` (or ``+= src`` when
accumulating). Gradients: ``x`` gets ``g`` with the written region zeroed (all of ``g`` when
accumulating); ``src`` gets ``g[index]``, summed over what broadcasting stretched. It saves
nothing but the index. The in-place forms (``index_copy_`` ...) are ``inplace_of`` these.

``as_strided`` is a view of the tensor's storage (PyTorch's geometry: element strides and an
offset counted from the storage's start); its gradient scatters ``g`` into a zero storage
and reads the input's own geometry back out of it, as PyTorch's ``as_strided_backward``.

The splits (``tensor_split``, ``hsplit``/``vsplit``/``dsplit``, ``split_with_sizes``) return
views, each a ``narrow`` of the input.
"""
from __future__ import annotations

import builtins

import numpy as np

from tinymm import autograd
from tinymm.autograd import Function
from tinymm.ops._util import DTypeError, broadcasts_to, IndexRangeError, ShapeError, normalize_dim, unbroadcast, xp_of
from tinymm.ops.convert import as_tensor, cast, clone
from tinymm.ops.index import add_at, array_index, getitem, numpy_index, scatter_reduce
from tinymm.ops.inplace import inplace_of
from tinymm.ops.layout import diagonal, narrow
from tinymm.ops.shape import reshape, split
from tinymm.ops.views import geometry as _geometry, strided as _strided
from tinymm.ops.scalar_fit import check_scalar_fits
from tinymm.tensor import Tensor, bump_version


class WriteRegion(Function):
    """``out = x.copy(); out[index] = src`` (``+=`` with ``accumulate``). ``src`` arrives
    already shaped like ``out[index]`` or broadcastable to it; ``move`` (or None) is the axis
    ``src``'s last dim goes to before writing (diagonal_scatter: NumPy puts the diagonal of
    two non-adjacent advanced indices first, PyTorch last)."""

    @staticmethod
    def forward(ctx, x, src, index, accumulate, move):
        ctx.meta = (index, accumulate, move, getattr(src, "shape", ()))
        xp = xp_of(x)
        out = x.copy()
        if move is not None:
            src = xp.moveaxis(src, -1, move)
        if accumulate:
            region = out[index]
            add_at(out, index, xp.broadcast_to(xp.asarray(src, dtype=x.dtype), region.shape))
        else:
            out[index] = src
        return out

    @staticmethod
    def backward(ctx, g):
        index, accumulate, move, src_shape = ctx.meta
        nx, ns = ctx.needs_input_grad[:2]
        gx = gs = None
        if nx:
            gx = g if accumulate else g.copy()
            if not accumulate:
                gx[index] = 0
        if ns:
            part = g[index]
            if move is not None:
                part = xp_of(g).moveaxis(part, move, -1)
            gs = unbroadcast(part, src_shape)
        return gx, gs


def _write(name, x, src, index, accumulate=False, move=None):
    """Run ``WriteRegion`` with src cast to x's dtype (a Python number passes through)."""
    if isinstance(src, Tensor):
        if src.dtype != x.dtype:
            src = cast(src, x.dtype)
        if type(src._data) is not type(x._data):
            raise RuntimeError(f"{name}: src is on {src.device}, self on {x.device}")
    return WriteRegion.apply(x, src, index, accumulate, move)


def _index_vector(name, index, size, axis, negative_ok=False):
    """A 0-d/1-D int64 index checked against a dim of ``size`` (IndexError, as PyTorch)."""
    index = as_tensor(index, name)
    if index.dtype.kind not in "iu":
        raise IndexRangeError(f"{name}: Expected a long tensor for index, but got {index.dtype}")
    if index.ndim > 1:
        raise IndexRangeError(f"{name}: Index should have dimension 1 or 0 (got {index.ndim})")
    idx = np.asarray(index.numpy(force=True)).reshape(-1).astype(np.int64)
    if idx.size:
        lo = -size if negative_ok else 0
        bad = idx[(idx < lo) | (idx >= size)]
        if bad.size:
            raise IndexError(f"{name}: index {int(bad[0])} is out of bounds for dimension {axis} with size {size}")
    return idx % builtins.max(size, 1) if negative_ok else idx


def _along(axis, idx):
    return (slice(None),) * axis + (idx,)


# ----------------------------------------------------------------------------- index_*


def index_copy(x, dim, index, source):
    """A copy of ``x`` with ``x[..., index[i], ...] = source[..., i, ...]`` along ``dim``."""
    x, source = as_tensor(x, "index_copy"), as_tensor(source, "index_copy")
    if x.ndim == 0:
        return index_copy(x.reshape(1), dim, index, source.reshape(1)).reshape(())
    axis = normalize_dim("index_copy", x.ndim, dim)
    idx = _index_vector("index_copy_(): ", index, x.shape[axis], axis)
    want = tuple(x.shape[:axis]) + (idx.size,) + tuple(x.shape[axis + 1:])
    s_shape = tuple(source.shape) if source.ndim else (1,)
    if s_shape != want:
        raise ShapeError(f"index_copy_(): Source/destination tensor must have same slice shapes: source has shape "
                         f"{list(source.shape)}, expected {list(want)} for self {list(x.shape)}, dim {axis}, "
                         f"{idx.size} indices")
    if x.dtype != source.dtype:
        raise DTypeError(f"index_copy_(): self and source expected to have the same dtype, but got "
                         f"(self) {x.dtype} and (source) {source.dtype}")
    return _write("index_copy", x, reshape(source, *want), _along(axis, idx))


def index_fill(x, dim, index, value):
    """A copy of ``x`` with the slices at ``index`` along ``dim`` set to ``value`` (a number or a
    0-d tensor, which then receives the gradient of every element it filled)."""
    x = as_tensor(x, "index_fill")
    if isinstance(value, Tensor) and value.ndim != 0:
        raise ShapeError(f"index_fill_ only supports a 0-dimensional value tensor, but got tensor with {value.ndim} dimension(s).")
    value = check_scalar_fits(value, x._data.dtype, half_overflows=True)
    if x.ndim == 0:
        return index_fill(x.reshape(1), dim, index, value).reshape(())
    axis = normalize_dim("index_fill", x.ndim, dim)
    idx = _index_vector("index_fill", index, x.shape[axis], axis, negative_ok=True)
    return _write("index_fill", x, value, _along(axis, idx))


def index_put(x, indices, values, accumulate: bool = False):
    """A copy of ``x`` with ``x[indices] = values`` (``+=``, each repeat adding, when
    ``accumulate``); ``indices`` is a tuple of integer or bool tensors, as PyTorch."""
    x, values = as_tensor(x, "index_put"), as_tensor(values, "index_put")
    if not isinstance(indices, (tuple, list)):
        raise TypeError(f"index_put: indices must be a tuple of tensors, got {type(indices).__name__}")
    index = numpy_index(x.shape, array_index(tuple(indices)))
    try:
        region = np.empty(x.shape, dtype=bool)[index].shape
    except IndexError as e:
        raise IndexError(f"index_put: {e}") from None
    if not broadcasts_to(values.shape, region):
        raise ShapeError(f"shape mismatch: value tensor of shape {list(values.shape)} cannot be broadcast to "
                         f"indexing result of shape {list(region)}")
    if type(x._data) is not np.ndarray:
        xp = xp_of(x._data)
        index = tuple(xp.asarray(i) if isinstance(i, np.ndarray) else i for i in index)
    return _write("index_put", x, values, index, accumulate=bool(accumulate))


_INDEX_REDUCE = ("prod", "mean", "amax", "amin")


def index_reduce(x, dim, index, source, reduce, *, include_self: bool = True):
    """Reduce ``source``'s slices into ``x``'s slices at ``index`` along ``dim`` with "prod",
    "mean", "amax" or "amin" (``include_self``: x's own value takes part); gradients as
    ``scatter_reduce``, which this is with the index spread over source's shape."""
    if reduce not in _INDEX_REDUCE:
        raise RuntimeError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or amin but got {reduce}.")
    x, source = as_tensor(x, "index_reduce"), as_tensor(source, "index_reduce")
    if x.ndim == 0:
        return index_reduce(x.reshape(1), dim, index, source.reshape(1), reduce, include_self=include_self).reshape(())
    axis = normalize_dim("index_reduce", x.ndim, dim)
    idx = _index_vector("index_reduce_(): ", index, x.shape[axis], axis)
    want = tuple(x.shape[:axis]) + (idx.size,) + tuple(x.shape[axis + 1:])
    if tuple(source.shape) != want:
        raise ShapeError(f"index_reduce_(): source has shape {list(source.shape)}, expected {list(want)}")
    if x.dtype != source.dtype:
        raise DTypeError(f"index_reduce_(): self ({x.dtype}) and source ({source.dtype}) must have the same scalar type")
    spread = [1] * x.ndim
    spread[axis] = idx.size
    full = Tensor._wrap(np.broadcast_to(idx.reshape(spread), want).copy())
    if type(x._data) is not np.ndarray:
        full = full.to(x.device)
    return scatter_reduce(x, axis, full, source, reduce, include_self=include_self)


# ----------------------------------------------------------------------------- masked_scatter, put


def masked_scatter(x, mask, source):
    """A copy of ``x`` whose elements where ``mask`` (bool, broadcast to x) is True take
    ``source``'s first elements in row-major order."""
    x, mask, source = (as_tensor(a, "masked_scatter") for a in (x, mask, source))
    if mask.dtype.kind != "b":
        raise DTypeError(f"masked_scatter_ only supports boolean masks, but got mask with dtype {mask.dtype}")
    try:
        full = np.broadcast_to(mask.numpy(force=True), x.shape)
    except ValueError:
        raise ShapeError(f"masked_scatter: mask of shape {list(mask.shape)} does not broadcast to self's shape "
                         f"{list(x.shape)}") from None
    where_ = np.nonzero(full)
    k = where_[0].size if x.ndim else int(full)
    if source.numel() < k:
        raise ShapeError("masked_scatter: Number of elements of source < number of ones in mask "
                         f"({source.numel()} < {k})")
    if x.ndim == 0:
        return x * 1 if not k else masked_scatter(x.reshape(1), mask.reshape(1), source).reshape(())
    src = reshape(source, -1)
    if k != source.numel():
        src = getitem(src, slice(0, k))
    return _write("masked_scatter", x, src, where_)


def put(x, index, source, accumulate: bool = False):
    """A copy of ``x`` read as 1-D with ``flat[index] = source`` (``+=`` when ``accumulate``);
    negative indices count from the end, as PyTorch."""
    x, index, source = as_tensor(x, "put"), as_tensor(index, "put"), as_tensor(source, "put")
    if index.dtype.kind not in "iu":
        raise IndexRangeError(f"put_(): Expected a long tensor for index, but got {index.dtype}")
    if index.numel() != source.numel():
        raise IndexError(f"put_(): Expected source and index to have the same number of elements, but got "
                         f"source.numel() = {source.numel()}, index.numel() = {index.numel()}")
    n = x.numel()
    idx = np.asarray(index.numpy(force=True)).reshape(-1).astype(np.int64)
    bad = idx[(idx < -n) | (idx >= n)]
    if bad.size:
        raise IndexError(f"put: out of range: tried to access index {int(bad[0])} on a tensor of {n} elements.")
    flat_pos = np.unravel_index(idx % builtins.max(n, 1), x.shape)
    if type(x._data) is not np.ndarray:
        xp = xp_of(x._data)
        flat_pos = tuple(xp.asarray(i) for i in flat_pos)
    return _write("put", x, reshape(source, -1), flat_pos, accumulate=bool(accumulate))


# ----------------------------------------------------------------------------- *_scatter


def _check_slice(name, src, region_shape):
    if tuple(src.shape) != tuple(region_shape):
        raise ShapeError(f"{name}: expected src to have a size equal to the slice of self. src size = "
                         f"{list(src.shape)}, slice size = {list(region_shape)}")


def select(x, dim, index):
    """``x`` indexed at ``index`` along ``dim`` (a view, one dim fewer)."""
    x = as_tensor(x, "select")
    if x.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    axis = normalize_dim("select", x.ndim, dim)
    n = x.shape[axis]
    i = int(index)
    if not -n <= i < n:
        raise IndexError(f"select(): index {i} out of range for tensor of size {list(x.shape)} at dimension {axis}")
    return getitem(x, _along(axis, i % n))


def select_scatter(input, src, dim, index):
    """A copy of ``input`` with ``input.select(dim, index)`` replaced by ``src``."""
    x, src = as_tensor(input, "select_scatter"), as_tensor(src, "select_scatter")
    region = select(x, dim, index)
    _check_slice("select_scatter", src, region.shape)
    axis = normalize_dim("select_scatter", x.ndim, dim)
    return _write("select_scatter", x, src, _along(axis, int(index) % x.shape[axis]))


def slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    """A copy of ``input`` with ``input[..., start:end:step, ...]`` (along ``dim``) replaced by ``src``."""
    x, src = as_tensor(input, "slice_scatter"), as_tensor(src, "slice_scatter")
    if step is None or step <= 0:
        raise ValueError(f"slice_scatter: slice step must be positive, got {step}")
    axis = normalize_dim("slice_scatter", x.ndim, dim)
    index = _along(axis, slice(start, end, step))
    _check_slice("slice_scatter", src, np.empty(x.shape, bool)[index].shape)
    return _write("slice_scatter", x, src, index)


def diagonal_scatter(input, src, offset: int = 0, dim1: int = 0, dim2: int = 1):
    """A copy of ``input`` whose diagonal ``diagonal(input, offset, dim1, dim2)`` is ``src``."""
    x, src = as_tensor(input, "diagonal_scatter"), as_tensor(src, "diagonal_scatter")
    region = diagonal(x.detach(), offset, dim1, dim2)
    _check_slice("diagonal_scatter", src, region.shape)
    d1 = normalize_dim("diagonal_scatter", x.ndim, dim1)
    d2 = normalize_dim("diagonal_scatter", x.ndim, dim2)
    k = region.shape[-1]
    rows = np.arange(k) + builtins.max(-offset, 0)
    cols = np.arange(k) + builtins.max(offset, 0)
    index = [slice(None)] * x.ndim
    index[d1], index[d2] = rows, cols
    # NumPy keeps two adjacent advanced indices' dim in place, and moves it first otherwise.
    move = builtins.min(d1, d2) if abs(d1 - d2) == 1 else 0
    return _write("diagonal_scatter", x, src, tuple(index), move=move)


# ----------------------------------------------------------------------------- as_strided


class AsStrided(Function):
    """A view with PyTorch geometry ``(size, stride, offset)`` over the input's storage.
    Backward: ``g`` scattered (summed where the view overlaps itself) into a zero storage,
    read back with the input's own geometry."""

    @staticmethod
    def forward(ctx, x, size, stride, offset):
        in_off, in_stride, flat = _geometry(x)
        ctx.meta = (flat.size, tuple(x.shape), in_stride, in_off, tuple(size), tuple(stride), offset)
        return _strided(flat, size, stride, offset)

    @staticmethod
    def backward(ctx, g):
        n, in_shape, in_stride, in_off, size, stride, offset = ctx.meta
        xp = xp_of(g)
        positions = _strided(xp.arange(n), size, stride, offset)
        storage = xp.zeros(n, g.dtype)
        add_at(storage, positions.reshape(-1), g.reshape(-1))
        return _strided(storage, in_shape, in_stride, in_off).copy()


def _as_strided_args(name, x, size, stride, storage_offset):
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise RuntimeError(f"{name}: mismatch in length of strides and shape ({len(stride)} vs {len(size)})")
    if any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise RuntimeError(f"{name}: negative sizes or strides are not allowed: sizes {list(size)}, strides {list(stride)}")
    in_off, _, flat = _geometry(x._data)
    offset = in_off if storage_offset is None else int(storage_offset)
    need = 0 if 0 in size else offset + 1 + builtins.sum((n - 1) * s for n, s in zip(size, stride))
    if need > flat.size:
        raise RuntimeError(f"{name}: setStorage: sizes {list(size)}, strides {list(stride)}, storage offset {offset}, "
                           f"and itemsize {x.element_size()} requiring a storage size of {need * x.element_size()} are "
                           f"out of bounds for storage of size {flat.size * x.element_size()}")
    return size, stride, offset


def as_strided(x, size, stride, storage_offset=None):
    """A view of ``x``'s storage with sizes ``size``, element strides ``stride`` and first
    element at ``storage_offset`` (default: x's own offset), as PyTorch's ``as_strided``."""
    x = as_tensor(x, "as_strided")
    size, stride, offset = _as_strided_args("as_strided", x, size, stride, storage_offset)
    if x.dtype.kind not in "fc":
        return Tensor._wrap(_strided(_geometry(x._data)[2], size, stride, offset))
    return AsStrided.apply(x, size, stride, offset)


def as_strided_(x, size, stride, storage_offset=None):
    """``as_strided`` in place: x takes the new geometry over the same storage."""
    size, stride, offset = _as_strided_args("as_strided_", x, size, stride, storage_offset)
    if x.requires_grad and autograd.is_grad_enabled():
        if x._node is None:
            raise RuntimeError("as_strided_: a leaf Variable that requires grad is being used in an in-place operation")
        old = Tensor._wrap(x._data)
        old.requires_grad, old._node = True, x._node
        out = AsStrided.apply(old, size, stride, offset)
        x._data, x._node = out._data, out._node
    else:
        x._data = _strided(_geometry(x._data)[2], size, stride, offset)
    bump_version(x._data)
    return x


def as_strided_scatter(input, src, size, stride, storage_offset=None):
    """A copy of ``input`` (made contiguous) whose ``as_strided(size, stride, storage_offset)``
    view is replaced by ``src``."""
    x, src = as_tensor(input, "as_strided_scatter"), as_tensor(src, "as_strided_scatter")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    offset = 0 if storage_offset is None else int(storage_offset)
    n = x.numel()
    need = 0 if 0 in size else offset + 1 + builtins.sum((k - 1) * s for k, s in zip(size, stride))
    if len(size) != len(stride) or need > n:
        raise RuntimeError(f"as_strided_scatter: sizes {list(size)}, strides {list(stride)} and storage offset "
                           f"{offset} do not fit a tensor of {n} elements")
    _check_slice("as_strided_scatter", src, size)
    positions = _strided(np.arange(n), size, stride, offset)
    index = np.unravel_index(positions, tuple(x.shape))
    if type(x._data) is not np.ndarray:
        xp = xp_of(x._data)
        index = tuple(xp.asarray(i) for i in index)
    return _write("as_strided_scatter", x, src, index)


# ----------------------------------------------------------------------------- splits


def _sections(x, cuts, axis):
    """Views of ``x`` along ``axis`` between consecutive cut points."""
    return tuple(narrow(x, axis, a, b - a) for a, b in zip(cuts[:-1], cuts[1:]))


def tensor_split(x, indices_or_sections, dim=0):
    """Split into ``sections`` near-equal views (the first ``n % sections`` one longer) or
    at the given ``indices`` (clamped to the dim, as NumPy's array_split)."""
    x = as_tensor(x, "tensor_split")
    if x.ndim == 0:
        raise RuntimeError("tensor_split expected at least a 1-dimensional tensor, but got a tensor with 0 dims")
    axis = normalize_dim("tensor_split", x.ndim, dim)
    n = x.shape[axis]
    spec = indices_or_sections
    if isinstance(spec, Tensor):
        if spec.dtype.kind not in "iu" or spec.ndim > 1:
            raise RuntimeError("tensor_split expected tensor_indices_or_sections to be a zero-dimensional or "
                               f"one-dimensional tensor of integers, but got a {spec.ndim}-d {spec.dtype} tensor")
        spec = int(spec.item()) if spec.ndim == 0 else [int(i) for i in spec.tolist()]
    if isinstance(spec, (int, np.integer)):
        k = int(spec)
        if k <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {k}")
        q, r = divmod(n, k)
        cuts = [0]
        for i in range(k):
            cuts.append(cuts[-1] + q + (1 if i < r else 0))
    else:
        # Cut points read as Python slices would (negative from the end; a cut before the
        # previous one gives an empty piece), as NumPy's array_split.
        bounds = [None] + [int(i) for i in spec] + [None]
        return tuple(getitem(x, _along(axis, slice(a, b))) for a, b in zip(bounds[:-1], bounds[1:]))
    return _sections(x, cuts, axis)


def split_with_sizes(x, split_sizes, dim=0):
    """Views of exactly ``split_sizes`` along ``dim`` (they must sum to the dim's size)."""
    x = as_tensor(x, "split_with_sizes")
    axis = normalize_dim("split_with_sizes", x.ndim, dim)
    sizes = [int(s) for s in split_sizes]
    if builtins.sum(sizes) != x.shape[axis] or any(s < 0 for s in sizes):
        raise ShapeError(f"split_with_sizes expects split_sizes to sum exactly to {x.shape[axis]} (input tensor's "
                         f"size at dimension {axis}), but got split_sizes={sizes}")
    return tuple(split(x, sizes, axis)) if len(sizes) > 1 else (narrow(x, axis, 0, x.shape[axis]),)


def _numpy_split(name, x, spec, axis, min_dims):
    x = as_tensor(x, name)
    if x.ndim < min_dims:
        raise RuntimeError(f"torch.{name} requires a tensor with at least {min_dims} dimension, but got a tensor "
                           f"with {x.ndim} dimensions!")
    if isinstance(spec, (int, np.integer)):
        n = x.shape[axis]
        if int(spec) == 0 or n % int(spec):
            raise RuntimeError(f"torch.{name} attempted to split along dimension {axis}, but the size of the "
                               f"dimension {n} is not divisible by the split_size {int(spec)}!")
    return tensor_split(x, spec, axis)


def hsplit(x, indices_or_sections):
    """``tensor_split`` along dim 1 (dim 0 for a 1-D tensor); sections must divide it."""
    x = as_tensor(x, "hsplit")
    if x.ndim == 0:
        raise RuntimeError("torch.hsplit requires a tensor with at least 1 dimension, but got a tensor with 0 dimensions!")
    return _numpy_split("hsplit", x, indices_or_sections, 0 if x.ndim == 1 else 1, 1)


def vsplit(x, indices_or_sections):
    return _numpy_split("vsplit", x, indices_or_sections, 0, 2)


def dsplit(x, indices_or_sections):
    return _numpy_split("dsplit", x, indices_or_sections, 2, 3)


def ravel(x):
    """``x`` flattened to 1-D (a view when the memory allows, as ``reshape``)."""
    return reshape(as_tensor(x, "ravel"), -1)


def narrow_copy(x, dim, start, length):
    """``narrow`` as a new tensor (no memory shared)."""
    x = as_tensor(x, "narrow_copy")
    axis = normalize_dim("narrow_copy", x.ndim, dim)
    n = x.shape[axis]
    if int(start) < 0 or int(start) + int(length) > n or int(length) < 0:
        raise ShapeError(f"start ({int(start)}) + length ({int(length)}) exceeds dimension size ({n}).")
    return clone(narrow(x, axis, start, length))


def index_put_(x, indices, values, accumulate: bool = False):
    return inplace_of("index_put_", index_put)(x, indices, values, accumulate)


INDEXING_OPS = (
    (index_copy, "index_copy", "index_copy"),
    (inplace_of("index_copy_", index_copy), "index_copy_", False),
    (index_fill, "index_fill", "index_fill"),
    (inplace_of("index_fill_", index_fill), "index_fill_", False),
    (index_put, "index_put", "index_put"),
    (index_put_, "index_put_", "index_put_"),
    (index_reduce, "index_reduce", "index_reduce"),
    (inplace_of("index_reduce_", index_reduce), "index_reduce_", False),
    (masked_scatter, "masked_scatter", "masked_scatter"),
    (inplace_of("masked_scatter_", masked_scatter), "masked_scatter_", False),
    (put, "put", "put"),
    (inplace_of("put_", put), "put_", False),
    (inplace_of("scatter_reduce_", scatter_reduce), "scatter_reduce_", False),
    (select, "select", "select"),
    (select_scatter, "select_scatter", "select_scatter"),
    (slice_scatter, "slice_scatter", "slice_scatter"),
    (diagonal_scatter, "diagonal_scatter", "diagonal_scatter"),
    (as_strided, "as_strided", "as_strided"),
    (as_strided_, "as_strided_", "as_strided_"),
    (as_strided_scatter, "as_strided_scatter", "as_strided_scatter"),
    (tensor_split, "tensor_split", "tensor_split"),
    (split_with_sizes, "split_with_sizes", "split_with_sizes"),
    (hsplit, "hsplit", "hsplit"),
    (vsplit, "vsplit", "vsplit"),
    (dsplit, "dsplit", "dsplit"),
    (ravel, "ravel", "ravel"),
    (narrow_copy, "narrow_copy", "narrow_copy"),
)
