"""Shape ops: reshape, permute, expand, concatenate, stack, split, pad.

None of these does arithmetic; each backward routes the gradient back to where the element
came from (the inverse permutation, a sum over expanded axes, the matching slice).
"""
from __future__ import annotations

import builtins

import numpy as np

from tinymm.autograd import Function
from tinymm.autograd_graph import sum_to
from tinymm.ops._util import (
    ShapeError,
    ValueRangeError,
    normalize_dim,
    normalize_dims,
    unbroadcast,
    xp_of,
)
from tinymm.ops.convert import as_tensor, cast
from tinymm.ops.index import getitem
from tinymm.dtype_objects import as_dtype, numpy_dtype
from tinymm.dtype_objects import dtype as dtype_object
from tinymm.ops.views import mark_view
from tinymm.tensor import Tensor


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.in_shape)

    backward_graph = backward


def _view(fn, x, arg):
    """``fn`` (Reshape or Permute) of x, recorded as a view of x when it shares x's memory
    (``views.mark_view``): an in-place write into it with gradient then reaches x's graph."""
    return mark_view(fn.apply(x, arg), x, "reshape" if fn is Reshape else "permute", (arg,))


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for s in shape:
        if not isinstance(s, (int, np.integer)) and not (hasattr(s, "__index__") and not isinstance(s, float)):
            raise TypeError(f"shape must be a tuple of ints, but found element {s!r} of type {type(s).__name__}")
    return tuple(int(s) for s in shape)


def reshape(x, *shape):
    x = as_tensor(x, "reshape")
    shape = _shape_arg(shape)
    known = int(np.prod([s for s in shape if s != -1])) if shape else 1
    if shape.count(-1) > 1:
        raise ShapeError(f"reshape: only one dimension can be inferred (-1), got {shape} for a tensor of shape {tuple(x.shape)}")
    if builtins.any(s < -1 for s in shape):
        raise ShapeError(f"reshape: invalid shape dimension in {shape} for a tensor of shape {tuple(x.shape)}")
    if (
        -1 not in shape and known != x._data.size or -1 in shape and (known == 0 or x._data.size % known)
    ):
        raise ShapeError(f"reshape: cannot view a tensor of shape {tuple(x.shape)} ({x._data.size} elements) as {shape}")
    return _view(Reshape, x, shape)


def view(x, *shape, dtype=None):
    """``Tensor.view``: a shape (as ``reshape``), or a dtype: the same bytes read as that dtype
    (PyTorch's ``view(dtype)``: the last dim scales by the ratio of the element sizes; never
    differentiable)."""
    if dtype is None and len(shape) == 1 and _is_dtype(shape[0]):
        dtype, shape = shape[0], ()
    if dtype is None:
        x = as_tensor(x, "view")
        out = reshape(x, *shape)
        if out._data.size and not xp_of(x._data).may_share_memory(out._data, x._data):
            # reshape had to copy: PyTorch's view refuses, since writes through it would be lost
            raise ShapeError(f"view size is not compatible with input tensor's size and stride (shape {tuple(x.shape)} "
                             f"as {tuple(out.shape)}: at least one dimension spans across two contiguous subspaces). "
                             "Use .reshape(...) instead.")
        return out
    if shape:
        raise TypeError("view: give either a shape or a dtype, not both")
    return _view_dtype(as_tensor(x, "view"), dtype)


def _is_dtype(spec):
    return isinstance(spec, (dtype_object, np.dtype)) or (isinstance(spec, type) and issubclass(spec, np.generic))


def _view_dtype(x, spec):
    arr, new = x._data, numpy_dtype(spec)
    old_size, new_size = arr.dtype.itemsize, new.itemsize
    name = f"view {x.dtype} as {as_dtype(new)}".replace("tinymm.", "")
    if old_size != new_size:
        if arr.ndim == 0:
            raise ShapeError(f"{name}: self.dim() cannot be 0 (different element sizes)")
        if arr.shape[-1] != 1 and arr.strides[-1] != old_size:
            raise ShapeError(f"{name}: self.stride(-1) must be 1 (different element sizes), "
                             f"but got {arr.strides[-1] // old_size}")
        if new_size > old_size and (arr.shape[-1] * old_size) % new_size:
            raise ShapeError(f"{name}: self.size(-1) must be divisible by {new_size // old_size} "
                             f"(different element sizes), but got {arr.shape[-1]}")
    return Tensor._wrap(arr.view(new))


