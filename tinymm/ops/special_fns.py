"""More special functions, as ``torch.special`` defines them (real dtypes): error functions
(erfc, erfcx, the normal distribution's ndtr, ndtri, log_ndtr), modified Bessel functions
(i0, i0e, i1, i1e), sinc, entr, polygamma, multigammaln, xlogy/xlog1py, the incomplete gamma
functions, Hurwitz zeta, and the Bessel and Airy functions PyTorch gives without gradients.

Values come from ``scipy.special`` (``cupyx.scipy.special`` on CuPy arrays) through
``ops.special.special_of``. Derivatives, where PyTorch has them:

    erfc' = −2/√π e^(−x²)            erfcx' = 2x·erfcx(x) − 2/√π
    ndtr' = φ(x) = e^(−x²/2)/√(2π)    ndtri' = √(2π) e^(ndtri(x)²/2)
    log_ndtr' = φ(x)/ndtr(x)          sinc' = (cos(πx) − sinc(x))/x, 0 at 0
    i0' = i1                          i0e' = i1e − sign(x)·i0e
    i1' = i0 − i1/x (½ at 0)          i1e' = i0e − i1e·(sign(x) + 1/x) (½ at 0)
    entr = −x ln x: entr' = −(1 + ln x)
    polygamma(n, ·)' = polygamma(n + 1, ·)
    xlogy(x, y) = x ln y:  ∂x = ln y (0 where x = 0 and y ≤ 0), ∂y = x/y   (xlog1py likewise)
    gammainc(a, x)' in x = x^(a−1) e^(−x)/Γ(a) (gammaincc: its negative); zeta(s, q)' in q = −s·zeta(s + 1, q)

The derivative in a of gammainc/gammaincc and in s of zeta is not implemented, as in PyTorch:
backward raises NotImplementedError naming it. Integer input is promoted to the default
float dtype, except where PyTorch refuses integers (the incomplete gamma functions).
"""
from __future__ import annotations

import math

import numpy as np

from tinymm.autograd import Function
from tinymm.autograd_graph import operand, sum_to
from tinymm.ops._util import DTypeNotImplementedError, ShapeError, unbroadcast, xp_of
from tinymm.ops.convert import as_tensor, cast, operands, to_float
from tinymm.ops.decompositions import torch_dtype_name
from tinymm.ops.elementwise import UnaryFunction
from tinymm.ops.maths import float_unary
from tinymm.ops.special import Polygamma, TensorSpecial, lgamma, polygamma, special_for, special_of  # noqa: F401 (Polygamma, polygamma: re-exported)
from tinymm.tensor import Tensor

_SQRT_2PI = math.sqrt(2 * math.pi)
_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)


class Erfc(UnaryFunction):
    f = staticmethod(lambda xp, x: special_of(x).erfc(x))
    df = staticmethod(lambda xp, x, out: -_TWO_OVER_SQRT_PI * xp.exp(-x * x))


class Erfcx(UnaryFunction):
    saves = "both"
    f = staticmethod(lambda xp, x: special_of(x).erfcx(x))
    df = staticmethod(lambda xp, x, out: 2 * x * out - _TWO_OVER_SQRT_PI)


class Ndtr(UnaryFunction):
    f = staticmethod(lambda xp, x: special_of(x).ndtr(x))
    df = staticmethod(lambda xp, x, out: xp.exp(-0.5 * x * x) / _SQRT_2PI)


class Ndtri(UnaryFunction):
    saves = "out"
    f = staticmethod(lambda xp, x: special_of(x).ndtri(x))
    df = staticmethod(lambda xp, x, out: _SQRT_2PI * xp.exp(0.5 * out * out))


class LogNdtr(UnaryFunction):
    saves = "both"
    f = staticmethod(lambda xp, x: special_of(x).log_ndtr(x))
    df = staticmethod(lambda xp, x, out: xp.exp(-0.5 * x * x - out) / _SQRT_2PI)


class I0(UnaryFunction):
    f = staticmethod(lambda xp, x: special_of(x).i0(x))
    df = staticmethod(lambda xp, x, out: special_for(xp, x).i1(x))


class I0e(UnaryFunction):
    saves = "both"
    f = staticmethod(lambda xp, x: special_of(x).i0e(x))
    df = staticmethod(lambda xp, x, out: special_for(xp, x).i1e(x) - xp.sign(x) * out)


