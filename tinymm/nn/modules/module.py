"""``torch.nn.modules.module``: ``Module`` (``from torch.nn.modules.module import Module``)."""
from tinymm.nn.module import Module  # noqa: F401
