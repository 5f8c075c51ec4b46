r"""2-D convolution on Intel AMX tiles (stride 1, no dilation, one group, float32): the shifted
product of ``cpu.py`` with its operands swapped so that every tile load is aligned.

Each image is written once, channels last and zero-padded, as bfloat16 pieces (``_amx.py``:
three pieces per float32, six tile products per product, float32 accuracy): row
r = (h + pt) Wp + (w + pl) of ``xcl`` holds the C channels of input pixel (h, w), Wp = W + pl
+ pr. Output position (oh, q), numbered oh Wp + q on the same padded width, reads tap (i, j)
from row oh Wp + q + i Wp + j: for every tap, the rows of the A operand are the image's rows
shifted by the fixed i Wp + j, so a block of output positions is one tile product per tap::

    acc (positions, O) = bias + sum over taps (i, j) of  xcl[rows + i Wp + j] (positions, C)
                                                         @ w[:, :, i, j]^T (C, O)

A's tile rows are C bfloat16 apart (64-byte aligned for C a multiple of 32, whatever the
shift), B (the taps' weights, pair layout) is packed once per call. The Wp - Wo columns at the
end of every output row are computed and dropped; ``acc`` is transposed into y's channels.

The input gradient is the same product: dx = conv(dy, w'), w'[c, o, i, j] = w[o, c, kh - 1 - i,
kw - 1 - j], padded by kh - 1 - pt, kw - 1 - pl (``amx_input_grad``). The weight gradient,
per tap, is dy on the padded-width grid (O, Ho Wp) @ the image shifted by the tap (Ho Wp, C),
the image in the pair layout along positions, one copy for even shifts and one for odd
(``amx_weight_grad``).

Each entry point returns None where it does not apply (the caller runs ``cpu.py``'s kernels):
not float32, a stride, dilation or groups, channels that do not fill the tiles (``worth_it``),
fewer images than threads, too little work (MIN_MULTIPLY_ADDS), too many weights for forward
and dx (MAX_WEIGHT_PIECE_BYTES), a padding beyond the kernel, AMX not usable
(``_amx.available``), or an input whose largest magnitude is outside [2**-60, 2**60] (NaN and
inf included: the splits report it, and the result is dropped). Measurements:
``benchmarks/RESULTS.md``, thirteenth session.
"""
import numba
import numpy as np
from numba import njit, prange

from ..attention._amx import available as amx_available
from ..attention._amx import (
    aligned_empty, amx_conv_gemm, amx_gemm, fit_for_tiles, split_pairs, split_rows, split_transposed_pairs, split_transposed_rows,
    transpose_into,
)

# Output positions per block of acc (all taps are summed in the tiles, so acc is read and
# written once per block). 64 -> 64 3x3 32x32 B16, 2 threads: 64 positions 2.69 ms, 128 2.50,
# 256 2.50, 512 2.37-2.44, 1024 2.43, 2048 2.38.
BLOCK_POSITIONS = 512


@njit(parallel=True, nogil=True, cache=True)
def _conv_kernel(x, wp, bias, pt, pl, kh, kw, Ho, Wo, Wp, xcl, scratch, acc, y, seen):
    B, C, H, W = x.shape
    O = y.shape[1]
    positions = Ho * Wp
    o_tiles, c_chunks = O // 16, C // 32
    n_workers = xcl.shape[0]
    for worker in prange(n_workers):
        for b in range(worker, B, n_workers):  # whole images: every one costs the same
            image = xcl[worker]  # zero padding from the start: only the pixels are written
            for h in range(H):
                r0 = (h + pt) * Wp + pl
                top = split_transposed_rows(x[b, :, h, :], image[:, r0 : r0 + W, :], scratch[worker])
                seen[worker] = max(seen[worker], top)
            block = acc[worker]
            for m0 in range(0, positions, block.shape[0]):
                rows = min(block.shape[0], positions - m0)
                m_tiles = (rows + 15) // 16
                for r in range(m_tiles * 16):
                    block[r, :O] = bias
                amx_conv_gemm(image[:, m0:, :], wp, block, m_tiles, o_tiles, c_chunks, kh, kw, Wp, True)
                # positions m0 .. m0 + rows, output row by output row, dropping q >= Wo
                oh = m0 // Wp
                while oh * Wp < m0 + rows:
                    q0 = max(m0, oh * Wp) - oh * Wp
                    q1 = min(m0 + rows, oh * Wp + Wo) - oh * Wp
                    if q1 > q0:
                        r = oh * Wp + q0 - m0
                        transpose_into(block[r : r + q1 - q0, :O], y[b, :, oh, q0:q1])
                    oh += 1


@njit(nogil=True, cache=True)
def _split_taps(wt, wp):
    """wp[i kw + j] = w[:, :, i, j]^T (C, O) in the pair layout, from wt = w as (kh, kw, C, O);
    returns the bits of max |w|."""
    top = np.int32(0)
    for i in range(wt.shape[0]):
        for j in range(wt.shape[1]):
            top = max(top, split_pairs(wt[i, j], wp[i * wt.shape[1] + j]))
    return top


