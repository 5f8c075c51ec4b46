"""PyTorch's ``torch.distributions.chi2`` module path: ``Chi2``, defined in ``gamma.py``
(where it lives beside its family)."""
from tinymm.distributions.gamma import Chi2

__all__ = ["Chi2"]
