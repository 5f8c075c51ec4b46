"""``torch.utils.dlpack``: ``from_dlpack`` and ``to_dlpack`` (defined in :mod:`tinymm.dlpack`)."""
from tinymm.dlpack import from_dlpack, to_dlpack  # noqa: F401

__all__ = ["from_dlpack", "to_dlpack"]
