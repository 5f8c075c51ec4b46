"""PyTorch's ``out=``, ``layout=`` and ``pin_memory=`` keywords on the factories.

``out`` (``torch.zeros(2, 3, out=t)``, ``torch.arange(5, out=t)``, ``torch.randn(4, out=t)``): the values are made and written into
``out`` (resized when its shape differs, as ``out_arg`` does for the ops), and ``out`` is returned.
As in PyTorch, a factory given ``out`` and no ``dtype`` makes ``out``'s dtype (so
``zeros(2, out=int_tensor)`` gives integer zeros); a ``dtype`` that differs from ``out``'s is
refused (RuntimeError). ``layout`` may only be the strided layout (sparse tensors come from
``sparse_coo_tensor`` or ``.to_sparse()``); ``pin_memory=True`` pins the result (a RuntimeError without a GPU, as PyTorch's CPU
build)."""
from __future__ import annotations

import functools

from tinymm.dtype_objects import as_dtype
from tinymm.factories import pinned
from tinymm.layout_objects import check_layout
from tinymm.ops.out_arg import with_out
from tinymm.tensor import Tensor

# the factories that take out= in PyTorch
NAMES = ("zeros", "ones", "empty", "full", "rand", "randn", "randint", "randperm", "arange", "linspace",
         "logspace", "eye")


def with_factory_out(fn, name: str):
    """``fn`` (a factory with a ``dtype`` keyword) accepting ``out=``, ``layout=`` (strided only)
    and ``pin_memory=``."""
    writer = with_out(fn, name)

    @functools.wraps(fn)
    def call(*args, out=None, layout=None, pin_memory=False, **kwargs):
        check_layout(layout, name)  # every tinymm tensor is strided
        if out is None:
            return pinned(fn(*args, **kwargs), pin_memory)
        if not isinstance(out, Tensor):
            raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
        dtype = kwargs.get("dtype")
        if dtype is None:
            kwargs["dtype"] = out.dtype
        elif as_dtype(dtype) != out.dtype:
            raise RuntimeError(f"{name}(): dtype {as_dtype(dtype)} does not match the out tensor's dtype {out.dtype}")
        return writer(*args, out=out, **kwargs)

    return call


def install(namespace: dict) -> None:
    """Give each factory in ``namespace`` its ``out=`` form."""
    for n in NAMES:
        namespace[n] = with_factory_out(namespace[n], n)
