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

Implementation notes: the CPU kernels run one row per ``prange`` iteration and accumulate
sums in float64 for both dtypes. The CUDA kernels run one block per row (grid-striding over
rows), each thread striding over the row's columns, and combine the per-thread partials with a
shared-memory tree reduction; they accumulate in the input dtype, as GPU kernels usually do.
"""
from __future__ import annotations

import functools
import math

import numba
import numpy as np

from ._common import array_module, check_same_kind, is_cuda_array

# Most threads per block of the CUDA row kernels (a power of two). A row of N columns gets
# min(CUDA_BLOCK, max(32, next power of two >= N)) threads, so short rows do not idle 100 threads.
CUDA_BLOCK = 128
# Grid-stride over rows beyond this many blocks.
CUDA_MAX_BLOCKS = 65535

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Numba CPU kernels may reorder additions (LLVM's "reassoc" flag only: NaN, inf and signed
# zeros keep IEEE semantics). That lets LLVM vectorise the row sums, several times faster, and
# the partial sums it keeps are, if anything, more accurate than one serial sum.
_REASSOC = {"reassoc"}

# ``numba.cuda``, bound on first use by _cuda_kernels. It must be a module global (not a local
# of the factory): the CUDA simulator swaps the kernels' global ``cuda`` for its fake module.
cuda = None


# ============================================================================ input checks


def _check_float(fn, name, a, ndim):
    """``a`` is a float32/float64 array of ``ndim`` dims; returns it C-contiguous."""
    if not (hasattr(a, "dtype") and hasattr(a, "shape")):
        raise TypeError(f"{fn}: {name} must be a NumPy or CuPy array, got {type(a).__name__}")
    if a.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{fn}: {name} has dtype {a.dtype}, expected float32 or float64")
    if a.ndim != ndim:
        raise ValueError(f"{fn}: {name} has {a.ndim} dims (shape {tuple(a.shape)}), expected {ndim}")
    return array_module(a).ascontiguousarray(a)


def _check_like(fn, name, a, ref_name, ref, shape):
    """``a`` is an array of ``ref``'s dtype and the given shape; returns it C-contiguous."""
    if not (hasattr(a, "dtype") and hasattr(a, "shape")):
        raise TypeError(f"{fn}: {name} must be a NumPy or CuPy array, got {type(a).__name__}")
    if a.dtype != ref.dtype:
        raise TypeError(f"{fn}: {name} has dtype {a.dtype}, expected {ref.dtype} to match {ref_name}")
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{fn}: {name} has shape {tuple(a.shape)}, expected {tuple(shape)} to match {ref_name}")
    return array_module(a).ascontiguousarray(a)


def _check_cross_entropy_args(fn, logits, target, weight, ignore_index, label_smoothing):
    """Shared checks of cross_entropy_forward/backward. Returns (logits, target, weight, is_index)."""
    logits = _check_float(fn, "logits", logits, 2)
    n, c = logits.shape
    if c < 1:
        raise ValueError(f"{fn}: logits has shape {tuple(logits.shape)}, expected at least one class")
    if not (hasattr(target, "dtype") and hasattr(target, "shape")):
        raise TypeError(f"{fn}: target must be a NumPy or CuPy array, got {type(target).__name__}")
    xp = array_module(logits)
    if target.dtype.kind in "iu":
        if tuple(target.shape) != (n,):
            raise ValueError(
                f"{fn}: target has shape {tuple(target.shape)}, expected ({n},) class indices "
                f"to match logits' first dim"
            )
        is_index = True
        target = xp.ascontiguousarray(target)
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
        target = xp.ascontiguousarray(target)
    else:
        raise TypeError(
            f"{fn}: target has dtype {target.dtype}, expected an integer dtype (class indices) "
            f"or {logits.dtype} (class probabilities)"
        )
    if weight is not None:
        weight = _check_like(fn, "weight", weight, "logits", logits, (c,))
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"{fn}: ignore_index must be an int, got {type(ignore_index).__name__}")
    if not (0.0 <= float(label_smoothing) <= 1.0):
        raise ValueError(f"{fn}: label_smoothing is {label_smoothing}, expected a value in [0, 1]")
    check_same_kind(fn, logits=logits, target=target, weight=weight)
    if is_index and n > 0:
        # One vectorised pass over N integers; on a GPU this synchronises once (like PyTorch's
        # device-side assert, but with a readable message).
        t = target.astype(np.int64) if target.dtype.kind == "u" else target
        bad = (t != ignore_index) & ((t < 0) | (t >= c))
        if bool(bad.any()):
            i = int(xp.argmax(bad))
            raise ValueError(
                f"{fn}: target[{i}] is {int(t[i])}, expected a class index in [0, {c}) "
                f"or ignore_index ({ignore_index})"
            )
    return logits, target, weight, is_index


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


