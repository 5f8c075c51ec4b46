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
from tinymm.ops._util import xp_of
from tinymm.ops.convert import as_tensor, to_float
from tinymm.ops.elementwise import UnaryFunction


def special_of(x):
    """``scipy.special`` for NumPy arrays, ``cupyx.scipy.special`` for CuPy arrays."""
    if xp_of(x) is np:
        import scipy.special as sp
    else:
        import cupyx.scipy.special as sp
    return sp


class Erfinv(UnaryFunction):
    saves = "out"
    f = staticmethod(lambda xp, x: special_of(x).erfinv(x))
    df = staticmethod(lambda xp, x, out: (math.sqrt(math.pi) / 2) * xp.exp(out * out))


class Lgamma(UnaryFunction):
    # log|Γ(−inf)| is +inf as PyTorch (scipy's gammaln gives −inf there)
    f = staticmethod(lambda xp, x: xp.where(xp.isneginf(x), xp.inf, special_of(x).gammaln(x)).astype(x.dtype, copy=False))
    df = staticmethod(lambda xp, x, out: special_of(x).digamma(x))


class Digamma(UnaryFunction):
    f = staticmethod(lambda xp, x: special_of(x).digamma(x))
    df = staticmethod(lambda xp, x, out: special_of(x).polygamma(1, x).astype(x.dtype, copy=False))


def erfinv(x):
    """Inverse error function on (−1, 1) (±inf at ±1, NaN outside)."""
    return Erfinv.apply(to_float(as_tensor(x, "erfinv")))


def lgamma(x):
    """log|Γ(x)|."""
    return Lgamma.apply(to_float(as_tensor(x, "lgamma")))


def digamma(x):
    """ψ(x) = d/dx log Γ(x)."""
    return Digamma.apply(to_float(as_tensor(x, "digamma")))


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


def logit(x, eps=None):
    """log(x/(1 − x)), the inverse of sigmoid; ``eps`` clamps x to [eps, 1 − eps] first."""
    return Logit.apply(to_float(as_tensor(x, "logit")), None if eps is None else float(eps))
