"""Elementwise ops: arithmetic with broadcasting, the unary maths and activations, comparisons.

Each op is one Function. Binary ops broadcast as NumPy does; their backward sums the
gradient back to each operand's shape (``unbroadcast``). Python scalars are constants: they
take the tensor's dtype and get no gradient.
"""
from __future__ import annotations

import math

import numpy as np

from tinymm.autograd import Function
from tinymm.autograd_graph import as_dtype, node_output, operand, pair, sum_to
from tinymm.backend import get_default_dtype
from tinymm.ops._util import (DTypeError, DTypeNotImplementedError, ValueRangeError, conj, is_scalar, keep_where,
                              refuse_complex, torch_dtype_name, unbroadcast, xp_of)
from tinymm.ops.complex_ops import complex_abs
from tinymm.ops.convert import as_tensor, cast, operands, to_float, to_inexact
from tinymm.ops.float_only import floating_input
from tinymm.tensor import Tensor


def _shape(a):
    return a.shape if hasattr(a, "shape") else ()


# ----------------------------------------------------------------------------- binary


class _AddSub(Function):
    """a + b (``sign`` 1) or a − b (``sign`` −1): the gradient goes to a as it is and to b
    times the sign, each summed back to its operand's shape."""

    sign = 1
    complex_grad = True  # cplx

    @classmethod
    def forward(cls, ctx, a, b):
        ctx.shapes = (_shape(a), _shape(b))
        return a + b if cls.sign > 0 else a - b

    @classmethod
    def backward(cls, ctx, g):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (unbroadcast(g, sa) if na else None, unbroadcast(g if cls.sign > 0 else -g, sb) if nb else None)

    @classmethod
    def backward_graph(cls, ctx, g):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (sum_to(g, sa) if na else None, sum_to(g if cls.sign > 0 else -g, sb) if nb else None)


class Add(_AddSub):
    sign = 1


def add(a, b, *, alpha=1):
    if alpha != 1:
        b = _times_alpha(a, b, alpha)
    a, b = operands("add", a, b)
    return Add.apply(a, b)


def _integral(v) -> bool:
    return v.dtype.kind in "biu" if isinstance(v, Tensor) else isinstance(v, (int, np.integer, np.bool_))


def _times_alpha(a, b, alpha):
    """``alpha * b`` for add/sub: ``b`` may be a number too (``torch.add(x, 1, alpha=2)``).
    A float alpha with integral operands is refused, as PyTorch (it would truncate silently)."""
    if isinstance(alpha, (float, np.floating)) and _integral(a) and _integral(b):
        raise DTypeError("For integral input tensors, argument alpha must not be a floating point number.")
    if all(isinstance(t, Tensor) and t._data.dtype == np.bool_ for t in (a, b)):
        alpha = bool(alpha)  # bool + bool·alpha stays bool in PyTorch (alpha is cast to bool; probe16)
    elif isinstance(a, Tensor) and isinstance(b, Tensor):
        # PyTorch scales b in the result dtype: a bool b times an int alpha would widen to int64
        # (int8 + bool·2 is int8) and a uint8 b times −1 would wrap (int8 5 − uint8 10 is 15 in
        # int16, not −241; both probe16)
        from tinymm.ops.promotion import result_type

        to = result_type(a, b)
        if b._data.dtype != to:
            b = cast(b, to)
    return mul(b, alpha) if isinstance(b, Tensor) else b * alpha


class Sub(_AddSub):
    sign = -1


_BOOL_MINUS = ("the `-` operator, {} a bool tensor is not supported. If you are trying to invert a mask, "
               "use the `~` or `logical_not()` operator instead.")


def _is_bool(v) -> bool:
    return isinstance(v, bool) or (isinstance(v, Tensor) and v._data.dtype.kind == "b")


def sub(a, b, *, alpha=1):
    if (_is_bool(a) or _is_bool(b)) and (isinstance(a, Tensor) or isinstance(b, Tensor)):
        raise DTypeError("Subtraction, " + _BOOL_MINUS.format("with"))  # as PyTorch: 1 - mask is a bug
    if alpha != 1:
        b = _times_alpha(a, b, alpha)
    a, b = operands("sub", a, b)
    return Sub.apply(a, b)


