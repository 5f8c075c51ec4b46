"""PyTorch's ``torch.distributions.beta`` module path: ``Beta``, defined in ``gamma.py``
(where it lives beside its family)."""
from tinymm.distributions.gamma import Beta

__all__ = ["Beta"]
