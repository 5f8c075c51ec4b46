"""Tensor methods about memory and storage that PyTorch code calls, for tinymm's dense tensors:

    x.untyped_storage().data_ptr()   # do two tensors share memory?
    x.storage()                      # the (deprecated) typed view of the same memory
    x.to_dense(), x.is_pinned(), x.is_shared(), x.dim_order(), x.const_data_ptr(), x.output_nr
    torch.nonzero_static(x, size=k, fill_value=-1), x.as_subclass(MyTensor)

A tensor's storage is the memory block its array views (the array that owns it, followed
through ``.base``): ``storage().size()`` counts that block's elements, as PyTorch's does for a
view. Every tinymm tensor is dense and strided, so ``to_dense`` returns the tensor itself (cast
when given a dtype)."""
from __future__ import annotations

import warnings

import numpy as np

from tinymm.ops._util import ShapeError, xp_of
from tinymm.ops.convert import as_tensor
from tinymm.tensor import Tensor, array_address, storage_of


class UntypedStorage:
    """The bytes a tensor's memory block holds (``torch.UntypedStorage``, read-only API)."""

    def __init__(self, owner):
        self._owner = owner  # the array that owns the memory

    def data_ptr(self) -> int:
        return array_address(self._owner)

    def nbytes(self) -> int:
        return int(self._owner.nbytes)

    def size(self) -> int:
        return self.nbytes()

    def __len__(self) -> int:
        return self.nbytes()

    def element_size(self) -> int:
        return 1

    @property
    def device(self):
        from tinymm.tensor import device

        return device("cpu" if type(self._owner) is np.ndarray else "cuda")

    def tolist(self) -> list:
        host = self._owner if type(self._owner) is np.ndarray else self._owner.get()
        return np.ascontiguousarray(host).view(np.uint8).reshape(-1).tolist()

    def __repr__(self) -> str:
        return f"UntypedStorage(nbytes={self.nbytes()}, device={self.device})"


class TypedStorage(UntypedStorage):
    """The elements of a tensor's memory block in its dtype (``torch.TypedStorage``; deprecated
    in PyTorch, with the same warning)."""

    def __init__(self, owner, dtype):
        super().__init__(owner)
        self.dtype = dtype

    def element_size(self) -> int:
        return int(np.dtype(self.dtype).itemsize)

    def size(self) -> int:
        return self.nbytes() // self.element_size()

    def __len__(self) -> int:
        return self.size()

    def untyped(self) -> UntypedStorage:
        return UntypedStorage(self._owner)

    def tolist(self) -> list:
        host = self._owner if type(self._owner) is np.ndarray else self._owner.get()
        return np.ascontiguousarray(host).reshape(-1).view(np.dtype(self.dtype)).tolist()

    def __getitem__(self, i):
        return self.tolist()[i]

    def __repr__(self) -> str:
        return f"TypedStorage(size={self.size()}, dtype={self.dtype}, device={self.device})"


def untyped_storage(x) -> UntypedStorage:
    return UntypedStorage(storage_of(x._data))


def storage(x) -> TypedStorage:
    warnings.warn("TypedStorage is deprecated. It will be removed in the future and UntypedStorage will be the only "
                  "storage class. This should only matter to you if you are using storages directly.  To access "
                  "UntypedStorage directly, use tensor.untyped_storage() instead of tensor.storage()",
                  UserWarning, stacklevel=2)
    return TypedStorage(storage_of(x._data), x.dtype)


def to_dense(x, dtype=None, *, masked_grad=None):
    """x itself (every tinymm tensor is dense); a cast copy when ``dtype`` differs."""
    return x if dtype is None or x.dtype == dtype else x.to(dtype)


def is_pinned(x, device=None) -> bool:
    """Whether x lives in page-locked host memory (made by ``pin_memory``)."""
    if type(x._data) is not np.ndarray:
        return False
    base = x._data
    while base is not None:
        if "Pinned" in type(base).__name__:
            return True
        base = getattr(base, "base", None)
    return False


def is_shared(x) -> bool:
    """False: tinymm's ``share_memory_`` keeps tensors in process memory (see there)."""
    return False


def dim_order(x, *, ambiguity_check=False) -> tuple:
    """The dims from outermost to innermost in memory: by stride, largest first (ties keep
    the dims' order), as PyTorch's ``Tensor.dim_order``."""
    strides = x.stride()
    return tuple(sorted(range(x.ndim), key=lambda d: -strides[d]))


def const_data_ptr(x) -> int:
    return x.data_ptr()


def nonzero_static(input, *, size, fill_value=-1):
    """``torch.nonzero_static``: the (size, ndim) int64 indices of the first ``size`` nonzero
    elements (row-major order), padded with ``fill_value`` rows when there are fewer."""
    x = as_tensor(input, "nonzero_static")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise ShapeError(f"nonzero_static: 'size' must be a non-negative int, got {size!r}")
    xp = xp_of(x._data)
    found = xp.stack(xp.nonzero(x._data), axis=1) if x.ndim else xp.zeros((int(bool(x._data)), 0), np.int64)
    out = xp.full((int(size), max(x.ndim, 0)), fill_value, dtype=np.int64)
    k = min(int(size), found.shape[0])
    out[:k] = found[:k]
    return Tensor._wrap(out)


def as_subclass(x, cls):
    """x's data as an instance of ``cls`` (a Tensor subclass), sharing memory and staying in
    x's autograd graph (an alias), as PyTorch's ``Tensor.as_subclass``."""
    if not (isinstance(cls, type) and issubclass(cls, Tensor)):
        raise TypeError(f"as_subclass: cls must be a subclass of Tensor, got {cls!r}")
    alias = x.view_as(x)
    out = cls.__new__(cls)
    for slot in ("_data", "grad", "requires_grad", "_node", "_retain_grad", "_hooks", "_view_src"):
        setattr(out, slot, getattr(alias, slot))
    return out


STORAGE_OPS = (
    (untyped_storage, "untyped_storage", None),
    (storage, "storage", None),
    (to_dense, "to_dense", None),
    (is_pinned, "is_pinned", None),
    (is_shared, "is_shared", None),
    (dim_order, "dim_order", None),
    (const_data_ptr, "const_data_ptr", None),
    (nonzero_static, "nonzero_static", "nonzero_static"),
    (as_subclass, "as_subclass", None),
)
STORAGE_PROPERTIES = {"output_nr": property(lambda self: 0 if self._node is None else int(self._node[1]))}
