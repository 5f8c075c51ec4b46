"""``torch.cuda``'s everyday functions, answered for tinymm's single CuPy device.

tinymm sees at most one GPU ("cuda" and "cuda:0" are the same device). Without a usable GPU
every question has its honest answer (``is_available()`` is False, ``device_count()`` is 0)
and the functions that act on a GPU raise the reason ``tinymm.backend`` gives.
"""
from __future__ import annotations

from tinymm import backend


def is_available() -> bool:
    return backend.cuda_available()


def device_count() -> int:
    """1 with a usable GPU (tinymm drives one), else 0."""
    return 1 if backend.cuda_available() else 0


def current_device() -> int:
    _require("current_device")
    return 0


def get_device_name(device=None) -> str:
    _require("get_device_name")
    return backend.gpu_properties()["name"]


def synchronize(device=None) -> None:
    """Wait for every queued GPU kernel to finish (nothing to wait for without a GPU)."""
    if backend.cuda_available():
        import cupy

        cupy.cuda.Device().synchronize()


def manual_seed(seed: int) -> None:
    """Seed the CUDA generator; tinymm seeds CPU and CUDA together, so this is
    ``tinymm.manual_seed`` (harmless without a GPU, as in PyTorch)."""
    backend.manual_seed(seed)


manual_seed_all = manual_seed


def _require(name: str) -> None:
    ok, why = backend.cuda_status()
    if not ok:
        raise RuntimeError(f"cuda.{name}: no CUDA device is available: {why}")
