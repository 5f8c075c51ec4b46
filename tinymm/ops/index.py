"""Indexing and selection: getitem (basic and integer-array), where, masked_fill.

Integer-array indexing may pick one element several times, so its backward is a
scatter-*add* (``numpy.add.at``); basic indexing (ints, slices, None, ...) picks each element
at most once and can assign the gradient directly.
"""
from __future__ import annotations

from tinymm.autograd import Function
from tinymm.ops._util import unbroadcast, xp_of


def is_basic_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in items)


def _scatter_add(out, index, g):
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
            _scatter_add(out, index, g)
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
        return (
            None,
            unbroadcast(g * cond, sa) if na else None,
            unbroadcast(g * ~cond, sb) if nb else None,
        )


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
