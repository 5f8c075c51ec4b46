"""Softmax, log-softmax and cross-entropy on the CPU: Numba loops, one row per iteration.

Each loop runs one row per ``prange`` iteration and accumulates row sums in float64 for both
dtypes (float32 exponentials are summed in float32 over chunks of ``_SUM_CHUNK`` columns
first, so that the loop vectorises). Each loop is compiled twice, serial and parallel
(``_common.serial_and_parallel``); arrays of fewer than ``CPU_PARALLEL_MIN_ELEMENTS`` elements
take the serial one. In float32, ``exp`` is ``_exp_f32``, a polynomial that LLVM vectorises
(Numba's ``np.exp`` is a scalar libm call per element), good to about 1 ulp.

The functions at the end have the reference's signatures and trust their inputs (2-D,
validated by the caller; C-contiguous is fastest).
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, overload

from .._common import parallel_threshold, serial_and_parallel
from .reference import loop_constants

# Arrays of at least this many elements (rows x columns) run the parallel loops. Measured
# crossover: 32K-256K elements on a quiet machine, about 2M on the shared 2-core one (see
# benchmarks/RESULTS.md, "When the parallel CPU loops pay").
CPU_PARALLEL_MIN_ELEMENTS = parallel_threshold(1 << 21)

# Numba CPU kernels may reorder additions (LLVM's "reassoc" flag only: NaN, inf and signed
# zeros keep IEEE semantics). That lets LLVM vectorise the row sums, several times faster, and
# the partial sums it keeps are, if anything, more accurate than one serial sum.
_REASSOC = {"reassoc"}

# ============================================================================ row helpers
# Row helpers first (inlined into the loops), then the loops. Each loop is compiled serial and
# parallel (``_common.SerialParallel``); the entry points at the end pick one by the array's size.


@intrinsic
def _float32_from_bits(typingctx, bits):
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


@numba.njit(cache=True)  # no fastmath flags: reassociating the two-step reduction would undo it
def _exp_f32(x):
    """exp of a float32, as straight-line arithmetic that LLVM vectorises.

    Numba's ``np.exp`` is a call to libm's ``expf`` per element, which keeps the loops around
    it scalar; in them this is 2-4x faster (measured 4.5x on a plain loop). Error: at most 1.24
    ulp over every float32 x in [-87.3, 0] (checked exhaustively; the tests check a dense grid
    up to 88.3); results below about 8e-39 (x < -87.68, and x = -inf) are 0; x > 88.37 gives
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
    e = p * _float32_from_bits((np.int32(n) + np.int32(127)) << 23)
    return e if x == x else x  # NaN in, NaN out (the clamp would have lost it)


def _exp(x):
    """exp inside the CPU kernels: ``_exp_f32`` for float32, Numba's ``np.exp`` (libm) for
    float64. (Called from plain Python, as under NUMBA_DISABLE_JIT=1, it is ``np.exp``.)"""
    return np.exp(x)


@overload(_exp)
def _exp_typed(x):
    if x == types.float32:
        return lambda x: _exp_f32(x)
    return lambda x: np.exp(x)


@numba.njit(inline="always")
def _row_max(x, i):
    """max_j x[i, j]. A NaN may be skipped; it turns the row's sum of exponentials NaN anyway.

    Eight running maxima side by side: LLVM does not vectorise a max reduction unless NaNs
    are excluded (fastmath "nnan"), and one chain of dependent compares costs ~3 cycles per
    column; eight independent chains overlap (measured 3.7x faster on rows of 1000).
    """
    n = x.shape[1]
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = x[i, 0]
    n8 = n - n % 8
    for j in range(0, n8, 8):
        m0 = x[i, j] if x[i, j] > m0 else m0
        m1 = x[i, j + 1] if x[i, j + 1] > m1 else m1
        m2 = x[i, j + 2] if x[i, j + 2] > m2 else m2
        m3 = x[i, j + 3] if x[i, j + 3] > m3 else m3
        m4 = x[i, j + 4] if x[i, j + 4] > m4 else m4
        m5 = x[i, j + 5] if x[i, j + 5] > m5 else m5
        m6 = x[i, j + 6] if x[i, j + 6] > m6 else m6
        m7 = x[i, j + 7] if x[i, j + 7] > m7 else m7
    m = max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))
    for j in range(n8, n):
        m = x[i, j] if x[i, j] > m else m
    return m


