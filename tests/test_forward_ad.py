"""torch.autograd.forward_ad (dual_level, make_dual, unpack_dual) against PyTorch's forward
mode: the forward-mode tutorial's uses, several duals at once, errors."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _jvp(lib, fn, primals, tangents):
    fwAD = lib.autograd.forward_ad
    with fwAD.dual_level():
        duals = [fwAD.make_dual(lib.tensor(p), lib.tensor(t)) for p, t in zip(primals, tangents)]
        out = fn(lib, *duals)
        primal, tangent = fwAD.unpack_dual(out)
        same = fwAD.unpack_dual(duals[0]).tangent
    return primal.detach().numpy(), None if tangent is None else tangent.numpy(), same.numpy()


@needs_torch
@pytest.mark.parametrize("name,fn,n", [
    ("sin", lambda m, x: x.sin() * 2, 1),
    ("mlp", lambda m, x: m.tanh(x @ m.ones(3, 2, dtype=x.dtype) + 0.5).pow(2).sum(1), 1),
    ("two duals", lambda m, x, y: (x * y).exp() + x / (y * y + 1), 2),
    ("softmax", lambda m, x, y: m.softmax(x * y, dim=-1), 2),
])
def test_jvp_matches_torch_forward_mode(name, fn, n):
    rng = np.random.default_rng(0)
    primals = [rng.standard_normal((4, 3)) for _ in range(n)]
    tangents = [rng.standard_normal((4, 3)) for _ in range(n)]
    for a, b in zip(_jvp(tm, fn, primals, tangents), _jvp(torch, fn, primals, tangents)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@needs_torch
def test_module_parameters_as_duals_as_the_tutorial():
    results = []
    for lib in (tm, torch):
        fwAD = lib.autograd.forward_ad
        model = lib.nn.Linear(5, 3).double()
        with lib.no_grad():
            model.weight.copy_(lib.tensor(np.arange(15.0).reshape(3, 5) / 10))
            model.bias.copy_(lib.tensor([0.1, -0.2, 0.3]))
        inp = lib.tensor(np.linspace(-1, 1, 20).reshape(4, 5))
        params = {name: p for name, p in model.named_parameters()}
        tangents = {name: lib.ones_like(p) * 0.5 for name, p in params.items()}
        with fwAD.dual_level():
            for name, p in params.items():
                delattr(model, name)
                setattr(model, name, fwAD.make_dual(p, tangents[name]))
            out = model(inp)
            results.append(fwAD.unpack_dual(out).tangent.detach().numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)


def test_tangent_identity_independence_and_level_exit():
    fwAD = tm.autograd.forward_ad
    x, t = tm.randn(3, dtype=tm.float64), tm.randn(3, dtype=tm.float64)
    with fwAD.dual_level():
        d = fwAD.make_dual(x, t)
        assert fwAD.unpack_dual(d).tangent is t  # the tutorial's check
        assert fwAD.unpack_dual(tm.ones(3)).tangent is None  # depends on no dual
        y = d * 3
    assert fwAD.unpack_dual(y).tangent is None  # the level is closed


@pytest.mark.parametrize("lib_name", ["tinymm", "torch"])
def test_errors_as_torch(lib_name):
    lib = tm if lib_name == "tinymm" else torch
    if lib is None:
        pytest.skip(TORCH_REASON)
    fwAD = lib.autograd.forward_ad
    with pytest.raises(RuntimeError, match="no level exists"):
        fwAD.make_dual(lib.ones(2), lib.ones(2))
    with fwAD.dual_level():
        with pytest.raises(RuntimeError, match="different size"):
            fwAD.make_dual(lib.ones(2), lib.ones(3))
        with pytest.raises(RuntimeError, match="Nested forward mode AD is not supported"):
            with fwAD.dual_level():
                pass
