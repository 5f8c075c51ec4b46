"""Layer normalisation over the last dimension (PyTorch's ``F.layer_norm`` on a 2-D view).

Shapes: ``x`` (M, N) (callers flatten the leading dims into M); ``weight`` and ``bias`` (N,)
or None; ``y`` like ``x``; ``mean`` and ``rstd`` (M,). Every array has ``x``'s dtype
(float32 or float64). C-contiguous inputs are fastest (the caller passes them so).

Forward, for each row i (biased variance, as PyTorch)::

    mean_i = (1/N) sum_j x_ij
    var_i  = (1/N) sum_j (x_ij - mean_i)^2
    rstd_i = 1 / sqrt(var_i + eps)
    xhat_ij = (x_ij - mean_i) * rstd_i
    y_ij   = xhat_ij * w_j + b_j            (w = 1, b = 0 when None)

Forward saves ``mean`` and ``rstd`` (two numbers per row); backward recomputes ``xhat`` from
``x``. Backward, with ``g_ij = gy_ij * w_j``::

    dx_ij = rstd_i * ( g_ij - (1/N) sum_k g_ik - xhat_ij * (1/N) sum_k g_ik xhat_ik )
    dw_j  = sum_i gy_ij * xhat_ij
    db_j  = sum_i gy_ij

A constant row has var = 0, so ``rstd = 1/sqrt(eps)`` and ``y = b``; with ``eps = 0`` it gives
inf/NaN, as PyTorch does.

Implementation notes: the CPU forward runs one row per ``prange`` iteration with float64
accumulators. The CPU backward splits the rows into chunks, one ``prange`` iteration per chunk;
each chunk computes its rows' ``dx`` and adds its rows' contributions to ``dw``/``db`` into its
own row of a (chunks, N) partial-sum array, summed at the end: no two threads write the same
memory. The CUDA forward and ``dx`` run one block per row with a shared-memory tree reduction
(two passes for the variance, like the CPU, rather than the cancellation-prone
E[x^2] - E[x]^2); ``dw``/``db`` run as a 2-D grid (column tiles x row chunks) of per-chunk
partial sums, reduced over chunks afterwards.

The dispatch at the end, ``forward(..., impl=None)`` / ``backward(..., impl=None)``, runs the
version for the array type (or the one ``impl`` names: "reference", "cpu", "cuda") and trusts
its inputs: ``tinymm.nn.functional.layer_norm`` checks them first, once.
"""
from __future__ import annotations

import functools
import math

import numba
import numpy as np

from ._common import (array_module, blocks_for, cuda_block_sum, launch_on_cupy_stream, numba_cuda,
                      parallel_threshold, resolve_impl, serial_and_parallel, threads_for_row)

# Arrays of at least this many elements (rows x columns) run the parallel CPU loops. Measured
# crossover: 128K-512K elements on a quiet machine, about 2M on the shared 2-core one (see
# benchmarks/RESULTS.md, "When the parallel CPU loops pay").
CPU_PARALLEL_MIN_ELEMENTS = parallel_threshold(1 << 21)

# Numba CPU kernels may reorder additions (LLVM's "reassoc" flag only: NaN, inf and signed
# zeros keep IEEE semantics). That lets LLVM vectorise the row sums, several times faster, and
# the partial sums it keeps are, if anything, more accurate than one serial sum.
_REASSOC = {"reassoc"}

# Most threads per block of the CUDA kernels (a power of two); rows of N columns get
# min(CUDA_BLOCK, max(32, next power of two >= N)).
CUDA_BLOCK = 128
# Grid-stride over rows beyond this many blocks.
CUDA_MAX_BLOCKS = 65535
# Rows summed by one CUDA thread for dweight/dbias before the partial sums are reduced.
CUDA_PARAM_GRAD_ROWS = 64

# ``numba.cuda``, bound on first use by _cuda_kernels. It must be a module global (not a local
# of the factory): the CUDA simulator swaps the kernels' global ``cuda`` for its fake module.
cuda = None


# ============================================================================ reference (NumPy)


