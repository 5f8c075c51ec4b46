"""Operands and conversions: turning arguments into tensors, dtype/device changes, clone.

Every public op starts here: ``as_tensor`` wraps lists and scalars, ``operands`` applies the
rules binary ops share, and ``cast``/``to_device``/``clone`` are differentiable conversions.

Rules that hold for every op:
- devices never mix: two tensors on different devices raise an error naming both;
- two different floating dtypes never mix silently (float32 + float64 raises: convert one);
  an integer or bool operand meeting a floating one is promoted to that floating dtype;
- ops that only make sense on floats (exp, log, mean, softmax, ...) promote integer input to
  the default float dtype (``to_float``), as PyTorch does for its float-only ops;
- Python scalars are constants in the tensor's dtype.
"""
from __future__ import annotations

import numpy as np

from tinymm import backend, dtype_objects
from tinymm.autograd import Function
from tinymm.float_errors import restore, silence
from tinymm.ops._util import DTypeError, ShapeError, is_scalar, xp_of
from tinymm.tensor import Tensor
from tinymm.tensor_data_checks import check_strides, diagnose

# ----------------------------------------------------------------------------- operands


def as_tensor(x, name: str = "op") -> Tensor:
    if isinstance(x, Tensor):
        return x
    try:
        return Tensor._of(x)
    except TypeError as e:
        raise TypeError(f"{name}: cannot use a {type(x).__name__} as a tensor ({e})") from None


def to_float(x: Tensor) -> Tensor:
    """Integer/bool tensors are promoted to the default float dtype by float-only ops; a
    complex tensor is refused (cplx: the ops that take one call ``to_inexact``)."""
    if x._data.dtype.kind == "c":
        raise DTypeError(f"this op does not support complex tensors in tinymm (got {x.dtype})")
    return x if x._data.dtype.kind in "fc" else cast(x, backend.get_default_dtype())


def to_inexact(x: Tensor) -> Tensor:
    """cplx: ``to_float`` for the ops that also take complex tensors (exp, log, sqrt, tanh)."""
    return x if x._data.dtype.kind in "fc" else cast(x, backend.get_default_dtype())


def check_pair(name: str, a: Tensor, b: Tensor):
    """Two tensors meeting in one op: same device; dtypes equal or promoted (see the rules)."""
    if type(a._data) is not type(b._data):
        raise ValueError(f"{name}: tensors are on different devices: {a.device} and {b.device}")
    da, db = a._data.dtype, b._data.dtype
    if da == db:
        return a, b
    if da.kind == "c" or db.kind == "c":
        return _complex_pair(a, b)
    if da.kind == "f" and db.kind == "f":
        # PyTorch's rule: a tensor with dims outranks a 0-d one of the same category; otherwise
        # the wider dtype wins (float32 + float64 -> float64, with gradients cast back).
        if a._data.ndim == 0 and b._data.ndim > 0:
            return cast(a, db), b
        if b._data.ndim == 0 and a._data.ndim > 0:
            return a, cast(b, da)
        wide = np.promote_types(da, db)
        return (a if da == wide else cast(a, wide)), (b if db == wide else cast(b, wide))
    if da.kind == "f":
        return a, cast(b, da)
    if db.kind == "f":
        return cast(a, db), b
    # two non-float dtypes: NumPy's integer promotion (no gradient involved), except that here
    # too a tensor with dims outranks a 0-d one of its category (integral, or bool)
    if (da.kind == "b") == (db.kind == "b"):
        if a._data.ndim == 0 and b._data.ndim > 0:
            return cast(a, db), b
        if b._data.ndim == 0 and a._data.ndim > 0:
            return a, cast(b, da)
    return a, b


def _complex_pair(a: Tensor, b: Tensor):
    """cplx: two tensors, one complex, cast to PyTorch's result dtype: a tensor with dims
    outranks a 0-d one unless the 0-d one is of a higher category (complex64 with a 0-d float64
    stays complex64; float64 with a 0-d complex64 is complex128, keeping the precision)."""
    from tinymm.ops.promotion import combine_tiers, promote_dtypes

    da, db = a._data.dtype, b._data.dtype
    if a._data.ndim == 0 and b._data.ndim > 0:
        out = combine_tiers(db, da)
    elif b._data.ndim == 0 and a._data.ndim > 0:
        out = combine_tiers(da, db)
    else:
        out = promote_dtypes(da, db)
    return (a if da == out else cast(a, out)), (b if db == out else cast(b, out))


