"""PyTorch's result dtype for an op on more than two operands (``clamp`` with tensor bounds,
``addcmul``), by the same three tiers as ``promotion.result_type``: dimensioned tensors, then
0-dim tensors, then Python numbers, each tier promoting within itself first.

Folding the operands two at a time is not the same thing: ``clamp(int8 x, min=uint8 tensor)``
is int16 in PyTorch, and a product of two uint8 tensors taken before meeting an int8 input
wraps before it widens (probe16 found both)."""
from __future__ import annotations

import numbers

import numpy as np

from tinymm import backend
from tinymm.dtype_objects import as_dtype, default_complex_dtype
from tinymm.ops.promotion import combine_tiers, promote_dtypes
from tinymm.tensor import Tensor


def _number_dtype(value) -> np.dtype:
    """A Python number's dtype in promotion: bool, int64, the default float or complex."""
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(value, numbers.Integral):
        return np.dtype(np.int64)
    if isinstance(value, complex):
        return default_complex_dtype(backend.get_default_dtype()).dtype
    return np.dtype(backend.get_default_dtype())


def result_dtype_of(*values):
    """The result dtype of tensors and Python numbers together (None entries are skipped)."""
    tiers = [None, None, None]
    for value in values:
        if value is None:
            continue
        if isinstance(value, Tensor):
            tier, dtype = (0 if value.ndim else 1), value._data.dtype
        elif isinstance(value, np.generic):
            tier, dtype = 2, _number_dtype(value.item())
        elif isinstance(value, numbers.Complex):
            tier, dtype = 2, _number_dtype(value)
        else:
            continue  # not an operand (the caller's own check names it)
        tiers[tier] = dtype if tiers[tier] is None else promote_dtypes(tiers[tier], dtype)
    return as_dtype(combine_tiers(tiers[0], combine_tiers(tiers[1], tiers[2])))
