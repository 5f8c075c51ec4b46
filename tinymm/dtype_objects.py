"""Floor 2: ``tinymm.dtype``, PyTorch's dtype objects (``tinymm.float32``, ``x.dtype``) over NumPy's.

NumPy's dtype cannot be subclassed, and PyTorch code reads what NumPy's dtype lacks
(``x.dtype.is_floating_point``, ``is_signed``, ``to_complex()``, ``str(d) == "torch.float32"``).
So each NumPy dtype gets one wrapper, interned: ``WRAPPERS[np_dtype]`` is the only ``tinymm.dtype``
for that NumPy dtype, and ``Tensor.dtype`` is that lookup keyed by the array's dtype (a CuPy
array's dtype is a NumPy dtype too). Interning makes ``is`` and ``==`` agree between wrappers.

A wrapper passes for its NumPy dtype wherever NumPy (or CuPy) takes a dtype: it has a ``.dtype``
attribute holding the NumPy dtype (and ``__numpy_dtype__``, which NumPy ≥ 2.4 reads first: without
it NumPy's probe for it fell through ``__getattr__`` and made every ``np.zeros(n, d)`` ~4 µs
slower), which ``np.dtype(d)``, ``np.zeros(n, d)``, ``a.astype(d)``,
``np.finfo(d)`` and ``np.result_type(d, ...)`` read; it compares equal to that NumPy dtype, its
scalar type and whatever else NumPy's own ``==`` accepts (``d == np.float32``) except a string
(``tinymm.float32 == "float32"`` is False, as in PyTorch), and hashes as the NumPy dtype, so a dict keyed by either finds the other. The NumPy attributes
internal code reads on hot paths (``kind``, ``itemsize``, ``type``, ``name``, ...) are plain
slots; any other attribute is the NumPy dtype's (``d.newbyteorder``, ``d.fields``).

PyTorch's surface: ``is_floating_point``, ``is_complex``, ``is_signed``, ``itemsize``, ``abbr``,
``to_real()``, ``to_complex()``; ``repr`` and ``str`` are ``tinymm.float32`` (PyTorch's
``torch.float32``); copies and pickles are the same interned object; users cannot create
instances (``tinymm.dtype()`` raises TypeError, as ``torch.dtype()`` does).
"""
from __future__ import annotations

import numpy as np

_NEW_TOKEN = object()  # only this module builds wrappers

#: what ``repr``/``str`` name the module by (``tinymm.float32``, as PyTorch's ``torch.float32``);
#: tests comparing printed tensors with PyTorch's set it to "torch." (the line wrapping counts it)
REPR_PREFIX = "tinymm."


class dtype:  # noqa: N801  (torch.dtype)
    """The dtype of a tensor: one interned object per NumPy dtype (see the module docstring)."""

    __slots__ = ("dtype", "__numpy_dtype__", "kind", "itemsize", "type", "name", "char", "str", "num", "alignment", "byteorder",
                 "is_floating_point", "is_complex", "is_signed", "abbr", "_hash", "_repr")

    def __new__(cls, *args, _token=None):
        if _token is not _NEW_TOKEN:
            raise TypeError("cannot create 'tinymm.dtype' instances (use tinymm.float32, tinymm.int64, ...)")
        return object.__new__(cls)

    def __init__(self, np_dtype: np.dtype, _token=None):
        self.dtype = self.__numpy_dtype__ = np_dtype
        self.kind = np_dtype.kind
        self.itemsize = np_dtype.itemsize
        self.type = np_dtype.type
        self.name = np_dtype.name
        self.char = np_dtype.char
        self.str = np_dtype.str
        self.num = np_dtype.num
        self.alignment = np_dtype.alignment
        self.byteorder = np_dtype.byteorder
        self.is_floating_point = np_dtype.kind == "f"
        self.is_complex = np_dtype.kind == "c"
        self.is_signed = np_dtype.kind in "fic"  # as torch: bool and unsigned integers are not
        self.abbr = np_dtype.kind + repr(8 * np_dtype.itemsize)  # torch's: f32, i64, u8, b8, c64
        self._hash = hash(np_dtype)
        native = np_dtype.isnative or np_dtype.byteorder == "|"
        self._repr = np_dtype.name if native else np_dtype.str

    # ------------------------------------------------------------------ NumPy interoperation
    def __getattr__(self, name: str):
        # only reached for names that are not slots: everything else NumPy's dtype has
        if name == "dtype":  # not yet set (never happens to an interned wrapper): no recursion
            raise AttributeError(name)
        return getattr(self.dtype, name)

    def __eq__(self, other) -> bool:
        if other is self:
            return True
        if other.__class__ is dtype:  # interned: a different wrapper is a different dtype
            return False
        if other is None:  # NumPy reads None as float64; no dtype equals None
            return False
        if isinstance(other, str):  # as torch.float32 != "float32" (NumPy's dtype would say equal)
            return False
        try:
            return bool(self.dtype == other)
        except TypeError:
            return False

    def __hash__(self) -> int:
        return self._hash

    # ------------------------------------------------------------------ PyTorch's surface
    def __repr__(self) -> str:
        return REPR_PREFIX + self._repr

    __str__ = __repr__

    def to_real(self) -> "dtype":
        """The real dtype of the same precision: complex64 → float32; a real dtype is itself."""
        if self.kind == "c":
            return as_dtype(np.dtype(f"f{self.itemsize // 2}"))
        return self

    def to_complex(self) -> "dtype":
        """The complex dtype of the same precision: float32 → complex64, float64 → complex128; a
        complex dtype is itself. float16 (PyTorch's complex32) and non-floating dtypes have none."""
        if self.kind == "c":
            return self
        if self.kind == "f" and self.itemsize in (4, 8):
            return as_dtype(np.dtype(f"c{2 * self.itemsize}"))
        if self.kind == "f":
            raise RuntimeError(f"to_complex: {self} has no complex dtype in tinymm (NumPy has no complex32)")
        raise RuntimeError(f"Unknown Complex ScalarType for {self}")

    def __reduce__(self):
        return as_dtype, (self.dtype,)

    def __copy__(self) -> "dtype":
        return self

    def __deepcopy__(self, memo) -> "dtype":
        return self


