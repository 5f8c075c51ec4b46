"""Activation functions that only ``torch.nn.functional`` has (floor 4): elu, celu, selu,
leaky_relu, relu6, hardtanh, hardsigmoid, hardswish, mish, softplus, softsign, logsigmoid,
softmin, tanhshrink, threshold, glu, prelu, hardshrink, softshrink, rrelu, gumbel_softmax.

Each pointwise activation is one ``_Pointwise`` Function naming its value ``f(xp, x, *params)``
and its derivative ``df(xp, x, *params)`` with PyTorch's choices at the kinks (hardtanh's
gradient is 0 at the bounds, elu's is alpha at 0, hardswish's switches at ±3 as PyTorch's).
Integer and bool input is refused where PyTorch's kernel refuses it (``ops.float_only``);
softsign and tanhshrink promote integers (their formulas do in PyTorch), hardtanh/relu6 clamp
integers in their own dtype, as PyTorch.
"""
from __future__ import annotations

import warnings

import numpy as np

from tinymm import backend
from tinymm import ops as O
from tinymm.autograd import Function
from tinymm.autograd_graph import as_dtype
from tinymm.ops.float_only import floating_input
from tinymm.ops.inplace import apply_inplace
from tinymm.ops._util import xp_of
from tinymm.tensor import Tensor


class _Pointwise(Function):
    @classmethod
    def forward(cls, ctx, x, *params):
        ctx.params = params
        ctx.save_for_backward(x)
        with np.errstate(all="ignore"):
            return xp_of(x).asarray(cls.f(xp_of(x), x, *params)).astype(x.dtype, copy=False)

    @classmethod
    def backward(cls, ctx, g):
        (x,) = ctx.saved_arrays
        with np.errstate(all="ignore"):
            return (g * cls.df(xp_of(g), x, *ctx.params)).astype(g.dtype, copy=False)

    # True where ``df`` uses only what ``ops.graph_xp.XP`` offers, so it runs on Tensors too.
    df_on_tensors = False

    @classmethod
    def backward_graph(cls, ctx, g):
        from tinymm.ops.graph_xp import XP

        ctx.saved_arrays  # noqa: B018 (the in-place version check)
        if not cls.df_on_tensors:
            return NotImplemented  # no formula: autograd_graph falls back to the first order only
        with np.errstate(all="ignore"):
            return g * as_dtype(cls.df(XP, ctx.inputs[0], *ctx.params), g.dtype)


def _softplus(xp, x):
    """log(1 + eˣ) without overflow."""
    return xp.logaddexp(0, x)


def _sigmoid(xp, x):
    return xp.exp(-_softplus(xp, -x))


class Elu(_Pointwise):
    f = staticmethod(lambda xp, x, a: xp.where(x > 0, x, a * xp.expm1(xp.minimum(x, 0))))
    df = staticmethod(lambda xp, x, a: xp.where(x > 0, 1, a * xp.exp(xp.minimum(x, 0))))


class Celu(_Pointwise):
    f = staticmethod(lambda xp, x, a: xp.where(x > 0, x, a * xp.expm1(xp.minimum(x, 0) / a)))
    df = staticmethod(lambda xp, x, a: xp.where(x > 0, 1, xp.exp(xp.minimum(x, 0) / a)))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


class Selu(_Pointwise):
    f = staticmethod(lambda xp, x: _SELU_SCALE * xp.where(x > 0, x, _SELU_ALPHA * xp.expm1(xp.minimum(x, 0))))
    df = staticmethod(lambda xp, x: _SELU_SCALE * xp.where(x > 0, 1, _SELU_ALPHA * xp.exp(xp.minimum(x, 0))))


class LeakyRelu(_Pointwise):
    f = staticmethod(lambda xp, x, s: xp.where(x > 0, x, x * s))
    df = staticmethod(lambda xp, x, s: xp.where(x > 0, 1, s))


