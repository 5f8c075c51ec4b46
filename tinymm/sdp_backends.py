"""Which scaled-dot-product-attention backends may run: ``torch.nn.attention.sdpa_kernel`` /
``SDPBackend`` and the ``torch.backends.cuda`` switches (``enable_flash_sdp``,
``flash_sdp_enabled``, ..., the older ``sdp_kernel`` context manager).

tinymm has one SDPA implementation per device, exact like PyTorch's math backend and fused
like its flash backend, so a selection never changes the numbers; what it changes is whether
attention may run at all. As PyTorch on CPU, attention needs MATH or FLASH_ATTENTION enabled
(on CUDA any of MATH, FLASH_ATTENTION, EFFICIENT_ATTENTION, CUDNN_ATTENTION), and
``scaled_dot_product_attention`` raises PyTorch's RuntimeError otherwise.
"""
from __future__ import annotations

import contextlib
import enum
import warnings

__all__ = ["SDPBackend", "sdpa_kernel", "sdp_kernel", "check_sdpa_enabled", "enable_flash_sdp", "flash_sdp_enabled",
           "enable_math_sdp", "math_sdp_enabled", "enable_mem_efficient_sdp", "mem_efficient_sdp_enabled",
           "enable_cudnn_sdp", "cudnn_sdp_enabled"]


class SDPBackend(enum.IntEnum):
    """PyTorch's backend names and values."""
    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4


_ALL = (SDPBackend.MATH, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION,
        SDPBackend.OVERRIDEABLE)
_enabled: set = set(_ALL)
_VIABLE = {"cpu": (SDPBackend.MATH, SDPBackend.FLASH_ATTENTION),
           "cuda": (SDPBackend.MATH, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                    SDPBackend.CUDNN_ATTENTION)}


def check_sdpa_enabled(device_type: str) -> None:
    """Raise PyTorch's RuntimeError when no backend that runs on ``device_type`` is enabled."""
    if not any(b in _enabled for b in _VIABLE.get(device_type, _VIABLE["cpu"])):
        raise RuntimeError("No viable backend for scaled_dot_product_attention was found. This is likely due to "
                           "turning off both the math kernel and the fused kernels.")


@contextlib.contextmanager
def sdpa_kernel(backends, set_priority: bool = False):
    """``with sdpa_kernel(SDPBackend.MATH):`` or a list of backends: only those are enabled inside
    the block; the previous selection comes back on exit. ``set_priority`` is accepted (one
    implementation leaves no order to choose)."""
    if not isinstance(backends, (list, SDPBackend)):
        raise AssertionError("Backend must be an instance of SDPBackend or a list of SDPBackend instances, "
                             f"got {type(backends).__name__}")
    chosen = [backends] if isinstance(backends, SDPBackend) else list(backends)
    for b in chosen:
        if not isinstance(b, SDPBackend):
            raise AssertionError(f"sdpa_kernel: {b!r} is not an SDPBackend")
    previous = set(_enabled)
    _enabled.clear()
    _enabled.update(chosen)
    try:
        yield {}
    finally:
        _enabled.clear()
        _enabled.update(previous)


def _switch(backend: SDPBackend):
    def enable(enabled: bool) -> None:
        (_enabled.add if enabled else _enabled.discard)(backend)

    def is_enabled() -> bool:
        return backend in _enabled
    return enable, is_enabled


enable_flash_sdp, flash_sdp_enabled = _switch(SDPBackend.FLASH_ATTENTION)
enable_math_sdp, math_sdp_enabled = _switch(SDPBackend.MATH)
enable_mem_efficient_sdp, mem_efficient_sdp_enabled = _switch(SDPBackend.EFFICIENT_ATTENTION)
enable_cudnn_sdp, cudnn_sdp_enabled = _switch(SDPBackend.CUDNN_ATTENTION)


def sdp_kernel(enable_flash: bool = True, enable_math: bool = True, enable_mem_efficient: bool = True,
               enable_cudnn: bool = True):
    """``torch.backends.cuda.sdp_kernel`` (deprecated in PyTorch for ``sdpa_kernel``, with the
    same FutureWarning): the backends switched on by keyword."""
    warnings.warn("`torch.backends.cuda.sdp_kernel()` is deprecated. In the future, this context manager will be "
                  "removed. Please see `torch.nn.attention.sdpa_kernel()` for the new context manager, with updated "
                  "signature.", FutureWarning, stacklevel=2)
    chosen = [b for b, on in ((SDPBackend.FLASH_ATTENTION, enable_flash), (SDPBackend.MATH, enable_math),
                              (SDPBackend.EFFICIENT_ATTENTION, enable_mem_efficient),
                              (SDPBackend.CUDNN_ATTENTION, enable_cudnn)) if on]
    return sdpa_kernel(chosen)
