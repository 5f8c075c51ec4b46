"""PyTorch's ``torch.distributions.fishersnedecor`` module path: ``FisherSnedecor``, defined in ``gamma.py``
(where it lives beside its family)."""
from tinymm.distributions.gamma import FisherSnedecor

__all__ = ["FisherSnedecor"]
