"""``finfo`` and ``iinfo``: the numeric limits of tinymm's dtypes (NumPy dtypes), with
PyTorch's attribute names. There is no bfloat16 (NumPy has none) and no complex dtype."""
from __future__ import annotations

import numpy as np

from tinymm.backend import get_default_dtype


class finfo:
    """Limits of a floating dtype (default: the default dtype): ``bits``, ``eps``, ``max``,
    ``min``, ``tiny`` (= ``smallest_normal``) and ``resolution``."""

    def __init__(self, type=None):
        d = get_default_dtype() if type is None else np.dtype(type)
        if d.kind != "f":
            raise TypeError(f"finfo: {d} is not a floating point dtype (use iinfo for integers)")
        info = np.finfo(d)
        self.dtype = str(d)
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -int(info.precision)  # PyTorch's: exactly a power of ten

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.tiny:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """Limits of an integer dtype: ``bits``, ``max``, ``min``."""

    def __init__(self, type):
        d = np.dtype(type)
        if d.kind not in "iu":
            raise TypeError(f"iinfo: {d} is not an integer dtype (use finfo for floating point)")
        info = np.iinfo(d)
        self.dtype = str(d)
        self.bits = int(info.bits)
        self.max = int(info.max)
        self.min = int(info.min)

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"
