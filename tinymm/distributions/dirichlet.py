"""PyTorch's ``torch.distributions.dirichlet`` module path: ``Dirichlet``, defined in ``gamma.py``
(where it lives beside its family)."""
from tinymm.distributions.gamma import Dirichlet

__all__ = ["Dirichlet"]