# Columns summed in the array's dtype before joining the float64 row sum. A float64
# accumulator in a float32 loop halves its vector width (measured 1.3x slower on rows of 1000);
# 256 float32 terms spread over LLVM's vector lanes lose well under 1e-6.
_SUM_CHUNK = 256


@numba.njit(inline="always")
def _row_sum(y, i):
    """sum_j y[i, j], returned in float64."""
    n = y.shape[1]
    s = 0.0
    for j0 in range(0, n, _SUM_CHUNK):
        part = y.dtype.type(0)
        for j in range(j0, min(j0 + _SUM_CHUNK, n)):
            part += y[i, j]
        s += part
    return s


@numba.njit(inline="always")
def _row_sum_exp(x, i, m):
    """sum_j exp(x[i, j] - m), returned in float64 (as _row_sum, without storing the terms)."""
    n = x.shape[1]
    s = 0.0
    for j0 in range(0, n, _SUM_CHUNK):
        part = x.dtype.type(0)
        for j in range(j0, min(j0 + _SUM_CHUNK, n)):
            part += _exp(x[i, j] - m)
        s += part
    return s


@numba.njit(inline="always")
def _row_lse(x, i):
    m = _row_max(x, i)
    return m + np.log(_row_sum_exp(x, i, m))


@serial_and_parallel(fastmath=_REASSOC)
def _softmax_forward_cpu(x, y, log):
    m_rows, n = x.shape
    for i in numba.prange(m_rows):
        if log:
            lse = _row_lse(x, i)
            for j in range(n):
                y[i, j] = x[i, j] - lse
        else:
            # one exp per element: keep exp(x - m) in y, sum y, scale. (Three plain loops run
            # faster than one that stores and sums at once, on rows of under ~30 columns.)
            m = _row_max(x, i)
            for j in range(n):
                y[i, j] = _exp(x[i, j] - m)
            s = _row_sum(y, i)
            inv = x.dtype.type(1.0 / s)  # scaling in x's dtype keeps the last loop at full vector width
            for j in range(n):
                y[i, j] *= inv


@serial_and_parallel(fastmath=_REASSOC)
def _softmax_backward_cpu(y, gy, gx, log):
    m_rows, n = y.shape
    for i in numba.prange(m_rows):
        s = 0.0
        if log:
            for j in range(n):
                s += gy[i, j]
            for j in range(n):
                gx[i, j] = gy[i, j] - _exp(y[i, j]) * s
        else:
            for j in range(n):
                s += gy[i, j] * y[i, j]
            for j in range(n):
                gx[i, j] = y[i, j] * (gy[i, j] - s)


@serial_and_parallel(fastmath=_REASSOC)
def _cross_entropy_index_forward_cpu(x, t, w, ignore_index, keep, smooth, loss, lse):
    # keep = 1 - eps, smooth = eps / C
    n_rows, c = x.shape
    for i in numba.prange(n_rows):
        l = _row_lse(x, i)
        lse[i] = l
        ti = t[i]
        if ti == ignore_index:
            loss[i] = 0.0
        else:
            acc = keep * w[ti] * (l - x[i, ti])
            if smooth != 0.0:
                sm = 0.0
                for k in range(c):
                    sm += w[k] * (l - x[i, k])
                acc += smooth * sm
            loss[i] = acc


@serial_and_parallel(fastmath=_REASSOC)
def _cross_entropy_prob_forward_cpu(x, p, w, keep, smooth, loss, lse):
    n_rows, c = x.shape
    for i in numba.prange(n_rows):
        l = _row_lse(x, i)
        lse[i] = l
        acc = 0.0
        for k in range(c):
            acc += w[k] * (keep * p[i, k] + smooth) * (l - x[i, k])
        loss[i] = acc


