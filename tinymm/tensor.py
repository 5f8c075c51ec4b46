"""Floor 3: ``Tensor``, an array (NumPy on "cpu", CuPy on "cuda") plus what autograd needs.

A Tensor holds ``data`` (the array), ``requires_grad``, ``grad`` (a Tensor or None) and
``_node``: for a Tensor produced by a recorded op, the pair (ctx, output index) pointing into
the graph; None for leaves. Every method is a thin call into ``tinymm.ops``; the maths lives
there, one ``Function`` per op.

Names and arguments follow PyTorch (``x.sum(dim=1, keepdim=True)``); NumPy's spellings
(``axis=``, ``keepdims=``) are accepted too.
"""
from __future__ import annotations

import numbers

import numpy as np

from tinymm import autograd, backend


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

    @property
    def T(self) -> "Tensor":
        return _ops.permute(self, tuple(range(self.ndim - 1, -1, -1)))

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

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        autograd.run_backward(self, grad, retain_graph=retain_graph)

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (shares memory, as in PyTorch)."""
        return Tensor._wrap(self.data)

    def zero_(self) -> "Tensor":
        self.data[...] = 0
        return self

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

    def to(self, *args, **kwargs) -> "Tensor":
        """``.to("cuda")``, ``.to(np.float64)``, ``.to("cpu", np.float32)`` or ``device=/dtype=``."""
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        if kwargs:
            raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, (np.dtype, type)):
                dtype = a
            else:  # "cpu", "cuda", or a device object with .type
                device = a
        out = self
        if dtype is not None and np.dtype(dtype) != self.dtype:
            out = _ops.cast(out, np.dtype(dtype))
        if device is not None and backend.parse_device(device) != out.device:
            out = _ops.to_device(out, backend.parse_device(device))
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self) -> "Tensor":
        return self.to("cuda")

    def float(self) -> "Tensor":
        return self.to(np.float32)

    def double(self) -> "Tensor":
        return self.to(np.float64)

    def long(self) -> "Tensor":
        return self.to(np.int64)

    def int(self) -> "Tensor":
        return self.to(np.int32)

    def bool(self) -> "Tensor":
        return self.to(np.bool_)

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.to(other.dtype)

    def clone(self) -> "Tensor":
        return _ops.clone(self)

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

    # ------------------------------------------------------------------ operators
    def __add__(self, other):
        return _ops.add(self, other)

    def __radd__(self, other):
        return _ops.add(other, self)

    def __sub__(self, other):
        return _ops.sub(self, other)

    def __rsub__(self, other):
        return _ops.sub(other, self)

    def __mul__(self, other):
        return _ops.mul(self, other)

    def __rmul__(self, other):
        return _ops.mul(other, self)

    def __truediv__(self, other):
        return _ops.div(self, other)

    def __rtruediv__(self, other):
        return _ops.div(other, self)

    def __pow__(self, other):
        return _ops.pow(self, other)

    def __rpow__(self, other):
        return _ops.pow(other, self)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    def __neg__(self):
        return _ops.neg(self)

    def __abs__(self):
        return _ops.abs(self)

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    def __setitem__(self, index, value):
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError(
                "in-place assignment into a tensor that requires grad would corrupt its graph; "
                "do it under tinymm.no_grad() or on a detached tensor"
            )
        if isinstance(value, Tensor):
            value = value.data
        self.data[_ops.array_index(index)] = value

    # Comparisons give boolean tensors and carry no gradient.
    def __eq__(self, other):
        return _ops.compare(self, other, "eq")

    def __ne__(self, other):
        return _ops.compare(self, other, "ne")

    def __lt__(self, other):
        return _ops.compare(self, other, "lt")

    def __le__(self, other):
        return _ops.compare(self, other, "le")

    def __gt__(self, other):
        return _ops.compare(self, other, "gt")

    def __ge__(self, other):
        return _ops.compare(self, other, "ge")

    def __invert__(self):
        return _ops.logical_not(self)

    def __and__(self, other):
        return _ops.logical(self, other, "and")

    def __or__(self, other):
        return _ops.logical(self, other, "or")

    __hash__ = object.__hash__

    # ------------------------------------------------------------------ math methods
    def exp(self):
        return _ops.exp(self)

    def log(self):
        return _ops.log(self)

    def sqrt(self):
        return _ops.sqrt(self)

    def abs(self):
        return _ops.abs(self)

    def tanh(self):
        return _ops.tanh(self)

    def sigmoid(self):
        return _ops.sigmoid(self)

    def relu(self):
        return _ops.relu(self)

    def pow(self, exponent):
        return _ops.pow(self, exponent)

    def clamp(self, min=None, max=None):
        return _ops.clamp(self, min, max)

    clip = clamp

    def maximum(self, other):
        return _ops.maximum(self, other)

    def minimum(self, other):
        return _ops.minimum(self, other)

    def matmul(self, other):
        return _ops.matmul(self, other)

    def sum(self, dim=None, keepdim=False, **np_style):
        return _ops.sum(self, dim, keepdim, **np_style)

    def mean(self, dim=None, keepdim=False, **np_style):
        return _ops.mean(self, dim, keepdim, **np_style)

    def var(self, dim=None, keepdim=False, *, unbiased=None, correction=None, **np_style):
        return _ops.var(self, dim, keepdim, unbiased=unbiased, correction=correction, **np_style)

    def std(self, dim=None, keepdim=False, *, unbiased=None, correction=None, **np_style):
        return _ops.std(self, dim, keepdim, unbiased=unbiased, correction=correction, **np_style)

    def max(self, dim=None, keepdim=False, **np_style):
        return _ops.max(self, dim, keepdim, **np_style)

    def min(self, dim=None, keepdim=False, **np_style):
        return _ops.min(self, dim, keepdim, **np_style)

    def argmax(self, dim=None, keepdim=False, **np_style):
        return _ops.argmax(self, dim, keepdim, **np_style)

    def argmin(self, dim=None, keepdim=False, **np_style):
        return _ops.argmin(self, dim, keepdim, **np_style)

    def logsumexp(self, dim=None, keepdim=False, **np_style):
        return _ops.logsumexp(self, dim, keepdim, **np_style)

    def softmax(self, dim=-1):
        return _ops.softmax(self, dim)

    def log_softmax(self, dim=-1):
        return _ops.log_softmax(self, dim)

    # ------------------------------------------------------------------ shape methods
    def reshape(self, *shape):
        return _ops.reshape(self, *shape)

    def view(self, *shape):
        return _ops.reshape(self, *shape)

    def flatten(self, start_dim=0, end_dim=-1):
        return _ops.flatten(self, start_dim, end_dim)

    def transpose(self, dim0, dim1):
        return _ops.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _ops.permute(self, *dims)

    def unsqueeze(self, dim):
        return _ops.unsqueeze(self, dim)

    def squeeze(self, dim=None):
        return _ops.squeeze(self, dim)

    def expand(self, *shape):
        return _ops.expand(self, *shape)

    def expand_as(self, other):
        return _ops.expand(self, other.shape)

    def split(self, split_size_or_sections, dim=0):
        return _ops.split(self, split_size_or_sections, dim)

    def chunk(self, chunks, dim=0):
        return _ops.chunk(self, chunks, dim)

    def masked_fill(self, mask, value):
        return _ops.masked_fill(self, mask, value)

    def contiguous(self):
        return self


from tinymm import ops as _ops  # noqa: E402  (ops needs the Tensor class defined above)

autograd._Tensor = Tensor
