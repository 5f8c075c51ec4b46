"""PyTorch's ``torch.distributions.relaxed_categorical`` module path: ``ExpRelaxedCategorical``, ``RelaxedOneHotCategorical``, defined in ``relaxed.py``
(where they live beside their family)."""
from tinymm.distributions.relaxed import ExpRelaxedCategorical, RelaxedOneHotCategorical

__all__ = ["ExpRelaxedCategorical", "RelaxedOneHotCategorical"]
