"""Floor 4: 3-D max pooling with indices, as a gather.

Every output position's window is listed as flat input positions ``d·H·W + h·W + w`` (windows
reaching into padding list an invalid slot that never wins), the first maximum of each window
is picked (a NaN wins, as PyTorch), and the values are ``gather``-ed from the input, so the
gradient scatters to the argmax (PyTorch's rule). Adaptive windows
(``floor(o·S/O) .. ceil((o+1)·S/O)``) use the same gather with windows of varying length.
``pool.max_pool3d(return_indices=True)`` and ``pool.adaptive_max_pool3d(return_indices=True)``
call these; this module imports nothing of ``pool`` (no cycle).
"""
from __future__ import annotations

import numbers

import numpy as np

from tinymm import ops as O
from tinymm.ops._util import xp_of
from tinymm.tensor import Tensor

from tinymm.nn.functional._checks import ShapeError


def triple_arg(fn, name, value, minimum):
    """``value`` (an int or 1 or 3 ints) as a triple of ints >= ``minimum``."""
    if isinstance(value, numbers.Integral):
        value = (int(value),) * 3
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        value = value * 3
    if len(value) != 3:
        raise TypeError(f"{fn}: {name} must be an int or a tuple of 3 ints, got {value!r}")
    if any(v < minimum for v in value):
        raise ShapeError(f"{fn}: {name} must be at least {minimum}, got {value}")
    return value


def _volume(fn, input):
    x = O.as_tensor(input, fn)
    if x.dtype.kind != "f":
        raise TypeError(f"{fn}: input must be float32 or float64, got {x.dtype}")
    if x.ndim not in (4, 5) or any(s == 0 for s in x.shape[-4:]):
        raise ShapeError(f"{fn}: expected a non-empty 4-D (C, D, H, W) or 5-D (N, C, D, H, W) input, "
                         f"got shape {tuple(x.shape)}")
    return x


def _pick(x, axes):
    """Max over windows given per axis as (positions (O, K), valid (O, K)): (values, indices)."""
    batch = tuple(x.shape[:-3])
    D, H, W = x.shape[-3:]
    (pd, vd), (ph, vh), (pw, vw) = axes
    flat = (pd[:, None, None, :, None, None] * (H * W) + ph[None, :, None, None, :, None] * W
            + pw[None, None, :, None, None, :])
    valid = vd[:, None, None, :, None, None] & vh[None, :, None, None, :, None] & vw[None, None, :, None, None, :]
    out_shape = flat.shape[:3]
    flat = flat.reshape(*out_shape, -1)
    valid = valid.reshape(*out_shape, -1)
    safe = np.where(valid, flat, 0)
    data = x.data.reshape(*batch, -1)
    xp = xp_of(data)
    windows = data[..., xp.asarray(safe)]  # (*batch, Do, Ho, Wo, K)
    windows = xp.where(xp.asarray(valid), windows, -xp.inf)
    best = xp.argmax(windows, axis=-1)  # the first maximum; NumPy's argmax picks a NaN first too
    idx = xp.take_along_axis(xp.broadcast_to(xp.asarray(safe), windows.shape), best[..., None], axis=-1)[..., 0]
    idx = idx.astype(np.int64)
    values = O.gather(x.reshape(*batch, -1), -1, Tensor._wrap(idx.reshape(*batch, -1))).reshape(*batch, *out_shape)
    return values, Tensor._wrap(idx)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    """``(values, indices)`` of 3-D max pooling over (N, C, D, H, W) or (C, D, H, W); indices are
    flat ``d·H·W + h·W + w`` per volume, as PyTorch's."""
    from tinymm.kernels.pool import pool_output_size

    fn = "max_pool3d_with_indices"
    x = _volume(fn, input)
    kernel = triple_arg(fn, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None or (not isinstance(stride, numbers.Integral) and len(stride) == 0) \
        else triple_arg(fn, "stride", stride, 1)
    padding = triple_arg(fn, "padding", padding, 0)
    dilation = triple_arg(fn, "dilation", dilation, 1)
    if any(p > k // 2 for k, p in zip(kernel, padding)):
        raise ShapeError(f"{fn}: pad should be at most half of effective kernel size, got padding {padding} "
                         f"and kernel {kernel}")
    axes = []
    for size, k, s, p, d in zip(x.shape[-3:], kernel, stride, padding, dilation):
        n = pool_output_size(size, k, s, p, d, bool(ceil_mode))
        if n < 1:
            raise ShapeError(f"{fn}: kernel {kernel} does not fit the input of shape {tuple(x.shape)} padded "
                             f"by {padding}: the output would have size {n}")
        pos = np.arange(n)[:, None] * s - p + np.arange(k)[None, :] * d
        axes.append((pos, (pos >= 0) & (pos < size)))
    return _pick(x, axes)


def adaptive_max_pool3d_with_indices(input, output_size, return_indices=False):
    """``(values, indices)`` of adaptive 3-D max pooling to ``output_size`` (an int or a
    triple whose entries may be None: that dim keeps its size)."""
    from tinymm.kernels.pool import adaptive_pool_windows

    fn = "adaptive_max_pool3d_with_indices"
    x = _volume(fn, input)
    if output_size is None or isinstance(output_size, numbers.Integral):
        output_size = (output_size,) * 3
    output_size = tuple(output_size)
    if len(output_size) != 3:
        raise TypeError(f"{fn}: output_size must be an int or a tuple of 3, got {output_size!r}")
    sizes = tuple(s if o is None else int(o) for o, s in zip(output_size, x.shape[-3:]))
    if any(o <= 0 for o in sizes):
        raise ShapeError(f"{fn}: output_size must hold ints > 0 (or None), got {output_size!r}")
    axes = []
    for size, n in zip(x.shape[-3:], sizes):
        start, end, length = adaptive_pool_windows(size, n)
        j = np.arange(int(length.max()))[None, :]
        axes.append((start[:, None] + j, j < length[:, None]))
    return _pick(x, axes)
