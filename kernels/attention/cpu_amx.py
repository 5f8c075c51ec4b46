r"""The CPU kernels of ``cpu.py`` with their score-side products on AMX tiles (``_amx.py``).

Same blocks, same online softmax, same work queue; what changes is who multiplies:

    forward    S = q k^T          AMX (q's block and k^T cut into bfloat16 pieces)
               o += P v           AMX (the softmax pass writes P's pieces, not P)
    backward   S = q k^T          AMX
               dP = dO v^T        AMX
               dq += dS k         AMX (the dS pass also writes dS's pieces)
               dk += dS^T q       BLAS (float32 dS, as in cpu.py)
               dv += P^T dO       BLAS

Each product is six bfloat16 tile products with float32 sums, as accurate as a float32 GEMM
(see ``_amx.py``). The softmax scale is applied in the elementwise pass (the tile product has
no alpha), and dq is scaled once at the end of its block. dk and dv stay with BLAS because AMX
would want dS and P a second time in the pair layout (two more writes per score); at B4 H4
N1024 D64 they are 2 of the 7 products.

Used by ``cpu_forward``/``cpu_backward`` when ``amx_applies``: float32, D and Dv multiples of
32, AMX usable (``_amx.available``), and every input finite with its largest magnitude in
[2**-60, 2**60] (a bfloat16 piece below 2**-126 is read as 0 by AMX; a value near the float32
maximum would round to inf). Otherwise cpu.py's BLAS kernels run. P is never kept for
backward here: recomputing it on AMX is cheaper than writing and reading it.

Per worker, beyond cpu.py's buffers: the block's q (and backward dO) pieces, (3, rows, D)
uint16; the score tile's pieces (3, rows, tile); the head's keys (backward also values) in
the pair layout, 3 x 2 bytes per element, i.e. 1.5x a float32 copy; and a float32
accumulator for the block's o (backward dq).
"""
import numpy as np
from numba import njit, prange

from . import _amx
from ._amx import (
    aligned_empty, amx_gemm, exp_sum_split, probs_grad_split, split_pairs, split_rows,
    split_transposed_pairs,
)
from .cpu import (
    LN2, LOG2E, _add_bias, _bias_row, _claim, _dot, _exp2, _key_tiles, _queue_layout, _row_max,
    _scale, _visible_keys, gemm,
)

# The largest input magnitude allowed is below 2**LIMIT and the smallest max above 2**-LIMIT.
LIMIT = 60
# Fewer keys than this: cpu.py's BLAS kernels, which keep P for backward when it is small. At
# B8 H4 N256 D64 (2 threads, interleaved with torch) BLAS with P kept ran 0.84x torch and AMX
# 0.90x; at B4 H4 N1024 BLAS 1.03x, AMX 0.87x.
MIN_KEYS = 512


def amx_applies(dtype, D, Dv, *arrays):
    """Whether the AMX kernels may run on these inputs (q, k, v[, do]; see the module docstring)."""
    if dtype != np.float32 or D % 32 or Dv % 32 or arrays[1].shape[2] < MIN_KEYS or not _amx.available():
        return False
    for a in arrays:
        if a.size == 0:
            continue
        top = max(float(a.max()), -float(a.min()))
        if not (2.0 ** -LIMIT <= top < 2.0 ** LIMIT):  # also False for NaN and inf
            return False
    return True


