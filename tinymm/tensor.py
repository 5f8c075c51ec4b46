"""Floor 3: ``Tensor``, an array (NumPy on "cpu", CuPy on "cuda") plus what autograd needs.

A Tensor holds ``_data`` (the array; ``.data`` is PyTorch's detached Tensor view of it), ``requires_grad``, ``grad`` (a Tensor or None) and
``_node``: for a Tensor produced by a recorded op, the pair (ctx, output index) pointing into
the graph; None for leaves. This module knows no op and no autograd: it holds the data and
what describes it. The op methods (``x + y``, ``x.sum()``, ``x.backward()``, ...) are bound
onto the class by ``tinymm.ops`` from its one table, so imports run one way (ops → tensor).

Version counters (as PyTorch's): every storage (the array at the root of a chain of NumPy/CuPy
views) has a count of the in-place writes made through tinymm (``x[i] = v``, ``zero_``,
``add_``, ...). Tensors that share memory share it: ``detach()``, views (``reshape``, slicing,
``T``) and ``from_numpy`` of the same array all read one counter, ``t._version``. Autograd
records the versions of what a Function saves and refuses to backward through data changed
since. Writes straight into ``t._data`` (array operations) are not counted, as PyTorch's
``.data`` is not.

Names and arguments follow PyTorch (``x.sum(dim=1, keepdim=True)``); NumPy's spellings
(``axis=``, ``keepdims=``) are accepted too.
"""
from __future__ import annotations

import numbers
import weakref

import numpy as np

from tinymm import backend
from tinymm.dtype_objects import KIND_CATEGORY
from tinymm.dtype_objects import WRAPPERS as _DTYPE_WRAPPERS  # dtype: Tensor.dtype's lookup
from tinymm.dtype_objects import dtype as tinymm_dtype
from tinymm.dtype_objects import numpy_dtype
from tinymm.dtype_objects import default_complex_dtype, wrap_numpy_dtype
from tinymm.grad_fn import Node, backward_name
from tinymm.layout_objects import strided as _STRIDED
# fmt: how Tensors print lives in tensor_str (PRINT_OPTIONS stays importable from here)
from tinymm.tensor_str import PRINT_OPTIONS, tensor_repr  # noqa: F401

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


# modapi: inference tensors. Every array a tensor is made from while ``inference_mode()`` is on
# is remembered (weakly), and so is its memory when the array owns it: a tensor is an inference
# tensor when its array, or the memory it views, was made in inference mode, so views of an
# inference tensor taken later are inference tensors too, as in PyTorch. (One difference: a view
# of a normal tensor taken inside inference mode counts as an inference tensor; PyTorch keeps it
# normal.) Outside the mode making a tensor costs one flag test.
_inference_arrays = weakref.WeakValueDictionary()
_inference_creation = False


def set_inference_creation(on: bool) -> None:
    """Called by ``autograd.inference_mode`` on entering and leaving the mode."""
    global _inference_creation
    _inference_creation = bool(on)


def _note_inference(arr) -> None:
    try:
        _inference_arrays[id(arr)] = arr
    except TypeError:  # an array type that takes no weak reference: not tracked
        pass


def is_inference_array(arr) -> bool:
    """Whether ``arr``, or the memory it views, was made in inference mode."""
    if _inference_arrays.get(id(arr)) is arr:
        return True
    root = storage_of(arr)
    return root is not arr and _inference_arrays.get(id(root)) is root


def array_address(arr) -> int:
    """The address of ``arr``'s first element (NumPy or CuPy)."""
    if type(arr) is np.ndarray:
        return arr.__array_interface__["data"][0]
    return arr.data.ptr


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



