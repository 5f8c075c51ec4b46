"""Layer normalisation over the last dimension (PyTorch's ``F.layer_norm`` on a 2-D view).

Shapes: ``x`` (M, N) (callers flatten the leading dims into M); ``weight`` and ``bias`` (N,)
or None; ``y`` like ``x``; ``mean`` and ``rstd`` (M,). Every array has ``x``'s dtype
(float32 or float64). Inputs that are not C-contiguous are copied once.

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
memory. Each CPU loop is compiled twice, serial and parallel; arrays of fewer than
``CPU_PARALLEL_MIN_ELEMENTS`` elements take the serial one (and the backward one chunk), as
waking the thread pool costs more than it saves there. The CUDA forward and ``dx`` run one
block per row with a shared-memory tree reduction (two passes for the variance, like the CPU,
rather than the cancellation-prone E[x^2] - E[x]^2); ``dw``/``db`` run as a 2-D grid (column
tiles x row chunks) of per-chunk partial sums, reduced over chunks afterwards.
"""
from __future__ import annotations

import functools
import math

import numba
import numpy as np

from ._common import (array_module, numba_cuda, parallel_threshold, blocks_for, check_array, check_dtype, check_float, check_same_kind,
                      check_shape, contiguous, cuda_block_sum, is_cuda_array, launch_on_cupy_stream,
                      serial_and_parallel, threads_for_row)

# Most threads per block of the CUDA kernels (a power of two); rows of N columns get
# min(CUDA_BLOCK, max(32, next power of two >= N)).
CUDA_BLOCK = 128
# Grid-stride over rows beyond this many blocks.
CUDA_MAX_BLOCKS = 65535
# Rows summed by one CUDA thread for dweight/dbias before the partial sums are reduced.
CUDA_PARAM_GRAD_ROWS = 64

# Arrays of at least this many elements (rows x columns) run the parallel CPU loops, smaller
# ones the serial loops. Measured by `python -m benchmarks.kernels` (its crossover table: each
# call after 5 ms idle, float32) on this project's 2-core AMD EPYC, which other jobs share.
# Quiet machine: the parallel loops pay from 128K-512K elements (backward 256x512: serial 0.25
# ms, parallel 0.17; forward 512x1024: 0.58 vs 0.31). Busy machine: a parallel call that finds
# the other core taken waits out a scheduler slice, 3-7 ms whatever the size, so the parallel
# *mean* stays above the serial one up to about 2M elements (1024x1024: forward 0.92 vs 4.76
# ms, backward 1.73 vs 4.59) and mostly wins beyond (backward 2048x1024: 4.94 vs 3.21 ms;
# 4096x1024: 10.2 vs 7.4). 2M keeps every small and medium array, a training step's among
# them, serial; on a dedicated machine 1 << 17 would do.
CPU_PARALLEL_MIN_ELEMENTS = parallel_threshold(1 << 21)  # env TINYMM_PARALLEL_MIN_ELEMENTS overrides

# Numba CPU kernels may reorder additions (LLVM's "reassoc" flag only: NaN, inf and signed
# zeros keep IEEE semantics). That lets LLVM vectorise the row sums, several times faster, and
# the partial sums it keeps are, if anything, more accurate than one serial sum.
_REASSOC = {"reassoc"}

# ``numba.cuda``, bound on first use by _cuda_kernels. It must be a module global (not a local
# of the factory): the CUDA simulator swaps the kernels' global ``cuda`` for its fake module.
cuda = None


# ============================================================================ input checks


def _check_like(fn, name, a, shape, what):
    """``a`` is an array of the given shape (``what`` says why); its dtype is checked after
    every shape. Returns it C-contiguous."""
    check_array(fn, name, a, or_none=True)
    check_shape(fn, name, a, shape, what)
    return contiguous(a)


def _check_dtype(fn, x, **arrays):
    for name, a in arrays.items():
        if a is not None:
            check_dtype(fn, name, a, x.dtype, "x")


def _check_forward(fn, x, weight, bias, eps):
    x = check_float(fn, "x", x, 2)
    n = x.shape[1]
    if n < 1:
        raise ValueError(f"{fn}: x has shape {tuple(x.shape)}, expected a last dim of at least 1")
    if weight is not None:
        weight = _check_like(fn, "weight", weight, (n,), "x's last dim")
    if bias is not None:
        bias = _check_like(fn, "bias", bias, (n,), "x's last dim")
    _check_dtype(fn, x, weight=weight, bias=bias)
    check_same_kind(fn, x=x, weight=weight, bias=bias)
    eps = float(eps)
    if not eps >= 0.0:
        raise ValueError(f"{fn}: eps is {eps}, expected a number >= 0")
    return x, weight, bias, eps


def _check_backward(fn, gy, x, mean, rstd, weight, has_bias):
    x = check_float(fn, "x", x, 2)
    m, n = x.shape
    if n < 1:
        raise ValueError(f"{fn}: x has shape {tuple(x.shape)}, expected a last dim of at least 1")
    gy = _check_like(fn, "gy", gy, (m, n), "x")
    mean = _check_like(fn, "mean", mean, (m,), "x's first dim")
    rstd = _check_like(fn, "rstd", rstd, (m,), "x's first dim")
    if weight is not None:
        weight = _check_like(fn, "weight", weight, (n,), "x's last dim")
    _check_dtype(fn, x, gy=gy, mean=mean, rstd=rstd, weight=weight)
    check_same_kind(fn, gy=gy, x=x, mean=mean, rstd=rstd, weight=weight)
    if not isinstance(has_bias, (bool, np.bool_)):
        raise TypeError(f"{fn}: has_bias must be a bool, got {type(has_bias).__name__}")
    return gy, x, mean, rstd, weight, bool(has_bias)


