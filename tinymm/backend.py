"""Floor 2: devices, the array module behind each device, the dtype policy and the RNG.

A device is the string ``"cpu"`` (NumPy arrays) or ``"cuda"`` (CuPy arrays; ``"cuda:0"`` is
accepted and means the same single GPU). Nothing here knows about autograd.
"""
from __future__ import annotations

import functools

import numpy as np

from tinymm import dtype_objects
from tinymm.kernels._common import is_cuda_array

# ----------------------------------------------------------------------------- devices


class DeviceError(RuntimeError, ValueError):
    """A device string that names no device (PyTorch raises RuntimeError: "Invalid device
    string", "Expected one of cpu, cuda, ..."; tinymm raised ValueError before: both)."""


def parse_device(device) -> str:
    """Normalise a device spec to ``"cpu"`` or ``"cuda"``; anything else is refused by name."""
    if device is None:
        return "cpu"
    name = str(getattr(device, "type", device)).lower()
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name == "cuda:0" or name == "gpu":
        return "cuda"
    raise DeviceError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")


CPU_INSTEAD = "or run on the CPU (device='cpu', or leave --device out)"


@functools.lru_cache(maxsize=1)
def cuda_status() -> tuple[bool, str]:
    """Whether the CUDA backend can be used here; when it cannot, the reason and the fix in
    one line."""
    try:
        import cupy
    except Exception as e:  # ImportError, or a CUDA library missing underneath it
        return False, (f"CuPy is not installed or does not load ({type(e).__name__}: {e}); "
                       f"on a machine with an NVIDIA GPU, pip install 'tinymm[gpu]', {CPU_INSTEAD}")
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        return False, (f"CuPy {cupy.__version__} found no usable NVIDIA driver ({type(e).__name__}: {e}); "
                       f"install the driver, {CPU_INSTEAD}")
    if n == 0:
        return False, f"CuPy {cupy.__version__} sees no GPU on this machine; {CPU_INSTEAD}"
    return True, f"CuPy {cupy.__version__}, {n} device(s)"


def cuda_available() -> bool:
    return cuda_status()[0]


def gpu_properties() -> dict | None:
    """Name, compute capability and memory (GiB) of the current GPU, or None without one."""
    if not cuda_available():
        return None
    import cupy

    dev = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(dev.id)
    name = props["name"]
    free, total = cupy.cuda.runtime.memGetInfo()
    return {"id": dev.id, "name": name.decode() if isinstance(name, bytes) else str(name),
            "compute_capability": f"{props['major']}.{props['minor']}",
            "memory_total_gib": total / 2**30, "memory_free_gib": free / 2**30}


# shims: the device factories and layers use when given device=None (torch.set_default_device)
_DEFAULT_DEVICE = "cpu"


def default_device() -> str:
    """Where tensors are made when no device is named: ``"cpu"`` unless changed."""
    return _DEFAULT_DEVICE


def set_default_device_name(device) -> None:
    """Make ``device`` (None: ``"cpu"``) where tensors are made when no device is named."""
    global _DEFAULT_DEVICE
    _DEFAULT_DEVICE = parse_device(device)


def array_module(device: str):
    """``numpy`` for ``"cpu"``, ``cupy`` for ``"cuda"`` (with a clear error if unusable);
    ``None`` means the default device."""
    device = _DEFAULT_DEVICE if device is None else parse_device(device)
    if device == "cpu":
        return np
    ok, why = cuda_status()
    if not ok:
        raise RuntimeError(f"device 'cuda' is not available: {why}")
    import cupy

    return cupy


def device_of(array) -> str:
    return "cuda" if is_cuda_array(array) else "cpu"


def to_device(array, device: str):
    """Copy ``array`` to ``device`` (no copy when it is already there)."""
    device = parse_device(device)
    if device_of(array) == device:
        return array
    if device == "cpu":
        return array.get()
    return array_module("cuda").asarray(array)


# ----------------------------------------------------------------------------- dtypes

# dtype: tinymm.dtype, PyTorch's dtype objects, one interned wrapper per NumPy dtype
_DEFAULT_DTYPE = dtype_objects.float32
FLOAT_DTYPES = (dtype_objects.float16, dtype_objects.float32, dtype_objects.float64)


def get_default_dtype() -> dtype_objects.dtype:
    return _DEFAULT_DTYPE


def set_default_dtype(dtype) -> None:
    """Set the dtype that new floating tensors get (float32 unless changed)."""
    global _DEFAULT_DTYPE
    d = dtype_objects.as_dtype(dtype)
    if d not in (dtype_objects.float32, dtype_objects.float64):
        raise TypeError(f"only floating-point types are supported as the default type (float32 or float64), got {d}")
    _DEFAULT_DTYPE = d


def is_floating(dtype) -> bool:
    return np.dtype(dtype).kind == "f"


# ----------------------------------------------------------------------------- RNG

_SEED = None
_np_rng = np.random.default_rng()
_cupy_rng = None


def _fresh_seed() -> int:
    """A seed from the OS, as ``torch.seed()`` draws one (63 bits, so it fits an int64)."""
    return int(np.random.SeedSequence().entropy % (2**63))