def flatten(x, start_dim=0, end_dim=-1):
    x = as_tensor(x, "flatten")
    s = normalize_dim("flatten", x.ndim, start_dim)  # (a 0-d tensor takes dims 0 and -1 only)
    e = normalize_dim("flatten", x.ndim, end_dim)
    if x.ndim == 0:
        return reshape(x, 1)
    if s > e:
        raise ValueRangeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    # the merged size is the product of the merged dims: with a 0-size dim elsewhere it is not 0
    # (probe16: zeros(0, 1).flatten(1, 1) came back (0, 0))
    merged = 1
    for n in x.shape[s : e + 1]:
        merged *= n
    return reshape(x, x.shape[:s] + (merged,) + x.shape[e + 1 :])


def unsqueeze(x, dim):
    x = as_tensor(x, "unsqueeze")
    if not -x.ndim - 1 <= dim <= x.ndim:
        raise IndexError(f"unsqueeze: dim {dim} is out of range for a tensor with {x.ndim} dimensions")
    d = dim % (x.ndim + 1)
    return _view(Reshape, x, x.shape[:d] + (1,) + x.shape[d:])


def squeeze(x, dim=None):
    x = as_tensor(x, "squeeze")
    if dim is None:
        return _view(Reshape, x, tuple(s for s in x.shape if s != 1))
    dims = normalize_dims("squeeze", x.ndim, dim)
    return _view(Reshape, x, tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1)))


class Permute(Function):
    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return x.transpose(dims)

    @staticmethod
    def backward(ctx, g):
        inverse = [0] * len(ctx.dims)
        for i, d in enumerate(ctx.dims):
            inverse[d] = i
        return g.transpose(inverse)

    @staticmethod
    def backward_graph(ctx, g):
        inverse = [0] * len(ctx.dims)
        for i, d in enumerate(ctx.dims):
            inverse[d] = i
        return g.permute(*inverse)


def permute(x, *dims):
    x = as_tensor(x, "permute")
    dims = _shape_arg(dims)
    if len(dims) != x.ndim:
        raise ShapeError(f"permute: {dims} does not have one entry per dim of a tensor of shape {tuple(x.shape)}")
    norm = tuple(normalize_dim("permute", x.ndim, d) for d in dims)
    if sorted(norm) != list(range(x.ndim)):
        raise ShapeError(f"permute: {dims} is not a permutation of the {x.ndim} dims of a tensor of shape {tuple(x.shape)}")
    return _view(Permute, x, norm)


