"""``torch.accelerator``: the device-generic questions scripts ask before choosing a device
(``device = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else
"cpu"``, as the PyTorch examples now write it).

tinymm's only accelerator is its one CuPy GPU, so each answer is ``tinymm.cuda``'s: with a usable
GPU the accelerator is ``device("cuda")`` with index 0; without one ``is_available()`` is False,
``current_accelerator()`` is None, ``device_count()`` is 0, and the functions that act on a
device raise RuntimeError with PyTorch's message.
"""
from __future__ import annotations

from tinymm import backend, cuda
from tinymm.tensor import device as _device

__all__ = [
    "current_accelerator", "current_device_idx", "current_device_index", "device_count", "device_index",
    "empty_cache", "is_available", "memory_allocated", "memory_reserved",
    "set_device_idx", "set_device_index", "synchronize",
]

_NONE = "Cannot access accelerator device when none is available."


def is_available() -> bool:
    return backend.cuda_available()


def device_count() -> int:
    return cuda.device_count()


def current_accelerator(check_available: bool = False):
    """``device("cuda")`` when tinymm has a GPU, else None (``check_available`` changes nothing
    here: the only accelerator tinymm knows is usable exactly when it is present)."""
    return _device("cuda") if is_available() else None


def _require() -> None:
    if not is_available():
        raise RuntimeError(_NONE)


def _index(device) -> int:
    """The accelerator index ``device`` names (int, "cuda", "cuda:0", device); only 0 exists."""
    if device is None:
        return 0
    if isinstance(device, int):
        idx = device
    else:
        d = _device(device) if isinstance(device, str) else device
        if d.type != "cuda":
            raise ValueError(f"{device} doesn't match the current accelerator cuda.")
        idx = 0 if d.index is None else d.index
    if idx != 0:
        raise RuntimeError(f"Invalid device index {idx}: tinymm drives one accelerator (index 0)")
    return idx


def current_device_index() -> int:
    _require()
    return 0


current_device_idx = current_device_index


def set_device_index(device, /) -> None:
    _require()
    _index(device)


set_device_idx = set_device_index


class device_index:
    """``with torch.accelerator.device_index(i):`` — a no-op for index 0 (or None), the only one."""

    def __init__(self, device, /):
        self.idx = device

    def __enter__(self):
        if self.idx is not None:
            set_device_index(self.idx)

    def __exit__(self, *exc):
        return False


def synchronize(device=None, /) -> None:
    _require()
    _index(device)
    cuda.synchronize()


def empty_cache() -> None:
    _require()
    cuda.empty_cache()


def memory_allocated(device_index=None, /) -> int:
    _require()
    return cuda.memory_allocated()


def memory_reserved(device_index=None, /) -> int:
    _require()
    return cuda.memory_reserved()

