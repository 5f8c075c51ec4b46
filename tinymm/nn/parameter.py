"""``Parameter``: a Tensor that a Module registers as learnable (requires_grad by default)."""
from __future__ import annotations

from tinymm import serialization_pt
from tinymm.tensor import Tensor


class Parameter(Tensor):
    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        self._init(data._data if isinstance(data, Tensor) else data, None, None, False)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


# saved as torch.nn.Parameter in PyTorch-format checkpoints, and rebuilt as this class
serialization_pt.PARAMETER_TYPES.append(Parameter)
