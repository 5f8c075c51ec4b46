"""Integer operands of an op whose result is floating (true division, atan2, xlogy, …).

PyTorch computes such an op in the float result type on the operands' own values. Promoting two
integer tensors to their common integer dtype first, and only then to float, wraps a value the
common dtype cannot hold: a uint8 tensor divided by a 0-d int8 tensor keeps dtype uint8 as the
common integer type, so −3 would become 253 (probe16 found ``uint8 / int8(-3)`` giving 0.04
instead of −3.33). So when no operand is floating, each integer or bool tensor is turned into
the default float dtype by itself, before the operands meet."""
from tinymm.backend import get_default_dtype
from tinymm.ops.convert import cast
from tinymm.tensor import Tensor


def _is_inexact(x) -> bool:
    if isinstance(x, Tensor):
        return x._data.dtype.kind in "fc"
    return isinstance(x, (float, complex))


def ints_to_default_float(a, b):
    """(a, b) with integer/bool tensors cast to the default float dtype when neither operand is
    a float or complex tensor or number; otherwise unchanged (the usual promotion then decides)."""
    if _is_inexact(a) or _is_inexact(b):
        return a, b

    def lift(x):
        return cast(x, get_default_dtype()) if isinstance(x, Tensor) else x

    return lift(a), lift(b)
