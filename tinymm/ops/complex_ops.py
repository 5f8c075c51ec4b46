"""Complex tensors: ``real``/``imag``, ``conj``, ``angle``, ``abs``, ``polar``, ``complex``,
``view_as_real``/``view_as_complex``, and the dtype queries (PyTorch's semantics).

Gradients follow PyTorch's convention for complex tensors (conjugate Wirtinger calculus): for a
real loss L of z = x + iy, ``z.grad`` = ∂L/∂x + i·∂L/∂y. So a holomorphic op's backward is
``g·conj(f'(z))``; an op from real to complex hands a real input the real part of the complex
gradient (autograd does that for every op, ``autograd.run_backward``); an op from complex to
real (abs, angle, real, imag) turns its real gradient g into a complex one:

- real(z): g;  imag(z): i·g;  |z|: g·z/|z| (0 at z = 0);  angle(z): g·i·z/|z|² (0 at 0);
- conj(z): conj(g);  polar(r, θ) = r·e^{iθ}: r̄ = Re(conj(g)·e^{iθ}), θ̄ = Re(conj(g)·i·z);
- complex(x, y) = x + iy: x̄ = Re g, ȳ = Im g;  view_as_real / view_as_complex: the other one.

Only ops whose class sets ``complex_grad = True`` may be recorded on complex tensors
(``autograd.Function``): any other op raises rather than give a wrong gradient. The linear ops
whose backward needs no change for complex (reshape, indexing, cat, sum, ...) are marked in
``ops/complex_grad_marks.py``.

Differences from PyTorch: ``conj`` is not a lazy view here (it copies; ``is_conj()`` is always
False and ``resolve_conj`` returns its input), so writing into a conj's result does not write
into the original. ``real``/``imag`` and ``view_as_real``/``view_as_complex`` do share memory
(NumPy views) as in PyTorch, but an in-place write through them is not recorded by autograd
on the original. There is no complex32 (NumPy has none). Everything runs through ``xp``
(NumPy or CuPy): the CuPy path is written but has not been run.
"""
from __future__ import annotations

import numpy as np

from tinymm import autograd, backend
from tinymm.autograd import Function
from tinymm.dtype_objects import default_complex_dtype
from tinymm.ops._util import DTypeError, ShapeError, torch_dtype_name, xp_of
from tinymm.ops.convert import as_tensor, cast
from tinymm.tensor import Tensor, bump_version


def _complex_of(real_dtype) -> np.dtype:
    return np.dtype(f"c{2 * np.dtype(real_dtype).itemsize}")


def _real_of(complex_dtype) -> np.dtype:
    return np.dtype(f"f{np.dtype(complex_dtype).itemsize // 2}")


# ----------------------------------------------------------------------------- real, imag


class Real(Function):
    """z.real (a view of z's memory); backward: g as a complex array."""

    complex_grad = True

    @staticmethod
    def forward(ctx, z):
        ctx.dtype = z.dtype
        return z.real

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.dtype)


class Imag(Function):
    """z.imag (a view of z's memory); backward: i·g."""

    complex_grad = True

    @staticmethod
    def forward(ctx, z):
        ctx.dtype = z.dtype
        return z.imag

    @staticmethod
    def backward(ctx, g):
        out = xp_of(g).zeros(g.shape, ctx.dtype)
        out.imag = g
        return out


def real(input) -> Tensor:
    """The real part of a complex tensor (sharing its memory); a real tensor itself."""
    x = as_tensor(input, "real")
    if x._data.dtype.kind != "c":
        return x
    return Real.apply(x)


def imag(input) -> Tensor:
    """The imaginary part of a complex tensor (sharing its memory); real tensors raise, as in PyTorch."""
    x = as_tensor(input, "imag")
    if x._data.dtype.kind != "c":
        raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")
    return Imag.apply(x)


