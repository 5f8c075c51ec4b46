"""Floor 4: fractional max pooling (Graham, 2014), PyTorch's ``fractional_max_pool2d/3d``.

Each (batch, channel) plane draws one sample u in [0, 1) per pooled dim, and the windows of
that dim start at

    start[i] = int((i + u) · α) − int(u · α),   α = (in − k) / (out − 1),   i < out − 1
    start[out − 1] = in − k

so the output of size ``out`` covers the input with pseudo-random, overlapping k-wide windows.
The output is the maximum of each window (a NaN wins, as PyTorch's kernel takes any NaN it
meets). ``_random_samples`` (N, C, number of pooled dims), as PyTorch's argument, fixes the
draws; otherwise they come from tinymm's generator (so not PyTorch's numbers). The samples
are ordered as PyTorch's: for 2-D (W, H), for 3-D (T, H, W).

The values are gathered from the input at the window maxima's flat indices, so the gradient
flows back to those positions as gather's does (several windows may pick the same one).
"""
from __future__ import annotations

import numbers

import numpy as np

from tinymm import ops as O
from tinymm.backend import to_device
from tinymm.factories import rand
from tinymm.ops._util import xp_of
from tinymm.tensor import Tensor

from tinymm.nn.functional._checks import ShapeError


def _tuple(fn, name, value, n):
    if value is None:
        return None
    if isinstance(value, numbers.Number):
        value = (value,) * n
    value = tuple(value)
    if len(value) == 1:
        value = value * n
    if len(value) != n:
        raise TypeError(f"{fn}: {name} must be a number or a tuple of {n}, got {value!r}")
    return value


def _starts(sample, size, out, k, dtype):
    """(..., out) window starts along one dim from the (...,) samples, in the input's float
    precision as PyTorch computes them."""
    if out == 1:
        return np.full(sample.shape + (1,), size - k, np.int64)
    alpha = dtype.type(size - k) / dtype.type(out - 1)
    i = np.arange(out - 1, dtype=dtype)
    u = sample.astype(dtype)[..., None]
    starts = ((i + u) * alpha).astype(np.int64) - (u * alpha).astype(np.int64)
    return np.concatenate([starts, np.full(sample.shape + (1,), size - k, np.int64)], axis=-1)


def _fractional_max_pool(fn, nd, input, kernel_size, output_size, output_ratio, return_indices, _random_samples):
    x = O.as_tensor(input, fn)
    if x.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{fn}: expected {nd + 1}D or {nd + 2}D input, got shape {tuple(x.shape)}")
    if x.dtype.kind != "f":
        raise TypeError(f"{fn}: expected a floating point input, got {x.dtype}")
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x.unsqueeze(0)
    kernel = _tuple(fn, "kernel_size", kernel_size, nd)
    if output_size is None and output_ratio is None:
        raise ValueError(f"{fn} requires specifying either an output size, or a pooling ratio")
    spatial = tuple(x.shape[2:])
    if output_size is None:
        ratio = _tuple(fn, "output_ratio", output_ratio, nd)
        if not all(0 < r < 1 for r in ratio):
            raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")
        output_size = tuple(int(s * r) for s, r in zip(spatial, ratio))
    out = tuple(int(o) for o in _tuple(fn, "output_size", output_size, nd))
    names = ("time", "height", "width")[3 - nd:]
    for name, n, o, k in zip(names, spatial, out, kernel):
        if k <= 0 or o <= 0:
            raise ShapeError(f"{fn}: kernel_size and output_size must be positive, got {kernel} and {out}")
        # PyTorch's bound: out + k - 1 <= in for 2-D, strictly less for 3-D
        if o + k - 1 > n or (nd == 3 and o + k - 1 == n):
            raise ShapeError(f"{fn}(): pool {name} {k} too large relative to input {name} {n} "
                             f"(output {name} {o})")
    N, C = x.shape[:2]
    if _random_samples is None:
        samples = rand(N, C, nd, dtype=x.dtype)
    else:
        samples = O.as_tensor(_random_samples, fn)
        if tuple(samples.shape) != (N, C, nd):
            raise ShapeError(f"{fn}: expected _random_samples of shape {(N, C, nd)}, got {tuple(samples.shape)}")
    u = to_device(samples._data, "cpu")
    # PyTorch's sample order: 2-D (W, H); 3-D (T, H, W)
    order = (1, 0) if nd == 2 else (0, 1, 2)
    dtype = np.dtype(x._data.dtype)
    starts = [_starts(u[..., order[d]], spatial[d], out[d], kernel[d], dtype) for d in range(nd)]  # (N, C, out_d)
    # flat input index of every (output position, window offset), (N, C, *out, prod(kernel))
    strides = [int(np.prod(spatial[d + 1:])) for d in range(nd)]
    flat_index = 0
    for d in range(nd):
        pos = starts[d][..., :, None] + np.arange(kernel[d])  # (N, C, out_d, k_d)
        shape = [N, C] + [1] * nd + [1] * nd
        shape[2 + d], shape[2 + nd + d] = out[d], kernel[d]
        flat_index = flat_index + (pos * strides[d]).reshape(shape)
    flat_index = flat_index.reshape(N, C, *out, -1)
    xp = xp_of(x._data)
    planes = x._data.reshape(N, C, -1)
    window = np.take_along_axis(to_device(planes, "cpu"), flat_index.reshape(N, C, -1), axis=2).reshape(
        flat_index.shape)
    nan = np.isnan(window)
    last_nan = window.shape[-1] - 1 - np.argmax(nan[..., ::-1], axis=-1)
    pick = np.where(nan.any(-1), last_nan, np.argmax(window, axis=-1))
    indices = np.take_along_axis(flat_index, pick[..., None], axis=-1)[..., 0]  # (N, C, *out)
    idx = Tensor._wrap(xp.asarray(indices.reshape(N, C, -1)))
    values = x.reshape(N, C, -1).gather(2, idx).reshape(N, C, *out)
    indices_t = idx.reshape(N, C, *out)
    if unbatched:
        values, indices_t = values.squeeze(0), indices_t.squeeze(0)
    return (values, indices_t) if return_indices else values


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    """Fractional max pooling over (H, W) of (N, C, H, W) or (C, H, W) input (module docstring)."""
    return _fractional_max_pool("fractional_max_pool2d", 2, input, kernel_size, output_size, output_ratio,
                                return_indices, _random_samples)


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    """Fractional max pooling over (T, H, W) of (N, C, T, H, W) or (C, T, H, W) input."""
    return _fractional_max_pool("fractional_max_pool3d", 3, input, kernel_size, output_size, output_ratio,
                                return_indices, _random_samples)


def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    return fractional_max_pool2d(input, kernel_size, output_size, output_ratio, True, _random_samples)


def fractional_max_pool3d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    return fractional_max_pool3d(input, kernel_size, output_size, output_ratio, True, _random_samples)
