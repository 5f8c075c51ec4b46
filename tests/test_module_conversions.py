"""``Module.to``/``_apply``/``to_empty``/``type`` and the rest of Module's API that PyTorch code
calls (``set_submodule``, ``register_backward_hook``, ``compile``, ``_get_name``), against torch."""
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _net(L):
    return L.nn.Sequential(L.nn.Linear(2, 3), L.nn.BatchNorm1d(3))


@pytest.mark.parametrize("convert", [
    lambda L, m: m.to(L.float64), lambda L, m: m.to("cpu", L.float64), lambda L, m: m.to(L.ones(1, dtype=L.float64)),
    lambda L, m: m.to(device="cpu", dtype=L.float16, non_blocking=True), lambda L, m: m.to(L.device("cpu")),
    lambda L, m: m.double().float(), lambda L, m: m.type(L.float64), lambda L, m: m.to(L.complex64),
    lambda L, m: m.to(memory_format=L.channels_last), lambda L, m: m.to("cpu", L.float64, True),
])
def test_conversions_match_torch(convert):
    got = {k: str(v.dtype).split(".")[-1] for k, v in convert(tm, _net(tm)).state_dict().items()}
    want = {k: str(v.dtype).split(".")[-1] for k, v in convert(torch, _net(torch)).state_dict().items()}
    assert got == want


@pytest.mark.parametrize("call", [
    lambda L, m: m.to(dtype=L.int64), lambda L, m: m.to(L.int32), lambda L, m: m.to("cpu", bogus=1),
    lambda L, m: m.set_submodule("", L.nn.ReLU()), lambda L, m: m.set_submodule("5", L.nn.ReLU(), True),
    lambda L, m: m.set_submodule("0.weight", L.nn.ReLU()), lambda L, m: m.set_submodule("0", 3),
])
def test_errors_match_torch(call):
    with pytest.raises(Exception) as want:
        call(torch, _net(torch))
    with pytest.raises(want.type):
        call(tm, _net(tm))


def test_apply_override_parameters_kept_and_to_empty():
    class WithCache(tm.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = tm.nn.Linear(2, 2)
            self.cache = tm.ones(2)

        def _apply(self, fn, recurse=True):
            super()._apply(fn, recurse)
            self.cache = fn(self.cache)  # PyTorch's idiom for tensors that are not buffers
            return self

    m = WithCache()
    weight = m.lin.weight
    opt = tm.optim.SGD(m.parameters(), lr=0.1)
    m.lin.weight.grad = tm.ones(2, 2)
    m.double()
    assert m.cache.dtype == tm.float64 and m.lin.weight is weight and weight.grad.dtype == tm.float64
    assert opt.param_groups[0]["params"][0] is weight
    e = tm.nn.Linear(3, 4).to_empty(device="cpu")
    assert e.weight.shape == (4, 3) and e.weight.dtype == tm.float32
    bn = tm.nn.BatchNorm1d(3).type(tm.float32)  # type() casts integer buffers too, as PyTorch's
    assert bn.num_batches_tracked.dtype == tm.float32


def test_other_module_api():
    m = tm.nn.Sequential(tm.nn.Linear(2, 2), tm.nn.Sequential(tm.nn.ReLU()))
    m.set_submodule("1.0", tm.nn.Tanh())
    assert isinstance(m[1][0], tm.nn.Tanh) and m._get_name() == "Sequential"
    assert m.compile() is None and tm.nn.Module.call_super_init is False
    seen = []
    lin = tm.nn.Linear(3, 2)
    with pytest.warns(FutureWarning):
        lin.register_backward_hook(lambda mod, gin, gout: seen.append(tuple(gout[0].shape)))
    lin(tm.ones(4, 3, requires_grad=True)).sum().backward()
    assert seen == [(4, 2)]
