r"""Flash attention in ``numba.cuda``: forward and backward, tile by tile, never holding (Nq, Nk).

The math is the reference's (``reference.py``); scores are kept in base 2 as on the CPU
(``2**(x log2 e) = e**x``, and ``exp2`` is one hardware instruction).

Every kernel runs thread blocks of ``(BLOCK_N, BLOCK_M)`` threads: ``tx = threadIdx.x`` is a key
of the current key tile (or an output column), ``ty = threadIdx.y`` a query row of the query
tile. Tiles of q, k, v, dO go through shared memory, loaded by all threads of the block
together, consecutive threads reading consecutive elements of a row (coalesced). Rows of k and
v tiles are padded to ``D_MAX + 1`` elements so that threads reading k_s[tx, d] (one key each,
same d) hit different banks.

forward, one block per (query tile, batch*head); online softmax over the key tiles::

    for each key tile:          s   = q_i . k_j * scale * log2 e (+ log2 e * bias), -inf if masked
                                m'  = max(m, max_j s)                  row maximum so far
                                p   = 2**(s - m'),  alpha = 2**(m - m')
                                l   = alpha * l + sum_j p               row sum so far
                                acc = alpha * acc + p @ v_tile
    o = acc / l,  lse = ln 2 * (m + log2 l)      (l = 0: every key masked -> o = 0, lse = -inf)

backward, three kernels:

1. ``delta``: Di = rowsum(dO * o), one thread per row.
2. ``dkdv``, one block per (key tile, batch*head), looping over query tiles; it owns its
   dk, dv rows, so no two blocks write the same memory:
   p = 2**(s - log2 e * lse_i), ds = p * (dO_i . v_j - Di);  dv_j += p dO_i,  dk_j += scale ds q_i
3. ``dq``, one block per (query tile, batch*head), looping over key tiles, recomputing p and ds
   the same way: dq_i += scale ds k_j. (A second pass instead of atomics: deterministic, and
   every output has exactly one writer.)

Tiles: ``TILES[dtype] = (BLOCK_M, BLOCK_N)``; head dims up to ``D_MAX``. Shared memory per block
stays under the 48 KiB every GPU gives without opting in: for float32 16 x 16 tiles the forward
kernel uses ~26 KiB, the backward kernels ~35 KiB; float64 uses 8 x 8 tiles for the same bytes.
Tests under the CUDA simulator set ``TILES`` and ``D_MAX`` to tiny tiles.

This module (and so ``numba.cuda``) is imported by the package only when a CUDA function is first
called; each kernel is compiled on its first launch.
"""
import functools
import math
from types import SimpleNamespace

import numba
import numpy as np

from .._common import array_module, blocks_for, launch_on_cupy_stream, numba_cuda
from ._inputs import (
    as_c_contiguous,
    check_backward_inputs,
    check_forward_inputs,
    mask_as_bias,
    resolve_scale,
)

cuda = numba_cuda()  # numba.cuda, with the NumPy 2.5 alias it needs (see _common.numba_cuda)

D_MAX = 128  # largest head dim (of q/k, and of v) the kernels accept
TILES = {np.dtype(np.float32): (16, 16), np.dtype(np.float64): (8, 8)}  # (BLOCK_M, BLOCK_N)
DELTA_THREADS = 128  # threads per block of the rowsum(dO * o) kernel

LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453


def cuda_forward(q, k, v, mask=None, is_causal=False, scale=None):
    """Flash-attention forward on CuPy arrays (NumPy arrays under the CUDA simulator).

    Same contract as ``reference_forward``: returns ``(o, lse)``, lse in natural log, -inf and
    o = 0 for fully-masked rows.
    """
    B, H, Nq, Nk, D, Dv = check_forward_inputs(q, k, v, mask)
    scale = resolve_scale(scale, D)
    kern, block_m, block_n = _kernels_for(q.dtype, D, Dv)
    xp = array_module(q)
    q, k, v = (as_c_contiguous(a) for a in (q, k, v))
    o = xp.zeros((B, H, Nq, Dv), q.dtype)
    lse = xp.full((B, H, Nq), -np.inf, q.dtype)
    if B * H * Nq == 0 or Nk == 0:
        return o, lse
    bias, use_bias = _bias_for_kernel(mask, q.dtype, xp)
    grid = (blocks_for(Nq, block_m), B * H)
    launch_on_cupy_stream(kern.forward, grid, (block_n, block_m), 0,
                          (q, k, v, bias, use_bias, bool(is_causal), q.dtype.type(scale * LOG2E), o, lse))
    return o, lse


