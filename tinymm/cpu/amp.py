"""``torch.cpu.amp``: the CPU-default spellings of :mod:`tinymm.amp`'s ``autocast`` and
``GradScaler``, deprecated by PyTorch for ``torch.amp`` (its FutureWarning is given here too)
and still found in CPU training scripts as ``torch.cpu.amp.autocast(enabled=use_amp)``."""
from __future__ import annotations

import warnings

from tinymm import amp as base

__all__ = ["GradScaler", "autocast"]


class autocast(base.autocast):
    """``torch.cpu.amp.autocast(enabled=True, dtype=torch.bfloat16, cache_enabled=True)``: as
    ``tinymm.amp.autocast("cpu", ...)`` (only ``enabled=False`` can be entered, see there)."""

    def __init__(self, enabled: bool = True, dtype=None, cache_enabled=None):
        warnings.warn("`torch.cpu.amp.autocast(args...)` is deprecated. Please use `torch.amp.autocast('cpu', "
                      "args...)` instead.", FutureWarning, stacklevel=2)
        super().__init__("cpu", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class GradScaler(base.GradScaler):
    """``torch.cpu.amp.GradScaler(init_scale=2.**16, growth_factor=2.0, backoff_factor=0.5,
    growth_interval=2000, enabled=True)``: a scaler on the CPU."""

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True):
        warnings.warn("`torch.cpu.amp.GradScaler(args...)` is deprecated. Please use `torch.amp.GradScaler('cpu', "
                      "args...)` instead.", FutureWarning, stacklevel=2)
        super().__init__("cpu", init_scale, growth_factor, backoff_factor, growth_interval, enabled)
