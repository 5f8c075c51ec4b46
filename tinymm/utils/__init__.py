"""``torch.utils`` for code written for PyTorch: ``tinymm.utils.data`` (datasets and loaders
that yield Tensors). ``import tinymm.utils.data`` and ``tinymm.utils.data`` both work."""
from tinymm.utils import checkpoint, data  # noqa: F401
from tinymm.utils import dlpack  # noqa: E402,F401  (lead: torch.utils.dlpack)
