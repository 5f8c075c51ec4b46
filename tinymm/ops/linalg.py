"""Matrix product with NumPy's rules: batched, broadcast batch dims, and the 1-D cases.

For C = A·B: dA = dC·Bᵀ and dB = Aᵀ·dC, summed over any batch dims that broadcasting
stretched. A 1-D operand is treated as a row (left) or column (right) vector whose extra
axis is removed from the result, exactly as ``numpy.matmul`` does.
"""
from __future__ import annotations

import numpy as np

from tinymm.autograd import Function
from tinymm.ops._util import unbroadcast
from tinymm.ops.convert import as_tensor, operands


class MatMul(Function):
    """Saves only what the wanted gradients need: b for dA, a for dB (as PyTorch)."""

    @staticmethod
    def forward(ctx, a, b):
        na, nb = ctx.needs_input_grad
        ctx.shapes = (a.shape, b.shape)
        ctx.save_for_backward(a if nb else None, b if na else None)
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_arrays
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        # Restore the axes the 1-D rules removed from the output.
        if len(sa) == 1:
            g = g[..., None, :] if len(sb) > 1 else g[..., None]
        if len(sb) == 1:
            g = g[..., None]
        ga = gb = None
        if na:
            b2 = b[:, None] if b.ndim == 1 else b  # (k,) -> (k, 1)
            ga = unbroadcast(g @ b2.swapaxes(-1, -2), (1,) + sa if len(sa) == 1 else sa).reshape(sa)
        if nb:
            a2 = a[None, :] if a.ndim == 1 else a  # (k,) -> (1, k)
            gb = unbroadcast(a2.swapaxes(-1, -2) @ g, sb + (1,) if len(sb) == 1 else sb).reshape(sb)
        return ga, gb


def matmul(a, b):
    a, b = operands("matmul", as_tensor(a, "matmul"), as_tensor(b, "matmul"))
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes {a.shape} and {b.shape}")
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not line up ({ka} != {kb})")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast") from None
    return MatMul.apply(a, b)
