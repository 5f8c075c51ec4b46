"""``skip_init``: build a module without caring for its initial parameter values."""
from __future__ import annotations

import inspect


def skip_init(module_cls, *args, **kwargs):
    """``module_cls(*args, **kwargs)`` whose parameters the caller will overwrite. PyTorch builds
    it on the meta device and allocates uninitialised memory; tinymm builds it normally (the
    values are arbitrary either way). As PyTorch, the class must take a ``device`` argument."""
    if "device" not in inspect.signature(module_cls).parameters:
        raise RuntimeError("Module must support a 'device' arg to skip initialization")
    return module_cls(*args, **kwargs)
