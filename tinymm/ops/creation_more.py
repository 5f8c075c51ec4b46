"""Tensor creation with PyTorch's names: ``empty_strided`` (and ``Tensor.new_empty_strided``),
``scalar_tensor`` and ``frombuffer``.

``empty_strided(size, stride)`` allocates the least memory the strides address (PyTorch's
storage size: 1 + Σ (size_i − 1)·stride_i elements, 0 when a size is 0) and views it with those
strides, so ``x.stride()`` is ``stride``; the values are uninitialised, as in PyTorch.
``frombuffer`` shares memory with any object that has the buffer protocol (writes reach it).
"""
from __future__ import annotations

import warnings

import numpy as np

from tinymm import backend
from tinymm.ops._util import DTypeError
from tinymm.tensor import Tensor


def _new(arr, requires_grad: bool) -> Tensor:
    t = Tensor._wrap(arr)
    if requires_grad:
        if arr.dtype.kind not in "fc":
            raise DTypeError("Only Tensors of floating point and complex dtype can require gradients")
        t.requires_grad_(True)
    return t


def empty_strided(size, stride, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
                  pin_memory: bool = False) -> Tensor:
    """An uninitialised tensor of ``size`` whose ``stride()`` is ``stride`` (in elements)."""
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise RuntimeError(f"dimensionality of sizes ({len(size)}) must match dimensionality of strides ({len(stride)})")
    if any(s < 0 for s in size):
        bad = next(s for s in size if s < 0)
        raise RuntimeError(f"Trying to create tensor with negative dimension {bad}: {list(size)}")
    if any(s < 0 for s in stride):
        raise RuntimeError(f"Storage size calculation overflowed with sizes={list(size)} and strides={list(stride)}")
    dt = np.dtype(dtype) if dtype is not None else backend.get_default_dtype()
    xp = backend.array_module(device)
    n = 0 if 0 in size else 1 + sum((s - 1) * st for s, st in zip(size, stride))
    storage = xp.empty(n, dt)
    if n == 0:
        arr = xp.empty(size, dt)
    else:
        arr = xp.lib.stride_tricks.as_strided(storage, size, tuple(st * dt.itemsize for st in stride))
    return _new(arr, requires_grad)


def new_empty_strided(x, size, stride, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
                      pin_memory: bool = False) -> Tensor:
    """``empty_strided`` with ``x``'s dtype and device unless given."""
    return empty_strided(size, stride, dtype=dtype if dtype is not None else x.dtype,
                         device=device if device is not None else x.device, requires_grad=requires_grad)


def scalar_tensor(s, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
                  pin_memory: bool = False) -> Tensor:
    """A 0-d tensor holding the number ``s``, of the default float dtype unless ``dtype``
    (``scalar_tensor(3)`` is ``tensor(3.)``, as PyTorch)."""
    if isinstance(s, Tensor):
        s = s.item()
    dt = np.dtype(dtype) if dtype is not None else backend.get_default_dtype()
    xp = backend.array_module(device)
    return _new(xp.asarray(s).astype(dt).reshape(()), requires_grad)


def frombuffer(buffer, *, dtype, count: int = -1, offset: int = 0, requires_grad: bool = False) -> Tensor:
    """A 1-D tensor over ``buffer``'s memory (shared, not copied): ``count`` elements of
    ``dtype`` (-1: all that fit) starting ``offset`` bytes in."""
    try:
        view = memoryview(buffer)
    except TypeError:
        raise ValueError("object does not implement Python buffer protocol.") from None
    dt = np.dtype(dtype)
    length = view.nbytes
    if length <= 0 or count == 0:
        raise ValueError(f"both buffer length ({length}) and count ({count}) must not be 0")
    if not 0 <= offset < length:
        raise ValueError(f"offset ({offset} bytes) must be non-negative and no greater than buffer length "
                         f"({length} bytes) minus 1")
    if count < 0:
        if (length - offset) % dt.itemsize:
            raise ValueError(f"buffer length ({length - offset} bytes) after offset ({offset} bytes) must be a "
                             f"multiple of element size ({dt.itemsize})")
        count = (length - offset) // dt.itemsize
    elif offset + count * dt.itemsize > length:
        raise ValueError(f"requested buffer length ({count} * {dt.itemsize} bytes) after offset ({offset} bytes) "
                         f"must not be greater than actual buffer length ({length} bytes)")
    if view.readonly:
        warnings.warn("The given buffer is not writable, and PyTorch does not support non-writable tensors. This "
                      "means you can write to the underlying (supposedly non-writable) buffer using the tensor. You "
                      "may want to copy the buffer to protect its data or make it writable before converting it to "
                      "a tensor. This type of warning will be suppressed for the rest of this program.", UserWarning,
                      stacklevel=2)
    arr = np.frombuffer(view.cast("B"), dtype=dt, count=count, offset=offset)
    return _new(arr, requires_grad)


CREATION_MORE_OPS = (
    (empty_strided, None, "empty_strided"),
    (new_empty_strided, "new_empty_strided", False),
    (scalar_tensor, None, "scalar_tensor"),
    (frombuffer, None, "frombuffer"),
)
