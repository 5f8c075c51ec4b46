"""``finfo`` and ``iinfo``: the numeric limits of tinymm's dtypes (``tinymm.dtype``), with
PyTorch's attribute names; and PyTorch's legacy tensor types (``FloatTensor``, ``LongTensor``,
...) as constructors that ``isinstance`` understands. There is no bfloat16 (NumPy has none)
and no complex32; ``finfo`` of a complex dtype is that of its real parts, as in PyTorch."""
from __future__ import annotations

import numpy as np

from tinymm import factories
from tinymm.backend import get_default_dtype
from tinymm.dtype_objects import as_dtype, bfloat16
from tinymm.tensor import Tensor


class finfo:
    """Limits of a floating dtype (default: the default dtype): ``bits``, ``eps``, ``max``,
    ``min``, ``tiny`` (= ``smallest_normal``) and ``resolution``."""

    def __init__(self, type=None):
        d = get_default_dtype() if type is None else as_dtype(type)
        if d is bfloat16:  # no NumPy type to ask: its limits, as torch.finfo(torch.bfloat16)
            self.dtype, self.bits, self.eps = "bfloat16", 16, 2.0 ** -7
            self.max = float.fromhex("0x1.fep127")
            self.min = -self.max
            self.tiny = self.smallest_normal = 2.0 ** -126
            self.resolution = 0.01
            return
        d = d.to_real() if d.kind == "c" else d  # cplx
        if d.kind != "f":
            raise TypeError(f"finfo: {d} is not a floating point dtype (use iinfo for integers)")
        info = np.finfo(d.dtype)
        self.dtype = d.name  # a string, as torch's finfo(...).dtype ("float32")
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
        d = as_dtype(type)
        if d.kind not in "iu":
            raise TypeError(f"iinfo: {d} is not an integer dtype (use finfo for floating point)")
        info = np.iinfo(d.dtype)
        self.dtype = d.name  # a string, as torch's iinfo(...).dtype ("int64")
        self.bits = int(info.bits)
        self.max = int(info.max)
        self.min = int(info.min)

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


# ----------------------------------------------------------------------------- legacy tensor types


class _LegacyTypeMeta(type):
    """``isinstance(x, FloatTensor)``: a CPU Tensor of that dtype (as PyTorch's legacy types)."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype and not obj.is_cuda


def _legacy_type(name: str, dtype):
    def __new__(cls, *args, device=None):
        """``FloatTensor(data)`` copies data into a tensor of this dtype; ``FloatTensor(2, 3)``
        (ints) is an uninitialised tensor of that size; ``FloatTensor()`` an empty one."""
        if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
            return factories.tensor(args[0], dtype=cls.dtype, device=device)
        return factories.empty(*args, dtype=cls.dtype, device=device or "cpu") if args else \
            factories.empty(0, dtype=cls.dtype, device=device or "cpu")

    return _LegacyTypeMeta(name, (), {"dtype": as_dtype(dtype), "__new__": __new__,
                                      "__doc__": f"PyTorch's legacy ``torch.{name}``: {as_dtype(dtype)} tensors."})


FloatTensor = _legacy_type("FloatTensor", np.float32)
DoubleTensor = _legacy_type("DoubleTensor", np.float64)
HalfTensor = _legacy_type("HalfTensor", np.float16)
LongTensor = _legacy_type("LongTensor", np.int64)
IntTensor = _legacy_type("IntTensor", np.int32)
ShortTensor = _legacy_type("ShortTensor", np.int16)
CharTensor = _legacy_type("CharTensor", np.int8)
ByteTensor = _legacy_type("ByteTensor", np.uint8)
BoolTensor = _legacy_type("BoolTensor", np.bool_)
