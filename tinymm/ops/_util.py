"""Helpers every op shares: array module lookup, gradient un-broadcasting, argument spelling."""
from __future__ import annotations

import numbers

import numpy as np

from tinymm.backend import get_default_dtype
from tinymm.dtype_objects import KIND_CATEGORY


def xp_of(arr):
    """``numpy`` for NumPy arrays (the fast, common case), ``cupy`` for CuPy arrays."""
    if type(arr) is np.ndarray or not hasattr(arr, "__cuda_array_interface__"):
        return np
    import cupy

    return cupy


def keep_where(g, keep):
    """g where the boolean array ``keep`` (g's shape) is True, else +0, as a new contiguous array:
    a mask, not a product, so an inf or NaN of g where keep is False gives 0 (PyTorch's
    threshold_backward). Done on the bits (g AND all-ones or all-zeros) rather than with
    ``where``, which branched per element: on a random half-true mask of 512 Ki float32 it ran
    2.0 ms against 0.37 (AVX-512 Xeon)."""
    xp = xp_of(g)
    bits = xp.dtype(f"u{g.dtype.itemsize}")
    # (asarray: a 0-d mask may come as a NumPy scalar, which takes no out=; and order="C" rather
    # than ascontiguousarray, which turns a 0-d gradient 1-d: relu's backward of a 0-d float
    # tensor failed, probe16)
    out = xp.asarray(keep).astype(bits)
    xp.negative(out, out=out)  # 1 -> all ones (unsigned wraparound), 0 -> 0
    xp.bitwise_and(xp.asarray(g, order="C").view(bits), out, out=out)
    return out.view(g.dtype)


def broadcasts_to(shape, target) -> bool:
    """Whether an array of ``shape`` broadcasts to exactly ``target`` (a mask over a tensor,
    values into a region, a bias onto a product)."""
    try:
        return np.broadcast_shapes(tuple(shape), tuple(target)) == tuple(target)
    except ValueError:
        return False


def unbroadcast(g, shape):
    """Sum ``g`` over the axes that broadcasting added or stretched, giving ``shape``.

    The gradient of a broadcast is a sum: an input element used N times receives N
    contributions.
    """
    shape = tuple(shape)
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and g.shape[lead + i] != 1
    )
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def conj(a):
    """cplx: the complex conjugate of an array or Python number when it is complex, else ``a``
    itself (backward formulas multiply by conj(f'(z)): PyTorch's convention for complex tensors)."""
    if type(a) is complex:
        return a.conjugate()
    dt = getattr(a, "dtype", None)
    return a.conj() if dt is not None and dt.kind == "c" else a


def is_scalar(x) -> bool:
    return isinstance(x, (numbers.Number, np.number, np.bool_))