class Mul(Function):
    """a·b; saves only what the wanted gradients need (b for da, a for db), as PyTorch does,
    so an in-place change to an operand nobody needs is no error. Complex: da = g·conj(b)."""

    complex_grad = True  # cplx

    @staticmethod
    def forward(ctx, a, b):
        na, nb = ctx.needs_input_grad
        ctx.shapes = (_shape(a), _shape(b))
        ctx.save_for_backward(a if nb else None, b if na else None)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_arrays
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (unbroadcast(g * conj(b), sa) if na else None, unbroadcast(g * conj(a), sb) if nb else None)

    @staticmethod
    def backward_graph(ctx, g):
        A, B = pair(ctx)
        (sa, sb), (na, nb) = ctx.shapes, ctx.needs_input_grad
        return (sum_to(g * B, sa) if na else None, sum_to(g * A, sb) if nb else None)


def mul(a, b):
    a, b = operands("mul", a, b)
    return Mul.apply(a, b)


class Div(Function):
    """a/b; da needs b, db needs a and b: a is saved only when db is wanted (complex: conjugated)."""

    complex_grad = True  # cplx

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (_shape(a), _shape(b))
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)
        return a / b  # x/0 is ±inf or nan without a warning, as in PyTorch (float_errors)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_arrays
        na, nb = ctx.needs_input_grad
        sa, sb = ctx.shapes
        ga = unbroadcast(g / conj(b), sa) if na else None
        gb = unbroadcast(-g * conj(a / b / b), sb) if nb else None  # not a / b²: b² overflows first
        return ga, gb

    @staticmethod
    def backward_graph(ctx, g):
        A, B = pair(ctx)
        (sa, sb), (na, nb) = ctx.shapes, ctx.needs_input_grad
        return (sum_to(g / B, sa) if na else None, sum_to(-g * (A / B) / B, sb) if nb else None)


def div(a, b):
    from tinymm.ops.int_operands import ints_to_default_float

    a, b = operands("div", *ints_to_default_float(a, b))
    # True division of integers gives floats, as in PyTorch.
    if isinstance(a, Tensor) and a._data.dtype.kind not in "fc":
        a = cast(a, get_default_dtype())
    if isinstance(b, Tensor) and b._data.dtype.kind not in "fc":
        b = cast(b, get_default_dtype() if not isinstance(a, Tensor) else a.dtype)
    return Div.apply(a, b)


class Pow(Function):
    """``a ** b``; d/da = b·a^(b−1) (0 where b = 0), d/db = a^b·ln a (0 where a = 0 and b ≥ 0,
    NaN for a negative base: PyTorch's rules); complex: times the conjugates."""

    complex_grad = True  # cplx

    @staticmethod
    def forward(ctx, a, b):
        if getattr(b, "dtype", None) is not None and b.dtype.kind in "iu":
            out = _int_pow(a, b)
        else:
            out = _scalar_pow(a, b) if is_scalar(b) else a**b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_arrays
        na, nb = ctx.needs_input_grad
        xp = xp_of(g)
        ga = gb = None
        with np.errstate(all="ignore"):
            if na:
                if is_scalar(b):
                    ga = g * conj(b * _scalar_pow(a, b - 1)) if b != 0 else g * 0
                else:
                    ga = unbroadcast(xp.where(b == 0, 0, g * conj(b * a ** (b - 1))).astype(g.dtype, copy=False), _shape(a))
            if nb:
                a_arr = xp.asarray(a, dtype=g.dtype) if is_scalar(a) else a
                log_a = xp.log(a_arr)
                d = xp.where((a_arr == 0) & (b >= 0), 0, out * log_a).astype(g.dtype, copy=False)
                gb = unbroadcast(g * conj(d), _shape(b))
        return ga, gb

    @staticmethod
    def backward_graph(ctx, g):
        a, b, out = ctx.saved_arrays
        na, nb = ctx.needs_input_grad
        A, B = operand(ctx, 0, a), operand(ctx, 1, b)
        ga = gb = None
        with np.errstate(all="ignore"):
            if na:
                if is_scalar(b):
                    ga = g * b * A ** (b - 1) if b != 0 else g * 0
                else:
                    ga = sum_to((g * B * A ** (B - 1)).where(Tensor._wrap(b != 0), 0.0), _shape(a))
            if nb:
                a_arr = xp_of(g._data).asarray(a, dtype=g.dtype) if is_scalar(a) else a
                A = A if isinstance(A, Tensor) else Tensor._wrap(a_arr)
                d = (node_output(ctx, out) * A.log()).where(Tensor._wrap(~((a_arr == 0) & (b >= 0))), 0.0)
                gb = sum_to(g * d, _shape(b))
        return ga, gb


