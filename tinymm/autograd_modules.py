"""Floor 3: the submodules of ``torch.autograd`` that code imports names from, as views of
``tinymm.autograd`` (one module there):

    from torch.autograd.function import Function, FunctionCtx, once_differentiable
    from torch.autograd.grad_mode import no_grad, enable_grad, set_grad_enabled, inference_mode
    from torch.autograd.anomaly_mode import detect_anomaly, set_detect_anomaly
    from torch.autograd.variable import Variable
    from torch.autograd.gradcheck import gradcheck, gradgradcheck, GradcheckError
    from torch.autograd.graph import saved_tensors_hooks, save_on_cpu, Node   (autograd_saved_hooks)
    import torch.autograd.forward_ad as fwAD                                    (autograd_forward_ad)

``install()`` registers them in ``sys.modules`` (and as attributes of ``tinymm.autograd``,
except ``gradcheck``, which stays the function there, as in PyTorch)."""
from __future__ import annotations

import sys
import types

from tinymm import autograd

_CONTENTS = {
    "function": ("Function", "FunctionCtx", "once_differentiable"),
    "grad_mode": ("no_grad", "enable_grad", "set_grad_enabled", "inference_mode"),
    "anomaly_mode": ("detect_anomaly", "set_detect_anomaly"),
    "variable": ("Variable",),
    "gradcheck": ("gradcheck", "gradgradcheck", "GradcheckError"),
}


def install() -> None:
    for name, names in _CONTENTS.items():
        module = types.ModuleType(f"tinymm.autograd.{name}", f"torch.autograd.{name}: {', '.join(names)} "
                                  "(from tinymm.autograd).")
        for attr in names:
            setattr(module, attr, getattr(autograd, attr))
        module.__all__ = list(names)
        sys.modules[module.__name__] = module
        if name != "gradcheck":
            setattr(autograd, name, module)
    from tinymm import autograd_saved_hooks  # a real module of its own: torch.autograd.graph

    sys.modules["tinymm.autograd.graph"] = autograd_saved_hooks
    autograd.graph = autograd_saved_hooks
    from tinymm import autograd_forward_ad  # torch.autograd.forward_ad

    sys.modules["tinymm.autograd.forward_ad"] = autograd_forward_ad
    autograd.forward_ad = autograd_forward_ad
