"""More process-wide switches with PyTorch's names: ``set_warn_always`` /
``is_warn_always_enabled``, ``set_flush_denormal``, and ``typename``.

- ``set_warn_always(True)``: warnings tinymm gives once (per object or process) are given every
  time; tinymm's own warn-once sites read ``is_warn_always_enabled()``.
- ``set_flush_denormal(mode)`` returns whether flushing subnormal floats to zero is supported and
  was set. NumPy gives Python no way to set the CPU's flush-to-zero / denormals-are-zero flags,
  so tinymm supports it nowhere: it returns False and computes with subnormals, as PyTorch does
  on a CPU without the feature.
"""
from __future__ import annotations

from tinymm.backend import is_warn_always_enabled, set_warn_always  # noqa: F401  (the switch lives on floor 2)
from tinymm.tensor import Tensor

__all__ = ["set_warn_always", "is_warn_always_enabled", "set_flush_denormal", "typename"]


def set_flush_denormal(mode: bool) -> bool:
    """False: tinymm cannot switch the CPU's subnormal handling (see the module docstring)."""
    return False


def typename(obj, /) -> str:
    """The type of ``obj`` as a string: a tensor's legacy type (``'torch.FloatTensor'``, as
    ``x.type()``), else the dotted module and qualified name of ``obj`` (a class or function)
    or of its class."""
    if isinstance(obj, Tensor):
        return obj.type()
    module = getattr(obj, "__module__", "") or ""
    if hasattr(obj, "__qualname__"):
        qualname = obj.__qualname__
    elif hasattr(obj, "__name__"):
        qualname = obj.__name__
    else:
        module = obj.__class__.__module__ or ""
        qualname = obj.__class__.__qualname__
    if module in ("", "builtins"):
        return qualname
    return f"{module}.{qualname}"
