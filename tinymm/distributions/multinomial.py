"""PyTorch's ``torch.distributions.multinomial`` module path: ``Multinomial``, defined in ``discrete.py``
(where it lives beside its family)."""
from tinymm.distributions.discrete import Multinomial

__all__ = ["Multinomial"]
