"""Shape ops: reshape, permute, expand, concatenate, stack, split, pad.

None of these does arithmetic; each backward routes the gradient back to where the element
came from (the inverse permutation, a sum over expanded axes, the matching slice).
"""
from __future__ import annotations

import builtins

import numpy as np

from tinymm.autograd import Function
from tinymm.ops._util import normalize_dim, normalize_dims, unbroadcast, xp_of
from tinymm.ops.convert import as_tensor


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.in_shape)


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def reshape(x, *shape):
    x = as_tensor(x, "reshape")
    shape = _shape_arg(shape)
    known = int(np.prod([s for s in shape if s != -1])) if shape else 1
    if shape.count(-1) > 1 or (
        -1 not in shape and known != x.data.size or -1 in shape and (known == 0 or x.data.size % known)
    ):
        raise ValueError(f"reshape: cannot view a tensor of shape {x.shape} ({x.data.size} elements) as {shape}")
    return Reshape.apply(x, shape)


def flatten(x, start_dim=0, end_dim=-1):
    x = as_tensor(x, "flatten")
    if x.ndim == 0:
        return reshape(x, 1)
    s = normalize_dim("flatten", x.ndim, start_dim)
    e = normalize_dim("flatten", x.ndim, end_dim)
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(x, x.shape[:s] + (-1 if x.data.size else 0,) + x.shape[e + 1 :])


def unsqueeze(x, dim):
    x = as_tensor(x, "unsqueeze")
    if not -x.ndim - 1 <= dim <= x.ndim:
        raise IndexError(f"unsqueeze: dim {dim} is out of range for a tensor with {x.ndim} dimensions")
    d = dim % (x.ndim + 1)
    return Reshape.apply(x, x.shape[:d] + (1,) + x.shape[d:])


def squeeze(x, dim=None):
    x = as_tensor(x, "squeeze")
    if dim is None:
        return Reshape.apply(x, tuple(s for s in x.shape if s != 1))
    dims = normalize_dims("squeeze", x.ndim, dim)
    return Reshape.apply(x, tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1)))


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


def permute(x, *dims):
    x = as_tensor(x, "permute")
    dims = _shape_arg(dims)
    norm = tuple(normalize_dim("permute", x.ndim, d) for d in dims)
    if sorted(norm) != list(range(x.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {x.ndim} dims of a tensor of shape {x.shape}")
    return Permute.apply(x, norm)


def transpose(x, dim0, dim1):
    x = as_tensor(x, "transpose")
    d0, d1 = normalize_dim("transpose", x.ndim, dim0), normalize_dim("transpose", x.ndim, dim1)
    dims = list(range(x.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(x, tuple(dims))


def reverse_dims(x):
    """``x.T``: all dims reversed."""
    return Permute.apply(x, tuple(range(x.ndim - 1, -1, -1)))


class Expand(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return xp_of(x).broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.in_shape)


def expand(x, *shape):
    x = as_tensor(x, "expand")
    shape = _shape_arg(shape)
    if len(shape) < x.ndim:
        raise ValueError(f"expand: target {shape} has fewer dims than the tensor's shape {x.shape}")
    lead = len(shape) - x.ndim
    full = []
    for i, s in enumerate(shape):
        if s == -1:
            if i < lead:
                raise ValueError(f"expand: -1 is not allowed for the new leading dim {i} in {shape}")
            s = x.shape[i - lead]
        elif i >= lead and x.shape[i - lead] not in (1, s):
            raise ValueError(f"expand: cannot expand shape {x.shape} to {shape} (dim {i}: {x.shape[i - lead]} vs {s})")
        full.append(s)
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


def _same_kind(name, tensors):
    tensors = [as_tensor(t, name) for t in tensors]
    if not tensors:
        raise ValueError(f"{name}: needs at least one tensor")
    first = tensors[0]
    for i, t in enumerate(tensors[1:], 1):
        if type(t.data) is not type(first.data):
            raise ValueError(f"{name}: tensor {i} is on {t.device}, tensor 0 on {first.device}")
        if t.dtype != first.dtype:
            raise TypeError(f"{name}: tensor {i} is {t.dtype}, tensor 0 is {first.dtype}")
        if t.ndim != first.ndim:
            raise ValueError(f"{name}: tensor {i} has {t.ndim} dims, tensor 0 has {first.ndim}")
    return tensors


def cat(tensors, dim=0, **np_style):
    tensors = _same_kind("cat", list(tensors))
    d = normalize_dim("cat", tensors[0].ndim, np_style.pop("axis", dim))
    for i, t in enumerate(tensors[1:], 1):
        a, b = list(t.shape), list(tensors[0].shape)
        a[d] = b[d] = 0
        if a != b:
            raise ValueError(f"cat: tensor {i} has shape {t.shape}, incompatible with {tensors[0].shape} outside dim {d}")
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


def stack(tensors, dim=0, **np_style):
    tensors = _same_kind("stack", list(tensors))
    for i, t in enumerate(tensors[1:], 1):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape}, tensor 0 has {tensors[0].shape}")
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


def split(x, split_size_or_sections, dim=0):
    """PyTorch's split: an int gives pieces of that size (the last may be smaller); a list
    gives exactly those sizes."""
    x = as_tensor(x, "split")
    d = normalize_dim("split", x.ndim, dim)
    n = x.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != n:
            raise ValueError(f"split: sections {sizes} sum to {builtins.sum(sizes)}, but dim {d} has size {n}")
    if len(sizes) == 1:
        return (x,)
    return Split.apply(x, sizes, d)


def chunk(x, chunks: int, dim=0):
    x = as_tensor(x, "chunk")
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = x.shape[normalize_dim("chunk", x.ndim, dim)]
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


def pad(x, pad, mode: str = "constant", value: float = 0.0):
    """PyTorch's ``F.pad``: ``pad`` lists (before, after) pairs starting from the LAST dim."""
    x = as_tensor(x, "pad")
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not supported (only 'constant')")
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: needs an even number of values, at most 2 per dim; got {len(pad)} for {x.ndim} dims")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        b, a = int(pad[2 * i]), int(pad[2 * i + 1])
        if b < 0 or a < 0:
            raise ValueError(f"pad: negative padding {pad} is not supported")
        widths[x.ndim - 1 - i] = (b, a)
    return Pad.apply(x, tuple(widths), value)
