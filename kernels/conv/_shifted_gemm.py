r"""A GEMM whose right operand is never built: row k is a shifted slice of one flat array.

    shifted_gemm(a, taps, x, x_off, c)      c (M, Q) = a (M, K) @ X,  X[k, q] = x[x_off + taps[k] + q]

This is how a stride-1 convolution runs without im2col (``cpu.py``, "shifted" strategy). Pad
each input plane and lay the planes end to end in one flat array, rows Wp = W + pad apart;
give output position (h, w) the flat index q = h * Wp + w, as if the output were as wide as the
padded input. Then kernel tap (c, i, j) reads input element q + c * Hp * Wp + i * dh * Wp + j * dw
for every output position q: one fixed shift per tap, the same for all q. So the im2col matrix
row of tap k is x[taps[k] :], a slice of the padded image itself, and the convolution is
c = w (O, K) @ X. The Wp - Wo columns at the end of each output row are computed and thrown
away (2 of 18 at 16 x 16 with 3 x 3 taps): cheaper than the copy im2col makes of every input
element kh * kw times.

The kernel is the recurrent family's register tile (``TileCode``: MR rows of c x NR columns
held in registers over the whole K loop), with each panel row loaded from x + taps[k] instead
of a packed panel: the shifted rows of one block of NR output positions (for 16 input
channels and 3 x 3 taps, 16 x 3 padded rows of ~34 values, 7 KB) stay in L1 while every
block of MR output channels passes over them. Measured on an AVX-512 Xeon, one thread: the
tile loop runs at 170-175 GF/s (16 -> 32 channels 3 x 3 at 16 x 16, and 64 -> 64 at 32 x 32,
counting the thrown-away columns), where im2col + the packed kernel reached 65-120 GF/s in
all; see PACKED / SHIFTED in ``cpu.py`` for the layer.

Q must be a multiple of NR (the caller pads its buffers), and x must hold
x_off + max(taps) + Q elements. ``a`` needs contiguous rows (any row stride). Under
``NUMBA_DISABLE_JIT=1`` it is the plain NumPy product below.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload
from numba.np.numpy_support import as_dtype

from ..recurrent._packed_gemm import MR, TileCode, panel_width


def _make_shifted_tile(mr):
    """c[i, 0:NR] (at c_off, rows ldc apart) = sum over k of a[i, k] * x[x_off + taps[k] : + NR]
    for the mr rows of a at a_off, lda apart."""

    @intrinsic
    def tile(typingctx, a, a_off, lda, taps, x, x_off, c, c_off, ldc):
        i64 = types.int64
        sig = types.void(a, i64, i64, taps, x, i64, c, i64, i64)

        def codegen(context, builder, signature, args):
            (a_v, a_off, lda, taps_v, x_v, x_off, c_v, c_off, ldc) = args
            t_a, t_taps, t_x, t_c = (signature.args[i] for i in (0, 3, 4, 6))
            code = TileCode(context, builder, t_c.dtype, mr)
            base = code.data(t_a, a_v, a_off)
            rows = [builder.gep(base, [builder.mul(code.const(i), lda)]) for i in range(mr)]
            first = code.data(t_x, x_v, x_off)
            shifts = code.data(t_taps, taps_v, code.const(0))
            K = context.make_array(t_taps)(context, builder, taps_v).nitems
            with cgutils.for_range(builder, K) as loop:
                k = loop.index
                b = code.load_row(builder.gep(first, [builder.load(builder.gep(shifts, [k]))]))
                for i in range(mr):
                    code.multiply_add(i, builder.gep(rows[i], [k]), b)
            code.store(code.data(t_c, c_v, c_off), ldc, ir.Constant(ir.IntType(1), 0))
            return context.get_dummy_value()

        return sig, codegen

    return tile


_TILES = tuple(_make_shifted_tile(mr) for mr in range(1, MR + 1))
_tile1, _tile2, _tile3, _tile4, _tile5, _tile6 = _TILES[:6]
_tile7, _tile8 = _TILES[6:] if MR == 8 else (_tile6, _tile6)  # never called when MR = 6


@njit(inline="always")
def _tile(mr, a, a_off, lda, taps, x, x_off, c, c_off, ldc):
    if mr == 8:
        _tile8(a, a_off, lda, taps, x, x_off, c, c_off, ldc)
    elif mr == 7:
        _tile7(a, a_off, lda, taps, x, x_off, c, c_off, ldc)
    elif mr == 6:
        _tile6(a, a_off, lda, taps, x, x_off, c, c_off, ldc)
    elif mr == 5:
        _tile5(a, a_off, lda, taps, x, x_off, c, c_off, ldc)
    elif mr == 4:
        _tile4(a, a_off, lda, taps, x, x_off, c, c_off, ldc)
    elif mr == 3:
        _tile3(a, a_off, lda, taps, x, x_off, c, c_off, ldc)
    elif mr == 2:
        _tile2(a, a_off, lda, taps, x, x_off, c, c_off, ldc)
    else:
        _tile1(a, a_off, lda, taps, x, x_off, c, c_off, ldc)


def shifted_gemm(a, taps, x, x_off, c):
    """c = a @ X with X[k, q] = x[x_off + taps[k] + q]; see the module docstring. This plain
    version is what ``NUMBA_DISABLE_JIT=1`` runs."""
    Q = c.shape[1]
    c[...] = a @ x[x_off + taps[:, None] + np.arange(Q)]


@overload(shifted_gemm, jit_options={"nogil": True})
def _shifted_gemm_compiled(a, taps, x, x_off, c):
    nr = panel_width(as_dtype(c.dtype))  # frozen into the compiled code

    def impl(a, taps, x, x_off, c):
        M, Q = c.shape
        size = c.itemsize
        if Q % nr != 0:  # e.g. a kernel cached by Numba before VECTOR_BYTES changed
            raise ValueError("shifted_gemm: c's width is not a whole number of register tiles "
                             "(a stale Numba cache? delete the kernels' __pycache__ folders)")
        lda, ldc = a.strides[0] // size, c.strides[0] // size
        # rows split evenly over the fewest blocks of at most MR (as packed_gemm does)
        n_blocks = (M + MR - 1) // MR
        base, extra = M // n_blocks, M % n_blocks
        for q0 in range(0, Q, nr):
            m0 = 0
            for blk in range(n_blocks):
                mr = base + 1 if blk < extra else base
                _tile(mr, a, m0 * lda, lda, taps, x, x_off + q0, c, m0 * ldc + q0, ldc)
                m0 += mr

    return impl