@serial_and_parallel(fastmath=_REASSOC)
def _cross_entropy_index_backward_cpu(x, t, lse, g, w, w_sum, ignore_index, keep, smooth, dx):
    n_rows, c = x.shape
    for i in numba.prange(n_rows):
        ti = t[i]
        if ti == ignore_index:
            for k in range(c):
                dx[i, k] = 0.0
        else:
            gi = g[i]
            l = lse[i]
            a = gi * (keep * w[ti] + smooth * w_sum)
            b = gi * smooth
            for k in range(c):
                dx[i, k] = a * _exp(x[i, k] - l) - b * w[k]
            dx[i, ti] -= gi * keep * w[ti]


@serial_and_parallel(fastmath=_REASSOC)
def _cross_entropy_prob_backward_cpu(x, p, lse, g, w, keep, smooth, dx):
    n_rows, c = x.shape
    for i in numba.prange(n_rows):
        l = lse[i]
        s = 0.0
        for k in range(c):
            s += w[k] * (keep * p[i, k] + smooth)
        gi = g[i]
        for k in range(c):
            dx[i, k] = gi * (_exp(x[i, k] - l) * s - w[k] * (keep * p[i, k] + smooth))



@numba.njit(cache=True)
def _first_bad_class_index(t, c, ignore_index):
    """Index of the first entry of ``t`` that is neither in [0, c) nor ignore_index; -1 if none."""
    for i in range(t.size):
        ti = t[i]
        if ti != ignore_index and (ti < 0 or ti >= c):
            return i
    return -1


# ============================================================================ entry points
# The reference's signatures; x.size may be 0.


def softmax_forward(x):
    y = np.empty_like(x)
    if x.size:
        _softmax_forward_cpu.for_work(x.size, CPU_PARALLEL_MIN_ELEMENTS)(x, y, False)
    return y


def log_softmax_forward(x):
    y = np.empty_like(x)
    if x.size:
        _softmax_forward_cpu.for_work(x.size, CPU_PARALLEL_MIN_ELEMENTS)(x, y, True)
    return y


def softmax_backward(y, gy):
    gx = np.empty_like(y)
    if y.size:
        _softmax_backward_cpu.for_work(y.size, CPU_PARALLEL_MIN_ELEMENTS)(y, gy, gx, False)
    return gx


def log_softmax_backward(y, gy):
    gx = np.empty_like(y)
    if y.size:
        _softmax_backward_cpu.for_work(y.size, CPU_PARALLEL_MIN_ELEMENTS)(y, gy, gx, True)
    return gx


def cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing):
    loss = np.empty(logits.shape[0], dtype=logits.dtype)
    lse = np.empty_like(loss)
    if loss.size:
        w, keep, smooth = loop_constants(logits, weight, label_smoothing)
        if target.dtype.kind == "f":
            loop, args = _cross_entropy_prob_forward_cpu, (logits, target, w, keep, smooth, loss, lse)
        else:
            loop, args = _cross_entropy_index_forward_cpu, (logits, target, w, ignore_index, keep, smooth, loss, lse)
        loop.for_work(logits.size, CPU_PARALLEL_MIN_ELEMENTS)(*args)
    return loss, lse


def cross_entropy_backward(logits, target, lse, grad_loss, weight, ignore_index, label_smoothing):
    dx = np.empty_like(logits)
    if dx.size:
        w, keep, smooth = loop_constants(logits, weight, label_smoothing)
        if target.dtype.kind == "f":
            loop, args = _cross_entropy_prob_backward_cpu, (logits, target, lse, grad_loss, w, keep, smooth, dx)
        else:
            w_sum = logits.dtype.type(logits.shape[1] if weight is None else w.sum(dtype=np.float64))
            loop, args = _cross_entropy_index_backward_cpu, (logits, target, lse, grad_loss, w, w_sum, ignore_index,
                                                             keep, smooth, dx)
        loop.for_work(logits.size, CPU_PARALLEL_MIN_ELEMENTS)(*args)
    return dx


def first_invalid_target(target, classes, ignore_index):
    """One compiled pass (about 1 us for small N; NumPy ufuncs take five passes, ~5 us)."""
    return _first_bad_class_index(target, classes, ignore_index)
