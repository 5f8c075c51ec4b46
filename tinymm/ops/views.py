"""Views: arrays that share their base's memory, and the record of how a view was made.

PyTorch's view ops (``view``/``reshape`` when no copy is needed, ``transpose``, ``permute``,
``unsqueeze``, ``diagonal``, ``unfold``, indexing...) return tensors that share memory with
their input, so that writing into the view writes into the base. tinymm's do too, and a view
made by one of them records, in ``Tensor._view_src``, its base and a ``ViewOp`` that makes it
again from the base: ``ops/inplace.py`` replays it to carry an in-place write with gradient
into the base's graph (PyTorch's CopySlices). Indexing records its index instead (``ops/index``).

A view made with NumPy's ``as_strided`` helper hides its storage (its ``.base`` is a stand-in
object), so version counters and ``storage_offset`` would not see it. ``geometry`` and
``strided`` build views on the storage's own flat array instead (``as_strided``, ``unfold``).
"""
from __future__ import annotations

import numpy as np

from tinymm.tensor import storage_of, storage_version


def geometry(arr):
    """(element offset from the storage start, element strides, the storage as a flat array)."""
    root = storage_of(arr)
    if not root.flags.c_contiguous:
        raise RuntimeError("as_strided: the tensor's storage is not one contiguous block")
    size = arr.dtype.itemsize
    ptr = (lambda a: a.__array_interface__["data"][0]) if type(arr) is np.ndarray else (lambda a: a.data.ptr)
    offset = (ptr(arr) - ptr(root)) // size
    return offset, tuple(s // size for s in arr.strides), root.reshape(-1).view(arr.dtype)


def strided(flat, size, stride, offset):
    """A view of the contiguous 1-D ``flat`` with element ``size``/``stride``/``offset``. Built on
    ``flat`` as its buffer, so the view's ``.base`` chain reaches the storage (shared version
    counter, right ``storage_offset``), which NumPy's ``as_strided`` helper would hide."""
    item = flat.dtype.itemsize
    shape, strides = tuple(size), tuple(s * item for s in stride)
    if type(flat) is np.ndarray:
        return np.ndarray(shape, dtype=flat.dtype, buffer=flat, offset=offset * item, strides=strides)
    import cupy

    return cupy.ndarray(shape, dtype=flat.dtype, memptr=flat._data + offset * item, strides=strides)


def diagonal_view(arr, offset, d1, d2):
    """The ``offset`` diagonal of dims (d1, d2) as a writable view, appended as the last dim."""
    out = arr.diagonal(offset, d1, d2)
    if type(out) is np.ndarray:  # NumPy hands diagonals out read-only (a view all the same)
        out.flags.writeable = arr.flags.writeable
    return out


def unfold_view(arr, axis, size, step):
    """Windows of ``size`` elements ``step`` apart along ``axis``, as a view: the axis becomes
    the window count and a last dim of ``size`` is appended (PyTorch's ``Tensor.unfold``).
    A copy when the storage is not one contiguous block (the view could not reach it)."""
    count = (arr.shape[axis] - size) // step + 1
    shape = arr.shape[:axis] + (count,) + arr.shape[axis + 1 :] + (size,)
    try:
        offset, strides, flat = geometry(arr)
    except RuntimeError:
        return unfold_view(arr.copy(), axis, size, step)
    return strided(flat, shape, strides[:axis] + (strides[axis] * step,) + strides[axis + 1 :] + (strides[axis],), offset)


class ViewOp:
    """How a view was made from its base: ``kind`` ("reshape", "permute", "diagonal" or
    "unfold") with its arguments (a tuple: those of the op's Function after the input).
    ``of(arr)`` makes the same view of another array of the base's shape (a C-contiguous one
    always gives a view)."""

    __slots__ = ("kind", "args")

    def __init__(self, kind, args):
        self.kind, self.args = kind, args

    def of(self, arr):
        kind, args = self.kind, self.args
        if kind == "reshape":
            return arr.reshape(args[0])
        if kind == "permute":
            return arr.transpose(args[0])
        if kind == "diagonal":
            return diagonal_view(arr, *args)
        return unfold_view(arr, *args)


def mark_view(out, base, kind, args):
    """Record that ``out`` (a float or complex Tensor) is the view ``kind(args)`` of ``base``
    when its array shares base's memory (a reshape that had to copy is no view). Returns ``out``."""
    arr = out._data
    if arr.dtype.kind in "fc" and storage_of(arr) is storage_of(base._data):
        out._view_src = (base, ViewOp(kind, args), storage_version(arr))
    return out
