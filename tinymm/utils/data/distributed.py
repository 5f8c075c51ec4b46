"""``torch.utils.data.distributed``: ``DistributedSampler`` (defined in
:mod:`tinymm.utils.data.sampler`), importable by PyTorch's path."""
from tinymm.utils.data.sampler import DistributedSampler  # noqa: F401

__all__ = ["DistributedSampler"]
