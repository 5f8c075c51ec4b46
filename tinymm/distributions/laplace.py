"""PyTorch's ``torch.distributions.laplace`` module path: ``Laplace``, defined in ``continuous.py``
(where it lives beside its family)."""
from tinymm.distributions.continuous import Laplace

__all__ = ["Laplace"]
