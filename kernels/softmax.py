"""Softmax, log-softmax and fused softmax cross-entropy along the last axis.

Every function here takes 2-D ``(M, N)`` arrays and works on each row independently; callers
reshape or move axes first. Inputs that are not C-contiguous are copied once; outputs are new
C-contiguous arrays of the input's dtype (float32 or float64).

Softmax and log-softmax
-----------------------
For one row ``x`` of length ``N``, with ``m = max_j x_j`` subtracted for stability::

    lse(x)      = m + log(sum_j exp(x_j - m))          log-sum-exp
    softmax(x)  = exp(x - lse)                         y, rows sum to 1
    log_softmax = x - lse                              y

Backward, given the upstream gradient ``gy`` and the saved *output* ``y`` (nothing else)::

    softmax:      gx = y * (gy - sum_j gy_j * y_j)
    log_softmax:  gx = gy - exp(y) * sum_j gy_j

Cross-entropy (fused log-softmax + negative log-likelihood)
-----------------------------------------------------------
``logits`` is ``(N, C)``; ``w`` is the per-class ``weight`` ``(C,)`` (all ones when None);
``eps`` is ``label_smoothing``; ``lse_i`` is row i's log-sum-exp, so ``-log p_ic = lse_i - x_ic``.
The semantics are exactly ``torch.nn.functional.cross_entropy(..., reduction='none')``.

*Class-index targets* ``t`` ``(N,)`` (any integer dtype)::

    loss_i = (1 - eps) * w[t_i] * (lse_i - x_{i,t_i})
             + (eps / C) * sum_c w_c * (lse_i - x_{i,c})
    loss_i = 0                                 for rows with t_i == ignore_index

  A target outside ``[0, C)`` that is not ``ignore_index`` raises ``ValueError``.
  Gradient (``W = sum_c w_c``, ``g_i`` the upstream gradient of ``loss_i``)::

    dx_ic = g_i * ( p_ic * ((1 - eps) * w[t_i] + (eps / C) * W)
                    - (1 - eps) * w[t_i] * [c == t_i] - (eps / C) * w_c )

*Class-probability targets* ``p`` ``(N, C)`` (same dtype as logits), smoothed to
``q = (1 - eps) * p + eps / C``::

    loss_i = sum_c w_c * q_ic * (lse_i - x_ic)
    dx_ic  = g_i * ( p_ic^softmax * sum_k w_k * q_ik  -  w_c * q_ic )

Forward returns ``(loss (N,), lse (N,))`` and saves only ``lse``: backward recomputes the
softmax ``exp(x - lse)`` from the logits, so log-probabilities are never materialised.

Reduction is the caller's job. PyTorch's ``reduction='mean'`` divides the summed loss by
``sum_i w[t_i]`` over the non-ignored rows for class-index targets (by the number of
non-ignored rows when ``weight`` is None), and by ``N`` for probability targets.

Edge cases: logits of magnitude 1e4 stay finite (the row maximum is subtracted first). A row
that is entirely ``-inf`` gives NaN (softmax, log-softmax, loss and gradient), as in PyTorch;
rows with *some* ``-inf`` entries are fine (those entries get probability 0). A NaN anywhere in
a row makes the whole row NaN.

Implementation notes. The CPU kernels run one row per ``prange`` iteration and accumulate
row sums in float64 for both dtypes (float32 exponentials are summed in float32 over chunks of
``_SUM_CHUNK`` columns first, so that the loop vectorises). Each loop is compiled twice, serial
and parallel; arrays of fewer than ``CPU_PARALLEL_MIN_ELEMENTS`` elements take the serial one,
as waking the thread pool costs more than it saves there. In float32, ``exp`` is ``_exp_f32``,
a polynomial that LLVM vectorises (Numba's ``np.exp`` is a scalar libm call per element), good
to about 1 ulp. The CUDA kernels run one block per row (grid-striding over rows), each thread
striding over the row's columns, and combine the per-thread partials with a shared-memory tree
reduction; they accumulate in the input dtype, as GPU kernels usually do.
"""
from __future__ import annotations

