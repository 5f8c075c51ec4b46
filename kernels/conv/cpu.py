r"""2-D convolution on the CPU: Numba threads, im2col tiles that stay in cache, BLAS on each tile.

The math is the reference's (``reference.py``). On a CPU with AMX tiles, float32 convolutions
of stride 1 with channel counts that fill the tiles (``amx.worth_it``) and at least one image
per thread go to ``amx.py`` first (forward, dx and dw each), which returns None where it does
not apply. Otherwise three strategies, chosen by shape (``use_direct``, ``use_shifted``):

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

**Shifted** (``SHIFTED``, every stride): no im2col at all. With stride 1 and the padded image's
planes laid flat, rows Wp apart, and output position (oh, q) numbered oh * Wp + q, each tap's
row of the im2col matrix is the flat image shifted by a fixed amount, so the register-tile
kernel reads it straight from the padded image (``_shifted_gemm.py``)::

    y[b, g] (Og, Ho * Wp)  = w[g] (Og, K) @ X_b          X_b[(c, i, j), q] = flat_b[shift(c, i, j) + q]
    dx[b, g] (Cg, H * Wp)  = w[g]^T (Cg, Og kh kw) @ DY_b   dy laid out the same way, shifted back
    dw[g]^T per tap (i, j) += X_b, shifted by the tap (Cg, Ho * Wp) @ dy[b, g]^T   (packed_gemm)

A stride s cuts the padded image into its s_h x s_w *phases* (every s-th row from row a,
every s-th column from column b): tap (i, j) reads only phase (i dh mod s_h, j dw mod s_w),
shifted by (i dh // s_h, j dw // s_w), so the strided convolution is the same product over
the phases' planes (rows Wq = ceil(Wp / s_w) apart), and dx is computed phase by phase, each
from the taps that read it. The Wq - Wo columns at the end of every output row are computed
and dropped. Work items are whole images. Memory beyond inputs and outputs, per thread: one
image's phases (C x Hp x Wp, rounded up to whole phase rows) and forward a block of rows of one
group's output in the phase width (at most ``SHIFTED_OUT_BYTES``); backward dy in that layout
(all O channels), dy^T as panels and one phase of one group's input gradient, dw^T per tap
and db: each about one image's input or output.

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
import functools

import numba
import numpy as np
from numba import njit, prange

from .._common import parallel_threshold, serial_and_parallel
from .._common import one_blas_thread
from ..attention.cpu import gemm
from ..recurrent._packed_gemm import MR, VECTOR_BYTES, pack_transposed, packed_gemm, panel_width
from ._shifted_gemm import shifted_gemm
from .amx import amx_conv, amx_input_grad, amx_weight_grad

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

# Convolutions skip im2col altogether (``_shifted_gemm.py``: each tap's row of the im2col
# matrix is a shifted slice of the padded image, or of one of its phases when strided).
# Forward y = w @ X; backward dx is the
# same product between w^T and dy laid out like the padded input (taps shifted the other way),
# and dw^T += X dy^T through ``packed_gemm`` with the shifted slices as its left operand.
# Time against the im2col path, one thread / two, forward and backward (medians of 15
# interleaved runs, float32, B32 at 16x16 and 32x32, B16 otherwise; 3x3 unless said):
#   AVX-512 Xeon (against the packed im2col path): 16 -> 32 16x16 fwd 0.50 / 0.63, bwd 0.67 /
#   0.70; 64 -> 64 32x32 fwd 0.77 / 0.84, bwd 0.83 / 0.85; conv1d 40 -> 64 k5 T400 fwd 0.81-0.85,
#   bwd 0.88-0.93; 3 -> 16 32x32 fwd 0.63 / 0.72; 8 -> 8 32x32 fwd 0.35 / 0.51;
#   the same Xeon with AVX2 code (NUMBA_CPU_NAME=haswell: 32-byte vectors, 6-row tiles, and
#   OpenBLAS's Haswell kernels for im2col + BLAS), one thread: 16 -> 32 fwd 0.63-0.65, bwd
#   0.56-0.69; 64 -> 64 0.89 / 0.85; conv1d 0.90 / 0.93; 8 -> 8 fwd 0.45, bwd 0.60.
# Backward lost where dw^T's tile is mostly empty (``use_shifted``): 3 -> 16 (3 rows, 16 of 32
# columns) 3.0x / 2.6x the im2col path's time, 8 -> 8 1.16x / 1.12x. Not measured on an AVX2
# CPU itself (a Zen 3). Stride 2 (the default vqa model's backbone at B64, 3x3, one thread,
# AVX-512): 16 -> 32 at 32x32 fwd 0.70, bwd 0.83; 32 -> 32 at 16x16 fwd 0.83, bwd 0.98; at
# 64x64 0.87 / 0.84 and 0.81 / 0.71; 64 -> 64 at 32x32 B16 0.90 / 0.81. A depthwise forward
# (one-row tiles: per tap two loads and two multiply-adds per 32 outputs, where the direct
# loop's row axpy loads and stores every output) against the direct loop, one thread / two:
# 64 ch 3x3 32x32 B16 0.60 / 0.78, 128 ch 5x5 56x56 B8 0.50 / 0.54, stride 2 0.96-0.99; its
# backward, at stride 1, too, with dw as dot products (one per entry of the group's Cg x Og
# block: the tiles would be one row and one column): 64 ch 3x3 32x32 B16 0.40 / 0.38, 128 ch
# 5x5 56x56 B8 0.36 / 0.38 of the direct loops' time; at stride 2 (32 ch 16x16 B32) 1.20, so
# the direct loops keep it.
SHIFTED = True
SHIFTED_BACKWARD_MIN_OG = 1  # in panels; Cg in tiles of MR rows (0: backward at any size)
# Forward computes an image's output this many bytes at a time (whole output rows, one at least)
# and copies the block out while it is in L2, so the scratch does not grow with the image.
SHIFTED_OUT_BYTES = 256 * 1024


def use_direct(Cg, Og):
    """The strategy for a convolution with Cg input and Og output channels per group."""
    return Cg * Og <= DIRECT_MAX_CG_OG


def use_shifted(B, n_threads, Cg=None, Og=None, dtype=None, stride=(1, 1)):
    """Whether a convolution takes the shifted strategy (SHIFTED): an image for every thread
    (its work items are whole images). Backward (Cg, Og and dtype given) also needs a panel
    of output channels per group (dw^T's columns; fewer leave the tile's columns partly
    empty) and MR input channels (dw^T's rows): at 3 -> 16 and 8 -> 8 it lost to im2col (see
    SHIFTED); or else so few channels per group that the direct loops would take it
    (depthwise), at stride 1: there dw is one dot product per entry (at stride 2 it lost)."""
    if not (SHIFTED and B >= n_threads):
        return False
    if Og is None:
        return True
    if use_direct(Cg, Og):
        return tuple(stride) == (1, 1)
    return Og >= SHIFTED_BACKWARD_MIN_OG * panel_width(dtype) and Cg >= SHIFTED_BACKWARD_MIN_OG * MR


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
# 4. Shifted kernels: the im2col matrix is never built
# ---------------------------------------------------------------------------------------------
# One image's padded input is cut into its stride *phases* (``_phase_image``): phase (a, b)
# of channel c holds the padded rows a, a + sh, a + 2 sh, ... and columns b, b + sw, ..., an
# Hq x Wq plane; the planes lie end to end in a flat buffer, channel-major, then phase. Output
# position (oh, q) gets the flat index oh * Wq + q; tap (c, i, j) reads phase ((i dh) % sh,
# (j dw) % sw) of channel c shifted by ((i dh) // sh) * Wq + (j dw) // sw, the same for every
# output position (``_ShiftedGeometry``). With stride 1 there is one phase, the padded image.
# Each worker takes whole images, w, w + n_workers, ...; its buffers' padding and tails are
# zeroed once by the caller and never written, only the positions of input elements.

@njit(cache=True)
def _phase_image(xb, flat, pt, pl, sh, sw, Hq, Wq):
    """flat[((c sh + a) sw + b) Hq Wq + r Wq + t] = xb[c, ih, iw] where ih + pt = r sh + a and
    iw + pl = t sw + b (the padding stays as it is)."""
    if sh == 1 and sw == 1:  # one phase: contiguous row copies (see _im2col on the literal 1)
        _phase_rows(xb, flat, pt, pl, 1, 1, Hq, Wq)
    else:
        _phase_rows(xb, flat, pt, pl, sh, sw, Hq, Wq)


@njit(cache=True)
def _phase_rows(xb, flat, pt, pl, sh, sw, Hq, Wq):
    C, H, W = xb.shape
    plane = Hq * Wq
    for c in range(C):
        for ih in range(H):
            src = xb[c, ih]
            a, r = (ih + pt) % sh, (ih + pt) // sh
            for b in range(sw):
                first = (b - pl) % sw  # the first input column of phase b
                base = ((c * sh + a) * sw + b) * plane + r * Wq + (first + pl) // sw
                for u in range((W - first + sw - 1) // sw):
                    flat[_u(base + u)] = src[_u(first + u * sw)]


@njit(cache=True)
def _take_image(flat, Wq, out, bias, use_bias):
    """out[c, h, t] = flat[c, h * Wq + t] (+ bias[c]): the valid columns of rows Wq wide."""
    C, H, W = out.shape
    for c in range(C):
        add = bias[c] if use_bias else out.dtype.type(0)
        src = flat[c]
        for h in range(H):
            dst = out[c, h]
            start = h * Wq
            for t in range(W):
                dst[_u(t)] = src[_u(start + t)] + add


@njit(cache=True)
def _put_phase(dflat, r0, a, b, pt, pl, sh, sw, Wq, dx):
    """dx[c, ih, iw] = dflat[c, (r - r0) * Wq + t] for the input elements of phase (a, b):
    ih + pt = r sh + a, iw + pl = t sw + b."""
    C, H, W = dx.shape
    first = (b - pl) % sw
    t0 = (first + pl) // sw
    for c in range(C):
        src = dflat[c]
        for ih in range((a - pt) % sh, H, sh):
            dst = dx[c, ih]
            start = ((ih + pt) // sh - r0) * Wq + t0
            if sw == 1:
                for u in range(W):
                    dst[_u(u)] = src[_u(start + u)]
            else:
                for u in range((W - first + sw - 1) // sw):
                    dst[_u(first + u * sw)] = src[_u(start + u)]


@serial_and_parallel()
def _forward_shifted(x, w3, bias, use_bias, taps, pt, pl, sh, sw, Hq, Wq, rows, nr, xs, ys, y):
    """y[b, g] = w3[g] @ X of the image's phases (``shifted_gemm``), ``rows`` output rows at a
    time (ys holds one block), then the valid columns."""
    B, C = x.shape[0], x.shape[1]
    G, Og = w3.shape[0], w3.shape[1]
    Ho = y.shape[2]
    image = sh * sw * Hq * Wq  # one channel's phases
    n_workers = xs.shape[0]
    for worker in prange(n_workers):
        flat, out = xs[worker], ys[worker]
        for b in range(worker, B, n_workers):
            _phase_image(x[b], flat, pt, pl, sh, sw, Hq, Wq)
            for g in range(G):
                for oh0 in range(0, Ho, rows):
                    oh1 = min(Ho, oh0 + rows)
                    width = ((oh1 - oh0) * Wq + nr - 1) // nr * nr
                    shifted_gemm(w3[g], taps, flat, g * (C // G) * image + oh0 * Wq, out[:, :width])
                    _take_image(out, Wq, y[b, g * Og : (g + 1) * Og, oh0:oh1], bias[g * Og : (g + 1) * Og],
                                use_bias)


@serial_and_parallel(fastmath=_REASSOC)
def _backward_shifted(x, w3t, dy, need_dx, need_dw, need_db, dtaps, shifts, phases, lead, pt, pl,
                      sh, sw, Hq, Wq, xs, dys, dxs, pscratch, dx, dw_parts, db_parts, dw_by_dots):
    """dy[b] goes into dys[worker] (O, Lz) at lead + oh * Wq + q (the rest stays 0).
    dx, phase by phase (row p of ``phases``: a, b, its first column of w3t and one past its
    last, its first and last row r0, r1 of phase rows that hold input rows): the phase's rows
    r0 .. r1 are w3t[g][:, its columns] (Cg, Og x its taps) @ the dy slices at dtaps (each
    tap's shift subtracted), put back into dx. dw: for each tap t at shift shifts[t],
    dw_parts[worker, g, t] (Cg, Og) += X_t (Cg, Q) @ dy^T, X_t the image's phases shifted by
    shifts[t], dy^T packed into panels (``dw_by_dots``: each of dw^T's Cg x Og entries one dot
    product over Q, for few channels per group, whose tiles would be mostly empty)."""
    B, C, H, W = x.shape
    O, Ho, Wo = dy.shape[1], dy.shape[2], dy.shape[3]
    G = w3t.shape[0]
    Cg, Og = C // G, O // G
    image, Q, n_taps = sh * sw * Hq * Wq, Ho * Wq, shifts.shape[0]
    nr = pscratch.shape[3]
    n_workers = xs.shape[0]
    for worker in prange(n_workers):
        flat, dyz, dflat = xs[worker], dys[worker], dxs[worker]
        Lz = dyz.shape[1]
        for b in range(worker, B, n_workers):
            for o in range(O):
                for oh in range(Ho):
                    src, dst = dy[b, o, oh], dyz[o]
                    for t in range(Wo):
                        dst[_u(lead + oh * Wq + t)] = src[_u(t)]
            if need_dw:
                _phase_image(x[b], flat, pt, pl, sh, sw, Hq, Wq)
            for g in range(G):
                if need_dx:
                    for p in range(phases.shape[0]):
                        a, bb, k0, k1, r0, r1 = (phases[p, 0], phases[p, 1], phases[p, 2], phases[p, 3],
                                                 phases[p, 4], phases[p, 5])
                        if r1 <= r0:  # no input row falls in this phase
                            continue
                        width = ((r1 - r0) * Wq + nr - 1) // nr * nr
                        shifted_gemm(w3t[g][:, k0:k1], dtaps[k0:k1], dyz.reshape(O * Lz),
                                     g * Og * Lz + r0 * Wq, dflat[:, :width])
                        _put_phase(dflat, r0, a, bb, pt, pl, sh, sw, Wq, dx[b, g * Cg : (g + 1) * Cg])
                if need_dw and dw_by_dots:  # a few channels per group: plain dot products
                    for t in range(n_taps):
                        for c in range(Cg):
                            start = (g * Cg + c) * image + shifts[t]
                            for o in range(Og):
                                row = dyz[g * Og + o]
                                total = dy.dtype.type(0)
                                for q in range(Q):
                                    total += flat[_u(start + q)] * row[_u(lead + q)]
                                dw_parts[worker, g, t, c, o] += total
                elif need_dw:
                    n_og = (Og + nr - 1) // nr
                    panels = pscratch[worker, :n_og]
                    _pack_transposed_columns(dyz[g * Og : (g + 1) * Og, lead : lead + Q], panels)
                    for t in range(n_taps):
                        start = g * Cg * image + shifts[t]
                        a_t = flat[start : start + Cg * image].reshape((Cg, image))[:, :Q]
                        packed_gemm(a_t[:, :0], a_t, panels, dw_parts[worker, g, t], True)
            if need_db:
                for o in range(O):
                    total = dy.dtype.type(0)
                    for oh in range(Ho):
                        row = dy[b, o, oh]
                        for t in range(Wo):
                            total += row[_u(t)]
                    db_parts[worker, o] += total


# ---------------------------------------------------------------------------------------------
# 5. Direct kernels (few channels per group: depthwise)
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
# 6. Entry points
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


class _ShiftedGeometry:
    """The flat layout of the shifted strategy (section 4) for one convolution."""

    def __init__(self, x_shape, w_shape, stride, padding, dilation, Ho, dtype):
        _, C, H, W = x_shape
        O, Cg, kh, kw = w_shape
        Og = O // (C // Cg)
        (sh, sw), ((pt, pb), (pl, pr)), (dh, dw) = stride, padding, dilation
        self.Hq, self.Wq = -(-(H + pt + pb) // sh), -(-(W + pl + pr) // sw)  # one phase's plane
        plane = self.Hq * self.Wq
        image = sh * sw * plane                    # one channel's phases
        nr = panel_width(dtype)
        self.Q = Ho * self.Wq                      # output positions, rows Wq wide
        self.Qp = -(-self.Q // nr) * nr            # ... rounded up to whole register tiles
        # per tap (i, j): its phase and its shift inside the phase
        taps_ij = [(i, j) for i in range(kh) for j in range(kw)]
        phase = [((i * dh) % sh, (j * dw) % sw) for i, j in taps_ij]
        inside = np.array([((i * dh) // sh) * self.Wq + (j * dw) // sw for i, j in taps_ij], np.int64)
        # per tap: the phase's plane plus the shift (dw's left operands); per (c, i, j), forward's
        # columns of w: the channel's phases too
        self.shifts = np.array([(a * sw + b) * plane for a, b in phase], np.int64) + inside
        self.taps = (np.arange(Cg, dtype=np.int64)[:, None] * image + self.shifts).reshape(-1)
        self.lead = int(inside.max())              # the largest shift inside a phase
        # every read of x + shift stays inside: C images of phases, the largest shift, a tile row
        self.flat = C * image + int(self.shifts.max()) + self.Qp
        # input gradient, phase by phase: (a, b, first and end column of w^T, rows r0 .. r1 of
        # the phase that hold input rows); w^T's columns are ordered (phase, o, tap)
        rows = []
        self.order = []                            # taps in w^T's column order, per phase
        cols = 0
        dQp = nr
        for a in range(sh):
            for b in range(sw):
                mine = [t for t, ph in enumerate(phase) if ph == (a, b)]
                r0, r1 = -(-(pt - a) // sh), -(-(pt + H - a) // sh)
                rows.append((a, b, cols, cols + Og * len(mine), r0, r1))
                self.order.append(mine)
                cols += Og * len(mine)
                dQp = max(dQp, -(-(r1 - r0) * self.Wq // nr) * nr)
        self.phases = np.array(rows, np.int64).reshape(-1, 6)
        self.dQp = dQp
        # dy rows (O of them): `lead` zeros, then Ho rows of Wq, long enough for every read of
        # the input gradient's products (a phase's rows r0 .. r1, whole tiles)
        self.Lz = self.lead + max(self.Q, max(r[4] * self.Wq for r in rows) + dQp)
        # per column (phase, o, tap) of w^T: o's row of dy, shifted back by the tap
        self.dtaps = np.array([o * self.Lz + self.lead - inside[t] for mine in self.order for o in range(Og)
                               for t in mine], np.int64)

    def weights_transposed(self, w, groups):
        """w^T per group with the columns in ``dtaps``' order: (groups, Cg, Og kh kw)."""
        O, Cg, kh, kw = w.shape
        w4 = w.reshape(groups, O // groups, Cg, kh * kw).transpose(0, 2, 1, 3)  # (G, Cg, Og, taps)
        parts = [w4[:, :, :, mine].reshape(groups, Cg, -1) for mine in self.order if mine]
        return np.ascontiguousarray(np.concatenate(parts, axis=2))


def _pairs(v):
    """A (nested) sequence as nested tuples: a cache key."""
    return tuple(_pairs(e) for e in v) if isinstance(v, (tuple, list)) else int(v)


@functools.lru_cache(maxsize=64)
def _shifted_geometry(x_shape, w_shape, stride, padding, dilation, Ho, dtype):
    """``_ShiftedGeometry``, built once per layer shape (a training loop calls every layer with
    the same shapes each step; building it took ~0.14 ms, 15 % of a small forward). Its arrays
    are read-only."""
    g = _ShiftedGeometry(x_shape, w_shape, stride, padding, dilation, Ho, dtype)
    for a in (g.shifts, g.taps, g.phases, g.dtaps):
        a.flags.writeable = False
    return g


def _backward_shifted_call(x, w, dy, stride, padding, dilation, groups, has_bias, need_input,
                           need_weight, parallel):
    """cpu_backward through the shifted kernels (section 4)."""
    (pt, _), (pl, _) = padding
    B = x.shape[0]
    O, Cg, kh, kw = w.shape
    Og, Ho = O // groups, dy.shape[2]
    dtype = x.dtype
    g = _shifted_geometry(x.shape, w.shape, _pairs(stride), _pairs(padding), _pairs(dilation), Ho, dtype)
    n_workers = min(B, numba.get_num_threads()) if parallel else 1
    nr = panel_width(dtype)
    xs = np.zeros((n_workers, g.flat if need_weight else 1), dtype)
    dys = np.zeros((n_workers, O, g.Lz), dtype)
    dxs = np.empty((n_workers, Cg, g.dQp) if need_input else (1, 1, 1), dtype)
    # (its last axis is also how the kernel knows the tile width, needed or not)
    pscratch = np.empty((n_workers, -(-Og // nr), g.Q, nr) if need_weight else (1, 1, 1, nr), dtype)
    # every input element belongs to exactly one phase: dx is written whole
    dx = np.empty_like(x) if need_input else np.empty((1, 1, 1, 1), dtype)
    # dw^T per tap: (groups, kh * kw, Cg, Og) per worker
    dw_parts = np.zeros((n_workers, groups, kh * kw, Cg, Og) if need_weight else (1, 1, 1, 1, 1), dtype)
    db_parts = np.zeros((n_workers, O), dtype)
    w3t = g.weights_transposed(w, groups)
    loop = _backward_shifted.parallel if parallel else _backward_shifted.serial
    loop(x, w3t, dy, need_input, need_weight, has_bias, g.dtaps, g.shifts, g.phases, g.lead, pt, pl,
         stride[0], stride[1], g.Hq, g.Wq, xs, dys, dxs, pscratch, dx, dw_parts, db_parts,
         use_direct(Cg, Og))
    dwt = None
    if need_weight:
        # (groups, kh kw, Cg, Og) -> (groups, Og, Cg, kh kw) -> w's shape
        dwt = np.ascontiguousarray(dw_parts.sum(axis=0).transpose(0, 3, 2, 1)).reshape(w.shape)
    return (dx if need_input else None), dwt, (db_parts.sum(axis=0) if has_bias else None)


def cpu_forward(x, w, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """conv2d forward on C-contiguous NumPy arrays; same contract as ``reference_forward``."""
    (sh, sw), (dh, dw), ((pt, pb), (pl, pr)) = stride, dilation, padding
    B, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    Og = O // groups
    Ho = (H + pt + pb - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + pl + pr - dw * (kw - 1) - 1) // sw + 1
    use_bias = bias is not None
    bias_arr = bias if use_bias else np.zeros(O, x.dtype)
    y = np.empty((B, O, Ho, Wo), x.dtype)
    if y.size == 0:
        return y
    work = B * O * Ho * Wo * Cg * kh * kw
    K = Cg * kh * kw
    w3 = w.reshape(groups, Og, K)
    parallel = work >= CPU_PARALLEL_MIN_WORK
    if parallel:  # on AMX tiles where that applies (``amx.py``), else one of the three below
        y_amx = amx_conv(x, w, bias, stride, padding, dilation, groups)
        if y_amx is not None:
            return y_amx
    # shifted before direct: a depthwise forward too (see SHIFTED)
    if use_shifted(B, numba.get_num_threads() if parallel else 1):
        g = _shifted_geometry(x.shape, w.shape, _pairs(stride), _pairs(padding), _pairs(dilation), Ho, x.dtype)
        n_workers = min(B, numba.get_num_threads()) if parallel else 1
        nr = panel_width(x.dtype)
        # output rows per block: the block (Og x rows x Wq) within SHIFTED_OUT_BYTES
        rows = max(1, min(Ho, SHIFTED_OUT_BYTES // (Og * g.Wq * x.itemsize)))
        xs = np.zeros((n_workers, g.flat), x.dtype)
        ys = np.empty((n_workers, Og, -(-rows * g.Wq // nr) * nr), x.dtype)
        loop = _forward_shifted.parallel if parallel else _forward_shifted.serial
        loop(x, w3, bias_arr, use_bias, g.taps, pt, pl, sh, sw, g.Hq, g.Wq, rows, nr, xs, ys, y)
        return y
    if use_direct(Cg, Og):
        loop = _forward_direct.for_work(work, CPU_PARALLEL_MIN_WORK)
        loop(x, w, bias_arr, use_bias, sh, sw, pt, pl, dh, dw, y)
        return y
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
    if dy.size * w[0].size >= CPU_PARALLEL_MIN_WORK and groups == 1 and tuple(stride) == (1, 1) \
            and tuple(dilation) == (1, 1):
        # on AMX tiles where that applies (``amx.py``), each gradient on its own
        dx = amx_input_grad(x.shape, w, dy, padding) if need_input else None
        dw_db = amx_weight_grad(x, w.shape, dy, padding, has_bias) if need_weight or has_bias else (None, None)
        if dx is not None or dw_db is not None:  # the other one from the kernels below, alone
            if dx is None and need_input:
                dx = _cpu_backward_blas(x, w, dy, stride, padding, dilation, groups, False, True, False)[0]
            if dw_db is None:
                dw_db = _cpu_backward_blas(x, w, dy, stride, padding, dilation, groups, has_bias, False,
                                           need_weight)[1:]
            return dx, (dw_db[0] if need_weight else None), dw_db[1]
    return _cpu_backward_blas(x, w, dy, stride, padding, dilation, groups, has_bias, need_input, need_weight)


def _cpu_backward_blas(x, w, dy, stride, padding, dilation, groups, has_bias, need_input, need_weight):
    """``cpu_backward`` without AMX: the shifted, direct or im2col kernels."""
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
    parallel = work >= CPU_PARALLEL_MIN_WORK
    if use_shifted(B, numba.get_num_threads() if parallel else 1, Cg, Og, dtype, stride):
        return _backward_shifted_call(x, w, dy, stride, padding, dilation, groups, has_bias, need_input,
                                      need_weight, parallel)
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
