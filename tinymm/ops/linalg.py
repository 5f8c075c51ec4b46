"""Matrix product with NumPy's rules: batched, broadcast batch dims, and the 1-D cases.

For C = A·B: dA = dC·Bᵀ and dB = Aᵀ·dC, summed over any batch dims that broadcasting
stretched. A 1-D operand is treated as a row (left) or column (right) vector whose extra
axis is removed from the result, exactly as ``numpy.matmul`` does.
"""
from __future__ import annotations

from tinymm.autograd import Function
from tinymm.ops._util import unbroadcast


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_arrays
        na, nb = ctx.needs_input_grad
        a2 = a[None, :] if a.ndim == 1 else a  # (k,) -> (1, k)
        b2 = b[:, None] if b.ndim == 1 else b  # (k,) -> (k, 1)
        # Restore the axes the 1-D rules removed from the output.
        if a.ndim == 1:
            g = g[..., None, :] if b.ndim > 1 else g[..., None]
        if b.ndim == 1:
            g = g[..., None]
        ga = gb = None
        if na:
            ga = g @ b2.swapaxes(-1, -2)
            ga = unbroadcast(ga, a2.shape).reshape(a.shape)
        if nb:
            gb = a2.swapaxes(-1, -2) @ g
            gb = unbroadcast(gb, b2.shape).reshape(b.shape)
        return ga, gb
