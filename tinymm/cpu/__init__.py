"""``torch.cpu``: the CPU's answers to the device-module questions that device-agnostic code asks
(``getattr(torch, device.type).synchronize()``, ``torch.cpu.is_available()``), and the
deprecated ``torch.cpu.amp`` spellings of ``autocast``/``GradScaler``.

The CPU is always there, is one device, and runs every op before returning, so there is
nothing to wait for or to select: as PyTorch's, ``synchronize`` and ``set_device`` do nothing.
"""
from __future__ import annotations

from tinymm.cpu import amp

__all__ = ["amp", "current_device", "device_count", "get_device_module", "is_available", "is_initialized", "set_device", "synchronize"]


def is_available() -> bool:
    """Always True."""
    return True


def is_initialized() -> bool:
    """Always True (nothing to initialise)."""
    return True


def device_count() -> int:
    """1: the CPU is one device."""
    return 1


def current_device() -> str:
    """``"cpu"``, as PyTorch's."""
    return "cpu"


def set_device(device) -> None:
    """Nothing to select: there is one CPU device (PyTorch's is a no-op too)."""


def synchronize(device=None) -> None:
    """Nothing to wait for: every CPU op has finished when it returns."""


def get_device_module(device=None):
    """``torch.get_device_module(device=None)``: the module answering device questions for
    ``device`` (a str or ``tinymm.device``): ``tinymm.cuda`` or ``tinymm.cpu``; with None, the
    current accelerator's (the GPU's when one is usable), else ``tinymm.cpu``. A device type
    tinymm does not have raises the RuntimeError its ``device`` gives."""
    import sys

    from tinymm import backend
    from tinymm.tensor import device as _device

    if device is None:
        kind = "cuda" if backend.cuda_available() else "cpu"
    else:
        kind = device.type if isinstance(device, _device) else _device(device).type
    return sys.modules[f"tinymm.{kind}"]
