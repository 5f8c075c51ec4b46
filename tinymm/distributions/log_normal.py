"""PyTorch's ``torch.distributions.log_normal`` module path: ``LogNormal``, defined in ``transformed.py``
(where it lives beside its family)."""
from tinymm.distributions.transformed import LogNormal

__all__ = ["LogNormal"]
