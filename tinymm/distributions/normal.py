"""PyTorch's ``torch.distributions.normal`` module path: ``Normal``, defined in ``continuous.py``
(where it lives beside its family)."""
from tinymm.distributions.continuous import Normal

__all__ = ["Normal"]
