"""PyTorch's CPU results to the last bit where its kernels round differently from the obvious
NumPy expression: one fused multiply-add (``fma``), and the values of ``linspace``.

PyTorch's vectorised CPU kernels are compiled with FMA enabled, so ``a * b + c`` written in them
is rounded once. Where that last bit decides something discrete, tinymm rounds the same way:

- ``linspace``. PyTorch does not round the exact values start + i * (end - start) / (steps - 1)
  (NumPy's float64-then-cast does, near enough). In the tensor's own dtype it takes
  ``step = (end - start) / (steps - 1)``, then fills the first half from the start and the
  second half back from the end, each line one fused multiply-add::

      out[i] = start + step * i                    for i <  steps // 2
      out[i] = end   - step * (steps - 1 - i)      for i >= steps // 2

  ``affine_grid``'s base grid is ``linspace(-1, 1, n)``, and a sampling coordinate one ulp
  below a pixel instead of on it flips which pixel pair bilinear sampling reads, so the
  gradient w.r.t. the grid jumps (the Spatial Transformer tutorial starts exactly there, at
  the identity transform).
- ``arange``. A float arange is start + step * i computed in double, but PyTorch's kernel
  (``at::parallel_for`` in chunks of at least 32768 values over its threads) fills each
  chunk in blocks of 16 as two vectors of 8 (float32; 4 for float64): each vector starts at
  base = (dtype) (start + step * i0) and counts on from base, ``base + step * j``, and the
  chunk's last n % 16 values come one by one. So a value 1 ulp off the correctly rounded one
  is what PyTorch gives, and ``torch.equal`` against tinymm needs the same blocks. Matched on
  400 random ranges of 1 to 120000 values, float32 and float64 (where every line is an fma),
  2 threads.
- ``grid_sample``'s unnormalisation of 4-D grids without align_corners,
  ``(coord + 1) * (size / 2) - 0.5``, for the same reason.

float32 (and integer dtypes, whose linspace step is a double) are fused exactly through
float64: the product of two float32 numbers (or of a float32 and an index below 2**29) is exact
there and the sum is rounded once to float32. float64 is fused with an error-free product
(Veltkamp / Dekker) and sum (Knuth): correctly rounded but for double-rounding ties that do not
occur at realistic sizes. float16 linspace follows c10::Half: every operation rounded to half on
its own, no fusing. Pure array code: ``xp`` is numpy or cupy.
"""
from __future__ import annotations

import numpy as np

_SPLIT = 134217729.0  # 2**27 + 1, Veltkamp's splitter for float64


def _two_product(a, b, xp):
    """p, e with p = fl(a * b) and p + e = a * b exactly (float64 arrays)."""
    p = a * b

    def split(x):
        t = _SPLIT * x
        hi = t - (t - x)
        return hi, x - hi

    ah, al = split(a)
    bh, bl = split(b)
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def _fma64(a, b, c, xp):
    """a * b + c with one rounding (float64 arrays)."""
    p, e = _two_product(a, b, xp)
    s = p + c
    bp = s - p
    err = (p - (s - bp)) + (c - bp)  # Knuth's TwoSum: s + err = p + c exactly
    return s + (err + e)


def fma(a, b, c, xp):
    """a * b + c rounded once, in the dtype of ``a`` (float32 or float64 arrays; b and c
    arrays or Python numbers, all broadcast)."""
    d = a.dtype
    if d == np.float64:
        a, b, c = xp.broadcast_arrays(a, xp.asarray(b, np.float64), xp.asarray(c, np.float64))
        return _fma64(a, b, c, xp)
    if d != np.float32:
        raise TypeError(f"fma: float32 or float64 arrays, got {d}")
    b32 = xp.asarray(b, np.float32).astype(np.float64)
    c32 = xp.asarray(c, np.float32).astype(np.float64)
    return (a.astype(np.float64) * b32 + c32).astype(np.float32)


def linspace_values(xp, start: float, end: float, steps: int, dtype) -> "np.ndarray":
    """(steps,) array of PyTorch's linspace values in ``dtype`` (a NumPy dtype; bool refused by
    the caller)."""
    d = np.dtype(dtype)
    if steps == 0:
        return xp.zeros(0, d)
    if d == np.float16 and steps > 1:
        half = np.float16
        s, e = half(float(start)), half(float(end))
        step = half(half(e - s) / half(steps - 1))
        i = xp.arange(steps).astype(half)
        back = ((steps - 1) - xp.arange(steps)).astype(half)
        return xp.where(xp.arange(steps) < steps // 2, s + step * i, e - step * back).astype(half)
    if d.kind not in "fiu" or d.itemsize < 4:
        vals = xp.linspace(float(start), float(end), int(steps), dtype=np.float64)
        return xp.trunc(vals).astype(d) if d.kind in "iu" else vals.astype(d)
    if d.kind in "iu":
        # the step is a double; the ends are first cast to the integer dtype
        s, e, work = np.float64(int(float(start))), np.float64(int(float(end))), np.float64
    else:
        s, e, work = d.type(float(start)), d.type(float(end)), d.type
    if steps == 1:
        out = xp.full(1, s, np.float64)
    else:
        step = work(work(e - s) / work(steps - 1))
        i = xp.arange(steps, dtype=np.float64)
        back = (steps - 1) - i  # exact: integers below 2**53
        if work is np.float64:
            lo = _fma64(xp.full(steps, step), i, xp.full(steps, s), xp)
            hi = _fma64(xp.full(steps, -step), back, xp.full(steps, e), xp)
        else:  # float32: exact in float64, then one rounding below
            lo = np.float64(s) + np.float64(step) * i
            hi = np.float64(e) - np.float64(step) * back
        out = xp.where(i < steps // 2, lo, hi)
    if d.kind in "iu":
        return xp.trunc(out).astype(d)
    return out.astype(d)


_ARANGE_GRAIN = 32768  # at::internal::GRAIN_SIZE: the fewest values per thread in parallel_for


def arange_values(xp, start: float, step: float, n: int, dtype, threads: int) -> "np.ndarray":
    """(n,) float32 or float64 array of PyTorch's CPU ``arange`` values from start by step,
    as its kernel rounds them with ``threads`` threads (see the module docstring)."""
    d = np.dtype(dtype)
    width = 8 if d == np.float32 else 4  # lanes of one vector, two vectors per block
    start, step = float(start), float(step)
    out = xp.empty(n, np.float64)
    parts = min(max(int(threads), 1), -(-n // _ARANGE_GRAIN)) if n > _ARANGE_GRAIN else 1
    chunk = -(-n // parts) if n else 1
    for begin in range(0, n, chunk):
        end = min(n, begin + chunk)
        blocks_end = end - (end - begin) % (2 * width)
        i = xp.arange(begin, blocks_end, dtype=np.float64)
        offset = (i - begin) % width
        base = _line(xp, step, i - offset, start, d).astype(d).astype(np.float64)
        out[begin:blocks_end] = _line(xp, step, offset, base, d)
        tail = xp.arange(blocks_end, end, dtype=np.float64)
        out[blocks_end:end] = _line(xp, step, tail, start, d)
    return out.astype(d)


def _line(xp, step, i, base, d):
    """step * i + base in double: fused for float64 (the rounding that shows), plain for float32
    (whose cast hides the difference)."""
    if d == np.float64:
        return _fma64(xp.full(i.shape, step), i, xp.broadcast_to(xp.asarray(base, np.float64), i.shape), xp)
    return base + step * i
