"""PyTorch's ``torch.distributions.exponential`` module path: ``Exponential``, defined in ``continuous.py``
(where it lives beside its family)."""
from tinymm.distributions.continuous import Exponential

__all__ = ["Exponential"]
