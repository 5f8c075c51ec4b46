"""PyTorch's ``torch.distributions.relaxed_bernoulli`` module path: ``LogitRelaxedBernoulli``, ``RelaxedBernoulli``, defined in ``relaxed.py``
(where they live beside their family)."""
from tinymm.distributions.relaxed import LogitRelaxedBernoulli, RelaxedBernoulli

__all__ = ["LogitRelaxedBernoulli", "RelaxedBernoulli"]