import functools
import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, overload

from ._common import (array_module, numba_cuda, parallel_threshold, check_array, check_float, check_like, check_same_kind, contiguous,
                      cuda_block_sum, is_cuda_array, launch_on_cupy_stream, serial_and_parallel,
                      threads_for_row)

# Most threads per block of the CUDA row kernels (a power of two). A row of N columns gets
# min(CUDA_BLOCK, max(32, next power of two >= N)) threads, so short rows do not idle 100 threads.
CUDA_BLOCK = 128
# Grid-stride over rows beyond this many blocks.
CUDA_MAX_BLOCKS = 65535

# Arrays of at least this many elements (rows x columns) run the parallel CPU loops, smaller
# ones the serial loops. Measured by `python -m benchmarks.kernels` (its crossover table: each
# call after 5 ms idle, float32) on this project's 2-core AMD EPYC, which other jobs share.
# Quiet machine: the parallel loops pay from 32K-256K elements (256x512: softmax fwd serial
# 0.33 ms, parallel 0.16; log-softmax bwd 0.28 vs 0.15; cross-entropy fwd 512x512: 0.44 vs
# 0.26). Busy machine: a parallel call that finds the other core taken waits out a scheduler
# slice, 3-7 ms whatever the size, so the parallel loops' *mean* time stays above the serial
# one up to 1-2M elements (cross-entropy fwd 1024x1024: serial 1.18 ms, parallel 2.32; softmax
# bwd 1024x1024: 0.49 vs 0.69) and is a coin toss beyond (2048x1024: softmax bwd 2.3 vs 1.3;
# cross-entropy fwd+bwd 4.8 vs 7.7 in one run, 5.2 vs 4.5 in another). 2M keeps every small
# and medium array, a training step's among them, serial; on a dedicated machine 1 << 17 would do.
CPU_PARALLEL_MIN_ELEMENTS = parallel_threshold(1 << 21)  # env TINYMM_PARALLEL_MIN_ELEMENTS overrides

# Numba CPU kernels may reorder additions (LLVM's "reassoc" flag only: NaN, inf and signed
# zeros keep IEEE semantics). That lets LLVM vectorise the row sums, several times faster, and
# the partial sums it keeps are, if anything, more accurate than one serial sum.
_REASSOC = {"reassoc"}

# ``numba.cuda``, bound on first use by _cuda_kernels. It must be a module global (not a local
# of the factory): the CUDA simulator swaps the kernels' global ``cuda`` for its fake module.
cuda = None


# ============================================================================ input checks


def _check_cross_entropy_args(fn, logits, target, weight, ignore_index, label_smoothing):
    """Shared checks of cross_entropy_forward/backward. Returns (logits, target, weight, is_index)."""
    logits = check_float(fn, "logits", logits, 2)
    n, c = logits.shape
    if c < 1:
        raise ValueError(f"{fn}: logits has shape {tuple(logits.shape)}, expected at least one class")
    check_array(fn, "target", target)
    if target.dtype.kind in "iu":
        if tuple(target.shape) != (n,):
            raise ValueError(
                f"{fn}: target has shape {tuple(target.shape)}, expected ({n},) class indices "
                f"to match logits' first dim"
            )
        is_index = True
    elif target.dtype.kind == "f":
        if target.dtype != logits.dtype:
            raise TypeError(
                f"{fn}: target has dtype {target.dtype}, expected {logits.dtype} to match logits "
                f"(probability targets) or an integer dtype (class indices)"
            )
        if tuple(target.shape) != (n, c):
            raise ValueError(
                f"{fn}: target has shape {tuple(target.shape)}, expected {(n, c)} class "
                f"probabilities to match logits"
            )
        is_index = False
    else:
        raise TypeError(
            f"{fn}: target has dtype {target.dtype}, expected an integer dtype (class indices) "
            f"or {logits.dtype} (class probabilities)"
        )
    target = contiguous(target)
    if weight is not None:
        check_like(fn, "weight", weight, (c,), logits.dtype, "logits")
        weight = contiguous(weight)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"{fn}: ignore_index must be an int, got {type(ignore_index).__name__}")
    if not (0.0 <= float(label_smoothing) <= 1.0):
        raise ValueError(f"{fn}: label_smoothing is {label_smoothing}, expected a value in [0, 1]")
    check_same_kind(fn, logits=logits, target=target, weight=weight)
    if is_index and n > 0:
        _check_class_indices(fn, target, c, ignore_index)
    return logits, target, weight, is_index


