"""``torch.nn.utils.stateless``: the older home of ``functional_call`` (the same function as
``tinymm.func.functional_call``; PyTorch marks this one deprecated with a FutureWarning, and
so does tinymm)."""
from __future__ import annotations

import warnings

from tinymm.func import module_state

__all__ = ["functional_call"]


def functional_call(module, parameters_and_buffers, args=None, kwargs=None, *, tie_weights: bool = True,
                    strict: bool = False):
    """``tinymm.func.functional_call`` under its deprecated name."""
    warnings.warn("`torch.nn.utils.stateless.functional_call` is deprecated as of PyTorch 2.0 and will be removed in a "
                  "future version of PyTorch. Please use `torch.func.functional_call` instead which is a drop-in "
                  "replacement.", FutureWarning, stacklevel=2)
    return module_state.functional_call(module, parameters_and_buffers, args, kwargs, tie_weights=tie_weights,
                                        strict=strict)
