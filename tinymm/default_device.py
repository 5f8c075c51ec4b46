"""``torch.set_default_device`` / ``torch.get_default_device``: where factories (``zeros``,
``randn``, ``tensor`` of host data, ...) and layers' parameters are made when no ``device=`` is
given. ``"cpu"`` (NumPy) unless set; ``"cuda"`` puts them on the one CuPy GPU (and a factory
raises, naming why, where there is none). ``None`` sets it back to the CPU."""
from __future__ import annotations

from tinymm import backend
from tinymm.tensor import device

__all__ = ["set_default_device", "get_default_device"]


def set_default_device(device_) -> None:
    """Make ``device_`` ("cpu", "cuda", "cuda:0", a ``tinymm.device``, or None for the CPU) the
    default device; an unknown device is a RuntimeError, as in PyTorch."""
    if device_ is None:
        backend.set_default_device_name("cpu")
        return
    if isinstance(device_, int) and not isinstance(device_, bool):
        device_ = f"cuda:{device_}"  # PyTorch reads an int as the accelerator's index
    dev = device(device_)  # RuntimeError naming the device string when it is not cpu/cuda
    if dev.type == "cuda" and dev.index not in (None, 0):
        raise RuntimeError(f"set_default_device: tinymm drives one GPU (cuda:0), got {dev}")
    backend.set_default_device_name(dev.type)


def get_default_device() -> device:
    """The default device: ``device(type='cpu')``, or ``device(type='cuda', index=0)``."""
    name = backend.default_device()
    return device("cpu") if name == "cpu" else device("cuda", 0)
