"""PyTorch's ``torch.distributions.kumaraswamy`` module path: ``Kumaraswamy``, defined in ``transformed.py``
(where it lives beside its family)."""
from tinymm.distributions.transformed import Kumaraswamy

__all__ = ["Kumaraswamy"]
