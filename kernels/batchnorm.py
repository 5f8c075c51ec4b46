"""Batch normalisation per channel over (N, C, S): fused forward (with the running-statistics
update) and backward.

This family is its own file rather than a part of ``kernels/norm.py`` beside LayerNorm (as
issue 12 first put it) because ``norm.py`` was being restructured at the same time; the two
share nothing but the idea (LayerNorm normalises rows, batch norm normalises columns).

Shapes: ``x`` (N, C, S), C-contiguous, float32 or float64 (callers view (N, C) as (N, C, 1)
and (N, C, *spatial) as (N, C, prod(spatial))); ``weight``, ``bias``, ``running_mean``,
``running_var`` (C,) or None; ``y`` like ``x``; ``mean`` and ``rstd`` (C,). Every array has
``x``'s dtype. M = N * S values per channel.

Forward with batch statistics (training, or no running statistics at all)::

    mean_c = (1/M) sum_{n,s} x_ncs
    var_c  = (1/M) sum_{n,s} (x_ncs - mean_c)^2           (biased: used to normalise)
    rstd_c = 1 / sqrt(var_c + eps)
    y_ncs  = (x_ncs - mean_c) * rstd_c * w_c + b_c         (w = 1, b = 0 when None)

and, when running statistics are given, updated in place (PyTorch's rule: the *unbiased*
variance goes into the running estimate)::

    running_mean_c = (1 - momentum) * running_mean_c + momentum * mean_c
    running_var_c  = (1 - momentum) * running_var_c  + momentum * var_c * M / (M - 1)

(the caller turns PyTorch's ``momentum=None``, a cumulative average, into momentum =
1 / num_batches_tracked). Forward with running statistics (eval): mean_c = running_mean_c,
rstd_c = 1 / sqrt(running_var_c + eps), nothing updated.

Forward saves ``mean`` and ``rstd`` (two numbers per channel); backward recomputes
``xhat = (x - mean) * rstd`` from ``x``. Backward, with sums over n and s::

    dw_c = sum gy_ncs * xhat_ncs        db_c = sum gy_ncs
    batch statistics:   dx_ncs = w_c * rstd_c * (gy_ncs - db_c / M - xhat_ncs * dw_c / M)
    running statistics: dx_ncs = w_c * rstd_c * gy_ncs      (the statistics are constants)

Implementation notes: the CPU loops run one channel per ``prange`` iteration (two passes for
the variance, float64 accumulators), so no two threads write the same memory; each is
compiled serial and parallel and arrays under ``CPU_PARALLEL_MIN_ELEMENTS`` run the serial
one. (N, C) inputs (S = 1) take serial loops over the rows in memory order instead. The CUDA kernels run one block per channel with a shared-memory tree reduction
(``_common.cuda_block_sum``); thread 0 writes the channel's statistics and running update.

Dispatch: ``forward``/``backward`` take ``impl=None`` (by array type: CuPy -> "cuda", anything
else -> "cpu") or "reference" / "cpu" / "cuda" (the CUDA kernels also take NumPy arrays: the
simulator). Inputs are trusted: ``tinymm.nn.functional.batch_norm`` checks them.
"""
from __future__ import annotations

import functools
import math

import numba
import numpy as np

from ._common import (array_module, contiguous, cuda_block_sum, resolve_impl, launch_on_cupy_stream, numba_cuda,
                      parallel_threshold, serial_and_parallel, threads_for_row)

# Most threads per block of the CUDA kernels (a power of two; one block per channel).
CUDA_BLOCK = 256

# Arrays of at least this many elements run the parallel CPU loops. Not measured for this
# family on its own: kernels/norm.py's crossover on this project's busy 2-core machine.
CPU_PARALLEL_MIN_ELEMENTS = parallel_threshold(1 << 21)  # env TINYMM_PARALLEL_MIN_ELEMENTS overrides

# Numba CPU loops may reorder additions (LLVM's "reassoc" only: NaN and inf keep IEEE
# semantics), which lets the channel sums vectorise.
_REASSOC = {"reassoc"}

# ``numba.cuda``, bound on first use by _cuda_kernels (the simulator swaps this global).
cuda = None


# ============================================================================ reference (NumPy)


