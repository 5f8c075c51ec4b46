"""Optimizers, schedules and clipping against torch.optim; state-dict round trips."""
import math

import numpy as np
import pytest

import tinymm as tm
from tinymm import nn, optim
from tinymm.optim import lr_scheduler as S
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _run_pair(make_tm, make_torch, steps=5, dtype=np.float32):
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((4, 3)).astype(dtype)
    b0 = rng.standard_normal(3).astype(dtype)
    grads = [(rng.standard_normal((4, 3)).astype(dtype), rng.standard_normal(3).astype(dtype)) for _ in range(steps)]
    pw, pb = nn.Parameter(w0.copy()), nn.Parameter(b0.copy())
    tw, tb = torch.nn.Parameter(torch.tensor(w0.copy())), torch.nn.Parameter(torch.tensor(b0.copy()))
    o1, o2 = make_tm([pw, pb]), make_torch([tw, tb])
    for gw, gb in grads:
        pw.grad, pb.grad = tm.tensor(gw), tm.tensor(gb)
        tw.grad, tb.grad = torch.tensor(gw), torch.tensor(gb)
        o1.step()
        o2.step()
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(pw.numpy(), tw.detach().numpy(), rtol=tol * 10, atol=tol * 10)
    np.testing.assert_allclose(pb.numpy(), tb.detach().numpy(), rtol=tol * 10, atol=tol * 10)
    return o1


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01),
    dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1),
    dict(lr=0.05, momentum=0.5, maximize=True),
]


@needs_torch
@pytest.mark.parametrize("kw", SGD_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_matches_torch(kw, dtype):
    _run_pair(lambda p: optim.SGD(p, **kw), lambda p: torch.optim.SGD(p, **kw), dtype=dtype)


ADAM_CASES = [
    dict(lr=0.01),
    dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
    dict(lr=0.01, amsgrad=True, weight_decay=0.05),
    dict(lr=0.01, maximize=True),
]


@needs_torch
@pytest.mark.parametrize("kw", ADAM_CASES)
@pytest.mark.parametrize("cls", ["Adam", "AdamW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_and_adamw_match_torch(kw, cls, dtype):
    _run_pair(lambda p: getattr(optim, cls)(p, **kw), lambda p: getattr(torch.optim, cls)(p, **kw), dtype=dtype)


@needs_torch
def test_optimizer_state_dict_resumes_exactly():
    rng = np.random.default_rng(0)
    p = nn.Parameter(rng.standard_normal(5).astype(np.float32))
    opt = optim.AdamW([p], lr=0.1, amsgrad=True)
    for _ in range(3):
        p.grad = tm.tensor(rng.standard_normal(5).astype(np.float32))
        opt.step()
    sd = opt.state_dict()
    q = nn.Parameter(p.numpy().copy())
    opt2 = optim.AdamW([q], lr=0.5)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.1
    g = rng.standard_normal(5).astype(np.float32)
    p.grad, q.grad = tm.tensor(g), tm.tensor(g)
    opt.step()
    opt2.step()
    np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_optimizer_bad_arguments_are_named():
    p = nn.Parameter(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="invalid learning rate -1"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="more than one group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_param_groups_get_their_own_hyperparameters():
    a, b = nn.Parameter(np.ones(2, np.float32)), nn.Parameter(np.ones(2, np.float32))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    a.grad, b.grad = tm.ones(2), tm.ones(2)
    opt.step()
    np.testing.assert_allclose(a.numpy(), 0.9)
    np.testing.assert_allclose(b.numpy(), 0.0)


def _lrs(sched_factory, steps, lib):
    p = (torch.nn.Parameter(torch.zeros(1)) if lib == "torch" else nn.Parameter(np.zeros(1, np.float32)))
    opt = (torch.optim.SGD([p], lr=0.5) if lib == "torch" else optim.SGD([p], lr=0.5))
    sched = sched_factory(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@needs_torch
@pytest.mark.parametrize(
    "name",
    ["step", "cosine", "linear", "lambda", "sequential"],
)
def test_schedules_match_torch(name):
    T = torch.optim.lr_scheduler
    pairs = {
        "step": (lambda o: S.StepLR(o, 3, 0.5), lambda o: T.StepLR(o, 3, 0.5)),
        "cosine": (lambda o: S.CosineAnnealingLR(o, 10, 0.01), lambda o: T.CosineAnnealingLR(o, 10, 0.01)),
        "linear": (lambda o: S.LinearLR(o, 0.1, 1.0, 4), lambda o: T.LinearLR(o, 0.1, 1.0, 4)),
        "lambda": (lambda o: S.LambdaLR(o, lambda e: 0.9**e), lambda o: T.LambdaLR(o, lambda e: 0.9**e)),
        "sequential": (
            lambda o: S.SequentialLR(o, [S.LinearLR(o, 0.1, 1.0, 3), S.CosineAnnealingLR(o, 8)], [3]),
            lambda o: T.SequentialLR(o, [T.LinearLR(o, 0.1, 1.0, 3), T.CosineAnnealingLR(o, 8)], [3]),
        ),
    }
    ours, theirs = pairs[name]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = _lrs(theirs, 12, "torch")
    np.testing.assert_allclose(_lrs(ours, 12, "tinymm"), want, rtol=1e-9, atol=1e-12)


def test_warmup_cosine_shape():
    p = nn.Parameter(np.zeros(1, np.float32))
    opt = optim.SGD([p], lr=1.0)
    sched = S.warmup_cosine(opt, warmup_steps=4, total_steps=14, eta_min=0.0)
    lrs = []
    for _ in range(14):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs[0] < 0.01 and abs(lrs[4] - 1.0) < 1e-12 and lrs == sorted(lrs[:5]) + lrs[5:]
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:])) and lrs[-1] < 0.05


@needs_torch
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_clip_grad_norm_matches_torch(norm_type):
    rng = np.random.default_rng(0)
    gs = [rng.standard_normal(s).astype(np.float32) * 3 for s in [(3, 4), (5,)]]
    ps = [nn.Parameter(np.zeros(g.shape, np.float32)) for g in gs]
    tps = [torch.nn.Parameter(torch.zeros(g.shape)) for g in gs]
    for p, t, g in zip(ps, tps, gs):
        p.grad, t.grad = tm.tensor(g), torch.tensor(g)
    n1 = optim.clip_grad_norm_(ps, 1.5, norm_type)
    n2 = torch.nn.utils.clip_grad_norm_(tps, 1.5, norm_type)
    np.testing.assert_allclose(n1.item(), n2.item(), rtol=1e-5)
    for p, t in zip(ps, tps):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-7)
