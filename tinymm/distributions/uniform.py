"""PyTorch's ``torch.distributions.uniform`` module path: ``Uniform``, defined in ``continuous.py``
(where it lives beside its family)."""
from tinymm.distributions.continuous import Uniform

__all__ = ["Uniform"]
