"""PyTorch's ``torch.distributions.transformed_distribution`` module path: ``TransformedDistribution``, defined in ``transformed.py``
(where it lives beside its family)."""
from tinymm.distributions.transformed import TransformedDistribution

__all__ = ["TransformedDistribution"]
