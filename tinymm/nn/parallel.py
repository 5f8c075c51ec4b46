"""``nn.DataParallel`` and ``nn.parallel.DistributedDataParallel`` for scripts that wrap their
model: tinymm drives one device, so ``DataParallel`` calls the wrapped module as PyTorch's does
when it has no (or one) GPU, and keeps it as ``.module`` (state-dict keys start with
``module.``, as in PyTorch); ``DistributedDataParallel`` needs a process group, which tinymm
never has (:mod:`tinymm.distributed`), and says so."""
from __future__ import annotations

from tinymm.nn.module import Module

__all__ = ["DataParallel", "DistributedDataParallel"]


class DataParallel(Module):
    def __init__(self, module, device_ids=None, output_device=None, dim: int = 0):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel: expected a Module, got {type(module).__name__}")
        self.module = module
        self.device_ids = [] if device_ids is None else list(device_ids)
        self.output_device, self.dim = output_device, dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


class DistributedDataParallel(Module):
    def __init__(self, module, *args, **kwargs):
        super().__init__()
        raise RuntimeError("Default process group has not been initialized, please make sure to call "
                           "init_process_group. (tinymm has no distributed backend; use the module itself)")
