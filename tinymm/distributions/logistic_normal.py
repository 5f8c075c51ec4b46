"""``LogisticNormal(loc, scale)``: a point on the simplex whose stick-breaking logits are
Normal(loc, scale), as PyTorch's ``torch.distributions.logistic_normal``: a
TransformedDistribution of an (Independent) Normal through ``StickBreakingTransform``, so a
K-vector loc gives draws of K + 1 coordinates (a scalar loc is treated as a 1-vector)."""
from __future__ import annotations

from tinymm.distributions import constraints
from tinymm.distributions.continuous import Normal
from tinymm.distributions.transformed import TransformedDistribution
from tinymm.distributions.transforms import StickBreakingTransform

__all__ = ["LogisticNormal"]


class LogisticNormal(TransformedDistribution):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        base_dist = Normal(loc, scale, validate_args=validate_args)
        if not base_dist.batch_shape:
            base_dist = base_dist.expand([1])
        super().__init__(base_dist, StickBreakingTransform(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LogisticNormal, _instance)
        return super().expand(batch_shape, _instance=new)

    @property
    def loc(self):
        return self.base_dist.base_dist.loc

    @property
    def scale(self):
        return self.base_dist.base_dist.scale
