"""PyTorch's ``torch.distributions.gumbel`` module path: ``Gumbel``, defined in ``transformed.py``
(where it lives beside its family)."""
from tinymm.distributions.transformed import Gumbel

__all__ = ["Gumbel"]
