"""PyTorch's type promotion, as functions: ``promote_types``, ``result_type`` (``can_cast`` is
in ``functions_more``).

The rules (PyTorch's, for the dtypes tinymm has: bool, uint8, int8, int16, int32, int64,
float16, float32, float64, complex64, complex128):

- categories rank bool < integer < floating < complex (complex meeting floating keeps the wider
  precision: float64 with complex64 is complex128; a Python complex counts as the default
  complex dtype, complex64 under float32); ``promote_types(a, b)`` is the smallest dtype both
  fit in within the higher category: a floating dtype wins over any integer one whatever its
  size (``int64`` with ``float16`` is ``float16``, where NumPy says float64); two integers
  promote as NumPy's integers do (``uint8`` with ``int8`` is ``int16``).
- ``result_type(a, b)`` ranks the operands in three tiers: tensors with dimensions, then 0-dim
  tensors, then Python numbers. A lower tier changes the result only when its category is
  higher (``int32 tensor + 2.5`` is float32, ``float32 tensor + float64 0-dim tensor`` is
  float32). A Python float counts as the default float dtype, an int as int64, a bool as bool.

tinymm's binary ops follow these rules (``ops/convert.py``'s ``check_pair``), the 0-dim tier
included (an int32 tensor times a 0-dim int64 tensor stays int32, as in PyTorch).
"""
from __future__ import annotations

import numbers

import numpy as np

from tinymm import backend
from tinymm.dtype_objects import KIND_CATEGORY, as_dtype, default_complex_dtype
from tinymm.dtype_objects import dtype as _dtype_class
from tinymm.tensor import Tensor

_CATEGORY = KIND_CATEGORY


def _dtype_arg(fn: str, position: int, name: str, value) -> np.dtype:
    """A dtype argument: a tinymm dtype (``tinymm.float32``, a NumPy dtype) or a NumPy scalar
    type; anything else is a TypeError, as PyTorch's argument parser raises."""
    if isinstance(value, _dtype_class):
        value = value.dtype
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        dtype = np.dtype(value)
        if dtype.kind in _CATEGORY:
            return dtype
    raise TypeError(f"{fn}(): argument '{name}' (position {position}) must be torch.dtype, not {type(value).__name__}")


def promote_dtypes(a: np.dtype, b: np.dtype) -> np.dtype:
    ca, cb = _CATEGORY[a.kind], _CATEGORY[b.kind]
    if ca != cb:
        # cplx: complex meeting floating keeps the wider precision (float64 + complex64 -> complex128)
        if {a.kind, b.kind} == {"c", "f"}:
            return np.promote_types(a, b)
        return a if ca > cb else b
    return np.promote_types(a, b)


def promote_types(type1, type2) -> np.dtype:
    """The dtype PyTorch gives an op on tensors of ``type1`` and ``type2`` (see the module
    docstring); ``TypeError`` for anything that is not a dtype."""
    return as_dtype(promote_dtypes(_dtype_arg("promote_types", 1, "type1", type1), _dtype_arg("promote_types", 2, "type2", type2)))


def _scalar_dtype(value) -> np.dtype:
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(value, numbers.Integral):
        return np.dtype(np.int64)
    if isinstance(value, complex):  # cplx
        return default_complex_dtype(backend.get_default_dtype()).dtype
    return backend.get_default_dtype()


def combine_tiers(higher, lower):
    """PyTorch's rule for a tier meeting the tier below it: the lower tier only counts when its
    category is above the higher tier's (or the higher tier is bool, or absent)."""
    if higher is None:
        return lower
    if lower is None or higher.kind == "c":
        return higher
    if lower.kind == "c":  # cplx: a floating higher tier keeps its precision (float64 + 1j -> complex128)
        return np.dtype(f"c{2 * higher.itemsize}") if higher.kind == "f" and higher.itemsize >= 4 else lower
    if higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return promote_dtypes(higher, lower)
    return higher


def _operand_tier(value):
    """(tier, dtype) of one operand: 0 a dimensioned tensor, 1 a 0-dim tensor, 2 a Python
    number (a NumPy scalar counts as the Python number); None for anything else."""
    if isinstance(value, Tensor):
        return (0 if value.ndim else 1), value._data.dtype
    if isinstance(value, numbers.Complex) and not isinstance(value, np.generic):
        return 2, _scalar_dtype(value)
    if isinstance(value, np.generic) and value.dtype.kind in _CATEGORY:
        return 2, _scalar_dtype(value.item())
    return None


def _combine(tiered):
    """The result dtype of (tier, dtype) pairs: each tier promoted within itself, then the
    tiers in order."""
    tiers = [None, None, None]  # dimensioned tensors, 0-dim tensors, Python numbers
    for tier, dtype in tiered:
        tiers[tier] = dtype if tiers[tier] is None else promote_dtypes(tiers[tier], dtype)
    return as_dtype(combine_tiers(tiers[0], combine_tiers(tiers[1], tiers[2])))


def result_type(tensor1, tensor2) -> np.dtype:
    """The dtype of an arithmetic op on ``tensor1`` and ``tensor2`` (each a Tensor or a Python
    number), by PyTorch's three-tier rule (see the module docstring)."""
    tiered = []
    for position, (name, value) in enumerate((("tensor1", tensor1), ("tensor2", tensor2)), start=1):
        pair = _operand_tier(value)
        if pair is None:
            raise TypeError(f"result_type(): argument '{name}' (position {position}) must be Tensor or Number, "
                            f"not {type(value).__name__}")
        tiered.append(pair)
    return _combine(tiered)


def result_dtype_of(*values) -> np.dtype:
    """The result dtype of an op on more than two operands (``clamp`` with tensor bounds,
    ``addcmul``): the same tiers over all of them at once; None and non-operands are skipped
    (the caller's own checks name those). Folding two at a time is not the same thing:
    ``clamp(int8 x, min=uint8 tensor)`` is int16 in PyTorch, and a product of two uint8
    tensors taken before meeting an int8 input wraps before it widens (probe16 found both)."""
    return _combine(pair for pair in map(_operand_tier, values) if pair is not None)


PROMOTION_OPS = ((promote_types, None, "promote_types"), (result_type, None, "result_type"))