def check_broadcast(name: str, sa, sb):
    """Raise ``ShapeError`` naming both shapes unless they broadcast together (a plain loop:
    several times cheaper than ``numpy.broadcast_shapes`` on the hot path of every op)."""
    for x, y in zip(reversed(sa), reversed(sb)):
        if x != y and x != 1 and y != 1:
            raise ShapeError(
                f"{name}: the size of tensor a {tuple(sa)} must match the size of tensor b {tuple(sb)} "
                "at every non-singleton dimension (they do not broadcast)"
            )


def operands(name: str, a, b, broadcast: bool = True):
    """Normalise a binary op's operands; Python scalars pass through as constants. With
    ``broadcast`` two tensors must broadcast together (ShapeError naming both shapes)."""
    if type(b) is float and isinstance(a, Tensor) and a._data.dtype.kind in "fc":
        return a, b  # the commonest case, ``x * 0.5``, without the general checks
    # probe3: a NumPy scalar (np.log(2.0), arr.mean()) is a Python number to PyTorch: it never
    # widens a tensor's dtype (NumPy would make float32 * np.float64 a float64)
    if isinstance(b, np.generic):
        b = b.item()
    if isinstance(a, np.generic):
        a = a.item()
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if ta and tb:
        if broadcast and a._data.shape != b._data.shape:
            check_broadcast(name, a._data.shape, b._data.shape)
        if type(a._data) is type(b._data) and a._data.dtype == b._data.dtype:
            return a, b
        return check_pair(name, a, b)
    if not ta and not is_scalar(a):
        return check_pair(name, as_tensor(a, name), b if tb else as_tensor(b, name))
    if not tb and not is_scalar(b):
        return check_pair(name, a if ta else as_tensor(a, name), as_tensor(b, name))
    if not ta and not tb:
        raise TypeError(f"{name}: at least one operand must be a tensor")
    # One tensor and one Python scalar: a float scalar turns an integer tensor into floats.
    t, s = (a, b) if ta else (b, a)
    if isinstance(s, complex) and t._data.dtype.kind != "c":  # cplx: x * 1j is complex, x's precision kept
        kind = t._data.dtype
        to = (np.dtype(f"c{2 * kind.itemsize}") if kind.kind == "f" and kind.itemsize >= 4
              else dtype_objects.default_complex_dtype(backend.get_default_dtype()).dtype)
        t = cast(t, to)
        return (t, s) if ta else (s, t)
    if t._data.dtype.kind not in "fc" and isinstance(s, float):
        t = cast(t, backend.get_default_dtype())
        return (t, s) if ta else (s, t)
    if (type(s) is int and t._data.dtype.kind in "iu" and name not in ("eq", "ne", "lt", "le", "gt", "ge")
            and not np.iinfo(t._data.dtype).min <= s <= np.iinfo(t._data.dtype).max and -2**63 <= s < 2**64):
        # PyTorch casts the number to the tensor's dtype, wrapping (uint8 + -3 is uint8 - 3 mod 256),
        # where NumPy raises OverflowError; comparisons keep the true value (u8 < -3 is False)
        s = int(np.array(s).astype(t._data.dtype))
        return (t, s) if ta else (s, t)
    return a, b


# ----------------------------------------------------------------------------- conversions


class Cast(Function):
    """Change dtype; between floating types the gradient is cast back."""

    complex_grad = True  # cplx: float <-> complex casts carry the gradient (a real input gets its real part)

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.src = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        if g.dtype.kind == "c" and ctx.src.kind != "c":
            return g.real.astype(ctx.src)
        return g.astype(ctx.src)

    @staticmethod
    def backward_graph(ctx, g):
        return cast(g, ctx.src)


def cast(x: Tensor, dtype) -> Tensor:
    dtype = np.dtype(dtype)
    if x._data.dtype == dtype:
        return x
    if dtype.kind not in "fc" or x._data.dtype.kind not in "fc":
        token = silence()  # nan/inf to an integer: PyTorch casts without a warning
        try:
            return Tensor._wrap(x._data.astype(dtype))  # no gradient through non-float casts
        finally:
            restore(token)
    return Cast.apply(x, dtype)


class ToDevice(Function):
    complex_grad = True  # cplx

    @staticmethod
    def forward(ctx, x, device):
        ctx.src = backend.device_of(x)
        return backend.to_device(x, device)

    @staticmethod
    def backward(ctx, g):
        return backend.to_device(g, ctx.src)

    @staticmethod
    def backward_graph(ctx, g):
        return to_device(g, ctx.src)