class device(str):
    """A device, as ``torch.device``: ``device("cuda:0")``; it compares equal to its string
    (``x.device == "cpu"``) and has ``.type`` ("cpu"/"cuda") and ``.index`` (None or an int)."""

    def __new__(cls, type, index=None):
        if isinstance(type, device):
            return type
        name = str(type)
        kind, _, idx = name.partition(":")
        if kind not in ("cpu", "cuda"):
            raise RuntimeError(f"Expected one of cpu, cuda device type at start of device string: {name}")
        if idx:
            index = int(idx)
        obj = super().__new__(cls, kind if index is None else f"{kind}:{int(index)}")
        obj._type = kind
        obj._index = None if index is None else int(index)
        return obj

    @property
    def type(self) -> str:
        return self._type

    @property
    def index(self):
        return self._index

    def __repr__(self) -> str:
        return f"device(type='{self._type}')" if self._index is None else f"device(type='{self._type}', index={self._index})"

    __hash__ = str.__hash__

    def __enter__(self):
        """``with tinymm.device("cuda"):`` makes this the default device inside the block (as
        ``set_default_device``); leaving it restores the one before. Returns the device."""
        _DEVICE_CONTEXTS.append(backend.default_device())
        backend.set_default_device_name(self._type)
        return self

    def __exit__(self, *exc):
        backend.set_default_device_name(_DEVICE_CONTEXTS.pop())


_DEVICE_CONTEXTS: list = []  # the default devices that enclosing ``with device(...)`` blocks replaced
_CPU = device("cpu")


class _GradDTypeError(RuntimeError, TypeError):
    """requires_grad on a non-floating tensor: PyTorch's RuntimeError, and the TypeError tinymm raised before."""


class GradAssignError(RuntimeError, ValueError):
    """``t.grad = g`` with g of another shape, dtype or device (PyTorch raises RuntimeError)."""


class Size(tuple):
    """A shape, as ``torch.Size``: a tuple (it compares equal to one) that also has
    ``numel()``; slicing it, adding a tuple to it or repeating it gives a Size again. It prints
    as ``tinymm.Size([2, 3])``."""

    __slots__ = ()

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __getitem__(self, i):
        out = tuple.__getitem__(self, i)
        return Size(out) if isinstance(i, slice) else out

    def __add__(self, other):
        if not isinstance(other, tuple):
            raise TypeError(f"can only concatenate tuple (not {type(other).__name__}) to tinymm.Size")
        return Size(tuple.__add__(self, other))

    def __radd__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return Size(other + tuple(self))

    def __mul__(self, n):
        return Size(tuple.__mul__(self, n))

    __rmul__ = __mul__

    def __repr__(self):
        return f"tinymm.Size({list(self)!r})"

    __str__ = __repr__


class RemovableHandle:
    """What ``register_hook`` returns: ``handle.remove()`` unregisters the hook."""

    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _tensor_items(data):
    """A (nested) list or tuple with each Tensor in it replaced by its one value (a 0-d array of
    its dtype), as torch.tensor reads a list of tensors: ``[t1, t2]`` of one-element tensors is
    a 1-D tensor (not one of shape (2, 1)), a tensor of several elements is refused (ValueError,
    torch.stack is the way), and one that requires grad is read with PyTorch's warning. A list
    holding no Tensor comes back as it is."""
    out, changed = [], False
    for item in data:
        if isinstance(item, (list, tuple)):
            new = _tensor_items(item)
            changed |= new is not item
            item = new
        elif isinstance(item, Tensor):
            if item._data.size != 1:
                raise ValueError("only one element tensors can be converted to Python scalars")
            if item.requires_grad:
                import warnings

                warnings.warn("Converting a tensor with requires_grad=True to a scalar may lead to unexpected "
                              "behavior.\nConsider using tensor.detach() first.", UserWarning, stacklevel=4)
            item = np.asarray(backend.to_device(item._data, "cpu")).reshape(())
            changed = True
        out.append(item)
    return out if changed else data


class DtypeInferenceError(RuntimeError, TypeError):
    """An element ``tinymm.tensor`` cannot type (PyTorch: RuntimeError "Could not infer dtype of ...")."""


def _is_array_like(data) -> bool:
    """Data that is not a list, tuple, array or scalar but converts to an array (``__array__``:
    a pandas Series/Index/array, another library's tensor, ...)."""
    return hasattr(data, "__array__") and not isinstance(data, (str, bytes, dict, np.generic))


