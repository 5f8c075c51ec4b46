"""Floor 4: pooling (the ``tinymm.kernels.pool`` family) with PyTorch's signatures.

``max_pool1d/2d`` (``return_indices`` gives PyTorch's int64 flat indices into each input
plane), ``avg_pool1d/2d``, ``adaptive_avg_pool1d/2d``, ``adaptive_max_pool1d/2d``, ``lp_pool1d/2d``, ``max_unpool1d/2d``; 3-D max, average and adaptive pooling built on the
2-D ones. Batched inputs are (N, C, L) / (N, C,
H, W); unbatched (C, L) / (C, H, W) work too, as in PyTorch. The kernels see every leading dim
flattened into planes, (B, H, W); 1-D pooling is 2-D pooling with H = 1.

The checks here are the only ones: kernel, stride and dilation at least 1, padding at least 0
and at most half the (effective) kernel, a non-empty input plane and an output of at least one
element; problems with these raise ``ShapeError`` (a RuntimeError, as PyTorch's, and a ValueError).
"""
from __future__ import annotations

import numbers

import numpy as np

from tinymm.autograd import Function
from tinymm.ops import as_tensor, stack, where
from tinymm.ops._util import xp_of
from tinymm.tensor import Tensor

from tinymm.nn.functional._checks import DTypeNotImplementedError, ShapeError, ValueRangeError
from tinymm.nn.functional.half import computes_in_float32

# ----------------------------------------------------------------------------- arguments

_kernels = None  # tinymm.kernels.pool, imported on first use (it imports Numba)


def _K():
    """``tinymm.kernels.pool``. A module global after the first call: an import statement
    per call cost ~0.4-0.8 us, a few percent of a small pooling call."""
    global _kernels
    if _kernels is None:
        from tinymm.kernels import pool

        _kernels = pool
    return _kernels


def _tuple(fn, name, value, n, minimum):
    """``value`` (an int or a sequence of ``n`` ints) as an ``n``-tuple of ints >= ``minimum``."""
    if type(value) is int and value >= minimum:  # the common case, first (runs per call)
        return (value,) * n
    if isinstance(value, numbers.Integral):
        value = (int(value),) * n
    else:
        value = tuple(value)
        if len(value) == 1 and n > 1:
            value = value * n
        if len(value) != n or not all(isinstance(v, numbers.Integral) for v in value):
            raise TypeError(f"{fn}: {name} must be an int or a tuple of {n} ints, got {value!r}")
        value = tuple(int(v) for v in value)
    if any(v < minimum for v in value):
        raise ShapeError(f"{fn}: {name} must be at least {minimum}, got {value if n > 1 else value[0]}")
    return value


def _planes(fn, input, nd):
    """The input Tensor and its shape checked: (C, *S) or (N, C, *S) with ``nd`` spatial dims,
    float, every non-batch dim non-empty."""
    x = as_tensor(input, fn)
    if x.dtype.kind != "f":
        raise DTypeNotImplementedError(f"{fn}: input must be float32 or float64, got {x.dtype}")
    names = "L" if nd == 1 else "H, W"
    if x.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{fn}: expected a {nd + 1}-D (C, {names}) or {nd + 2}-D (N, C, {names}) input, "
                         f"got shape {tuple(x.shape)}")
    if any(s == 0 for s in x.shape[x.ndim - nd - 1:]):
        raise ShapeError(f"{fn}: input of shape {tuple(x.shape)} has an empty channel or spatial dim")
    return x


def _spatial(x, nd):
    """(H, W) of the kernels' plane view: (1, L) for 1-D."""
    return (1, x.shape[-1]) if nd == 1 else tuple(x.shape[-2:])


def _check_output(fn, x, nd, kernel, padding, dilation, out_hw):
    if out_hw[0] < 1 or out_hw[1] < 1:
        dil = f", dilation {dilation}" if dilation is not None and any(d != 1 for d in dilation) else ""
        out = out_hw[1:] if nd == 1 else out_hw
        raise ShapeError(f"{fn}: kernel {kernel}{dil} does not fit the input of shape {tuple(x.shape)} padded by "
                         f"{padding}: the output would have size {out}")