class Hardtanh(_Pointwise):
    f = staticmethod(lambda xp, x, lo, hi: xp.clip(x, lo, hi))
    df = staticmethod(lambda xp, x, lo, hi: (x > lo) & (x < hi))


class Hardsigmoid(_Pointwise):
    f = staticmethod(lambda xp, x: xp.clip(x / 6 + 0.5, 0, 1))
    df = staticmethod(lambda xp, x: ((x > -3) & (x < 3)) / 6)


class Hardswish(_Pointwise):
    f = staticmethod(lambda xp, x: x * xp.clip(x + 3, 0, 6) / 6)
    df = staticmethod(lambda xp, x: xp.where(x < -3, 0, xp.where(x <= 3, x / 3 + 0.5, 1)))


class Mish(_Pointwise):
    f = staticmethod(lambda xp, x: x * xp.tanh(_softplus(xp, x)))

    @staticmethod
    def df(xp, x):
        t = xp.tanh(_softplus(xp, x))
        return t + x * _sigmoid(xp, x) * (1 - t * t)


class Softplus(_Pointwise):
    f = staticmethod(lambda xp, x, beta, th: xp.where(x * beta > th, x, _softplus(xp, x * beta) / beta))
    df = staticmethod(lambda xp, x, beta, th: xp.where(x * beta > th, 1, _sigmoid(xp, x * beta)))


class Softsign(_Pointwise):
    f = staticmethod(lambda xp, x: x / (1 + xp.abs(x)))
    df = staticmethod(lambda xp, x: 1 / (1 + xp.abs(x)) ** 2)


class LogSigmoid(_Pointwise):
    f = staticmethod(lambda xp, x: -_softplus(xp, -x))
    df = staticmethod(lambda xp, x: _sigmoid(xp, -x))


class Tanhshrink(_Pointwise):
    f = staticmethod(lambda xp, x: x - xp.tanh(x))
    df = staticmethod(lambda xp, x: xp.tanh(x) ** 2)


class Threshold(_Pointwise):
    f = staticmethod(lambda xp, x, th, v: xp.where(x > th, x, v))
    df = staticmethod(lambda xp, x, th, v: x > th)


class Hardshrink(_Pointwise):
    f = staticmethod(lambda xp, x, lam: xp.where(xp.abs(x) > lam, x, 0))
    df = staticmethod(lambda xp, x, lam: xp.abs(x) > lam)


class Softshrink(_Pointwise):
    f = staticmethod(lambda xp, x, lam: xp.where(x > lam, x - lam, xp.where(x < -lam, x + lam, 0)))
    df = staticmethod(lambda xp, x, lam: xp.abs(x) > lam)


def _float(x, name):
    return O.to_float(O.as_tensor(x, name))


def elu(input, alpha: float = 1.0, inplace: bool = False):
    if inplace:
        return apply_inplace("elu_", lambda t: elu(t, alpha), input)
    return Elu.apply(floating_input(input, "elu", "elu_cpu"), float(alpha))


def celu(input, alpha: float = 1.0, inplace: bool = False):
    if inplace:
        return apply_inplace("celu_", lambda t: celu(t, alpha), input)
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0")
    return Celu.apply(floating_input(input, "celu", "elu_cpu"), float(alpha))


def selu(input, inplace: bool = False):
    if inplace:
        return apply_inplace("selu_", selu, input)
    return Selu.apply(floating_input(input, "selu", "elu_cpu"))


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):
    if inplace:
        return apply_inplace("leaky_relu_", lambda t: leaky_relu(t, negative_slope), input)
    return LeakyRelu.apply(floating_input(input, "leaky_relu", "leaky_relu_cpu"), float(negative_slope))


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
    if inplace:
        return apply_inplace("hardtanh_", lambda t: hardtanh(t, min_val, max_val), input)
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    x = O.as_tensor(input, "hardtanh")
    if x._data.dtype.kind == "b":
        raise O.DTypeError(f"Bool inputs not supported for hardtanh (got {x.dtype})")
    if x._data.dtype.kind in "iu":
        # PyTorch clamps integers in their own dtype, the bounds cast to it (relu6 on a LongTensor
        # stays a LongTensor)
        return Tensor._wrap(xp_of(x._data).clip(x._data, int(min_val), int(max_val)).astype(x._data.dtype))
    return Hardtanh.apply(_float(x, "hardtanh"), float(min_val), float(max_val))


