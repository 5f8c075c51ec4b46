"""In-place ops: ``__setitem__`` and the ``*_`` methods (``zero_``, ``fill_``, ``add_``, ...)."""
from __future__ import annotations

from tinymm import autograd
from tinymm.ops.index import array_index
from tinymm.tensor import Tensor


def setitem(x: Tensor, index, value) -> None:
    if x.requires_grad and autograd.is_grad_enabled():
        raise RuntimeError(
            "in-place assignment into a tensor that requires grad would corrupt its graph; "
            "do it under tinymm.no_grad() or on a detached tensor"
        )
    if isinstance(value, Tensor):
        value = value.data
    x.data[array_index(index)] = value


def zero_(x: Tensor) -> Tensor:
    x.data[...] = 0
    return x
