"""``VonMises``: the circular normal on [−π, π): density exp(κ·cos(x − loc)) / (2π·I₀(κ)).

log I₀ and log I₁ (the modified Bessel functions) come from scipy's exponentially scaled
``ive``, exact to float64 rounding, with d/dκ log I₀ = I₁/I₀ and d/dκ log I₁ = I₀/I₁ − 1/κ.
PyTorch evaluates them with polynomial approximations (|relative error| ≲ 1e-7), so values
agree to that accuracy, not to the last bit. Draws use Best & Fisher's (1979) rejection
sampler, in float64; there is no rsample (as PyTorch).
"""
from __future__ import annotations

import math

import numpy as np

from tinymm import backend
from tinymm.autograd import Function
from tinymm.distributions import constraints
from tinymm.distributions.distribution import Distribution
from tinymm.distributions.utils import batch_shape_of, broadcast_all
from tinymm.ops._util import xp_of
from tinymm.ops.special import special_of
from tinymm.tensor import Size, Tensor

__all__ = ["VonMises", "log_modified_bessel"]


class LogModifiedBessel(Function):
    """log Iₙ(x) for n = 0 or 1 and x > 0. Saves x and ive(0, x), ive(1, x)."""

    @staticmethod
    def forward(ctx, x, order):
        sp = special_of(x)
        i0e, i1e = sp.ive(0, x), sp.ive(1, x)
        ctx.order = order
        ctx.save_for_backward(x, i0e, i1e)
        return (xp_of(x).log(i0e if order == 0 else i1e) + x).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x, i0e, i1e = ctx.saved_arrays
        d = i1e / i0e if ctx.order == 0 else i0e / i1e - 1 / x
        return (g * d).astype(g.dtype, copy=False), None


def log_modified_bessel(x, order: int = 0):
    """log I_order(x) of a positive tensor, order 0 or 1, differentiable in x."""
    if order not in (0, 1):
        raise ValueError(f"log_modified_bessel: order must be 0 or 1, got {order}")
    return LogModifiedBessel.apply(x, order)


def _rejection_sample(loc, kappa, rng):
    """Best & Fisher's sampler on float64 arrays of one shape: wrapped to [−π, π)."""
    tau = 1 + np.sqrt(1 + 4 * kappa**2)
    rho = (tau - np.sqrt(2 * tau)) / (2 * kappa)
    with np.errstate(all="ignore"):
        r = np.where(kappa < 1e-5, 1 / kappa + kappa, (1 + rho**2) / (2 * rho))
    x = np.zeros(loc.shape)
    done = np.zeros(loc.shape, dtype=bool)
    while not done.all():
        u1, u2, u3 = rng.random((3,) + loc.shape)
        z = np.cos(math.pi * u1)
        f = (1 + r * z) / (r + z)
        c = kappa * (r - f)
        with np.errstate(all="ignore"):
            accept = ((c * (2 - c) - u2) > 0) | (np.log(c / u2) + 1 - c >= 0)
        new = accept & ~done
        x = np.where(new, np.sign(u3 - 0.5) * np.arccos(np.clip(f, -1, 1)), x)
        done |= accept
    return (x + math.pi + loc) % (2 * math.pi) - math.pi


class VonMises(Distribution):
    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.real
    has_rsample = False

    def __init__(self, loc, concentration, validate_args=None):
        self.loc, self.concentration = broadcast_all(loc, concentration)
        super().__init__(batch_shape_of((loc, concentration), self.loc), validate_args=validate_args)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        k = self.concentration
        return k * (value - self.loc).cos() - math.log(2 * math.pi) - log_modified_bessel(k, order=0)

    def sample(self, sample_shape=Size()):
        shape = tuple(self._extended_shape(sample_shape))
        loc = np.broadcast_to(np.asarray(self.loc.detach().numpy(), np.float64), shape)
        kappa = np.broadcast_to(np.asarray(self.concentration.detach().numpy(), np.float64), shape)
        x = _rejection_sample(loc, kappa, backend.rng("cpu"))
        return Tensor._wrap(backend.to_device(x.astype(self.loc.dtype), self.loc.device))

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        k = self.concentration
        return 1 - (log_modified_bessel(k, order=1) - log_modified_bessel(k, order=0)).exp()
