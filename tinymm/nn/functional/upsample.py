"""Resizing: ``interpolate`` (modes "nearest", "nearest-exact", "linear", "bilinear",
"bicubic", "trilinear", "area"; ``align_corners``), PyTorch's ``F.interpolate``.

Interpolation is separable: each spatial dim is resized in turn. Along one dim an output
position reads one source index (nearest) or two neighbours mixed by a weight (linear), so
the op is built from index gathers and a weighted sum, whose gradients scatter-add back to
the sources (no Function of its own is needed). Source positions follow PyTorch exactly:

- nearest:        src = floor(dst · scale)
- nearest-exact:  src = floor((dst + 0.5) · scale)
- linear, align_corners=False: src = max((dst + 0.5) · scale − 0.5, 0)
- linear, align_corners=True:  src = dst · (in − 1)/(out − 1)

- bicubic: four taps i−1 … i+2 (clamped to the edge) around i = floor(src), src as linear
  but not clamped at 0, weighted by Keys' cubic convolution with A = −0.75
- area: ``adaptive_avg_pool`` to the output size

with scale = in/out, or 1/scale_factor when a scale_factor is given (and
recompute_scale_factor is not True).

antialias=True (bilinear/bicubic, 4-D input; PyTorch's, after PIL): each output position i
mixes the sources j around its centre c = scale·(i + 0.5) with weights filter((j + 0.5 − c)/s)
normalised to sum 1, s = max(scale, 1): the filter (triangle for bilinear, Keys' cubic with
A = −0.5 for bicubic) stretches with the downsampling factor so every source contributes.
Each dim is then one matrix product with an (out, in) weight matrix.
"""
from __future__ import annotations

import math

import numpy as np

from tinymm import ops as O
from tinymm.ops._util import DTypeNotImplementedError

_MODES = {"nearest": None, "nearest-exact": None, "linear": 1, "bilinear": 2, "trilinear": 3,
          "bicubic": 2, "area": None}
_CUBIC_A = -0.75