def _scalar_pow(a, e):
    """a ** e for a number e. NumPy already takes e = 0.5 as sqrt (PyTorch too: NaN at -inf, -0
    at -0); PyTorch also takes e = -0.5 as 1 / sqrt, where C's pow says pow(-inf, -0.5) = +0
    and pow(-0, -0.5) = +inf instead of NaN and -inf."""
    if e == -0.5 and not isinstance(e, complex) and getattr(a, "dtype", None) is not None and a.dtype.kind == "f":
        return 1 / xp_of(a).sqrt(a)
    return a**e


def _int_pow(a, b):
    """Integer powers with an integer tensor exponent, as PyTorch: a negative exponent gives
    the integer part of 1 / a**|b| (1 for a = 1, ±1 for a = -1, else 0) where NumPy raises."""
    xp = xp_of(b)
    if not bool((b < 0).any()):
        return a**b
    a_arr = xp.asarray(a, dtype=b.dtype) if is_scalar(a) else a
    out = a_arr ** xp.maximum(b, 0)
    odd = (b % 2) != 0
    tiny = xp.where(a_arr == 1, 1, xp.where(a_arr == -1, xp.where(odd, -1, 1), 0)).astype(out.dtype)
    return xp.where(b < 0, tiny, out)


def pow(a, b):
    a, b = operands("pow", a, b)
    if (isinstance(a, Tensor) and a._data.dtype.kind in "iub" and is_scalar(b)
            and not isinstance(b, (bool, float)) and b < 0):
        raise DTypeError("Integers to negative integer powers are not allowed.")
    if isinstance(a, Tensor) and a._data.dtype.kind == "b" and is_scalar(b) and type(b) is int:
        a = cast(a, np.int64)  # bool ** int is int64 (PyTorch's promotion), not NumPy's int8
    return Pow.apply(a, b)


class _MaxMin(Function):
    """Elementwise max or min; where both are equal the gradient is split evenly (as PyTorch)."""

    which = None  # "maximum" or "minimum"

    @classmethod
    def forward(cls, ctx, a, b):
        ctx.save_for_backward(a, b)
        xp = xp_of(a if hasattr(a, "shape") else b)
        return getattr(xp, cls.which)(a, b)

    @classmethod
    def backward(cls, ctx, g):
        a, b = ctx.saved_arrays
        wins = (a > b) if cls.which == "maximum" else (a < b)
        wa = (wins + 0.5 * (a == b)).astype(g.dtype, copy=False)
        na, nb = ctx.needs_input_grad
        return (
            unbroadcast(g * wa, _shape(a)) if na else None,
            unbroadcast(g * (1 - wa), _shape(b)) if nb else None,
        )

    @classmethod
    def backward_graph(cls, ctx, g):
        a, b = ctx.saved_arrays
        wins = (a > b) if cls.which == "maximum" else (a < b)
        wa = Tensor._wrap((wins + 0.5 * (a == b)).astype(g.dtype, copy=False))  # piecewise constant
        na, nb = ctx.needs_input_grad
        return (sum_to(g * wa, _shape(a)) if na else None, sum_to(g * (1 - wa), _shape(b)) if nb else None)