# ----------------------------------------------------------------------------- Functions


class MaxPoolFn(Function):
    """Max pooling of planes (..., H, W); outputs ``(y, indices)``, indices not differentiable.
    Saves the indices only."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, ceil_mode):
        K = _K()
        lead, hw = x.shape[:-2], x.shape[-2:]
        y, idx = K.max_pool_forward(x.reshape(-1, *hw), kernel, stride, padding, dilation, ceil_mode)
        ctx.save_for_backward(idx)
        ctx.meta = x.shape
        ctx.mark_non_differentiable(1)
        return y.reshape(*lead, *y.shape[1:]), idx.reshape(*lead, *idx.shape[1:])

    @staticmethod
    def backward(ctx, gy, _gidx):
        K = _K()
        (idx,) = ctx.saved_arrays
        shape = ctx.meta
        g = gy.reshape(-1, *gy.shape[-2:])
        # dx allocated in the input's shape and filled through a view: a reshaped view returned
        # here would be copied by the engine before it became x.grad (not an array of its own)
        return K.max_pool_backward(g, idx, shape[-2:], out=xp_of(gy).empty(shape, gy.dtype))

    @staticmethod
    def backward_graph(ctx, gy, _gidx):
        """dx = gy scatter-added at the saved argmax positions, as a differentiable op (its own
        backward gathers there); the indices are constants, so d(dx)/dx is zero, as PyTorch's."""
        from tinymm.ops.index import IndexPutZeros

        (idx,) = ctx.saved_arrays
        shape = ctx.meta
        planes, n_in = int(np.prod(shape[:-2])), shape[-2] * shape[-1]
        flat = idx.reshape(planes, -1)
        rows = xp_of(idx).arange(planes).reshape(planes, 1)
        return IndexPutZeros.apply(gy.reshape(planes, -1), (planes, n_in), (rows, flat)).reshape(shape)


class AvgPoolFn(Function):
    """Average pooling of planes (..., H, W) over per-axis windows (see ``kernels.pool``);
    saves nothing but the windows."""

    @staticmethod
    def forward(ctx, x, hwin, wwin):
        K = _K()
        lead, hw = x.shape[:-2], x.shape[-2:]
        y = K.avg_pool_forward(x.reshape(-1, *hw), hwin, wwin)
        ctx.meta = (x.shape, hwin, wwin)
        return y.reshape(*lead, *y.shape[1:])

    @staticmethod
    def backward(ctx, gy):
        K = _K()
        shape, hwin, wwin = ctx.meta
        g = gy.reshape(-1, *gy.shape[-2:])
        # dx in the input's shape, as MaxPoolFn's (a returned view would be copied)
        return K.avg_pool_backward(g, hwin, wwin, shape[-2:], out=xp_of(gy).empty(shape, gy.dtype))

    @staticmethod
    def backward_graph(ctx, gy):
        shape, hwin, wwin = ctx.meta
        return AvgPoolBackFn.apply(gy, hwin, wwin, shape)


class AvgPoolBackFn(Function):
    """Average pooling's input gradient (``AvgPoolFn``'s backward) as an op of its own, for
    ``create_graph=True``: linear in gy, so its own backward is the average pooling (the
    adjoint) over the same windows."""

    @staticmethod
    def forward(ctx, gy, hwin, wwin, in_shape):
        K = _K()
        ctx.meta = (gy.shape, hwin, wwin)
        return K.avg_pool_backward(gy.reshape(-1, *gy.shape[-2:]), hwin, wwin, in_shape[-2:],
                                   out=xp_of(gy).empty(in_shape, gy.dtype))

    @staticmethod
    def backward(ctx, g):
        K = _K()
        gy_shape, hwin, wwin = ctx.meta
        return K.avg_pool_forward(g.reshape(-1, *g.shape[-2:]), hwin, wwin).reshape(gy_shape)

    @staticmethod
    def backward_graph(ctx, g):
        _, hwin, wwin = ctx.meta
        return AvgPoolFn.apply(g, hwin, wwin)


