"""PyTorch's ``torch.distributions.poisson`` module path: ``Poisson``, defined in ``discrete.py``
(where it lives beside its family)."""
from tinymm.distributions.discrete import Poisson

__all__ = ["Poisson"]
