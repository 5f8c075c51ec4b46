"""PyTorch's ``torch.distributions.geometric`` module path: ``Geometric``, defined in ``discrete.py``
(where it lives beside its family)."""
from tinymm.distributions.discrete import Geometric

__all__ = ["Geometric"]
