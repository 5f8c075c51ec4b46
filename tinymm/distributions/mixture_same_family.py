"""PyTorch's ``torch.distributions.mixture_same_family`` module path: ``MixtureSameFamily``, defined in ``mixture.py``
(where it lives beside its family)."""
from tinymm.distributions.mixture import MixtureSameFamily

__all__ = ["MixtureSameFamily"]
