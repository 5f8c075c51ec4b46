"""``torch.cuda.amp``: the CUDA-default spellings of :mod:`tinymm.amp`'s ``GradScaler`` and
``autocast`` (PyTorch deprecates them for ``torch.amp``, and scripts still use them)."""
from __future__ import annotations

from tinymm import amp as base

__all__ = ["GradScaler", "autocast"]


class GradScaler(base.GradScaler):
    """``torch.cuda.amp.GradScaler(init_scale=2.**16, growth_factor=2.0, backoff_factor=0.5,
    growth_interval=2000, enabled=True)``: a scaler for the CUDA device (disabled, with a warning,
    where no GPU is usable)."""

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True):
        super().__init__("cuda", init_scale, growth_factor, backoff_factor, growth_interval, enabled)


class autocast(base.autocast):
    """``torch.cuda.amp.autocast(enabled=True, dtype=torch.float16, cache_enabled=True)``."""

    def __init__(self, enabled: bool = True, dtype=None, cache_enabled=None):
        super().__init__("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)
