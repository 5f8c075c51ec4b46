"""PyTorch's ``torch.distributions.weibull`` module path: ``Weibull``, defined in ``transformed.py``
(where it lives beside its family)."""
from tinymm.distributions.transformed import Weibull

__all__ = ["Weibull"]
