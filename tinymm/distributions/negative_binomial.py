"""PyTorch's ``torch.distributions.negative_binomial`` module path: ``NegativeBinomial``, defined in ``discrete.py``
(where it lives beside its family)."""
from tinymm.distributions.discrete import NegativeBinomial

__all__ = ["NegativeBinomial"]
