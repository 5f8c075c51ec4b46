"""Ops whose two tensor operands must already share a dtype.

PyTorch does not promote for ``isclose``/``allclose`` ("Long did not match Float") or for
``lerp``'s ``input``/``end`` ("expected dtype float for `end` but got dtype double"); tinymm
promoted both silently (found by probe16's differential tests), which hides a mixed-precision
bug in the caller. A Python number is still accepted where tinymm accepted one."""
from tinymm.ops._util import DTypeError, torch_dtype_name
from tinymm.tensor import Tensor


def require_same_dtype(name: str, a, b, message: str = "{a} did not match {b}") -> None:
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a._data.dtype != b._data.dtype:
        raise DTypeError(f"{name}: " + message.format(a=torch_dtype_name(a._data.dtype),
                                                      b=torch_dtype_name(b._data.dtype)))