def reference_forward(x, weight, bias, eps):
    """Returns (y, mean, rstd)."""
    mean = x.mean(axis=1)
    var = ((x - mean[:, None]) ** 2).mean(axis=1)
    rstd = 1.0 / np.sqrt(var + eps)
    y = (x - mean[:, None]) * rstd[:, None]
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y.astype(x.dtype), mean.astype(x.dtype), rstd.astype(x.dtype)


def reference_backward(gy, x, mean, rstd, weight, has_bias):
    """Returns (dx, dweight or None, dbias or None)."""
    xhat = (x - mean[:, None]) * rstd[:, None]
    g = gy * weight if weight is not None else gy
    dx = rstd[:, None] * (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True))
    dweight = (gy * xhat).sum(axis=0).astype(x.dtype) if weight is not None else None
    dbias = gy.sum(axis=0).astype(x.dtype) if has_bias else None
    return dx.astype(x.dtype), dweight, dbias


# ============================================================================ CPU (Numba)


@serial_and_parallel(fastmath=_REASSOC)
def _layer_norm_forward_cpu(x, w, b, has_w, has_b, eps, y, mean, rstd):
    m_rows, n = x.shape
    for i in numba.prange(m_rows):
        mu = 0.0  # float64 accumulators for both dtypes
        for j in range(n):
            mu += x[i, j]
        mu /= n
        var = 0.0
        for j in range(n):
            d = x[i, j] - mu
            var += d * d
        var /= n
        r = 1.0 / np.sqrt(var + eps)
        mean[i] = mu
        rstd[i] = r
        for j in range(n):
            v = (x[i, j] - mu) * r
            if has_w:
                v *= w[j]
            if has_b:
                v += b[j]
            y[i, j] = v


@serial_and_parallel(fastmath=_REASSOC)
def _layer_norm_backward_cpu(gy, x, mean, rstd, w, has_w, n_chunks, dx, dw_part, db_part):
    # dw_part/db_part: (n_chunks, N) float64, zeroed; chunk c owns row c of each.
    m_rows, n = x.shape
    rows_per_chunk = (m_rows + n_chunks - 1) // n_chunks
    for c in numba.prange(n_chunks):
        for i in range(c * rows_per_chunk, min(m_rows, (c + 1) * rows_per_chunk)):
            mu = mean[i]
            r = rstd[i]
            sg = 0.0
            sgx = 0.0
            for j in range(n):
                xhat = (x[i, j] - mu) * r
                g = gy[i, j] * w[j] if has_w else gy[i, j]
                sg += g
                sgx += g * xhat
                dw_part[c, j] += gy[i, j] * xhat
                db_part[c, j] += gy[i, j]
            sg /= n
            sgx /= n
            for j in range(n):
                xhat = (x[i, j] - mu) * r
                g = gy[i, j] * w[j] if has_w else gy[i, j]
                dx[i, j] = r * (g - sg - xhat * sgx)


def _forward_args(x, weight, bias, eps):
    """The outputs (y, mean, rstd) and the argument list both versions' forward kernels take
    (an absent weight or bias is an empty array plus a False flag)."""
    xp = array_module(x)
    y, mean, rstd = xp.empty_like(x), xp.empty(x.shape[0], dtype=x.dtype), xp.empty(x.shape[0], dtype=x.dtype)
    dummy = xp.empty(0, dtype=x.dtype)
    args = (x, dummy if weight is None else weight, dummy if bias is None else bias,
            weight is not None, bias is not None, x.dtype.type(eps), y, mean, rstd)
    return (y, mean, rstd), args


def _cpu_forward(x, weight, bias, eps):
    outputs, args = _forward_args(x, weight, bias, eps)
    if x.shape[0]:
        _layer_norm_forward_cpu.for_work(x.size, CPU_PARALLEL_MIN_ELEMENTS)(*args)
    return outputs


def _cpu_backward(gy, x, mean, rstd, weight, has_bias):
    m, n = x.shape
    need_dw = weight is not None
    dx = np.empty_like(x)
    if x.size >= CPU_PARALLEL_MIN_ELEMENTS:
        loop, n_chunks = _layer_norm_backward_cpu.parallel, max(1, min(m, 4 * numba.get_num_threads()))
    else:
        loop, n_chunks = _layer_norm_backward_cpu.serial, 1
    dw_part = np.zeros((n_chunks, n))
    db_part = np.zeros((n_chunks, n))
    if m:
        loop(gy, x, mean, rstd, weight if need_dw else np.empty(0, dtype=x.dtype), need_dw, n_chunks,
             dx, dw_part, db_part)
    dw = dw_part.sum(axis=0).astype(x.dtype) if need_dw else None
    db = db_part.sum(axis=0).astype(x.dtype) if has_bias else None
    return dx, dw, db



