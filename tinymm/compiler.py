"""``torch.compiler``: what code calls on it, for an eager-only library.

tinymm has no graph compiler: :func:`tinymm.compile` runs the model as it is (PyTorch's
``backend="eager"``; a Module comes back in an ``OptimizedModule`` wrapper, a function as
itself), so nothing is ever compiling. Here: ``compile`` (that function),
``disable`` and ``allow_in_graph``/``assume_constant_result``/``nested_compile_region`` (their
function, unchanged), ``is_compiling``/``is_dynamo_compiling``/``is_exporting`` (False),
``reset``/``cudagraph_mark_step_begin`` (nothing to reset or mark), ``list_backends`` (none),
``set_stance`` (checks its argument; usable as a context manager and a decorator, as PyTorch's),
and ``wrap_numpy``, which does what PyTorch's does eagerly: a function of NumPy arrays made a
function of Tensors (Tensors in the arguments, at any depth of lists, tuples and dicts, become
arrays; arrays in the result become Tensors)."""
from __future__ import annotations

import contextlib
import functools

import numpy as np

from tinymm.runtime import compile  # noqa: F401
from tinymm.tensor import Tensor

__all__ = ["compile", "reset", "allow_in_graph", "assume_constant_result", "disable", "is_compiling",
           "is_dynamo_compiling", "is_exporting", "list_backends", "set_stance", "wrap_numpy",
           "cudagraph_mark_step_begin", "nested_compile_region"]

_STANCES = ("default", "force_eager", "eager_on_recompile", "fail_on_recompile", "eager_then_compile",
            "aot_eager_then_compile")


def reset() -> None:
    """Clears compiled code (there is none)."""


def cudagraph_mark_step_begin() -> None:
    """Marks a new iteration for CUDA graphs (tinymm records none)."""


def is_compiling() -> bool:
    return False


def is_dynamo_compiling() -> bool:
    return False


def is_exporting() -> bool:
    return False


def list_backends(exclude_tags=("debug", "experimental")) -> list:
    """The registered compiler backends: none (``tinymm.compile`` accepts any name and runs eagerly)."""
    return []


def _unchanged(fn):
    if not callable(fn):
        raise TypeError(f"expected a callable, got {type(fn).__name__}")
    return fn


allow_in_graph = assume_constant_result = _unchanged


def nested_compile_region(fn=None, *, options=None, max_reuse_entries: int = 8, reuse_hash_fn=None):
    return _unchanged if fn is None else _unchanged(fn)


def disable(fn=None, recursive: bool = True, *, reason=None):
    """Excludes ``fn`` from compilation: ``fn`` itself, or a decorator when ``fn`` is None."""
    return _unchanged if fn is None else _unchanged(fn)


class set_stance(contextlib.ContextDecorator):  # noqa: N801
    """How compiled functions behave from now on (or inside ``with``); with no compiler, only
    the argument is checked."""

    def __init__(self, stance: str = "default", *, skip_guard_eval_unsafe: bool = False, force_backend=None):
        if stance not in _STANCES:
            raise RuntimeError(f"set_stance: invalid stance {stance!r}; expected one of {_STANCES}")
        if force_backend is not None and stance != "default":
            raise RuntimeError("set_stance: force_backend can only be used with the 'default' stance")
        self.stance = stance

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False


def _map_leaves(obj, leaf):
    """``obj`` with ``leaf(x)`` for every x inside lists, tuples (named too) and dicts."""
    if isinstance(obj, (list, tuple)):
        items = [_map_leaves(o, leaf) for o in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
    if isinstance(obj, dict):
        return {k: _map_leaves(v, leaf) for k, v in obj.items()}
    return leaf(obj)


def _to_arrays(obj):
    return _map_leaves(obj, lambda x: x.numpy() if isinstance(x, Tensor) else x)


def _to_tensors(obj):
    # (NumPy scalars stay scalars, as in PyTorch)
    return _map_leaves(obj, lambda x: Tensor._of(x) if isinstance(x, np.ndarray) else x)


def wrap_numpy(fn):
    """``fn`` of NumPy arrays → the same function of Tensors (see the module docstring). As in
    PyTorch, a Tensor that requires grad is refused (``numpy()`` of it raises)."""
    _unchanged(fn)

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        return _to_tensors(fn(*_to_arrays(args), **_to_arrays(kwargs)))

    return wrapped
