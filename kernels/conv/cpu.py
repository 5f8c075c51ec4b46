r"""2-D convolution on the CPU: Numba threads, im2col tiles that stay in cache, BLAS on each tile.

The math is the reference's (``reference.py``). Two strategies, chosen by shape (``use_direct``):

**im2col + GEMM** (every convolution with enough channels per group). The output rows of one
image are cut into *row blocks* of ``rows`` output rows (P = rows * Wo output positions); for
each row block and group g::

    cols (K, P)   = im2col of the input rows the block reads       K = Cg * kh * kw
    y[b, g] (Og, P) = w[g] (Og, K) @ cols                            one sgemm, bias added after

backward, rebuilding the same tile instead of keeping a (K, B * Ho * Wo) buffer from forward::

    dw[g]   += dy_tile (Og, P) @ cols^T                              into this thread's own dw
    dcols   = w[g]^T (K, Og) @ dy_tile;  dx += col2im(dcols)         scatter-add into dx
    db      += row sums of dy_tile                                   into this thread's own db

With AVX-512 (``PACKED_FORWARD``) the forward product skips BLAS: im2col writes the tile
straight into k-major panels of 32 float32 or 16 float64 columns (``_im2col_panels``) and the recurrent family's
register-tile kernel (``packed_gemm``, 8 rows of w x 32 columns held in registers over the whole
K loop) multiplies w[g] into them: BLAS would pack the tile a second time. Backward
(``PACKED_BACKWARD``, from 32 output channels per group) the same kernel computes dw^T (K, Og)
+= cols dy^T and dcols = w^T dy against dy's tile packed into panels.

The cols tile holds K x P elements; ``rows`` is chosen so that it fits ``FORWARD_TILE_BYTES``
or ``BACKWARD_TILE_BYTES`` (backward's two tiles stay in the core's L2), one output row at
least. Memory beyond inputs and outputs: per thread one tile forward (rounded up to whole
panels when packed), two tiles, one dw and db, and (always allocated, used when packed) dy's
tile as panels backward, plus the weights transposed once when packed; and, when the row
blocks of an image are split between threads (fewer images than 2 per thread), one dx per
split.

**Direct** (depthwise and other convolutions with very few channels per group): no GEMM at
all; for each (image, output channel) plane, a loop over input channels and kernel taps adds
``w[o, c, i, j] * x-row`` into each output row, vectorised along the row. A (1 x 9) @ (9 x P)
GEMM per group is all call overhead; this loop is what a depthwise convolution needs.

Threads: Numba's threads each run their own stream of work items; BLAS runs single-threaded
inside them (threadpoolctl, as ``kernels/attention/cpu.py`` does; two pools fighting over the
same cores ran 2-5x slower). Small convolutions (fewer than ``CPU_PARALLEL_MIN_WORK``
multiply-adds) run the serial copy of each loop: waking the pool costs more than it saves.

``NUMBA_DISABLE_JIT=1`` runs this file as plain Python (slow, but steppable).
"""
import contextlib

import numba
import numpy as np
from numba import njit, prange

from .._common import parallel_threshold, serial_and_parallel
from .._common import one_blas_thread
from ..attention.cpu import gemm
from ..recurrent._packed_gemm import VECTOR_BYTES, pack_transposed, packed_gemm, panel_width

# Bytes of one im2col tile (K x P elements). Measured on one thread (CPU time, 2-core EPYC with
# 512 KiB L2 per core, float32, 64 -> 64 3x3 at 32x32 B16): forward 19.4 ms with 256 KiB
# tiles, 18.3 with 1 MiB, 18.0 with whole images (2.3 MiB); backward, which holds two tiles
# (cols and dcols), 38 ms with 256 KiB, 39 with 512 KiB, 45 with 1 MiB, 51 with whole images.
FORWARD_TILE_BYTES = 1024 * 1024
BACKWARD_TILE_BYTES = 256 * 1024

# Convolutions of fewer multiply-adds run the serial loops (waking the pool costs ~50 us idle,
# milliseconds on a busy machine). Environment TINYMM_PARALLEL_MIN_ELEMENTS overrides it.
CPU_PARALLEL_MIN_WORK = parallel_threshold(1 << 21)