def _array_like(data):
    """probe8: ``data`` as torch.tensor reads an array-like: element by element, where each
    element of a numeric array is a typed NumPy scalar (or 0-dim tensor), so a numeric array
    keeps its dtype (a float64 pandas column stays float64, not the default dtype). An array
    of a non-numeric dtype (object, datetime), or of a pandas extension dtype (nullable Int64,
    boolean, category: NumPy would turn their NA into NaN) is read element by element: the
    list rules type NumPy and Python numbers, and anything else (pandas' NA, a Timestamp, a
    string) is refused by name. Returns (array, element list or None)."""
    arr = np.asarray(data)
    if arr.dtype.kind in "biufc" and not hasattr(getattr(data, "dtype", None), "na_value"):
        return arr, None
    items = list(data)
    for item in items:
        if not isinstance(item, (bool, int, float, complex, np.generic, np.ndarray, Tensor, list, tuple)):
            raise DtypeInferenceError(f"Could not infer dtype of {type(item).__name__}")
    return np.asarray(items), items


def _sequence_dtype(data):
    """torch.tensor's dtype for a (nested) list holding NumPy scalars, arrays or tensors, or None
    when it holds only Python numbers. Each item has a dtype (a Python float the default
    dtype, an int int64, a bool bool); the highest category (bool < int < float) wins, and
    within it the widest dtype (so [1, np.int32(2)] is int64, [2.0, np.float64(1)] float64)."""
    found, typed, stack = [], False, [data]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, (np.generic, np.ndarray, Tensor)):
            typed = True
            found.append(np.dtype(item.dtype))
        elif isinstance(item, bool):
            found.append(np.dtype(np.bool_))
        elif isinstance(item, int):
            found.append(np.dtype(np.int64))
        elif isinstance(item, float):
            found.append(np.dtype(backend.get_default_dtype()))
        elif isinstance(item, complex):  # cplx
            found.append(np.dtype(_default_complex()))
        else:
            return None
    if not typed:
        return None
    if any(d.kind not in KIND_CATEGORY for d in found):
        return None
    top = max(KIND_CATEGORY[d.kind] for d in found)
    out = None
    for d in found:
        if KIND_CATEGORY[d.kind] == top:
            out = d if out is None else np.promote_types(out, d)
    return out


def _default_complex():
    """cplx: the dtype Python complex numbers become (complex64 under the float32 default)."""
    return default_complex_dtype(backend.get_default_dtype())


def _infer_array(data, dtype, device):
    """Turn ``data`` (array, Tensor, list, scalar) into an array on ``device`` with ``dtype``."""
    if isinstance(data, Tensor):
        arr = data._data
    elif isinstance(data, np.ndarray) or backend.device_of(data) == "cuda":
        arr = data
    elif isinstance(data, np.generic):  # a NumPy scalar keeps its dtype, as in torch.tensor
        arr = np.asarray(data)
    else:
        if _is_array_like(data):
            arr, items = _array_like(data)
            if items is None:  # a numeric array-like keeps its dtype
                return _finish_array(arr, dtype, device)
            data = items
        if isinstance(data, (list, tuple)):
            data = _tensor_items(data)
        arr = np.asarray(data)
        typed = _sequence_dtype(data) if dtype is None and isinstance(data, (list, tuple)) else None
        if typed is not None:  # probe3: NumPy values in a list keep their dtypes, as in torch.tensor
            arr = arr.astype(typed, copy=False)
        elif arr.dtype.kind == "f" and dtype is None:
            # Python floats become the default dtype (float32), as in PyTorch.
            arr = arr.astype(backend.get_default_dtype())
        elif arr.dtype.kind == "i" and dtype is None:
            arr = arr.astype(np.int64)
        elif arr.dtype.kind == "c" and dtype is None:  # cplx: Python complex -> the default complex dtype
            arr = arr.astype(_default_complex())
    return _finish_array(arr, dtype, device)


def _finish_array(arr, dtype, device):
    """``arr`` checked for a tensor dtype, then cast to ``dtype`` and moved to ``device`` (when given)."""
    if arr.dtype.kind not in "fiubc":
        raise TypeError(f"tensor: unsupported dtype {arr.dtype} (use floats, ints, bools or complex)")
    if dtype is not None:
        arr = arr.astype(np.dtype(dtype), copy=False)
    if device is not None:
        arr = backend.to_device(arr, device)
    return arr


