"""PyTorch's result dtype for an op on more than two operands (``clamp`` with tensor bounds,
``addcmul``), by the same three tiers as ``promotion.result_type``: dimensioned tensors, then
0-dim tensors, then Python numbers, each tier promoting within itself first.

Folding the operands two at a time is not the same thing: ``clamp(int8 x, min=uint8 tensor)``
is int16 in PyTorch, and a product of two uint8 tensors taken before meeting an int8 input
wraps before it widens (probe16 found both)."""
from __future__ import annotations

import numbers

import numpy as np

from tinymm.dtype_objects import as_dtype
from tinymm.ops.promotion import _scalar_dtype, combine_tiers, promote_dtypes
from tinymm.tensor import Tensor


def result_dtype_of(*values):
    """The result dtype of tensors and Python numbers together (None entries are skipped)."""
    tiers = [None, None, None]
    for value in values:
        if value is None:
            continue
        if isinstance(value, Tensor):
            tier, dtype = (0 if value.ndim else 1), value._data.dtype
        elif isinstance(value, np.generic):
            tier, dtype = 2, _scalar_dtype(value.item())
        elif isinstance(value, numbers.Complex):
            tier, dtype = 2, _scalar_dtype(value)
        else:
            continue  # not an operand (the caller's own check names it)
        tiers[tier] = dtype if tiers[tier] is None else promote_dtypes(tiers[tier], dtype)
    return as_dtype(combine_tiers(tiers[0], combine_tiers(tiers[1], tiers[2])))
