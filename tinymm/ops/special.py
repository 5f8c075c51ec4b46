"""Special functions on tensors: ``erfinv``, ``lgamma``, ``digamma``, ``logit``.

Values come from ``scipy.special`` on NumPy arrays and ``cupyx.scipy.special`` on CuPy ones,
imported on first use. Derivatives: erfinv' = (√π/2)·exp(erfinv(x)²), lgamma' = digamma,
digamma' = polygamma(1, ·) (the trigamma function), logit' = 1/(x(1 − x)).
Integer input is promoted to the default float dtype, as PyTorch does.
"""
from __future__ import annotations

import math

import numpy as np

from tinymm.autograd import Function
from tinymm.autograd_graph import operand
from tinymm.ops._util import ShapeError, xp_of
from tinymm.ops.convert import as_tensor, to_float
from tinymm.ops.elementwise import UnaryFunction
from tinymm.ops.graph_xp import XP
from tinymm.tensor import Tensor


def special_of(x):
    """``scipy.special`` for NumPy arrays, ``cupyx.scipy.special`` for CuPy arrays."""
    if xp_of(x) is np:
        import scipy.special as sp
    else:
        import cupyx.scipy.special as sp
    return sp


class TensorSpecial:
    """The ``scipy.special`` names that derivatives use, as differentiable Tensor ops: what
    ``special_for`` gives for create_graph's ``XP``, so lgamma'' = digamma' = polygamma(1, ·)
    and so on are recorded like any op. ``special_fns`` adds its Bessel functions here."""

    @staticmethod
    def digamma(x):
        return digamma(x)

    @staticmethod
    def polygamma(n, x):
        return polygamma(n, x)


def special_for(xp, x):
    """``scipy.special`` (or CuPy's) for arrays; ``TensorSpecial`` for create_graph's ``XP``."""
    return _TENSOR_SPECIAL if xp is XP else special_of(x)


_TENSOR_SPECIAL = TensorSpecial()


def _as_dtype(d, x):
    """d in x's dtype (SciPy's polygamma gives float64 for float32 input); Tensors pass."""
    return d if isinstance(d, Tensor) else d.astype(x.dtype, copy=False)


class Erfinv(UnaryFunction):
    saves = "out"
    df_on_tensors = True
    f = staticmethod(lambda xp, x: special_of(x).erfinv(x))
    df = staticmethod(lambda xp, x, out: (math.sqrt(math.pi) / 2) * xp.exp(out * out))


class Lgamma(UnaryFunction):
    df_on_tensors = True
    # log|Γ(−inf)| is +inf as PyTorch (scipy's gammaln gives −inf there)
    f = staticmethod(lambda xp, x: xp.where(xp.isneginf(x), xp.inf, special_of(x).gammaln(x)).astype(x.dtype, copy=False))
    df = staticmethod(lambda xp, x, out: special_for(xp, x).digamma(x))


class Digamma(UnaryFunction):
    df_on_tensors = True
    f = staticmethod(lambda xp, x: special_of(x).digamma(x))
    df = staticmethod(lambda xp, x, out: _as_dtype(special_for(xp, x).polygamma(1, x), x))


def erfinv(x):
    """Inverse error function on (−1, 1) (±inf at ±1, NaN outside)."""
    return Erfinv.apply(to_float(as_tensor(x, "erfinv")))


def lgamma(x):
    """log|Γ(x)|."""
    return Lgamma.apply(to_float(as_tensor(x, "lgamma")))


def digamma(x):
    """ψ(x) = d/dx log Γ(x)."""
    return Digamma.apply(to_float(as_tensor(x, "digamma")))


class Polygamma(Function):
    @staticmethod
    def forward(ctx, x, n):
        ctx.n = n
        ctx.save_for_backward(x)
        return special_of(x).polygamma(n, x).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return (g * special_of(x).polygamma(ctx.n + 1, x)).astype(g.dtype, copy=False)

    @staticmethod
    def backward_graph(ctx, g):
        (x,) = ctx.saved_arrays
        return g * polygamma(ctx.n + 1, operand(ctx, 0, x))


def polygamma(n, input, *, out=None):
    """``torch.polygamma(n, input)``: the n-th derivative of the digamma function."""
    if int(n) != n or n < 0:
        raise ShapeError(f"polygamma(n, x) does not support negative n, got n={n}")
    return Polygamma.apply(to_float(as_tensor(input, "polygamma")), int(n))


class Logit(Function):
    """log(z/(1 − z)) with z = x clamped to [eps, 1 − eps] when eps is given; the gradient is
    1/(x(1 − x)) inside that range and 0 outside it; without eps it is NaN outside [0, 1]
    (as PyTorch)."""

    @staticmethod
    def forward(ctx, x, eps):
        xp = xp_of(x)
        # x < eps → eps, then x > 1 − eps → 1 − eps, in PyTorch's order (np.clip differs when eps > ½)
        z = x if eps is None else xp.where(x < eps, eps, xp.where(x > 1 - eps, 1 - eps, x)).astype(x.dtype, copy=False)
        ctx.eps = eps
        ctx.save_for_backward(x)
        with np.errstate(all="ignore"):
            return xp.log(z / (1 - z)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        xp = xp_of(g)
        with np.errstate(all="ignore"):
            d = g / (x * (1 - x))
        if ctx.eps is not None:
            d = xp.where((x < ctx.eps) | (x > 1 - ctx.eps), 0, d)
        else:
            d = xp.where((x < 0) | (x > 1), xp.nan, d)
        return d.astype(g.dtype, copy=False)

    @staticmethod
    def backward_graph(ctx, g):
        (x,) = ctx.saved_arrays
        X = operand(ctx, 0, x)
        d = g / (X * (1 - X))
        xp = xp_of(x)
        if ctx.eps is not None:
            return d.where(Tensor._wrap(~((x < ctx.eps) | (x > 1 - ctx.eps))), 0.0)
        return d.where(Tensor._wrap(~((x < 0) | (x > 1))), xp.nan)


def logit(x, eps=None):
    """log(x/(1 − x)), the inverse of sigmoid; ``eps`` clamps x to [eps, 1 − eps] first."""
    return Logit.apply(to_float(as_tensor(x, "logit")), None if eps is None else float(eps))
