"""PyTorch's remaining spellings of existing ops: ``torch.range`` (deprecated: the end is
included, the default dtype is float), ``torch.adjoint`` (``Tensor.adjoint``'s),
``torch.expand_copy``, and ``Tensor.unsafe_chunk`` / ``unsafe_split`` /
``unsafe_split_with_sizes`` (PyTorch's "unsafe" variants skip its view bookkeeping; here they
are the ordinary ops)."""
from __future__ import annotations

import math
import warnings

from tinymm.backend import get_default_dtype
from tinymm.ops.convert import as_tensor, clone
from tinymm.ops.shape import expand
from tinymm.tensor import Tensor


def range(start, end, step=1, *, dtype=None, device=None, requires_grad=False, out=None):  # noqa: A001
    """``torch.range``: start, start + step, ... up to and including ``end`` (both required)."""
    from tinymm.factories import arange

    warnings.warn("torch.range is deprecated and will be removed in a future release because its behavior is "
                  "inconsistent with Python's range builtin. Instead, use torch.arange, which produces values in "
                  "[start, end).", UserWarning, stacklevel=2)
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError("upper bound and larger bound inconsistent with step sign")
    n = int(math.floor((end - start) / step)) + 1
    dtype = get_default_dtype() if dtype is None else dtype
    return arange(n, dtype=dtype, device=device, requires_grad=False).mul(step).add(start).to(dtype).requires_grad_(
        requires_grad)


def adjoint(input: Tensor) -> Tensor:
    """``torch.adjoint``: ``Tensor.adjoint()``, the conjugate transpose of the last two dims."""
    return as_tensor(input, "adjoint").adjoint()


def expand_copy(input: Tensor, size, *, implicit: bool = False) -> Tensor:
    """``expand`` as a new tensor with its own memory."""
    return clone(expand(as_tensor(input, "expand_copy"), *size))
