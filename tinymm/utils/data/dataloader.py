"""``torch.utils.data.dataloader``: ``DataLoader``, ``default_collate``, ``default_convert``
and ``get_worker_info`` by PyTorch's path (defined in :mod:`tinymm.utils.data`)."""
from tinymm.utils.data import DataLoader, default_collate, default_convert, get_worker_info  # noqa: F401

__all__ = ["DataLoader", "default_collate", "default_convert", "get_worker_info"]
