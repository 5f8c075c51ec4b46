"""PyTorch's ``torch.distributions.half_cauchy`` module path: ``HalfCauchy``, defined in ``transformed.py``
(where it lives beside its family)."""
from tinymm.distributions.transformed import HalfCauchy

__all__ = ["HalfCauchy"]