def _check_class_indices(fn, target, c, ignore_index):
    """Every target is a class index in [0, c) or ignore_index.

    NumPy targets are scanned by a compiled loop (one pass, about 1 us for small N; the same
    test in NumPy ufuncs costs five passes and ~5 us); CuPy targets by one vectorised pass that
    synchronises once (like PyTorch's device-side assert, but with a readable message).
    """
    t = target.astype(np.int64) if target.dtype.kind == "u" else target
    if isinstance(t, np.ndarray):
        i = _first_bad_class_index(t, c, ignore_index)
    else:
        bad = (t != ignore_index) & ((t < 0) | (t >= c))
        i = int(array_module(t).argmax(bad)) if bool(bad.any()) else -1
    if i >= 0:
        raise ValueError(
            f"{fn}: target[{i}] is {int(t[i])}, expected a class index in [0, {c}) "
            f"or ignore_index ({ignore_index})"
        )


@numba.njit(cache=True)
def _first_bad_class_index(t, c, ignore_index):
    """Index of the first entry of ``t`` that is neither in [0, c) nor ignore_index; -1 if none."""
    for i in range(t.size):
        ti = t[i]
        if ti != ignore_index and (ti < 0 or ti >= c):
            return i
    return -1


# ============================================================================ reference (NumPy)


def reference_logsumexp(x):
    """Row-wise log-sum-exp of a 2-D array, shape (M,)."""
    m = x.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]


def reference_softmax_forward(x):
    m = x.max(axis=1, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=1, keepdims=True)


def reference_softmax_backward(y, gy):
    return y * (gy - (gy * y).sum(axis=1, keepdims=True))


def reference_log_softmax_forward(x):
    return x - reference_logsumexp(x)[:, None]


def reference_log_softmax_backward(y, gy):
    return gy - np.exp(y) * gy.sum(axis=1, keepdims=True)


def reference_cross_entropy_forward(logits, target, weight=None, ignore_index=-100, label_smoothing=0.0):
    """Readable cross-entropy through explicit log-probabilities. Returns (loss, lse)."""
    n, c = logits.shape
    eps = label_smoothing
    w = np.ones(c, dtype=logits.dtype) if weight is None else weight
    lse = reference_logsumexp(logits)
    neg_logp = lse[:, None] - logits  # (N, C): -log p_ic
    if target.dtype.kind == "f":  # class probabilities
        q = (1 - eps) * target + eps / c
        loss = (w * q * neg_logp).sum(axis=1)
    else:  # class indices
        keep = target != ignore_index
        t = np.where(keep, target, 0)
        nll = w[t] * neg_logp[np.arange(n), t]
        smooth = (w * neg_logp).sum(axis=1) / c
        loss = np.where(keep, (1 - eps) * nll + eps * smooth, 0)
    return loss.astype(logits.dtype), lse.astype(logits.dtype)


