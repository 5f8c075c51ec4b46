"""``torch.signal``: window functions (``tinymm.signal.windows``)."""
from tinymm.signal import windows  # noqa: F401
