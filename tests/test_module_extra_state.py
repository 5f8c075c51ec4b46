"""``Module.get_extra_state``/``set_extra_state``: a module's non-tensor state saved in the state
dict under ``<prefix>_extra_state`` (after its own tensors, before its children's), loaded back,
and reported missing; and ``requires_grad`` on an integer tensor refused with PyTorch's class.
Compared with PyTorch."""
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _model(m):
    class WithStep(m.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("scale", m.ones(1))
            self.lin = m.nn.Linear(2, 2)
            self.step = 0

        def get_extra_state(self):
            return {"step": self.step}

        def set_extra_state(self, state):
            self.step = state["step"]

    return m.nn.Sequential(WithStep(), m.nn.ReLU())


@needs_torch
def test_extra_state_round_trip_and_key_order():
    for m in (torch, tm):
        model = _model(m)
        model[0].step = 7
        sd = model.state_dict()
        assert list(sd) == ["0.scale", "0._extra_state", "0.lin.weight", "0.lin.bias"]
        fresh = _model(m)
        fresh.load_state_dict(sd)
        assert fresh[0].step == 7
        partial = {k: v for k, v in sd.items() if k != "0._extra_state"}
        result = fresh.load_state_dict(partial, strict=False)
        assert list(result.missing_keys) == ["0._extra_state"] and not result.unexpected_keys
        with pytest.raises(RuntimeError):
            fresh.load_state_dict(partial)


def test_a_module_without_extra_state_has_no_key():
    assert "_extra_state" not in "".join(tm.nn.Linear(2, 2).state_dict())


@needs_torch
def test_an_integer_parameter_is_refused_as_torch():
    for m in (torch, tm):
        with pytest.raises(RuntimeError, match="floating point"):
            m.nn.Parameter(m.ones(2, dtype=m.int64))
        with pytest.raises(RuntimeError):
            m.ones(2, dtype=m.int64).requires_grad_()
