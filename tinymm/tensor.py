"""Floor 3: ``Tensor``, an array (NumPy on "cpu", CuPy on "cuda") plus what autograd needs.

A Tensor holds ``data`` (the array), ``requires_grad``, ``grad`` (a Tensor or None) and
``_node``: for a Tensor produced by a recorded op, the pair (ctx, output index) pointing into
the graph; None for leaves. This module knows no op and no autograd: it holds the data and
what describes it. The op methods (``x + y``, ``x.sum()``, ``x.backward()``, ...) are bound
onto the class by ``tinymm.ops`` from its one table, so imports run one way (ops → tensor).

Version counters (as PyTorch's): every storage (the array at the root of a chain of NumPy/CuPy
views) has a count of the in-place writes made through tinymm (``x[i] = v``, ``zero_``,
``add_``, ...). Tensors that share memory share it: ``detach()``, views (``reshape``, slicing,
``T``) and ``from_numpy`` of the same array all read one counter, ``t._version``. Autograd
records the versions of what a Function saves and refuses to backward through data changed
since. Writes straight into ``t.data`` (array operations) are not counted, as PyTorch's
``.data`` is not.

Names and arguments follow PyTorch (``x.sum(dim=1, keepdim=True)``); NumPy's spellings
(``axis=``, ``keepdims=``) are accepted too.
"""
from __future__ import annotations

import numbers
import weakref

import numpy as np

from tinymm import backend

# ----------------------------------------------------------------------------- versions

# id(storage) -> in-place writes so far; a storage never written in place is absent (version 0).
# An entry is removed when its storage is freed, so ids that Python reuses start again at 0.
_versions: dict[int, int] = {}


def storage_of(arr):
    """The array that owns ``arr``'s memory: follow ``.base`` while it is an array."""
    base = arr.base
    while base is not None and hasattr(base, "base") and hasattr(base, "shape"):
        arr, base = base, base.base
    return arr


def storage_version(arr) -> int | None:
    """How many times ``arr``'s storage was written in place; None for a non-array."""
    if getattr(arr, "base", False) is False:  # Python scalars, None: nothing to track
        return None
    return _versions.get(id(storage_of(arr)), 0)


def bump_version(arr) -> None:
    """Count one in-place write into ``arr``'s storage."""
    root = storage_of(arr)
    key = id(root)
    n = _versions.get(key)
    if n is None:
        try:
            weakref.finalize(root, _versions.pop, key, None)
        except TypeError:  # an array type without weak references: the entry stays
            pass
        n = 0
    _versions[key] = n + 1



def _infer_array(data, dtype, device):
    """Turn ``data`` (array, Tensor, list, scalar) into an array on ``device`` with ``dtype``."""
    if isinstance(data, Tensor):
        arr = data.data
    elif isinstance(data, np.ndarray) or backend.device_of(data) == "cuda":
        arr = data
    else:
        arr = np.asarray(data)
        if arr.dtype.kind == "f" and dtype is None:
            # Python floats become the default dtype (float32), as in PyTorch.
            arr = arr.astype(backend.get_default_dtype())
        elif arr.dtype.kind == "i" and dtype is None:
            arr = arr.astype(np.int64)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"tensor: unsupported dtype {arr.dtype} (use floats, ints or bools)")
    if dtype is not None:
        arr = arr.astype(np.dtype(dtype), copy=False)
    if device is not None:
        arr = backend.to_device(arr, device)
    return arr


class Tensor:
    __slots__ = ("data", "grad", "requires_grad", "_node", "_retain_grad", "__weakref__")
    # Makes ``numpy_scalar * tensor`` call Tensor.__rmul__ instead of NumPy's broadcasting.
    __array_priority__ = 1000

    def __init__(self, data, dtype=None, device=None, requires_grad: bool = False):
        self.data = _infer_array(data, dtype, device)
        self.grad = None
        self._node = None
        self._retain_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, arr) -> "Tensor":
        """Wrap an existing array without copying or checking (internal fast path)."""
        t = cls.__new__(cls)
        # NumPy reductions to a scalar give numpy scalars; a Tensor always holds an array.
        t.data = np.asarray(arr) if isinstance(arr, np.generic) else arr
        t.grad = None
        t.requires_grad = False
        t._node = None
        t._retain_grad = False
        return t

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def device(self) -> str:
        return "cpu" if type(self.data) is np.ndarray else backend.device_of(self.data)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        """The name of the op that produced this tensor, or None for a leaf."""
        return None if self._node is None else self._node[0].fn.__name__

    def size(self, dim: int | None = None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def dim(self) -> int:
        return self.data.ndim

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    # ------------------------------------------------------------------ autograd
    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"requires_grad: only floating tensors can require grad, this one is {self.dtype}")
        if not requires_grad and self._node is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor; use .detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> "Tensor":
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        self._retain_grad = True
        return self

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (shares memory and the version counter, as in PyTorch)."""
        return Tensor._wrap(self.data)

    @property
    def _version(self) -> int:
        """In-place writes into this tensor's storage so far (see the module docstring)."""
        return _versions.get(id(storage_of(self.data)), 0)

    # ------------------------------------------------------------------ conversion
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied from the GPU when on "cuda")."""
        return self.data if type(self.data) is np.ndarray else self.data.get()

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors convert to a Python scalar, shape is {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.data.size} elements is ambiguous")
        return bool(self.item())

    def __index__(self):
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError("only single-element integer tensors can be used as an index")
        return int(self.item())

    def __array__(self, dtype=None, copy=None):
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype)

    def __repr__(self) -> str:
        body = np.array2string(self.numpy(), precision=4, separator=", ", prefix="tensor(")
        extras = []
        if self.dtype != backend.get_default_dtype() and self.dtype != np.int64:
            extras.append(f"dtype={self.dtype}")
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.grad_fn is not None:
            extras.append(f"grad_fn={self.grad_fn}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    __hash__ = object.__hash__
