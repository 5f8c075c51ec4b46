"""Continuous relaxations of discrete draws (Maddison et al. 2017; Jang et al. 2017), with
rsample: RelaxedBernoulli and RelaxedOneHotCategorical (the Gumbel-softmax), and their
logit-space bases LogitRelaxedBernoulli and ExpRelaxedCategorical.

ExpRelaxedCategorical draws log-softmax((logits + g)/τ) with g_i = −log(−log u_i) Gumbel
noise; its density is the concrete density in log space. RelaxedOneHotCategorical is its exp,
a point on the simplex that approaches a one-hot vector as τ → 0. LogitRelaxedBernoulli draws
(logit u + logit p)/τ; RelaxedBernoulli is its sigmoid.
"""
from __future__ import annotations

from tinymm.distributions import constraints
from tinymm.distributions.discrete import Categorical, CategoricalParams
from tinymm.distributions.distribution import Distribution
from tinymm.distributions.transformed import TransformedDistribution
from tinymm.distributions.transforms import ExpTransform, SigmoidTransform
from tinymm.distributions.utils import (
    BinaryProbsLogits,
    batch_shape_of,
    broadcast_all,
    clamp_probs,
    draw,
)
from tinymm.factories import full_like, tensor
from tinymm.ops import lgamma
from tinymm.tensor import Size, Tensor

__all__ = ["ExpRelaxedCategorical", "LogitRelaxedBernoulli", "RelaxedBernoulli", "RelaxedOneHotCategorical"]


def _as_tensor(temperature, like):
    if isinstance(temperature, Tensor):
        return temperature
    return tensor(float(temperature), dtype=like.dtype, device=like.device)


class _Relaxed(TransformedDistribution):
    """What RelaxedBernoulli and RelaxedOneHotCategorical read from their base."""

    @property
    def temperature(self):
        return self.base_dist.temperature

    @property
    def logits(self):
        return self.base_dist.logits

    @property
    def probs(self):
        return self.base_dist.probs


class LogitRelaxedBernoulli(BinaryProbsLogits, Distribution):
    """The logit of a RelaxedBernoulli draw: (logit u + logit p)/τ, u ~ U(0, 1)."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.real

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        self.temperature = temperature
        self._set_probs_or_logits(probs, logits)
        super().__init__(batch_shape_of((probs if probs is not None else logits,), self._param), validate_args=validate_args)

    def rsample(self, sample_shape=Size()):
        shape = self._extended_shape(sample_shape)
        probs = clamp_probs(self.probs.expand(tuple(shape)))
        uniforms = clamp_probs(draw("uniform", shape, probs, 0.0, 1.0))
        return (uniforms.log() - (-uniforms).log1p() + probs.log() - (-probs).log1p()) / self.temperature

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        t = _as_tensor(self.temperature, logits)
        diff = logits - value * t
        return t.log() + diff - 2 * diff.exp().log1p()


class RelaxedBernoulli(_Relaxed):
    """A draw in (0, 1) that tends to Bernoulli(probs) as the temperature goes to 0."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        base = LogitRelaxedBernoulli(temperature, probs, logits)
        super().__init__(base, SigmoidTransform(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(RelaxedBernoulli, _instance)
        return super().expand(batch_shape, _instance=new)


class ExpRelaxedCategorical(CategoricalParams, Distribution):
    """The log of a RelaxedOneHotCategorical draw: log-softmax((logits + Gumbel noise)/τ)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.real_vector  # the true support is a submanifold of it
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits)
        self.temperature = temperature
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:], validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(ExpRelaxedCategorical, _instance)
        batch_shape = Size(tuple(batch_shape))
        new.temperature = self.temperature
        new._categorical = self._categorical.expand(batch_shape)
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def rsample(self, sample_shape=Size()):
        shape = self._extended_shape(sample_shape)
        uniforms = clamp_probs(draw("uniform", shape, self.logits, 0.0, 1.0))
        gumbels = -((-(uniforms.log())).log())
        scores = (self.logits + gumbels) / self.temperature
        return scores - scores.logsumexp(dim=-1, keepdim=True)

    def log_prob(self, value):
        k = self._categorical._num_events
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        t = _as_tensor(self.temperature, logits)
        log_scale = lgamma(full_like(t, float(k))) - t.log() * (-(k - 1))
        score = logits - value * t
        score = (score - score.logsumexp(dim=-1, keepdim=True)).sum(-1)
        return score + log_scale


class RelaxedOneHotCategorical(_Relaxed):
    """Gumbel-softmax: a point on the simplex that tends to a one-hot Categorical draw as the
    temperature goes to 0; rsample is differentiable in the logits."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        base = ExpRelaxedCategorical(temperature, probs, logits, validate_args=validate_args)
        super().__init__(base, ExpTransform(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(RelaxedOneHotCategorical, _instance)
        return super().expand(batch_shape, _instance=new)
