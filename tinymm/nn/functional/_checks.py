"""Checks shared by the floor-4 public functions: operands must agree on device and dtype."""
from tinymm.ops._util import DTypeError, DTypeNotImplementedError, ShapeError, ValueRangeError  # noqa: F401  (one class for every floor; re-exported here)
from tinymm.tensor import Tensor


def check_same_device(name, **tensors):
    kinds = {k: v.device for k, v in tensors.items() if isinstance(v, Tensor)}
    if len(set(kinds.values())) > 1:
        raise ValueError(f"{name}: tensors on different devices: " + ", ".join(f"{k} on {d}" for k, d in kinds.items()))


def check_same_dtype(name, **tensors):
    kinds = {k: v.dtype for k, v in tensors.items() if isinstance(v, Tensor)}
    if len(set(kinds.values())) > 1:
        raise DTypeError(f"{name}: dtype mismatch: " + ", ".join(f"{k} is {d}" for k, d in kinds.items()))


