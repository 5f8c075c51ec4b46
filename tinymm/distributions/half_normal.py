"""PyTorch's ``torch.distributions.half_normal`` module path: ``HalfNormal``, defined in ``transformed.py``
(where it lives beside its family)."""
from tinymm.distributions.transformed import HalfNormal

__all__ = ["HalfNormal"]
