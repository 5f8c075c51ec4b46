"""Unary maths and the binary ops beyond + − × ÷: trigonometry, rounding, logs and exps,
remainders, bitwise and logical ops, ``isclose``-style tests and ``norm``.

A differentiable unary op is a ``UnaryFunction`` subclass (defined in ``elementwise.py``)
naming its value ``f(xp, x)`` and its derivative ``df(xp, x, out)`` (the derivative may use
the input, the output or both; the class says which to save). Rounding ops (floor, ceil,
trunc, round, sign, floor division) have a zero gradient almost everywhere: PyTorch returns
zeros, so do they (``_ZeroGrad``).
Float-only maths promote integer input to the default float dtype, as PyTorch does; bitwise
ops accept integers and bools only.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from tinymm.autograd import Function
from tinymm.autograd_graph import node_output, operand, sum_to
from tinymm.backend import get_default_dtype
from tinymm.ops._util import (
    DTypeError,
    DTypeNotImplementedError,
    is_scalar,
    normalize_dims,
    refuse_complex,
    torch_dtype_name,
    unbroadcast,
    xp_of,
)
from tinymm.ops.convert import as_tensor, cast, operands, to_float, to_inexact
from tinymm.ops.elementwise import UnaryFunction, erf_array
from tinymm.tensor import Tensor


def _data(a):
    return a._data if isinstance(a, Tensor) else a


def _shape(a):
    return a.shape if hasattr(a, "shape") else ()


# ----------------------------------------------------------------------------- unary maths


class Sin(UnaryFunction):
    f = staticmethod(lambda xp, x: xp.sin(x))
    df = staticmethod(lambda xp, x, out: xp.cos(x))


class Cos(UnaryFunction):
    f = staticmethod(lambda xp, x: xp.cos(x))
    df = staticmethod(lambda xp, x, out: -xp.sin(x))


class Tan(UnaryFunction):
    saves = "out"
    f = staticmethod(lambda xp, x: xp.tan(x))
    df = staticmethod(lambda xp, x, out: 1 + out * out)


class Asin(UnaryFunction):
    f = staticmethod(lambda xp, x: xp.arcsin(x))
    df = staticmethod(lambda xp, x, out: 1 / xp.sqrt(1 - x * x))


class Acos(UnaryFunction):
    f = staticmethod(lambda xp, x: xp.arccos(x))
    df = staticmethod(lambda xp, x, out: -1 / xp.sqrt(1 - x * x))


class Atan(UnaryFunction):
    f = staticmethod(lambda xp, x: xp.arctan(x))
    df = staticmethod(lambda xp, x, out: 1 / (1 + x * x))


class Sinh(UnaryFunction):
    f = staticmethod(lambda xp, x: xp.sinh(x))
    df = staticmethod(lambda xp, x, out: xp.cosh(x))


class Cosh(UnaryFunction):
    f = staticmethod(lambda xp, x: xp.cosh(x))
    df = staticmethod(lambda xp, x, out: xp.sinh(x))


class Asinh(UnaryFunction):
    f = staticmethod(lambda xp, x: xp.arcsinh(x))
    df = staticmethod(lambda xp, x, out: 1 / xp.sqrt(x * x + 1))


class Acosh(UnaryFunction):
    f = staticmethod(lambda xp, x: xp.arccosh(x))
    # complex: sqrt(z - 1)·sqrt(z + 1) picks acosh's branch, where sqrt(z² - 1) may not (PyTorch's)
    df = staticmethod(lambda xp, x, out: 1 / (xp.sqrt(x - 1) * xp.sqrt(x + 1)) if x.dtype.kind == "c"
                      else 1 / xp.sqrt(x * x - 1))


class Atanh(UnaryFunction):
    f = staticmethod(lambda xp, x: xp.arctanh(x))
    df = staticmethod(lambda xp, x, out: 1 / (1 - x * x))


class Rsqrt(UnaryFunction):
    saves = "out"
    f = staticmethod(lambda xp, x: 1 / xp.sqrt(x))
    df = staticmethod(lambda xp, x, out: -0.5 * out * out * out)


class Reciprocal(UnaryFunction):
    saves = "out"
    f = staticmethod(lambda xp, x: 1 / x)
    df = staticmethod(lambda xp, x, out: -out * out)


class Square(UnaryFunction):
    f = staticmethod(lambda xp, x: x * x)
    df = staticmethod(lambda xp, x, out: 2 * x)


class Exp2(UnaryFunction):
    saves = "out"
    f = staticmethod(lambda xp, x: xp.exp2(x))
    df = staticmethod(lambda xp, x, out: out * math.log(2.0))


class Log2(UnaryFunction):
    f = staticmethod(lambda xp, x: xp.log2(x))
    df = staticmethod(lambda xp, x, out: 1 / (x * math.log(2.0)))


class Log10(UnaryFunction):
    f = staticmethod(lambda xp, x: xp.log10(x))
    df = staticmethod(lambda xp, x, out: 1 / (x * math.log(10.0)))


class Log1p(UnaryFunction):
    f = staticmethod(lambda xp, x: xp.log1p(x))
    df = staticmethod(lambda xp, x, out: 1 / (1 + x))


class Expm1(UnaryFunction):
    saves = "out"
    f = staticmethod(lambda xp, x: xp.expm1(x))
    df = staticmethod(lambda xp, x, out: out + 1)


class Erf(UnaryFunction):
    f = staticmethod(lambda xp, x: erf_array(x))
    df = staticmethod(lambda xp, x, out: (2 / math.sqrt(math.pi)) * xp.exp(-x * x))


def _float_unary(fn_cls, name):
    def op(x):
        return fn_cls.apply(to_float(as_tensor(x, name)))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise ``{name}`` (PyTorch's ``torch.{name}``); integer input is promoted to float."
    return op


def _inexact_unary(fn_cls, name):
    """``_float_unary`` for a function that is holomorphic: it also takes complex tensors, and
    its backward ``g · conj(f'(z))`` is PyTorch's conjugate-Wirtinger gradient."""
    def op(x):
        return fn_cls.apply(to_inexact(as_tensor(x, name)))

    fn_cls.complex_grad = True
    op.__name__ = op.__qualname__ = name
    op.__doc__ = (f"Elementwise ``{name}`` (PyTorch's ``torch.{name}``); integer input is promoted to float, "
                  "complex input is taken.")
    return op


sin = _inexact_unary(Sin, "sin")
cos = _inexact_unary(Cos, "cos")
tan = _inexact_unary(Tan, "tan")
asin = _inexact_unary(Asin, "asin")
acos = _inexact_unary(Acos, "acos")
atan = _inexact_unary(Atan, "atan")
sinh = _inexact_unary(Sinh, "sinh")
cosh = _inexact_unary(Cosh, "cosh")
asinh = _inexact_unary(Asinh, "asinh")
acosh = _inexact_unary(Acosh, "acosh")
atanh = _inexact_unary(Atanh, "atanh")
rsqrt = _inexact_unary(Rsqrt, "rsqrt")
reciprocal = _inexact_unary(Reciprocal, "reciprocal")
exp2 = _inexact_unary(Exp2, "exp2")
log2 = _inexact_unary(Log2, "log2")
log10 = _inexact_unary(Log10, "log10")
log1p = _inexact_unary(Log1p, "log1p")
expm1 = _inexact_unary(Expm1, "expm1")
erf = _float_unary(Erf, "erf")
# opsc: the factory under a public name, for the unary ops of ops.special_fns
float_unary = _float_unary


Square.complex_grad = True


def square(x):
    x = as_tensor(x, "square")
    if x.dtype.kind == "b":
        x = cast(x, np.int64)
    return Square.apply(x)


# ----------------------------------------------------------------------------- zero-gradient ops


class _ZeroGrad(Function):
    """An op whose derivative is 0 wherever it exists (rounding, sign, floor division):
    forward runs ``fn`` on the arrays, backward gives zeros shaped like each operand."""

    @staticmethod
    def forward(ctx, *args, fn):
        ctx.shapes = [(_shape(a), getattr(a, "dtype", None)) for a in args]
        return fn(*args)

    @staticmethod
    def backward(ctx, g):
        xp = xp_of(g)
        return tuple(xp.zeros(s, d or g.dtype) if n else None for (s, d), n in zip(ctx.shapes, ctx.needs_input_grad))

    @staticmethod
    def backward_graph(ctx, g):
        # constants: their own derivative is zero, with nothing behind them
        return tuple(Tensor._wrap(a) if a is not None else None for a in _ZeroGrad.backward(ctx, g._data))


def _zero_grad_unary(name, fn, ints_unchanged=True):
    def op(x, **kw):
        x = as_tensor(x, name)
        if x.dtype.kind in "iub" and ints_unchanged and not kw:
            if x.dtype.kind == "b":
                raise DTypeNotImplementedError(f"{name}: not implemented for bool tensors")
            return Tensor._wrap(x._data.copy())
        return _ZeroGrad.apply(x, fn=lambda a: fn(xp_of(a), a, **kw).astype(a.dtype, copy=False))

    op.__name__ = op.__qualname__ = name
    return op


floor = _zero_grad_unary("floor", lambda xp, a: xp.floor(a))
ceil = _zero_grad_unary("ceil", lambda xp, a: xp.ceil(a))
trunc = _zero_grad_unary("trunc", lambda xp, a: xp.trunc(a))
fix = trunc


def round(x, decimals: int = 0):
    """Round half to even, as PyTorch (and NumPy); ``decimals`` as ``torch.round``."""
    x = as_tensor(x, "round")
    if x.dtype.kind in "iu":
        return Tensor._wrap(x._data.copy())
    if x.dtype.kind == "b":
        raise DTypeNotImplementedError("round: not implemented for bool tensors")
    d = int(decimals)
    return _ZeroGrad.apply(x, fn=lambda a: xp_of(a).round(a, d).astype(a.dtype, copy=False))


def sign(x):
    x = as_tensor(x, "sign")
    refuse_complex(x, "Unlike NumPy, torch.sign is not intended to support complex numbers. Please use torch.sgn instead.")
    if x.dtype.kind == "b":
        return Tensor._wrap(x._data.copy())
    if x.dtype.kind in "iu":
        return Tensor._wrap(xp_of(x._data).sign(x._data))
    return _ZeroGrad.apply(x, fn=_sign_nan_zero)


def _sign_nan_zero(a):
    """sign with NaN -> 0, as PyTorch's (x > 0) - (x < 0) (NumPy's sign keeps NaN)."""
    xp = xp_of(a)
    return xp.where(xp.isnan(a), a.dtype.type(0), xp.sign(a))


def sgn(x):
    return sign(x)


# ----------------------------------------------------------------------------- binary maths


def _float_operands(name, a, b):
    """Operands for a float-only binary op: integer/bool tensors become the default float."""
    from tinymm.ops.int_operands import ints_to_default_float

    a, b = operands(name, *ints_to_default_float(a, b))
    if isinstance(a, Tensor) and a.dtype.kind not in "fc":
        a = cast(a, b.dtype if isinstance(b, Tensor) and b.dtype.kind in "fc" else get_default_dtype())
    if isinstance(b, Tensor) and b.dtype.kind not in "fc":
        b = cast(b, a.dtype if isinstance(a, Tensor) else get_default_dtype())
    return a, b


class Copysign(Function):
    """|a|·sign(b) (sign of b's sign bit); d/da = sign(a)·sign(out), 0 at a = 0; d/db = 0."""

    @staticmethod
    def forward(ctx, a, b):
        xp = xp_of(a if hasattr(a, "shape") else b)
        out = xp.copysign(a, b)
        ctx.save_for_backward(a, out)
        ctx.shapes = (_shape(a), _shape(b))
        return out.astype(out.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        a, out = ctx.saved_arrays
        xp = xp_of(g)
        na, nb = ctx.needs_input_grad
        ga = unbroadcast(g * xp.sign(a) * xp.sign(out), ctx.shapes[0]) if na else None
        gb = xp.zeros(ctx.shapes[1], g.dtype) if nb else None
        return ga, gb

    @staticmethod
    def backward_graph(ctx, g):
        a, out = ctx.saved_arrays
        xp = xp_of(g._data)
        na, nb = ctx.needs_input_grad
        ga = sum_to(g * Tensor._wrap(xp.sign(a) * xp.sign(out)), ctx.shapes[0]) if na else None
        gb = sum_to(g * 0, ctx.shapes[1]) if nb else None
        return ga, gb


def copysign(a, b):
    a, b = _float_operands("copysign", a, b)
    return Copysign.apply(a, b)


class _SmoothBinary(Function):
    """out = f(a, b) for a differentiable binary op: a subclass names ``f(xp, a, b)`` and the
    partials ``da(xp, a, b, out)`` and ``db(xp, a, b, out)``; a, b and out are saved, each
    gradient is summed back to its operand's shape. Floating-point warnings are silenced by the
    engine (``tinymm.float_errors``: PyTorch gives inf/NaN without a word)."""

    @classmethod
    def forward(cls, ctx, a, b):
        xp = xp_of(a if hasattr(a, "shape") else b)
        out = cls.f(xp, a, b)
        ctx.save_for_backward(a, b, out)
        ctx.shapes = (_shape(a), _shape(b))
        return out

    @classmethod
    def backward(cls, ctx, g):
        a, b, out = ctx.saved_arrays
        xp = xp_of(g)
        na, nb = ctx.needs_input_grad
        ga = unbroadcast(g * cls.da(xp, a, b, out), ctx.shapes[0]) if na else None
        gb = unbroadcast(g * cls.db(xp, a, b, out), ctx.shapes[1]) if nb else None
        return ga, gb

    @classmethod
    def backward_graph(cls, ctx, g):
        """The same partials on Tensors (create_graph): they use only what ``graph_xp.XP``
        offers, so the backward is recorded and differentiable again."""
        from tinymm.ops.graph_xp import XP

        a, b, out = ctx.saved_arrays
        A, B, Y = operand(ctx, 0, a), operand(ctx, 1, b), node_output(ctx, out)
        na, nb = ctx.needs_input_grad
        ga = sum_to(g * cls.da(XP, A, B, Y), ctx.shapes[0]) if na else None
        gb = sum_to(g * cls.db(XP, A, B, Y), ctx.shapes[1]) if nb else None
        return ga, gb


class LogAddExp(_SmoothBinary):
    """log(eᵃ + eᵇ); d/da = e^(a − out), d/db = e^(b − out)."""

    f = staticmethod(lambda xp, a, b: xp.logaddexp(a, b))
    da = staticmethod(lambda xp, a, b, out: xp.exp(a - out))
    db = staticmethod(lambda xp, a, b, out: xp.exp(b - out))


def logaddexp(a, b):
    a, b = _float_operands("logaddexp", a, b)
    return LogAddExp.apply(a, b)


class Lerp(Function):
    """start + weight·(end − start); d/dstart = 1 − w, d/dend = w, d/dw = end − start."""

    @staticmethod
    def forward(ctx, start, end, weight):
        ctx.save_for_backward(start, end, weight)
        ctx.shapes = (_shape(start), _shape(end), _shape(weight))
        return start + weight * (end - start)

    @staticmethod
    def backward(ctx, g):
        s, e, w = ctx.saved_arrays
        ns, ne, nw = ctx.needs_input_grad
        return (
            unbroadcast(g * (1 - w), ctx.shapes[0]) if ns else None,
            unbroadcast(g * w, ctx.shapes[1]) if ne else None,
            unbroadcast(g * (e - s), ctx.shapes[2]) if nw else None,
        )

    @staticmethod
    def backward_graph(ctx, g):
        s, e, w = ctx.saved_arrays
        S, E, W = operand(ctx, 0, s), operand(ctx, 1, e), operand(ctx, 2, w)
        ns, ne, nw = ctx.needs_input_grad
        return (
            sum_to(g * (1 - W), ctx.shapes[0]) if ns else None,
            sum_to(g * W, ctx.shapes[1]) if ne else None,
            sum_to(g * (E - S), ctx.shapes[2]) if nw else None,
        )


def lerp(input, end, weight):
    from tinymm.ops.same_dtype import require_same_dtype

    require_same_dtype("lerp", input, end, "expected dtype {a} for `end` but got dtype {b}")
    s, e = operands("lerp", input, end)
    if isinstance(weight, np.generic):  # probe3: a NumPy scalar weight is a Python number (keeps the dtype)
        weight = weight.item()
    if not isinstance(weight, Tensor):
        if not is_scalar(weight):
            weight = as_tensor(weight, "lerp")
    if isinstance(weight, Tensor):
        s, weight = operands("lerp", s, weight)
        e, weight = operands("lerp", e, weight)
    return Lerp.apply(s, e, weight)


class _Remainder(Function):
    """a − q(a/b)·b with q = floor (``remainder``, Python's %) or trunc (``fmod``, C's).
    d/da = 1, d/db = −q(a/b)."""

    q = None  # "floor" or "trunc"

    @classmethod
    def forward(cls, ctx, a, b):
        xp = xp_of(a if hasattr(a, "shape") else b)
        ctx.save_for_backward(a, b)
        ctx.shapes = (_shape(a), _shape(b))
        return (xp.remainder if cls.q == "floor" else xp.fmod)(a, b)

    @classmethod
    def backward(cls, ctx, g):
        a, b = ctx.saved_arrays
        xp = xp_of(g)
        na, nb = ctx.needs_input_grad
        ga = unbroadcast(g, ctx.shapes[0]) if na else None
        gb = None
        if nb:
            gb = unbroadcast(-g * getattr(xp, cls.q)(a / b), ctx.shapes[1])
        return ga, gb

    @classmethod
    def backward_graph(cls, ctx, g):
        a, b = ctx.saved_arrays
        xp = xp_of(g._data)
        na, nb = ctx.needs_input_grad
        ga = sum_to(g, ctx.shapes[0]) if na else None
        gb = sum_to(-g * Tensor._wrap(xp.asarray(getattr(xp, cls.q)(a / b), g._data.dtype)), ctx.shapes[1]) if nb else None
        return ga, gb


class Remainder(_Remainder):
    q = "floor"


class Fmod(_Remainder):
    q = "trunc"


def _integer_pair(name, a, b):
    """For two integer/bool operands (no float tensor among them): (xp, a array, b array),
    bools promoted to int64 and a zero divisor refused; None when a float is involved."""
    ta = a if isinstance(a, Tensor) else b
    other = b if ta is a else a
    if ta.dtype.kind in "fc" or (isinstance(other, Tensor) and other.dtype.kind in "fc"):
        return None
    xp = xp_of(ta._data)
    ad, bd = _data(a), _data(b)
    if ta.dtype.kind == "b" and (not isinstance(other, Tensor) or other.dtype.kind == "b"):
        ad, bd = xp.asarray(ad).astype(np.int64), xp.asarray(bd).astype(np.int64)
    # (an empty dividend makes an empty result, whatever the divisor: PyTorch returns it; probe16)
    if xp.asarray(ad).size and xp.any(xp.asarray(bd) == 0):
        raise ZeroDivisionErrorRT(f"{name}: integer division by zero")
    return xp, ad, bd


def _int_or_float_binary(name, fn_cls, a, b):
    a, b = operands(name, a, b)
    ints = _integer_pair(name, a, b)
    if ints is not None:
        xp, ad, bd = ints
        return Tensor._wrap(xp.asarray(fn_cls.forward(_Ctx(), ad, bd)))
    return fn_cls.apply(a, b)


class _Ctx:
    """A throwaway context for running a Function's forward on integer arrays (no graph)."""

    def save_for_backward(self, *a):
        pass


class ZeroDivisionErrorRT(ZeroDivisionError, RuntimeError):
    """Integer division by zero: PyTorch raises RuntimeError, Python ZeroDivisionError."""


def remainder(a, b):
    """Python's modulo: the result has the sign of the divisor (``%``)."""
    return _int_or_float_binary("remainder", Remainder, a, b)


def fmod(a, b):
    """C's fmod: the result has the sign of the dividend."""
    return _int_or_float_binary("fmod", Fmod, a, b)


def floor_divide(a, b):
    """``a // b``: the floor of the quotient (PyTorch's floor_divide); zero gradient."""
    return div(a, b, rounding_mode="floor")


def div(a, b, *, rounding_mode=None):
    """True division, or ``rounding_mode="trunc"``/``"floor"`` (integer tensors stay integers)."""
    from tinymm.ops.elementwise import div as true_div

    if rounding_mode is None:
        return true_div(a, b)
    if rounding_mode not in ("trunc", "floor"):
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    a, b = operands("div", a, b)
    ints = _integer_pair("div", a, b)
    if ints is not None:
        xp, ad, bd = ints
        q = xp.floor_divide(ad, bd)
        if rounding_mode == "trunc":
            # floor → trunc: add one where the exact quotient is negative and inexact.
            q = q + ((xp.remainder(ad, bd) != 0) & ((xp.asarray(ad) < 0) != (xp.asarray(bd) < 0)))
        return Tensor._wrap(xp.asarray(q))
    xp = xp_of((a if isinstance(a, Tensor) else b)._data)
    rnd = xp.floor if rounding_mode == "floor" else xp.trunc

    def f(x, y):
        with np.errstate(all="ignore"):
            # floor_divide, not floor(x / y): Python's (and PyTorch's) floor division, exact
            # where the rounded quotient is not (1 // 0.1 is 9) and NaN for inf // 2
            arr = xp.floor_divide(x, y) if rounding_mode == "floor" else rnd(x / y)
        return arr.astype(np.result_type(x, y), copy=False) if hasattr(arr, "astype") else arr

    return _ZeroGrad.apply(a, b, fn=f)


# ----------------------------------------------------------------------------- bitwise / logical
# No gradients: integer and bool results.


def _bitwise_operands(name, a, b):
    a, b = operands(name, a, b)
    for t in (a, b):
        d = t.dtype if isinstance(t, Tensor) else np.asarray(t).dtype
        if d.kind not in "iub":  # NotImplementedError, as PyTorch's
            raise DTypeNotImplementedError(f"\"{name}_cpu\" not implemented for '{torch_dtype_name(d)}': "
                                           "only integer and bool tensors")
    return _data(a), _data(b)


def _bitwise(name, ufunc):
    def op(a, b):
        ad, bd = _bitwise_operands(name, a, b)
        xp = xp_of(ad if hasattr(ad, "shape") else bd)
        return Tensor._wrap(xp.asarray(getattr(xp, ufunc)(ad, bd)))

    op.__name__ = op.__qualname__ = name
    return op


bitwise_and = _bitwise("bitwise_and", "bitwise_and")
bitwise_or = _bitwise("bitwise_or", "bitwise_or")
bitwise_xor = _bitwise("bitwise_xor", "bitwise_xor")
bitwise_left_shift = _bitwise("bitwise_left_shift", "left_shift")
bitwise_right_shift = _bitwise("bitwise_right_shift", "right_shift")


def bitwise_not(x):
    """``~x``: logical not for bools, two's-complement not for integers (as PyTorch)."""
    x = as_tensor(x, "bitwise_not")
    if x.dtype.kind not in "iub":
        raise DTypeNotImplementedError(f"\"bitwise_not_cpu\" not implemented for '{torch_dtype_name(x.dtype)}': "
                                       "only integer and bool tensors")
    return Tensor._wrap(xp_of(x._data).invert(x._data))


def _logical(name, ufunc):
    def op(a, b):
        a, b = operands(name, as_tensor(a, name) if not is_scalar(a) else a, b)
        ad, bd = _data(a), _data(b)
        xp = xp_of(ad if hasattr(ad, "shape") else bd)
        return Tensor._wrap(xp.asarray(getattr(xp, ufunc)(ad, bd)))

    op.__name__ = op.__qualname__ = name
    return op


logical_and = _logical("logical_and", "logical_and")
logical_or = _logical("logical_or", "logical_or")
logical_xor = _logical("logical_xor", "logical_xor")


# ----------------------------------------------------------------------------- tests on values


def _test(name, ufunc):
    def op(x):
        x = as_tensor(x, name)
        xp = xp_of(x._data)
        if x.dtype.kind not in "fc":
            return Tensor._wrap(xp.full(x.shape, name == "isfinite", dtype=bool))
        return Tensor._wrap(xp.asarray(getattr(xp, ufunc)(x._data)))

    op.__name__ = op.__qualname__ = name
    return op


isnan = _test("isnan", "isnan")
isinf = _test("isinf", "isinf")
isfinite = _test("isfinite", "isfinite")


def isposinf(x):
    x = as_tensor(x, "isposinf")
    return Tensor._wrap(xp_of(x._data).asarray(x._data == np.inf))


def isneginf(x):
    x = as_tensor(x, "isneginf")
    return Tensor._wrap(xp_of(x._data).asarray(x._data == -np.inf))


def isclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    """|a − b| ≤ atol + rtol·|b| elementwise (PyTorch's and NumPy's rule)."""
    from tinymm.ops.same_dtype import require_same_dtype

    require_same_dtype("isclose", a, b)
    a, b = operands("isclose", a, b)
    ad, bd = _data(a), _data(b)
    xp = xp_of(ad if hasattr(ad, "shape") else bd)
    return Tensor._wrap(xp.asarray(xp.isclose(ad, bd, rtol=rtol, atol=atol, equal_nan=equal_nan)))


def allclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    return builtins.bool(isclose(a, b, rtol, atol, equal_nan)._data.all())


def equal(a, b) -> bool:
    """True when both have the same shape and the same elements."""
    a, b = as_tensor(a, "equal"), as_tensor(b, "equal")
    return a.shape == b.shape and builtins.bool((a._data == b._data).all())


# ----------------------------------------------------------------------------- norm


class Norm(Function):
    """Vector p-norm over ``axes``: (Σ|x|ᵖ)^(1/p); p = inf/−inf is max/min |x|, p = 0 counts
    non-zeros. d/dx = sign(x)·|x|^(p−1)/out^(p−1); where out = 0 the gradient is 0 (PyTorch)."""

    @staticmethod
    def forward(ctx, x, p, axes, keepdim):
        xp = xp_of(x)
        ax = xp.abs(x)
        if p == math.inf:
            out = ax.max(axis=axes, keepdims=True, initial=0)
        elif p == -math.inf:
            out = ax.min(axis=axes, keepdims=True)
        elif p == 0:
            out = (x != 0).sum(axis=axes, keepdims=True).astype(x.dtype)
        elif p == 1:
            out = ax.sum(axis=axes, keepdims=True)
        elif p == 2:
            out = xp.sqrt((x * x).sum(axis=axes, keepdims=True))
        else:
            with np.errstate(all="ignore"):
                out = (ax**p).sum(axis=axes, keepdims=True) ** (1.0 / p)
        out = out.astype(x.dtype, copy=False)
        ctx.save_for_backward(x, out)
        ctx.meta = (p, axes, keepdim)
        if keepdim:
            return out
        return out.reshape(tuple(s for i, s in enumerate(x.shape) if axes is not None and i not in axes))

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_arrays
        p, axes, keepdim = ctx.meta
        xp = xp_of(x)
        g = g.reshape(out.shape)
        with np.errstate(all="ignore"):
            if p == 0:
                return xp.zeros_like(x)
            if p in (math.inf, -math.inf):
                hit = xp.abs(x) == out
                n = hit.sum(axis=axes, keepdims=True)
                return (g * xp.sign(x) * hit / n).astype(x.dtype, copy=False)
            if p == 1:
                return (g * xp.sign(x)).astype(x.dtype, copy=False)
            if p == 2:
                d = x / out
            else:
                d = xp.sign(x) * xp.abs(x) ** (p - 1) / out ** (p - 1)
            d = xp.where(out == 0, 0, d)
        return (g * d).astype(x.dtype, copy=False)

    @staticmethod
    def backward_graph(ctx, g):
        x, out = ctx.saved_arrays
        p, axes, keepdim = ctx.meta
        xp = xp_of(x)
        g = g.reshape(out.shape)
        if p == 0:
            return Tensor._wrap(xp.zeros_like(x))
        if p in (math.inf, -math.inf) or p == 1:  # piecewise linear in x: a constant factor
            return g * Tensor._wrap(Norm.backward(ctx, xp.ones_like(out)))
        X = ctx.inputs[0]
        # the output Tensor (its node is this op), shaped as the keepdim ``out``
        Y = node_output(ctx, out if keepdim else out.reshape(_reduced_shape(x.shape, axes))).reshape(out.shape)
        zero = Tensor._wrap(out == 0)
        safe = Y + zero  # no division by 0 where the norm is 0; the gradient there is 0 (PyTorch)
        if p == 2:
            d = X / safe
        else:
            d = Tensor._wrap(xp.sign(x)) * X.abs() ** (p - 1) / safe ** (p - 1)
        return g * d * Tensor._wrap((out != 0).astype(out.dtype))


def _reduced_shape(shape, axes):
    return tuple(s for i, s in enumerate(shape) if axes is not None and i not in axes)


def norm(x, p="fro", dim=None, keepdim=False, dtype=None):
    """PyTorch's ``torch.norm``/``Tensor.norm``: the vector p-norm over ``dim`` (all elements
    when None); ``"fro"`` is p = 2 (the Frobenius norm of a matrix is the 2-norm of its entries)."""
    x = as_tensor(x, "norm")
    if dtype is not None:
        x = cast(x, dtype)
    elif x._data.dtype.kind not in "fc":
        raise DTypeError("linalg.vector_norm: Expected a floating point or complex tensor as input. "
                         f"Got {torch_dtype_name(x.dtype)}")
    if p == "fro" or p is None:
        p = 2.0
    if isinstance(p, str):
        raise ValueError(f"norm: p={p!r} is not supported (use a number, 'fro', inf or -inf)")
    axes = normalize_dims("norm", x.ndim, dim)
    from tinymm.ops.norm_checks import refuse_empty_without_identity

    refuse_empty_without_identity(x, axes, p)
    return Norm.apply(x, float(p), axes, bool(keepdim))


# ----------------------------------------------------------------------------- atan2, hypot, frac, nan_to_num


class Atan2(_SmoothBinary):
    """atan2(a, b), the angle of the point (b, a); with r² = a² + b²:
    d/da = b/r², d/db = −a/r², both 0 where r² is 0 (as PyTorch, not 0/0)."""

    f = staticmethod(lambda xp, a, b: xp.arctan2(a, b))
    da = staticmethod(lambda xp, a, b, out: _over_r2(xp, b, a, b))
    db = staticmethod(lambda xp, a, b, out: _over_r2(xp, -a, a, b))


def _over_r2(xp, num, a, b):
    """num / (a² + b²), 0 where a² + b² is 0."""
    r2 = a * a + b * b
    return xp.where(r2 == 0, 0, num / xp.where(r2 == 0, 1, r2))


def atan2(input, other):
    """Elementwise arctangent of input/other with the quadrant from both signs."""
    a, b = _float_operands("atan2", input, other)
    return Atan2.apply(a, b)


class Hypot(_SmoothBinary):
    """√(a² + b²); d/da = a/out, d/db = b/out."""

    f = staticmethod(lambda xp, a, b: xp.hypot(a, b))
    da = staticmethod(lambda xp, a, b, out: a / out)
    db = staticmethod(lambda xp, a, b, out: b / out)


def hypot(input, other):
    """Elementwise √(input² + other²) without overflow in the squares."""
    a, b = _float_operands("hypot", input, other)
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError("hypot: both input and other must be tensors")
    return Hypot.apply(a, b)


def frac(x):
    """x − trunc(x) (the sign follows x); gradient 1. Floating tensors only, as in PyTorch."""
    x = as_tensor(x, "frac")
    if x.dtype.kind not in "fc":
        raise DTypeNotImplementedError(f'"frac" not implemented for {x.dtype} (floating tensors only)')
    return x - trunc(x)


class NanToNum(Function):
    """NaN, +inf and −inf replaced by given values; the gradient passes where x was finite."""

    @staticmethod
    def forward(ctx, x, nan, posinf, neginf):
        xp = xp_of(x)
        ctx.save_for_backward(x)
        return xp.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return g * xp_of(g).isfinite(x)

    @staticmethod
    def backward_graph(ctx, g):
        (x,) = ctx.saved_arrays
        return g * Tensor._wrap(xp_of(x).isfinite(x))


def nan_to_num(x, nan: float = 0.0, posinf=None, neginf=None):
    """NaN → ``nan``, +inf → ``posinf`` (default: the dtype's largest finite value), −inf →
    ``neginf`` (default: the most negative); integer tensors are returned unchanged."""
    x = as_tensor(x, "nan_to_num")
    if x.dtype.kind not in "fc":
        return Tensor._wrap(x._data.copy())
    info = np.finfo(x.dtype)
    posinf = float(info.max) if posinf is None else posinf
    neginf = float(info.min) if neginf is None else neginf
    return NanToNum.apply(x, nan, posinf, neginf)


for _op in (Sin, Cos, Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh, Rsqrt, Reciprocal, Square,
            Exp2, Log2, Log10, Log1p, Expm1, Erf):  # their df runs on Tensors (see UnaryFunction)
    _op.df_on_tensors = True