def cuda_backward(q, k, v, o, lse, do, mask=None, is_causal=False, scale=None):
    """Flash-attention backward: returns ``(dq, dk, dv)``. P is recomputed tile by tile from
    ``lse``; fully-masked rows contribute nothing. No gradient for the mask."""
    B, H, Nq, Nk, D, Dv = check_backward_inputs(q, k, v, o, lse, do, mask)
    scale = resolve_scale(scale, D)
    kern, block_m, block_n = _kernels_for(q.dtype, D, Dv)
    xp = array_module(q)
    q, k, v, o, lse, do = (as_c_contiguous(a) for a in (q, k, v, o, lse, do))
    dq, dk, dv = xp.zeros_like(q), xp.zeros_like(k), xp.zeros_like(v)
    if B * H * Nq == 0 or Nk == 0:
        return dq, dk, dv
    bias, use_bias = _bias_for_kernel(mask, q.dtype, xp)
    delta = xp.empty((B, H, Nq), q.dtype)
    launch_on_cupy_stream(kern.delta, blocks_for(B * H * Nq, DELTA_THREADS), DELTA_THREADS, 0, (do, o, delta))
    args = (q, k, v, lse, do, delta, bias, use_bias, bool(is_causal), q.dtype.type(scale))
    launch_on_cupy_stream(kern.dkdv, (blocks_for(Nk, block_n), B * H), (block_n, block_m), 0, (*args, dk, dv))
    launch_on_cupy_stream(kern.dq, (blocks_for(Nq, block_m), B * H), (block_n, block_m), 0, (*args, dq))
    return dq, dk, dv


def _kernels_for(dtype, D, Dv):
    block_m, block_n = TILES[np.dtype(dtype)]
    d_max = D_MAX
    if max(D, Dv) > d_max:
        raise ValueError(
            f"attention (CUDA): head dims up to {d_max} are supported, got D={D}, Dv={Dv}"
        )
    if block_n & (block_n - 1) or d_max % block_m or d_max % block_n:
        raise ValueError(f"attention (CUDA): bad tiles {(block_m, block_n, d_max)}")
    return _build_kernels(np.dtype(dtype).name, block_m, block_n, d_max), block_m, block_n


def _bias_for_kernel(mask, dtype, xp):
    bias = mask_as_bias(mask, dtype)
    if bias is None:
        return xp.zeros((1, 1, 1, 1), dtype), False
    return bias, True


