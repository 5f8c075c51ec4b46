"""float16 for the layers whose kernels are float32/float64 only (Numba has no float16).

``computes_in_float32`` wraps a public functional: when every floating Tensor argument is
float16 (what ``Module.half()`` gives), they are cast to float32 (a differentiable cast, so
their gradients come back as float16), the function runs, and its floating results are cast
back to float16. That is also how PyTorch's CPU kernels treat float16 (they accumulate in
float32), so results agree with torch's to float16 rounding. Mixed float16/float32 arguments
are passed through unchanged, so the function's own dtype check still reports them.

``writeback`` names arguments updated in place (batch norm's running statistics): their
float32 stand-ins are copied back into the float16 originals after the call.
"""
from __future__ import annotations

import functools
import inspect

import numpy as np

from tinymm.tensor import Tensor


def _floating(v):
    return isinstance(v, Tensor) and v.dtype.kind == "f"


def _leaves(v):
    """The floating Tensors in v (nested plain tuples and lists, as the recurrent layers take)."""
    if _floating(v):
        yield v
    elif isinstance(v, (tuple, list)) and not hasattr(v, "_fields"):
        for item in v:
            yield from _leaves(item)


def _map(v, f):
    if _floating(v):
        return f(v)
    if isinstance(v, (tuple, list)) and not hasattr(v, "_fields"):
        return type(v)(_map(item, f) for item in v)
    return v


def computes_in_float32(fn=None, *, writeback=()):
    """Decorator: run ``fn`` in float32 for all-float16 floating Tensor arguments (see module)."""
    if fn is None:
        return functools.partial(computes_in_float32, writeback=writeback)
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if args and type(args[0]) is Tensor and args[0]._data.dtype.kind == "f" and args[0]._data.dtype != np.float16:
            # a float32/float64 input: not every floating argument is float16, so nothing to
            # cast (the rule below, decided without walking the arguments: ~2 us per call)
            return fn(*args, **kwargs)
        floats = [t for v in (*args, *kwargs.values()) for t in _leaves(v)]
        if not floats or any(t.dtype != np.float16 for t in floats):
            return fn(*args, **kwargs)
        bound = sig.bind(*args, **kwargs)
        originals = dict(bound.arguments)
        for name, v in originals.items():
            bound.arguments[name] = _map(v, lambda t: t.float())
        out = fn(*bound.args, **bound.kwargs)
        for name in writeback:
            if _floating(originals.get(name)):
                originals[name]._data[...] = bound.arguments[name]._data
        return _map(out, lambda t: t.half() if t.dtype == np.float32 else t)

    return wrapper