def worth_it(C, O):
    """Whether a convolution of C -> O channels may go to the tiles: both multiples of 32
    (whole K chunks each way, for forward and the input gradient) and C + O >= 96. Layer
    forward + backward against torch, 2 threads, AMX / the kernels of ``cpu.py``: 64 -> 64
    3x3 32x32 B16 0.83 / 1.23, 32 -> 64 0.88 / 1.24, 64 -> 32 0.94 / 1.16; 32 -> 32 32x32 B16
    1.42 / 1.18, 16x16 B32 1.21 / 1.18, 32x32 B64 0.97 / 1.16 (so not 32 -> 32)."""
    return C % 32 == 0 and O % 32 == 0 and C + O >= 96


# Fewer multiply-adds than this: the other kernels (the packing and the pool's wake-up weigh
# more than the products). 1x1 128 -> 64 16x16 B16 (34M): forward 0.44 / 0.39 ms, dw 0.73 / 0.47.
MIN_MULTIPLY_ADDS = 1 << 27
# Forward and dx stream every tap's weights (as pieces, 6 bytes a weight) once per 32 output
# positions: past the core's L2 that is bound by L3. 256 -> 256 3x3 8x8 B32 (3.5 MiB of
# pieces): forward 15.0 / 9.9 ms, dx 14.3 / 12.4; 128 -> 128 3x3 16x16 B32 (0.9 MiB): fwd+bwd
# 0.80x torch against 1.33x; 96 -> 96 5x5 20x20 B4 (1.4 MiB) 0.97x against 1.47x.
MAX_WEIGHT_PIECE_BYTES = 2 << 20


# Work items are whole images: with fewer images than threads the other kernels, which split
# an image between threads, run instead (``_applies``, ``amx_weight_grad``).

def _applies(x, w, stride, dilation, groups, pads):
    B, C, H, W = x.shape
    O, _, kh, kw = w.shape
    pads = tuple(pads)  # (top, bottom, left, right)
    mads = B * O * (H + pads[0] + pads[1] - kh + 1) * (W + pads[2] + pads[3] - kw + 1) * C * kh * kw
    return (x.dtype == np.float32 and w.dtype == np.float32 and tuple(stride) == (1, 1)
            and tuple(dilation) == (1, 1) and groups == 1 and worth_it(C, O) and B >= numba.get_num_threads()
            and mads >= MIN_MULTIPLY_ADDS and 6 * O * C * kh * kw <= MAX_WEIGHT_PIECE_BYTES
            and all(0 <= p < k for p, k in zip(pads, (kh, kh, kw, kw))) and amx_available())


