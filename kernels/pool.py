"""Pooling over the last two dims: max (with argmax indices), average, adaptive average.

Every kernel sees one layout: ``x`` (B, H, W), C-contiguous, float32 or float64, where B is
every leading dim flattened (batch x channels). 1-D pooling is 2-D pooling with H = 1 and a
kernel of height 1. Outputs are (B, OH, OW) in ``x``'s dtype; max-pooling indices are int64.

Output size along one axis of length L (PyTorch's ``pooling_output_shape``)::

    span = dilation * (kernel - 1) + 1
    out  = floor((L + 2*padding - span) / stride) + 1                   (ceil_mode=False)
    out  = ceil((L + 2*padding - span) / stride) + 1, minus one if that   (ceil_mode=True)
           last window would start at or beyond L + padding (in the right padding)

Max pooling. Window (oh, ow) holds the taps ``ih = oh*sh - ph + i*dh`` (i < kh) and likewise
``iw``; taps outside the input are skipped (padding is -inf)::

    y[b, oh, ow]   = max over taps of x[b, ih, iw]
    idx[b, oh, ow] = ih * W + iw of that max (flat index into the plane, as PyTorch's)

PyTorch's tie rule: taps are visited in window order (row by row) and one replaces the best so
far when ``v > best or v is NaN``, so a tie keeps the first maximum and a NaN wins (the last NaN
of the window). A window whose taps are all -inf keeps the index of its first tap at or after
(0, 0); PyTorch's kernel does the same, and when dilation makes every tap of a window miss the
input (H = 1, kernel 2, padding 1, dilation 2) that index lies outside the plane and y is -inf.
Forward saves ``idx`` only; backward scatters ``dx[b, idx] += gy`` (windows may overlap, so one
input can receive several gradients), skipping indices outside the plane.

Average pooling is a sum over a rectangle divided by a divisor, and both its kinds reduce to
the same *windows*: per axis, for each output position o, a ``start[o]``, an ``end[o]`` (the
clipped half-open index range) and a ``div[o]``, with the divisor of (oh, ow) being
``hdiv[oh] * wdiv[ow]``::

    y[b, oh, ow] = sum_{ih in [hs, he), iw in [ws, we)} x[b, ih, iw] / (hdiv[oh] * wdiv[ow])
    dx[b, ih, iw] += gy[b, oh, ow] / (hdiv[oh] * wdiv[ow])   for every window holding (ih, iw)

- ``avg_pool``: start = o*stride - padding, end = min(start + kernel, L + padding); the divisor
  is end - start taken *before* clipping to [0, L) when ``count_include_pad`` (padding counts as
  zeros), after clipping otherwise; ``divisor_override`` replaces the product.
- ``adaptive_avg_pool`` to O outputs: start = floor(o*L/O), end = ceil((o+1)*L/O), div =
  end - start (PyTorch's index formulas; windows may overlap when O does not divide L).

The windows are computed in plain Python (``avg_pool_windows``, ``adaptive_pool_windows``,
memoised: the same read-only tuple for the same arguments); average pooling saves nothing for
backward but the windows.

Implementation notes: the CPU loops run one plane (b) per ``prange`` iteration, so no two
threads write the same memory, also in the scattering backward passes; each is compiled serial
and parallel, and arrays under ``CPU_PARALLEL_MIN_ELEMENTS`` elements run the serial one.
Windows wholly inside the plane take loops without bounds tests (2x2 and 3x3 with literal
sizes), whole-plane average windows a loop over four planes at once; every path adds and
compares the same values in the same order as the general loop (tests/kernels/
test_pool_fast_paths.py). The backward loops zero each plane of dx themselves. The
CUDA forward kernels run one thread per output element; the backward kernels too, adding into
``dx`` with ``cuda.atomic.add`` (overlapping windows).

Dispatch: ``max_pool_forward/backward`` and ``avg_pool_forward/backward`` take ``impl=None``
(by array type: CuPy -> "cuda", anything else -> "cpu") or "reference" / "cpu" / "cuda" (the
CUDA kernels also take NumPy arrays: the simulator). Inputs are trusted: the public functions
in ``tinymm.nn.functional.pool`` check them.
"""
from __future__ import annotations