def _ceil(n, m):
    return -(-n // m) * m


@njit(cache=True)
def _exp_sum_split(row, alpha, shift, ph, pm, pl, k_pad):
    """2**(alpha row[j] - shift) into pieces ph, pm, pl [j] for j < len(row), zeros up to
    k_pad; returns the sum of the probabilities (before rounding them to pieces)."""
    n = row.shape[0]
    total = exp_sum_split(row, alpha, shift, ph[:n], pm[:n], pl[:n])
    ph[n:k_pad] = 0
    pm[n:k_pad] = 0
    pl[n:k_pad] = 0
    return total


@njit(cache=True)
def _probs_grad_split(p, dp, alpha, shift, delta, sh, sm, sl, k_pad):
    """In place: p <- 2**(alpha p - shift), dp <- p (dp - delta), the score gradient; and its
    pieces into sh, sm, sl (zeros from len(p) up to k_pad)."""
    n = p.shape[0]
    probs_grad_split(p, dp, alpha, shift, delta, sh[:n], sm[:n], sl[:n])
    sh[n:k_pad] = 0
    sm[n:k_pad] = 0
    sl[n:k_pad] = 0


@njit(cache=True)
def _forward_block(q, ktp, vp, n_keys, bias, use_bias, b, h, causal, scale, i0, i1, o, lse,
                   qb, s, pp, acc, row_max, row_sum, tile, diagonal_tile):
    """cpu.py's ``_forward_block`` on AMX. ktp: the head's k^T in the pair layout; vp: its v in
    the pair layout; qb (3, >= rows, D) pieces of the block's queries (filled here); s, the
    float32 scores; pp, the pieces of P; acc, the block's unnormalised o."""
    rows = i1 - i0
    n_keys = _visible_keys(causal, n_keys, i1 - 1)
    minus_inf = np.float32(-np.inf)
    alpha = np.float32(scale * LOG2E)
    prescale = use_bias or not alpha > 0  # a bias (or a scale <= 0) needs the scores scaled first
    d_chunks = q.shape[1] // 32
    dv_tiles = acc.shape[1] // 16
    split_rows(q[i0:i1], qb)
    for r in range(rows):
        row_max[r] = minus_inf
        row_sum[r] = 0
    for j0, j1, r0 in _key_tiles(i0, n_keys, causal, tile, diagonal_tile):
        width = j1 - j0
        k_pad = -(-width // 32) * 32
        m_tiles = (rows - r0 + 15) // 16
        amx_gemm(qb[:, r0:], ktp[:, :, 2 * j0 :], s[r0:], m_tiles, (width + 15) // 16, d_chunks, False)
        for r in range(r0, rows):
            i = i0 + r
            visible = min(max(_visible_keys(causal, j1, i) - j0, 0), width)
            row = s[r, :visible]
            step = alpha
            if prescale:
                _scale(row, alpha)
                if use_bias:
                    _add_bias(row, _bias_row(bias, b, h, i, j0, j0 + visible))
                step = np.float32(1)
            old = row_max[r]
            new = max(old, step * _row_max(row)) if visible > 0 else old
            if new == minus_inf:  # no visible key so far: no probability
                pp[:, r, :k_pad] = 0
                continue
            if new != old:
                factor = _exp2(old - new)
                row_sum[r] *= factor
                if j0 > 0:
                    _scale(acc[r], factor)
                row_max[r] = new
            row_sum[r] += _exp_sum_split(row, step, new, pp[0, r], pp[1, r], pp[2, r], k_pad)
        amx_gemm(pp[:, r0:], vp[:, j0 // 2 :], acc[r0:], m_tiles, dv_tiles, k_pad // 32, j0 != 0)
    for r in range(rows):
        i = i0 + r
        if row_sum[r] == 0:
            o[i, :] = 0
            lse[i] = minus_inf
        else:
            inverse = np.float32(1) / row_sum[r]
            for c in range(o.shape[1]):
                o[i, c] = acc[r, c] * inverse
            lse[i] = LN2 * (row_max[r] + np.log2(row_sum[r]))


@njit(cache=True)
def _backward_block(q, k, o, lse, do, ktp, vtp, kp, n_keys, bias, use_bias, b, h, causal, scale,
                    i0, i1, dq, dk, dv, qb, dob, p, ds, dsp, dq_acc, delta, tile, diagonal_tile):
    """cpu.py's ``_backward_block`` with S, dP and dq on AMX. ktp, vtp: the head's k^T and v^T
    in the pair layout; kp: its k in the pair layout; qb, dob: the block's q and dO pieces
    (filled here); p, ds float32 scratch; dsp: dS's pieces; dq_acc: the block's dq / scale."""
    rows = i1 - i0
    n_keys = _visible_keys(causal, n_keys, i1 - 1)
    alpha = np.float32(scale * LOG2E)
    prescale = use_bias or not alpha > 0
    d_chunks, dv_chunks = q.shape[1] // 32, do.shape[1] // 32
    d_tiles = dq_acc.shape[1] // 16
    split_rows(q[i0:i1], qb)
    split_rows(do[i0:i1], dob)
    for r in range(rows):
        delta[r] = _dot(do[i0 + r], o[i0 + r])
    for j0, j1, r0 in _key_tiles(i0, n_keys, causal, tile, diagonal_tile):
        width = j1 - j0
        k_pad = -(-width // 32) * 32
        m_tiles = (rows - r0 + 15) // 16
        n_tiles = (width + 15) // 16
        amx_gemm(qb[:, r0:], ktp[:, :, 2 * j0 :], p[r0:], m_tiles, n_tiles, d_chunks, False)
        amx_gemm(dob[:, r0:], vtp[:, :, 2 * j0 :], ds[r0:], m_tiles, n_tiles, dv_chunks, False)
        for r in range(r0, rows):
            i = i0 + r
            visible = min(max(_visible_keys(causal, j1, i) - j0, 0), width)
            step = alpha
            if lse[i] == -np.inf:
                visible = 0
            elif prescale:
                _scale(p[r, :visible], alpha)
                if use_bias:
                    _add_bias(p[r, :visible], _bias_row(bias, b, h, i, j0, j0 + visible))
                step = np.float32(1)
            shift = np.float32(LOG2E * lse[i])
            _probs_grad_split(p[r, :visible], ds[r, :visible], step, shift, delta[r],
                              dsp[0, r], dsp[1, r], dsp[2, r], k_pad)
            p[r, visible:width] = 0
            ds[r, visible:width] = 0
        amx_gemm(dsp[:, r0:], kp[:, j0 // 2 :], dq_acc[r0:], m_tiles, d_tiles, k_pad // 32, j0 != 0)
        gemm(scale, ds[r0:rows, :width], q[i0 + r0 : i1], 1.0, dk[j0:j1], trans_a=True)
        gemm(1.0, p[r0:rows, :width], do[i0 + r0 : i1], 1.0, dv[j0:j1], trans_a=True)
    for r in range(rows):
        for c in range(dq.shape[1]):
            dq[i0 + r, c] = scale * dq_acc[r, c]


@njit(parallel=True, nogil=True, cache=True)
def _forward_kernel(q, k, v, bias, use_bias, key_len, causal, scale, n_split, o, lse, qb, scores,
                    pp, acc, keys_p, values_p, transposed, stats, counter, tile, diagonal_tile):
    H, Nq, _, n_workers, block_q, n_blocks, n_items = _queue_layout(q, k, stats[:, 0], n_split)
    for worker in prange(n_workers):
        packed = -1  # the head whose keys and values this worker's buffers hold
        head, part, b, h = _claim(counter, H, n_split, n_items)
        while head >= 0:
            Nk = key_len[b]
            if head != packed:
                split_transposed_pairs(k[b, h, :Nk], keys_p[worker], transposed[worker])
                split_pairs(v[b, h, :Nk], values_p[worker])
                packed = head
            for block in range(part, n_blocks, n_split):
                i0 = block * block_q
                i1 = min(i0 + block_q, Nq)
                _forward_block(q[b, h], keys_p[worker], values_p[worker], Nk, bias, use_bias, b, h,
                               causal, scale, i0, i1, o[b, h], lse[b, h], qb[worker], scores[worker],
                               pp[worker], acc[worker], stats[worker, 0], stats[worker, 1],
                               tile, diagonal_tile)
            head, part, b, h = _claim(counter, H, n_split, n_items)


@njit(parallel=True, nogil=True, cache=True)
def _backward_kernel(q, k, v, o, lse, do, bias, use_bias, key_len, causal, scale, n_split,
                     dq, dk_parts, dv_parts, keys_tp, values_tp, keys_p, qb, dob, probs, dprobs,
                     dsp, dq_acc, deltas, transposed, counter, tile, diagonal_tile):
    H, Nq, _, n_workers, block_q, n_blocks, n_items = _queue_layout(q, k, deltas, n_split)
    for worker in prange(n_workers):
        packed = -1
        head, part, b, h = _claim(counter, H, n_split, n_items)
        while head >= 0:
            dk_parts[part, b, h] = 0
            dv_parts[part, b, h] = 0
            Nk = key_len[b]
            if head != packed:
                split_transposed_pairs(k[b, h, :Nk], keys_tp[worker], transposed[worker])
                split_transposed_pairs(v[b, h, :Nk], values_tp[worker], transposed[worker])
                split_pairs(k[b, h, :Nk], keys_p[worker])
                packed = head
            for block in range(part, n_blocks, n_split):
                i0 = block * block_q
                i1 = min(i0 + block_q, Nq)
                _backward_block(q[b, h], k[b, h], o[b, h], lse[b, h], do[b, h], keys_tp[worker],
                                values_tp[worker], keys_p[worker], Nk, bias, use_bias, b, h, causal,
                                scale, i0, i1, dq[b, h], dk_parts[part, b, h], dv_parts[part, b, h],
                                qb[worker], dob[worker], probs[worker], dprobs[worker], dsp[worker],
                                dq_acc[worker], deltas[worker], tile, diagonal_tile)
            head, part, b, h = _claim(counter, H, n_split, n_items)


def forward(q, k, v, bias, use_bias, key_len, causal, scale, o, lse, n_split, n_workers, rows,
            tile, diagonal_tile):
    """Runs the AMX forward kernel into o and lse (cpu_forward's checked, contiguous inputs)."""
    D, Dv, Nk = q.shape[3], v.shape[3], k.shape[2]
    rows_pad, keys = _ceil(rows, 16), _ceil(Nk, 32)
    width = _ceil(min(tile, Nk), 32)
    qb = aligned_empty((n_workers, 3, rows_pad, D), np.uint16)
    scores = aligned_empty((n_workers, rows_pad, width + 16), np.float32)
    pp = aligned_empty((n_workers, 3, rows_pad, width + 32), np.uint16)
    acc = aligned_empty((n_workers, rows_pad, Dv), np.float32)
    keys_p = aligned_empty((n_workers, 3, D // 2, 2 * keys + 32), np.uint16)  # rows never 4 KiB apart
    values_p = aligned_empty((n_workers, 3, keys // 2, 2 * Dv), np.uint16)
    stats = np.empty((n_workers, 2, rows), np.float32)
    transposed = np.empty((n_workers, D, _ceil(Nk, 16) + 16), np.float32)  # k^T before its split
    _forward_kernel(q, k, v, bias, use_bias, key_len, causal, scale, n_split, o, lse, qb, scores,
                    pp, acc, keys_p, values_p, transposed, stats, np.zeros(1, np.int64), tile,
                    diagonal_tile)


def backward(q, k, v, o, lse, do, bias, use_bias, key_len, causal, scale, n_split, dq, dk_parts,
             dv_parts, n_workers, rows, tile, diagonal_tile):
    """Runs the AMX backward kernel into dq and the dk, dv parts."""
    D, Dv, Nk = q.shape[3], v.shape[3], k.shape[2]
    rows_pad, keys = _ceil(rows, 16), _ceil(Nk, 32)
    width = _ceil(min(tile, Nk), 32)
    keys_tp = aligned_empty((n_workers, 3, D // 2, 2 * keys + 32), np.uint16)
    values_tp = aligned_empty((n_workers, 3, Dv // 2, 2 * keys + 32), np.uint16)
    keys_p = aligned_empty((n_workers, 3, keys // 2, 2 * D), np.uint16)
    qb = aligned_empty((n_workers, 3, rows_pad, D), np.uint16)
    dob = aligned_empty((n_workers, 3, rows_pad, Dv), np.uint16)
    probs = aligned_empty((n_workers, rows_pad, width + 16), np.float32)
    dprobs = aligned_empty((n_workers, rows_pad, width + 16), np.float32)
    dsp = aligned_empty((n_workers, 3, rows_pad, width + 32), np.uint16)
    dq_acc = aligned_empty((n_workers, rows_pad, D), np.float32)
    deltas = np.empty((n_workers, rows), np.float32)
    transposed = np.empty((n_workers, max(D, Dv), _ceil(Nk, 16) + 16), np.float32)
    _backward_kernel(q, k, v, o, lse, do, bias, use_bias, key_len, causal, scale, n_split, dq,
                     dk_parts, dv_parts, keys_tp, values_tp, keys_p, qb, dob, probs, dprobs, dsp,
                     dq_acc, deltas, transposed, np.zeros(1, np.int64), tile, diagonal_tile)