def relu6(input, inplace: bool = False):
    if inplace:
        return apply_inplace("relu6_", relu6, input)
    return hardtanh(input, 0.0, 6.0)


def hardsigmoid(input, inplace: bool = False):
    if inplace:
        return apply_inplace("hardsigmoid_", hardsigmoid, input)
    return Hardsigmoid.apply(floating_input(input, "hardsigmoid", "hardsigmoid_cpu"))


def hardswish(input, inplace: bool = False):
    if inplace:
        return apply_inplace("hardswish_", hardswish, input)
    return Hardswish.apply(floating_input(input, "hardswish", "hardswish_cpu"))


def mish(input, inplace: bool = False):
    if inplace:
        return apply_inplace("mish_", mish, input)
    return Mish.apply(floating_input(input, "mish", "mish_cpu"))


def softplus(input, beta: float = 1.0, threshold: float = 20.0):
    return Softplus.apply(floating_input(input, "softplus", "softplus_cpu"), float(beta), float(threshold))


def softsign(input):
    return Softsign.apply(floating_input(input, "softsign", "abs_cpu", ints_promote=True))


def logsigmoid(input):
    return LogSigmoid.apply(floating_input(input, "logsigmoid", "log_sigmoid_cpu"))


def tanhshrink(input):
    return Tanhshrink.apply(floating_input(input, "tanhshrink", "sub", ints_promote=True))


def _threshold(input, threshold_, value):
    return Threshold.apply(_float(input, "threshold"), float(threshold_), float(value))


def threshold(input, threshold: float, value: float, inplace: bool = False):
    if inplace:
        return apply_inplace("threshold_", lambda t: _threshold(t, threshold, value), input)
    return Threshold.apply(_float(input, "threshold"), float(threshold), float(value))


def softmin(input, dim=None, _stacklevel: int = 3, dtype=None):
    """softmax(−x) along ``dim``."""
    x = O.as_tensor(input, "softmin")
    if dtype is not None:
        x = O.cast(x, dtype)
    return O.softmax(O.neg(x), _implicit_dim("softmin", x.ndim) if dim is None else dim)


def glu(input, dim: int = -1):
    """a·σ(b) where a, b are the two halves of ``input`` along ``dim``."""
    x = floating_input(input, "glu", "glu_cpu")
    d = dim % max(x.ndim, 1)
    if x.ndim == 0 or x.shape[d] % 2:
        raise O.ShapeError(f"glu: halving dimension {dim} of shape {tuple(x.shape)} must have an even size")
    a, b = O.chunk(x, 2, d)
    return a * O.sigmoid(b)


def prelu(input, weight):
    """max(0, x) + weight·min(0, x); a weight of C values applies per channel (dim 1)."""
    x = O.as_tensor(input, "prelu")
    w = O.as_tensor(weight, "prelu")
    if w.numel() != 1 and (x.ndim < 2 or w.numel() != x.shape[1]):
        raise O.ShapeError(f"prelu: weight has {w.numel()} values, input {tuple(x.shape)} has {x.shape[1] if x.ndim > 1 else 1} channels")
    if w.numel() != 1:
        w = O.reshape(w, (1, -1) + (1,) * (x.ndim - 2))
    return O.where(x > 0, x, w * x)




def hardshrink(input, lambd: float = 0.5):
    """x where |x| > lambd, else 0."""
    return Hardshrink.apply(floating_input(input, "hardshrink", "hardshrink_cpu"), float(lambd))


