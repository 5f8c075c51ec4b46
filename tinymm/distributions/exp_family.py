"""``ExponentialFamily``: the base class of distributions whose density has the form

    p(x; θ) = exp(⟨t(x), θ⟩ − F(θ) + k(x))

with natural parameters θ (``_natural_params``), sufficient statistic t(x), log-normaliser
F (``_log_normalizer``) and carrier measure k (whose expectation is ``_mean_carrier_measure``).

Since E[t(x)] = ∇F(θ), the entropy is the Bregman form H = F(θ) − ⟨θ, ∇F(θ)⟩ − E[k(x)]
(Nielsen & Nock, "Entropies and cross-entropies of exponential families"), and
KL(p ‖ q) = F(θ_q) − F(θ_p) − ⟨θ_q − θ_p, ∇F(θ_p)⟩ for two members of one family. Both take
∇F by autograd at detached copies of θ_p, as PyTorch's do. PyTorch asks for that gradient
with ``create_graph=True``; here it is taken without, which changes nothing a caller can
see (θ_p's copies are new leaves no caller holds, so no gradient reaches the distribution's
parameters through ∇F in either library; KL's gradients reach q's parameters the same way)
and does not need the second derivative of every op in F (lgamma's, for one). The
subclasses keep their closed-form ``entropy``; the generic one is ``ExponentialFamily.entropy(d)``.
"""
from __future__ import annotations

from tinymm.autograd import grad
from tinymm.distributions.distribution import Distribution

__all__ = ["ExponentialFamily"]


class ExponentialFamily(Distribution):
    @property
    def _natural_params(self) -> tuple:
        """The natural parameters θ, a tuple of tensors."""
        raise NotImplementedError

    def _log_normalizer(self, *natural_params):
        """F(θ), over the batch shape."""
        raise NotImplementedError

    @property
    def _mean_carrier_measure(self):
        """E[k(x)]."""
        raise NotImplementedError

    def entropy(self):
        """F(θ) − ⟨θ, ∇F(θ)⟩ − E[k(x)], ∇F by autograd."""
        result = -self._mean_carrier_measure
        nparams = [p.detach().requires_grad_() for p in self._natural_params]
        lg_normal = self._log_normalizer(*nparams)
        gradients = grad(lg_normal.sum(), nparams, retain_graph=True)
        result = result + lg_normal
        for theta, g in zip(nparams, gradients):
            result = result - (theta * g).reshape(tuple(self._batch_shape) + (-1,)).sum(-1)
        return result