@numba.njit(parallel=True, cache=True, fastmath=_REASSOC)
def _softmax_forward_cpu(x, y, log):
    m_rows, n = x.shape
    for i in numba.prange(m_rows):
        m = x[i, 0]
        for j in range(1, n):
            if x[i, j] > m:
                m = x[i, j]
        s = 0.0  # float64 accumulator for both dtypes
        if log:
            for j in range(n):
                s += np.exp(x[i, j] - m)
            lse = m + np.log(s)
            for j in range(n):
                y[i, j] = x[i, j] - lse
        else:
            for j in range(n):  # one exp per element: keep exp(x - m) in y, scale after
                e = np.exp(x[i, j] - m)
                y[i, j] = e
                s += e
            inv = 1.0 / s
            for j in range(n):
                y[i, j] *= inv


@numba.njit(parallel=True, cache=True, fastmath=_REASSOC)
def _softmax_backward_cpu(y, gy, gx, log):
    m_rows, n = y.shape
    for i in numba.prange(m_rows):
        s = 0.0
        if log:
            for j in range(n):
                s += gy[i, j]
            for j in range(n):
                gx[i, j] = gy[i, j] - np.exp(y[i, j]) * s
        else:
            for j in range(n):
                s += gy[i, j] * y[i, j]
            for j in range(n):
                gx[i, j] = y[i, j] * (gy[i, j] - s)


@numba.njit(inline="always")
def _row_lse_cpu(x, i):
    n = x.shape[1]
    m = x[i, 0]
    for j in range(1, n):
        if x[i, j] > m:
            m = x[i, j]
    s = 0.0
    for j in range(n):
        s += np.exp(x[i, j] - m)
    return m + np.log(s)


@numba.njit(parallel=True, cache=True, fastmath=_REASSOC)
def _cross_entropy_index_forward_cpu(x, t, w, ignore_index, keep, smooth, loss, lse):
    # keep = 1 - eps, smooth = eps / C
    n_rows, c = x.shape
    for i in numba.prange(n_rows):
        l = _row_lse_cpu(x, i)
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


@numba.njit(parallel=True, cache=True, fastmath=_REASSOC)
def _cross_entropy_prob_forward_cpu(x, p, w, keep, smooth, loss, lse):
    n_rows, c = x.shape
    for i in numba.prange(n_rows):
        l = _row_lse_cpu(x, i)
        lse[i] = l
        acc = 0.0
        for k in range(c):
            acc += w[k] * (keep * p[i, k] + smooth) * (l - x[i, k])
        loss[i] = acc


@numba.njit(parallel=True, cache=True, fastmath=_REASSOC)
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
                dx[i, k] = a * np.exp(x[i, k] - l) - b * w[k]
            dx[i, ti] -= gi * keep * w[ti]


@numba.njit(parallel=True, cache=True, fastmath=_REASSOC)
def _cross_entropy_prob_backward_cpu(x, p, lse, g, w, keep, smooth, dx):
    n_rows, c = x.shape
    for i in numba.prange(n_rows):
        l = lse[i]
        s = 0.0
        for k in range(c):
            s += w[k] * (keep * p[i, k] + smooth)
        gi = g[i]
        for k in range(c):
            dx[i, k] = gi * (np.exp(x[i, k] - l) * s - w[k] * (keep * p[i, k] + smooth))


# ============================================================================ CUDA (Numba-CUDA)


def _block_for(n):
    """Threads per block for rows of length n: a power of two in [32, CUDA_BLOCK]."""
    b = 32
    while b < n and b < CUDA_BLOCK:
        b *= 2
    return min(b, CUDA_BLOCK)


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
    from numba import cuda

    T = numba.from_dtype(np.dtype(dtype_name))

    @cuda.jit(device=True)
    def block_sum(scratch, v):
        # Tree reduction in shared memory; every thread of the block must call this.
        tid = cuda.threadIdx.x
        scratch[tid] = v
        cuda.syncthreads()
        stride = cuda.blockDim.x // 2
        while stride > 0:
            if tid < stride:
                scratch[tid] += scratch[tid + stride]
            cuda.syncthreads()
            stride //= 2
        total = scratch[0]
        cuda.syncthreads()  # scratch may be reused right after
        return total

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


