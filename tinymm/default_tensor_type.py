"""``torch.set_default_tensor_type``: the pre-2.1 way to pick the default dtype and device at once
(``torch.set_default_tensor_type(torch.DoubleTensor)``, ``("torch.cuda.FloatTensor")``), still
found in older forecasting code. As PyTorch 2.x, it warns that it is deprecated and then sets
what ``set_default_dtype`` and ``set_default_device`` set: a legacy tensor type (the class or
its name) of a floating dtype, on the CPU, or on the GPU for a ``torch.cuda.*`` name.
"""
from __future__ import annotations

import warnings

from tinymm import backend, dtypes
from tinymm.default_device import set_default_device

__all__ = ["set_default_tensor_type"]

_ONLY_FLOAT = "only floating-point types are supported as the default type"
_LEGACY = {name: getattr(dtypes, name) for name in ("FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor",
                                                     "ShortTensor", "CharTensor", "ByteTensor", "BoolTensor")}


def set_default_tensor_type(t) -> None:
    warnings.warn("torch.set_default_tensor_type() is deprecated as of PyTorch 2.1, please use "
                  "torch.set_default_dtype() and torch.set_default_device() as alternatives.", UserWarning,
                  stacklevel=2)
    device = "cpu"
    if isinstance(t, str):
        module, _, name = t.rpartition(".")
        if module in ("torch.cuda", "tinymm.cuda"):
            device = "cuda"
        elif module not in ("torch", "tinymm"):
            raise ModuleNotFoundError(f"No module named '{module or t}'")
        if name not in _LEGACY:
            raise TypeError(f"invalid type: '{module}.{name}' is not a tensor type")
        t = _LEGACY[name]
    elif not any(t is legacy for legacy in _LEGACY.values()):
        raise TypeError(f"invalid type object: {_ONLY_FLOAT}")
    if t.dtype.kind != "f" or t.dtype.itemsize < 4:  # (PyTorch takes float16 types; tinymm's default is 32 or 64 bits)
        raise TypeError(_ONLY_FLOAT if t.dtype.kind != "f" else
                        f"{_ONLY_FLOAT} (float32 or float64 in tinymm), got {t.dtype}")
    if device == "cuda" and not backend.cuda_available():
        raise TypeError(f"type torch.cuda.{t.__name__} not available: {backend.cuda_status()[1]}")
    backend.set_default_dtype(t.dtype)
    set_default_device(device)