def reference_forward(x, weight=None, bias=None, running_mean=None, running_var=None, training=True,
                      momentum=0.1, eps=1e-5):
    """Returns ``(y, mean, rstd)``; updates ``running_mean``/``running_var`` in place when
    ``training`` and they are given."""
    if training or running_mean is None:
        m = x.shape[0] * x.shape[2]
        mean = x.mean(axis=(0, 2))
        var = ((x - mean[None, :, None]) ** 2).mean(axis=(0, 2))
        if training and running_mean is not None:
            running_mean[...] = (1 - momentum) * running_mean + momentum * mean
            running_var[...] = (1 - momentum) * running_var + momentum * var * m / (m - 1)
    else:
        mean, var = running_mean, running_var
    rstd = 1.0 / np.sqrt(var + eps)
    y = (x - mean[None, :, None]) * rstd[None, :, None]
    if weight is not None:
        y = y * weight[None, :, None]
    if bias is not None:
        y = y + bias[None, :, None]
    return y.astype(x.dtype), mean.astype(x.dtype), rstd.astype(x.dtype)


def reference_backward(gy, x, mean, rstd, weight=None, batch_stats=True):
    """Returns ``(dx, dweight, dbias)`` (all three, whatever the caller needs)."""
    m = x.shape[0] * x.shape[2]
    xhat = (x - mean[None, :, None]) * rstd[None, :, None]
    dw = (gy * xhat).sum(axis=(0, 2))
    db = gy.sum(axis=(0, 2))
    k = rstd if weight is None else rstd * weight
    if batch_stats:
        dx = k[None, :, None] * (gy - db[None, :, None] / m - xhat * dw[None, :, None] / m)
    else:
        dx = k[None, :, None] * gy
    return dx.astype(x.dtype), dw.astype(x.dtype), db.astype(x.dtype)


# ============================================================================ CPU (Numba)


@serial_and_parallel(fastmath=_REASSOC)
def _forward_cpu(x, w, b, has_w, has_b, batch_stats, rm, rv, update, momentum, eps, y, mean, rstd):
    n_rows, n_ch, n_sp = x.shape
    m = n_rows * n_sp
    for c in numba.prange(n_ch):
        if batch_stats:
            mu = 0.0  # float64 accumulators for both dtypes
            for n in range(n_rows):
                for s in range(n_sp):
                    mu += x[n, c, s]
            mu /= m
            var = 0.0
            for n in range(n_rows):
                for s in range(n_sp):
                    d = x[n, c, s] - mu
                    var += d * d
            var /= m
            if update:
                rm[c] = (1.0 - momentum) * rm[c] + momentum * mu
                rv[c] = (1.0 - momentum) * rv[c] + momentum * var * m / (m - 1)
        else:
            mu = rm[c]
            var = rv[c]
        r = 1.0 / np.sqrt(var + eps)
        mean[c] = mu
        rstd[c] = r
        # y = x * scale + shift: one multiply-add per element (PyTorch's CPU kernel does the same)
        scale = r * w[c] if has_w else r
        shift = b[c] - mu * scale if has_b else -mu * scale
        for n in range(n_rows):
            for s in range(n_sp):
                y[n, c, s] = x[n, c, s] * scale + shift


@serial_and_parallel(fastmath=_REASSOC)
def _backward_cpu(gy, x, mean, rstd, w, has_w, batch_stats, dx, dw, db):
    n_rows, n_ch, n_sp = x.shape
    m = n_rows * n_sp
    for c in numba.prange(n_ch):
        mu = mean[c]
        r = rstd[c]
        sg = 0.0
        sgx = 0.0
        for n in range(n_rows):
            for s in range(n_sp):
                g = gy[n, c, s]
                sg += g
                sgx += g * (x[n, c, s] - mu)
        sgx *= r  # sum gy * xhat
        dw[c] = sgx
        db[c] = sg
        k = r * w[c] if has_w else r
        if batch_stats:
            a = sg / m
            bx = sgx / m * r  # xhat * bx = (x - mu) * r * sgx / m
            for n in range(n_rows):
                for s in range(n_sp):
                    dx[n, c, s] = k * (gy[n, c, s] - a - (x[n, c, s] - mu) * bx)
        else:
            for n in range(n_rows):
                for s in range(n_sp):
                    dx[n, c, s] = k * gy[n, c, s]


# (N, C) inputs (S = 1): the channel loops above would read x with a stride of C. These walk
# the rows in memory order instead, with per-channel float64 accumulators, so the inner loop
# over channels is contiguous and vectorises (measured 10x faster at 256x512). Serial: rows
# of one batch are few, and the threads would need a partial sum each.