def transpose(x, dim0, dim1):
    x = as_tensor(x, "transpose")
    d0, d1 = normalize_dim("transpose", x.ndim, dim0), normalize_dim("transpose", x.ndim, dim1)
    if x.ndim == 0:  # dims 0 and -1 name the 0-d tensor's one pseudo-dim: nothing to swap
        return _view(Permute, x, ())
    dims = list(range(x.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return _view(Permute, x, tuple(dims))


def reverse_dims(x):
    """``x.T``: all dims reversed."""
    return _view(Permute, x, tuple(range(x.ndim - 1, -1, -1)))


class Expand(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return xp_of(x).broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.in_shape)

    @staticmethod
    def backward_graph(ctx, g):
        return sum_to(g, ctx.in_shape)


def expand(x, *shape):
    x = as_tensor(x, "expand")
    shape = _shape_arg(shape)
    if len(shape) < x.ndim:
        raise ShapeError(f"expand: target {shape} has fewer dims than the tensor's shape {tuple(x.shape)}")
    lead = len(shape) - x.ndim
    full = []
    for i, s in enumerate(shape):
        if s == -1:
            if i < lead:
                raise ShapeError(f"expand: -1 is not allowed for the new leading dim {i} in {shape}")
            s = x.shape[i - lead]
        elif i >= lead and x.shape[i - lead] not in (1, s):
            raise ShapeError(f"expand: cannot expand shape {tuple(x.shape)} to {shape} (dim {i}: {x.shape[i - lead]} vs {s})")
        full.append(s)
    if tuple(full[lead:]) == tuple(x.shape) and all(s == 1 for s in full[:lead]):
        # nothing is stretched: a plain (writable) view, as PyTorch's, not a read-only broadcast
        return _view(Reshape, x, tuple(full))
    return Expand.apply(x, tuple(full))


def expand_as(x, other):
    return expand(x, other.shape)


class Concat(Function):
    @staticmethod
    def forward(ctx, *arrays, axis=0):
        ctx.axis = axis
        ctx.sizes = [a.shape[axis] for a in arrays]
        return xp_of(arrays[0]).concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, g):
        grads, start = [], 0
        for n, need in zip(ctx.sizes, ctx.needs_input_grad):
            if need:
                index = [slice(None)] * g.ndim
                index[ctx.axis] = slice(start, start + n)
                grads.append(g[tuple(index)])
            else:
                grads.append(None)
            start += n
        return tuple(grads)

    backward_graph = backward  # slicing a Tensor is recorded (GetItem)


def _same_kind(name, tensors):
    tensors = [as_tensor(t, name) for t in tensors]
    if not tensors:
        raise ValueRangeError(f"{name}: expects a non-empty list of tensors")
    first = tensors[0]
    for i, t in enumerate(tensors[1:], 1):
        if type(t._data) is not type(first._data):
            raise ValueError(f"{name}: tensor {i} is on {t.device}, tensor 0 on {first.device}")
        if t.ndim != first.ndim:
            raise ShapeError(f"{name}: tensor {i} has {t.ndim} dims, tensor 0 has {first.ndim}")
    # Mixed dtypes promote as in PyTorch (int with float gives the float, float32 with float64 float64).
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) > 1:
        floats = [d for d in dtypes if d.kind in "fc"]
        target = np.result_type(*floats) if floats else np.result_type(*dtypes)
        tensors = [cast(t, target) for t in tensors]
    return tensors


def _not_one_tensor(name, tensors):
    # iterating a Tensor would silently concatenate its rows: torch.cat(x) is a TypeError
    if isinstance(tensors, Tensor):
        raise TypeError(f"{name}(): argument 'tensors' (position 1) must be tuple of Tensors, not Tensor "
                        f"(shape {tuple(tensors.shape)}); wrap it in a list: {name}([x, y])")


def cat(tensors, dim=0, **np_style):
    _not_one_tensor("cat", tensors)
    tensors = [as_tensor(t, "cat") for t in tensors]
    # PyTorch's legacy rule: a 1-D empty tensor (``torch.tensor([])``, the usual start of
    # ``out = torch.cat([out, x])`` in a loop) is skipped, whatever the others' shapes;
    # it still takes part in the dtype promotion
    legacy = [t for t in tensors if t.shape == (0,)]
    if legacy and len(legacy) < len(tensors):
        kept = [t for t in tensors if t.shape != (0,)]
        dtypes = {t.dtype for t in tensors}
        if len(dtypes) > 1:
            floats = [d for d in dtypes if d.kind in "fc"]
            target = np.result_type(*floats) if floats else np.result_type(*dtypes)
            kept = [cast(t, target) for t in kept]
        tensors = kept
    tensors = _same_kind("cat", tensors)
    zero_d = next((i for i, t in enumerate(tensors) if t.ndim == 0), None)
    if zero_d is not None:
        raise ShapeError(f"cat: zero-dimensional tensor (at position {zero_d}) cannot be concatenated; use stack")
    d = normalize_dim("cat", tensors[0].ndim, np_style.pop("axis", dim))
    for i, t in enumerate(tensors[1:], 1):
        a, b = list(t.shape), list(tensors[0].shape)
        a[d] = b[d] = 0
        if a != b:
            raise ShapeError(f"cat: tensor {i} has shape {tuple(t.shape)}, incompatible with {tuple(tensors[0].shape)} outside dim {d}")
    return Concat.apply(*tensors, axis=d)


concat = cat


class Stack(Function):
    @staticmethod
    def forward(ctx, *arrays, axis=0):
        ctx.axis = axis
        return xp_of(arrays[0]).stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, g):
        xp = xp_of(g)
        return tuple(
            xp.take(g, i, axis=ctx.axis) if need else None for i, need in enumerate(ctx.needs_input_grad)
        )

    @staticmethod
    def backward_graph(ctx, g):
        index = (slice(None),) * ctx.axis
        return tuple(g[index + (i,)] if need else None for i, need in enumerate(ctx.needs_input_grad))


