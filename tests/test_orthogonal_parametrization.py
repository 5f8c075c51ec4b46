"""``parametrizations.orthogonal`` against PyTorch's (every map, with and without the
trivialization, square and rectangular, assignment) and ``geqrf``."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)
RNG = np.random.default_rng(0)
W = {s: RNG.standard_normal(s) for s in [(4, 4), (5, 3), (3, 5)]}
Q = {s: RNG.standard_normal(s) for s in W}


def _run(L, shape, orthogonal_map, trivial):
    m = L.nn.Linear(shape[1], shape[0], dtype=L.float64)
    m.weight.data = L.tensor(W[shape])
    L.nn.utils.parametrizations.orthogonal(m, orthogonal_map=orthogonal_map, use_trivialization=trivial)
    out = {"keys": sorted(m.state_dict()), "weight": m.weight.detach().numpy()}
    m(L.ones(2, shape[1], dtype=L.float64)).sum().backward()
    out["grad"] = m.parametrizations.weight.original.grad.numpy()
    q = Q[shape] if shape[0] >= shape[1] else Q[shape].T
    q = np.linalg.qr(q)[0]
    m.weight = L.tensor(q if shape[0] >= shape[1] else q.T)
    out["assigned"] = m.weight.detach().numpy()
    return out


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5)])
@pytest.mark.parametrize("orthogonal_map", [None, "matrix_exp", "cayley", "householder"])
@pytest.mark.parametrize("trivial", [True, False])
def test_matches_torch(shape, orthogonal_map, trivial):
    try:
        want = _run(torch, shape, orthogonal_map, trivial)
    except NotImplementedError:
        with pytest.raises(NotImplementedError):
            _run(tm, shape, orthogonal_map, trivial)
        return
    got = _run(tm, shape, orthogonal_map, trivial)
    assert got["keys"] == want["keys"]
    np.testing.assert_allclose(got["weight"], want["weight"], atol=1e-10)
    np.testing.assert_allclose(got["assigned"], want["assigned"], atol=1e-10)
    w = got["weight"]
    np.testing.assert_allclose(w @ w.T if shape[0] <= shape[1] else w.T @ w, np.eye(min(shape)), atol=1e-10)
    if shape[0] == shape[1] or not trivial:
        # (a rectangular trivialized base is completed with random columns, which the gradient sees)
        np.testing.assert_allclose(got["grad"], want["grad"], atol=1e-10)


@pytest.mark.parametrize("call", [
    lambda L: L.nn.utils.parametrizations.orthogonal(L.nn.Linear(3, 3), orthogonal_map="bogus"),
    lambda L: L.nn.utils.parametrizations.orthogonal(L.nn.Linear(3, 3), "bias"),
    lambda L: L.nn.utils.parametrizations.orthogonal(L.nn.Linear(3, 3), "missing"),
])
def test_errors_match_torch(call):
    with pytest.raises(Exception) as want:
        call(torch)
    with pytest.raises(want.type):
        call(tm)


def test_geqrf_matches_torch():
    a = RNG.standard_normal((2, 4, 3))
    got, want = tm.geqrf(tm.tensor(a)), torch.geqrf(torch.tensor(a))
    np.testing.assert_allclose(got.a.numpy(), want.a.numpy(), atol=1e-12)
    np.testing.assert_allclose(got.tau.numpy(), want.tau.numpy(), atol=1e-12)
    np.testing.assert_allclose(tm.linalg.householder_product(*got).numpy(), np.linalg.qr(a)[0], atol=1e-12)
    assert tm.tensor(a).geqrf().tau.shape == (2, 3)