def reference_cross_entropy_backward(logits, target, lse, grad_loss, weight=None, ignore_index=-100,
                                     label_smoothing=0.0):
    n, c = logits.shape
    eps = label_smoothing
    w = np.ones(c, dtype=logits.dtype) if weight is None else weight
    p = np.exp(logits - lse[:, None])  # softmax, recomputed from the saved lse
    if target.dtype.kind == "f":
        q = (1 - eps) * target + eps / c
        d = p * (w * q).sum(axis=1, keepdims=True) - w * q
        return (grad_loss[:, None] * d).astype(logits.dtype)
    keep = target != ignore_index
    t = np.where(keep, target, 0)
    onehot = np.zeros_like(logits)
    onehot[np.arange(n), t] = 1
    wt = w[t][:, None]  # (N, 1)
    d = p * ((1 - eps) * wt + eps / c * w.sum()) - (1 - eps) * wt * onehot - eps / c * w
    return np.where(keep[:, None], grad_loss[:, None] * d, 0).astype(logits.dtype)


# ============================================================================ CPU (Numba)
# Row helpers first (inlined into the loops), then the loops. Each loop is compiled serial and
# parallel (``_common.SerialParallel``); the dispatch picks one by the array's size.


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


# ============================================================================ CUDA (Numba-CUDA)


