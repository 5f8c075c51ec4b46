"""Ops that rearrange elements without arithmetic: flip, roll, repeat, repeat_interleave,
tril/triu, diag/diagonal, unfold, unflatten, meshgrid, movedim, narrow, ``t``.

Each backward sends every gradient element to where its value came from: flip and roll
invert themselves, repeat sums over the copies, tril/triu mask the gradient as the value,
diagonal writes the gradient onto the diagonal of a zero tensor. Ops that are a gather
(repeat_interleave, unfold) are built from ``getitem``, whose backward scatter-adds.
"""
from __future__ import annotations

import math

import builtins
import itertools

import numpy as np

from tinymm import backend
from tinymm.autograd import Function
from tinymm.ops._util import ShapeError, ValueRangeError, normalize_dim, normalize_dims, xp_of
from tinymm.ops.convert import as_tensor, clone
from tinymm.ops.elementwise import compare, sub
from tinymm.ops.index import getitem
from tinymm.ops.shape import cat, expand, pad, permute, refuse_zero_d, reshape, stack, transpose, view
from tinymm.ops.views import diagonal_view, mark_view, unfold_view
from tinymm.tensor import Tensor


def _ints(args):
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    for a in args:
        if isinstance(a, (float, np.floating)):
            raise TypeError(f"expected integers, got the float {a}")
    return tuple(int(a) for a in args)


def _apply_or_wrap(fn_cls, x, *args):
    if x.dtype.kind in "fc":  # cplx: complex tensors are recorded too
        return fn_cls.apply(x, *args)
    return Tensor._wrap(fn_cls.forward(_NoCtx(), x._data, *args))


class _NoCtx:
    """A context for an integer tensor's forward, where nothing is recorded."""

    def save_for_backward(self, *a):
        pass


