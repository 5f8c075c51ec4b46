"""Activations PyTorch computes only on floating tensors, refused at the boundary as PyTorch
refuses them.

``torch.nn.functional.gelu(torch.tensor([1, 2]))`` raises ``NotImplementedError: "GeluKernelImpl"
not implemented for 'Long'``: the kernel has no integer version. Promoting the integers to
float instead (tinymm's earlier choice) made code that forgot a ``.float()`` run here and fail
on PyTorch, so these ops now raise the same error class with PyTorch's words, plus the fix.
Ops whose PyTorch formula promotes (sigmoid, tanh, softsign on integers) keep promoting.
"""
from __future__ import annotations

from tinymm.ops._util import DTypeNotImplementedError, torch_dtype_name
from tinymm.ops.convert import as_tensor, to_float
from tinymm.tensor import Tensor

__all__ = ["floating_input"]


def floating_input(x, op: str, kernel: str, ints_promote: bool = False) -> Tensor:
    """``x`` as a floating Tensor for ``op``; bool (and, unless ``ints_promote``, integer)
    input raises PyTorch's ``"<kernel>" not implemented for '<dtype>'``."""
    t = as_tensor(x, op)
    kind = t._data.dtype.kind
    if kind == "b" or (kind in "iu" and not ints_promote):
        raise DTypeNotImplementedError(
            f"\"{kernel}\" not implemented for '{torch_dtype_name(t._data.dtype)}' ({op} needs a floating "
            f"input, got {t.dtype}; convert it with .float())")
    return to_float(t)
