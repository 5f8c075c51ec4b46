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

    def __deepcopy__(self, memo):
        """PyTorch's: a new Parameter of the same class holding a copy of the values, with the
        same requires_grad, and nothing else (no .grad, hooks or attributes of its own), so a
        deepcopied model (a DQN target network, a MAML learner) starts without gradients."""
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(Tensor._wrap(self._data.copy()), self.requires_grad)
        memo[id(self)] = result
        return result


# saved as torch.nn.Parameter in PyTorch-format checkpoints, and rebuilt as this class
serialization_pt.PARAMETER_TYPES.append(Parameter)