def normalize_dims(name: str, ndim: int, dim, axis=None):
    """Resolve PyTorch's ``dim`` or NumPy's ``axis`` to a sorted tuple of axes, or None."""
    if dim is not None and axis is not None:
        raise TypeError(f"{name}: give dim or axis, not both")
    d = dim if dim is not None else axis
    if d is None:
        return None
    # A 0-d tensor or array names one dim (``x.sum(dim=tensor(1))``), as an int does.
    dims = (d,) if isinstance(d, (int, np.integer)) or getattr(d, "ndim", None) == 0 else tuple(d)
    if ndim == 0:
        # A 0-d tensor accepts dim 0 / -1 (as PyTorch): nothing to reduce over.
        for a in dims:
            if int(a) not in (0, -1):
                raise IndexError(f"{name}: dim {a} is out of range for a 0-d tensor (expected 0 or -1)")
        if len(dims) > 1:  # 0 and -1 name the same pseudo-dim (probe16: sum/flip/squeeze of (0, -1) passed)
            raise ValueRangeError(f"{name}: dim {dims} repeats an axis (a dim appears multiple times in the list "
                                  "of dims)")
        return ()
    out = []
    for a in dims:
        a = int(a)
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise IndexError(f"{name}: dim {a} is out of range for a tensor with {ndim} dimensions")
        out.append(a % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueRangeError(f"{name}: dim {dims} repeats an axis (a dim appears multiple times in the list of dims)")
    return tuple(sorted(out))


def normalize_dim(name: str, ndim: int, dim) -> int:
    """One axis, negative allowed, checked against ``ndim`` (0 for a 0-d tensor)."""
    dims = normalize_dims(name, ndim, int(dim))
    return dims[0] if dims else 0


def keep_flag(keepdim, np_style: dict) -> bool:
    """``keepdim`` (PyTorch) or ``keepdims`` (NumPy); any other keyword is an error."""
    keepdims = np_style.pop("keepdims", None)
    np_style.pop("axis", None)
    if np_style:
        raise TypeError(f"unexpected keyword arguments {sorted(np_style)}")
    return bool(keepdim if keepdims is None else keepdims)


def float_dtype_for(arr):
    """The floating dtype an integer array is promoted to when it meets a Python float."""
    return arr.dtype if arr.dtype.kind in "fc" else get_default_dtype()


class ShapeError(RuntimeError, ValueError):
    """Shapes that do not fit an op. PyTorch raises RuntimeError here, older tinymm code
    (and NumPy habits) expect ValueError: this is both, and its message names the shapes."""


class DTypeError(RuntimeError, TypeError):
    """A dtype an op does not implement (PyTorch: RuntimeError "... not implemented for 'Float'")."""


class EmptyReductionError(IndexError, RuntimeError):
    """A max/min-like reduction over a dimension of size 0 (PyTorch raises IndexError with a
    dim, RuntimeError without one)."""


class ValueRangeError(RuntimeError, ValueError):
    """An argument value outside what an op accepts (a quantile q outside [0, 1], a negative
    count): PyTorch raises RuntimeError, Python habit expects ValueError; this is both."""


class DTypeNotImplementedError(NotImplementedError, TypeError):
    """An op PyTorch does not implement for a dtype at all (frac or histc on integers): PyTorch
    raises NotImplementedError (a RuntimeError); this is that and a TypeError."""


class IndexRangeError(IndexError, RuntimeError):
    """An index outside a dimension where PyTorch raises RuntimeError (index_add's index):
    both that and the IndexError Python code expects."""


_TORCH_DTYPE_NAMES = {
    "float16": "Half", "float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
    "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool",
    "complex64": "ComplexFloat", "complex128": "ComplexDouble",  # cplx
}


def refuse_complex(x, what: str) -> None:
    """cplx: PyTorch's NotImplementedError for ops that have no complex version (orderings:
    max, sort, clamp, ...): ``"max_all" not implemented for 'ComplexFloat'``."""
    if getattr(x, "_data", x).dtype.kind == "c":
        message = what if " " in what else f"\"{what}\" not implemented for '{torch_dtype_name(x.dtype)}'"
        raise DTypeNotImplementedError(message)


def torch_dtype_name(dtype) -> str:
    """PyTorch's name of a scalar type, as its error messages spell it ("Float", "Long")."""
    return _TORCH_DTYPE_NAMES.get(str(np.dtype(dtype)), str(dtype))


def check_fits(result_dtype, target_dtype, op: str = "") -> None:
    """Writing a ``result_dtype`` value into a ``target_dtype`` tensor (in-place ops, ``out=``):
    a result of a higher category (bool < integer < floating) is refused, as PyTorch refuses it."""
    if KIND_CATEGORY.get(result_dtype.kind, 2) > KIND_CATEGORY.get(target_dtype.kind, 2):
        raise DTypeError(f"{op + ': ' if op else ''}result type {torch_dtype_name(result_dtype)} can't be cast to the desired output "
                         f"type {torch_dtype_name(target_dtype)}")