import functools

import numba
import numpy as np

from ._common import (array_module, blocks_for, contiguous, resolve_impl, launch_on_cupy_stream, numba_cuda,
                      parallel_threshold, serial_and_parallel)

# Threads per block of the CUDA kernels (one thread per output element, grid-stride beyond).
CUDA_BLOCK = 256
CUDA_MAX_BLOCKS = 65535

# Arrays of at least this many input elements run the parallel CPU loops. Not measured for
# this family on its own: the norm family's crossover (kernels/norm.py) on this project's busy
# 2-core machine, where a parallel call that finds the other core taken waits out a scheduler
# slice; pooling does less work per element, so this is if anything on the low side.
CPU_PARALLEL_MIN_ELEMENTS = parallel_threshold(1 << 21)  # env TINYMM_PARALLEL_MIN_ELEMENTS overrides

# ``numba.cuda``, bound on first use by _cuda_kernels (the simulator swaps this global).
cuda = None


# ============================================================================ sizes and windows


def pool_output_size(size, kernel, stride, padding, dilation=1, ceil_mode=False):
    """Output length along one axis (see the module docstring); may be < 1 (callers refuse it)."""
    span = dilation * (kernel - 1) + 1
    out = (size + 2 * padding - span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


@functools.lru_cache(maxsize=256)
def avg_pool_windows(size, kernel, stride, padding, ceil_mode=False, count_include_pad=True):
    """``(start, end, div)`` int64 arrays of one axis of ``avg_pool`` (read-only: memoised,
    since a layer asks for the same windows on every call)."""
    out = max(pool_output_size(size, kernel, stride, padding, 1, ceil_mode), 0)
    start = np.arange(out, dtype=np.int64) * stride - padding
    end = np.minimum(start + kernel, size + padding)
    padded = end - start
    start = np.maximum(start, 0)
    end = np.minimum(end, size)
    return _read_only(start, end, (padded if count_include_pad else end - start))


@functools.lru_cache(maxsize=256)
def adaptive_pool_windows(size, out):
    """``(start, end, div)`` int64 arrays of one axis of ``adaptive_avg_pool`` (read-only)."""
    o = np.arange(out, dtype=np.int64)
    start = (o * size) // out
    end = -((-(o + 1) * size) // out)  # ceil division
    return _read_only(start, end, end - start)


def _read_only(*arrays):
    for a in arrays:
        a.flags.writeable = False
    return arrays


def regular_run(win):
    """``(lo, hi, k)``: the outputs ``lo <= o < hi`` of one axis's windows ``(start, end, div)``
    form the longest run of consecutive windows of the widest width ``k`` (for ``avg_pool``
    the windows not clipped by padding; (0, 0, 0) when there are none). The CPU loops sum
    those windows with ``k`` fixed (unrolled for 2 and 3)."""
    width = np.asarray(win[1]) - np.asarray(win[0])
    if width.size == 0 or width.max() <= 0:
        return 0, 0, 0
    k = int(width.max())
    full = np.concatenate(([False], width == k, [False]))
    edges = np.flatnonzero(full[1:] != full[:-1])  # run starts and ends, alternating
    starts, ends = edges[0::2], edges[1::2]
    longest = int(np.argmax(ends - starts))
    return int(starts[longest]), int(ends[longest]), k


# ============================================================================ reference (NumPy)


def reference_max_pool_forward(x, kernel, stride, padding, dilation, ceil_mode=False):
    """Returns ``(y (B, OH, OW), idx (B, OH, OW) int64)``."""
    B, H, W = x.shape
    oh_n = pool_output_size(H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    ow_n = pool_output_size(W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    y = np.empty((B, oh_n, ow_n), dtype=x.dtype)
    idx = np.empty((B, oh_n, ow_n), dtype=np.int64)
    for b in range(B):
        for oh in range(oh_n):
            for ow in range(ow_n):
                rows = [oh * stride[0] - padding[0] + i * dilation[0] for i in range(kernel[0])]
                cols = [ow * stride[1] - padding[1] + j * dilation[1] for j in range(kernel[1])]
                first_row = min(r for r in rows if r >= 0)
                first_col = min(c for c in cols if c >= 0)
                best, best_at = -np.inf, first_row * W + first_col
                for ih in rows:
                    for iw in cols:
                        if 0 <= ih < H and 0 <= iw < W:
                            v = x[b, ih, iw]
                            if v > best or np.isnan(v):
                                best, best_at = v, ih * W + iw
                y[b, oh, ow] = best
                idx[b, oh, ow] = best_at
    return y, idx


def reference_max_pool_backward(gy, idx, in_hw):
    """``dx (B, H, W)``: each output's gradient added at its argmax."""
    B = gy.shape[0]
    dx = np.zeros((B, in_hw[0] * in_hw[1]), dtype=gy.dtype)
    for b in range(B):
        inside = (idx[b] >= 0) & (idx[b] < dx.shape[1])
        np.add.at(dx[b], idx[b][inside], gy[b][inside])
    return dx.reshape(B, *in_hw)


def reference_avg_pool_forward(x, hwin, wwin):
    """``y (B, OH, OW)``; ``hwin``/``wwin`` are ``(start, end, div)`` per axis."""
    (hs, he, hd), (ws, we, wd) = hwin, wwin
    y = np.empty((x.shape[0], len(hs), len(ws)), dtype=x.dtype)
    for oh in range(len(hs)):
        for ow in range(len(ws)):
            y[:, oh, ow] = x[:, hs[oh]:he[oh], ws[ow]:we[ow]].sum(axis=(1, 2)) / (hd[oh] * wd[ow])
    return y


def reference_avg_pool_backward(gy, hwin, wwin, in_hw):
    """``dx (B, H, W)``: each output's gradient spread evenly over its window."""
    (hs, he, hd), (ws, we, wd) = hwin, wwin
    dx = np.zeros((gy.shape[0], *in_hw), dtype=gy.dtype)
    for oh in range(len(hs)):
        for ow in range(len(ws)):
            dx[:, hs[oh]:he[oh], ws[ow]:we[ow]] += (gy[:, oh, ow] / (hd[oh] * wd[ow]))[:, None, None]
    return dx


# ============================================================================ CPU (Numba)
# No fastmath: the max loops must see NaNs, and the average loops gain nothing from it.


def _window_max(x, b, h0, w0, kh, kw, dh, dw):
    """``(max, flat index)`` of plane ``b``'s window whose corner is ``(h0, w0)`` (may lie in
    the padding). NaN wins. A window that misses the input entirely gives ``-inf`` and the
    first tap at or past the top-left edge. Compiled for both CPU (inlined) and CUDA."""
    H, W = x.shape[1], x.shape[2]
    first_h = h0
    while first_h < 0:
        first_h += dh
    first_w = w0
    while first_w < 0:
        first_w += dw
    best = -np.inf
    best_at = first_h * W + first_w
    for i in range(kh):
        ih = h0 + i * dh
        if ih >= 0 and ih < H:
            for j in range(kw):
                iw = w0 + j * dw
                if iw >= 0 and iw < W:
                    v = x[b, ih, iw]
                    if v > best or v != v:
                        best = v
                        best_at = ih * W + iw
    return best, best_at


_window_max_cpu = numba.njit(inline="always", cache=True)(_window_max)


@numba.njit(cache=True, error_model="numpy", nogil=True)
def _row_max_inside(x, b, h0, ow_lo, ow_hi, sw, pw, kh, kw, dh, dw, yrow, irow):
    """``_window_max`` for the windows ``ow_lo <= ow < ow_hi`` of one output row whose taps
    all lie inside the plane (row ``h0`` on): no bounds tests, the first tap is the corner.
    Called with literal kernel sizes for the common 2x2 and 3x3 (see ``_max_forward_cpu``)."""
    W = x.shape[2]
    for ow in range(ow_lo, ow_hi):
        w0 = ow * sw - pw
        best = -np.inf
        best_at = h0 * W + w0
        for i in range(kh):
            ih = h0 + i * dh
            for j in range(kw):
                iw = w0 + j * dw
                v = x[b, ih, iw]
                if v > best or v != v:
                    best = v
                    best_at = ih * W + iw
        yrow[ow] = best
        irow[ow] = best_at


@numba.njit(inline="always", cache=True)
def _inside_range(n_out, size, kernel, stride, padding, dilation):
    """The outputs ``[lo, hi)`` along one axis whose windows lie wholly inside ``[0, size)``."""
    lo = (padding + stride - 1) // stride
    last = size - 1 - dilation * (kernel - 1) + padding  # the largest window start that fits
    hi = last // stride + 1 if last >= 0 else 0
    hi = min(hi, n_out)
    return lo, max(hi, lo)


@serial_and_parallel()
def _max_forward_cpu(x, kh, kw, sh, sw, ph, pw, dh, dw, y, idx):
    # Windows that lie inside the plane (all but a border, at most) skip the bounds tests of
    # _window_max; the 2x2 and 3x3 kernels are passed as literals, so their tap loops unroll.
    # Taps, their order and the comparisons are _window_max's: the results are identical.
    H = x.shape[1]
    oh_n, ow_n = y.shape[1], y.shape[2]
    oh_lo, oh_hi = _inside_range(oh_n, H, kh, sh, ph, dh)
    ow_lo, ow_hi = _inside_range(ow_n, x.shape[2], kw, sw, pw, dw)
    for b in numba.prange(x.shape[0]):
        for oh in range(oh_n):
            h0 = oh * sh - ph
            inside = oh_lo <= oh < oh_hi
            lo, hi = (ow_lo, ow_hi) if inside else (ow_n, ow_n)
            for ow in range(min(lo, ow_n)):
                y[b, oh, ow], idx[b, oh, ow] = _window_max_cpu(x, b, h0, ow * sw - pw, kh, kw, dh, dw)
            if inside:
                if kh == 2 and kw == 2:
                    _row_max_inside(x, b, h0, lo, hi, sw, pw, 2, 2, dh, dw, y[b, oh], idx[b, oh])
                elif kh == 3 and kw == 3:
                    _row_max_inside(x, b, h0, lo, hi, sw, pw, 3, 3, dh, dw, y[b, oh], idx[b, oh])
                else:
                    _row_max_inside(x, b, h0, lo, hi, sw, pw, kh, kw, dh, dw, y[b, oh], idx[b, oh])
            for ow in range(hi, ow_n):
                y[b, oh, ow], idx[b, oh, ow] = _window_max_cpu(x, b, h0, ow * sw - pw, kh, kw, dh, dw)


@serial_and_parallel()
def _max_backward_cpu(gy, idx, dx):
    # dx: (B, H*W), uninitialised: each plane is zeroed here, just before its scatter, while
    # it is in cache (a separate np.zeros pass over dx cost as much as the scatter).
    plane = dx.shape[1]
    zero = dx.dtype.type(0)
    for b in numba.prange(gy.shape[0]):
        for i in range(plane):
            dx[b, i] = zero
        for oh in range(gy.shape[1]):
            for ow in range(gy.shape[2]):
                i = idx[b, oh, ow]
                if i < plane:  # a window that missed the input (see the docstring)
                    dx[b, i] += gy[b, oh, ow]


@numba.njit(cache=True, error_model="numpy", nogil=True)
def _avg_windows(x, b, oh, lo, hi, hs, he, hd, ws, we, wd, y):
    """y[b, oh, ow] for lo <= ow < hi: each window summed row by row, left to right, in float64."""
    for ow in range(lo, hi):
        acc = 0.0  # float64 for both dtypes
        for ih in range(hs[oh], he[oh]):
            for iw in range(ws[ow], we[ow]):
                acc += x[b, ih, iw]
        y[b, oh, ow] = acc / (hd[oh] * wd[ow])


@numba.njit(cache=True, error_model="numpy", nogil=True)
def _avg_windows_inside(x, b, oh, lo, hi, kh, kw, hs, hd, ws, wd, y):
    """``_avg_windows`` for windows of ``kh`` x ``kw`` taps from (hs[oh], ws[ow]) (the
    ``regular_run`` of both axes): the same additions in the same order, without reading the
    loop bounds per window. Called with literal 2x2 and 3x3 sizes only, so the taps unroll."""
    h0 = hs[oh]
    for ow in range(lo, hi):
        w0 = ws[ow]
        acc = 0.0
        for i in range(kh):
            for j in range(kw):
                acc += x[b, h0 + i, w0 + j]
        y[b, oh, ow] = acc / (hd[oh] * wd[ow])


@numba.njit(cache=True, error_model="numpy", nogil=True)
def _plane_means(x, b0, b1, div, y):
    """y[b, 0, 0] = sum of plane b / div for b0 <= b < b1 (a window that is the whole plane):
    each plane summed in memory order, which is the general loop's order (row by row, left to
    right), from 0.0 in float64, four planes at a time so that their additions overlap (one
    plane at a time waits out the latency of every addition)."""
    n = x.shape[1] * x.shape[2]
    flat = x.reshape(x.shape[0], n)
    b = b0
    while b + 4 <= b1:
        a0 = a1 = a2 = a3 = 0.0
        for i in range(n):
            a0 += flat[b, i]
            a1 += flat[b + 1, i]
            a2 += flat[b + 2, i]
            a3 += flat[b + 3, i]
        y[b, 0, 0] = a0 / div
        y[b + 1, 0, 0] = a1 / div
        y[b + 2, 0, 0] = a2 / div
        y[b + 3, 0, 0] = a3 / div
        b += 4
    while b < b1:
        a = 0.0
        for i in range(n):
            a += flat[b, i]
        y[b, 0, 0] = a / div
        b += 1


@serial_and_parallel()
def _avg_forward_cpu(x, hs, he, hd, hlo, hhi, hk, ws, we, wd, wlo, whi, wk, y):
    # 2x2 and 3x3 windows in the regular runs of both axes (for avg_pool all but the padded
    # border) take _avg_windows_inside with literal sizes (unrolled: 1.7x faster at 3x3); the
    # others the general loop (with run-time sizes the fixed-size loop was slower than it).
    # The sums are the same either way.
    oh_n, ow_n = y.shape[1], y.shape[2]
    if oh_n == 1 and ow_n == 1 and he[0] - hs[0] == x.shape[1] and we[0] - ws[0] == x.shape[2]:
        # one window, the whole plane (global average pooling): _plane_means, 16 planes a block
        div = hd[0] * wd[0]
        for blk in numba.prange((x.shape[0] + 15) // 16):
            _plane_means(x, blk * 16, min(blk * 16 + 16, x.shape[0]), div, y)
        return
    square = hk == wk and (hk == 2 or hk == 3)
    for b in numba.prange(x.shape[0]):
        for oh in range(oh_n):
            if square and hlo <= oh < hhi:
                _avg_windows(x, b, oh, 0, wlo, hs, he, hd, ws, we, wd, y)
                if hk == 2:
                    _avg_windows_inside(x, b, oh, wlo, whi, 2, 2, hs, hd, ws, wd, y)
                else:
                    _avg_windows_inside(x, b, oh, wlo, whi, 3, 3, hs, hd, ws, wd, y)
                _avg_windows(x, b, oh, whi, ow_n, hs, he, hd, ws, we, wd, y)
            else:
                _avg_windows(x, b, oh, 0, ow_n, hs, he, hd, ws, we, wd, y)


@numba.njit(cache=True, error_model="numpy", nogil=True)
def _avg_scatter(gy, b, oh, lo, hi, hs, he, hd, ws, we, wd, dx):
    """dx[b] += each window's gy / divisor, for the windows lo <= ow < hi of output row oh."""
    for ow in range(lo, hi):
        g = gy[b, oh, ow] / (hd[oh] * wd[ow])
        for ih in range(hs[oh], he[oh]):
            for iw in range(ws[ow], we[ow]):
                dx[b, ih, iw] += g


@numba.njit(cache=True, error_model="numpy", nogil=True)
def _avg_scatter_inside(gy, b, oh, lo, hi, kh, kw, hs, hd, ws, wd, dx):
    """``_avg_scatter`` for ``kh`` x ``kw`` windows (as ``_avg_windows_inside``): the same
    additions in the same order."""
    h0 = hs[oh]
    for ow in range(lo, hi):
        g = gy[b, oh, ow] / (hd[oh] * wd[ow])
        w0 = ws[ow]
        for i in range(kh):
            for j in range(kw):
                dx[b, h0 + i, w0 + j] += g


@serial_and_parallel()
def _avg_backward_cpu(gy, hs, he, hd, hlo, hhi, hk, ws, we, wd, wlo, whi, wk, dx):
    # dx: (B, H, W), uninitialised: each plane is zeroed just before its scatter, while it is
    # in cache (a separate np.zeros pass over dx cost about as much as the scatter).
    oh_n, ow_n = gy.shape[1], gy.shape[2]
    zero = dx.dtype.type(0)
    if oh_n == 1 and ow_n == 1 and he[0] - hs[0] == dx.shape[1] and we[0] - ws[0] == dx.shape[2]:
        # one window, the whole plane (global average pooling): every element receives the one
        # term 0 + g, a fill (0 + g, not g: a -0.0 gradient must land as +0.0, as the scatter's)
        div = hd[0] * wd[0]
        for b in numba.prange(gy.shape[0]):
            v = zero + gy[b, 0, 0] / div
            for ih in range(dx.shape[1]):
                for iw in range(dx.shape[2]):
                    dx[b, ih, iw] = v
        return
    square = hk == wk and (hk == 2 or hk == 3)
    for b in numba.prange(gy.shape[0]):
        for ih in range(dx.shape[1]):
            for iw in range(dx.shape[2]):
                dx[b, ih, iw] = zero
        for oh in range(oh_n):
            if square and hlo <= oh < hhi:
                _avg_scatter(gy, b, oh, 0, wlo, hs, he, hd, ws, we, wd, dx)
                if hk == 2:
                    _avg_scatter_inside(gy, b, oh, wlo, whi, 2, 2, hs, hd, ws, wd, dx)
                else:
                    _avg_scatter_inside(gy, b, oh, wlo, whi, 3, 3, hs, hd, ws, wd, dx)
                _avg_scatter(gy, b, oh, whi, ow_n, hs, he, hd, ws, we, wd, dx)
            else:
                _avg_scatter(gy, b, oh, 0, ow_n, hs, he, hd, ws, we, wd, dx)


# ============================================================================ CUDA (Numba-CUDA)


@functools.lru_cache(maxsize=None)
def _cuda_kernels(dtype_name):
    """The CUDA kernels for one dtype, compiled by Numba on first launch (one thread per
    output element, grid-stride). ``numba.cuda`` is imported here, never at module import."""
    global cuda
    cuda = numba_cuda()

    T = numba.from_dtype(np.dtype(dtype_name))

    window_max = cuda.jit(device=True)(_window_max)

    @cuda.jit(device=True)
    def output_at(t, oh_n, ow_n):
        """The (plane, row, column) of flat output index ``t``."""
        return t // (oh_n * ow_n), (t // ow_n) % oh_n, t % ow_n

    @cuda.jit
    def max_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, y, idx):
        oh_n, ow_n = y.shape[1], y.shape[2]
        for t in range(cuda.grid(1), y.size, cuda.gridsize(1)):
            b, oh, ow = output_at(t, oh_n, ow_n)
            y[b, oh, ow], idx[b, oh, ow] = window_max(x, b, oh * sh - ph, ow * sw - pw, kh, kw, dh, dw)

    @cuda.jit
    def max_backward(gy, idx, dx):
        oh_n, ow_n = gy.shape[1], gy.shape[2]
        for t in range(cuda.grid(1), gy.size, cuda.gridsize(1)):
            b, oh, ow = output_at(t, oh_n, ow_n)
            i = idx[b, oh, ow]
            if i < dx.shape[1]:  # a window that missed the input (see the docstring)
                cuda.atomic.add(dx, (b, i), gy[b, oh, ow])

    @cuda.jit
    def avg_forward(x, hs, he, hd, ws, we, wd, y):
        oh_n, ow_n = y.shape[1], y.shape[2]
        for t in range(cuda.grid(1), y.size, cuda.gridsize(1)):
            b, oh, ow = output_at(t, oh_n, ow_n)
            acc = T(0)
            for ih in range(hs[oh], he[oh]):
                for iw in range(ws[ow], we[ow]):
                    acc += x[b, ih, iw]
            y[b, oh, ow] = acc / (hd[oh] * wd[ow])

    @cuda.jit
    def avg_backward(gy, hs, he, hd, ws, we, wd, dx):
        oh_n, ow_n = gy.shape[1], gy.shape[2]
        for t in range(cuda.grid(1), gy.size, cuda.gridsize(1)):
            b, oh, ow = output_at(t, oh_n, ow_n)
            g = gy[b, oh, ow] / (hd[oh] * wd[ow])
            for ih in range(hs[oh], he[oh]):
                for iw in range(ws[ow], we[ow]):
                    cuda.atomic.add(dx, (b, ih, iw), g)

    return dict(max_forward=max_forward, max_backward=max_backward, avg_forward=avg_forward,
                avg_backward=avg_backward)


def _launch(name, dtype, n_items, *args):
    blocks = min(blocks_for(n_items, CUDA_BLOCK), CUDA_MAX_BLOCKS)
    launch_on_cupy_stream(_cuda_kernels(np.dtype(dtype).name)[name], blocks, CUDA_BLOCK, 0, args)


# ============================================================================ dispatch


def _windows_on(xp, win, dtype):
    """One axis's windows as arrays of the kernel's module (CuPy for CUDA), the divisor in
    the data's dtype (window sizes are small integers: exact in float32). Copies: the
    memoised windows are read-only, and the CUDA simulator writes into what it is given."""
    start, end, div = win
    return xp.array(start, dtype=np.int64), xp.array(end, dtype=np.int64), xp.array(div, dtype=dtype)


# The CPU loops' form of window tuples, by the tuple's identity (the memoised windows come
# back as the same tuple on every call): (start, end, div in the data's dtype, *regular_run).
# Each entry holds its tuple, so its id cannot be reused while the entry is here.
_CPU_WINDOWS = {}
_CPU_WINDOWS_MAX = 256


def _cpu_windows(win, dtype):
    """``win`` as the CPU loops take it, built once per tuple and dtype."""
    key = (id(win), dtype)
    entry = _CPU_WINDOWS.get(key)
    if entry is not None and entry[0] is win:
        return entry[1]
    args = (*_windows_on(np, win, dtype), *regular_run(win))
    if len(_CPU_WINDOWS) >= _CPU_WINDOWS_MAX:
        _CPU_WINDOWS.clear()
    _CPU_WINDOWS[key] = (win, args)
    return args


def _into(out, shape, dtype, xp):
    """``out`` when given (any C-contiguous array of ``prod(shape)`` elements, written
    through a view of ``shape``), else a new uninitialised array of ``shape``."""
    if out is None:
        return xp.empty(shape, dtype=dtype)
    return out.reshape(shape)


def max_pool_forward(x, kernel, stride, padding, dilation, ceil_mode=False, impl=None):
    """Max pooling of ``x`` (B, H, W) with 2-tuples ``kernel``, ``stride``, ``padding``,
    ``dilation`` -> ``(y (B, OH, OW), idx (B, OH, OW) int64)``. Save ``idx`` for backward."""
    impl = resolve_impl(impl, x, "pool")
    x = contiguous(x)
    if impl == "reference":
        return reference_max_pool_forward(x, kernel, stride, padding, dilation, ceil_mode)
    xp = array_module(x)
    B, H, W = x.shape
    oh_n = pool_output_size(H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    ow_n = pool_output_size(W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    y = xp.empty((B, oh_n, ow_n), dtype=x.dtype)
    idx = xp.empty((B, oh_n, ow_n), dtype=np.int64)
    if y.size == 0:
        return y, idx
    args = (*kernel, *stride, *padding, *dilation)
    if impl == "cuda":
        _launch("max_forward", x.dtype, y.size, x, *args, y, idx)
    else:
        _max_forward_cpu.for_work(x.size, CPU_PARALLEL_MIN_ELEMENTS)(x, *args, y, idx)
    return y, idx


def max_pool_backward(gy, idx, in_hw, impl=None, out=None):
    """``dx (B, H, W)`` from ``gy`` and the forward's ``idx`` (both (B, OH, OW)); ``in_hw`` = (H, W).
    With ``out`` (a C-contiguous array of B*H*W elements in gy's dtype) dx is written there
    and ``out`` is returned as given, whatever its shape (a Function returns it as its own)."""
    impl = resolve_impl(impl, gy, "pool")
    gy, idx = contiguous(gy), contiguous(idx)
    B = gy.shape[0]
    if impl == "reference":
        dx = reference_max_pool_backward(gy, idx, tuple(in_hw))
        if out is None:
            return dx
        out[...] = dx.reshape(out.shape)
        return out
    xp = array_module(gy)
    flat = _into(out, (B, in_hw[0] * in_hw[1]), gy.dtype, xp)
    if not gy.size:
        flat[...] = 0
    elif impl == "cuda":
        flat[...] = 0
        _launch("max_backward", gy.dtype, gy.size, gy, idx, flat)
    else:
        _max_backward_cpu.for_work(flat.size, CPU_PARALLEL_MIN_ELEMENTS)(gy, idx, flat)  # zeroes flat
    return flat.reshape(B, *in_hw) if out is None else out


def avg_pool_forward(x, hwin, wwin, impl=None):
    """Average pooling of ``x`` (B, H, W) over the windows ``hwin``, ``wwin`` (each
    ``(start, end, div)``, from ``avg_pool_windows`` or ``adaptive_pool_windows``) ->
    ``y (B, len(hwin[0]), len(wwin[0]))``. Save the windows for backward."""
    impl = resolve_impl(impl, x, "pool")
    x = contiguous(x)
    if impl == "reference":
        return reference_avg_pool_forward(x, hwin, wwin)
    xp = array_module(x)
    y = xp.empty((x.shape[0], len(hwin[0]), len(wwin[0])), dtype=x.dtype)
    if y.size == 0:
        return y
    if impl == "cuda":
        _launch("avg_forward", x.dtype, y.size, x, *_windows_on(xp, hwin, x.dtype), *_windows_on(xp, wwin, x.dtype), y)
    else:
        hw, ww = _cpu_windows(hwin, x.dtype), _cpu_windows(wwin, x.dtype)
        _avg_forward_cpu.for_work(x.size, CPU_PARALLEL_MIN_ELEMENTS)(x, *hw, *ww, y)
    return y


def avg_pool_backward(gy, hwin, wwin, in_hw, impl=None, out=None):
    """``dx (B, H, W)`` of average pooling over the windows ``hwin``, ``wwin``. ``out``: as
    ``max_pool_backward``'s."""
    impl = resolve_impl(impl, gy, "pool")
    gy = contiguous(gy)
    if impl == "reference":
        dx = reference_avg_pool_backward(gy, hwin, wwin, tuple(in_hw))
        if out is None:
            return dx
        out[...] = dx.reshape(out.shape)
        return out
    xp = array_module(gy)
    dx = _into(out, (gy.shape[0], *in_hw), gy.dtype, xp)
    if impl == "cuda" or not gy.size:
        dx[...] = 0
        if gy.size:
            _launch("avg_backward", gy.dtype, gy.size, gy, *_windows_on(xp, hwin, gy.dtype),
                    *_windows_on(xp, wwin, gy.dtype), dx)
    else:
        hw, ww = _cpu_windows(hwin, gy.dtype), _cpu_windows(wwin, gy.dtype)
        _avg_backward_cpu.for_work(dx.size, CPU_PARALLEL_MIN_ELEMENTS)(gy, *hw, *ww, dx)  # zeroes dx first
    return dx if out is None else out
