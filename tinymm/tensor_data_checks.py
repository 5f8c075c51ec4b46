"""What ``tinymm.tensor`` / ``as_tensor`` / ``from_numpy`` refuse, with PyTorch's error classes.

- A NumPy array with a negative stride (``a[::-1]``, ``np.flip(a)``): PyTorch's tensors cannot
  have negative strides, so ``torch.from_numpy``, ``torch.as_tensor`` and even ``torch.tensor``
  raise ValueError and ask for ``.copy()``. tinymm could copy silently, but then code written
  here would break on PyTorch at the first flipped image, so it refuses the same way.
- Data that is not numbers: None or another object (PyTorch: RuntimeError "Could not infer
  dtype of NoneType"), strings (PyTorch: TypeError for ``"a"`` and ``[1.0, "a"]``, ValueError
  for ``["a"]``: both here), integers beyond int64 (PyTorch: ValueError "Overflow when unpacking
  long long"). Each error is also a TypeError, which tinymm raised for all of them before.

The checks run only on the failure path (``diagnose``) or on ndarray strides, so a good call
pays one attribute read.
"""
from __future__ import annotations

import numpy as np

__all__ = ["NegativeStrideError", "check_python_ints", "check_strides", "diagnose"]

_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


class NegativeStrideError(ValueError):
    """A NumPy array with a negative stride given to a tensor factory."""


class DataInferenceError(RuntimeError, TypeError):
    """Data whose dtype cannot be inferred (None, a dict, an arbitrary object)."""


class StringDataError(TypeError, ValueError):
    """Strings given as tensor data."""


class IntOverflowError(ValueError, TypeError):
    """A Python int outside int64 given as tensor data."""


def check_strides(data, fn: str) -> None:
    """Refuse a NumPy array with a negative stride (see the module docstring)."""
    if isinstance(data, np.ndarray) and any(s < 0 for s in data.strides):
        raise NegativeStrideError(
            f"{fn}: At least one stride in the given numpy array is negative, and tensors with negative strides "
            f"are not currently supported (strides {data.strides}, shape {data.shape}). Pass a copy: "
            f"array.copy() or np.ascontiguousarray(array).")


_FINE = object()  # a leaf that converts (None is a bad leaf, so it cannot mark "nothing found")


def _first_bad_leaf(data, depth=0):
    """The first leaf of nested lists/tuples that is not a number (or an int beyond int64);
    ``_FINE`` when every leaf is one."""
    if depth > 64:
        return _FINE
    if isinstance(data, (list, tuple)):
        for item in data:
            bad = _first_bad_leaf(item, depth + 1)
            if bad is not _FINE:
                return bad
        return _FINE
    if isinstance(data, np.ndarray):
        return data.flat[0] if data.dtype.kind in "OUS" and data.size else _FINE
    if isinstance(data, bool) or isinstance(data, (float, complex, np.number, np.bool_)):
        return _FINE
    if isinstance(data, int):
        return data if not _INT64_MIN <= data <= _INT64_MAX else _FINE
    if hasattr(data, "__array__") or hasattr(data, "shape"):  # a Tensor or array-like inside a list
        return _FINE
    return data


def check_python_ints(data, arr, fn: str) -> None:
    """NumPy turns Python ints between 2**63 and 2**64 into uint64 where PyTorch (int64 only)
    refuses them; ``arr`` is what ``data`` became."""
    if arr.dtype == np.uint64 and not isinstance(data, (np.ndarray, np.generic)) and not hasattr(data, "__array__"):
        raise IntOverflowError(f"{fn}: Overflow when unpacking long long: a value does not fit in int64 "
                               f"(largest {int(arr.max())})")


def diagnose(data, fn: str):
    """The PyTorch-classed error for data a factory could not convert, or None when nothing
    specific is wrong (the caller re-raises its own error)."""
    if isinstance(data, np.ndarray) and data.dtype.kind in "OUSV":
        kind = {"U": "numpy.str_", "S": "numpy.bytes_", "V": "numpy.void"}.get(data.dtype.kind, "numpy.object_")
        cls = StringDataError if data.dtype.kind in "US" else DataInferenceError
        return cls(f"{fn}: can't convert np.ndarray of type {kind}. The only supported types are: float64, float32, "
                   f"float16, complex64, complex128, int64, int32, int16, int8, uint8, and bool.")
    bad = _first_bad_leaf(data)
    if bad is _FINE:
        return None
    if isinstance(bad, (str, bytes, np.str_, np.bytes_)):
        return StringDataError(f"{fn}: invalid data type '{type(bad).__name__}': tensor data must be numbers, "
                               f"got the string {str(bad)[:40]!r}")
    if isinstance(bad, int):
        return IntOverflowError(f"{fn}: Overflow when unpacking long long: {bad} does not fit in int64")
    return DataInferenceError(f"{fn}: Could not infer dtype of {type(bad).__name__}")
