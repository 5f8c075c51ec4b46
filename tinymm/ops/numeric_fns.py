"""Elementwise ops on the representation of numbers and the remaining binary maths of
PyTorch's Tensor: deg2rad/rad2deg, heaviside, float_power, nextafter, ldexp, frexp, signbit,
gcd/lcm, fmax/fmin and logaddexp2.

Gradients as PyTorch defines them: float_power and ldexp are compositions (pow in float64;
input · 2^other); nextafter passes the gradient to ``input`` unchanged and none to ``other``;
frexp's mantissa m = x / 2^e has gradient 1/2^e; fmax/fmin give the whole gradient to the
operand chosen (``input`` on ties, the other one where ``input`` is NaN); logaddexp2's partials
are 2^(a − out) and 2^(b − out). heaviside records a node whose backward raises, as PyTorch
("not implemented"); gcd, lcm and signbit have integer or bool results.
"""
from __future__ import annotations

import collections
import math

import numpy as np

from tinymm.autograd import Function
from tinymm.autograd_graph import node_output, operand, sum_to
from tinymm.backend import get_default_dtype
from tinymm.ops._util import DTypeError, DTypeNotImplementedError, torch_dtype_name, unbroadcast, xp_of
from tinymm.ops.convert import as_tensor, cast, operands, to_float
from tinymm.ops.elementwise import mul, pow
from tinymm.ops.inplace import inplace_of
from tinymm.tensor import Tensor


def _shape(a):
    return a.shape if hasattr(a, "shape") else ()


def _data(a):
    return a._data if isinstance(a, Tensor) else a


def _floating_pair(name, input, other):
    """Two tensors of a floating dtype (promoted to one), else PyTorch's NotImplementedError."""
    a, b = operands(name, as_tensor(input, name), as_tensor(other, name))
    for t in (a, b):
        if t.dtype.kind not in "fc":
            raise DTypeNotImplementedError(f"\"{name}_cpu\" not implemented for '{torch_dtype_name(t.dtype)}'")
    return a, b


def deg2rad(input):
    """``torch.deg2rad``: degrees to radians (integer input becomes the default float)."""
    return mul(to_float(as_tensor(input, "deg2rad")), math.pi / 180)


def rad2deg(input):
    """``torch.rad2deg``: radians to degrees (integer input becomes the default float)."""
    return mul(to_float(as_tensor(input, "rad2deg")), 180 / math.pi)


class Heaviside(Function):
    @staticmethod
    def forward(ctx, x, values):
        xp = xp_of(x)
        return xp.where(x == 0, values, (x > 0)).astype(x.dtype)

    @staticmethod
    def backward(ctx, g):
        raise RuntimeError("derivative for aten::heaviside is not implemented")


def heaviside(input, values, *, out=None):
    """``torch.heaviside``: 0 where input < 0, ``values`` where input == 0, 1 where input > 0;
    input and values must have the same dtype (as PyTorch)."""
    x, v = as_tensor(input, "heaviside"), as_tensor(values, "heaviside")
    if x.dtype != v.dtype:
        raise DTypeError("heaviside is not yet implemented for tensors with different dtypes.")
    operands("heaviside", x, v)  # shapes must broadcast
    out = Heaviside.apply(x, v)
    return out


def float_power(input, exponent, *, out=None):
    """``torch.float_power``: input ** exponent computed in float64 (the result is float64)."""
    a = cast(as_tensor(input, "float_power"), np.float64)
    b = cast(exponent, np.float64) if isinstance(exponent, Tensor) else float(exponent)
    return pow(a, b)


def float_power_(self, exponent):
    """``Tensor.float_power_``: in place; ``self`` must already be float64."""
    if self.dtype != np.float64:
        raise DTypeError(f"the base given to float_power_ has dtype {torch_dtype_name(self.dtype)} but the operation's "
                         "result requires dtype Double")
    return _float_power_inplace(self, exponent)


_float_power_inplace = inplace_of("float_power_", float_power)


