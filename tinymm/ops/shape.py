"""Shape ops: reshape, permute, expand, concatenate, stack, split, pad.

None of these does arithmetic; each backward routes the gradient back to where the element
came from (the inverse permutation, a sum over expanded axes, the matching slice).
"""
from __future__ import annotations

from tinymm.autograd import Function
from tinymm.ops._util import unbroadcast, xp_of


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.in_shape)


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


class Expand(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return xp_of(x).broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.in_shape)


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
