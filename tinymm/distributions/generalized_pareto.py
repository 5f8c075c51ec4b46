"""``GeneralizedPareto(loc, scale, concentration)``, as PyTorch's
``torch.distributions.generalized_pareto``: with z = (x − loc)/scale and ξ = concentration,

    log p(x) = −log scale − (1/ξ + 1)·log(1 + ξz)      (ξ ≠ 0),   −log scale − z   (ξ = 0),
    log S(x) = −log(1 + ξz)/ξ                            (ξ ≠ 0),   −z               (ξ = 0),

on x ≥ loc (and x ≤ loc − scale/ξ when ξ < 0). "ξ = 0" means isclose(ξ, 0) (rtol 1e-5,
atol 1e-8), where the ξ ≠ 0 branch is evaluated at ξ = 1 to keep its gradient finite.
rsample is the inverse CDF at a uniform draw, so it is differentiable in all three
parameters. Mean (ξ < 1) and variance (ξ < ½) are NaN outside their domains.
"""
from __future__ import annotations

import math

import numpy as np

from tinymm.distributions import constraints
from tinymm.distributions.distribution import Distribution
from tinymm.distributions.utils import batch_shape_of, broadcast_all, draw
from tinymm.factories import ones_like, zeros_like
from tinymm.ops import broadcast_to, isclose, where
from tinymm.tensor import Size

__all__ = ["GeneralizedPareto"]


class GeneralizedPareto(Distribution):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive, "concentration": constraints.real}
    has_rsample = True

    def __init__(self, loc, scale, concentration, validate_args=None):
        self.loc, self.scale, self.concentration = broadcast_all(loc, scale, concentration)
        super().__init__(batch_shape_of((loc, scale, concentration), self.loc), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(GeneralizedPareto, _instance)
        batch_shape = Size(tuple(batch_shape))
        new.loc = self.loc.expand(batch_shape)
        new.scale = self.scale.expand(batch_shape)
        new.concentration = self.concentration.expand(batch_shape)
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _zero_and_safe(self):
        """(isclose(ξ, 0), ξ with those entries set to 1)."""
        eq_zero = isclose(self.concentration, zeros_like(self.concentration))
        return eq_zero, where(eq_zero, ones_like(self.concentration), self.concentration)

    def _z(self, x):
        return (x - self.loc) / self.scale

    def rsample(self, sample_shape=Size()):
        u = draw("uniform", self._extended_shape(sample_shape), self.loc, 0.0, 1.0)
        return self.icdf(u)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = self._z(value)
        eq_zero, safe = self._zero_and_safe()
        y = 1 / safe + ones_like(z)
        nonzero = where(y == 0, y, y * (safe * z).log1p())
        return -self.scale.log() - where(eq_zero, z, nonzero)

    def log_survival_function(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = self._z(value)
        eq_zero, safe = self._zero_and_safe()
        return where(eq_zero, -z, -(safe * z).log1p() / safe)

    def log_cdf(self, value):
        return (-self.log_survival_function(value).exp()).log1p()

    def cdf(self, value):
        return self.log_cdf(value).exp()

    def icdf(self, value):
        eq_zero, safe = self._zero_and_safe()
        logu = (-value).log1p()
        nonzero = self.loc + self.scale / safe * (-safe * logu).expm1()
        return where(eq_zero, self.loc - self.scale * logu, nonzero)

    @property
    def mean(self):
        valid = self.concentration < 1
        safe = where(valid, self.concentration, 0.5)
        return where(valid, self.loc + self.scale / (1 - safe), math.nan)

    @property
    def variance(self):
        valid = self.concentration < 0.5
        safe = where(valid, self.concentration, 0.25)
        return where(valid, self.scale**2 / ((1 - safe) ** 2 * (1 - 2 * safe)), math.nan)

    @property
    def mode(self):
        return self.loc

    def entropy(self):
        return broadcast_to(self.scale.log() + self.concentration + 1, tuple(self._batch_shape))

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        lower = self.loc
        with np.errstate(divide="ignore", invalid="ignore"):
            upper = where(self.concentration < 0, lower - self.scale / self.concentration, math.inf)
        return constraints.interval(lower, upper)