@functools.lru_cache(maxsize=None)
def _cuda_kernels(dtype_name):
    """The CUDA kernels for one dtype, compiled by Numba on first launch.

    Kernels launch with one block per row (grid-striding over rows beyond CUDA_MAX_BLOCKS)
    and ``blockDim.x`` threads, a power of two. The reduction scratch is *dynamic* shared
    memory of ``blockDim.x`` elements of the dtype, sized at launch (see ``_launch``), so one
    compiled kernel serves every block size. (Static ``cuda.shared.array(BLOCK, T)`` would
    work as well on a GPU, but the CUDA simulator allocates static shared arrays racily.)
    ``numba.cuda`` is imported here, so importing this module never touches CUDA.
    """
    global cuda
    cuda = numba_cuda()

    T = numba.from_dtype(np.dtype(dtype_name))

    block_sum = cuda_block_sum()  # tree reduction in shared memory, from _common

    @cuda.jit(device=True)
    def block_max(scratch, v):
        tid = cuda.threadIdx.x
        scratch[tid] = v
        cuda.syncthreads()
        stride = cuda.blockDim.x // 2
        while stride > 0:
            if tid < stride and scratch[tid + stride] > scratch[tid]:
                scratch[tid] = scratch[tid + stride]
            cuda.syncthreads()
            stride //= 2
        total = scratch[0]
        cuda.syncthreads()
        return total

    @cuda.jit(device=True)
    def row_lse(x, row, scratch):
        # Two passes over the row: the max, then the sum of exp(x - max). The main loops take
        # four columns per trip (j, j+nt, j+2nt, j+3nt) so that each thread has four
        # independent loads in flight: one load per trip leaves these kernels waiting on memory
        # latency (measured on an H200: about 1.3x slower at 65536 x 4096).
        tid, nt, n = cuda.threadIdx.x, cuda.blockDim.x, x.shape[1]
        m = T(-math.inf)
        j = tid
        while j + 3 * nt < n:
            a0, a1, a2, a3 = x[row, j], x[row, j + nt], x[row, j + 2 * nt], x[row, j + 3 * nt]
            m = max(m, max(max(a0, a1), max(a2, a3)))
            j += 4 * nt
        while j < n:
            m = max(m, x[row, j])
            j += nt
        m = block_max(scratch, m)
        s = T(0)
        j = tid
        while j + 3 * nt < n:
            a0, a1, a2, a3 = x[row, j], x[row, j + nt], x[row, j + 2 * nt], x[row, j + 3 * nt]
            s += (math.exp(a0 - m) + math.exp(a1 - m)) + (math.exp(a2 - m) + math.exp(a3 - m))
            j += 4 * nt
        while j < n:
            s += math.exp(x[row, j] - m)
            j += nt
        s = block_sum(scratch, s)
        return m + math.log(s)

    @cuda.jit
    def softmax_forward(x, y, log):
        scratch = cuda.shared.array(0, T)
        tid, nt, n = cuda.threadIdx.x, cuda.blockDim.x, x.shape[1]
        for row in range(cuda.blockIdx.x, x.shape[0], cuda.gridDim.x):
            lse = row_lse(x, row, scratch)
            j = tid
            while j + 3 * nt < n:  # four columns per trip, as in row_lse
                a0, a1, a2, a3 = x[row, j], x[row, j + nt], x[row, j + 2 * nt], x[row, j + 3 * nt]
                if log:
                    y[row, j], y[row, j + nt] = a0 - lse, a1 - lse
                    y[row, j + 2 * nt], y[row, j + 3 * nt] = a2 - lse, a3 - lse
                else:
                    y[row, j], y[row, j + nt] = math.exp(a0 - lse), math.exp(a1 - lse)
                    y[row, j + 2 * nt], y[row, j + 3 * nt] = math.exp(a2 - lse), math.exp(a3 - lse)
                j += 4 * nt
            while j < n:
                y[row, j] = x[row, j] - lse if log else math.exp(x[row, j] - lse)
                j += nt

    @cuda.jit
    def softmax_backward(y, gy, gx, log):
        scratch = cuda.shared.array(0, T)
        tid, nt = cuda.threadIdx.x, cuda.blockDim.x
        for row in range(cuda.blockIdx.x, y.shape[0], cuda.gridDim.x):
            s = T(0)
            for j in range(tid, y.shape[1], nt):
                s += gy[row, j] if log else gy[row, j] * y[row, j]
            s = block_sum(scratch, s)
            for j in range(tid, y.shape[1], nt):
                if log:
                    gx[row, j] = gy[row, j] - math.exp(y[row, j]) * s
                else:
                    gx[row, j] = y[row, j] * (gy[row, j] - s)

    @cuda.jit
    def cross_entropy_index_forward(x, t, w, ignore_index, keep, smooth, loss, lse_out):
        scratch = cuda.shared.array(0, T)
        tid, nt = cuda.threadIdx.x, cuda.blockDim.x
        for row in range(cuda.blockIdx.x, x.shape[0], cuda.gridDim.x):
            lse = row_lse(x, row, scratch)
            ti = t[row]
            ignored = ti == ignore_index  # the same for the whole block: no divergent barrier
            sm = T(0)
            if smooth != 0 and not ignored:
                for k in range(tid, x.shape[1], nt):
                    sm += w[k] * (lse - x[row, k])
                sm = block_sum(scratch, sm)
            if tid == 0:
                lse_out[row] = lse
                if ignored:
                    loss[row] = 0
                else:
                    loss[row] = keep * w[ti] * (lse - x[row, ti]) + smooth * sm

    @cuda.jit
    def cross_entropy_prob_forward(x, p, w, keep, smooth, loss, lse_out):
        scratch = cuda.shared.array(0, T)
        tid, nt = cuda.threadIdx.x, cuda.blockDim.x
        for row in range(cuda.blockIdx.x, x.shape[0], cuda.gridDim.x):
            lse = row_lse(x, row, scratch)
            acc = T(0)
            for k in range(tid, x.shape[1], nt):
                acc += w[k] * (keep * p[row, k] + smooth) * (lse - x[row, k])
            acc = block_sum(scratch, acc)
            if tid == 0:
                lse_out[row] = lse
                loss[row] = acc

    @cuda.jit
    def cross_entropy_index_backward(x, t, lse, g, w, w_sum, ignore_index, keep, smooth, dx):
        # Elementwise once the row's lse is known: no reduction, no shared memory.
        tid, nt = cuda.threadIdx.x, cuda.blockDim.x
        for row in range(cuda.blockIdx.x, x.shape[0], cuda.gridDim.x):
            ti = t[row]
            if ti == ignore_index:
                for k in range(tid, x.shape[1], nt):
                    dx[row, k] = 0
            else:
                gi = g[row]
                l = lse[row]
                a = gi * (keep * w[ti] + smooth * w_sum[0])
                b = gi * smooth
                for k in range(tid, x.shape[1], nt):
                    v = a * math.exp(x[row, k] - l) - b * w[k]
                    if k == ti:
                        v -= gi * keep * w[ti]
                    dx[row, k] = v

    @cuda.jit
    def cross_entropy_prob_backward(x, p, lse, g, w, keep, smooth, dx):
        scratch = cuda.shared.array(0, T)
        tid, nt = cuda.threadIdx.x, cuda.blockDim.x
        for row in range(cuda.blockIdx.x, x.shape[0], cuda.gridDim.x):
            l = lse[row]
            s = T(0)
            for k in range(tid, x.shape[1], nt):
                s += w[k] * (keep * p[row, k] + smooth)
            s = block_sum(scratch, s)
            gi = g[row]
            for k in range(tid, x.shape[1], nt):
                dx[row, k] = gi * (math.exp(x[row, k] - l) * s - w[k] * (keep * p[row, k] + smooth))

    return dict(
        softmax_forward=softmax_forward,
        softmax_backward=softmax_backward,
        cross_entropy_index_forward=cross_entropy_index_forward,
        cross_entropy_prob_forward=cross_entropy_prob_forward,
        cross_entropy_index_backward=cross_entropy_index_backward,
        cross_entropy_prob_backward=cross_entropy_prob_backward,
    )