class NextAfter(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (_shape(a), _shape(b))
        return xp_of(a).nextafter(a, b)

    @staticmethod
    def backward(ctx, g):
        na, nb = ctx.needs_input_grad
        return (unbroadcast(g, ctx.shapes[0]) if na else None,
                xp_of(g).zeros(ctx.shapes[1], g.dtype) if nb else None)


def nextafter(input, other, *, out=None):
    """``torch.nextafter``: the next floating-point value after input towards other."""
    return NextAfter.apply(*_floating_pair("nextafter", input, other))


def ldexp(input, other, *, out=None):
    """``torch.ldexp``: input · 2^other (a float result, as PyTorch)."""
    x = as_tensor(input, "ldexp")
    e = as_tensor(other, "ldexp")
    if e.dtype.kind not in "fc":
        e = cast(e, x.dtype if x.dtype.kind in "fc" else get_default_dtype())
    return mul(to_float(x), pow(2.0, e))


FrexpResult = collections.namedtuple("frexp", ["mantissa", "exponent"])


class Frexp(Function):
    @staticmethod
    def forward(ctx, x):
        m, e = xp_of(x).frexp(x)
        e = e.astype(np.int32)
        ctx.save_for_backward(e)
        return m.astype(x.dtype, copy=False), e

    @staticmethod
    def backward(ctx, g, _ge):
        (e,) = ctx.saved_arrays
        return (g / xp_of(g).exp2(e.astype(g.dtype))).astype(g.dtype, copy=False)


def frexp(input, *, out=None):
    """``torch.frexp``: (mantissa, exponent) with input = mantissa · 2^exponent,
    |mantissa| in [0.5, 1); exponent is int32. Floating input only."""
    x = as_tensor(input, "frexp")
    if x.dtype.kind not in "fc":
        raise DTypeError("torch.frexp() only supports floating-point dtypes")
    return FrexpResult(*Frexp.apply(x))


def signbit(input, *, out=None):
    """``torch.signbit``: whether the sign bit is set (True for −0.0 too)."""
    x = as_tensor(input, "signbit")
    return Tensor._wrap(xp_of(x._data).asarray(xp_of(x._data).signbit(x._data)))


def _integer_op(name, ufunc):
    def op(input, other, *, out=None):
        a, b = operands(name, as_tensor(input, name), other)
        for t in (a, b):
            d = t.dtype if isinstance(t, Tensor) else np.asarray(t).dtype
            if d.kind not in "iu":
                raise DTypeNotImplementedError(f"\"{name}_cpu\" not implemented for '{torch_dtype_name(d)}'")
        ad, bd = _data(a), _data(b)
        xp = xp_of(ad if hasattr(ad, "shape") else bd)
        return Tensor._wrap(xp.asarray(getattr(xp, ufunc)(ad, bd)))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``torch.{name}`` of integer tensors (non-negative, as NumPy's and PyTorch's)."
    return op


gcd = _integer_op("gcd", "gcd")
lcm = _integer_op("lcm", "lcm")


class _FMaxMin(Function):
    """fmax/fmin: NaN-ignoring max/min; the gradient goes to the chosen operand (a on ties)."""

    ufunc = ""
    ge = True

    @classmethod
    def forward(cls, ctx, a, b):
        xp = xp_of(a if hasattr(a, "shape") else b)
        ctx.shapes = (_shape(a), _shape(b))
        ctx.save_for_backward(a, b)
        return xp.asarray(getattr(xp, cls.ufunc)(a, b))

    @classmethod
    def backward(cls, ctx, g):
        a, b = ctx.saved_arrays
        xp = xp_of(g)
        pick_a = ((a >= b) if cls.ge else (a <= b)) | xp.isnan(b)
        na, nb = ctx.needs_input_grad
        return (unbroadcast(xp.where(pick_a, g, 0), ctx.shapes[0]) if na else None,
                unbroadcast(xp.where(pick_a, 0, g), ctx.shapes[1]) if nb else None)

    @classmethod
    def backward_graph(cls, ctx, g):
        a, b = ctx.saved_arrays
        xp = xp_of(g._data)
        pick_a = Tensor._wrap(xp.asarray(((a >= b) if cls.ge else (a <= b)) | xp.isnan(b)))
        na, nb = ctx.needs_input_grad
        return (sum_to(g.where(pick_a, 0.0), ctx.shapes[0]) if na else None,
                sum_to(g.where(~pick_a, 0.0), ctx.shapes[1]) if nb else None)


class FMax(_FMaxMin):
    ufunc = "fmax"
    ge = True


class FMin(_FMaxMin):
    ufunc = "fmin"
    ge = False


def fmax(input, other, *, out=None):
    """``torch.fmax``: the elementwise maximum, ignoring a NaN when the other value is not NaN."""
    a, b = operands("fmax", as_tensor(input, "fmax"), as_tensor(other, "fmax"))
    return FMax.apply(a, b)


def fmin(input, other, *, out=None):
    """``torch.fmin``: the elementwise minimum, ignoring a NaN when the other value is not NaN."""
    a, b = operands("fmin", as_tensor(input, "fmin"), as_tensor(other, "fmin"))
    return FMin.apply(a, b)


class LogAddExp2(Function):
    @staticmethod
    def forward(ctx, a, b):
        xp = xp_of(a)
        out = xp.logaddexp2(a, b)
        ctx.shapes = (_shape(a), _shape(b))
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_arrays
        xp = xp_of(g)
        na, nb = ctx.needs_input_grad
        return (unbroadcast(g * xp.exp2(a - out), ctx.shapes[0]) if na else None,
                unbroadcast(g * xp.exp2(b - out), ctx.shapes[1]) if nb else None)

    @staticmethod
    def backward_graph(ctx, g):
        a, b, out = ctx.saved_arrays
        A, B, Y = operand(ctx, 0, a), operand(ctx, 1, b), node_output(ctx, out)
        na, nb = ctx.needs_input_grad
        return (sum_to(g * (A - Y).exp2(), ctx.shapes[0]) if na else None,
                sum_to(g * (B - Y).exp2(), ctx.shapes[1]) if nb else None)


def logaddexp2(input, other, *, out=None):
    """``torch.logaddexp2``: log2(2^input + 2^other) without overflow; floating input only."""
    return LogAddExp2.apply(*_floating_pair("logaddexp2", input, other))