class I1(UnaryFunction):
    saves = "both"
    f = staticmethod(lambda xp, x: special_of(x).i1(x))
    df = staticmethod(lambda xp, x, out: xp.where(x == 0, 0.5, special_for(xp, x).i0(x) - out / x))


class I1e(UnaryFunction):
    saves = "both"
    f = staticmethod(lambda xp, x: special_of(x).i1e(x))
    df = staticmethod(lambda xp, x, out: xp.where(x == 0, 0.5, special_for(xp, x).i0e(x) - out * (xp.sign(x) + 1 / x)))


class Sinc(UnaryFunction):
    saves = "both"
    f = staticmethod(lambda xp, x: xp.sinc(x))
    df = staticmethod(lambda xp, x, out: xp.where(x == 0, 0, (xp.cos(math.pi * x) - out) / x))


class Entr(UnaryFunction):
    f = staticmethod(lambda xp, x: xp.where(x > 0, -x * xp.log(x), xp.where(x == 0, 0, xp.where(x < 0, -xp.inf, x))))
    df = staticmethod(lambda xp, x, out: -(1 + xp.log(x)))


for _cls in (Erfc, Erfcx, Ndtr, Ndtri, LogNdtr, I0, I0e, I1, I1e, Sinc, Entr):
    _cls.df_on_tensors = True  # every df above runs on Tensors too: twice differentiable

erfc = float_unary(Erfc, "erfc")
erfcx = float_unary(Erfcx, "erfcx")
ndtr = float_unary(Ndtr, "ndtr")
ndtri = float_unary(Ndtri, "ndtri")
log_ndtr = float_unary(LogNdtr, "log_ndtr")
i0 = float_unary(I0, "i0")
i0e = float_unary(I0e, "i0e")
i1 = float_unary(I1, "i1")
i1e = float_unary(I1e, "i1e")
sinc = float_unary(Sinc, "sinc")
entr = float_unary(Entr, "entr")
# the Bessel functions' derivatives use each other: create_graph's special_for needs them too
TensorSpecial.i0, TensorSpecial.i0e = staticmethod(i0), staticmethod(i0e)
TensorSpecial.i1, TensorSpecial.i1e = staticmethod(i1), staticmethod(i1e)
for _fn in (erfcx, ndtr, ndtri, log_ndtr, i0e, i1, i1e, entr):  # torch.special only
    _fn.__doc__ = f"``torch.special.{_fn.__name__}`` (elementwise; integer input is promoted to float)."


def polygamma_method(self, n):
    """``Tensor.polygamma(n)``: ``polygamma(n, self)``."""
    return polygamma(n, self)


def multigammaln(input, p: int, *, out=None):
    """``torch.special.multigammaln`` / ``torch.mvlgamma``: the log of the multivariate gamma
    function, Σ_{i<p} lgamma(a − i/2) + p(p − 1)/4 · ln π."""
    a = to_float(as_tensor(input, "multigammaln"))
    if int(p) != p or p < 1:
        raise ShapeError(f"p has to be greater than or equal to 1, got {p}")
    p = int(p)
    total = lgamma(a)
    for i in range(1, p):
        total = total + lgamma(a - i / 2)
    return total + p * (p - 1) / 4 * math.log(math.pi)


def mvlgamma(input, p: int, *, out=None):
    """``torch.mvlgamma`` / ``Tensor.mvlgamma(p)``: ``multigammaln``."""
    return multigammaln(input, p)


# ----------------------------------------------------------------------------- binary


def _shape(a):
    return a.shape if hasattr(a, "shape") else ()


def _float_pair(name, a, b):
    """Operands of a float-only binary op: a Python number and a tensor, or two tensors
    (integer ones promoted as PyTorch does), as (Tensor-or-scalar, Tensor-or-scalar)."""
    from tinymm.ops.int_operands import ints_to_default_float

    a, b = operands(name, *ints_to_default_float(a, b))
    ta = a if isinstance(a, Tensor) else None
    tb = b if isinstance(b, Tensor) else None
    if ta is not None and ta.dtype.kind not in "fc":
        a = to_float(ta) if tb is None or tb.dtype.kind not in "fc" else cast(ta, tb.dtype)
    if tb is not None and tb.dtype.kind not in "fc":
        b = to_float(tb) if not isinstance(a, Tensor) or a.dtype.kind not in "fc" else cast(tb, a.dtype)
    return a, b