# ============================================================================ CUDA (Numba-CUDA)


@functools.lru_cache(maxsize=None)
def _cuda_kernels(dtype_name):
    """The CUDA kernels for one dtype, compiled by Numba on first launch.

    Row kernels launch one block per row with ``blockDim.x`` (a power of two) elements of
    dynamic shared memory as reduction scratch (the CUDA simulator allocates static shared
    arrays racily). ``numba.cuda`` is imported here, never at module import.
    """
    global cuda
    cuda = numba_cuda()

    T = numba.from_dtype(np.dtype(dtype_name))

    block_sum = cuda_block_sum()  # tree reduction in shared memory, from _common

    @cuda.jit(device=True)
    def affine(v, j, mu, r, w, b, has_w, has_b):
        v = (v - mu) * r
        if has_w:
            v *= w[j]
        if has_b:
            v += b[j]
        return v

    @cuda.jit
    def forward(x, w, b, has_w, has_b, eps, y, mean, rstd):
        # Three passes over the row (mean, variance, output). Each main loop takes four columns
        # per trip (j, j+nt, j+2nt, j+3nt) so that each thread has four independent loads in
        # flight; with one load per trip this kernel waits on memory latency, not bandwidth.
        scratch = cuda.shared.array(0, T)
        tid, nt, n = cuda.threadIdx.x, cuda.blockDim.x, x.shape[1]
        for row in range(cuda.blockIdx.x, x.shape[0], cuda.gridDim.x):
            s = T(0)
            j = tid
            while j + 3 * nt < n:
                s += (x[row, j] + x[row, j + nt]) + (x[row, j + 2 * nt] + x[row, j + 3 * nt])
                j += 4 * nt
            while j < n:
                s += x[row, j]
                j += nt
            mu = block_sum(scratch, s) / T(n)
            s = T(0)
            j = tid
            while j + 3 * nt < n:
                d0, d1 = x[row, j] - mu, x[row, j + nt] - mu
                d2, d3 = x[row, j + 2 * nt] - mu, x[row, j + 3 * nt] - mu
                s += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)
                j += 4 * nt
            while j < n:
                d0 = x[row, j] - mu
                s += d0 * d0
                j += nt
            r = T(1) / math.sqrt(block_sum(scratch, s) / T(n) + eps)
            if tid == 0:
                mean[row] = mu
                rstd[row] = r
            j = tid
            while j + 3 * nt < n:
                a0, a1, a2, a3 = x[row, j], x[row, j + nt], x[row, j + 2 * nt], x[row, j + 3 * nt]
                y[row, j] = affine(a0, j, mu, r, w, b, has_w, has_b)
                y[row, j + nt] = affine(a1, j + nt, mu, r, w, b, has_w, has_b)
                y[row, j + 2 * nt] = affine(a2, j + 2 * nt, mu, r, w, b, has_w, has_b)
                y[row, j + 3 * nt] = affine(a3, j + 3 * nt, mu, r, w, b, has_w, has_b)
                j += 4 * nt
            while j < n:
                y[row, j] = affine(x[row, j], j, mu, r, w, b, has_w, has_b)
                j += nt

    @cuda.jit
    def backward_dx(gy, x, mean, rstd, w, has_w, dx):
        scratch = cuda.shared.array(0, T)
        tid, nt = cuda.threadIdx.x, cuda.blockDim.x
        n = x.shape[1]
        for row in range(cuda.blockIdx.x, x.shape[0], cuda.gridDim.x):
            mu = mean[row]
            r = rstd[row]
            sg = T(0)
            sgx = T(0)
            for j in range(tid, n, nt):
                g = gy[row, j] * w[j] if has_w else gy[row, j]
                sg += g
                sgx += g * (x[row, j] - mu) * r
            sg = block_sum(scratch, sg) / T(n)
            sgx = block_sum(scratch, sgx) / T(n)
            for j in range(tid, n, nt):
                xhat = (x[row, j] - mu) * r
                g = gy[row, j] * w[j] if has_w else gy[row, j]
                dx[row, j] = r * (g - sg - xhat * sgx)

    @cuda.jit
    def backward_params_partial(gy, x, mean, rstd, rows_per_chunk, dw_part, db_part):
        # Thread (column j, chunk c) sums rows [c*rows_per_chunk, ...) of column j; neighbouring
        # threads read neighbouring columns of the same row, so reads are coalesced.
        j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        c = cuda.blockIdx.y
        if j < x.shape[1]:
            aw = T(0)
            ab = T(0)
            for i in range(c * rows_per_chunk, min(x.shape[0], (c + 1) * rows_per_chunk)):
                aw += gy[i, j] * (x[i, j] - mean[i]) * rstd[i]
                ab += gy[i, j]
            dw_part[c, j] = aw
            db_part[c, j] = ab

    return dict(forward=forward, backward_dx=backward_dx, backward_params_partial=backward_params_partial)


