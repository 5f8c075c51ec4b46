"""PyTorch's ``torch.distributions.binomial`` module path: ``Binomial``, defined in ``discrete.py``
(where it lives beside its family)."""
from tinymm.distributions.discrete import Binomial

__all__ = ["Binomial"]
