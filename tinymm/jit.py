"""``torch.jit``'s eager-mode markers: what TorchScript-aware model code calls outside scripting.

Model code written for PyTorch decorates methods with ``@torch.jit.ignore`` / ``@torch.jit.unused``
/ ``@torch.jit.export``, branches on ``torch.jit.is_scripting()`` and annotates with
``torch.jit.annotate`` / ``torch.jit.Final``. In eager mode PyTorch leaves the decorated function
as it was (it only records a flag the compiler reads later), so these do the same: tinymm has no
TorchScript compiler, which is why ``script``, ``trace`` and ``save`` are absent rather than
pretending to compile.
"""
from __future__ import annotations

from typing import Any, Final  # noqa: F401  (torch.jit.Final is typing.Final's twin)

__all__ = ["Final", "annotate", "export", "ignore", "is_scripting", "is_tracing", "unused"]


def _mark(fn, flag: str):
    try:
        setattr(fn, flag, True)
    except (AttributeError, TypeError):  # a builtin or a bound method: nothing to record on
        pass
    return fn


def ignore(drop=False, **kwargs):
    """``@torch.jit.ignore`` or ``@torch.jit.ignore(drop=...)``: the function, unchanged."""
    if callable(drop):
        return _mark(drop, "_torchscript_ignore")
    if not isinstance(drop, bool):
        raise RuntimeError("Argument to @torch.jit.ignore must be a bool or a function but got " + repr(drop))
    return lambda fn: _mark(fn, "_torchscript_ignore")


def unused(fn):
    """``@torch.jit.unused``: the function (or property), unchanged."""
    if isinstance(fn, property):
        for f in (fn.fget, fn.fset):
            if f is not None:
                _mark(f, "_torchscript_unused")
        return fn
    return _mark(fn, "_torchscript_unused")


def export(fn):
    """``@torch.jit.export``: the method, unchanged."""
    return _mark(fn, "_torchscript_export")


def is_scripting() -> bool:
    """Always False: code here runs eagerly."""
    return False


def is_tracing() -> bool:
    """Always False: nothing here traces."""
    return False


def annotate(the_type: Any, the_value: Any) -> Any:
    """``torch.jit.annotate(List[int], [])``: the value itself."""
    return the_value