def stack(tensors, dim=0, **np_style):
    _not_one_tensor("stack", tensors)
    tensors = _same_kind("stack", list(tensors))
    for i, t in enumerate(tensors[1:], 1):
        if t.shape != tensors[0].shape:
            raise ShapeError(f"stack: tensor {i} has shape {tuple(t.shape)}, tensor 0 has {tuple(tensors[0].shape)}")
    dim = np_style.pop("axis", dim)
    if not -tensors[0].ndim - 1 <= dim <= tensors[0].ndim:
        raise IndexError(f"stack: dim {dim} is out of range")
    return Stack.apply(*tensors, axis=dim % (tensors[0].ndim + 1))


class Split(Function):
    """Split into consecutive pieces of the given sizes along ``axis`` (several outputs)."""

    @staticmethod
    def forward(ctx, x, sizes, axis=0):
        ctx.axis = axis
        out, start = [], 0
        for n in sizes:
            index = [slice(None)] * x.ndim
            index[axis] = slice(start, start + n)
            out.append(x[tuple(index)])
            start += n
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads):
        return xp_of(grads[0]).concatenate(grads, axis=ctx.axis)

    @staticmethod
    def backward_graph(ctx, *grads):
        return cat(list(grads), dim=ctx.axis)


def refuse_zero_d(name, x):
    """split/chunk/narrow/unflatten cut along a real dimension; a 0-d tensor has none (this
    used to fail as 'tuple index out of range', found by probe16)."""
    if x.ndim == 0:
        raise ShapeError(f"{name} expects at least a 1-dimensional tensor, got a 0-d tensor")


def split(x, split_size_or_sections, dim=0):
    """PyTorch's split: an int gives pieces of that size (the last may be smaller); a list
    gives exactly those sizes."""
    x = as_tensor(x, "split")
    refuse_zero_d("split", x)
    d = normalize_dim("split", x.ndim, dim)
    n = x.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size < 0 or size == 0 and n:
            raise ValueRangeError(f"split: split_size must be positive (0 only for a dimension of size 0), got {size} "
                                  f"for dim {d} of size {n}")
        if n == 0:
            return (x,)
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != n:
            raise ShapeError(f"split: sections {sizes} sum to {builtins.sum(sizes)}, but dim {d} has size {n}")
    if len(sizes) == 1:
        return (x,)
    return Split.apply(x, sizes, d)