def to_device(x: Tensor, device: str) -> Tensor:
    return ToDevice.apply(x, device)


def to(x: Tensor, *args, **kwargs) -> Tensor:
    """``.to("cuda")``, ``.to(np.float64)``, ``.to("cpu", np.float32)`` or ``device=/dtype=``.
    ``copy=True`` always returns a new tensor; ``non_blocking`` and ``memory_format`` are
    accepted and change nothing (copies are synchronous; arrays are C-ordered)."""
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):  # .to(other): other's dtype and device
            dtype, device = a.dtype, a.device
        elif isinstance(a, (dtype_objects.dtype, np.dtype, type)):
            dtype = a
        else:  # "cpu", "cuda", or a device object with .type
            device = a
    out = x
    if dtype is not None and np.dtype(dtype) != x.dtype:
        out = cast(out, np.dtype(dtype))
    if device is not None and backend.parse_device(device) != out.device:
        out = to_device(out, backend.parse_device(device))
    return clone(out) if copy and out is x else out


def type_as(x: Tensor, other: Tensor) -> Tensor:
    return to(x, other.dtype)


class Clone(Function):
    complex_grad = True  # cplx

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        return g

    backward_graph = backward


def clone(x: Tensor) -> Tensor:
    return Clone.apply(x)


class Contiguous(Function):
    """A C-contiguous copy when the array is not one already (then the tensor itself)."""

    complex_grad = True  # cplx

    @staticmethod
    def forward(ctx, x):
        return xp_of(x).ascontiguousarray(x)

    @staticmethod
    def backward(ctx, g):
        return g

    backward_graph = backward


def contiguous(x: Tensor, memory_format=None) -> Tensor:
    """A row-major tensor with ``x``'s values (``x`` itself if it is one already); any
    ``memory_format`` is accepted and gives the same values (tinymm's arrays are row-major)."""
    if x._data.flags.c_contiguous:
        return x
    return Contiguous.apply(x)


def as_tensor_shared(data, dtype=None, device=None) -> Tensor:
    """``torch.as_tensor``: ``data`` as a tensor, sharing memory when it can: a Tensor or
    NumPy/CuPy array already of that dtype and device is used as it is (a Tensor is returned
    itself); anything else is converted (copied)."""
    if isinstance(data, Tensor):
        return to(data, *[a for a in (dtype, device) if a is not None])
    check_strides(data, "as_tensor")
    if hasattr(data, "dtype") and hasattr(data, "shape") and not isinstance(data, np.generic):
        err = diagnose(data, "as_tensor") if getattr(data.dtype, "kind", "f") not in "fiubc" else None
        if err is not None:
            raise err
        arr = data
        if dtype is not None and np.dtype(dtype) != arr.dtype:
            arr = arr.astype(np.dtype(dtype))
        if device is not None:
            arr = backend.to_device(arr, backend.parse_device(device))
        return Tensor._of(arr)
    try:
        return Tensor._of(data, dtype=dtype, device=device)
    except (TypeError, ValueError, OverflowError):
        err = diagnose(data, "as_tensor")
        if err is None:
            raise
        raise err from None


_TYPE_NAMES = {
    "float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor", "int64": "LongTensor",
    "int32": "IntTensor", "int16": "ShortTensor", "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor",
}


def tensor_type(x: Tensor, dtype=None, non_blocking: bool = False, **kwargs):
    """``x.type()``: the type name PyTorch would give ("torch.FloatTensor", "torch.cuda.LongTensor");
    ``x.type(dtype)`` (a dtype or such a name): ``x`` converted to it."""
    if dtype is None:
        prefix = "torch.cuda." if x.is_cuda else "torch."
        return prefix + _TYPE_NAMES[x.dtype.name]
    if isinstance(dtype, type) and isinstance(getattr(dtype, "dtype", None), dtype_objects.dtype):  # x.type(tinymm.LongTensor)
        return to(x, dtype.dtype)
    if isinstance(dtype, str):
        name = dtype.split(".")[-1]
        by_name = {v: k for k, v in _TYPE_NAMES.items()}
        if name not in by_name:
            raise ValueError(f"type: invalid type {dtype!r}")
        device = "cuda" if ".cuda." in dtype else "cpu"
        return to(x, np.dtype(by_name[name]), device)
    return to(x, np.dtype(dtype))