def _cubic_taps(out: int, inp: int, scale, align_corners: bool):
    """Per output position: the four source indices (clamped) and their cubic weights."""
    dst = np.arange(out, dtype=np.float64)
    if align_corners:
        src = dst * ((inp - 1) / (out - 1)) if out > 1 else np.zeros(out)
    else:
        s = inp / out if scale is None else 1.0 / scale
        src = (dst + 0.5) * s - 0.5
    i = np.floor(src).astype(np.int64)
    t = src - i
    A = _CUBIC_A

    def near(d):  # |d| <= 1
        return ((A + 2) * d - (A + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((A * d - 5 * A) * d + 8 * A) * d - 4 * A

    weights = (far(t + 1), near(t), near(1 - t), far(2 - t))
    return [(np.clip(i + k, 0, inp - 1), w) for k, w in zip((-1, 0, 1, 2), weights)]


def _antialias_matrix(out: int, inp: int, scale, mode: str, align_corners: bool):
    """(out, in) weights of one dim for antialias=True, PyTorch's index ranges and filters."""
    if align_corners:
        s = (inp - 1) / (out - 1) if out > 1 else 0.0
    else:
        s = inp / out if scale is None or scale <= 0 else 1.0 / scale
    taps = 2 if mode == "bilinear" else 4  # the filter's width at scale 1
    support = taps / 2 * s if s >= 1.0 else taps / 2
    stretch = 1.0 / s if s >= 1.0 else 1.0

    def filt(d):
        d = np.abs(d)
        if mode == "bilinear":
            return np.maximum(1.0 - d, 0.0)
        a = -0.5
        return np.where(d < 1, ((a + 2) * d - (a + 3)) * d * d + 1,
                        np.where(d < 2, (((d - 5) * d + 8) * d - 4) * a, 0.0))

    m = np.zeros((out, inp))
    for i in range(out):
        centre = s * (i + 0.5)
        lo = max(int(centre - support + 0.5), 0)  # int() truncates, as PyTorch's cast
        hi = min(int(centre + support + 0.5), inp)
        w = filt((np.arange(lo, hi) - centre + 0.5) * stretch)
        total = w.sum()
        m[i, lo:hi] = w / total if total != 0 else w
    return m


def _source(out: int, inp: int, scale, mode: str, align_corners: bool):
    """Per output position: (index0, index1, weight of index1) along one dim."""
    dst = np.arange(out, dtype=np.float64)
    if mode in ("nearest", "nearest-exact"):
        s = inp / out if scale is None else 1.0 / scale
        src = np.floor((dst + (0.5 if mode == "nearest-exact" else 0.0)) * s)
        i0 = np.minimum(src.astype(np.int64), inp - 1)
        return i0, None, None
    if align_corners:
        src = dst * ((inp - 1) / (out - 1)) if out > 1 else np.zeros(out)
    else:
        s = inp / out if scale is None else 1.0 / scale
        src = np.maximum((dst + 0.5) * s - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), inp - 1)
    i1 = np.minimum(i0 + 1, inp - 1)
    return i0, i1, src - i0


def interpolate(input, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                recompute_scale_factor=None, antialias: bool = False):
    """Resize the spatial dims (all after N, C) of ``input`` to ``size`` or by ``scale_factor``."""
    x = O.as_tensor(input, "interpolate")
    if mode not in _MODES:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported ({', '.join(_MODES)})")
    if antialias and (mode not in ("bilinear", "bicubic") or x.ndim != 4):
        raise ValueError(f"interpolate: the anti-alias option is restricted to bilinear and bicubic modes and "
                         f"requires a 4-D tensor as input, got mode {mode!r} and shape {tuple(x.shape)}")
    spatial = x.ndim - 2
    if spatial < 1:
        raise O.ShapeError(f"interpolate: input must be (N, C, ...) with at least one spatial dim, got shape {tuple(x.shape)}")
    if _MODES[mode] is not None and _MODES[mode] != spatial:
        raise O.ShapeError(f"interpolate: mode {mode!r} needs a {_MODES[mode] + 2}-D input, got shape {tuple(x.shape)}")
    if align_corners is not None and mode in ("nearest", "nearest-exact", "area"):
        raise ValueError("interpolate: align_corners only applies to the linear modes")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    if x.dtype.kind != "f":
        raise DTypeNotImplementedError(f"interpolate: needs a floating input, got {x.dtype} (PyTorch's kernels are not implemented for integers)")
    in_sizes = x.shape[2:]
    if size is not None:
        sizes = (size,) * spatial if isinstance(size, (int, np.integer)) else tuple(size)
        if len(sizes) != spatial:
            raise O.ShapeError(f"interpolate: size {size} does not give one value per spatial dim of {tuple(x.shape)}")
        sizes = tuple(int(s) for s in sizes)
        scales = (None,) * spatial
    else:
        scales = (scale_factor,) * spatial if not isinstance(scale_factor, (tuple, list)) else tuple(scale_factor)
        if len(scales) != spatial:
            raise O.ShapeError(f"interpolate: scale_factor {scale_factor} does not give one value per spatial dim of {tuple(x.shape)}")
        sizes = tuple(int(math.floor(n * float(s))) for n, s in zip(in_sizes, scales))
        if recompute_scale_factor:
            scales = (None,) * spatial
        else:
            scales = tuple(float(s) for s in scales)
    if any(s <= 0 for s in sizes) and not (mode == "area" and all(s >= 0 for s in sizes)):
        raise O.ShapeError(f"interpolate: output size {sizes} must be positive (input {tuple(x.shape)})")
    if mode == "area":
        from tinymm.nn.functional import pool

        return getattr(pool, f"adaptive_avg_pool{spatial}d")(x, sizes)
    if antialias:  # (N, C, H, W) -> rows (Hout, H) · x · (W, Wout)
        mh, mw = (O.to(O.as_tensor(_antialias_matrix(o, i, sc, mode, bool(align_corners)).astype(x.dtype)),
                       x.device) for o, i, sc in zip(sizes, in_sizes, scales))
        return O.matmul(mh, O.matmul(x, O.transpose(mw, 0, 1)))
    out = x
    for d, (n_out, n_in, sc) in enumerate(zip(sizes, in_sizes, scales)):
        axis = 2 + d
        i0, i1, w = _source(n_out, n_in, sc, mode, bool(align_corners)) if mode != "bicubic" else (None,) * 3
        lead = (slice(None),) * axis
        shape = [1] * out.ndim
        shape[axis] = n_out
        if mode == "bicubic":
            total = None
            for idx, w in _cubic_taps(n_out, n_in, sc, bool(align_corners)):
                wt = O.to(O.as_tensor(w.reshape(shape).astype(x.dtype)), x.device)
                term = O.getitem(out, lead + (idx,)) * wt
                total = term if total is None else total + term
            out = total
            continue
        a = O.getitem(out, lead + (i0,))
        if i1 is None:
            out = a
            continue
        b = O.getitem(out, lead + (i1,))
        wt = O.as_tensor(w.reshape(shape).astype(x.dtype))
        if x.device != "cpu":
            wt = O.to(wt, x.device)
        out = a + (b - a) * wt
    return out


def upsample(input, size=None, scale_factor=None, mode: str = "nearest", align_corners=None):
    return interpolate(input, size, scale_factor, mode, align_corners)