@numba.njit(cache=True, fastmath=_REASSOC, error_model="numpy", nogil=True)
def _forward_rows_cpu(x, w, b, has_w, has_b, batch_stats, rm, rv, update, momentum, eps, y, mean, rstd):
    n_rows, n_ch = x.shape
    mu = np.zeros(n_ch)
    var = np.zeros(n_ch)
    if batch_stats:
        for n in range(n_rows):
            for c in range(n_ch):
                mu[c] += x[n, c]
        mu /= n_rows
        for n in range(n_rows):
            for c in range(n_ch):
                d = x[n, c] - mu[c]
                var[c] += d * d
        var /= n_rows
        if update:
            for c in range(n_ch):
                rm[c] = (1.0 - momentum) * rm[c] + momentum * mu[c]
                rv[c] = (1.0 - momentum) * rv[c] + momentum * var[c] * n_rows / (n_rows - 1)
    else:
        for c in range(n_ch):
            mu[c] = rm[c]
            var[c] = rv[c]
    scale = 1.0 / np.sqrt(var + eps)
    for c in range(n_ch):
        mean[c] = mu[c]
        rstd[c] = scale[c]
    if has_w:
        scale *= w
    shift = -mu * scale
    if has_b:
        shift += b
    for n in range(n_rows):
        for c in range(n_ch):
            y[n, c] = x[n, c] * scale[c] + shift[c]


@numba.njit(cache=True, fastmath=_REASSOC, error_model="numpy", nogil=True)
def _backward_rows_cpu(gy, x, mean, rstd, w, has_w, batch_stats, dx, dw, db):
    n_rows, n_ch = x.shape
    sg = np.zeros(n_ch)
    sgx = np.zeros(n_ch)
    for n in range(n_rows):
        for c in range(n_ch):
            g = gy[n, c]
            sg[c] += g
            sgx[c] += g * (x[n, c] - mean[c])
    sgx *= rstd  # sum gy * xhat
    for c in range(n_ch):
        dw[c] = sgx[c]
        db[c] = sg[c]
    k = rstd.astype(np.float64)
    if has_w:
        k *= w
    a = sg / n_rows
    bx = sgx / n_rows * rstd
    for n in range(n_rows):
        for c in range(n_ch):
            if batch_stats:
                dx[n, c] = k[c] * (gy[n, c] - a[c] - (x[n, c] - mean[c]) * bx[c])
            else:
                dx[n, c] = k[c] * gy[n, c]


# ============================================================================ CUDA (Numba-CUDA)