def _legacy_array(args, device):
    """The array ``torch.Tensor(*args)`` holds (see ``Tensor.__init__``)."""
    default = numpy_dtype(backend.get_default_dtype())
    if len(args) == 1 and isinstance(args[0], Size):
        args = tuple(args[0])
    if all(isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_)) for a in args):
        if any(a < 0 for a in args):
            raise RuntimeError(f"Trying to create tensor with negative dimension {min(args)}: {list(args)}")
        arr = np.empty(tuple(int(a) for a in args) if args else (0,), default)
    elif len(args) > 1:
        raise TypeError(f"Tensor(): expected sizes (ints) or one sequence of data, got {len(args)} arguments "
                        f"of types {[type(a).__name__ for a in args]}")
    elif isinstance(args[0], Tensor):
        arr = args[0]._data  # torch.Tensor(t) shares t's data, in t's dtype
    elif isinstance(args[0], (str, bytes)):
        raise TypeError(f"new(): invalid data type '{type(args[0]).__name__}'")
    elif (not isinstance(args[0], (list, tuple, np.ndarray)) and backend.device_of(args[0]) != "cuda"
          and not _is_array_like(args[0])):  # (a pandas Series is data, as for torch.Tensor)
        raise TypeError(f"new(): data must be a sequence (got {type(args[0]).__name__})")
    else:
        arr = _infer_array(args[0], None, None)
        if arr.dtype != default:
            arr = arr.astype(default)
    if device is not None:
        arr = backend.to_device(arr, device)
    return arr


class AmbiguousTruthError(RuntimeError, ValueError):
    """``bool(t)`` of a tensor without exactly one element (probe4; PyTorch raises RuntimeError)."""


class ScalarConversionError(RuntimeError, ValueError):
    """``t.item()`` of a tensor without exactly one element (PyTorch: RuntimeError; NumPy habit: ValueError)."""


