"""Adafactor against torch.optim.Adafactor: trajectories, factored state, state dicts, errors."""
import copy

import numpy as np
import pytest

import tinymm as tm
from tinymm import nn, optim

from helpers import TORCH_REASON

try:
    import torch
except ImportError:  # pragma: no cover - torch is an optional test dependency
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

SHAPES = [(3, 4), (2, 3, 5), (6,), ()]  # matrices and a 3-d tensor are factored; a vector, a scalar are not


def _draw(dtype, steps):
    rs = np.random.RandomState(0)
    xs = [np.asarray(rs.standard_normal(s)).astype(dtype) for s in SHAPES]
    gs = [[np.asarray(rs.standard_normal(s)).astype(dtype) for s in SHAPES] for _ in range(steps)]
    return xs, gs


def _run(lib, dtype, kw, steps=4, opt=None, params=None):
    mod = torch if lib == "torch" else tm
    xs, gs = _draw(dtype, steps)
    if params is None:
        params = [(torch.nn.Parameter if lib == "torch" else nn.Parameter)(mod.tensor(x)) for x in xs]
    opt = opt or getattr(mod.optim, "Adafactor")(params, **kw)
    for step in gs:
        for p, g in zip(params, step):
            p.grad = mod.tensor(g)
        opt.step()
    return params, opt


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", [{}, dict(lr=0.05, weight_decay=0.1, maximize=True),
                                dict(eps=(1e-20, 1e-3), d=1.5, beta2_decay=-0.5)])
def test_adafactor_matches_torch(dtype, kw):
    ours, mopt = _run("tinymm", dtype, kw)
    theirs, topt = _run("torch", dtype, kw)
    tol = dict(rtol=2e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-15)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), **tol)
        sa, sb = mopt.state[a], topt.state[b]
        assert list(sa) == list(sb)
        for k in sb:
            assert tuple(sa[k].shape) == tuple(sb[k].shape) and str(sa[k].dtype)[7:] == str(sb[k].dtype)[6:]
            np.testing.assert_allclose(sa[k].numpy(), sb[k].numpy(), **tol)
    assert repr(mopt) == repr(topt) and mopt.defaults == topt.defaults


@needs_torch
def test_adafactor_continues_from_a_torch_state_dict():
    theirs, topt = _run("torch", np.float32, {}, steps=2)
    ours = [nn.Parameter(p.detach().numpy().copy()) for p in theirs]
    mopt = optim.Adafactor(ours)
    sd = copy.deepcopy(topt.state_dict())
    for s in sd["state"].values():
        s["step"] = int(s["step"].item())  # an older checkpoint's int step loads too
    mopt.load_state_dict(sd)
    _run("tinymm", np.float32, {}, steps=2, opt=mopt, params=ours)
    _run("torch", np.float32, {}, steps=2, opt=topt, params=theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=2e-6, atol=1e-7)


def test_adafactor_bad_arguments_and_state_are_named():
    p = nn.Parameter(np.ones((2, 3), np.float32))
    for kw, message in ((dict(lr=-1), "Invalid learning rate"), (dict(beta2_decay=0.1), "beta2_decay should be <= 0"),
                        (dict(eps=(-1, 1e-3)), "epsilon1"), (dict(d=0.5), "Clipping threshold d should be >= 1"),
                        (dict(weight_decay=-1), "weight_decay")):
        with pytest.raises(ValueError, match=message):
            optim.Adafactor([p], **kw)
    opt = optim.Adafactor([p])
    p.grad = tm.ones(2, 3)
    opt.step()
    sd = copy.deepcopy(opt.state_dict())
    sd["state"][0]["row_var"] = tm.zeros(3, 1)
    with pytest.raises(ValueError, match=r"'row_var' has shape \(3, 1\), expected \(2, 1\)"):
        optim.Adafactor([p]).load_state_dict(sd)