@functools.lru_cache(maxsize=None)
def _build_kernels(dtype_name, block_m, block_n, d_max):
    """Compile-time constants (tile sizes, the float type of shared arrays) are closed over, so
    each (dtype, tiles) gets its own kernels, built on first use and kept."""
    ftype = getattr(numba, dtype_name)  # numba.float32 or numba.float64
    zero = np.dtype(dtype_name).type(0.0)
    one = np.dtype(dtype_name).type(1.0)
    neg_inf = np.dtype(dtype_name).type(-np.inf)
    log2e = np.dtype(dtype_name).type(LOG2E)
    ln2 = np.dtype(dtype_name).type(LN2)
    padded = d_max + 1  # row length of the k, v tiles (shapes of shared arrays must be constants)
    cols_per_x = d_max // block_n  # output columns per thread when tx walks the columns
    cols_per_y = d_max // block_m  # ... when ty walks them

    # -- device helpers ----------------------------------------------------------------------

    @cuda.jit(device=True)
    def load_rows(dst, src, start, n_rows, width):
        """dst[r, :width] = src[start + r, :width] (zeros past n_rows), all threads together."""
        tid = cuda.threadIdx.y * cuda.blockDim.x + cuda.threadIdx.x
        n_threads = cuda.blockDim.x * cuda.blockDim.y
        for idx in range(tid, dst.shape[0] * width, n_threads):
            r = idx // width
            d = idx - r * width
            dst[r, d] = src[start + r, d] if start + r < n_rows else zero

    @cuda.jit(device=True)
    def load_pair(dst_a, dst_b, src_a, src_b, start, n_rows, width_a, width_b):
        """load_rows of two arrays over the same rows (q and do, or k and v)."""
        load_rows(dst_a, src_a, start, n_rows, width_a)
        load_rows(dst_b, src_b, start, n_rows, width_b)

    @cuda.jit(device=True)
    def head_and_sizes(q, k, v):
        """(b, h, Nq, Nk, D, Dv) for the block's head: grid y runs over b * H + h."""
        H = q.shape[1]
        return cuda.blockIdx.y // H, cuda.blockIdx.y % H, q.shape[2], k.shape[2], q.shape[3], v.shape[3]

    @cuda.jit(device=True)
    def row_times_column(a_s, row, b_s, col):
        """sum over jj < block_n of a_s[row, jj] * b_s[jj, col] (a key tile's product)."""
        total = zero
        for jj in range(block_n):
            total += a_s[row, jj] * b_s[jj, col]
        return total

    @cuda.jit(device=True)
    def keys_seen(row0, Nq, Nk, causal):
        """How many keys the query rows [row0, row0 + block_m) see (causal: up to the last row)."""
        last_row = min(Nq, row0 + block_m) - 1
        return min(Nk, last_row + 1) if causal else Nk

    @cuda.jit(device=True)
    def load_vector(dst, src, start, n, fill):
        """dst[r] = src[start + r] (fill past n), all threads together."""
        tid = cuda.threadIdx.y * cuda.blockDim.x + cuda.threadIdx.x
        for r in range(tid, dst.shape[0], cuda.blockDim.x * cuda.blockDim.y):
            dst[r] = src[start + r] if start + r < n else fill

    @cuda.jit(device=True)
    def dot(a, ra, b, rb, n):
        total = zero
        for d in range(n):
            total += a[ra, d] * b[rb, d]
        return total

    @cuda.jit(device=True)
    def row_reduce(scratch, ty, tx, value, take_max):
        """max (take_max) or sum of `value` over the block_n threads of row ty, returned to all
        of them: a tree in shared memory. Every thread of the block must call it."""
        scratch[ty, tx] = value
        stride = block_n // 2
        while stride > 0:
            cuda.syncthreads()
            if tx < stride:
                other = scratch[ty, tx + stride]
                mine = scratch[ty, tx]
                scratch[ty, tx] = max(mine, other) if take_max else mine + other
            stride //= 2
        cuda.syncthreads()
        result = scratch[ty, 0]
        cuda.syncthreads()  # all have read it before scratch is written again
        return result

    @cuda.jit(device=True)
    def visible(causal, i, j, Nq, Nk):
        """Does query row i see key j? Causal masking is top-left aligned (j <= i)."""
        return i < Nq and j < Nk and (not causal or j <= i)

    @cuda.jit(device=True)
    def bias_at(bias, b, h, i, j):
        """bias broadcast to (B, H, Nq, Nk) without a copy: a dim of 1 is read at index 0."""
        return bias[min(b, bias.shape[0] - 1), min(h, bias.shape[1] - 1),
                    min(i, bias.shape[2] - 1), min(j, bias.shape[3] - 1)]

    @cuda.jit(device=True)
    def prob_and_grad(q_s, do_s, k_s, v_s, ty, tx, i, j, b, h, lse_i, delta_i,
                      bias, use_bias, causal, scale_log2, Nq, Nk, D, Dv):
        """(p, ds) for query row i (row ty of q_s, do_s) and key j (row tx of k_s, v_s):
        the probability recomputed from lse, and the gradient of the score. Zero if masked."""
        if not visible(causal, i, j, Nq, Nk) or lse_i == neg_inf:
            return zero, zero
        s = dot(q_s, ty, k_s, tx, D) * scale_log2
        if use_bias:
            s += log2e * bias_at(bias, b, h, i, j)
        p = math.exp2(s - lse_i * log2e)
        return p, p * (dot(do_s, ty, v_s, tx, Dv) - delta_i)

    # -- forward -------------------------------------------------------------------------------

    @cuda.jit
    def forward(q, k, v, bias, use_bias, causal, scale_log2, o, lse):
        q_s = cuda.shared.array((block_m, d_max), ftype)
        k_s = cuda.shared.array((block_n, padded), ftype)
        v_s = cuda.shared.array((block_n, d_max), ftype)
        p_s = cuda.shared.array((block_m, block_n), ftype)

        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        b, h, Nq, Nk, D, Dv = head_and_sizes(q, k, v)
        row0 = cuda.blockIdx.x * block_m
        i = row0 + ty
        m_i = neg_inf  # running row maximum (base 2)
        l_i = zero     # running row sum of 2**(s - m_i)
        acc = cuda.local.array(cols_per_x, ftype)  # o[i, tx + block_n * t], unnormalised
        for t in range(cols_per_x):
            acc[t] = zero

        load_rows(q_s, q[b, h], row0, Nq, D)
        n_keys = keys_seen(row0, Nq, Nk, causal)
        for kv0 in range(0, n_keys, block_n):
            cuda.syncthreads()  # nobody still reads the previous tiles
            load_pair(k_s, v_s, k[b, h], v[b, h], kv0, Nk, D, Dv)
            cuda.syncthreads()
            j = kv0 + tx
            s = neg_inf
            if visible(causal, i, j, Nq, Nk):
                s = dot(q_s, ty, k_s, tx, D) * scale_log2
                if use_bias:
                    s += log2e * bias_at(bias, b, h, i, j)
            m_new = max(m_i, row_reduce(p_s, ty, tx, s, True))
            p = zero
            alpha = zero  # rescales what was accumulated under the old maximum
            if m_new != neg_inf:  # (else every key so far is masked: nothing to add)
                p = math.exp2(s - m_new)
                alpha = math.exp2(m_i - m_new)
            l_i = alpha * l_i + row_reduce(p_s, ty, tx, p, False)
            m_i = m_new
            p_s[ty, tx] = p
            cuda.syncthreads()
            for t in range(cols_per_x):
                d = tx + block_n * t
                if d < Dv:
                    acc[t] = alpha * acc[t] + row_times_column(p_s, ty, v_s, d)

        if i < Nq:
            inverse = zero if l_i == zero else one / l_i
            for t in range(cols_per_x):
                d = tx + block_n * t
                if d < Dv:
                    o[b, h, i, d] = acc[t] * inverse
            if tx == 0:
                lse[b, h, i] = neg_inf if l_i == zero else (m_i + math.log2(l_i)) * ln2

    # -- backward ------------------------------------------------------------------------------

    @cuda.jit
    def delta(do, o, out):
        """out[b, h, i] = rowsum(do * o)[b, h, i]: one thread per row."""
        row = cuda.grid(1)
        H, Nq, Dv = do.shape[1], do.shape[2], do.shape[3]
        if row < do.shape[0] * H * Nq:
            b, rest = row // (H * Nq), row % (H * Nq)
            h, i = rest // Nq, rest % Nq
            total = zero
            for d in range(Dv):
                total += do[b, h, i, d] * o[b, h, i, d]
            out[b, h, i] = total

    @cuda.jit
    def dkdv(q, k, v, lse, do, delta, bias, use_bias, causal, scale, dk, dv):
        """dk, dv for one key tile, summed over every query tile that sees it."""
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        b, h, Nq, Nk, D, Dv = head_and_sizes(q, k, v)
        kv0 = cuda.blockIdx.x * block_n
        j = kv0 + tx

        k_s = cuda.shared.array((block_n, padded), ftype)
        v_s = cuda.shared.array((block_n, padded), ftype)
        q_s = cuda.shared.array((block_m, d_max), ftype)
        do_s = cuda.shared.array((block_m, d_max), ftype)
        p_s = cuda.shared.array((block_m, block_n), ftype)
        ds_s = cuda.shared.array((block_m, block_n), ftype)
        lse_s = cuda.shared.array(block_m, ftype)
        delta_s = cuda.shared.array(block_m, ftype)
        dk_acc = cuda.local.array(cols_per_y, ftype)  # dk[j, ty + block_m * t]
        dv_acc = cuda.local.array(cols_per_y, ftype)
        for t in range(cols_per_y):
            dk_acc[t] = zero
            dv_acc[t] = zero

        load_pair(k_s, v_s, k[b, h], v[b, h], kv0, Nk, D, Dv)
        # Causal: rows above the tile's first key see none of it.
        first_row = (kv0 // block_m) * block_m if causal else 0
        for row0 in range(first_row, Nq, block_m):
            cuda.syncthreads()
            load_pair(q_s, do_s, q[b, h], do[b, h], row0, Nq, D, Dv)
            load_vector(lse_s, lse[b, h], row0, Nq, neg_inf)
            load_vector(delta_s, delta[b, h], row0, Nq, zero)
            cuda.syncthreads()
            p, ds = prob_and_grad(q_s, do_s, k_s, v_s, ty, tx, row0 + ty, j, b, h,
                                  lse_s[ty], delta_s[ty], bias, use_bias, causal,
                                  scale * log2e, Nq, Nk, D, Dv)
            p_s[ty, tx] = p
            ds_s[ty, tx] = ds
            cuda.syncthreads()
            for t in range(cols_per_y):
                d = ty + block_m * t
                for r in range(block_m):
                    if d < Dv:
                        dv_acc[t] += p_s[r, tx] * do_s[r, d]
                    if d < D:
                        dk_acc[t] += ds_s[r, tx] * q_s[r, d]

        if j < Nk:
            for t in range(cols_per_y):
                d = ty + block_m * t
                if d < D:
                    dk[b, h, j, d] = scale * dk_acc[t]
                if d < Dv:
                    dv[b, h, j, d] = dv_acc[t]

    @cuda.jit
    def dq(q, k, v, lse, do, delta, bias, use_bias, causal, scale, dq_out):
        """dq for one query tile, summed over the key tiles it sees."""
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        b, h, Nq, Nk, D, Dv = head_and_sizes(q, k, v)
        row0 = cuda.blockIdx.x * block_m
        i = row0 + ty
        acc = cuda.local.array(cols_per_x, ftype)  # dq[i, tx + block_n * t]
        for t in range(cols_per_x):
            acc[t] = zero

        q_s = cuda.shared.array((block_m, d_max), ftype)
        do_s = cuda.shared.array((block_m, d_max), ftype)
        k_s = cuda.shared.array((block_n, padded), ftype)
        v_s = cuda.shared.array((block_n, padded), ftype)
        ds_s = cuda.shared.array((block_m, block_n), ftype)

        load_pair(q_s, do_s, q[b, h], do[b, h], row0, Nq, D, Dv)
        lse_i = lse[b, h, i] if i < Nq else neg_inf
        delta_i = delta[b, h, i] if i < Nq else zero
        n_keys = keys_seen(row0, Nq, Nk, causal)
        for kv0 in range(0, n_keys, block_n):
            cuda.syncthreads()
            load_pair(k_s, v_s, k[b, h], v[b, h], kv0, Nk, D, Dv)
            cuda.syncthreads()
            p, ds = prob_and_grad(q_s, do_s, k_s, v_s, ty, tx, i, kv0 + tx, b, h, lse_i,
                                  delta_i, bias, use_bias, causal, scale * log2e,
                                  Nq, Nk, D, Dv)
            ds_s[ty, tx] = ds
            cuda.syncthreads()
            for t in range(cols_per_x):
                d = tx + block_n * t
                if d < D:
                    acc[t] += row_times_column(ds_s, ty, k_s, d)

        if i < Nq:
            for t in range(cols_per_x):
                d = tx + block_n * t
                if d < D:
                    dq_out[b, h, i, d] = scale * acc[t]

    return SimpleNamespace(forward=forward, delta=delta, dkdv=dkdv, dq=dq)
