r"""2-D convolution in ``numba.cuda``: im2col, one batched cuBLAS GEMM, col2im.

The math is the reference's (``reference.py``). With K = Cg * kh * kw and P = Ho * Wo::

    forward   cols (B, G, K, P) = im2col(x)                 one thread per element of cols
              y (B, G, Og, P)   = w (G, Og, K) @ cols        cupy.matmul, batched over B and G
              y += bias
    backward  cols again (rebuilt, not saved from forward)
              dw (G, Og, K)     = sum_b dy (B, G, Og, P) @ cols^T
              dcols (B, G, K, P) = w^T @ dy
              dx = col2im(dcols)                             one thread per element of dx
              db = sum of dy over (B, Ho, Wo)

col2im *gathers*: the thread of dx[b, c, ih, iw] adds the dcols entries of the taps (i, j)
that read (ih, iw), the outputs oh = (ih + pt - i dh) / sh when that divides exactly (likewise
for columns). Every dx element has one writer, so there are no atomics and the sum is
deterministic. Memory: the (B, G, K, P) cols buffer (and dcols in backward), K times the
output's size: the price of handing all the arithmetic to cuBLAS.

This module (and so ``numba.cuda``) is imported by the package only when first used; the two
kernels are compiled per dtype on first launch. Under Numba's CUDA simulator the arrays are
NumPy and ``cupy.matmul`` is ``numpy.matmul`` (``array_module``).
"""
import functools
from types import SimpleNamespace

import numpy as np

from .._common import array_module, blocks_for, launch_on_cupy_stream, numba_cuda

cuda = numba_cuda()  # numba.cuda, with the NumPy 2.5 alias it needs (see _common.numba_cuda)

THREADS = 128  # threads per block of both kernels (one element per thread)


def cuda_forward(x, w, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """conv2d forward on CuPy arrays (NumPy under the simulator); same contract as ``reference_forward``."""
    xp = array_module(x)
    B, O, G = x.shape[0], w.shape[0], groups
    cols, Ho, Wo = _im2col(x, w, stride, padding, dilation, groups)
    y = xp.matmul(w.reshape(1, G, O // G, -1), cols)  # (B, G, Og, P)
    y = y.reshape(B, O, Ho, Wo)
    if bias is not None:
        y += bias.reshape(1, O, 1, 1)
    return y


def cuda_backward(x, w, dy, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1,
                  has_bias=True, need_input=True, need_weight=True):
    """(dx, dw, dbias) on CuPy arrays; each is None when not asked for."""
    xp = array_module(x)
    B, O, G = x.shape[0], w.shape[0], groups
    Og = O // G
    Ho, Wo = dy.shape[2], dy.shape[3]
    dy4 = dy.reshape(B, G, Og, Ho * Wo)
    w3 = w.reshape(G, Og, -1)
    dx = dw = db = None
    if need_weight:
        cols, _, _ = _im2col(x, w, stride, padding, dilation, groups)
        dw = xp.matmul(dy4, cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w.shape)
    if need_input:
        dcols = xp.ascontiguousarray(xp.matmul(w3.transpose(0, 2, 1), dy4))  # (B, G, K, P)
        dx = xp.empty_like(x)
        (sh, sw), ((pt, _), (pl, _)), (dh, dwl) = stride, padding, dilation
        kh, kw = w.shape[2], w.shape[3]
        kernel = _kernels(np.dtype(x.dtype).name).col2im
        launch_on_cupy_stream(kernel, blocks_for(dx.size, THREADS), THREADS, 0,
                              (dcols, kh, kw, sh, sw, pt, pl, dh, dwl, Ho, Wo, dx))
    if has_bias:
        db = dy.sum(axis=(0, 2, 3))
    return dx, dw, db


def _im2col(x, w, stride, padding, dilation, groups):
    """(cols (B, G, K, P), Ho, Wo) for x and w's kernel size."""
    xp = array_module(x)
    (sh, sw), ((pt, pb), (pl, pr)), (dh, dw) = stride, padding, dilation
    B, C, H, W = x.shape
    kh, kw = w.shape[2], w.shape[3]
    Ho = (H + pt + pb - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + pl + pr - dw * (kw - 1) - 1) // sw + 1
    cols = xp.empty((B, groups, (C // groups) * kh * kw, Ho * Wo), x.dtype)
    kernel = _kernels(np.dtype(x.dtype).name).im2col
    launch_on_cupy_stream(kernel, blocks_for(cols.size, THREADS), THREADS, 0,
                          (x, kh, kw, sh, sw, pt, pl, dh, dw, Wo, cols))
    return cols, Ho, Wo


@functools.lru_cache(maxsize=None)
def _kernels(dtype_name):
    zero = np.dtype(dtype_name).type(0.0)

    @cuda.jit
    def im2col(x, kh, kw, sh, sw, pt, pl, dh, dw, Wo, cols):
        """cols[b, g, (c kh + i) kw + j, oh Wo + q] = x[b, g Cg + c, ih, iw] (0 in the padding),
        ih = oh sh - pt + i dh, iw = q sw - pl + j dw."""
        idx = cuda.grid(1)
        B, G, K, P = cols.shape
        if idx >= B * G * K * P:
            return
        H, W = x.shape[2], x.shape[3]
        t = idx % P
        rest = idx // P
        row = rest % K
        rest //= K
        g, b = rest % G, rest // G
        c, tap = row // (kh * kw), row % (kh * kw)
        i, j = tap // kw, tap % kw
        oh, q = t // Wo, t % Wo
        ih = oh * sh - pt + i * dh
        iw = q * sw - pl + j * dw
        value = zero
        if 0 <= ih < H and 0 <= iw < W:
            value = x[b, g * (K // (kh * kw)) + c, ih, iw]
        cols[b, g, row, t] = value

    @cuda.jit
    def col2im(dcols, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo, dx):
        """dx[b, cin, ih, iw] = the sum of dcols over the (tap, output) pairs that read (ih, iw)."""
        idx = cuda.grid(1)
        B, C, H, W = dx.shape
        if idx >= B * C * H * W:
            return
        iw = idx % W
        rest = idx // W
        ih = rest % H
        rest //= H
        cin, b = rest % C, rest // C
        G = dcols.shape[1]
        Cg = C // G
        g, c = cin // Cg, cin % Cg
        total = zero
        for i in range(kh):
            a = ih + pt - i * dh  # = oh * sh for the output row oh that reads ih through tap i
            if a < 0 or a % sh != 0 or a // sh >= Ho:
                continue
            oh = a // sh
            for j in range(kw):
                e = iw + pl - j * dw
                if e < 0 or e % sw != 0 or e // sw >= Wo:
                    continue
                total += dcols[b, g, (c * kh + i) * kw + j, oh * Wo + e // sw]
        dx[b, cin, ih, iw] = total

    return SimpleNamespace(im2col=im2col, col2im=col2im)
