"""``tinymm.nn.utils.prune`` against ``torch.nn.utils.prune``: masks, state-dict layout,
chained pruning (PruningContainer), removal, global pruning, gradients through the mask, the
forward pre-hook, and PyTorch's errors."""
import numpy as np
import pytest

import tinymm as tm
import tinymm.nn.utils.prune as tm_prune
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)
W = np.array([[0.5, -3.0, 1.0, 0.25], [2.0, -0.1, 4.0, -1.5], [0.75, 3.5, -2.5, 0.05]], np.float32)


def _libs():
    import torch.nn.utils.prune as torch_prune

    return ((tm, tm_prune), (torch, torch_prune))


def _linear(L):
    m = L.nn.Linear(4, 3)
    m.weight.data = L.tensor(W.copy())
    m.bias.data = L.tensor([1.0, -2.0, 0.5])
    return m


def _plain(x):
    if hasattr(x, "detach"):
        return x.detach().numpy().round(5).tolist()
    if isinstance(x, (list, tuple)):
        return [_plain(i) for i in x]
    return x


CASES = {
    "l1": lambda L, P, m: (P.l1_unstructured(m, "weight", amount=0.25), sorted(m.state_dict()), m.weight,
                           [n for n, _ in m.named_parameters()], [n for n, _ in m.named_buffers()], P.is_pruned(m))[1:],
    "l1 count": lambda L, P, m: (P.l1_unstructured(m, "weight", amount=5), m.weight_mask)[1],
    "l1 twice": lambda L, P, m: (P.l1_unstructured(m, "weight", amount=3), P.l1_unstructured(m, "weight", amount=0.5),
                                 m.weight_mask)[2],
    "ln then l1": lambda L, P, m: (P.ln_structured(m, "weight", amount=1, n=2, dim=0),
                                   P.l1_unstructured(m, "weight", amount=2), m.weight_mask)[2],
    "l1 then ln": lambda L, P, m: (P.l1_unstructured(m, "weight", amount=2),
                                   P.ln_structured(m, "weight", amount=1, n=1, dim=1), m.weight_mask)[2],
    "ln inf": lambda L, P, m: (P.ln_structured(m, "weight", amount=0.5, n=float("inf"), dim=1), m.weight_mask)[1],
    "remove": lambda L, P, m: (P.l1_unstructured(m, "weight", amount=3), P.remove(m, "weight"), sorted(m.state_dict()),
                               type(m.weight).__name__, m.weight, P.is_pruned(m), hasattr(m, "weight_orig"))[2:],
    "custom": lambda L, P, m: (P.custom_from_mask(m, "bias", mask=L.tensor([1.0, 0.0, 1.0])), m.bias)[1],
    "identity": lambda L, P, m: (P.identity(m, "weight"), m.weight_mask.sum(), sorted(m.state_dict()))[1:],
    "importance": lambda L, P, m: (P.l1_unstructured(
        m, "weight", amount=2, importance_scores=L.tensor(np.arange(12, dtype=np.float32).reshape(3, 4))), m.weight_mask)[1],
    "random counts": lambda L, P, m: (P.random_unstructured(m, "weight", amount=5), int((m.weight_mask == 0).sum()))[1],
    "random channels": lambda L, P, m: (P.random_structured(m, "weight", amount=2, dim=1),
                                        m.weight_mask.sum(0).tolist().count(0.0))[1],
    "prune()": lambda L, P, m: P.L1Unstructured(amount=2).prune(L.tensor([3.0, -1.0, 0.5, 2.0])),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch(case):
    (L1, P1), (L2, P2) = _libs()
    assert _plain(CASES[case](L1, P1, _linear(L1))) == _plain(CASES[case](L2, P2, _linear(L2)))


def test_global_gradients_and_hook():
    results = []
    for L, P in _libs():
        a = _linear(L)
        P.l1_unstructured(a, "weight", amount=2)
        b = L.nn.Linear(2, 2)
        b.weight.data = L.tensor([[2.0, -0.1], [4.0, 6.0]])
        P.global_unstructured([(a, "weight"), (b, "weight")], pruning_method=P.L1Unstructured, amount=3)
        x = L.ones(2, 4, requires_grad=True)
        a(x).sum().backward()
        with L.no_grad():
            a.weight_orig.mul_(2)  # the pre-hook recomputes weight on the next forward
        results.append(_plain([a.weight_mask, b.weight_mask, a.weight_orig.grad, x.grad, a(L.ones(1, 4))]))
    assert results[0] == results[1]


@pytest.mark.parametrize("call", [
    lambda L, P, m: P.l1_unstructured(m, "weight", amount=1.5),
    lambda L, P, m: P.l1_unstructured(m, "weight", amount="a"),
    lambda L, P, m: P.l1_unstructured(m, "weight", amount=13),
    lambda L, P, m: P.ln_structured(m, "bias", amount=1, n=2, dim=0),
    lambda L, P, m: P.ln_structured(m, "weight", amount=1, n=2, dim=2),
    lambda L, P, m: P.remove(m, "weight"),
    lambda L, P, m: P.global_unstructured([(m, "weight")], pruning_method=P.LnStructured, amount=1, n=2, dim=0),
])
def test_errors_match_torch(call):
    (L1, P1), (L2, P2) = _libs()
    with pytest.raises(Exception) as want:
        call(L2, P2, _linear(L2))
    m = _linear(L1)
    with pytest.raises(want.type):
        call(L1, P1, m)
    assert sorted(m.state_dict()) == ["bias", "weight"]  # a failed pruning leaves the module as it was