def _row_launch(kernel_name, x, *args):
    """One block per row (up to CUDA_MAX_BLOCKS), blockDim.x elements of dynamic shared memory."""
    m, n = x.shape
    block = threads_for_row(n, CUDA_BLOCK, "norm")
    kernel = _cuda_kernels(x.dtype.name)[kernel_name]
    launch_on_cupy_stream(kernel, max(1, min(m, CUDA_MAX_BLOCKS)), block, block * x.dtype.itemsize, args)


def _cuda_forward(x, weight, bias, eps):
    outputs, args = _forward_args(x, weight, bias, eps)
    if x.shape[0]:
        _row_launch("forward", x, *args)
    return outputs


def _cuda_backward(gy, x, mean, rstd, weight, has_bias):
    xp = array_module(x)
    m, n = x.shape
    need_dw = weight is not None
    dx = xp.empty_like(x)
    if m == 0:
        zeros = xp.zeros(n, dtype=x.dtype)
        return dx, (zeros if need_dw else None), (zeros.copy() if has_bias else None)
    _row_launch("backward_dx", x, gy, x, mean, rstd, weight if need_dw else xp.empty(0, dtype=x.dtype), need_dw, dx)
    if not (need_dw or has_bias):
        return dx, None, None
    n_chunks = min(blocks_for(m, CUDA_PARAM_GRAD_ROWS), CUDA_MAX_BLOCKS)
    rows_per_chunk = -(-m // n_chunks)
    dw_part = xp.empty((n_chunks, n), dtype=x.dtype)
    db_part = xp.empty((n_chunks, n), dtype=x.dtype)
    block = threads_for_row(n, CUDA_BLOCK, "norm")
    kernel = _cuda_kernels(x.dtype.name)["backward_params_partial"]
    launch_on_cupy_stream(kernel, (blocks_for(n, block), n_chunks), block, 0,
                          (gy, x, mean, rstd, rows_per_chunk, dw_part, db_part))
    return dx, (dw_part.sum(axis=0) if need_dw else None), (db_part.sum(axis=0) if has_bias else None)


# ============================================================================ dispatch


_FORWARD = {"reference": reference_forward, "cpu": _cpu_forward, "cuda": _cuda_forward}
_BACKWARD = {"reference": reference_backward, "cpu": _cpu_backward, "cuda": _cuda_backward}


def forward(x, weight=None, bias=None, eps=1e-5, impl=None):
    """LayerNorm of each row of ``x`` (M, N) -> ``(y (M, N), mean (M,), rstd (M,))``.

    Save ``x``, ``mean``, ``rstd`` (and ``weight``) for backward.
    """
    return _FORWARD[resolve_impl(impl, x)](x, weight, bias, eps)


def backward(gy, x, mean, rstd, weight=None, has_bias=True, impl=None):
    """Gradients ``(dx (M, N), dweight (N,) or None, dbias (N,) or None)``.

    ``dweight`` is computed when ``weight`` is given, ``dbias`` when ``has_bias`` is True.
    """
    return _BACKWARD[resolve_impl(impl, x)](gy, x, mean, rstd, weight, has_bias)
