"""PyTorch's ``torch.distributions.cauchy`` module path: ``Cauchy``, defined in ``continuous.py``
(where it lives beside its family)."""
from tinymm.distributions.continuous import Cauchy

__all__ = ["Cauchy"]
