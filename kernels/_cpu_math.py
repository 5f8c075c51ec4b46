"""Scalar maths shared by the Numba CPU kernels of several families (softmax, recurrent).

``exp`` is the one to call inside a kernel: for float32 it is ``exp_f32``, a polynomial that
LLVM vectorises (Numba's ``np.exp`` calls libm's ``expf`` per element and keeps the loop
scalar); for float64 it is Numba's ``np.exp``. The tests in ``tests/kernels`` check its error.
Imported only by CPU kernel modules (it imports Numba).
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, overload


@intrinsic
def float32_from_bits(typingctx, bits):
    """The float32 whose IEEE-754 bit pattern is the integer ``bits`` (cast to int32)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


# exp(r) = 1 + r + r^2 q(r) on |r| <= ln(2)/2, with q a Chebyshev interpolant of degree 4 of
# (exp(r) - 1 - r) / r^2: relative error 1.0e-8 in exact arithmetic, 1.03 ulp in float32.
_EXP_C = tuple(np.float32(c) for c in (1.0, 1.0, 0.5, 0.16666577756404877, 0.041666556149721146,
                                       0.008363173343241215, 0.0013926175888627768))
_LOG2E_F32 = np.float32(1.4426950408889634)
_LN2_HI_F32 = np.float32(0.693359375)  # ln 2 to 9 bits: n * _LN2_HI_F32 is exact for |n| < 2^15
_LN2_LO_F32 = np.float32(-2.1219444005469057e-4)  # ln 2 - _LN2_HI_F32


# "contract" only: fused multiply-adds make the reduction and the polynomial both faster and more
# exact; reassociating the two-step reduction would undo it, so no other fast-math flag.
@numba.njit(cache=True, fastmath={"contract"})
def exp_f32(x):
    """exp of a float32, as straight-line arithmetic that LLVM vectorises.

    Numba's ``np.exp`` is a call to libm's ``expf`` per element, which keeps the loops around
    it scalar; in them this is 2-4x faster (measured 4.5x on a plain loop). Error with fused
    multiply-adds: at most 0.95 ulp on a grid of 3e7 points over [-87.3, 88.3] (1.22 without
    them, where every float32 in [-87.3, 0] was checked: 1.24; the tests check a dense grid); results below about 8e-39 (x < -87.68, and x = -inf) are 0; x > 88.37 gives
    inf (exp's true overflow is at 88.72); NaN gives NaN. The kernels call it on x - max <= 0.
    """
    # exp(x) = 2^n exp(r) with n = round(x / ln 2) and r = x - n ln 2 in [-ln2/2, ln2/2]; r is
    # computed in two steps (Cody and Waite), exact but for the last rounding. Clamping x keeps
    # n in [-127, 128]; 2^n is built from its bit pattern, exponent field n + 127, which reads
    # as 0.0 for n = -127 and as inf for n = 128.
    xc = min(max(x, np.float32(-88.0)), np.float32(88.5))
    n = np.floor(xc * _LOG2E_F32 + np.float32(0.5))
    r = (xc - n * _LN2_HI_F32) - n * _LN2_LO_F32
    c = _EXP_C
    p = c[0] + r * (c[1] + r * (c[2] + r * (c[3] + r * (c[4] + r * (c[5] + r * c[6])))))
    e = p * float32_from_bits((np.int32(n) + np.int32(127)) << 23)
    return e if x == x else x  # NaN in, NaN out (the clamp would have lost it)


def exp(x):
    """exp inside the CPU kernels: ``exp_f32`` for float32, Numba's ``np.exp`` (libm) for
    float64. (Called from plain Python, as under NUMBA_DISABLE_JIT=1, it is ``np.exp``.)"""
    return np.exp(x)


# fastmath pinned to exp_f32's own "contract": an overload's implementation is compiled once and
# cached with the flags of the first caller; a caller with "reassoc" (the recurrent gate loops)
# would otherwise hand every later caller an exp whose two-step reduction was reassociated (4.5
# ulp instead of 1.24).
@overload(exp, jit_options={"fastmath": {"contract"}})
def _exp_typed(x):
    if x == types.float32:
        return lambda x: exp_f32(x)
    return lambda x: np.exp(x)
