"""PyTorch's ``torch.distributions.studentT`` module path: ``StudentT``, defined in ``gamma.py``
(where it lives beside its family)."""
from tinymm.distributions.gamma import StudentT

__all__ = ["StudentT"]