class Maximum(_MaxMin):
    which = "maximum"


class Minimum(_MaxMin):
    which = "minimum"


def maximum(a, b):
    a, b = operands("maximum", a, b)
    _refuse_complex_pair(a, b, "maximum")
    return Maximum.apply(a, b)


def _refuse_complex_pair(a, b, name):
    for v in (a, b):
        if isinstance(v, Tensor):
            refuse_complex(v, f"{name}_cpu")


def minimum(a, b):
    a, b = operands("minimum", a, b)
    _refuse_complex_pair(a, b, "minimum")
    return Minimum.apply(a, b)


# ----------------------------------------------------------------------------- unary


class UnaryFunction(Function):
    """y = f(x), dy/dx = df(x, y): a subclass names its value ``f(xp, x)`` and derivative
    ``df(xp, x, out)`` and says which of input and output backward needs (``saves``: "x",
    "out" or "both"); only those are saved. Floating-point warnings are silenced by the engine
    (``tinymm.float_errors``), as PyTorch gives inf/NaN without a word."""

    saves = "x"

    @staticmethod
    def f(xp, x):
        raise NotImplementedError

    @staticmethod
    def df(xp, x, out):
        raise NotImplementedError

    @classmethod
    def forward(cls, ctx, x):
        xp = xp_of(x)
        out = cls.f(xp, x).astype(x.dtype, copy=False)
        ctx.save_for_backward(x if cls.saves != "out" else None, out if cls.saves != "x" else None)
        return out

    @classmethod
    def backward(cls, ctx, g):
        x, out = ctx.saved_arrays
        return (g * conj(cls.df(xp_of(g), x, out))).astype(g.dtype, copy=False)

    # True where ``df`` uses only what ``ops.graph_xp.XP`` offers, so it runs on Tensors too.
    df_on_tensors = False

    @classmethod
    def backward_graph(cls, ctx, g):
        from tinymm.ops.graph_xp import XP

        x, out = ctx.saved_arrays
        if not cls.df_on_tensors:
            return NotImplemented  # no formula: autograd_graph falls back to the first order only
        X = ctx.inputs[0] if x is not None else None
        Y = node_output(ctx, out) if out is not None else None
        with np.errstate(all="ignore"):
            d = cls.df(XP, X, Y)
        return g * as_dtype(d, g.dtype)


class Neg(Function):
    complex_grad = True  # cplx

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, g):
        return -g

    backward_graph = backward


def neg(x):
    x = as_tensor(x, "neg")
    if x._data.dtype.kind == "b":
        raise DTypeError("Negation, " + _BOOL_MINUS.format("on"))
    return Neg.apply(x)


class Exp(UnaryFunction):
    saves = "out"
    f = staticmethod(lambda xp, x: xp.exp(x))
    df = staticmethod(lambda xp, x, out: out)


def exp(x):
    return Exp.apply(to_inexact(as_tensor(x, "exp")))


class Log(UnaryFunction):
    f = staticmethod(lambda xp, x: xp.log(x))
    df = staticmethod(lambda xp, x, out: 1 / x)


def log(x):
    return Log.apply(to_inexact(as_tensor(x, "log")))


class Sqrt(UnaryFunction):
    saves = "out"
    f = staticmethod(lambda xp, x: xp.sqrt(x))
    df = staticmethod(lambda xp, x, out: 1 / (2 * out))


def sqrt(x):
    return Sqrt.apply(to_inexact(as_tensor(x, "sqrt")))


class Abs(UnaryFunction):
    """|x|; the gradient at 0 is 0 (sign(0) = 0), as in PyTorch."""

    f = staticmethod(lambda xp, x: xp.abs(x))
    df = staticmethod(lambda xp, x, out: xp.sign(x))


def abs(x):
    x = as_tensor(x, "abs")
    if x._data.dtype.kind == "b":  # PyTorch's abs has no bool kernel
        raise DTypeNotImplementedError("\"abs_cpu\" not implemented for 'Bool' (abs of a bool tensor is the tensor itself)")
    if x._data.dtype.kind == "c":  # cplx: |z| is real, its gradient g·z/|z|
        return complex_abs(x)
    return Abs.apply(x)


