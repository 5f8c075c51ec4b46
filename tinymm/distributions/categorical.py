"""PyTorch's ``torch.distributions.categorical`` module path: ``Categorical``, defined in ``discrete.py``
(where it lives beside its family)."""
from tinymm.distributions.discrete import Categorical

__all__ = ["Categorical"]