@functools.lru_cache(maxsize=None)
def _cuda_kernels(dtype_name):
    """The CUDA kernels for one dtype: one block per channel, ``blockDim.x`` (a power of two)
    elements of dynamic shared memory as reduction scratch. Compiled on first launch."""
    global cuda
    cuda = numba_cuda()

    T = numba.from_dtype(np.dtype(dtype_name))
    block_sum = cuda_block_sum()

    @cuda.jit
    def forward(x, w, b, has_w, has_b, batch_stats, rm, rv, update, momentum, eps, y, mean, rstd):
        scratch = cuda.shared.array(0, T)
        c = cuda.blockIdx.x
        tid, nt = cuda.threadIdx.x, cuda.blockDim.x
        n_sp = x.shape[2]
        m = x.shape[0] * n_sp
        if batch_stats:
            s = T(0)
            for i in range(tid, m, nt):
                s += x[i // n_sp, c, i % n_sp]
            mu = block_sum(scratch, s) / T(m)
            s = T(0)
            for i in range(tid, m, nt):
                d = x[i // n_sp, c, i % n_sp] - mu
                s += d * d
            var = block_sum(scratch, s) / T(m)
            if update and tid == 0:
                rm[c] = (T(1) - momentum) * rm[c] + momentum * mu
                rv[c] = (T(1) - momentum) * rv[c] + momentum * var * T(m) / T(m - 1)
        else:
            mu = rm[c]
            var = rv[c]
        r = T(1) / math.sqrt(var + eps)
        if tid == 0:
            mean[c] = mu
            rstd[c] = r
        scale = r * w[c] if has_w else r
        shift = b[c] - mu * scale if has_b else -mu * scale
        for i in range(tid, m, nt):
            n = i // n_sp
            sp = i % n_sp
            y[n, c, sp] = x[n, c, sp] * scale + shift

    @cuda.jit
    def backward(gy, x, mean, rstd, w, has_w, batch_stats, dx, dw, db):
        scratch = cuda.shared.array(0, T)
        c = cuda.blockIdx.x
        tid, nt = cuda.threadIdx.x, cuda.blockDim.x
        n_sp = x.shape[2]
        m = x.shape[0] * n_sp
        mu = mean[c]
        r = rstd[c]
        sg = T(0)
        sgx = T(0)
        for i in range(tid, m, nt):
            n = i // n_sp
            sp = i % n_sp
            g = gy[n, c, sp]
            sg += g
            sgx += g * (x[n, c, sp] - mu)
        sg = block_sum(scratch, sg)
        sgx = block_sum(scratch, sgx) * r
        if tid == 0:
            dw[c] = sgx
            db[c] = sg
        k = r * w[c] if has_w else r
        a = sg / T(m)
        bx = sgx / T(m) * r
        for i in range(tid, m, nt):
            n = i // n_sp
            sp = i % n_sp
            if batch_stats:
                dx[n, c, sp] = k * (gy[n, c, sp] - a - (x[n, c, sp] - mu) * bx)
            else:
                dx[n, c, sp] = k * gy[n, c, sp]

    return dict(forward=forward, backward=backward)


def _channel_launch(name, x, *args):
    n_rows, n_ch, n_sp = x.shape
    block = threads_for_row(n_rows * n_sp, CUDA_BLOCK, "batchnorm")
    launch_on_cupy_stream(_cuda_kernels(x.dtype.name)[name], n_ch, block, block * x.dtype.itemsize, args)


# ============================================================================ dispatch


def _outputs(x, dx=None):
    """The array module of ``x``, an empty array like ``x`` (``dx`` when given) and two empty
    per-channel (C,) arrays in its dtype: what forward and backward return."""
    xp = array_module(x)
    n_ch = x.shape[1]
    return xp, (xp.empty_like(x) if dx is None else dx), xp.empty(n_ch, dtype=x.dtype), xp.empty(n_ch, dtype=x.dtype)


def forward(x, weight=None, bias=None, running_mean=None, running_var=None, training=True, momentum=0.1,
            eps=1e-5, impl=None):
    """Batch norm of ``x`` (N, C, S) -> ``(y (N, C, S), mean (C,), rstd (C,))``.

    Batch statistics when ``training`` or when no running statistics are given (then with
    ``training`` the running statistics are updated in place); the running ones otherwise.
    Save ``x``, ``mean``, ``rstd`` and ``weight`` for backward.
    """
    impl = resolve_impl(impl, x, "batchnorm")
    x = contiguous(x)
    if impl == "reference":
        return reference_forward(x, weight, bias, running_mean, running_var, training, momentum, eps)
    xp, y, mean, rstd = _outputs(x)
    if x.shape[1] == 0:
        return y, mean, rstd
    dummy = xp.empty(0, dtype=x.dtype)
    batch_stats = bool(training) or running_mean is None
    update = bool(training) and running_mean is not None
    args = (x, dummy if weight is None else weight, dummy if bias is None else bias, weight is not None,
            bias is not None, batch_stats, dummy if running_mean is None else running_mean,
            dummy if running_var is None else running_var, update, x.dtype.type(momentum), x.dtype.type(eps),
            y, mean, rstd)
    if impl == "cuda":
        _channel_launch("forward", x, *args)
    elif x.shape[2] == 1:
        _forward_rows_cpu(x.reshape(x.shape[:2]), *args[1:11], y.reshape(x.shape[:2]), mean, rstd)
    else:
        _forward_cpu.for_work(x.size, CPU_PARALLEL_MIN_ELEMENTS)(*args)
    return y, mean, rstd


def backward(gy, x, mean, rstd, weight=None, batch_stats=True, impl=None, out=None):
    """Gradients ``(dx (N, C, S), dweight (C,), dbias (C,))`` from the forward's ``mean`` and
    ``rstd``; ``batch_stats`` says whether forward normalised with batch statistics. With
    ``out`` (a C-contiguous array of x.size elements in x's dtype) dx is written there and
    ``out`` itself is returned as dx, whatever its shape (a Function returns it as its own)."""
    impl = resolve_impl(impl, x, "batchnorm")
    gy, x = contiguous(gy), contiguous(x)
    if impl == "reference":
        dx, dw, db = reference_backward(gy, x, mean, rstd, weight, batch_stats)
        if out is not None:
            out[...] = dx.reshape(out.shape)
            dx = out
        return dx, dw, db
    xp, dx, dw, db = _outputs(x, dx=None if out is None else out.reshape(x.shape))
    dx_returned = dx if out is None else out
    if x.shape[1] == 0:
        return dx_returned, dw, db
    args = (gy, x, mean, rstd, xp.empty(0, dtype=x.dtype) if weight is None else weight, weight is not None,
            bool(batch_stats), dx, dw, db)
    if impl == "cuda":
        _channel_launch("backward", x, *args)
    elif x.shape[2] == 1:
        rows = x.shape[:2]
        _backward_rows_cpu(gy.reshape(rows), x.reshape(rows), *args[2:7], dx.reshape(rows), dw, db)
    else:
        _backward_cpu.for_work(x.size, CPU_PARALLEL_MIN_ELEMENTS)(*args)
    return dx_returned, dw, db