class SeedError(RuntimeError, TypeError):
    """A seed that is not an integer (PyTorch: RuntimeError "manual_seed expected a long")."""


def seed_value(seed, strict: bool = False) -> int:
    """``seed`` as PyTorch stores it: any integer in [-2**63, 2**64), negative ones wrapped
    modulo 2**64 (``manual_seed(-1)`` is seed 2**64 - 1); beyond that range PyTorch's
    "Overflow when unpacking long long" ValueError. ``strict`` (``Generator.manual_seed``)
    refuses a non-integer, as PyTorch's C++ method does; ``tinymm.manual_seed`` takes
    ``int(seed)`` of anything, as ``torch.manual_seed`` does."""
    if strict and (isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer))):
        raise SeedError(f"manual_seed expected a long, but got {type(seed).__name__}")
    value = int(seed)
    if not -(2**63) <= value < 2**64:
        raise ValueError(f"Overflow when unpacking long long: seed {value} does not fit in 64 bits")
    return value % (2**64)


def manual_seed(seed: int) -> "Generator":
    """Seed every generator tinymm draws from (NumPy's, and CuPy's when used); returns the
    default generator, as ``torch.manual_seed`` does."""
    global _np_rng, _cupy_rng, _SEED
    _SEED = seed_value(seed)
    _np_rng = np.random.default_rng(_SEED)
    _cupy_rng = None  # re-created lazily from the same seed on first CUDA draw
    return default_generator


def seed() -> int:
    """Seed the default generator from the OS and return that seed."""
    s = _fresh_seed()
    manual_seed(s)
    return s


def initial_seed() -> int:
    """The seed the default generator was last seeded with (one is drawn on first ask)."""
    if _SEED is None:
        seed()
    return _SEED


def rng(device: str = "cpu", generator=None):
    """The generator for ``device``: a ``numpy.random.Generator`` or CuPy's equivalent;
    ``generator`` (a :class:`Generator`) replaces the default one. ``device=None`` means the
    default device."""
    global _cupy_rng
    if device is None:
        device = _DEFAULT_DEVICE
    if generator is not None:
        if not isinstance(generator, Generator):
            raise TypeError(f"generator must be a tinymm.Generator (e.g. Generator().manual_seed(0)), got "
                            f"{type(generator).__name__} {generator!r}")
        return generator.draws(device)
    if parse_device(device) == "cpu":
        return _np_rng
    if _cupy_rng is None:
        xp = array_module("cuda")
        _cupy_rng = xp.random.default_rng(_SEED)
    return _cupy_rng


class Generator:
    """A random generator of its own, as ``torch.Generator``: pass it as ``generator=`` to
    ``randn``/``rand``/``randint``/``randperm``/``random_split``/``DataLoader`` to draw
    from it instead of the default generator. ``Generator().manual_seed(0)`` returns itself.

    A CPU generator is a ``numpy.random.Generator`` (PCG64), a CUDA one CuPy's; the streams
    are not PyTorch's (the same seed gives other numbers than in PyTorch)."""

    def __init__(self, device="cpu"):
        self.device = parse_device(device)
        self._seed = _fresh_seed()
        self._rng = None

    def draws(self, device="cpu"):
        """The array-module generator behind this one (for ``device``, which must be its own)."""
        if parse_device(device) != self.device:
            raise RuntimeError(f"Expected a '{parse_device(device)}' device type for generator but found '{self.device}'")
        if self._rng is None:
            xp = array_module(self.device)
            self._rng = xp.random.default_rng(self._seed)
        return self._rng

    def manual_seed(self, seed: int) -> "Generator":
        self._seed = seed_value(seed, strict=True)
        self._rng = None
        return self

    def seed(self) -> int:
        self.manual_seed(_fresh_seed())
        return self._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        """The generator's state (NumPy's bit-generator state dict)."""
        return self.draws(self.device).bit_generator.state

    def set_state(self, state: dict) -> "Generator":
        self.draws(self.device).bit_generator.state = state
        return self


class _DefaultGenerator(Generator):
    """``tinymm.default_generator``: the module-level CPU generator behind ``manual_seed``."""

    def __init__(self):
        self.device = "cpu"

    def draws(self, device="cpu"):
        return rng(device)

    def manual_seed(self, seed: int) -> "Generator":
        return manual_seed(seed_value(seed, strict=True))

    def seed(self) -> int:
        return seed()

    def initial_seed(self) -> int:
        return initial_seed()


default_generator = _DefaultGenerator()


# modapi: torch.set_warn_always. A process-wide switch read by tinymm's warn-once sites (the
# DataLoader's cache warning among them, on floor 6, which may import only this floor).
_warn_always = False


def set_warn_always(b: bool) -> None:
    """Give warnings that are normally given once every time (``b=True``) or once (False)."""
    global _warn_always
    if not isinstance(b, bool):
        raise RuntimeError(f"setWarnOnlyOnce expects a bool, but got {type(b).__name__}")
    _warn_always = b


def is_warn_always_enabled() -> bool:
    return _warn_always