class _XLogY(Function):
    """x·log(y) (``log1p`` with ``shift``); 0 where x = 0 and y is not NaN."""

    shift = False

    @classmethod
    def forward(cls, ctx, x, y):
        xp = xp_of(x if hasattr(x, "shape") else y)
        with np.errstate(all="ignore"):
            ly = xp.log1p(y) if cls.shift else xp.log(y)
            out = xp.where((x == 0) & ~xp.isnan(y), 0, x * ly)
        ctx.save_for_backward(x, y)
        ctx.shapes = (_shape(x), _shape(y))
        dtype = (x if hasattr(x, "dtype") else y).dtype
        return xp.asarray(out).astype(dtype, copy=False)

    @classmethod
    def backward(cls, ctx, g):
        x, y = ctx.saved_arrays
        xp = xp_of(g)
        nx, ny = ctx.needs_input_grad
        limit = -1 if cls.shift else 0
        gx = gy = None
        with np.errstate(all="ignore"):
            if nx:
                ly = xp.log1p(y) if cls.shift else xp.log(y)
                d = xp.where((g == 0) & ~xp.isnan(y), 0, g * ly)
                d = xp.where((x == 0) & (y <= limit), 0, d)
                gx = unbroadcast(d, ctx.shapes[0]).astype(g.dtype, copy=False)
            if ny:
                gy = unbroadcast(g * x / ((1 + y) if cls.shift else y), ctx.shapes[1]).astype(g.dtype, copy=False)
        return gx, gy

    @classmethod
    def backward_graph(cls, ctx, g):
        """The same formulas on Tensors (create_graph): the masks are constants."""
        x, y = ctx.saved_arrays
        X, Y = operand(ctx, 0, x), operand(ctx, 1, y)
        nx, ny = ctx.needs_input_grad
        xp = xp_of(g._data)
        limit = -1 if cls.shift else 0
        gx = gy = None
        if nx:
            ly = (Y.log1p() if cls.shift else Y.log()) if isinstance(Y, Tensor) else \
                Tensor._wrap(xp.asarray(math.log1p(y) if cls.shift else math.log(y) if y > 0 else
                                        (-math.inf if y == 0 else math.nan), g.dtype))
            keep = ~(((g._data == 0) & ~xp.isnan(y)) | ((x == 0) & (y <= limit)))
            gx = sum_to((g * ly).where(Tensor._wrap(xp.asarray(keep)), 0.0), ctx.shapes[0])
        if ny:
            gy = sum_to(g * X / ((1 + Y) if cls.shift else Y), ctx.shapes[1])
        return gx, gy


class Xlogy(_XLogY):
    shift = False


class Xlog1py(_XLogY):
    shift = True


def xlogy(input, other, *, out=None):
    """``torch.xlogy`` / ``torch.special.xlogy``: input · log(other), 0 where input = 0."""
    a, b = _float_pair("xlogy", input, other)
    return Xlogy.apply(a, b)


def xlog1py(input, other, *, out=None):
    """``torch.special.xlog1py``: input · log1p(other), 0 where input = 0."""
    a, b = _float_pair("xlog1py", input, other)
    return Xlog1py.apply(a, b)


class _SecondArgOnly(Function):
    """f(a, x) differentiable in its second argument only (PyTorch's incomplete gamma and
    zeta); backward raises NotImplementedError when the first one needs a gradient."""

    first_name = ""

    @classmethod
    def forward(cls, ctx, a, x):
        xp = xp_of(a if hasattr(a, "shape") else x)
        with np.errstate(all="ignore"):
            out = xp.asarray(cls.f(special_of(a if hasattr(a, "shape") else x), a, x))
        ctx.save_for_backward(a, x)
        ctx.shapes = (_shape(a), _shape(x))
        dtype = (a if hasattr(a, "dtype") else x).dtype
        return out.astype(dtype, copy=False)

    @classmethod
    def backward(cls, ctx, g):
        a, x = ctx.saved_arrays
        if ctx.needs_input_grad[0]:
            raise NotImplementedError(f"the derivative for '{cls.first_name}' is not implemented.")
        with np.errstate(all="ignore"):
            d = g * cls.dx(xp_of(g), special_of(g), a, x)
        return None, unbroadcast(d, ctx.shapes[1]).astype(g.dtype, copy=False)