def amx_conv(x, w, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """conv2d forward on AMX tiles (C-contiguous NumPy arrays, ``cpu_forward``'s contract), or
    None where it does not apply (see the module docstring)."""
    (pt, pb), (pl, pr) = padding
    if not _applies(x, w, stride, dilation, groups, (pt, pb, pl, pr)):
        return None
    B, C, H, W = x.shape
    O, _, kh, kw = w.shape
    Ho, Wo = H + pt + pb - kh + 1, W + pl + pr - kw + 1
    if B == 0 or Ho <= 0 or Wo <= 0:
        return None
    wp = aligned_empty((kh * kw, 3, C // 2, 2 * O), np.uint16)  # each tap's w^T, pair layout
    if not fit_for_tiles([_split_taps(np.ascontiguousarray(w.transpose(2, 3, 1, 0)), wp)]):
        return None
    Wp = W + pl + pr
    positions = Ho * Wp
    # rows read past the last output position by the last block and the farthest tap
    n_rows = -(-positions // 16) * 16 + (kh - 1) * Wp + kw
    bias_arr = np.zeros(O, np.float32) if bias is None else np.asarray(bias, np.float32)
    y = np.empty((B, O, Ho, Wo), np.float32)
    n_workers = min(B, numba.get_num_threads())
    xcl = aligned_empty((n_workers, 3, max(n_rows, (H + pt + pb) * Wp), C), np.uint16)
    xcl[:] = 0  # the padding; the kernel writes the pixels of each image
    scratch = np.empty((n_workers, W + 16, C + 16), np.float32)
    acc = aligned_empty((n_workers, BLOCK_POSITIONS, O), np.float32)
    seen = np.zeros(n_workers, np.int32)
    _conv_kernel(x, wp, bias_arr, pt, pl, kh, kw, Ho, Wo, Wp, xcl, scratch, acc, y, seen)
    return y if fit_for_tiles(seen) else None


def amx_input_grad(x_shape, w, dy, padding=((0, 0), (0, 0))):
    """dx of a stride-1 conv2d as the convolution of dy with w flipped and transposed, on AMX
    tiles; None where ``amx_conv`` does not apply to that convolution."""
    (pt, pb), (pl, pr) = padding
    kh, kw = w.shape[2:]
    pads = ((kh - 1 - pt, kh - 1 - pb), (kw - 1 - pl, kw - 1 - pr))
    if min(p for pair in pads for p in pair) < 0 or not _applies(dy, w.transpose(1, 0, 2, 3), (1, 1), (1, 1), 1,
                                                                 (p for pair in pads for p in pair)):
        return None
    flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    dx = amx_conv(dy, flipped, None, (1, 1), pads)
    return dx if dx is None or dx.shape == tuple(x_shape) else None


@njit(parallel=True, nogil=True, cache=True)
def _weight_grad_kernel(x, dy, pt, pl, kh, kw, Wp, xs, xodd, xpe, xpo, scratch, dyg, dyp, dwt, db, seen):
    B, C, H, W = x.shape
    O, Ho, Wo = dy.shape[1], dy.shape[2], dy.shape[3]
    n_workers = xs.shape[0]
    q_chunks = dyg.shape[2] // 32
    for worker in prange(n_workers):
        for b in range(worker, B, n_workers):
            image, grid = xs[worker], dyg[worker]  # zero padding from the start
            for c in range(C):
                for h in range(H):
                    r0 = (h + pt) * Wp + pl
                    image[c, r0 : r0 + W] = x[b, c, h, :]
            xodd[worker, :, : image.shape[1] - 1] = image[:, 1:]
            top = split_transposed_pairs(image, xpe[worker], scratch[worker])
            split_transposed_pairs(xodd[worker], xpo[worker], scratch[worker])
            for o in range(O):
                total = 0.0
                for h in range(Ho):
                    for q in range(Wo):
                        g = dy[b, o, h, q]
                        grid[o, h * Wp + q] = g
                        total += g
                db[worker, o] += total
            top_dy = split_rows(grid, dyp[worker])
            seen[worker, 0] = max(seen[worker, 0], top)
            seen[worker, 1] = max(seen[worker, 1], top_dy)
            for t in range(kh * kw):
                shift = (t // kw) * Wp + t % kw
                pairs = xpe[worker] if shift % 2 == 0 else xpo[worker]
                amx_gemm(dyp[worker], pairs[:, shift // 2 :, :], dwt[worker, t], O // 16, C // 16, q_chunks, True)


def amx_weight_grad(x, w_shape, dy, padding=((0, 0), (0, 0)), has_bias=True):
    """(dw, db) of a stride-1 conv2d on AMX tiles: for each tap (i, j), dw[:, :, i, j] (O, C) =
    the sum over images of dy on the padded-width grid (O, Ho Wp) @ the padded image shifted by
    i Wp + j (Ho Wp, C), the image in the pair layout along positions (two copies, for even
    and odd shifts, so that every B tile starts on a row). None where it does not apply."""
    (pt, pb), (pl, pr) = padding
    O, C, kh, kw = w_shape
    if not (x.dtype == np.float32 and dy.dtype == np.float32 and worth_it(C, O)
            and x.shape[0] >= numba.get_num_threads() and dy.size * C * kh * kw >= MIN_MULTIPLY_ADDS
            and amx_available()):
        return None
    B, _, H, W = x.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    Wp = W + pl + pr
    q_pad = -(-Ho * Wp // 32) * 32  # K: output positions on the padded-width grid, whole chunks
    # image columns read by the farthest tap, in whole 16-column blocks, even
    x_cols = -(-(q_pad + (kh - 1) * Wp + kw + 1) // 16) * 16
    x_cols = max(x_cols, -(-(H + pt + pb) * Wp // 16) * 16 + 16)
    n_workers = min(B, numba.get_num_threads())
    xs = np.zeros((n_workers, C, x_cols), np.float32)  # each worker's padded image, flat
    xodd = np.zeros((n_workers, C, x_cols), np.float32)  # the same, one position on
    xpe = aligned_empty((n_workers, 3, x_cols // 2, 2 * C), np.uint16)
    xpo = aligned_empty((n_workers, 3, x_cols // 2, 2 * C), np.uint16)
    scratch = np.empty((n_workers, x_cols + 16, C + 16), np.float32)  # (splits of other widths)
    dyg = np.zeros((n_workers, O, q_pad), np.float32)  # dy on the padded-width grid
    dyp = aligned_empty((n_workers, 3, O, q_pad), np.uint16)
    dwt = aligned_empty((n_workers, kh * kw, O, C), np.float32)  # per worker and tap
    dwt[:] = 0
    db = np.zeros((n_workers, O), np.float64)
    seen = np.zeros((n_workers, 2), np.int32)  # the largest |x|, |dy| each worker split
    _weight_grad_kernel(x, dy, pt, pl, kh, kw, Wp, xs, xodd, xpe, xpo, scratch, dyg, dyp, dwt, db, seen)
    if not fit_for_tiles(seen):
        return None
    dw = np.ascontiguousarray(dwt.sum(axis=0).reshape(kh, kw, O, C).transpose(2, 3, 0, 1))
    return dw, (db.sum(axis=0).astype(np.float32) if has_bias else None)