def _launch_on_cupy_stream(kernel, grid, block, shared_bytes, args):
    """Launch ``kernel`` without a host synchronisation, on CuPy's current stream.

    Given a CuPy array, Numba wraps it through ``__cuda_array_interface__`` and by default
    synchronises the stream that the interface names, once per array per launch: a host-GPU
    round trip that drains the GPU's queue on every call. We wrap the arrays ourselves without
    that sync and launch on CuPy's current stream, which keeps the order with CuPy's own work.
    NumPy arguments (the CUDA simulator) are passed as they are.
    """
    if not any(is_cuda_array(a) for a in args):
        kernel[grid, block, 0, shared_bytes](*args)
        return
    import cupy

    ptr = cupy.cuda.get_current_stream().ptr
    # CuPy's default (null) stream is CUDA's legacy default stream, Numba's stream 0. Launching
    # on an external-stream wrapper costs far more host time (measured on an H200: about 0.2 ms more per launch).
    stream = 0 if ptr == 0 else cuda.external_stream(ptr)
    args = [cuda.as_cuda_array(a, sync=False) if is_cuda_array(a) else a for a in args]
    kernel[grid, block, stream, shared_bytes](*args)


def _launch(name, rows, cols, dtype, *args):
    """One block per row (up to CUDA_MAX_BLOCKS), blockDim.x elements of dynamic shared memory."""
    dtype = np.dtype(dtype)
    block = _block_for(cols)
    if block < 1 or block & (block - 1):
        raise ValueError(f"softmax: CUDA_BLOCK must be a power of two, got {CUDA_BLOCK}")
    grid = max(1, min(rows, CUDA_MAX_BLOCKS))
    kernel = _cuda_kernels(dtype.name)[name]
    _launch_on_cupy_stream(kernel, grid, block, block * dtype.itemsize, args)


# ============================================================================ implementations
# Unchecked: inputs are validated, C-contiguous and on one device. x.size may be 0.


def _softmax_forward_impl(x, log, use_cuda):
    y = array_module(x).empty_like(x)
    if x.size == 0:
        return y
    if use_cuda:
        _launch("softmax_forward", x.shape[0], x.shape[1], x.dtype, x, y, log)
    else:
        _softmax_forward_cpu(x, y, log)
    return y


def _softmax_backward_impl(y, gy, log, use_cuda):
    gx = array_module(y).empty_like(y)
    if y.size == 0:
        return gx
    if use_cuda:
        _launch("softmax_backward", y.shape[0], y.shape[1], y.dtype, y, gy, gx, log)
    else:
        _softmax_backward_cpu(y, gy, gx, log)
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
            _cross_entropy_index_forward_cpu(logits, target, w, ignore_index, keep, smooth, loss, lse)
    else:
        if use_cuda:
            _launch("cross_entropy_prob_forward", n, c, logits.dtype,
                    logits, target, w, keep, smooth, loss, lse)
        else:
            _cross_entropy_prob_forward_cpu(logits, target, w, keep, smooth, loss, lse)
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
            w_sum = dt(w.sum(dtype=np.float64))
            _cross_entropy_index_backward_cpu(logits, target, lse, grad_loss, w, w_sum,
                                              ignore_index, keep, smooth, dx)
    else:
        if use_cuda:
            _launch("cross_entropy_prob_backward", n, c, logits.dtype,
                    logits, target, lse, grad_loss, w, keep, smooth, dx)
        else:
            _cross_entropy_prob_backward_cpu(logits, target, lse, grad_loss, w, keep, smooth, dx)
    return dx


# ============================================================================ public API
# softmax_forward & co. dispatch on the array type; cpu_* / cuda_* force one path (the CUDA
# path also takes NumPy arrays, which is how it runs under NUMBA_ENABLE_CUDASIM=1).


def _softmax_forward(fn, x, log, use_cuda):
    x = _check_float(fn, "x", x, 2)
    return _softmax_forward_impl(x, log, is_cuda_array(x) if use_cuda is None else use_cuda)


def _softmax_backward(fn, y, gy, log, use_cuda):
    y = _check_float(fn, "y", y, 2)
    gy = _check_like(fn, "gy", gy, "y", y, y.shape)
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
    lse = _check_like(fn, "lse", lse, "logits", logits, (n,))
    grad_loss = _check_like(fn, "grad_loss", grad_loss, "logits", logits, (n,))
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
