"""``InverseGamma(concentration, rate)``: 1/X for X ~ Gamma(concentration, rate), as
PyTorch's ``torch.distributions.inverse_gamma``: a TransformedDistribution through
``PowerTransform(−1)``, so log_prob, rsample and its gradients come from Gamma's; the mean,
mode, variance and entropy are closed forms (mean inf for concentration ≤ 1, variance inf
for concentration ≤ 2)."""
from __future__ import annotations

import math

from tinymm.distributions import constraints
from tinymm.distributions.gamma import Gamma
from tinymm.distributions.transformed import TransformedDistribution
from tinymm.distributions.transforms import PowerTransform
from tinymm.ops import digamma, lgamma, where

__all__ = ["InverseGamma"]


class InverseGamma(TransformedDistribution):
    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        base_dist = Gamma(concentration, rate, validate_args=validate_args)
        neg_one = -base_dist.rate.new_ones(())
        super().__init__(base_dist, PowerTransform(neg_one), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(InverseGamma, _instance)
        return super().expand(batch_shape, _instance=new)

    @property
    def concentration(self):
        return self.base_dist.concentration

    @property
    def rate(self):
        return self.base_dist.rate

    @property
    def mean(self):
        result = self.rate / (self.concentration - 1)
        return where(self.concentration > 1, result, math.inf)

    @property
    def mode(self):
        return self.rate / (self.concentration + 1)

    @property
    def variance(self):
        c = self.concentration
        result = self.rate.square() / ((c - 1).square() * (c - 2))
        return where(c > 2, result, math.inf)

    def entropy(self):
        c = self.concentration
        return c + self.rate.log() + lgamma(c) - (1 + c) * digamma(c)