def _as_planes(x, nd):
    """x viewed as (..., H, W): 1-D inputs get an H = 1 axis."""
    return x.reshape(*x.shape[:-1], 1, x.shape[-1]) if nd == 1 else x


def _from_planes(y, nd):
    return y.reshape(*y.shape[:-2], y.shape[-1]) if nd == 1 else y


# ----------------------------------------------------------------------------- max pooling


def _max_pool(fn, nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    pool_output_size = _K().pool_output_size
    x = _planes(fn, input, nd)
    kernel = _tuple(fn, "kernel_size", kernel_size, nd, 1)
    stride = kernel if stride is None or (not isinstance(stride, numbers.Integral) and len(stride) == 0) \
        else _tuple(fn, "stride", stride, nd, 1)
    padding = _tuple(fn, "padding", padding, nd, 0)
    dilation = _tuple(fn, "dilation", dilation, nd, 1)
    if any(p > k // 2 for k, p in zip(kernel, padding)):  # PyTorch's rule, whatever the dilation
        raise ShapeError(f"{fn}: padding {padding} must be at most half the kernel size {kernel}")
    # the kernels' 2-D view: a 1-D op has a height-1 kernel over a height-1 plane
    k2, s2, p2, d2 = ((1,) + kernel, (1,) + stride, (0,) + padding, (1,) + dilation) if nd == 1 else \
        (kernel, stride, padding, dilation)
    hw = _spatial(x, nd)
    ceil_mode = bool(ceil_mode)
    out_hw = (pool_output_size(hw[0], k2[0], s2[0], p2[0], d2[0], ceil_mode),
              pool_output_size(hw[1], k2[1], s2[1], p2[1], d2[1], ceil_mode))
    _check_output(fn, x, nd, kernel, padding, dilation, out_hw)
    y, idx = MaxPoolFn.apply(_as_planes(x, nd), k2, s2, p2, d2, ceil_mode)
    y, idx = _from_planes(y, nd), _from_planes(idx, nd)
    return (y, idx) if return_indices else y


@computes_in_float32  # revd: float16 layers
def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling of (N, C, L) or (C, L); with ``return_indices`` also the int64 argmax
    positions in L (PyTorch's tie rule: the first maximum in the window, NaN wins)."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@computes_in_float32  # revd: float16 layers
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling of (N, C, H, W) or (C, H, W); with ``return_indices`` also the int64 argmax
    positions as flat indices h * W + w into each plane (PyTorch's)."""
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


# ----------------------------------------------------------------------------- average pooling


def _avg_pool(fn, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    avg_pool_windows = _K().avg_pool_windows
    x = _planes(fn, input, nd)
    kernel = _tuple(fn, "kernel_size", kernel_size, nd, 1)
    stride = kernel if stride is None or (not isinstance(stride, numbers.Integral) and len(stride) == 0) \
        else _tuple(fn, "stride", stride, nd, 1)
    padding = _tuple(fn, "padding", padding, nd, 0)
    if any(p > k // 2 for k, p in zip(kernel, padding)):
        raise ShapeError(f"{fn}: padding {padding} must be at most half the kernel size {kernel}")
    if divisor_override is not None and (not isinstance(divisor_override, numbers.Integral) or divisor_override == 0):
        raise ValueRangeError(f"{fn}: divisor_override must be a non-zero int or None, got {divisor_override!r}")
    k2, s2, p2 = ((1,) + kernel, (1,) + stride, (0,) + padding) if nd == 1 else (kernel, stride, padding)
    hw = _spatial(x, nd)
    ceil_mode, count_include_pad = bool(ceil_mode), bool(count_include_pad)
    hwin = avg_pool_windows(hw[0], k2[0], s2[0], p2[0], ceil_mode, count_include_pad)
    wwin = avg_pool_windows(hw[1], k2[1], s2[1], p2[1], ceil_mode, count_include_pad)
    _check_output(fn, x, nd, kernel, padding, None, (len(hwin[0]), len(wwin[0])))
    if divisor_override is not None:  # the divisor of (oh, ow) is hdiv[oh] * wdiv[ow]
        hwin = (hwin[0], hwin[1], hwin[2] * 0 + int(divisor_override))
        wwin = (wwin[0], wwin[1], wwin[2] * 0 + 1)
    return _from_planes(AvgPoolFn.apply(_as_planes(x, nd), hwin, wwin), nd)


@computes_in_float32  # revd: float16 layers
def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Average pooling of (N, C, L) or (C, L); padding counts as zeros in the divisor when
    ``count_include_pad``."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


@computes_in_float32  # revd: float16 layers
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling of (N, C, H, W) or (C, H, W); ``divisor_override`` replaces every
    window's divisor."""
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


# ----------------------------------------------------------------------------- adaptive average pooling


def _adaptive_out_hw(fn, nd, x, output_size, smallest):
    """``output_size`` (an int, or a tuple of ``nd`` whose None entries keep the input's size, as
    PyTorch) checked to be ints >= ``smallest``, as the (H, W) of the planes (1, L) when nd = 1."""
    if type(output_size) is int and output_size >= smallest:  # the common case, first
        return (1, output_size) if nd == 1 else (output_size, output_size)
    if output_size is None or isinstance(output_size, numbers.Integral):
        output_size = (output_size,) * nd
    output_size = tuple(output_size)
    if len(output_size) != nd:
        raise TypeError(f"{fn}: output_size must be an int or a tuple of {nd}, got {output_size!r}")
    if nd == 1 and output_size[0] is None:  # PyTorch keeps a size with None in 2-D and 3-D only
        raise TypeError(f"{fn}: output_size must be an int or a tuple of one int, got {output_size!r}")
    out = []
    for o, s in zip(output_size, x.shape[-nd:]):
        o = s if o is None else o
        if not isinstance(o, numbers.Integral) or o < smallest:
            raise ShapeError(f"{fn}: output_size must hold ints >= {smallest} (or None), got {output_size!r}")
        out.append(int(o))
    return (1, out[0]) if nd == 1 else tuple(out)


def _adaptive_avg_pool(fn, nd, input, output_size):
    adaptive_pool_windows = _K().adaptive_pool_windows
    x = _planes(fn, input, nd)
    hw, out_hw = _spatial(x, nd), _adaptive_out_hw(fn, nd, x, output_size, smallest=0)
    hwin, wwin = adaptive_pool_windows(hw[0], out_hw[0]), adaptive_pool_windows(hw[1], out_hw[1])
    return _from_planes(AvgPoolFn.apply(_as_planes(x, nd), hwin, wwin), nd)


@computes_in_float32  # revd: float16 layers
def adaptive_avg_pool1d(input, output_size):
    """Average pooling of (N, C, L) or (C, L) to ``output_size`` positions; window o covers
    [floor(o*L/O), ceil((o+1)*L/O))."""
    return _adaptive_avg_pool("adaptive_avg_pool1d", 1, input, output_size)


@computes_in_float32  # revd: float16 layers
def adaptive_avg_pool2d(input, output_size):
    """Average pooling of (N, C, H, W) or (C, H, W) to ``output_size`` (an int, or a pair whose
    entries may be None to keep that size)."""
    return _adaptive_avg_pool("adaptive_avg_pool2d", 2, input, output_size)


# ----------------------------------------------------------------------------- adaptive max pooling


class AdaptiveMaxPoolFn(Function):
    """Max over the adaptive windows of planes (..., H, W) (``kernels.pool.adaptive_pool_windows``),
    one output cell at a time, vectorised over planes; outputs ``(y, indices)`` with PyTorch's
    flat per-plane indices, and backward is the pool family's max-pool scatter. Used when the
    windows are uneven; even windows go through the max-pool kernel. Saves the indices only."""

    @staticmethod
    def forward(ctx, x, hwin, wwin):
        xp = xp_of(x)
        lead, (H, W) = x.shape[:-2], x.shape[-2:]
        planes = x.reshape(-1, H, W)
        (hs, he, _), (ws, we, _) = hwin, wwin
        B = planes.shape[0]
        y = xp.empty((B, len(hs), len(ws)), x.dtype)
        idx = xp.empty((B, len(hs), len(ws)), np.int64)
        for i, (h0, h1) in enumerate(zip(hs.tolist(), he.tolist())):
            for j, (w0, w1) in enumerate(zip(ws.tolist(), we.tolist())):
                win = planes[:, h0:h1, w0:w1].reshape(B, (h1 - h0) * (w1 - w0))
                a = win.argmax(axis=1)
                y[:, i, j] = win[xp.arange(B), a]
                idx[:, i, j] = (h0 + a // (w1 - w0)) * W + (w0 + a % (w1 - w0))
        ctx.save_for_backward(idx)
        ctx.meta = x.shape
        ctx.mark_non_differentiable(1)
        return y.reshape(*lead, *y.shape[1:]), idx.reshape(*lead, *idx.shape[1:])

    # the same saved flat indices and input shape as max pooling: its scatter serves
    backward = staticmethod(MaxPoolFn.backward)
    backward_graph = staticmethod(MaxPoolFn.backward_graph)


def _adaptive_max_pool(fn, nd, input, output_size, return_indices):
    from tinymm.kernels.pool import adaptive_pool_windows

    x = _planes(fn, input, nd)
    hw, out_hw = _spatial(x, nd), _adaptive_out_hw(fn, nd, x, output_size, smallest=1)
    planes = _as_planes(x, nd)
    if all(s % o == 0 for s, o in zip(hw, out_hw)):  # even windows: the max-pool kernel
        kernel = tuple(s // o for s, o in zip(hw, out_hw))
        y, idx = MaxPoolFn.apply(planes, kernel, kernel, (0, 0), (1, 1), False)
    else:
        hwin, wwin = (adaptive_pool_windows(hw[a], out_hw[a]) for a in range(2))
        y, idx = AdaptiveMaxPoolFn.apply(planes, hwin, wwin)
    y, idx = _from_planes(y, nd), _from_planes(idx, nd)
    return (y, idx) if return_indices else y


@computes_in_float32  # revd: float16 layers
def adaptive_max_pool1d(input, output_size, return_indices: bool = False):
    """Max pooling of (N, C, L) or (C, L) to ``output_size`` positions (adaptive windows as
    ``adaptive_avg_pool1d``); ``return_indices`` also returns the argmax positions."""
    return _adaptive_max_pool("adaptive_max_pool1d", 1, input, output_size, return_indices)


@computes_in_float32  # revd: float16 layers
def adaptive_max_pool2d(input, output_size, return_indices: bool = False):
    """Max pooling of (N, C, H, W) or (C, H, W) to ``output_size`` (an int, or a pair whose
    entries may be None); ``return_indices`` also returns flat argmax indices per plane."""
    return _adaptive_max_pool("adaptive_max_pool2d", 2, input, output_size, return_indices)


# ----------------------------------------------------------------------------- LP pooling and max unpooling


def lp_pool1d(input, norm_type: float, kernel_size: int, stride=None, ceil_mode: bool = False):
    """(Σ_window x^p)^(1/p) over windows of (N, C, L): an average pool of x^p times the window size."""
    x = as_tensor(input, "lp_pool1d")
    if norm_type in (float("inf"), -float("inf")):  # the largest / smallest |x|, as PyTorch
        sign = 1 if norm_type > 0 else -1
        return sign * max_pool1d(sign * x.abs(), kernel_size, stride, 0, 1, ceil_mode)
    k = kernel_size if isinstance(kernel_size, numbers.Integral) else kernel_size[0]
    out = avg_pool1d(x ** norm_type, kernel_size, stride, 0, ceil_mode)
    return (out.sign() * out.abs().relu() * k) ** (1.0 / norm_type)


def lp_pool2d(input, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
    """(Σ_window x^p)^(1/p) over windows of (N, C, H, W)."""
    x = as_tensor(input, "lp_pool2d")
    if norm_type in (float("inf"), -float("inf")):
        sign = 1 if norm_type > 0 else -1
        return sign * max_pool2d(sign * x.abs(), kernel_size, stride, 0, 1, ceil_mode)
    kh, kw = _tuple("lp_pool2d", "kernel_size", kernel_size, 2, 1)
    out = avg_pool2d(x ** norm_type, (kh, kw), stride, 0, ceil_mode)
    return (out.sign() * out.abs().relu() * (kh * kw)) ** (1.0 / norm_type)


def _max_unpool(fn, nd, input, indices, kernel_size, stride, padding, output_size):
    x = _planes(fn, input, nd)
    idx = as_tensor(indices, fn)
    if tuple(idx.shape) != tuple(x.shape) or idx.dtype.kind not in "iu":
        raise ShapeError(f"{fn}: indices must be integers shaped like the input {tuple(x.shape)}, got "
                         f"{idx.dtype} {tuple(idx.shape)}")
    kernel = _tuple(fn, "kernel_size", kernel_size, nd, 1)
    stride = kernel if stride is None else _tuple(fn, "stride", stride, nd, 1)
    padding = _tuple(fn, "padding", padding, nd, 0)
    sizes = tuple(x.shape[-nd:])
    default = tuple((s - 1) * st - 2 * p + k for s, st, p, k in zip(sizes, stride, padding, kernel))
    if output_size is None:
        out = default
    else:
        out = tuple(int(v) for v in tuple(output_size)[-nd:])
        if len(out) != nd:
            raise ShapeError(f"{fn}: output_size must have {nd} or {nd + 2} elements, got {tuple(output_size)}")
    n_out = int(np.prod(out))
    if idx._data.size and n_out and (int(idx._data.min()) < 0 or int(idx._data.max()) >= n_out):
        raise ShapeError(f"{fn}: Found an invalid max index {int(idx._data.max())} (output volumes are of size "
                         f"{' x '.join(map(str, out))})")
    lead = tuple(x.shape[:-nd])
    n_in = int(np.prod(sizes))
    if n_out == 0:  # nothing to place (PyTorch then checks no index either); keeps the graph
        return x.reshape(*lead, n_in)[..., :0].reshape(*lead, *out)
    flat_x = x.reshape(*lead, n_in)
    flat_i = Tensor._wrap(xp_of(idx._data).ascontiguousarray(idx._data.reshape(*lead, n_in)).astype(np.int64))
    zeros = Tensor._wrap(xp_of(x._data).zeros(lead + (n_out,), x.dtype))
    return zeros.scatter(-1, flat_i, flat_x).reshape(*lead, *out)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Put each value of (N, C, L) back at its ``max_pool1d`` index, zeros elsewhere."""
    return _max_unpool("max_unpool1d", 1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Put each value of (N, C, H, W) back at its ``max_pool2d`` flat index, zeros elsewhere."""
    return _max_unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding, output_size)


# ----------------------------------------------------------------------------- 3-D pooling
#
# Pooling windows are separable, so each 3-D pool is the 2-D pool of every depth slice (one
# kernel call over all of them) followed by a reduction over each output depth's window of
# slices. Autograd comes with those ops; max pooling picks its depth by the per-slice argmax.


def _volume(fn, input):
    x = as_tensor(input, fn)
    if x.dtype.kind != "f":
        raise DTypeNotImplementedError(f"{fn}: input must be float32 or float64, got {x.dtype}")
    if x.ndim not in (4, 5):
        raise ShapeError(f"{fn}: expected a 4-D (C, D, H, W) or 5-D (N, C, D, H, W) input, got shape {tuple(x.shape)}")
    return x


def _over_depth(per_slice, windows, reduce):
    """Stack ``reduce(per_slice[:, :, s:e])`` for each depth window (s, e) along dim 2."""
    return stack([reduce(per_slice[:, :, s:e]) for s, e in windows], 2)


def _depth_first(x):
    """(N, C, D, H, W) viewed as (N, C·D, H, W) planes for the 2-D pools, and back."""
    N, C, D = x.shape[:3]
    return x.reshape(N, C * D, *x.shape[3:]), (lambda y: y.reshape(N, C, D, *y.shape[2:]))


def _max_over_depth(x, idx2, taps, unbatched, return_indices):
    """3-D max pooling from the per-slice 2-D argmax ``idx2`` (N, C, D, Ho, Wo): for each output
    depth the first slice in ``taps`` holding the window's maximum (NaN wins, as PyTorch scans),
    as a flat D·H·W index; the output gathers x there, so the gradient goes to that one
    element, as PyTorch's (not split between ties)."""
    xp = xp_of(x._data)
    N, C, D, H, W = x.shape
    i2 = idx2._data
    flat = x._data.reshape(N, C, D * H * W)
    best_i = xp.zeros((N, C, len(taps)) + i2.shape[3:], np.int64)
    for o, zs in enumerate(taps):
        if not zs:  # a window wholly in the depth padding: -inf, as PyTorch
            continue
        bi = zs[0] * H * W + i2[:, :, zs[0]]
        bv = xp.take_along_axis(flat, bi.reshape(N, C, -1), 2).reshape(bi.shape) if bi.size else bi.astype(x.dtype)
        for z in zs[1:]:
            ci = z * H * W + i2[:, :, z]
            cv = xp.take_along_axis(flat, ci.reshape(N, C, -1), 2).reshape(ci.shape) if ci.size else ci.astype(x.dtype)
            take = (cv > bv) | xp.isnan(cv)
            bi, bv = xp.where(take, ci, bi), xp.where(take, cv, bv)
        best_i[:, :, o] = bi
    index = Tensor._wrap(best_i)
    n_out = int(np.prod(best_i.shape[2:]))
    out = x.reshape(N, C, D * H * W).gather(2, index.reshape(N, C, n_out)).reshape(*best_i.shape)
    empty = [o for o, zs in enumerate(taps) if not zs]
    if empty:
        mask = xp.zeros((1, 1, len(taps), 1, 1), bool)
        mask[:, :, empty] = True
        out = where(Tensor._wrap(mask), -float("inf"), out)
    if unbatched:
        out, index = out.reshape(*out.shape[1:]), index.reshape(*index.shape[1:])
    return (out, index) if return_indices else out


@computes_in_float32  # revd: float16 layers
def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling of (N, C, D, H, W) or (C, D, H, W); ``return_indices`` also gives PyTorch's
    int64 flat D·H·W argmax indices."""
    from tinymm.kernels.pool import pool_output_size

    fn = "max_pool3d"
    x = _volume(fn, input)
    unbatched = x.ndim == 4
    if unbatched:
        x = x.reshape(1, *x.shape)
    kernel = _tuple(fn, "kernel_size", kernel_size, 3, 1)
    stride = kernel if stride is None else _tuple(fn, "stride", stride, 3, 1)
    padding = _tuple(fn, "padding", padding, 3, 0)
    dilation = _tuple(fn, "dilation", dilation, 3, 1)
    if any(p > k // 2 for k, p in zip(kernel, padding)):
        raise ShapeError(f"{fn}: padding {padding} must be at most half the kernel size {kernel}")
    D = x.shape[2]
    Do = pool_output_size(D, kernel[0], stride[0], padding[0], dilation[0], bool(ceil_mode))
    if Do < 1:
        raise ShapeError(f"{fn}: kernel {kernel} does not fit the input of shape {tuple(x.shape)}")
    planes, back = _depth_first(x)
    _, idx2 = max_pool2d(planes, kernel[1:], stride[1:], padding[1:], dilation[1:], ceil_mode, return_indices=True)
    taps = []
    for o in range(Do):
        zs = [o * stride[0] - padding[0] + i * dilation[0] for i in range(kernel[0])]
        taps.append([z for z in zs if 0 <= z < D])
    return _max_over_depth(x, back(idx2), taps, unbatched, return_indices)


@computes_in_float32  # revd: float16 layers
def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling of (N, C, D, H, W) or (C, D, H, W), PyTorch's divisors."""
    from tinymm.kernels.pool import avg_pool_windows

    fn = "avg_pool3d"
    x = _volume(fn, input)
    unbatched = x.ndim == 4
    if unbatched:
        x = x.reshape(1, *x.shape)
    kernel = _tuple(fn, "kernel_size", kernel_size, 3, 1)
    stride = kernel if stride is None else _tuple(fn, "stride", stride, 3, 1)
    padding = _tuple(fn, "padding", padding, 3, 0)
    if any(p > k // 2 for k, p in zip(kernel, padding)):
        raise ShapeError(f"{fn}: padding {padding} must be at most half the kernel size {kernel}")
    if any(s < k for s, k in zip(x.shape[2:], kernel)):  # PyTorch's 3-D rule ignores the padding
        raise ShapeError(f"{fn}: input image {tuple(x.shape[2:])} smaller than kernel size {kernel}")
    starts, ends, divs = avg_pool_windows(x.shape[2], kernel[0], stride[0], padding[0], bool(ceil_mode),
                                          bool(count_include_pad))
    if not len(starts):
        raise ShapeError(f"{fn}: kernel {kernel} does not fit the input of shape {tuple(x.shape)}")
    planes, back = _depth_first(x)
    if divisor_override is not None:
        # sums per slice (divisor 1), the override applied once at the end
        per_slice = back(avg_pool2d(planes, kernel[1:], stride[1:], padding[1:], ceil_mode, count_include_pad, 1))
        out = _over_depth(per_slice, zip(starts.tolist(), ends.tolist()), lambda t: t.sum(dim=2)) / divisor_override
    else:
        per_slice = back(avg_pool2d(planes, kernel[1:], stride[1:], padding[1:], ceil_mode, count_include_pad))
        sums = _over_depth(per_slice, zip(starts.tolist(), ends.tolist()), lambda t: t.sum(dim=2))
        div = Tensor._wrap(xp_of(x._data).asarray(divs.astype(x.dtype)).reshape(1, 1, -1, 1, 1))
        out = sums / div
    return out.reshape(*out.shape[1:]) if unbatched else out


def _adaptive_3d(fn, input, output_size, pool2d, reduce, return_indices=False):
    from tinymm.kernels.pool import adaptive_pool_windows

    x = _volume(fn, input)
    unbatched = x.ndim == 4
    if unbatched:
        x = x.reshape(1, *x.shape)
    if output_size is None or isinstance(output_size, numbers.Integral):
        output_size = (output_size,) * 3
    output_size = tuple(output_size)
    if len(output_size) != 3:
        raise TypeError(f"{fn}: output_size must be an int or a tuple of 3, got {output_size!r}")
    sizes = tuple(s if o is None else int(o) for o, s in zip(output_size, x.shape[2:]))
    if any(o <= 0 for o in sizes):
        raise ShapeError(f"{fn}: output_size must hold ints > 0 (or None), got {output_size!r}")
    planes, back = _depth_first(x)
    s, e, _ = adaptive_pool_windows(x.shape[2], sizes[0])
    if reduce is None:  # max: through the per-slice argmax, see _max_over_depth
        _, idx2 = pool2d(planes, sizes[1:], return_indices=True)
        taps = [list(range(a, b)) for a, b in zip(s.tolist(), e.tolist())]
        return _max_over_depth(x, back(idx2), taps, unbatched, return_indices)
    per_slice = back(pool2d(planes, sizes[1:]))
    out = _over_depth(per_slice, zip(s.tolist(), e.tolist()), reduce)
    return out.reshape(*out.shape[1:]) if unbatched else out


@computes_in_float32  # revd: float16 layers
def adaptive_avg_pool3d(input, output_size):
    """Average pooling of (N, C, D, H, W) or (C, D, H, W) to ``output_size`` (adaptive windows)."""
    return _adaptive_3d("adaptive_avg_pool3d", input, output_size, adaptive_avg_pool2d, lambda t: t.mean(dim=2))


@computes_in_float32  # revd: float16 layers
def adaptive_max_pool3d(input, output_size, return_indices: bool = False):
    """Max pooling of (N, C, D, H, W) or (C, D, H, W) to ``output_size``; ``return_indices``
    also gives the flat D·H·W argmax indices."""
    return _adaptive_3d("adaptive_max_pool3d", input, output_size, adaptive_max_pool2d, None, return_indices)


# opse: 3-D max unpooling, the 1-D/2-D rule over flat d·H·W + h·W + w indices
def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Put each value of (N, C, D, H, W) back at its ``max_pool3d`` flat index, zeros elsewhere."""
    return _max_unpool("max_unpool3d", 3, input, indices, kernel_size, stride, padding, output_size)
