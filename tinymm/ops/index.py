"""Indexing and selection: getitem (basic and integer-array), where, masked_fill, one_hot.

Integer-array indexing may pick one element several times, so its backward is a
scatter-*add* (``numpy.add.at``); basic indexing (ints, slices, None, ...) picks each element
at most once and can assign the gradient directly.
"""
from __future__ import annotations

import numpy as np

from tinymm.autograd import Function
from tinymm.ops._util import unbroadcast, xp_of
from tinymm.ops.convert import as_tensor, operands
from tinymm.tensor import Tensor


def is_basic_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in items)


def scatter_add(out, index, g):
    """``out[index] += g`` where an index may repeat (each repeat adds): NumPy or CuPy."""
    xp = xp_of(out)
    if xp.__name__ == "numpy":
        xp.add.at(out, index, g)
    else:
        import cupyx

        cupyx.scatter_add(out, index, g)


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.meta = (x.shape, x.dtype, index)
        return x[index]

    @staticmethod
    def backward(ctx, g):
        shape, dtype, index = ctx.meta
        out = xp_of(g).zeros(shape, dtype)
        if is_basic_index(index):
            out[index] = g
        else:
            scatter_add(out, index, g)
        return out


def array_index(index):
    """Replace Tensors inside an index by their arrays (lists become integer arrays)."""
    if isinstance(index, tuple):
        return tuple(array_index(i) for i in index)
    if isinstance(index, Tensor):
        if index.dtype.kind not in "iub":
            raise IndexError(f"index tensors must be integer or bool, got {index.dtype}")
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    return index


def getitem(x, index):
    x = as_tensor(x, "getitem")
    index = array_index(index)
    items = index if isinstance(index, tuple) else (index,)
    if type(x.data) is np.ndarray:
        if any(hasattr(i, "__cuda_array_interface__") for i in items):
            raise ValueError("getitem: a CUDA index cannot index a tensor on cpu")
    else:  # host index arrays are copied to the GPU tensor's device
        xp = xp_of(x.data)
        moved = tuple(xp.asarray(i) if isinstance(i, np.ndarray) else i for i in items)
        index = moved if isinstance(index, tuple) else moved[0]
    if x.data.dtype.kind != "f":
        return Tensor._wrap(x.data[index])
    return GetItem.apply(x, index)


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
        return (
            None,
            unbroadcast(g * cond, sa) if na else None,
            unbroadcast(g * ~cond, sb) if nb else None,
        )


def where(condition, a, b):
    cond = as_tensor(condition, "where")
    if cond.dtype.kind != "b":
        raise TypeError(f"where: condition must be bool, got {cond.dtype}")
    a, b = operands("where", a, b)
    for t in (a, b):
        if isinstance(t, Tensor) and type(t.data) is not type(cond.data):
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


def masked_fill(x, mask, value):
    x = as_tensor(x, "masked_fill")
    mask = as_tensor(mask, "masked_fill")
    if mask.dtype.kind != "b":
        raise TypeError(f"masked_fill: mask must be bool, got {mask.dtype}")
    if type(mask.data) is not type(x.data):
        raise ValueError(f"masked_fill: mask is on {mask.device}, the tensor on {x.device}")
    try:
        ok = np.broadcast_shapes(mask.shape, x.shape) == x.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"masked_fill: mask of shape {mask.shape} does not broadcast to the tensor's shape {x.shape}")
    if isinstance(value, Tensor):
        value = value.item()
    if x.data.dtype.kind != "f":
        return Tensor._wrap(xp_of(x.data).where(mask.data, value, x.data).astype(x.dtype))
    return MaskedFill.apply(x, mask, value)


# ----------------------------------------------------------------------------- one_hot


def one_hot(x, num_classes: int = -1) -> Tensor:
    """Integer class indices (...,) → int64 one-hot (..., num_classes), as ``F.one_hot``."""
    x = as_tensor(x, "one_hot")
    if x.dtype.kind not in "iu":
        raise TypeError(f"one_hot: needs an integer tensor, got {x.dtype}")
    xp = xp_of(x.data)
    if num_classes == -1:
        num_classes = int(x.data.max()) + 1 if x.data.size else 0
    if x.data.size and (int(x.data.min()) < 0 or int(x.data.max()) >= num_classes):
        raise ValueError(
            f"one_hot: class values must be in [0, {num_classes}), got min {int(x.data.min())}, max {int(x.data.max())}"
        )
    return Tensor._wrap((x.data[..., None] == xp.arange(num_classes)).astype(np.int64))