class Tensor:
    # _view_src: (base Tensor, basic index, storage version when the view's node was made) for a
    # tensor made by indexing another (ops/index.py), so that an in-place write into the view
    # reaches the base's graph, and a view used after its base was written is re-derived from
    # the base (ops/inplace.py, autograd.Function.apply); None else
    # __dict__: code written for PyTorch hangs its own attributes on tensors and parameters
    # (learn2learn's p.update, p._no_weight_decay); the dict is made only when one is set
    __slots__ = ("_data", "_grad", "requires_grad", "_node", "_retain_grad", "_hooks", "_view_src", "__weakref__",
                 "__dict__")
    # Makes ``numpy_scalar * tensor`` call Tensor.__rmul__ instead of NumPy's broadcasting.
    __array_priority__ = 1000

    def __init__(self, *args, device=None, requires_grad: bool = False):
        """PyTorch's legacy constructor ``torch.Tensor(...)`` (``tinymm.tensor(data)`` is the modern
        one): ``Tensor(2, 3)`` or ``Tensor(size)`` an uninitialised tensor of that shape in the
        default dtype, ``Tensor()`` an empty one, ``Tensor(data)`` a sequence or array converted to
        the default dtype (``Tensor([1, 2])`` is float32), ``Tensor(t)`` t's data whatever its dtype.
        tinymm's own code makes tensors with ``Tensor._of`` (``tensor``'s inference)."""
        self._init(_legacy_array(args, device), None, None, requires_grad)

    @classmethod
    def _of(cls, data, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """A tensor of ``data`` (array, Tensor, list, scalar) as ``tinymm.tensor`` makes it: the
        dtype inferred (ints int64, floats the default dtype, arrays keep theirs) unless given."""
        t = cls.__new__(cls)
        t._init(data, dtype, device, requires_grad)
        return t

    def _init(self, data, dtype, device, requires_grad: bool) -> None:
        self._data = _infer_array(data, dtype, device)
        self._grad = None
        self._node = None
        self._retain_grad = False
        self._hooks = None
        self._view_src = None
        self.requires_grad = False
        if _inference_creation:
            _note_inference(self._data)
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, arr) -> "Tensor":
        """Wrap an existing array without copying or checking (internal fast path)."""
        t = cls.__new__(cls)
        # NumPy reductions to a scalar give numpy scalars; a Tensor always holds an array.
        t._data = np.asarray(arr) if isinstance(arr, np.generic) else arr
        t._grad = None
        t.requires_grad = False
        t._node = None
        t._retain_grad = False
        t._hooks = None
        t._view_src = None
        if _inference_creation:
            _note_inference(t._data)
        return t

    def __getstate__(self):
        """Pickling/deepcopy: every slot but ``_view_src`` (a copied view owns its memory)."""
        state = {k: getattr(self, k) for k in Tensor.__slots__ if k not in ("_view_src", "__weakref__", "__dict__")
                 and hasattr(self, k)}
        state["_view_src"] = None
        extra = getattr(self, "__dict__", None)
        return (extra or None, state)

    def __deepcopy__(self, memo):
        """PyTorch refuses to deepcopy a tensor computed by a recorded op (it would have to copy
        the graph behind it); the usual way to meet this is deepcopying a module under the old
        ``nn.utils.weight_norm``, whose ``weight`` attribute is such a tensor. Leaves copy as
        pickling does (``__getstate__``)."""
        if self._node is not None:
            raise RuntimeError(
                "Only Tensors created explicitly by the user (graph leaves) support the deepcopy protocol at the "
                "moment.  If you were attempting to deepcopy a module, this may be because of a "
                "torch.nn.utils.weight_norm usage, see https://github.com/pytorch/pytorch/pull/103001")
        if id(self) in memo:
            return memo[id(self)]
        import copy

        new = type(self).__new__(type(self))
        memo[id(self)] = new
        extra, state = copy.deepcopy(self.__getstate__(), memo)
        if extra:
            new.__dict__.update(extra)
        for k, v in state.items():
            setattr(new, k, v)
        return new

    # ------------------------------------------------------------------ properties
    @property
    def data(self) -> "Tensor":
        """PyTorch's ``.data``: the same values as a new Tensor that shares this one's memory and
        is outside autograd, for updates autograd must not record (``p.data.add_(g, alpha=-lr)``,
        ``m.weight.data.normal_(0, 0.02)``, ``target.data.copy_(tau * p.data + ...)``). The array
        itself is ``t._data`` (or ``t.numpy()``). One difference from PyTorch: tinymm counts
        in-place writes per storage, so a write through ``.data`` between a forward and its
        backward is caught by the version check instead of silently changing the gradients."""
        return Tensor._wrap(self._data)

    @data.setter
    def data(self, value) -> None:
        """``t.data = other`` gives t other's values (shape and dtype included), sharing them;
        other must be a Tensor, as in PyTorch."""
        if not isinstance(value, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(value).__name__}")
        self._data = value._data

    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    @property
    def dtype(self) -> tinymm_dtype:
        """The tensor's ``tinymm.dtype`` (PyTorch's dtype object), interned per NumPy dtype."""
        try:
            return _DTYPE_WRAPPERS[self._data.dtype]
        except KeyError:  # a NumPy dtype seen for the first time
            return wrap_numpy_dtype(self._data.dtype)

    @property
    def device(self) -> device:
        return _CPU if type(self._data) is np.ndarray else device(backend.device_of(self._data))

    @property
    def is_cuda(self) -> bool:
        return type(self._data) is not np.ndarray

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def is_contiguous(self, memory_format=None) -> bool:
        """Row-major (``contiguous_format``, the default), or, for ``channels_last``/
        ``channels_last_3d``, whether the strides are those of a channels-last layout."""
        name = getattr(memory_format, "name", "contiguous_format")
        if name in ("channels_last", "channels_last_3d"):
            want = 4 if name == "channels_last" else 5
            if self.ndim != want:
                return False
            st, sh = self.stride(), tuple(self.shape)
            order = (1,) + tuple(range(want - 1, 1, -1)) + (0,)  # C fastest, then W, H(, D), N
            expect = 1
            for d in order:
                if sh[d] != 1 and st[d] != expect:
                    return False
                expect *= sh[d]
            return True
        return bool(self._data.flags.c_contiguous)

    def stride(self, dim: int | None = None):
        """Steps in elements between neighbours along each dim, as PyTorch's ``stride()``.
        NumPy views may have negative strides (``flip`` of a NumPy view) where PyTorch
        copies; a broadcast (``expand``) dim has stride 0 in both. A new dim of size 1
        (``x[None]``, ``expand``'s leading dims), where NumPy says 0, reports PyTorch's stride:
        the next dim's size times its stride (1 for the last dim). The step over a size-1 dim
        is never taken, so only the report differs."""
        size = self._data.dtype.itemsize
        strides = [s // size for s in self._data.strides]
        shape = self._data.shape
        for d in range(len(shape) - 1, -1, -1):
            if shape[d] == 1 and strides[d] == 0:
                strides[d] = shape[d + 1] * strides[d + 1] if d + 1 < len(shape) else 1
        strides = tuple(strides)
        if dim is None:
            return strides
        if not -max(self.ndim, 1) <= dim < max(self.ndim, 1):
            raise IndexError(f"stride: dim {dim} is out of range for a tensor with {self.ndim} dimensions")
        return strides[dim] if self.ndim else 1

    def storage_offset(self) -> int:
        """Elements between the start of the memory this tensor views and its first element
        (0 for a tensor that owns its memory)."""
        root = storage_of(self._data)
        if root is self._data:
            return 0
        return (array_address(self._data) - array_address(root)) // self._data.dtype.itemsize

    def data_ptr(self) -> int:
        """The address of the first element (tensors sharing memory give related addresses)."""
        return array_address(self._data)

    @property
    def nbytes(self) -> int:
        return int(self._data.nbytes)

    def nelement(self) -> int:
        return int(self._data.size)

    def element_size(self) -> int:
        return int(self._data.dtype.itemsize)

    @property
    def itemsize(self) -> int:
        return int(self._data.dtype.itemsize)

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        """The graph node of the op that produced this tensor (``name()``, ``next_functions``,
        ``metadata``: see ``tinymm.grad_fn``), or None for a leaf."""
        return None if self._node is None else Node.of(self._node[0])

    def size(self, dim: int | None = None):
        if dim is None:
            return Size(self._data.shape)
        if not -max(self.ndim, 1) <= dim < max(self.ndim, 1):
            raise IndexError(f"size: dim {dim} is out of range for a tensor with {self.ndim} dimensions")
        return self._data.shape[dim] if self.ndim else 1

    def numel(self) -> int:
        return int(self._data.size)

    def dim(self) -> int:
        return self._data.ndim

    ndimension = dim

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        # Without this, Python iterates through __getitem__, and a 0-d tensor would silently
        # yield nothing (``tuple(tensor(1))`` == ()); PyTorch raises.
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    # probe3: ``value in t`` is ``(value == t).any()``, as PyTorch (not a walk over the rows)
    def __contains__(self, element) -> bool:
        if not isinstance(element, (Tensor, numbers.Number, np.generic)):
            raise RuntimeError(f"Tensor.__contains__ only supports Tensor or scalar, but you passed in a {type(element)}.")
        return bool((self == element).any().item())

    # ------------------------------------------------------------------ autograd
    @property
    def grad(self):
        """The accumulated gradient (a Tensor of this tensor's shape and dtype) or None; a sparse
        COO tensor for an ``Embedding(sparse=True)`` weight."""
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        # checked as PyTorch checks it: a later backward adds into .grad in place, and an
        # optimizer reads it against the parameter's shape
        if getattr(value, "is_sparse", False) is True:  # probe8: a sparse gradient (Embedding(sparse=True))
            if tuple(value.shape) != tuple(self._data.shape):
                raise GradAssignError(f"attempting to assign a gradient of size {list(value.shape)} to a tensor of "
                                      f"size {list(self.shape)}. Please ensure that the gradient and the tensor are the same size")
            self._grad = value
            return
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type {type(value).__name__}")
            if value._data.shape != self._data.shape:
                raise GradAssignError(f"attempting to assign a gradient of size {list(value.shape)} to a tensor of "
                                      f"size {list(self.shape)}. Please ensure that the gradient and the tensor are the same size")
            if value._data.dtype != self._data.dtype:
                raise GradAssignError(f"attempting to assign a gradient with dtype {value.dtype} to a tensor with dtype "
                                      f"{self.dtype}. The gradient must match the tensor's dtype")
            if type(value._data) is not type(self._data):
                raise GradAssignError(f"attempting to assign a gradient on {value.device} to a tensor on {self.device}")
        self._grad = value

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if not isinstance(requires_grad, (bool, np.bool_)):  # "no" or 0 would be read as truthy/falsy
            raise TypeError(f"requires_grad_(): argument 'requires_grad' (position 1) must be bool, not "
                            f"{type(requires_grad).__name__}")
        if requires_grad and self._data.dtype.kind not in "fc":
            raise _GradDTypeError(f"Only Tensors of floating point and complex dtype can require gradients "
                                  f"(this one is {self.dtype})")
        if not requires_grad and self._node is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor; use .detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def register_hook(self, hook) -> RemovableHandle:
        """Call ``hook(grad)`` when this tensor's gradient has been computed (all contributions
        summed), before it is stored or passed on; a hook that returns a tensor replaces the
        gradient. Returns a handle whose ``remove()`` unregisters it."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if not callable(hook):
            raise TypeError(f"register_hook: hook must be callable, got {type(hook).__name__}")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return RemovableHandle(self._hooks, hook)

    def retain_grad(self) -> "Tensor":
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        self._retain_grad = True
        return self

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (shares memory and the version counter, as in PyTorch)."""
        return Tensor._wrap(self._data)

    @property
    def _version(self) -> int:
        """In-place writes into this tensor's storage so far (see the module docstring)."""
        return _versions.get(id(storage_of(self._data)), 0)

    # ------------------------------------------------------------------ conversion
    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The data as a NumPy array, sharing memory on the CPU (copied from the GPU when on
        "cuda"). As PyTorch, a tensor that requires grad is refused unless ``force``."""
        if self.requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self._data if type(self._data) is np.ndarray else self._data.get()

    def item(self):
        if self._data.size != 1:
            raise ScalarConversionError(f"item: a tensor with {self._data.size} elements cannot be converted to a "
                                        f"Python scalar (only one-element tensors can), shape is {tuple(self.shape)}")
        return self._data.reshape(()).item()

    def tolist(self):
        return self.numpy(force=True).tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:  # probe4: PyTorch's RuntimeError and words (a ValueError too, as before)
            what = "no values" if self._data.size == 0 else "more than one value"
            raise AmbiguousTruthError(f"Boolean value of Tensor with {what} is ambiguous "
                                      f"(shape {tuple(self._data.shape)})")
        return bool(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iu" or self._data.size != 1:
            raise TypeError("only single-element integer tensors can be used as an index")
        return int(self.item())

    # probe: f"{loss:.4f}" formats a 0-d tensor's value, as PyTorch's Tensor.__format__ does
    def __format__(self, format_spec: str) -> str:
        if self._data.ndim == 0 and type(self) is Tensor:
            return self.item().__format__(format_spec)
        return object.__format__(self, format_spec)

    @property
    def layout(self):
        """``tinymm.strided``: every tinymm tensor is dense (lead: torch's Tensor.layout)."""
        return _STRIDED

    # lead: DLPack export (numpy/cupy/torch.from_dlpack(t) share t's memory; tinymm.utils.dlpack)
    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        if self.requires_grad:
            raise BufferError("Can't export tensors that require gradient, use tensor.detach()")
        kwargs = {} if stream is None else {"stream": stream}
        for name, value in (("max_version", max_version), ("dl_device", dl_device), ("copy", copy)):
            if value is not None:
                kwargs[name] = value
        return self._data.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def __array__(self, dtype=None, copy=None):
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype)

    def __repr__(self) -> str:
        """PyTorch's print of a tensor (``str`` is the same); the layout is tensor_str's."""
        node = self._node
        return tensor_repr(self.numpy(force=True), device=self._repr_device(),
                           grad_fn=None if node is None else backward_name(node[0]),
                           requires_grad=self.requires_grad)

    def _repr_device(self) -> str:
        """The device as PyTorch names a tensor's: with its index ("cuda:0")."""
        if type(self._data) is np.ndarray:
            return "cpu"
        return f"cuda:{getattr(getattr(self._data, 'device', None), 'id', 0)}"

    __hash__ = object.__hash__
