"""Floor 3: a Python number written into a tensor must fit the tensor's dtype, as in PyTorch.

``mask_logits.masked_fill(mask, float("-inf"))`` on an int64 tensor, ``torch.full((n,), 1e30,
dtype=torch.long)`` or ``uint8_image.fill_(300)`` raise in PyTorch ("value cannot be converted
to type int64_t without overflow"); NumPy casts silently and gives INT64_MIN, garbage or a
wrapped value. Every op that writes a scalar into a tensor of a given dtype (``fill_``,
``full`` / ``full_like`` / ``new_full``, ``masked_fill``, ``index_fill``, ``fill_diagonal_``,
``scatter(value=)``, ``x[i] = v``) checks it here first.

PyTorch's rule (c10's ``overflows``): into an integer dtype, a float overflows when it is NaN,
infinite or outside [lowest, max] (so ``2.5`` is fine and truncates, ``-1.0`` into uint8 is
not); an int overflows when outside [lowest, max], except that a negative int may wrap into an
unsigned dtype (``-1`` into uint8 is 255) as long as its magnitude is at most the max. Into
float32, a finite float beyond ±FLT_MAX overflows (inf and NaN are values it can hold). bool,
float16 and float64 targets, bool values and complex numbers are never refused.

What comes back is the number to write, as PyTorch would store it, so NumPy neither refuses nor
warns: a negative int for an unsigned dtype wrapped (NumPy 2 raises OverflowError on ``-1``
into uint8), and a finite float beyond float16's range as ±inf (NumPy warns on that cast).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

# the C++ type names PyTorch's message uses
_NAMES = {np.dtype(np.uint8): "uint8_t", np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t",
          np.dtype(np.int32): "int", np.dtype(np.int64): "int64_t", np.dtype(np.float32): "float"}


class ScalarOverflowError(RuntimeError):
    """A number that the tensor's dtype cannot hold (PyTorch's RuntimeError)."""


def check_scalar_fits(value, dtype, half_overflows: bool = False):
    """``value`` as it is to be written into a tensor of ``dtype``, or ScalarOverflowError when
    it does not fit (see the module docstring); anything that is not a real Python or NumPy
    number comes back unchecked. ``half_overflows``: float16 refuses a finite value beyond its
    range instead of storing inf: PyTorch's masked_fill, index_fill and scatter check float16, and
    fill_, full and fill_diagonal_ do on more than one element (their one-element path converts
    unchecked); setitem never does."""
    dtype = np.dtype(dtype)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return value
    if dtype == np.float16:
        v = float(value)
        if not (math.isfinite(v) and abs(v) > float(np.finfo(np.float16).max)):
            return value
        if half_overflows:
            raise ScalarOverflowError("value cannot be converted to type c10::Half without overflow")
        with np.errstate(over="ignore"):  # rounds as float16 does: 65519 is 65504, 65520 is inf
            return float(np.float16(v))
    name = _NAMES.get(dtype)
    if name is None:
        return value
    if dtype.kind == "f":  # float32
        v = float(value)
        if math.isfinite(v) and abs(v) > float(np.finfo(np.float32).max):
            raise ScalarOverflowError(f"value cannot be converted to type {name} without overflow")
        return value
    info = np.iinfo(dtype)
    if isinstance(value, numbers.Integral):
        v = int(value)
        fits = v <= info.max and (v >= info.min or (dtype.kind == "u" and -v <= info.max))
    else:
        v = float(value)
        fits = not math.isnan(v) and info.min <= v <= info.max
    if not fits:
        raise ScalarOverflowError(f"value cannot be converted to type {name} without overflow")
    if dtype.kind == "u" and isinstance(value, numbers.Integral) and v < 0:
        return v % (int(info.max) + 1)  # two's complement wrap, as PyTorch stores it
    return value