class Tanh(UnaryFunction):
    saves = "out"
    f = staticmethod(lambda xp, x: xp.tanh(x))
    df = staticmethod(lambda xp, x, out: 1 - out * out)


def tanh(input):
    return Tanh.apply(to_inexact(as_tensor(input, "tanh")))


def _stable_sigmoid(x):
    # exp of a non-positive number never overflows: σ(x) = 1/(1+e^{-x}) for x ≥ 0, e^x/(1+e^x) else.
    xp = xp_of(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


class Sigmoid(UnaryFunction):
    saves = "out"
    # complex z: 1/(1 + e^-z) directly (no sign to split on); holomorphic, so complex_grad
    f = staticmethod(lambda xp, x: 1 / (1 + xp.exp(-x)) if x.dtype.kind == "c" else _stable_sigmoid(x))
    df = staticmethod(lambda xp, x, out: out * (1 - out))
    complex_grad = True


def sigmoid(input):
    return Sigmoid.apply(to_inexact(as_tensor(input, "sigmoid")))


class Relu(UnaryFunction):
    saves = "out"
    f = staticmethod(lambda xp, x: xp.maximum(x, 0))
    df = staticmethod(lambda xp, x, out: out > 0)

    @classmethod
    def backward(cls, ctx, g):
        # A mask, not a product (PyTorch's threshold_backward): an inf or NaN gradient
        # arriving at a zero output stays out (lp_pool's zero windows rely on it).
        _, out = ctx.saved_arrays
        return keep_where(g, out > 0)


def relu(x):
    x = as_tensor(x, "relu")
    refuse_complex(x, "clamp is not supported for complex types")
    if x.dtype == np.bool_:
        raise DTypeError("relu: Boolean inputs not supported (as in PyTorch); convert with .float() or .int()")
    return Relu.apply(x)


class Silu(Function):
    """x·σ(x); derivative σ(x)·(1 + x·(1 − σ(x)))."""

    @staticmethod
    def forward(ctx, x):
        s = _stable_sigmoid(x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_arrays
        return g * s * (1 + x * (1 - s))

    @staticmethod
    def backward_graph(ctx, g):
        ctx.saved_arrays  # noqa: B018 (the in-place version check)
        x = ctx.inputs[0]
        s = x.sigmoid()
        return g * s * (1 + x * (1 - s))


def silu(x):
    return Silu.apply(floating_input(x, "silu", "silu_cpu"))


def erf_array(x):
    """erf on a NumPy/CuPy array (SciPy's, imported on first use)."""
    if xp_of(x) is np:
        from scipy.special import erf
    else:
        from cupyx.scipy.special import erf
    return erf(x).astype(x.dtype, copy=False)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _gelu_kernels():
    """``tinymm.kernels.gelu``, imported on first use (it compiles Numba loops)."""
    from tinymm.kernels import gelu

    return gelu


class Gelu(Function):
    """GELU. ``approximate="none"``: x·Φ(x) with Φ from erf (the fused kernels of
    :mod:`tinymm.kernels.gelu`); ``"tanh"``: PyTorch's tanh form
    0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))."""

    @staticmethod
    def forward(ctx, x, approximate="none"):
        ctx.approximate = approximate
        xp = xp_of(x)
        if approximate == "tanh":
            t = xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))
            ctx.save_for_backward(x, t)
            return 0.5 * x * (1 + t)
        # x·Φ(x) in one compiled pass (tinymm.kernels.gelu, float32/float64; float16 goes
        # through float32); backward recomputes Φ from x.
        ctx.save_for_backward(x, None)
        if x.dtype.itemsize < 4:
            return _gelu_kernels().forward(x.astype(np.float32)).astype(x.dtype)
        return _gelu_kernels().forward(x)

    @staticmethod
    def backward(ctx, g):
        x, aux = ctx.saved_arrays
        if ctx.approximate == "tanh":
            t = aux
            du = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)
        if x.dtype.itemsize < 4:
            return _gelu_kernels().backward(g.astype(np.float32), x.astype(np.float32)).astype(x.dtype)
        return _gelu_kernels().backward(g, x)

    @staticmethod
    def backward_graph(ctx, g):
        ctx.saved_arrays  # noqa: B018 (the in-place version check)
        x = ctx.inputs[0]
        if ctx.approximate == "tanh":
            t = (_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)).tanh()
            du = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)
        cdf = 0.5 * (1 + (x * (1 / math.sqrt(2.0))).erf())
        pdf = (x * x * -0.5).exp() * (1 / math.sqrt(2 * math.pi))
        return g * (cdf + x * pdf)


