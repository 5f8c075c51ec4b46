"""PyTorch's ``torch.distributions.bernoulli`` module path: ``Bernoulli``, defined in ``discrete.py``
(where it lives beside its family)."""
from tinymm.distributions.discrete import Bernoulli

__all__ = ["Bernoulli"]