def _launch(name, rows, cols, dtype, *args):
    """One block per row (up to CUDA_MAX_BLOCKS), blockDim.x elements of dynamic shared memory."""
    dtype = np.dtype(dtype)
    block = threads_for_row(cols, CUDA_BLOCK, "softmax")
    grid = max(1, min(rows, CUDA_MAX_BLOCKS))
    kernel = _cuda_kernels(dtype.name)[name]
    launch_on_cupy_stream(kernel, grid, block, block * dtype.itemsize, args)


# ============================================================================ implementations
# Unchecked: inputs are validated, C-contiguous and on one device. x.size may be 0.


def _softmax_forward_impl(x, log, use_cuda):
    y = array_module(x).empty_like(x)
    if x.size == 0:
        return y
    if use_cuda:
        _launch("softmax_forward", x.shape[0], x.shape[1], x.dtype, x, y, log)
    else:
        _softmax_forward_cpu.for_work(x.size, CPU_PARALLEL_MIN_ELEMENTS)(x, y, log)
    return y


def _softmax_backward_impl(y, gy, log, use_cuda):
    gx = array_module(y).empty_like(y)
    if y.size == 0:
        return gx
    if use_cuda:
        _launch("softmax_backward", y.shape[0], y.shape[1], y.dtype, y, gy, gx, log)
    else:
        _softmax_backward_cpu.for_work(y.size, CPU_PARALLEL_MIN_ELEMENTS)(y, gy, gx, log)
    return gx


def _ones_weight(logits, weight):
    if weight is not None:
        return weight
    return array_module(logits).ones(logits.shape[1], dtype=logits.dtype)


def _cross_entropy_forward_impl(logits, target, weight, is_index, ignore_index, eps, use_cuda):
    xp = array_module(logits)
    n, c = logits.shape
    dt = logits.dtype.type
    loss = xp.empty(n, dtype=logits.dtype)
    lse = xp.empty(n, dtype=logits.dtype)
    if n == 0:
        return loss, lse
    w = _ones_weight(logits, weight)
    keep, smooth = dt(1.0 - eps), dt(eps / c)
    if is_index:
        ignore_index = int(ignore_index)
        if use_cuda:
            _launch("cross_entropy_index_forward", n, c, logits.dtype,
                    logits, target, w, ignore_index, keep, smooth, loss, lse)
        else:
            _cross_entropy_index_forward_cpu.for_work(logits.size, CPU_PARALLEL_MIN_ELEMENTS)(
                logits, target, w, ignore_index, keep, smooth, loss, lse)
    else:
        if use_cuda:
            _launch("cross_entropy_prob_forward", n, c, logits.dtype,
                    logits, target, w, keep, smooth, loss, lse)
        else:
            _cross_entropy_prob_forward_cpu.for_work(logits.size, CPU_PARALLEL_MIN_ELEMENTS)(
                logits, target, w, keep, smooth, loss, lse)
    return loss, lse