# The direct loop wins only when each group's GEMM would be tiny. Measured on one thread (CPU
# time, 2-core EPYC, float32, 3x3): depthwise 64 ch 32x32 B16 (Cg = Og = 1) direct 1.9 ms
# forward / 7.3 ms backward against im2col + GEMM 6.2 / 17.7; at Cg = Og = 4 (64 ch, 16
# groups) 8.1 / 25.8 against 7.0 / 14.0; at 3 -> 16 and 8 -> 8 the GEMM path is 2-5x faster.
DIRECT_MAX_CG_OG = 4

_REASSOC = {"nsz", "arcp", "contract", "reassoc"}

# The forward product through the recurrent family's packed register-tile kernel instead of
# BLAS, with im2col writing its tile straight into that kernel's k-major panels (so nothing is
# packed twice: OpenBLAS repacked every im2col tile, 11 % of a 64 -> 64 forward). Measured on an
# AVX-512 Xeon, one thread, hot operands, (Og, K) x (K, P) GF/s tile kernel / OpenBLAS: (16, 27,
# 1024) 147 / 101, (32, 144, 256) 177 / 109, (32, 288, 1024) 182 / 101, (64, 576, 448) 163 / 134.
# In the layer, forward time packed / BLAS (medians of 9 interleaved runs, 1 and 2 threads):
# 64 -> 64 3x3 32x32 B16 0.83 / 0.90, 32 -> 32 3x3 32x32 B64 0.78 / 0.75, 16 -> 32 3x3 16x16 B32
# 0.94 / 0.82, seed 3 -> 16 1.00 / 0.94, conv1d 40 -> 64 k5 0.99 / 0.91.
# Only where it was measured: with AVX-512 vectors (``VECTOR_BYTES`` 64). With AVX2 the kernel
# lost to OpenBLAS at attention's shapes and was not measured at these, so BLAS stays there.
PACKED_FORWARD = VECTOR_BYTES == 64
# Backward the same kernel takes dw^T (K, Og) += cols dy^T and dcols = w^T dy, dy's tile packed
# into panels for each (Og x P elements, against K x Og x P multiply-adds). Same machine, hot,
# GF/s tile (packing included) / OpenBLAS, (Og, K, P): dw (32, 144, 256) 129 / 74, (32, 288,
# 1024) 127 / 68, (64, 576, 448) 153 / 107; dcols 122 / 113, 119 / 102, 154 / 139. Not below
# one panel of output channels (Og < 32 float32): at (16, 27, 1024) 42 / 85 and 64 / 101.
# In the layer, fwd+bwd time with both packed / BLAS (9 interleaved runs, 1 and 2 threads):
# 32 -> 32 3x3 32x32 B64 0.81 / 0.84, 64 -> 64 0.87 / 0.93, 16 -> 32 16x16 0.87 / 0.86, conv1d
# 40 -> 64 k5 0.97 / 0.95, seed 3 -> 16 (BLAS backward: Og = 16) 1.00 / 0.99.
PACKED_BACKWARD = VECTOR_BYTES == 64


def use_direct(Cg, Og):
    """The strategy for a convolution with Cg input and Og output channels per group."""
    return Cg * Og <= DIRECT_MAX_CG_OG


