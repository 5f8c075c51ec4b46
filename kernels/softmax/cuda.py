"""Softmax, log-softmax and cross-entropy in ``numba.cuda``: one block per row.

Each kernel runs one block per row (grid-striding over rows beyond ``CUDA_MAX_BLOCKS``), each
thread striding over the row's columns, and combines the per-thread partials with a
shared-memory tree reduction (``_common.cuda_block_reduce``). Sums accumulate in the input
dtype, as GPU kernels usually do. ``numba.cuda`` is imported on the first launch, never at
import, and launches go through ``_common.launch_on_cupy_stream``.

The functions at the end have the reference's signatures and trust their inputs. They take
CuPy arrays, or NumPy arrays under Numba's CUDA simulator.
"""
from __future__ import annotations

import functools
import math

import numba
import numpy as np

from .._common import (array_module, cuda_block_reduce, launch_on_cupy_stream, numba_cuda,
                       threads_for_row)
from .reference import first_invalid_target, loop_constants  # noqa: F401  (the former: one vectorised pass)

# Most threads per block (a power of two). A row of N columns gets
# min(CUDA_BLOCK, max(32, next power of two >= N)) threads, so short rows do not idle 100 threads.
CUDA_BLOCK = 128
# Grid-stride over rows beyond this many blocks.
CUDA_MAX_BLOCKS = 65535

# ``numba.cuda``, bound on first use by _cuda_kernels. It must be a module global (not a local
# of the factory): the CUDA simulator swaps the kernels' global ``cuda`` for its fake module.
cuda = None


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

    block_sum = cuda_block_reduce("sum")  # tree reductions in shared memory, from _common
    block_max = cuda_block_reduce("max")

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


# ============================================================================ entry points
# The reference's signatures; x.size may be 0.


def _softmax(x, log):
    y = array_module(x).empty_like(x)
    if x.size:
        _launch("softmax_forward", x.shape[0], x.shape[1], x.dtype, x, y, log)
    return y


def _softmax_grad(y, gy, log):
    gx = array_module(y).empty_like(y)
    if y.size:
        _launch("softmax_backward", y.shape[0], y.shape[1], y.dtype, y, gy, gx, log)
    return gx


def softmax_forward(x):
    return _softmax(x, False)


def log_softmax_forward(x):
    return _softmax(x, True)


def softmax_backward(y, gy):
    return _softmax_grad(y, gy, False)


def log_softmax_backward(y, gy):
    return _softmax_grad(y, gy, True)


def cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing):
    n, c = logits.shape
    loss = array_module(logits).empty(n, dtype=logits.dtype)
    lse = array_module(logits).empty(n, dtype=logits.dtype)
    if n:
        w, keep, smooth = loop_constants(logits, weight, label_smoothing)
        if target.dtype.kind == "f":
            _launch("cross_entropy_prob_forward", n, c, logits.dtype, logits, target, w, keep, smooth, loss, lse)
        else:
            _launch("cross_entropy_index_forward", n, c, logits.dtype,
                    logits, target, w, ignore_index, keep, smooth, loss, lse)
    return loss, lse


def cross_entropy_backward(logits, target, lse, grad_loss, weight, ignore_index, label_smoothing):
    n, c = logits.shape
    dx = array_module(logits).empty_like(logits)
    if n:
        w, keep, smooth = loop_constants(logits, weight, label_smoothing)
        if target.dtype.kind == "f":
            _launch("cross_entropy_prob_backward", n, c, logits.dtype,
                    logits, target, lse, grad_loss, w, keep, smooth, dx)
        else:
            w_sum = array_module(w).sum(w, keepdims=True)  # stays on the device: no synchronisation
            _launch("cross_entropy_index_backward", n, c, logits.dtype,
                    logits, target, lse, grad_loss, w, w_sum, ignore_index, keep, smooth, dx)
    return dx