def _cross_entropy_backward_impl(logits, target, lse, grad_loss, weight, is_index, ignore_index, eps, use_cuda):
    xp = array_module(logits)
    n, c = logits.shape
    dt = logits.dtype.type
    dx = xp.empty_like(logits)
    if n == 0:
        return dx
    w = _ones_weight(logits, weight)
    keep, smooth = dt(1.0 - eps), dt(eps / c)
    if is_index:
        ignore_index = int(ignore_index)
        if use_cuda:
            w_sum = xp.sum(w, keepdims=True)  # stays on the device: no synchronisation
            _launch("cross_entropy_index_backward", n, c, logits.dtype,
                    logits, target, lse, grad_loss, w, w_sum, ignore_index, keep, smooth, dx)
        else:
            w_sum = dt(c) if weight is None else dt(w.sum(dtype=np.float64))
            _cross_entropy_index_backward_cpu.for_work(logits.size, CPU_PARALLEL_MIN_ELEMENTS)(
                logits, target, lse, grad_loss, w, w_sum, ignore_index, keep, smooth, dx)
    else:
        if use_cuda:
            _launch("cross_entropy_prob_backward", n, c, logits.dtype,
                    logits, target, lse, grad_loss, w, keep, smooth, dx)
        else:
            _cross_entropy_prob_backward_cpu.for_work(logits.size, CPU_PARALLEL_MIN_ELEMENTS)(
                logits, target, lse, grad_loss, w, keep, smooth, dx)
    return dx


# ============================================================================ public API
# softmax_forward & co. dispatch on the array type; cpu_* / cuda_* force one path (the CUDA
# path also takes NumPy arrays, which is how it runs under NUMBA_ENABLE_CUDASIM=1).


def _softmax_forward(fn, x, log, use_cuda):
    x = check_float(fn, "x", x, 2)
    return _softmax_forward_impl(x, log, is_cuda_array(x) if use_cuda is None else use_cuda)


def _softmax_backward(fn, y, gy, log, use_cuda):
    y = check_float(fn, "y", y, 2)
    check_like(fn, "gy", gy, y.shape, y.dtype, "y")
    gy = contiguous(gy)
    check_same_kind(fn, y=y, gy=gy)
    return _softmax_backward_impl(y, gy, log, is_cuda_array(y) if use_cuda is None else use_cuda)


def _cross_entropy_forward(fn, logits, target, weight, ignore_index, label_smoothing, use_cuda):
    logits, target, weight, is_index = _check_cross_entropy_args(
        fn, logits, target, weight, ignore_index, label_smoothing)
    use_cuda = is_cuda_array(logits) if use_cuda is None else use_cuda
    return _cross_entropy_forward_impl(logits, target, weight, is_index, ignore_index,
                                       float(label_smoothing), use_cuda)


def _cross_entropy_backward(fn, logits, target, lse, grad_loss, weight, ignore_index, label_smoothing, use_cuda):
    logits, target, weight, is_index = _check_cross_entropy_args(
        fn, logits, target, weight, ignore_index, label_smoothing)
    n = logits.shape[0]
    check_like(fn, "lse", lse, (n,), logits.dtype, "logits")
    check_like(fn, "grad_loss", grad_loss, (n,), logits.dtype, "logits")
    lse, grad_loss = contiguous(lse), contiguous(grad_loss)
    check_same_kind(fn, logits=logits, lse=lse, grad_loss=grad_loss)
    use_cuda = is_cuda_array(logits) if use_cuda is None else use_cuda
    return _cross_entropy_backward_impl(logits, target, lse, grad_loss, weight, is_index,
                                        ignore_index, float(label_smoothing), use_cuda)


