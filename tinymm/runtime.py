"""Process-wide settings that PyTorch training scripts set at the top, with their PyTorch names.

Each does what it says where tinymm has the thing, and says what it does where it does not:

- ``set_num_threads(n)`` / ``get_num_threads()``: Numba's kernel threads and the BLAS library's
  threads (tinymm's two thread pools); ``set_num_interop_threads`` is stored (tinymm runs ops
  one after another, there is no inter-op pool).
- ``set_float32_matmul_precision("highest" | "high" | "medium")``: stored and returned by the
  getter; tinymm's float32 products are always full float32 ("highest"), which PyTorch's CPU
  products also are whatever the setting.
- ``use_deterministic_algorithms(mode, warn_only=False)``: stored. Every tinymm op is already
  deterministic on the CPU (no atomics; reductions split work the same way every run).
- ``compile(model)`` compiles nothing: tinymm has no graph compiler, and running the module as
  it is computes exactly what a compiled one would (PyTorch's ``backend="eager"``). A function
  comes back itself; a Module comes back wrapped in ``tinymm.nn.compiled.OptimizedModule``, the
  shape PyTorch gives it (``_orig_mod``, ``_orig_mod.``-prefixed state_dict keys).
- ``set_printoptions(precision, threshold, edgeitems, linewidth, profile, sci_mode)``: how
  Tensors print.
- ``channels_last``, ``contiguous_format``, ``preserve_format``, ``channels_last_3d``: memory
  formats. tinymm's arrays are always row-major; ``to``/``contiguous`` accept a format and keep
  the values (the layout is an optimisation, not a meaning).
"""
from __future__ import annotations

from tinymm.tensor_str import set_printoptions  # noqa: F401  (fmt: how Tensors print lives there)

__all__ = [
    "set_num_threads", "get_num_threads", "set_num_interop_threads", "get_num_interop_threads",
    "set_float32_matmul_precision", "get_float32_matmul_precision", "use_deterministic_algorithms",
    "are_deterministic_algorithms_enabled", "is_deterministic_algorithms_warn_only_enabled", "compile",
    "set_printoptions", "memory_format", "channels_last", "channels_last_3d", "contiguous_format", "preserve_format",
]

_settings = {"interop_threads": 1, "matmul_precision": "highest", "deterministic": False, "warn_only": False}


def _positive(fn: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise RuntimeError(f"{fn}: expected a positive int number of threads, got {n!r}")
    return n


def set_num_threads(n: int) -> None:
    """Run Numba kernels and BLAS on ``n`` threads (Numba's at most its configured maximum)."""
    import numba
    from threadpoolctl import threadpool_limits

    n = _positive("set_num_threads", n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(n, user_api="blas")


def get_num_threads() -> int:
    import numba

    return int(numba.get_num_threads())


def set_num_interop_threads(n: int) -> None:
    _settings["interop_threads"] = _positive("set_num_interop_threads", n)


def get_num_interop_threads() -> int:
    return _settings["interop_threads"]


def set_float32_matmul_precision(precision: str) -> None:
    if precision not in ("highest", "high", "medium"):
        raise RuntimeError(f"set_float32_matmul_precision: expected 'highest', 'high' or 'medium', got {precision!r}")
    _settings["matmul_precision"] = precision


def get_float32_matmul_precision() -> str:
    return _settings["matmul_precision"]


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    if not isinstance(mode, bool):
        raise RuntimeError(f"use_deterministic_algorithms expects a bool, but got {type(mode).__name__}")
    _settings["deterministic"], _settings["warn_only"] = mode, bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    return _settings["deterministic"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _settings["warn_only"]


def compile(model=None, *, fullgraph: bool = False, dynamic=None, backend="inductor", mode=None, options=None,
            disable: bool = False):
    """``torch.compile``: returns ``model`` unchanged (see the module docstring); as a decorator
    (``model=None``), returns a decorator that does the same."""
    if mode is not None and options is not None:
        raise RuntimeError("Either mode or options can be specified, but both can't be specified at the same time.")
    if model is None:
        return lambda fn: fn
    if not callable(model):
        raise RuntimeError(f"compile: expected a callable (a Module or a function), got {type(model).__name__}")
    if disable:
        return model
    for wrap in _module_wrappers:
        wrapped = wrap(model, {"fullgraph": fullgraph, "dynamic": dynamic, "backend": backend, "mode": mode,
                               "options": options})
        if wrapped is not None:
            return wrapped
    return model


# tinymm.nn registers how a Module is wrapped (its OptimizedModule): a Module exists only once
# tinymm.nn is imported, and this floor may not import it
_module_wrappers: list = []


def register_module_wrapper(wrap) -> None:
    """``wrap(model, options)`` returns the wrapped model, or None for what it does not wrap."""
    if wrap not in _module_wrappers:
        _module_wrappers.append(wrap)


class memory_format:
    """A memory layout name (``torch.memory_format``)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def __reduce__(self):
        return self.name  # pickles as the module attribute of that name


contiguous_format = memory_format("contiguous_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")
preserve_format = memory_format("preserve_format")