dtype.__module__ = "tinymm"  # prints as <class 'tinymm.dtype'>, as torch's <class 'torch.dtype'>

# NumPy dtype -> its one wrapper. Keys are NumPy dtypes; Tensor.dtype reads WRAPPERS[arr.dtype].
WRAPPERS: dict = {}

# PyTorch's dtype categories by NumPy kind, lowest first: promotion and casting rules compare
# these (a result of a higher category never goes silently into a lower one).
KIND_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}  # cplx: complex above floating, as PyTorch


def wrap_numpy_dtype(np_dtype: np.dtype) -> dtype:
    """The interned wrapper of a NumPy dtype, made on first use (``Tensor.dtype``'s slow path)."""
    w = WRAPPERS.get(np_dtype)
    if w is None:
        w = dtype(np_dtype, _token=_NEW_TOKEN)
        WRAPPERS[np_dtype] = w
    return w


def as_dtype(spec) -> dtype:
    """The tinymm dtype for a dtype spec: a ``tinymm.dtype`` (itself), a NumPy dtype, a NumPy
    scalar type (``np.float32``), a Python type (``float`` → float64, as NumPy reads it) or a
    NumPy name (``"float32"``)."""
    if spec.__class__ is dtype or spec.__class__ is _TypelessDtype:
        return spec
    try:
        w = WRAPPERS.get(spec)
    except TypeError:  # unhashable specs (a list of fields): NumPy decides
        w = None
    return w if w is not None else wrap_numpy_dtype(np.dtype(spec))


def numpy_dtype(spec) -> np.dtype:
    """The NumPy dtype for any spec ``as_dtype`` takes (for code that must hand NumPy a real one)."""
    return spec.dtype if spec.__class__ is dtype else np.dtype(spec)


float16 = wrap_numpy_dtype(np.dtype(np.float16))
float32 = wrap_numpy_dtype(np.dtype(np.float32))
float64 = wrap_numpy_dtype(np.dtype(np.float64))
int8 = wrap_numpy_dtype(np.dtype(np.int8))
int16 = wrap_numpy_dtype(np.dtype(np.int16))
int32 = wrap_numpy_dtype(np.dtype(np.int32))
int64 = wrap_numpy_dtype(np.dtype(np.int64))
uint8 = wrap_numpy_dtype(np.dtype(np.uint8))
uint16 = wrap_numpy_dtype(np.dtype(np.uint16))
uint32 = wrap_numpy_dtype(np.dtype(np.uint32))
uint64 = wrap_numpy_dtype(np.dtype(np.uint64))
bool_ = wrap_numpy_dtype(np.dtype(np.bool_))
complex64 = wrap_numpy_dtype(np.dtype(np.complex64))
complex128 = wrap_numpy_dtype(np.dtype(np.complex128))
cfloat, cdouble = complex64, complex128  # cplx: PyTorch's aliases


class _TypelessDtype(dtype):
    """A PyTorch dtype NumPy has no type for (bfloat16). It exists, prints, compares, hashes,
    pickles and reports PyTorch's properties, so code that only names it (nanoGPT's
    ``{'bfloat16': torch.bfloat16, ...}`` table, ``finfo``, ``x.dtype == torch.bfloat16``) runs;
    a tensor of it cannot be made: wherever NumPy would need its type, a TypeError says why."""

    __slots__ = ()

    def __init__(self, name: str, itemsize: int, _token=None):
        self.kind, self.itemsize, self.name, self.char, self.str = "f", itemsize, name, "", name
        self.type = self.num = self.alignment = None
        self.byteorder = "="
        self.is_floating_point, self.is_complex, self.is_signed = True, False, True
        self.abbr = "bf16"
        self._hash = hash(("tinymm", name))
        self._repr = name

    def _no_type(self):
        raise TypeError(f"tinymm.{self.name} has no NumPy type (NumPy has no {self.name}), so tinymm cannot make "
                        f"{self.name} tensors; use tinymm.float32 (or float16)")

    dtype = property(_no_type)
    __numpy_dtype__ = property(_no_type)

    def __getattr__(self, name: str):
        raise AttributeError(f"'tinymm.dtype' object ({self}) has no attribute {name!r}")

    def to_complex(self) -> dtype:
        return complex64  # as torch.bfloat16.to_complex()

    def __reduce__(self):
        return self.name  # the module-level object, tinymm.bfloat16


bfloat16 = _TypelessDtype.__new__(_TypelessDtype, _token=_NEW_TOKEN)
bfloat16.__init__("bfloat16", 2)


def default_complex_dtype(default_float) -> dtype:
    """cplx: the complex dtype a Python complex becomes, by the default float dtype (PyTorch's
    rule: float32 -> complex64, float64 -> complex128)."""
    return complex128 if np.dtype(default_float) == np.float64 else complex64