def _set_part(name: str):
    """``z.real = v`` / ``z.imag = v``: PyTorch's setters (``z.real.copy_(v)``), a plain write."""
    def setter(self, value):
        if self._data.dtype.kind != "c":
            if name == "imag":
                raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")
            target = self._data
        else:
            target = getattr(self._data, name)
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError(f"tinymm: writing z.{name} of a tensor that requires grad is not recorded by autograd; "
                               "do it under no_grad()")
        value = value._data if isinstance(value, Tensor) else value
        target[...] = value
        bump_version(self._data)
    return setter


# ----------------------------------------------------------------------------- conj


class Conj(Function):
    complex_grad = True

    @staticmethod
    def forward(ctx, z):
        return z.conj()

    @staticmethod
    def backward(ctx, g):
        return g.conj()


def conj(input) -> Tensor:
    """The complex conjugate (a copy here: PyTorch's lazy conj view is not modelled, see the
    module docstring); a real tensor itself, as in PyTorch."""
    x = as_tensor(input, "conj")
    if x._data.dtype.kind != "c":
        return x
    return Conj.apply(x)


def conj_physical(input) -> Tensor:
    """The complex conjugate, computed now (a real tensor itself)."""
    return conj(input)


def resolve_conj(input) -> Tensor:
    """tinymm's conj is never lazy: the input itself."""
    return as_tensor(input, "resolve_conj")


def resolve_neg(input) -> Tensor:
    """tinymm has no lazy negation: the input itself."""
    return as_tensor(input, "resolve_neg")


def is_conj(input) -> bool:
    """False: tinymm's conj is never a lazy view (see the module docstring)."""
    as_tensor(input, "is_conj")
    return False


def is_neg(input) -> bool:
    as_tensor(input, "is_neg")
    return False


# ----------------------------------------------------------------------------- abs, angle


class Abs(Function):
    """|z| of a complex tensor (real; ``elementwise.Abs`` is the real one): backward g·z/|z|, 0 where
    z = 0 (PyTorch's sgn)."""

    complex_grad = True

    @staticmethod
    def forward(ctx, z):
        out = xp_of(z).abs(z)
        ctx.save_for_backward(z, out)
        return out

    @staticmethod
    def backward(ctx, g):
        z, out = ctx.saved_arrays
        xp = xp_of(z)
        safe = xp.where(out == 0, 1, out)
        return (g * xp.where(out == 0, 0, z / safe)).astype(z.dtype, copy=False)


def complex_abs(x: Tensor) -> Tensor:
    return Abs.apply(x)