# ---------------------------------------------------------------------------------------------
# 1. Index arithmetic: which output columns q read an input column inside the image
# ---------------------------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _valid_columns(off, sw, W, Wo):
    """[q_lo, q_hi): the output columns q whose input column q * sw + off lies in [0, W)."""
    q_lo = 0 if off >= 0 else (-off + sw - 1) // sw
    q_hi = min(Wo, (W - 1 - off) // sw + 1) if W - 1 - off >= 0 else 0
    return q_lo, max(q_lo, q_hi)


# Loops below index rows with unsigned integers (``_u``): for a signed index Numba adds the
# negative-index wraparound, which kept LLVM from vectorising the copies (2x slower im2col).
_u = np.uint64


@njit(cache=True, inline="always")
def _axpy(a, x, x0, y, y0, n):
    """y[y0 : y0 + n] += a * x[x0 : x0 + n] on 1-D contiguous rows."""
    for t in range(n):
        y[_u(y0 + t)] += a * x[_u(x0 + t)]


# ---------------------------------------------------------------------------------------------
# 2. im2col and col2im of one row block of one image, one group
# ---------------------------------------------------------------------------------------------
# cols row (c * kh + i) * kw + j, column (oh - oh0) * Wo + q holds x[c0 + c, ih, iw] with
# ih = oh * sh - pt + i * dh, iw = q * sw - pl + j * dw; zero where (ih, iw) is padding.

# Stride 1 through calls with the literal 1 (``_im2col``, ``_col2im``, ``_im2col_panels``):
# Numba compiles such a call for the constant, and the copies vectorise. With the stride a
# run-time value: im2col 0.43 against 0.33 ms, col2im 0.35 against 0.32 (16 -> 32 3x3 at 16x16,
# 32 images, one thread); the panel im2col 4x slower.

@njit(cache=True)
def _im2col(xb, c0, Cg, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, Wo, cols):
    if sw == 1:
        _im2col_rows(xb, c0, Cg, kh, kw, sh, 1, pt, pl, dh, dw, oh0, oh1, Wo, cols)
    else:
        _im2col_rows(xb, c0, Cg, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, Wo, cols)


@njit(cache=True)
def _im2col_rows(xb, c0, Cg, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, Wo, cols):
    H, W = xb.shape[1], xb.shape[2]
    zero = cols.dtype.type(0)
    for c in range(Cg):
        for i in range(kh):
            for j in range(kw):
                dst = cols[(c * kh + i) * kw + j]
                off = j * dw - pl
                q_lo, q_hi = _valid_columns(off, sw, W, Wo)
                for oh in range(oh0, oh1):
                    base = (oh - oh0) * Wo
                    ih = oh * sh - pt + i * dh
                    if ih < 0 or ih >= H:
                        q_lo_row, q_hi_row = 0, 0
                    else:
                        q_lo_row, q_hi_row = q_lo, q_hi
                        src = xb[c0 + c, ih]
                        if sw == 1:  # a contiguous copy
                            for q in range(q_lo_row, q_hi_row):
                                dst[_u(base + q)] = src[_u(q + off)]
                        else:
                            for q in range(q_lo_row, q_hi_row):
                                dst[_u(base + q)] = src[_u(q * sw + off)]
                    for q in range(q_lo_row):
                        dst[_u(base + q)] = zero
                    for q in range(q_hi_row, Wo):
                        dst[_u(base + q)] = zero


@njit(cache=True)
def _im2col_panels(xb, c0, Cg, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, Wo, panels):
    """``_im2col`` into the (ceil(P / nr), K, nr) k-major panels ``packed_gemm`` takes as its
    right operand: cols[r, t] goes to panels[t // nr, r, t % nr]. Panel by panel, and within a
    panel row by row (r), so that the writes run through each panel in order (taking the rows
    of cols in turn, as ``_im2col`` does, scattered every write 128 bytes apart and ran 2.4x
    slower). A panel's columns are cut into runs that stay inside one output row; each run of
    a row r is zeros for padding and a copy (contiguous when the stride is 1). Columns past P
    in the last panel are zeroed (``packed_gemm`` keeps only the valid columns of that panel,
    but stale scratch there could hold subnormals, which slow every multiply that meets them)."""
    H, W = xb.shape[1], xb.shape[2]
    n_panels, K, nr = panels.shape
    # per row r = (c * kh + i) * kw + j of cols: channel, row offset, column offset, and the
    # output columns [q_lo, q_hi) whose input column is inside the image
    taps = np.empty((K, 5), np.int64)
    for c in range(Cg):
        for i in range(kh):
            for j in range(kw):
                r = (c * kh + i) * kw + j
                off = j * dw - pl
                q_lo, q_hi = _valid_columns(off, sw, W, Wo)
                taps[r, 0], taps[r, 1], taps[r, 2], taps[r, 3], taps[r, 4] = c0 + c, i * dh - pt, off, q_lo, q_hi
    P = (oh1 - oh0) * Wo
    if sw == 1:  # see _im2col
        _panel_runs(xb, taps, oh0, Wo, sh, 1, P, panels)
    else:
        _panel_runs(xb, taps, oh0, Wo, sh, sw, P, panels)


@njit(cache=True)
def _panel_runs(xb, taps, oh0, Wo, sh, sw, P, panels):
    """The writes of ``_im2col_panels``: columns [0, P) of every panel row, in runs that stay
    inside one output row."""
    H = xb.shape[1]
    n_panels, K, nr = panels.shape
    for p in range(n_panels):
        panel = panels[p]
        t, t_end = p * nr, min(P, (p + 1) * nr)
        while t < t_end:
            oh = oh0 + t // Wo
            q0 = t % Wo
            n = min(Wo - q0, t_end - t)
            lane = t - p * nr  # the panel column of output column q0
            for r in range(K):
                dst = panel[r]
                ih = oh * sh + taps[r, 1]
                if ih < 0 or ih >= H:
                    _fill_zero(dst, lane, n)
                    continue
                # [q0, a) zeros, [a, e) copied, [e, q0 + n) zeros
                a = min(max(taps[r, 3], q0), q0 + n)
                e = min(max(taps[r, 4], a), q0 + n)
                _fill_zero(dst, lane, a - q0)
                src = xb[taps[r, 0], ih]
                off = taps[r, 2]
                for u in range(a, e):
                    dst[_u(lane + u - q0)] = src[_u(u * sw + off)]
                _fill_zero(dst, lane + e - q0, q0 + n - e)
            t += n
    rest = n_panels * nr - P  # the last panel's unused columns: zeros, not stale scratch
    if rest > 0:
        for r in range(K):
            _fill_zero(panels[n_panels - 1, r], nr - rest, rest)


@njit(cache=True)
def _pack_columns(a, panels):
    """a (M, N) -> panels (ceil(N / nr), M, nr): panel p holds columns [p nr, (p + 1) nr) of
    every row, k-major (``packed_gemm``'s right operand for a product by a); missing columns 0."""
    M, N = a.shape
    n_panels, _, nr = panels.shape
    for p in range(n_panels):
        n0 = p * nr
        width = min(nr, N - n0)
        for i in range(M):
            src, dst = a[i], panels[p, i]
            for c in range(width):
                dst[c] = src[_u(n0 + c)]
            _fill_zero(dst, width, nr - width)


@njit(cache=True)
def _pack_transposed_columns(a, panels):
    """a (M, N) -> panels (ceil(M / nr), N, nr) of a^T: panel p holds rows [p nr, (p + 1) nr)
    of a as columns (``packed_gemm``'s right operand for a product by a^T): the recurrent
    family's ``pack_transposed`` (rows of a need only be contiguous), after zeroing the last
    panel's missing columns (stale scratch could hold subnormals)."""
    n_panels, N, nr = panels.shape
    height = a.shape[0] - (n_panels - 1) * nr
    for t in range(N):
        _fill_zero(panels[n_panels - 1, t], height, nr - height)
    pack_transposed(panels, 0, a)


@njit(cache=True, inline="always")
def _fill_zero(y, y0, n):
    """y[y0 : y0 + n] = 0 on a 1-D contiguous row."""
    zero = y.dtype.type(0)
    for t in range(n):
        y[_u(y0 + t)] = zero


@njit(cache=True)
def _col2im(cols, c0, Cg, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, Wo, dxb):
    """dxb[c0 + c, ih, iw] += cols[row, column]: the transpose of ``_im2col`` (padding dropped)."""
    if sh == 1 and sw == 1:
        _col2im_rows(cols, c0, Cg, kh, kw, 1, 1, pt, pl, dh, dw, oh0, oh1, Wo, dxb)
    else:
        _col2im_rows(cols, c0, Cg, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, Wo, dxb)


@njit(cache=True)
def _col2im_rows(cols, c0, Cg, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, Wo, dxb):
    H, W = dxb.shape[1], dxb.shape[2]
    for c in range(Cg):
        for i in range(kh):
            row_off = i * dh - pt
            oh_lo, oh_hi = _valid_columns(row_off, sh, H, oh1)  # rows whose input row is inside
            for j in range(kw):
                src = cols[(c * kh + i) * kw + j]
                off = j * dw - pl
                q_lo, q_hi = _valid_columns(off, sw, W, Wo)
                for oh in range(max(oh0, oh_lo), oh_hi):
                    dst = dxb[c0 + c, oh * sh + row_off]
                    base = (oh - oh0) * Wo
                    if sw == 1:
                        for q in range(q_lo, q_hi):
                            dst[_u(q + off)] += src[_u(base + q)]
                    else:
                        for q in range(q_lo, q_hi):
                            dst[_u(q * sw + off)] += src[_u(base + q)]


# ---------------------------------------------------------------------------------------------
# 3. im2col + GEMM kernels
# ---------------------------------------------------------------------------------------------
# Work item `item` is image b = item // split and, within it, the row blocks part, part + split,
# ... (part = item % split). Worker w takes items w, w + n_workers, ... and uses scratch [w]; dx
# goes to dx_parts[part], dw and db to [worker]: no two threads ever write the same memory.

@njit(cache=True, inline="always")
def _gemm_layout(x, w3, scratch, Ho, rows, split):
    """(G, Og, K, Cg, n_workers, n_items, n_blocks) of one im2col + GEMM launch."""
    G, Og, K = w3.shape
    return G, Og, K, x.shape[1] // G, scratch.shape[0], x.shape[0] * split, (Ho + rows - 1) // rows


@njit(cache=True, inline="always")
def _gemm_tile(item, block, split, rows, Ho, Wo):
    """(b, oh0, oh1, t0, P): work item's image, row block [oh0, oh1), first column t0 and width P."""
    oh0 = block * rows
    oh1 = min(Ho, oh0 + rows)
    return item // split, oh0, oh1, oh0 * Wo, (oh1 - oh0) * Wo


@serial_and_parallel()
def _forward_gemm(x, w3, bias, use_bias, sh, sw, pt, pl, dh, dw, kh, kw, Ho, Wo, rows, split,
                  y3, scratch, packed, nr):
    """packed: the product through ``packed_gemm`` with the tile im2col'd into panels of nr
    columns (see PACKED_FORWARD); else im2col into a (K, P) tile and BLAS."""
    G, Og, K, Cg, n_workers, n_items, n_blocks = _gemm_layout(x, w3, scratch, Ho, rows, split)
    for worker in prange(n_workers):
        for item in range(worker, n_items, n_workers):
            for block in range(item % split, n_blocks, split):
                b, oh0, oh1, t0, P = _gemm_tile(item, block, split, rows, Ho, Wo)
                n_panels = (P + nr - 1) // nr
                cols = scratch[worker, : K * P].reshape((K, P))
                panels = scratch[worker, : n_panels * K * nr].reshape((n_panels, K, nr))
                for g in range(G):
                    y_tile = y3[b, g * Og : (g + 1) * Og, t0 : t0 + P]
                    if packed:
                        _im2col_panels(x[b], g * Cg, Cg, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, Wo, panels)
                        packed_gemm(w3[g][:, :0], w3[g], panels, y_tile, False)
                    else:
                        _im2col(x[b], g * Cg, Cg, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, Wo, cols)
                        gemm(1.0, w3[g], cols, 0.0, y_tile)
                    if use_bias:  # while the tile is in cache
                        for o in range(g * Og, (g + 1) * Og):
                            row = y3[b, o]
                            for t in range(t0, t0 + P):
                                row[_u(t)] += bias[o]


@serial_and_parallel(fastmath=_REASSOC)
def _backward_gemm(x, w3, dy3, need_dx, need_dw, need_db, sh, sw, pt, pl, dh, dw, kh, kw, Ho, Wo,
                   rows, split, dx_parts, dw_parts, db_parts, scratch, dscratch, packed, w3t, pscratch, nr):
    """packed (see PACKED_BACKWARD): both products through ``packed_gemm``, dy's tile packed
    into panels (pscratch) for each: dw^T (K, Og) += cols dy^T into dw_parts, which then holds
    dw transposed, and dcols = w3t[g] dy with w3t the weights transposed (G, K, Og)."""
    G, Og, K, Cg, n_workers, n_items, n_blocks = _gemm_layout(x, w3, scratch, Ho, rows, split)
    for worker in prange(n_workers):
        for item in range(worker, n_items, n_workers):
            part = item % split  # this item's dx goes to dx_parts[part]
            for block in range(part, n_blocks, split):
                b, oh0, oh1, t0, P = _gemm_tile(item, block, split, rows, Ho, Wo)
                dcols = dscratch[worker, : K * P].reshape((K, P))
                cols = scratch[worker, : K * P].reshape((K, P))
                n_og, n_p = (Og + nr - 1) // nr, (P + nr - 1) // nr
                dy_t = pscratch[worker, : n_og * P * nr].reshape((n_og, P, nr))
                dy_p = pscratch[worker, : n_p * Og * nr].reshape((n_p, Og, nr))
                for g in range(G):
                    dy_tile = dy3[b, g * Og : (g + 1) * Og, t0 : t0 + P]
                    if need_dw:
                        _im2col(x[b], g * Cg, Cg, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, Wo, cols)
                        if packed:
                            _pack_transposed_columns(dy_tile, dy_t)
                            packed_gemm(cols[:, :0], cols, dy_t, dw_parts[worker, g], True)
                        else:
                            gemm(1.0, dy_tile, cols, 1.0, dw_parts[worker, g], trans_b=True)
                    if need_dx:
                        if packed:
                            _pack_columns(dy_tile, dy_p)
                            packed_gemm(w3t[g][:, :0], w3t[g], dy_p, dcols, False)
                        else:
                            gemm(1.0, w3[g], dy_tile, 0.0, dcols, trans_a=True)
                        _col2im(dcols, g * Cg, Cg, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, Wo,
                                dx_parts[part, b])
                    if need_db:
                        for o in range(g * Og, (g + 1) * Og):
                            total = dy3.dtype.type(0)
                            row = dy3[b, o]
                            for t in range(t0, t0 + P):
                                total += row[_u(t)]
                            db_parts[worker, o] += total


# ---------------------------------------------------------------------------------------------
# 4. Direct kernels (few channels per group: depthwise)
# ---------------------------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _direct_tap(wv, image, out, i, j, sh, sw, pt, pl, dh, dw, to_out):
    """Kernel tap (i, j) between an image plane (H, W) and an output plane (Ho, Wo). to_out (the
    forward): out[oh, q] += wv * image[oh * sh + i * dh - pt, q * sw + j * dw - pl]; otherwise
    (the input gradient, its transpose) image[...] += wv * out[oh, q]. Padding is skipped."""
    if sw == 1:  # see _im2col
        _direct_tap_rows(wv, image, out, i, j, sh, 1, pt, pl, dh, dw, to_out)
    else:
        _direct_tap_rows(wv, image, out, i, j, sh, sw, pt, pl, dh, dw, to_out)


@njit(cache=True)
def _direct_tap_rows(wv, image, out, i, j, sh, sw, pt, pl, dh, dw, to_out):
    H, W = image.shape
    Ho, Wo = out.shape
    row_off, off = i * dh - pt, j * dw - pl
    oh_lo, oh_hi = _valid_columns(row_off, sh, H, Ho)  # rows whose input row is inside
    q_lo, q_hi = _valid_columns(off, sw, W, Wo)
    for oh in range(oh_lo, oh_hi):
        img, row = image[oh * sh + row_off], out[oh]
        if to_out:
            if sw == 1:
                _axpy(wv, img, q_lo + off, row, q_lo, q_hi - q_lo)
            else:
                for q in range(q_lo, q_hi):
                    row[_u(q)] += wv * img[_u(q * sw + off)]
        elif sw == 1:
            _axpy(wv, row, q_lo, img, q_lo + off, q_hi - q_lo)
        else:
            for q in range(q_lo, q_hi):
                img[_u(q * sw + off)] += wv * row[_u(q)]


@serial_and_parallel()
def _forward_direct(x, w, bias, use_bias, sh, sw, pt, pl, dh, dw, y):
    B, C = x.shape[0], x.shape[1]
    O, Cg, kh, kw = w.shape
    Ho, Wo = y.shape[2], y.shape[3]
    Og = O // (C // Cg)
    for item in prange(B * O):
        b, o = item // O, item % O
        c0 = (o // Og) * Cg
        start = bias[o] if use_bias else y.dtype.type(0)
        for oh in range(Ho):
            for q in range(Wo):
                y[b, o, oh, q] = start
        for c in range(Cg):
            for i in range(kh):
                for j in range(kw):
                    _direct_tap(w[o, c, i, j], x[b, c0 + c], y[b, o], i, j, sh, sw, pt, pl, dh, dw,
                                True)


@serial_and_parallel()
def _backward_input_direct(w, dy, sh, sw, pt, pl, dh, dw, dx):
    """dx (zeroed by the caller) += the scatter of every output gradient: one (image, input
    channel) plane per item, so no two items write the same plane."""
    B, C = dx.shape[0], dx.shape[1]
    O, Cg, kh, kw = w.shape
    Og = O // (C // Cg)
    for item in prange(B * C):
        b, cin = item // C, item % C
        g, c = cin // Cg, cin % Cg
        for o in range(g * Og, (g + 1) * Og):
            for i in range(kh):
                for j in range(kw):
                    _direct_tap(w[o, c, i, j], dx[b, cin], dy[b, o], i, j, sh, sw, pt, pl, dh, dw,
                                False)


@serial_and_parallel(fastmath=_REASSOC)
def _backward_weight_direct(x, dy, need_db, sh, sw, pt, pl, dh, dw, dw_out, db):
    """dw[o] and db[o] for one output channel o per item (summed over the batch inside)."""
    B, C, H, W = x.shape
    O, Cg, kh, kw = dw_out.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    Og = O // (C // Cg)
    for o in prange(O):
        c0 = (o // Og) * Cg
        for c in range(Cg):
            for i in range(kh):
                for j in range(kw):
                    off = j * dw - pl
                    q_lo, q_hi = _valid_columns(off, sw, W, Wo)
                    total = dy.dtype.type(0)
                    for b in range(B):
                        for oh in range(Ho):
                            ih = oh * sh - pt + i * dh
                            if ih < 0 or ih >= H:
                                continue
                            g, src = dy[b, o, oh], x[b, c0 + c, ih]
                            for q in range(q_lo, q_hi):
                                total += g[_u(q)] * src[_u(q * sw + off)]
                    dw_out[o, c, i, j] = total
        if need_db:
            total = dy.dtype.type(0)
            for b in range(B):
                for oh in range(Ho):
                    for q in range(Wo):
                        total += dy[b, o, oh, q]
            db[o] = total


# ---------------------------------------------------------------------------------------------
# 5. Entry points
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _worker_threads(parallel):
    """Yields how many Numba workers to use: 1 for the serial loops (BLAS keeps its own
    threads), else Numba's thread count with every BLAS held to one thread meanwhile
    (``_common.one_blas_thread``; one worker when BLAS cannot be held)."""
    if not parallel:
        yield 1
        return
    with one_blas_thread() as held:
        yield numba.get_num_threads() if held else 1


def _plan(B, K, Ho, Wo, itemsize, n_threads, tile_bytes):
    """(rows per block, split per image, workers): tiles of at most tile_bytes, and enough work
    items for 2 per thread (attention's rule), splitting images into row blocks only when
    needed; one worker (one scratch set) per thread, at most one per work item."""
    rows = max(1, min(Ho, tile_bytes // max(1, K * Wo * itemsize)))
    n_blocks = -(-Ho // rows)
    split = 1 if B >= 2 * n_threads else max(1, min(n_blocks, -(-2 * n_threads // B)))
    return rows, split, min(n_threads, B * split)


def cpu_forward(x, w, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """conv2d forward on C-contiguous NumPy arrays; same contract as ``reference_forward``."""
    (sh, sw), (dh, dw), ((pt, pb), (pl, pr)) = stride, dilation, padding
    B, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    Og = O // groups
    Ho = (H + pt + pb - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + pl + pr - dw * (kw - 1) - 1) // sw + 1
    use_bias = bias is not None
    bias_arr = bias if use_bias else np.zeros(1, x.dtype)
    y = np.empty((B, O, Ho, Wo), x.dtype)
    if y.size == 0:
        return y
    work = B * O * Ho * Wo * Cg * kh * kw
    if use_direct(Cg, Og):
        loop = _forward_direct.for_work(work, CPU_PARALLEL_MIN_WORK)
        loop(x, w, bias_arr, use_bias, sh, sw, pt, pl, dh, dw, y)
        return y
    K = Cg * kh * kw
    w3 = w.reshape(groups, Og, K)
    parallel = work >= CPU_PARALLEL_MIN_WORK
    with _worker_threads(parallel) as n_threads:
        rows, split, n_workers = _plan(B, K, Ho, Wo, x.itemsize, n_threads, FORWARD_TILE_BYTES)
        nr = panel_width(x.dtype)
        # a tile's panels round its rows * Wo columns up to whole panels
        scratch = np.empty((n_workers, K * (-(-rows * Wo // nr) * nr)), x.dtype)
        loop = _forward_gemm.parallel if parallel else _forward_gemm.serial
        loop(x, w3, bias_arr, use_bias, sh, sw, pt, pl, dh, dw, kh, kw, Ho, Wo, rows, split,
             y.reshape(B, O, Ho * Wo), scratch, PACKED_FORWARD, nr)
    return y


def cpu_backward(x, w, dy, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1,
                 has_bias=True, need_input=True, need_weight=True):
    """(dx, dw, dbias) on C-contiguous NumPy arrays; each is None when not asked for
    (``need_input``, ``need_weight``, ``has_bias``)."""
    (sh, sw), (dh, dw), ((pt, _), (pl, _)) = stride, dilation, padding
    B, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    Og = O // groups
    Ho, Wo = dy.shape[2], dy.shape[3]
    dtype = x.dtype
    work = B * O * Ho * Wo * Cg * kh * kw
    if dy.size == 0:
        return (np.zeros_like(x) if need_input else None, np.zeros_like(w) if need_weight else None,
                np.zeros(O, dtype) if has_bias else None)
    if use_direct(Cg, Og):
        dx = dwt = db = None
        if need_input:
            dx = np.zeros_like(x)
            _backward_input_direct.for_work(work, CPU_PARALLEL_MIN_WORK)(w, dy, sh, sw, pt, pl, dh, dw, dx)
        if need_weight or has_bias:
            dwt = np.empty_like(w)
            db = np.empty(O, dtype)
            # dw is cheap next to reading x and dy once more; computed even if only db is needed
            _backward_weight_direct.for_work(work, CPU_PARALLEL_MIN_WORK)(
                x, dy, has_bias, sh, sw, pt, pl, dh, dw, dwt, db)
        return dx, (dwt if need_weight else None), (db if has_bias else None)
    K = Cg * kh * kw
    w3 = w.reshape(groups, Og, K)
    parallel = work >= CPU_PARALLEL_MIN_WORK
    with _worker_threads(parallel) as n_threads:
        rows, split, n_workers = _plan(B, K, Ho, Wo, x.itemsize, n_threads, BACKWARD_TILE_BYTES)
        # dx is accumulated by col2im: zeros; one copy per split of an image (see section 3)
        dx_parts = np.zeros((split if need_input else 1,) + (x.shape if need_input else (1, 1, 1, 1)), dtype)
        nr = panel_width(dtype)
        packed = PACKED_BACKWARD and Og >= nr
        # packed: the parts hold dw transposed, (K, Og) per group
        dw_part = (K, Og) if packed else (Og, K)
        dw_parts = np.zeros((n_workers, groups) + dw_part if need_weight else (1, 1, 1, 1), dtype)
        db_parts = np.zeros((n_workers, O), dtype)
        scratch = np.empty((n_workers, K * rows * Wo), dtype)
        dscratch = np.empty((n_workers, K * rows * Wo), dtype)
        w3t = np.ascontiguousarray(w3.transpose(0, 2, 1)) if packed else np.empty((groups, 1, 1), dtype)
        # dy's tile as panels: (ceil(Og / nr), P, nr) for dw, (ceil(P / nr), Og, nr) for dx
        tile_p = rows * Wo
        panel_elems = max(-(-Og // nr) * tile_p, -(-tile_p // nr) * Og) * nr
        pscratch = np.empty((n_workers, panel_elems), dtype)
        loop = _backward_gemm.parallel if parallel else _backward_gemm.serial
        loop(x, w3, dy.reshape(B, O, Ho * Wo), need_input, need_weight, has_bias, sh, sw, pt, pl,
             dh, dw, kh, kw, Ho, Wo, rows, split, dx_parts, dw_parts, db_parts, scratch, dscratch,
             packed, w3t, pscratch, nr)
    dx = (dx_parts[0] if split == 1 else dx_parts.sum(axis=0)) if need_input else None
    dwt = None
    if need_weight:
        dwt = dw_parts.sum(axis=0)
        dwt = np.ascontiguousarray(dwt.transpose(0, 2, 1)) if packed else dwt
        dwt = dwt.reshape(w.shape)
    db = db_parts.sum(axis=0) if has_bias else None
    return dx, dwt, db