def chunk(x, chunks: int, dim=0):
    x = as_tensor(x, "chunk")
    refuse_zero_d("chunk", x)
    if chunks <= 0:
        raise ValueRangeError(f"chunk: chunks must be greater than 0, got {chunks}")
    n = x.shape[normalize_dim("chunk", x.ndim, dim)]
    if n == 0:  # PyTorch gives ``chunks`` empty pieces
        return (x,) + tuple(x[...] for _ in range(chunks - 1))
    return split(x, builtins.max(1, -(-n // chunks)), dim)


class Pad(Function):
    """Constant padding; ``widths`` is NumPy's ((before, after), ...) per axis."""

    @staticmethod
    def forward(ctx, x, widths, value=0.0):
        ctx.widths = widths
        return xp_of(x).pad(x, widths, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, g):
        index = tuple(slice(b, g.shape[i] - a) for i, (b, a) in enumerate(ctx.widths))
        return g[index]

    @staticmethod
    def backward_graph(ctx, g):
        from tinymm.ops.index import GetItem  # index.py builds on this module

        return GetItem.apply(g, tuple(slice(b, g.shape[i] - a) for i, (b, a) in enumerate(ctx.widths)))


def _pad_index(n: int, before: int, after: int, mode: str):
    """Source positions for the padded axis: reflect mirrors without repeating the edge,
    replicate repeats the edge, circular wraps around."""
    i = np.arange(-before, n + after)
    if mode == "reflect":
        period = 2 * (n - 1)
        j = np.abs(i) % period if period else np.zeros_like(i)
        return np.where(j >= n, period - j, j)
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    return i % n  # circular


def pad(input, pad, mode: str = "constant", value=None):
    """PyTorch's ``F.pad``: ``pad`` lists (before, after) pairs starting from the LAST dim.
    Modes: "constant" (``value``, default 0), "reflect", "replicate", "circular" (built from
    index gathers, so the gradient sums where an element is reused); a negative width crops in
    every mode, as PyTorch (circular wraps what is left after the crop)."""
    from tinymm.ops.index import getitem

    x = as_tensor(input, "pad")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise NotImplementedError(f"pad: mode {mode!r} is not supported (constant, reflect, replicate, circular)")
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ShapeError(f"pad: needs an even number of values, at most 2 per dim; got {len(pad)} for shape {tuple(x.shape)}")
    pairs = {x.ndim - 1 - i: (int(pad[2 * i]), int(pad[2 * i + 1])) for i in range(len(pad) // 2)}
    if mode != "constant":
        dims = len(pad) // 2
        if dims > 3 or x.ndim not in (dims + 1, dims + 2):  # PyTorch's rule for these modes
            raise NotImplementedError(f"pad: {mode} padding of {dims} dim(s) needs a {dims + 1}-D or {dims + 2}-D "
                                      f"input (at most 3 padded dims), got shape {tuple(x.shape)}")
        if value not in (None, 0, 0.0):
            raise ValueError(f"pad: a fill value is only used by mode 'constant', not {mode!r}")
        out = x
        for axis, (b, a) in sorted(pairs.items()):
            n = x.shape[axis]
            if n + b + a < (0 if mode == "circular" else 1):
                raise ShapeError(f"pad: input (size {n} along dim {axis}) is too small for padding ({b}, {a}): the "
                                 f"output would have size {n + b + a}")
            if mode == "circular" and (b < 0 or a < 0):
                # a negative width crops first and the wrap then comes from the cropped axis, as PyTorch
                out = getitem(out, (slice(None),) * axis + (slice(builtins.max(-b, 0), n - builtins.max(-a, 0)),))
                n, b, a = out.shape[axis], builtins.max(b, 0), builtins.max(a, 0)
            if mode == "reflect" and (b >= n or a >= n):
                raise ShapeError(f"pad: reflect padding ({b}, {a}) must be smaller than dim {axis} of size {n} (shape {tuple(x.shape)})")
            if mode == "circular" and (b > n or a > n):
                raise ShapeError(f"pad: circular padding ({b}, {a}) must be at most dim {axis} of size {n} (shape {tuple(x.shape)})")
            if n == 0:
                raise ShapeError(f"pad: cannot {mode}-pad the empty dim {axis} of shape {tuple(x.shape)}")
            # (reflect and replicate take a negative width as a crop of the original axis: the
            # source positions run from -b to n + a, mirrored or clamped at its own ends)
            out = getitem(out, (slice(None),) * axis + (_pad_index(n, b, a, mode),))
        return out
    value = 0.0 if value is None else value
    for d, (b, a) in pairs.items():
        if x.shape[d] + b + a < 0:
            raise ShapeError(f"pad: padding ({b}, {a}) would leave dim {d} of shape {tuple(x.shape)} with a negative size")
    # Negative widths crop first; the rest is ordinary constant padding.
    crop = tuple(slice(builtins.max(-pairs.get(d, (0, 0))[0], 0),
                       x.shape[d] - builtins.max(-pairs.get(d, (0, 0))[1], 0)) for d in range(x.ndim))
    if builtins.any(b < 0 or a < 0 for b, a in pairs.values()):
        x = getitem(x, crop)
    widths = tuple((builtins.max(pairs.get(d, (0, 0))[0], 0), builtins.max(pairs.get(d, (0, 0))[1], 0)) for d in range(x.ndim))
    if x.dtype.kind not in "fc":
        return Tensor._wrap(xp_of(x._data).pad(x._data, widths, mode="constant", constant_values=value))
    return Pad.apply(x, widths, value)


# ----------------------------------------------------------------------------- unbind, broadcasting, stacking


def unbind(x, dim=0):
    """The slices of ``x`` along ``dim``, each without that dim: a tuple of views."""
    x = as_tensor(x, "unbind")
    if x.ndim == 0:
        raise IndexError("unbind: dimension specified as 0 but tensor has no dimensions")
    axis = normalize_dim("unbind", x.ndim, dim)
    return tuple(getitem(x, (slice(None),) * axis + (i,)) for i in range(x.shape[axis]))


def broadcast_to(x, *shape):
    """``x`` expanded to ``shape`` (a view; -1 keeps a dim), as ``expand``; the shape may be
    one sequence or (as the Tensor method, like ``expand``) separate ints."""
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        shape = tuple(shape[0])
    return expand(x, *shape)


def broadcast_tensors(*tensors):
    """All tensors expanded to their common broadcast shape (ShapeError naming the shapes when
    there is none)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    ts = [as_tensor(t, "broadcast_tensors") for t in tensors]
    try:
        shape = np.broadcast_shapes(*[t.shape for t in ts])
    except ValueError:
        raise ShapeError(f"broadcast_tensors: shapes {[tuple(t.shape) for t in ts]} do not broadcast together") from None
    return tuple(t if t.shape == shape else expand(t, shape) for t in ts)


class SumToSize(Function):
    """The sum of ``x`` over the dims that broadcasting ``size`` to x's shape would stretch."""

    @staticmethod
    def forward(ctx, x, size):
        ctx.in_shape = x.shape
        return unbroadcast(x, size).copy()

    @staticmethod
    def backward(ctx, g):
        return xp_of(g).broadcast_to(g, ctx.in_shape).copy()

    @staticmethod
    def backward_graph(ctx, g):
        return g.expand(ctx.in_shape)


def sum_to_size(x, *size):
    """``x`` summed down to ``size``, which must be expandable to x's shape."""
    x = as_tensor(x, "sum_to_size")
    size = _shape_arg(size)
    lead = x.ndim - len(size)
    if lead < 0 or builtins.any(s not in (1, x.shape[lead + i]) for i, s in enumerate(size)):
        raise ShapeError(f"sum_to_size: size {list(size)} is not expandable to size {list(x.shape)}")
    if x.dtype.kind not in "fc":
        return Tensor._wrap(unbroadcast(x._data, size).astype(np.int64 if x.dtype.kind in "ib" else x.dtype))
    return SumToSize.apply(x, size)


def _atleast(name, nd, tensors):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
        single = False
    else:
        single = len(tensors) == 1
    out = []
    for t in tensors:
        t = as_tensor(t, name)
        if t.ndim < nd:
            if nd == 3 and t.ndim == 2:
                t = reshape(t, *t.shape, 1)
            elif nd == 3 and t.ndim == 1:
                t = reshape(t, 1, t.shape[0], 1)
            else:
                t = reshape(t, *((1,) * (nd - t.ndim) + tuple(t.shape)))
        out.append(t)
    return out[0] if single else tuple(out)


def atleast_1d(*tensors):
    """Each tensor with at least 1 dim (a 0-D one becomes shape (1,))."""
    return _atleast("atleast_1d", 1, tensors)


def atleast_2d(*tensors):
    """Each tensor with at least 2 dims (leading 1s added)."""
    return _atleast("atleast_2d", 2, tensors)


def atleast_3d(*tensors):
    """Each tensor with at least 3 dims: (n,) -> (1, n, 1), (a, b) -> (a, b, 1), as PyTorch."""
    return _atleast("atleast_3d", 3, tensors)


def _seq(name, tensors):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{name}(): argument 'tensors' must be a tuple or list of Tensors, got {type(tensors).__name__}")
    return list(tensors)


def hstack(tensors):
    """Concatenate along dim 1 (dim 0 for 1-D tensors)."""
    ts = _atleast("hstack", 1, (_seq("hstack", tensors),))
    return cat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors):
    """Concatenate along dim 0, 1-D tensors as rows."""
    return cat(_atleast("vstack", 2, (_seq("vstack", tensors),)), 0)


def dstack(tensors):
    """Concatenate along dim 2, after ``atleast_3d``."""
    return cat(_atleast("dstack", 3, (_seq("dstack", tensors),)), 2)


def column_stack(tensors):
    """0-D and 1-D tensors as columns, 2-D ones as they are, concatenated along dim 1."""
    ts = [as_tensor(t, "column_stack") for t in _seq("column_stack", tensors)]
    return cat([reshape(t, -1, 1) if t.ndim <= 1 else t for t in ts], 1)


concatenate = cat
