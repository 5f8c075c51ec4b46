"""``torch.jit`` as seen by code that scripts or traces a model on its way to running it.

tinymm has no TorchScript: there is no graph to compile and no serialized-program format. The
calls are accepted with what they mean here, as ``tinymm.compile`` is:

- ``script(obj)`` returns ``obj`` unchanged (a Module or a function runs as Python, computing
  what its scripted form would);
- ``trace(func, example_inputs)`` runs ``func`` once on the example inputs, as PyTorch's
  tracer does (so a call that cannot run fails here too, with the same exception), and returns
  ``func`` unchanged;
- ``is_scripting()`` and ``is_tracing()`` are False, so code guarded by them takes its eager path;
- the decorators ``ignore``, ``unused``, ``export`` and ``script_if_tracing`` return the function
  (``ignore(drop=True)`` too), ``Final`` is ``typing.Final``, ``annotate(type, value)`` is
  ``value``;
- ``save`` and ``load`` raise ``NotImplementedError``: TorchScript archives hold compiled
  programs that tinymm cannot write or run; ``tinymm.save(model.state_dict(), path)`` and
  ``tinymm.load`` keep the weights (in PyTorch's own zip format).
"""
from __future__ import annotations

import typing

from tinymm.tensor import Tensor

__all__ = ["script", "trace", "trace_module", "is_scripting", "is_tracing", "ignore", "unused", "export",
           "script_if_tracing", "Final", "annotate", "save", "load", "ScriptModule", "ScriptFunction"]

Final = typing.Final


class ScriptModule:
    """Never instantiated by tinymm (``script`` returns the Module itself); here so that
    ``isinstance(m, torch.jit.ScriptModule)`` checks are False, as for an eager module."""


class ScriptFunction:
    """See :class:`ScriptModule`: ``isinstance(f, torch.jit.ScriptFunction)`` is False."""


def script(obj, optimize=None, _frames_up: int = 0, _rcb=None, example_inputs=None):
    """``torch.jit.script``: returns ``obj`` unchanged (see the module docstring). A Module, a
    function or a class is accepted; so are a dict or a list (which PyTorch scripts into its own
    containers); anything else is a TypeError."""
    if callable(obj) or isinstance(obj, (dict, list)):
        return obj
    raise TypeError(f"torch.jit.script: expected a Module, a function, a class, a dict or a list, "
                    f"got {type(obj).__name__}")


def _as_args(example_inputs):
    if isinstance(example_inputs, Tensor):
        return (example_inputs,)
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs)
    if isinstance(example_inputs, dict):
        raise TypeError("trace: pass keyword example inputs as example_kwarg_inputs=, not example_inputs")
    return (example_inputs,)


def trace(func, example_inputs=None, optimize=None, check_trace: bool = True, check_inputs=None,
          check_tolerance: float = 1e-5, strict: bool = True, _force_outplace: bool = False, _module_class=None,
          _compilation_unit=None, example_kwarg_inputs=None, _store_inputs: bool = True):
    """``torch.jit.trace``: run ``func`` on ``example_inputs`` (a Tensor is one argument, a
    tuple or list the arguments; ``example_kwarg_inputs`` a dict of keyword arguments) and
    return ``func`` unchanged. With neither given, the TypeError PyTorch raises."""
    if example_inputs is None and example_kwarg_inputs is None:
        raise TypeError("trace: example_inputs (or example_kwarg_inputs) must be given: 'NoneType' object is not iterable")
    if not callable(func):
        raise TypeError(f"trace: expected a Module or a function, got {type(func).__name__}")
    if example_kwarg_inputs is not None:
        func(**example_kwarg_inputs)
    else:
        func(*_as_args(example_inputs))
    return func


def trace_module(mod, inputs, **kwargs):
    """``torch.jit.trace_module``: run each ``mod.<method>(*inputs[method])`` once, return ``mod``."""
    if not isinstance(inputs, dict):
        raise AttributeError("expected a dictionary of (method_name, input) pairs")
    for method, example in inputs.items():
        trace(getattr(mod, method), example)
    return mod


def is_scripting() -> bool:
    return False


def is_tracing() -> bool:
    return False


def ignore(drop=False, **kwargs):
    """``@torch.jit.ignore`` and ``@torch.jit.ignore(drop=True)``: the function, unchanged."""
    if callable(drop):
        return drop
    if not isinstance(drop, bool):
        raise RuntimeError(f"Argument to @torch.jit.ignore must be a bool or a function but got {drop}")
    return lambda fn: fn


def unused(fn):
    """``@torch.jit.unused``: the function (or property), unchanged."""
    return fn


def export(fn):
    """``@torch.jit.export``: the method, unchanged."""
    return fn


def script_if_tracing(fn):
    """``@torch.jit.script_if_tracing``: the function, unchanged."""
    return fn


def annotate(the_type, the_value):
    """``torch.jit.annotate(List[int], [])``: ``the_value`` (the type is for the TorchScript compiler)."""
    return the_value


_NO_TORCHSCRIPT = ("tinymm has no TorchScript: TorchScript archives hold compiled programs it cannot write or run. "
                   "Save the weights with tinymm.save(model.state_dict(), path) and read them with tinymm.load(path) "
                   "(PyTorch's own zip format, readable by torch.load)")


def save(m, f, _extra_files=None):
    """``torch.jit.save``: refused (see the module docstring)."""
    raise NotImplementedError(f"torch.jit.save: {_NO_TORCHSCRIPT}")


def load(f, map_location=None, _extra_files=None, _restore_shapes: bool = False):
    """``torch.jit.load``: refused (see the module docstring)."""
    raise NotImplementedError(f"torch.jit.load: {_NO_TORCHSCRIPT}")