class Angle(Function):
    """arg z in (-π, π]; backward g·i·z/|z|² (0 at z = 0). A real input gives 0 or π and a
    zero gradient, as PyTorch."""

    complex_grad = True

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        xp = xp_of(z)
        dtype = _real_of(z.dtype) if z.dtype.kind == "c" else z.dtype
        return xp.angle(z).astype(dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_arrays
        xp = xp_of(z)
        if z.dtype.kind != "c":
            return xp.zeros(z.shape, z.dtype)
        r2 = (z * z.conj()).real
        safe = xp.where(r2 == 0, 1, r2)
        return (g * xp.where(r2 == 0, 0, 1j * z / safe)).astype(z.dtype, copy=False)


def angle(input) -> Tensor:
    """The argument of each element (float result); integers become the default float dtype."""
    x = as_tensor(input, "angle")
    if x._data.dtype.kind not in "fc":
        x = cast(x, backend.get_default_dtype())
    return Angle.apply(x)


# ----------------------------------------------------------------------------- polar, complex


def _check_real_pair(name: str, a: Tensor, b: Tensor, first: str, second: str) -> None:
    for label, t in ((first, a), (second, b)):
        if t._data.dtype.kind != "f" or t._data.dtype.itemsize < 4:
            raise DTypeError(f"Expected both inputs to be Half, Float or Double tensors but got "
                             f"{torch_dtype_name(a.dtype)} and {torch_dtype_name(b.dtype)}")
    if a._data.dtype != b._data.dtype:
        raise DTypeError(f"Expected object of scalar type {torch_dtype_name(a.dtype)} but got scalar type "
                         f"{torch_dtype_name(b.dtype)} for second argument")
    if type(a._data) is not type(b._data):
        raise RuntimeError(f"{name}: tensors are on different devices: {a.device} and {b.device}")


def _sum_back(g, shape):
    from tinymm.ops._util import unbroadcast

    return unbroadcast(g, shape)


class Polar(Function):
    """r·(cos θ + i sin θ); r̄ = Re(conj(g)·e^{iθ}), θ̄ = Re(conj(g)·i·out) (broadcasting)."""

    complex_grad = True

    @staticmethod
    def forward(ctx, r, theta):
        xp = xp_of(r)
        unit = (xp.cos(theta) + 1j * xp.sin(theta)).astype(_complex_of(r.dtype), copy=False)
        out = r * unit
        ctx.save_for_backward(unit, out)
        ctx.shapes = (r.shape, theta.shape)
        return out

    @staticmethod
    def backward(ctx, g):
        unit, out = ctx.saved_arrays
        nr, nt = ctx.needs_input_grad
        sr, st = ctx.shapes
        gc = g.conj()
        gr = _sum_back((gc * unit).real, sr) if nr else None
        gt = _sum_back((gc * 1j * out).real, st) if nt else None
        return gr, gt


def polar(abs, angle) -> Tensor:
    """The complex tensor with absolute value ``abs`` and angle ``angle`` (same float dtype)."""
    r, t = as_tensor(abs, "polar"), as_tensor(angle, "polar")
    _check_real_pair("polar", r, t, "abs", "angle")
    return Polar.apply(r, t)


class Complex(Function):
    """real + i·imag; backward: Re g, Im g (summed back over broadcasting)."""

    complex_grad = True

    @staticmethod
    def forward(ctx, re, im):
        ctx.shapes = (re.shape, im.shape)
        shape = np.broadcast_shapes(re.shape, im.shape)
        out = xp_of(re).empty(shape, _complex_of(re.dtype))
        out.real = re
        out.imag = im
        return out

    @staticmethod
    def backward(ctx, g):
        nr, ni = ctx.needs_input_grad
        sr, si = ctx.shapes
        return (_sum_back(g.real, sr).copy() if nr else None, _sum_back(g.imag, si).copy() if ni else None)


def complex(real, imag) -> Tensor:
    """``torch.complex(real, imag)``: real and imag of one float dtype (float32 -> complex64)."""
    re, im = as_tensor(real, "complex"), as_tensor(imag, "complex")
    _check_real_pair("complex", re, im, "real", "imag")
    return Complex.apply(re, im)


# ----------------------------------------------------------------------------- view_as_real/complex


def _real_view(xp, z):
    """(…, 2) real view of a complex array (real and imaginary parts as the last axis)."""
    part = z.real
    step = part.dtype.itemsize
    return xp.lib.stride_tricks.as_strided(part, z.shape + (2,), z.strides + (step,))


class ViewAsReal(Function):
    complex_grad = True

    @staticmethod
    def forward(ctx, z):
        return _real_view(xp_of(z), z)

    @staticmethod
    def backward(ctx, g):
        return _complex_view(xp_of(g), xp_of(g).ascontiguousarray(g))


def _complex_view(xp, x):
    """The complex view of a (…, 2) real array whose last axis is contiguous."""
    return x.view(_complex_of(x.dtype))[..., 0]


class ViewAsComplex(Function):
    complex_grad = True

    @staticmethod
    def forward(ctx, x):
        return _complex_view(xp_of(x), x)

    @staticmethod
    def backward(ctx, g):
        return _real_view(xp_of(g), g).copy()


def view_as_real(input) -> Tensor:
    """A complex (…) tensor as a real (…, 2) tensor holding (real, imag), sharing its memory."""
    z = as_tensor(input, "view_as_real")
    if z._data.dtype.kind != "c":
        raise RuntimeError("view_as_real is only supported for complex tensors")
    return ViewAsReal.apply(z)


def view_as_complex(input) -> Tensor:
    """A real (…, 2) float32/float64 tensor as a complex (…) tensor, sharing its memory;
    PyTorch's checks (last dimension of size 2 and stride 1, other strides and the offset even)."""
    x = as_tensor(input, "view_as_complex")
    d = x._data.dtype
    if d.kind != "f" or d.itemsize < 4:
        raise RuntimeError("view_as_complex is only supported for half, float and double tensors, but got a tensor of "
                           f"scalar type: {torch_dtype_name(d)}" + (" (tinymm has no complex32)" if d.kind == "f" else ""))
    if x.ndim == 0 or x.shape[-1] != 2:
        raise ShapeError("Tensor must have a last dimension of size 2")
    strides = x.stride()
    if strides[-1] != 1:
        raise RuntimeError("Tensor must have a last dimension with stride 1")
    if any(s % 2 for s in strides[:-1]):
        raise RuntimeError("Tensor must have a stride divisible by 2 for all but last dimension")
    if x.storage_offset() % 2:
        raise RuntimeError("Tensor must have a storage_offset divisible by 2")
    return ViewAsComplex.apply(x)


# ----------------------------------------------------------------------------- Tensor methods


def cfloat(x: Tensor) -> Tensor:
    return cast(x, np.complex64)


def cdouble(x: Tensor) -> Tensor:
    return cast(x, np.complex128)


def _adjoint(x: Tensor) -> Tensor:
    """The conjugate transpose of the last two dims (``x.mH``, ``x.adjoint()``)."""
    if x._data.dtype.kind != "c":
        return x.transpose(-2, -1)
    if x.ndim < 2:
        raise RuntimeError("tensor.adjoint() is only supported on matrices or batches of matrices. Got 1-D tensor.")
    return conj(x.transpose(-2, -1))


def _h(x: Tensor) -> Tensor:
    """``x.H``: the conjugate transpose of a complex matrix (a real tensor: its ``t()``, as before)."""
    if x._data.dtype.kind != "c":
        return x.t()
    if x.ndim != 2:
        raise RuntimeError(f"tensor.H is only supported on matrices (2-D tensors). Got {x.ndim}-D tensor.")
    return conj(x.transpose(0, 1))


def default_complex() -> np.dtype:
    return default_complex_dtype(backend.get_default_dtype()).dtype


# (function, Tensor method name or None, exported as tinymm.<name>)
COMPLEX_OPS = (
    (real, None, "real"),
    (imag, None, "imag"),
    (conj, "conj", "conj"),
    (conj_physical, "conj_physical", "conj_physical"),
    (resolve_conj, "resolve_conj", "resolve_conj"),
    (resolve_neg, "resolve_neg", "resolve_neg"),
    (is_conj, "is_conj", "is_conj"),
    (is_neg, "is_neg", "is_neg"),
    (angle, "angle", "angle"),
    (polar, None, "polar"),
    (complex, None, "complex"),
    (view_as_real, None, "view_as_real"),
    (view_as_complex, None, "view_as_complex"),
    (cfloat, "cfloat", False),
    (cdouble, "cdouble", False),
    (_adjoint, "adjoint", False),
)

COMPLEX_PROPERTIES = {
    "real": property(real, _set_part("real")),
    "imag": property(imag, _set_part("imag")),
    "H": property(_h),
    "mH": property(_adjoint),
}


def complex_var(x: Tensor, axes, keepdim: bool, correction: int) -> Tensor:
    """The variance of a complex tensor, as PyTorch: sum |z − mean|² / (N − correction), real;
    composed of recorded ops, so its gradient is theirs."""
    shape = x.shape
    n = int(np.prod([shape[a] for a in (range(x.ndim) if axes is None else axes)]))
    dims = tuple(range(x.ndim)) if axes is None else axes
    d = x - x.mean(dim=dims, keepdim=True)
    sq = d.real * d.real + d.imag * d.imag
    return sq.sum(dim=dims, keepdim=keepdim) / max(n - correction, 0)
