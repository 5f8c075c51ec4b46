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


def empty_cache() -> None:
    """Hand CuPy's cached, unused GPU blocks back to the driver (nothing to do without a GPU)."""
    if backend.cuda_available():
        import cupy

        cupy.get_default_memory_pool().free_all_blocks()


def memory_allocated(device=None) -> int:
    """Bytes of GPU memory held by live arrays (CuPy's pool); 0 without a GPU, as PyTorch."""
    if not backend.cuda_available():
        return 0
    import cupy

    return int(cupy.get_default_memory_pool().used_bytes())


def memory_reserved(device=None) -> int:
    """Bytes of GPU memory CuPy's pool holds, in use or cached; 0 without a GPU."""
    if not backend.cuda_available():
        return 0
    import cupy

    return int(cupy.get_default_memory_pool().total_bytes())


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """False: tinymm has no bfloat16 dtype."""
    return False


def manual_seed(seed: int) -> None:
    """Seed the CUDA generator; tinymm seeds CPU and CUDA together, so this is
    ``tinymm.manual_seed`` (harmless without a GPU, as in PyTorch)."""
    backend.manual_seed(seed)


manual_seed_all = manual_seed


class OutOfMemoryError(RuntimeError):
    """``torch.cuda.OutOfMemoryError`` (also ``tinymm.OutOfMemoryError``): what ``except`` clauses
    around GPU work name. tinymm's GPU arrays are CuPy's, whose allocator raises
    ``cupy.cuda.memory.OutOfMemoryError``; this class exists so that code naming PyTorch's runs."""


def get_device_properties(device=None):
    """The GPU's name, ``total_memory`` (bytes), ``major``/``minor`` compute capability."""
    _require("get_device_properties")
    props = backend.gpu_properties()
    major, minor = (int(v) for v in props["compute_capability"].split("."))
    return _DeviceProperties(props["name"], int(props["memory_total_gib"] * 2**30), major, minor)


def get_device_capability(device=None) -> tuple:
    props = get_device_properties(device)
    return props.major, props.minor


def mem_get_info(device=None) -> tuple:
    """(free, total) bytes of GPU memory, from the driver."""
    _require("mem_get_info")
    import cupy

    free, total = cupy.cuda.runtime.memGetInfo()
    return int(free), int(total)


def set_device(device) -> None:
    """tinymm drives one GPU: device 0 (or "cuda", "cuda:0") is accepted, any other refused."""
    index = device if isinstance(device, int) else getattr(device, "index", None)
    if isinstance(device, str):
        index = int(device.split(":")[1]) if ":" in device else 0
    if index not in (None, 0, -1):
        raise RuntimeError(f"cuda.set_device: tinymm uses one GPU (device 0), got {device!r}")


class _DeviceProperties:
    def __init__(self, name, total_memory, major, minor):
        self.name, self.total_memory, self.major, self.minor = name, total_memory, major, minor

    def __repr__(self) -> str:
        return (f"_CudaDeviceProperties(name='{self.name}', major={self.major}, minor={self.minor}, "
                f"total_memory={self.total_memory // 2**20}MB)")


def _require(name: str) -> None:
    ok, why = backend.cuda_status()
    if not ok:
        raise RuntimeError(f"cuda.{name}: no CUDA device is available: {why}")


from tinymm.cuda import amp  # noqa: E402  (torch.cuda.amp.GradScaler / autocast)
