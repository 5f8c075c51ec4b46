"""PyTorch's ``torch.distributions.pareto`` module path: ``Pareto``, defined in ``transformed.py``
(where it lives beside its family)."""
from tinymm.distributions.transformed import Pareto

__all__ = ["Pareto"]