def _gammainc_dx(xp, sp, a, x):
    return xp.exp((a - 1) * xp.log(x) - x - sp.gammaln(a))


class Gammainc(_SecondArgOnly):
    first_name = "igamma: input"
    f = staticmethod(lambda sp, a, x: sp.gammainc(a, x))
    dx = staticmethod(_gammainc_dx)


class Gammaincc(_SecondArgOnly):
    first_name = "igammac: input"
    f = staticmethod(lambda sp, a, x: sp.gammaincc(a, x))
    dx = staticmethod(lambda xp, sp, a, x: -_gammainc_dx(xp, sp, a, x))


class Zeta(_SecondArgOnly):
    first_name = "zeta"
    f = staticmethod(lambda sp, s, q: sp.zeta(s, q))
    dx = staticmethod(lambda xp, sp, s, q: -s * sp.zeta(s + 1, q))


def _gamma_operands(name, kernel, a, x):
    a, x = operands(name, a, x)
    for t in (a, x):
        if isinstance(t, Tensor) and t.dtype.kind not in "fc":
            raise DTypeNotImplementedError(f"\"{kernel}\" not implemented for '{torch_dtype_name(t.dtype)}'")
    return a, x


def gammainc(input, other, *, out=None):
    """``torch.special.gammainc`` / ``torch.igamma``: the regularized lower incomplete gamma
    function P(input, other)."""
    return Gammainc.apply(*_gamma_operands("igamma", "igamma_cpu", input, other))


def gammaincc(input, other, *, out=None):
    """``torch.special.gammaincc`` / ``torch.igammac``: the upper one, Q = 1 − P."""
    return Gammaincc.apply(*_gamma_operands("igammac", "igammac_cpu", input, other))


def igamma(input, other, *, out=None):
    return gammainc(input, other)


def igammac(input, other, *, out=None):
    return gammaincc(input, other)


def zeta(input, other, *, out=None):
    """``torch.special.zeta``: the Hurwitz zeta function Σ_k (k + other)^(−input)."""
    a, b = _float_pair("zeta", input, other)
    return Zeta.apply(a, b)


# ----------------------------------------------------------------------------- without gradients


def _no_grad_unary(name, fn):
    """A function PyTorch gives no derivative: the result never requires grad."""

    def op(input, *, out=None):
        x = to_float(as_tensor(input, name))
        with np.errstate(all="ignore"):
            res = fn(xp_of(x._data), special_of(x._data), x._data)
        return Tensor._wrap(xp_of(x._data).asarray(res).astype(x.dtype, copy=False))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``torch.special.{name}`` (elementwise, no gradient, as in PyTorch)."
    return op


bessel_j0 = _no_grad_unary("bessel_j0", lambda xp, sp, x: sp.j0(x))
bessel_j1 = _no_grad_unary("bessel_j1", lambda xp, sp, x: sp.j1(x))
bessel_y0 = _no_grad_unary("bessel_y0", lambda xp, sp, x: sp.y0(x))
bessel_y1 = _no_grad_unary("bessel_y1", lambda xp, sp, x: sp.y1(x))
modified_bessel_i0 = _no_grad_unary("modified_bessel_i0", lambda xp, sp, x: sp.i0(x))
modified_bessel_i1 = _no_grad_unary("modified_bessel_i1", lambda xp, sp, x: sp.i1(x))
modified_bessel_k0 = _no_grad_unary("modified_bessel_k0", lambda xp, sp, x: sp.k0(x))
modified_bessel_k1 = _no_grad_unary("modified_bessel_k1", lambda xp, sp, x: sp.k1(x))
scaled_modified_bessel_k0 = _no_grad_unary("scaled_modified_bessel_k0", lambda xp, sp, x: sp.k0e(x))
scaled_modified_bessel_k1 = _no_grad_unary("scaled_modified_bessel_k1", lambda xp, sp, x: sp.k1e(x))
spherical_bessel_j0 = _no_grad_unary("spherical_bessel_j0",
                                     lambda xp, sp, x: xp.where(x == 0, 1, xp.sin(x) / xp.where(x == 0, 1, x)))
airy_ai = _no_grad_unary("airy_ai", lambda xp, sp, x: sp.airy(x)[0])