def softmax_forward(x):
    """Softmax of each row of ``x`` (M, N) -> y (M, N). Save ``y`` for backward."""
    return _softmax_forward("softmax_forward", x, False, None)


def softmax_backward(y, gy):
    """gx = y * (gy - sum(gy * y, row)), from the saved output ``y``."""
    return _softmax_backward("softmax_backward", y, gy, False, None)


def log_softmax_forward(x):
    """Log-softmax of each row of ``x`` (M, N) -> y (M, N). Save ``y`` for backward."""
    return _softmax_forward("log_softmax_forward", x, True, None)


def log_softmax_backward(y, gy):
    """gx = gy - exp(y) * sum(gy, row), from the saved output ``y``."""
    return _softmax_backward("log_softmax_backward", y, gy, True, None)


def cross_entropy_forward(logits, target, weight=None, ignore_index=-100, label_smoothing=0.0):
    """Per-row cross-entropy of ``logits`` (N, C) -> ``(loss (N,), lse (N,))``.

    ``target`` is class indices (N,) of an integer dtype, or class probabilities (N, C) of
    logits' dtype. Semantics of ``F.cross_entropy(..., reduction='none')``; see the module
    docstring for the formulas and for how PyTorch's 'mean' reduction divides.
    """
    return _cross_entropy_forward("cross_entropy_forward", logits, target, weight, ignore_index,
                                  label_smoothing, None)


def cross_entropy_backward(logits, target, lse, grad_loss, weight=None, ignore_index=-100,
                           label_smoothing=0.0):
    """d(sum_i grad_loss_i * loss_i) / d logits, (N, C), recomputing softmax from ``lse``."""
    return _cross_entropy_backward("cross_entropy_backward", logits, target, lse, grad_loss, weight,
                                   ignore_index, label_smoothing, None)


def cpu_softmax_forward(x):
    return _softmax_forward("cpu_softmax_forward", x, False, False)


def cpu_softmax_backward(y, gy):
    return _softmax_backward("cpu_softmax_backward", y, gy, False, False)


def cpu_log_softmax_forward(x):
    return _softmax_forward("cpu_log_softmax_forward", x, True, False)


def cpu_log_softmax_backward(y, gy):
    return _softmax_backward("cpu_log_softmax_backward", y, gy, True, False)


def cpu_cross_entropy_forward(logits, target, weight=None, ignore_index=-100, label_smoothing=0.0):
    return _cross_entropy_forward("cpu_cross_entropy_forward", logits, target, weight, ignore_index,
                                  label_smoothing, False)


def cpu_cross_entropy_backward(logits, target, lse, grad_loss, weight=None, ignore_index=-100,
                               label_smoothing=0.0):
    return _cross_entropy_backward("cpu_cross_entropy_backward", logits, target, lse, grad_loss, weight,
                                   ignore_index, label_smoothing, False)


def cuda_softmax_forward(x):
    return _softmax_forward("cuda_softmax_forward", x, False, True)


def cuda_softmax_backward(y, gy):
    return _softmax_backward("cuda_softmax_backward", y, gy, False, True)


def cuda_log_softmax_forward(x):
    return _softmax_forward("cuda_log_softmax_forward", x, True, True)


def cuda_log_softmax_backward(y, gy):
    return _softmax_backward("cuda_log_softmax_backward", y, gy, True, True)


def cuda_cross_entropy_forward(logits, target, weight=None, ignore_index=-100, label_smoothing=0.0):
    return _cross_entropy_forward("cuda_cross_entropy_forward", logits, target, weight, ignore_index,
                                  label_smoothing, True)


def cuda_cross_entropy_backward(logits, target, lse, grad_loss, weight=None, ignore_index=-100,
                                label_smoothing=0.0):
    return _cross_entropy_backward("cuda_cross_entropy_backward", logits, target, lse, grad_loss, weight,
                                   ignore_index, label_smoothing, True)
