"""PyTorch's ``torch.distributions.one_hot_categorical`` module path: ``OneHotCategorical``, ``OneHotCategoricalStraightThrough``, defined in ``discrete.py``
(where they live beside their family)."""
from tinymm.distributions.discrete import OneHotCategorical, OneHotCategoricalStraightThrough

__all__ = ["OneHotCategorical", "OneHotCategoricalStraightThrough"]