def gelu(x, approximate: str = "none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return Gelu.apply(floating_input(x, "gelu", "GeluKernelImpl"), approximate)


class Clamp(Function):
    """Clamp to [lo, hi]; the gradient passes where lo ≤ x ≤ hi (bounds inclusive, as PyTorch)."""

    @staticmethod
    def forward(ctx, x, lo=None, hi=None):
        ctx.save_for_backward(x)
        ctx.bounds = (lo, hi)
        xp = xp_of(x)
        out = x
        if lo is not None:
            out = xp.maximum(out, lo)
        if hi is not None:
            out = xp.minimum(out, hi)
        return out.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        lo, hi = ctx.bounds
        keep = True
        if lo is not None:
            keep = keep & (x >= lo)
        if hi is not None:
            keep = keep & (x <= hi)
        return g * keep

    @staticmethod
    def backward_graph(ctx, g):
        (x,) = ctx.saved_arrays
        return g * Tensor._wrap(Clamp.backward(ctx, xp_of(x).ones_like(x)))


def clamp(x, min=None, max=None):
    x = as_tensor(x, "clamp")
    refuse_complex(x, "clamp is not supported for complex types")
    if min is None and max is None:
        raise ValueRangeError("clamp: at least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        from tinymm.ops.index import where
        from tinymm.ops.promotion import result_dtype_of

        # the result takes the dtype of x and both bounds together (int8 x with a uint8 bound
        # is int16, an int x with a float bound float), as PyTorch's clamp
        to = result_dtype_of(x, min, max)
        x, min, max = (cast(v, to) if isinstance(v, Tensor) and v._data.dtype != to.dtype else v
                       for v in (x, min, max))
        # where, not maximum/minimum: at a tie x == bound the whole gradient goes to x, as
        # PyTorch's clamp (maximum would split it); a NaN bound gives NaN
        xp = xp_of(x._data)
        out = x
        if min is not None:
            lo = min._data if isinstance(min, Tensor) else min
            out = where(Tensor._wrap((out._data < lo) | xp.isnan(lo)), min, out)
        if max is not None:
            hi = max._data if isinstance(max, Tensor) else max
            out = where(Tensor._wrap((out._data > hi) | xp.isnan(hi)), max, out)
        return out
    if x._data.dtype.kind in "iub" and any(isinstance(v, float) for v in (min, max)):
        x = to_float(x)  # a float bound promotes an integer tensor, as PyTorch's type promotion
    elif x._data.dtype.kind == "b" and any(type(v) is int for v in (min, max)):
        x = cast(x, np.int64)  # and an int bound a bool one
    if x._data.dtype.kind in "iu":
        min, max = (_integer_bound(v, x._data.dtype, name) for v, name in ((min, "min"), (max, "max")))
    return Clamp.apply(x, min, max)


# PyTorch's names of the integer types in its overflow message
_C_INT_NAMES = {"uint8": "uint8_t", "int8": "int8_t", "int16": "int16_t", "int32": "int", "int64": "int64_t",
                "uint16": "uint16_t", "uint32": "uint32_t", "uint64": "uint64_t"}


def _integer_bound(value, dtype, name):
    """A Python int bound of an integer tensor's clamp, as PyTorch takes it: within the dtype's
    range, or for an unsigned dtype down to -(2**bits - 1), wrapped modulo 2**bits (uint8: -5
    is 251); anything else is refused (NumPy would raise its own OverflowError mid-op)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        return value
    value = int(value)
    if not -2**63 <= value < 2**64:
        raise OverflowError(f"clamp: {name}={value} does not fit in 64 bits (int too big to convert)")
    info = np.iinfo(dtype)
    low = -int(info.max) if info.min == 0 else int(info.min)
    if not low <= value <= int(info.max):
        raise ValueRangeError(f"clamp: {name}={value} is outside {dtype}'s range: value cannot be converted to type "
                           f"{_C_INT_NAMES.get(dtype.name, dtype.name)} without overflow")
    return value % (int(info.max) + 1) if value < 0 and info.min == 0 else value


# ----------------------------------------------------------------------------- comparisons
# Comparisons and logical ops give boolean tensors and carry no gradient: no Function.

_CMP = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal"}


def compare(a, b, op: str) -> Tensor:
    """Elementwise comparison ``op`` (one of ``_CMP``'s keys); a boolean tensor."""
    if b is None and op in ("eq", "ne"):  # ``t == None`` is a plain bool in PyTorch
        return op == "ne"
    a, b = operands(op, a, b)
    if op not in ("eq", "ne") and any(getattr(v, "dtype", None) is not None and v.dtype.kind == "c" or type(v) is complex
                                      for v in (a, b)):  # cplx: complex numbers have no order
        dt = next(v.dtype for v in (a, b) if isinstance(v, Tensor))
        raise DTypeError(f"\"{op}_cpu\" not implemented for '{torch_dtype_name(dt)}'")
    ad = a._data if isinstance(a, Tensor) else a
    bd = b._data if isinstance(b, Tensor) else b
    xp = xp_of(ad if isinstance(a, Tensor) else bd)
    return Tensor._wrap(getattr(xp, _CMP[op])(ad, bd))


def logical_not(x) -> Tensor:
    x = as_tensor(x, "logical_not")
    if x.dtype.kind == "b":
        return Tensor._wrap(~x._data)
    return Tensor._wrap(x._data == 0)


def _comparison(op: str):
    def fn(input, other) -> Tensor:
        return compare(input, other, op)

    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = f"``torch.{op}``: elementwise ``{_CMP[op]}`` of a tensor and a tensor or scalar (broadcast); bool."
    return fn


eq, ne, lt, le, gt, ge = (_comparison(op) for op in ("eq", "ne", "lt", "le", "gt", "ge"))


# ----------------------------------------------------------------------------- fused multiply-adds


def addcmul(input, tensor1, tensor2, *, value=1):
    """input + value · tensor1 · tensor2 (all broadcast), computed in the dtype of all three
    (a uint8 product wrapped before meeting an int8 input; probe16)."""
    from tinymm.ops.promotion import result_dtype_of

    if all(isinstance(t, Tensor) for t in (input, tensor1, tensor2)):
        to = result_dtype_of(input, tensor1, tensor2)
        tensor1, tensor2 = (cast(t, to) if t._data.dtype != to.dtype else t for t in (tensor1, tensor2))
    prod = mul(tensor1, tensor2)
    return add(input, prod if value == 1 else mul(prod, value))


def addcdiv(input, tensor1, tensor2, *, value=1):
    """input + value · tensor1 / tensor2; integer tensor1 and tensor2 are refused, as PyTorch
    (integer division there is ambiguous)."""
    t1, t2 = as_tensor(tensor1, "addcdiv"), as_tensor(tensor2, "addcdiv")
    if t1.dtype.kind not in "fc" and t2.dtype.kind not in "fc":
        raise DTypeError("addcdiv: integer division with addcdiv is no longer supported; use a floating "
                         f"tensor1 or tensor2 (got {t1.dtype} and {t2.dtype})")
    q = div(t1, t2)
    return add(input, q if value == 1 else mul(q, value))


for _op in (Exp, Log, Sqrt, Abs, Tanh, Sigmoid, Relu):  # their df runs on Tensors (see UnaryFunction)
    _op.df_on_tensors = True
