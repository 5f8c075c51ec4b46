"""Floor 3: ``torch.utils.dlpack`` (re-exported as ``tinymm.utils.dlpack``) and ``torch.from_dlpack``: zero-copy exchange with any library that
speaks DLPack (NumPy, CuPy, PyTorch, JAX, ...).

``from_dlpack(x)`` takes an object with ``__dlpack__`` (or a legacy DLPack capsule, consumed
once) and returns a Tensor on the same memory: writes through either side show on the other,
as with ``torch.from_dlpack``. Host memory becomes a NumPy-backed CPU tensor; GPU memory a
CuPy-backed "cuda" tensor. ``to_dlpack(t)`` returns a capsule of t's memory, and Tensor has
``__dlpack__``/``__dlpack_device__``, so ``numpy.from_dlpack(t)``, ``cupy.from_dlpack(t)`` and
``torch.from_dlpack(t)`` share t's memory. As in PyTorch, a tensor that requires grad is not
exported (``BufferError``: detach it first)."""
from __future__ import annotations

import numpy as np

from tinymm.ops._util import DTypeError  # a TypeError, and PyTorch's RuntimeError
from tinymm.tensor import Tensor

__all__ = ["from_dlpack", "to_dlpack"]

_CPU, _CUDA, _CUDA_HOST, _CUDA_MANAGED = 1, 2, 3, 13  # DLDeviceType codes


class _Capsule:
    """A legacy DLPack capsule as an object NumPy's/CuPy's ``from_dlpack`` accept. The capsule
    does not say where its memory is, so it is taken as host memory (what ``device`` says)."""

    def __init__(self, capsule, device):
        self.capsule, self.device = capsule, device

    def __dlpack__(self, **kwargs):
        return self.capsule

    def __dlpack_device__(self):
        return self.device


def _is_capsule(obj) -> bool:
    return type(obj).__name__ == "PyCapsule"


def from_dlpack(ext_tensor) -> Tensor:
    """A Tensor sharing ``ext_tensor``'s memory (see the module docstring)."""
    if isinstance(ext_tensor, Tensor):
        return ext_tensor.detach()
    if _is_capsule(ext_tensor):
        producer = _Capsule(ext_tensor, (_CPU, 0))
        try:
            arr = np.from_dlpack(producer)
        except (BufferError, RuntimeError, ValueError, TypeError) as err:
            raise RuntimeError("from_dlpack received an invalid capsule (a DLPack capsule can be consumed only "
                               f"once, and a capsule of GPU memory needs an object with __dlpack__): {err}") from None
        return Tensor._of(arr if arr.flags.writeable else _writeable(arr))
    if not hasattr(ext_tensor, "__dlpack__"):
        raise DTypeError(f"from_dlpack: expected an object with __dlpack__ (or a DLPack capsule), "
                        f"got {type(ext_tensor).__name__}")
    kind = ext_tensor.__dlpack_device__()[0] if hasattr(ext_tensor, "__dlpack_device__") else _CPU
    if kind in (_CUDA, _CUDA_MANAGED):
        from tinymm import backend

        cupy = backend.array_module("cuda")  # a RuntimeError that says why, without a usable GPU
        return Tensor._of(cupy.from_dlpack(ext_tensor))
    if kind not in (_CPU, _CUDA_HOST):
        raise RuntimeError(f"from_dlpack: unsupported DLPack device type {kind} (tinymm has CPU and CUDA tensors)")
    return Tensor._of(np.from_dlpack(ext_tensor))


def _writeable(arr: np.ndarray) -> np.ndarray:
    """A writeable array on ``arr``'s memory, keeping ``arr`` alive. NumPy marks what it imports
    from a legacy (unversioned) capsule read-only, since that format cannot say whether the
    memory may be written; PyTorch, which exports such capsules, treats them as writeable."""
    interface = dict(arr.__array_interface__, data=(arr.__array_interface__["data"][0], False))
    holder = type("_DLPackMemory", (), {"__array_interface__": interface, "owner": arr})()
    return np.asarray(holder)


def to_dlpack(tensor: Tensor):
    """A DLPack capsule of ``tensor``'s memory (consumed once by a ``from_dlpack``)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dlpack: expected a tinymm Tensor, got {type(tensor).__name__}")
    return tensor.__dlpack__()