class Flip(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return xp_of(x).flip(x, axis=axes).copy()

    @staticmethod
    def backward(ctx, g):
        return xp_of(g).flip(g, axis=ctx.axes)

    @staticmethod
    def backward_graph(ctx, g):
        return Flip.apply(g, ctx.axes)


def flip(x, *args, dims=None):
    """Reverse the order of elements along ``dims`` (positional, as a list, or ``dims=``)."""
    x = as_tensor(x, "flip")
    if dims is not None and args:
        raise TypeError("flip() got multiple values for argument 'dims'")
    dims = args if dims is None else (dims,)
    axes = normalize_dims("flip", x.ndim, _ints(dims))
    if not axes:
        return x * 1 if x.dtype.kind in "fc" else Tensor._wrap(x._data.copy())
    return _apply_or_wrap(Flip, x, axes)


def fliplr(x):
    return flip(x, 1)


def flipud(x):
    return flip(x, 0)


class Roll(Function):
    @staticmethod
    def forward(ctx, x, shifts, axes):
        ctx.meta = (shifts, axes, x.shape)
        if axes is None:
            return xp_of(x).roll(x.reshape(-1), shifts).reshape(x.shape)
        return xp_of(x).roll(x, shifts, axis=axes)

    @staticmethod
    def backward(ctx, g):
        shifts, axes, shape = ctx.meta
        neg = tuple(-s for s in shifts) if isinstance(shifts, tuple) else -shifts
        if axes is None:
            return xp_of(g).roll(g.reshape(-1), neg).reshape(shape)
        return xp_of(g).roll(g, neg, axis=axes)

    @staticmethod
    def backward_graph(ctx, g):
        shifts, axes, _ = ctx.meta
        return Roll.apply(g, tuple(-s for s in shifts) if isinstance(shifts, tuple) else -shifts, axes)


def roll(x, shifts, dims=None):
    """Shift elements cyclically along ``dims`` (the flattened tensor when None)."""
    x = as_tensor(x, "roll")
    if dims is None:
        if not isinstance(shifts, (int, np.integer)):
            if len(shifts) != 1:
                raise ShapeError(f"roll: {len(shifts)} shifts without dims")
            shifts = shifts[0]
        return _apply_or_wrap(Roll, x, int(shifts), None)
    sh = (shifts,) if isinstance(shifts, (int, np.integer)) else tuple(shifts)
    dm = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    if len(sh) != len(dm):
        raise ShapeError(f"roll: shifts {sh} and dims {dm} have different lengths")
    axes = tuple(normalize_dim("roll", x.ndim, d) for d in dm)
    if x.ndim == 0:
        raise IndexError(f"roll: dims {dm} given, but a 0-d tensor has no dimensions to roll along")
    return _apply_or_wrap(Roll, x, tuple(int(s) for s in sh), axes)


class Repeat(Function):
    """Tile ``x`` ``reps`` times per dim; the gradient sums the copies."""

    @staticmethod
    def forward(ctx, x, reps):
        lead = len(reps) - x.ndim
        xs = x.reshape((1,) * lead + x.shape)
        ctx.meta = (x.shape, xs.shape, reps)
        return xp_of(x).tile(xs, reps)

    @staticmethod
    def backward(ctx, g):
        shape, xs_shape, reps = ctx.meta
        split = []
        for r, s in zip(reps, xs_shape):
            split += [r, s]
        g = g.reshape(split)
        return g.sum(axis=tuple(range(0, len(split), 2))).reshape(shape)

    @staticmethod
    def backward_graph(ctx, g):
        shape, xs_shape, reps = ctx.meta
        split = [n for pair in zip(reps, xs_shape) for n in pair]
        return g.reshape(split).sum(dim=tuple(range(0, len(split), 2))).reshape(shape)


def repeat(x, *sizes):
    """PyTorch's ``Tensor.repeat``: tile the tensor ``sizes`` times along each dim."""
    x = as_tensor(x, "repeat")
    reps = _ints(sizes)
    if len(reps) < x.ndim:
        raise ShapeError(f"repeat: {len(reps)} repeat counts for a tensor of {x.ndim} dims ({tuple(x.shape)}); give at least {x.ndim}")
    if builtins.any(r < 0 for r in reps):
        raise ShapeError(f"repeat: negative repeat count in {reps}")
    return _apply_or_wrap(Repeat, x, reps)


def tile(x, *dims):
    """``torch.tile``: like repeat, but fewer counts than dims are padded with ones in front."""
    x = as_tensor(x, "tile")
    reps = _ints(dims)
    if len(reps) < x.ndim:
        reps = (1,) * (x.ndim - len(reps)) + reps
    return repeat(x, reps)


def repeat_interleave(x, repeats, dim=None, *, output_size=None):
    """Repeat each element (or slice along ``dim``) ``repeats`` times (an int or one count
    per element); ``dim=None`` works on the flattened tensor."""
    x = as_tensor(x, "repeat_interleave")
    if dim is None:
        x = reshape(x, -1)
        axis = 0
    else:
        axis = normalize_dim("repeat_interleave", x.ndim, dim)
    if x.ndim == 0:
        x = reshape(x, 1)
    n = x.shape[axis]
    r = repeats._data if isinstance(repeats, Tensor) else np.asarray(repeats)
    if r.dtype.kind not in "iu":
        raise TypeError(f"repeat_interleave: repeats must be integers, got {r.dtype}")
    if r.ndim == 0 or r.size == 1:
        r = np.full(n, int(r.reshape(-1)[0]) if r.size else 0)
    r = np.asarray(r.get() if hasattr(r, "get") else r)
    if r.shape != (n,):
        raise ShapeError(f"repeat_interleave: {r.shape[0]} repeat counts for a dim of size {n}")
    if (r < 0).any():
        raise ShapeError("repeat_interleave: repeats must be non-negative")
    idx = np.repeat(np.arange(n), r)
    return getitem(x, (slice(None),) * axis + (idx,))


class _Triangle(Function):
    lower = True

    @classmethod
    def forward(cls, ctx, x, k):
        xp = xp_of(x)
        m, n = x.shape[-2:]
        keep = (xp.tri(m, n, k, dtype=bool) if cls.lower else ~xp.tri(m, n, k - 1, dtype=bool))
        ctx.save_for_backward(keep)
        ctx.k = k
        return xp.where(keep, x, x.dtype.type(0))

    @classmethod
    def backward(cls, ctx, g):
        (keep,) = ctx.saved_arrays
        return xp_of(g).where(keep, g, g.dtype.type(0))

    @classmethod
    def backward_graph(cls, ctx, g):
        return cls.apply(g, ctx.k)


class Tril(_Triangle):
    lower = True


class Triu(_Triangle):
    lower = False


def tril(x, diagonal: int = 0):
    """The lower triangle (on and below the ``diagonal``-th diagonal) of the last two dims."""
    x = as_tensor(x, "tril")
    if x.ndim < 2:
        raise ShapeError(f"tril: input needs at least 2 dims, got shape {tuple(x.shape)}")
    return _apply_or_wrap(Tril, x, int(diagonal))


def triu(x, diagonal: int = 0):
    x = as_tensor(x, "triu")
    if x.ndim < 2:
        raise ShapeError(f"triu: input needs at least 2 dims, got shape {tuple(x.shape)}")
    return _apply_or_wrap(Triu, x, int(diagonal))


def _diag_index(shape, offset, d1, d2):
    """Row and column indices of the ``offset`` diagonal of dims (d1, d2)."""
    m, n = shape[d1], shape[d2]
    length = builtins.max(0, builtins.min(m + builtins.min(offset, 0), n - builtins.max(offset, 0)))
    i = np.arange(length)
    return i + builtins.max(-offset, 0), i + builtins.max(offset, 0)


class Diagonal(Function):
    """The ``offset`` diagonal of dims (d1, d2), appended as the last dim: a view, as in PyTorch
    (``a.diagonal().add_(eps)`` writes into a)."""

    @staticmethod
    def forward(ctx, x, offset, d1, d2):
        ctx.meta = (x.shape, x.dtype, offset, d1, d2)
        return diagonal_view(x, offset, d1, d2)

    @staticmethod
    def backward(ctx, g):
        return _diagonal_placed(g, *ctx.meta)

    @staticmethod
    def backward_graph(ctx, g):
        return DiagonalPlaced.apply(g, *ctx.meta)


def _diagonal_placed(g, shape, dtype, offset, d1, d2):
    """A zero array of ``shape`` with g on its ``offset`` diagonal of dims (d1, d2)."""
    xp = xp_of(g)
    out = xp.zeros(shape, dtype)
    view = xp.moveaxis(out, (d1, d2), (-2, -1))
    rows, cols = _diag_index(shape, offset, d1, d2)
    view[..., rows, cols] = g
    return out


class LinearViewBackward(Function):
    """A linear view op's backward as an op of its own, so create_graph records it: both maps
    are linear, and each one's gradient is the other. A subclass names ``place(g, shape, dtype,
    *args)`` (the view op's backward on arrays), ``view(arr, *args)`` (the view on arrays) and
    ``view_op`` (the view's Function)."""

    place = view = view_op = None

    @classmethod
    def forward(cls, ctx, g, shape, dtype, *args):
        ctx.meta = args
        return cls.place(g, shape, dtype, *args)

    @classmethod
    def backward(cls, ctx, gg):
        return cls.view(gg, *ctx.meta).copy()

    @classmethod
    def backward_graph(cls, ctx, gg):
        return cls.view_op.apply(gg, *ctx.meta)


class DiagonalPlaced(LinearViewBackward):
    place, view, view_op = staticmethod(_diagonal_placed), staticmethod(diagonal_view), Diagonal


def diagonal(x, offset: int = 0, dim1: int = 0, dim2: int = 1):
    x = as_tensor(x, "diagonal")
    if x.ndim < 2:
        raise ShapeError(f"diagonal: input needs at least 2 dims, got shape {tuple(x.shape)}")
    d1, d2 = normalize_dim("diagonal", x.ndim, dim1), normalize_dim("diagonal", x.ndim, dim2)
    if d1 == d2:
        raise ShapeError(f"diagonal: dim1 and dim2 are both {d1}")
    return mark_view(_apply_or_wrap(Diagonal, x, int(offset), d1, d2), x, "diagonal", (int(offset), d1, d2))


class DiagEmbed(Function):
    """A 1-D tensor placed on the ``offset`` diagonal of a square zero matrix."""

    @staticmethod
    def forward(ctx, x, offset):
        ctx.offset = offset
        return xp_of(x).diag(x, offset)

    @staticmethod
    def backward(ctx, g):
        return xp_of(g).diagonal(g, ctx.offset).copy()

    @staticmethod
    def backward_graph(ctx, g):
        return g.diagonal(ctx.offset)


def diag(x, diagonal: int = 0):
    """1-D input: the square matrix with it on the ``diagonal``; 2-D input: that diagonal."""
    x = as_tensor(x, "diag")
    if x.ndim == 1:
        return _apply_or_wrap(DiagEmbed, x, int(diagonal))
    if x.ndim == 2:  # a copy, as PyTorch's diag (diagonal() is the view)
        return clone(globals()["diagonal"](x, int(diagonal)))
    raise ShapeError(f"diag: input must be 1-D or 2-D, got shape {tuple(x.shape)}")


class Unfold(Function):
    """Windows along one axis as a view (``views.unfold_view``). Backward adds each window's
    gradient back onto the positions it covers (windows overlap when step < size)."""

    @staticmethod
    def forward(ctx, x, axis, size, step):
        ctx.meta = (x.shape, x.dtype, axis, size, step)
        return unfold_view(x, axis, size, step)

    @staticmethod
    def backward(ctx, g):
        return _windows_added(g, *ctx.meta)

    @staticmethod
    def backward_graph(ctx, g):
        return WindowsAdded.apply(g, *ctx.meta)


def _windows_added(g, shape, dtype, axis, size, step):
    """Zeros of ``shape`` with each window's values (g, as Unfold gave them) added back onto
    the positions it covers."""
    out = xp_of(g).zeros(shape, dtype)
    count = g.shape[axis]
    moved = xp_of(g).moveaxis(out, axis, -1)  # (..., n): the unfolded axis last
    windows = xp_of(g).moveaxis(g, axis, -2)  # (..., count, size)
    for w in range(size):  # offset w of every window lands on positions w, w + step, ...
        moved[..., w : w + (count - 1) * step + 1 : step] += windows[..., w]
    return out


class WindowsAdded(LinearViewBackward):
    place, view, view_op = staticmethod(_windows_added), staticmethod(unfold_view), Unfold


def unfold(x, dimension: int, size: int, step: int):
    """All windows of ``size`` elements along ``dimension``, ``step`` apart, as a new last dim
    (PyTorch's ``Tensor.unfold``): a view of x."""
    x = as_tensor(x, "unfold")
    if x.ndim == 0:
        x = reshape(x, 1)
    axis = normalize_dim("unfold", x.ndim, dimension)
    n = x.shape[axis]
    if size > n or size < 0 or step <= 0:
        raise ShapeError(f"unfold: size {size} (step {step}) does not fit dim {axis} of size {n} (shape {tuple(x.shape)})")
    out = _apply_or_wrap(Unfold, x, axis, int(size), int(step))
    if step >= size:  # overlapping windows are no view to write through
        mark_view(out, x, "unfold", (axis, int(size), int(step)))
    return out


def unflatten(x, dim: int, sizes):
    """Split dim ``dim`` into ``sizes`` (one entry may be -1)."""
    x = as_tensor(x, "unflatten")
    axis = normalize_dim("unflatten", x.ndim, dim)  # (a bad dim is an IndexError first, as PyTorch)
    refuse_zero_d("unflatten", x)
    sizes = _ints((sizes,))
    known = math.prod(s for s in sizes if s != -1)
    n = x.shape[axis]
    if (known != n and -1 not in sizes) or (-1 in sizes and (known == 0 or n % known)) or sizes.count(-1) > 1:
        raise ShapeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {dim} "
                         f"({n}) in the input tensor")
    # resolve the -1 here: reshape cannot infer it when another dim is 0 (probe16: unflatten of
    # a (0, 0) tensor into (-1, 1) failed; PyTorch infers from the dim being split)
    sizes = tuple(n // known if s == -1 else s for s in sizes)
    return reshape(x, x.shape[:axis] + sizes + x.shape[axis + 1 :])


def meshgrid(*tensors, indexing=None):
    """Coordinate grids from 1-D tensors, ``indexing="ij"`` (matrix) or ``"xy"`` (Cartesian)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    ts = [as_tensor(t, "meshgrid") for t in tensors]
    indexing = "ij" if indexing is None else indexing
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    for t in ts:
        if t.ndim > 1:
            raise ShapeError(f"meshgrid: expects 0-D or 1-D tensors, got shape {tuple(t.shape)}")
    ts = [reshape(t, -1) for t in ts]
    sizes = [t.shape[0] for t in ts]
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for i, t in enumerate(ts):
        pos = i
        if swap and i < 2:
            pos = 1 - i
        shape = [1] * len(ts)
        shape[pos] = t.shape[0]
        out.append(expand(reshape(t, shape), sizes))
    return tuple(out)


def movedim(x, source, destination):
    x = as_tensor(x, "movedim")
    src = (source,) if isinstance(source, (int, np.integer)) else tuple(source)
    dst = (destination,) if isinstance(destination, (int, np.integer)) else tuple(destination)
    if len(src) != len(dst):
        raise ShapeError(f"movedim: source {src} and destination {dst} differ in length")
    src = [normalize_dim("movedim", x.ndim, d) for d in src]
    dst = [normalize_dim("movedim", x.ndim, d) for d in dst]
    for name, dims, given in (("source", src, source), ("destination", dst, destination)):
        if len(set(dims)) != len(dims):
            raise ValueRangeError(f"movedim: repeated dim in `{name}` ({list(given) if not isinstance(given, int) else given})")
    if x.ndim == 0:  # dims 0/-1 of a 0-d tensor: nothing moves
        return permute(x, ())
    order = [d for d in range(x.ndim) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(x, order)


moveaxis = movedim


def swapaxes(x, axis0, axis1):
    return transpose(x, axis0, axis1)


def narrow(x, dim: int, start: int, length: int):
    x = as_tensor(x, "narrow")
    refuse_zero_d("narrow", x)
    axis = normalize_dim("narrow", x.ndim, dim)
    n = x.shape[axis]
    start, length = int(start), int(length)
    if length < 0:
        raise ShapeError(f"narrow(): length must be non-negative (got length {length})")
    if not -n <= start <= n:
        raise IndexError(f"narrow: start {start} is out of range for dim {axis} of size {n}")
    start += n if start < 0 else 0
    if start + length > n:
        raise ShapeError(f"narrow: start {start} + length {length} exceeds dim {axis} of size {n}")
    return getitem(x, (slice(None),) * axis + (slice(start, start + length),))


def t(x):
    """Transpose a tensor of at most 2 dims (0-D and 1-D come back as they are)."""
    x = as_tensor(x, "t")
    if x.ndim > 2:
        raise ShapeError(f"t: expects a tensor with <= 2 dimensions, but got shape {tuple(x.shape)}; use transpose or mT")
    if x.ndim < 2:
        return reshape(x, x.shape)
    return transpose(x, 0, 1)


def view_as(x, other):
    return view(x, other.shape)  # probe5: as view, refused when it would need a copy


def reshape_as(x, other):
    return reshape(x, other.shape)


def masked_select(x, mask):
    """The elements of ``x`` where ``mask`` is True (both broadcast), as a 1-D tensor."""
    x = as_tensor(x, "masked_select")
    mask = as_tensor(mask, "masked_select")
    if mask.dtype.kind != "b":
        raise TypeError(f"masked_select: mask must be bool, got {mask.dtype}")
    try:
        shape = np.broadcast_shapes(x.shape, mask.shape)
    except ValueError:
        raise ShapeError(f"masked_select: mask of shape {tuple(mask.shape)} does not broadcast with the tensor's {tuple(x.shape)}") from None
    if x.shape != shape:
        x = expand(x, shape)
    m = xp_of(mask._data).broadcast_to(mask._data, shape)
    if x.ndim == 0:
        return getitem(x.reshape(1), m.reshape(1))
    return getitem(x, m)


# ----------------------------------------------------------------------------- rotations, diagonals, index sets


def rot90(x, k: int = 1, dims=(0, 1)):
    """Rotate by 90° k times in the plane of ``dims``, from the first axis towards the second."""
    x = as_tensor(x, "rot90")
    dims = tuple(dims)
    if len(dims) != 2:
        raise ShapeError(f"rot90: expected total rotation dims == 2, but got dims = {len(dims)}")
    if x.ndim < 2:
        raise ShapeError(f"rot90: expected total dims >= 2, but got total dims = {x.ndim}")
    d0, d1 = normalize_dim("rot90", x.ndim, dims[0]), normalize_dim("rot90", x.ndim, dims[1])
    if d0 == d1:
        raise ShapeError(f"rot90: expected rotation dims to be different, but got dim0 = {d0} and dim1 = {d1}")
    k = int(k) % 4
    if k == 1:
        return transpose(flip(x, d1), d0, d1)
    if k == 2:
        return flip(x, d0, d1)
    if k == 3:
        return transpose(flip(x, d0), d0, d1)
    return reshape(x, x.shape)


class DiagEmbedLast(Function):
    """(…, n) -> (…, m, m), m = n + |offset|: x[…, i] at [i, i + offset] (offset ≥ 0) or
    [i − offset, i]; zeros elsewhere. The gradient reads that diagonal back."""

    @staticmethod
    def forward(ctx, x, offset):
        xp = xp_of(x)
        n = x.shape[-1]
        m = n + builtins.abs(offset)
        i = xp.arange(n)
        rows, cols = (i, i + offset) if offset >= 0 else (i - offset, i)
        ctx.where = (rows, cols)
        out = xp.zeros(x.shape[:-1] + (m, m), x.dtype)
        out[..., rows, cols] = x
        return out

    @staticmethod
    def backward(ctx, g):
        rows, cols = ctx.where
        return g[..., rows, cols]

    @staticmethod
    def backward_graph(ctx, g):
        rows, cols = ctx.where
        return g[..., Tensor._wrap(rows), Tensor._wrap(cols)]


def diag_embed(x, offset: int = 0, dim1: int = -2, dim2: int = -1):
    """Each last-dim vector of ``x`` placed on a diagonal (``offset``) of the matrices spanned
    by output dims ``dim1`` and ``dim2``; the output has one dim more than ``x``."""
    x = as_tensor(x, "diag_embed")
    nd = x.ndim + 1
    d1, d2 = normalize_dim("diag_embed", nd, dim1), normalize_dim("diag_embed", nd, dim2)
    if d1 == d2:
        raise ShapeError(f"diag_embed: diagonal dimensions cannot be identical {dim1}, {dim2}")
    if x.ndim == 0:
        x = reshape(x, 1)
    out = _apply_or_wrap(DiagEmbedLast, x, int(offset))
    if d1 > d2:  # PyTorch puts the row index on dim1 wherever dim1 is
        d1, d2 = d2, d1
        out = transpose(out, -2, -1)
    return movedim(out, (nd - 2, nd - 1), (d1, d2))


def block_diag(*tensors):
    """A block-diagonal matrix of the given 0-, 1- or 2-D tensors (a 1-D one is a row)."""
    ts = [as_tensor(t, "block_diag") for t in tensors]
    for i, t in enumerate(ts):
        if t.ndim > 2:
            raise ShapeError(f"block_diag: Input tensors must have 2 or fewer dimensions. Input {i} has {t.ndim} dimensions")
    ts = [reshape(t, 1, -1) if t.ndim == 1 else reshape(t, 1, 1) if t.ndim == 0 else t for t in ts]
    if not ts:
        return Tensor._wrap(np.zeros((1, 0), np.float32))
    width = builtins.sum(t.shape[1] for t in ts)
    rows, left = [], 0
    for t in ts:
        rows.append(pad(t, (left, width - left - t.shape[1])))
        left += t.shape[1]
    return cat(rows, 0)


def _index_pairs(name, which, row, col, offset, dtype, device):
    if row < 0 or col < 0:
        raise ValueRangeError(f"{name}: row and col must be non-negative, got row {row}, col {col}")
    xp = backend.array_module(device or "cpu")
    r, c = (np.tril_indices if which == "tril" else np.triu_indices)(int(row), int(offset), int(col))
    return Tensor._wrap(xp.asarray(np.stack([r, c]).astype(np.dtype(dtype))).reshape(2, -1))


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=np.int64, device=None, layout=None):
    """The (2, N) coordinates of the lower triangle of a row × col matrix, row by row."""
    return _index_pairs("tril_indices", "tril", row, col, offset, dtype, device)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=np.int64, device=None, layout=None):
    """The (2, N) coordinates of the upper triangle of a row × col matrix, row by row."""
    return _index_pairs("triu_indices", "triu", row, col, offset, dtype, device)


def cartesian_prod(*tensors):
    """Every combination of one element from each 1-D tensor, as rows (N, k) (itertools.product
    order); one tensor comes back as it is."""
    ts = [as_tensor(t, "cartesian_prod") for t in tensors]
    for t in ts:
        if t.ndim != 1:
            raise ShapeError(f"cartesian_prod: expect a 1D vector, but got shape {tuple(t.shape)}")
    if len(ts) == 1:
        return ts[0]
    grids = meshgrid(*ts, indexing="ij")
    return stack([reshape(g, -1) for g in grids], 1)


def combinations(x, r: int = 2, with_replacement: bool = False):
    """The length-r combinations of a 1-D tensor's elements, as rows (itertools order)."""
    x = as_tensor(x, "combinations")
    if x.ndim != 1:
        raise ShapeError(f"combinations: Expect a 1D vector, but got shape {list(x.shape)}")
    if r < 0:
        raise ValueError(f"combinations: Expect a non-negative number, but got {r}")
    if r == 0:
        return Tensor._wrap(xp_of(x._data).zeros((0,), x.dtype))
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    idx = np.array(list(pick(range(x.shape[0]), r)), dtype=np.int64).reshape(-1, r)
    if idx.shape[0] == 0:  # r > len(x): no combination, but each would still have r elements
        return Tensor._wrap(xp_of(x._data).zeros((0, r), x.dtype))
    xp = xp_of(x._data)
    return stack([getitem(x, xp.asarray(idx[:, j])) for j in range(r)], 1)


def diff(x, n: int = 1, dim: int = -1, prepend=None, append=None):
    """The n-th forward difference along ``dim`` (out[i] = x[i+1] − x[i], n times), after
    putting ``prepend``/``append`` before/after; bool input gives x[i+1] != x[i]."""
    x = as_tensor(x, "diff")
    if x.ndim == 0:
        raise ShapeError("diff expects input to be at least one-dimensional")
    axis = normalize_dim("diff", x.ndim, dim)
    if n < 0:
        raise ValueRangeError(f"diff: order must be non-negative but got {n}")
    parts = [as_tensor(p, "diff") for p in (prepend,) if p is not None] + [x]
    parts += [as_tensor(a, "diff") for a in (append,) if a is not None]
    if len(parts) > 1:
        parts = [p if p.ndim == x.ndim else expand(reshape(p, *[1] * x.ndim),
                                                  *[1 if d == axis else s for d, s in enumerate(x.shape)])
                 for p in parts]
        x = cat(parts, axis)
    for _ in range(int(n)):
        m = x.shape[axis]
        if m == 0:
            break
        hi = narrow(x, axis, 1, m - 1)
        lo = narrow(x, axis, 0, m - 1)
        x = compare(hi, lo, "ne") if x.dtype.kind == "b" else sub(hi, lo)
    return x