# ============================================================================ reference (NumPy)


def reference_layer_norm_forward(x, weight=None, bias=None, eps=1e-5):
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


def reference_layer_norm_backward(gy, x, mean, rstd, weight=None, has_bias=True):
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


# ============================================================================ implementations
# Unchecked: inputs are validated, C-contiguous and on one device.


def _forward_impl(x, weight, bias, eps, use_cuda):
    xp = array_module(x)
    m, n = x.shape
    y = xp.empty_like(x)
    mean = xp.empty(m, dtype=x.dtype)
    rstd = xp.empty(m, dtype=x.dtype)
    if m == 0:
        return y, mean, rstd
    dummy = xp.empty(0, dtype=x.dtype)
    w = dummy if weight is None else weight
    b = dummy if bias is None else bias
    eps = x.dtype.type(eps)
    if use_cuda:
        _row_launch("forward", x, x, w, b, weight is not None, bias is not None, eps, y, mean, rstd)
    else:
        _layer_norm_forward_cpu.for_work(x.size, CPU_PARALLEL_MIN_ELEMENTS)(
            x, w, b, weight is not None, bias is not None, eps, y, mean, rstd)
    return y, mean, rstd


def _backward_impl(gy, x, mean, rstd, weight, has_bias, use_cuda):
    xp = array_module(x)
    m, n = x.shape
    need_dw = weight is not None
    dx = xp.empty_like(x)
    if m == 0:
        zeros = xp.zeros(n, dtype=x.dtype)
        return dx, (zeros if need_dw else None), (zeros.copy() if has_bias else None)
    w = weight if need_dw else xp.empty(0, dtype=x.dtype)
    if use_cuda:
        _row_launch("backward_dx", x, gy, x, mean, rstd, w, need_dw, dx)
        if not (need_dw or has_bias):
            return dx, None, None
        n_chunks = blocks_for(m, CUDA_PARAM_GRAD_ROWS)
        n_chunks = min(n_chunks, CUDA_MAX_BLOCKS)
        rows_per_chunk = -(-m // n_chunks)
        dw_part = xp.empty((n_chunks, n), dtype=x.dtype)
        db_part = xp.empty((n_chunks, n), dtype=x.dtype)
        block = threads_for_row(n, CUDA_BLOCK, "norm")
        kernel = _cuda_kernels(x.dtype.name)["backward_params_partial"]
        launch_on_cupy_stream(kernel, (blocks_for(n, block), n_chunks), block, 0,
                              (gy, x, mean, rstd, rows_per_chunk, dw_part, db_part))
        dw, db = dw_part.sum(axis=0), db_part.sum(axis=0)
    else:
        if x.size >= CPU_PARALLEL_MIN_ELEMENTS:
            loop, n_chunks = _layer_norm_backward_cpu.parallel, max(1, min(m, 4 * numba.get_num_threads()))
        else:
            loop, n_chunks = _layer_norm_backward_cpu.serial, 1
        dw_part = np.zeros((n_chunks, n))
        db_part = np.zeros((n_chunks, n))
        loop(gy, x, mean, rstd, w, need_dw, n_chunks, dx, dw_part, db_part)
        dw = dw_part.sum(axis=0).astype(x.dtype)
        db = db_part.sum(axis=0).astype(x.dtype)
    return dx, (dw if need_dw else None), (db if has_bias else None)


# ============================================================================ public API
# layer_norm_* dispatch on the array type; cpu_* / cuda_* force one path (the CUDA path also
# takes NumPy arrays, which is how it runs under NUMBA_ENABLE_CUDASIM=1).


def _forward(fn, x, weight, bias, eps, use_cuda):
    x, weight, bias, eps = _check_forward(fn, x, weight, bias, eps)
    return _forward_impl(x, weight, bias, eps, is_cuda_array(x) if use_cuda is None else use_cuda)


def _backward(fn, gy, x, mean, rstd, weight, has_bias, use_cuda):
    gy, x, mean, rstd, weight, has_bias = _check_backward(fn, gy, x, mean, rstd, weight, has_bias)
    return _backward_impl(gy, x, mean, rstd, weight, has_bias, is_cuda_array(x) if use_cuda is None else use_cuda)


def layer_norm_forward(x, weight=None, bias=None, eps=1e-5):
    """LayerNorm of each row of ``x`` (M, N) -> ``(y (M, N), mean (M,), rstd (M,))``.

    Save ``x``, ``mean``, ``rstd`` (and ``weight``) for backward.
    """
    return _forward("layer_norm_forward", x, weight, bias, eps, None)


def layer_norm_backward(gy, x, mean, rstd, weight=None, has_bias=True):
    """Gradients ``(dx (M, N), dweight (N,) or None, dbias (N,) or None)``.

    ``dweight`` is computed when ``weight`` is given, ``dbias`` when ``has_bias`` is True.
    """
    return _backward("layer_norm_backward", gy, x, mean, rstd, weight, has_bias, None)


def cpu_layer_norm_forward(x, weight=None, bias=None, eps=1e-5):
    return _forward("cpu_layer_norm_forward", x, weight, bias, eps, False)


def cpu_layer_norm_backward(gy, x, mean, rstd, weight=None, has_bias=True):
    return _backward("cpu_layer_norm_backward", gy, x, mean, rstd, weight, has_bias, False)


def cuda_layer_norm_forward(x, weight=None, bias=None, eps=1e-5):
    return _forward("cuda_layer_norm_forward", x, weight, bias, eps, True)


def cuda_layer_norm_backward(gy, x, mean, rstd, weight=None, has_bias=True):
    return _backward("cuda_layer_norm_backward", gy, x, mean, rstd, weight, has_bias, True)