def softshrink(input, lambd: float = 0.5):
    """x − lambd above lambd, x + lambd below −lambd, else 0."""
    if lambd < 0:
        raise ValueError(f"softshrink: lambda must be greater or equal to 0, but found to be {lambd}.")
    return Softshrink.apply(floating_input(input, "softshrink", "softshrink_check"), float(lambd))


def rrelu(input, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False, inplace: bool = False):
    """Randomised leaky ReLU: in training each negative element gets its own slope drawn from
    U(lower, upper); in evaluation the slope is (lower + upper)/2."""
    if inplace:
        return apply_inplace("rrelu_", lambda t: rrelu(t, lower, upper, training), input)
    x = floating_input(input, "rrelu", "leaky_relu_cpu")
    if not training:
        return leaky_relu(x, (lower + upper) / 2)
    slopes = backend.rng(x.device).uniform(lower, upper, size=x.shape).astype(x.dtype)
    return x * O.where(x >= 0, 1.0, Tensor._wrap(slopes))


def gumbel_softmax(logits, tau: float = 1.0, hard: bool = False, eps: float = 1e-10, dim: int = -1):
    """softmax((logits + g)/tau) with g ~ Gumbel(0, 1); ``hard`` returns the one-hot argmax in
    the forward pass with the soft sample's gradient (straight-through)."""
    x = _float(logits, "gumbel_softmax")
    g = -np.log(backend.rng(x.device).exponential(1.0, size=x.shape)).astype(x.dtype)
    y = O.softmax((x + Tensor._wrap(g)) / tau, dim)
    if not hard:
        return y
    xp = xp_of(y._data)
    idx = y._data.argmax(axis=dim)
    hard_arr = xp.zeros_like(y._data)
    xp.put_along_axis(hard_arr, xp.expand_dims(idx, dim), 1, axis=dim)
    return Tensor._wrap(hard_arr) - y.detach() + y


# revc: PyTorch's ``inplace`` for the two activations that ``tinymm.ops`` defines


def relu(input, inplace: bool = False):
    """max(x, 0) (``tinymm.relu``); ``inplace`` writes it into ``input``."""
    if inplace:
        return apply_inplace("relu_", O.relu, input)
    return O.relu(input)


def silu(input, inplace: bool = False):
    """x·σ(x) (``tinymm.silu``); ``inplace`` writes it into ``input``."""
    if inplace:
        return apply_inplace("silu_", O.silu, input)
    return O.silu(input)


def _implicit_dim(name: str, ndim: int) -> int:
    """PyTorch's legacy choice when a softmax gets no ``dim``: 0 for 0-, 1- and 3-D inputs,
    else 1; with its deprecation warning."""
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X "
                  "as an argument.", UserWarning, stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel: int = 3, dtype=None):
    """``tinymm.softmax`` with PyTorch's functional signature: ``dim=None`` picks the legacy
    implicit dim (see ``_implicit_dim``)."""
    x = O.as_tensor(input, "softmax")
    return O.softmax(x, _implicit_dim("softmax", x.ndim) if dim is None else dim, dtype)


def log_softmax(input, dim=None, _stacklevel: int = 3, dtype=None):
    """``tinymm.log_softmax`` with PyTorch's functional signature (``dim=None``: implicit dim)."""
    x = O.as_tensor(input, "log_softmax")
    return O.log_softmax(x, _implicit_dim("log_softmax", x.ndim) if dim is None else dim, dtype)


# their df runs on Tensors (see _Pointwise.backward_graph)
for _op in (Elu, Celu, Selu, LeakyRelu, Hardtanh, Hardsigmoid, Hardswish, Softplus, Softsign, LogSigmoid,
            Tanhshrink, Threshold, Hardshrink, Softshrink, Mish):
    _op.df_on_tensors = True
