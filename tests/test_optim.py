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
    np.testing.assert_allclose(pw.detach().numpy(), tw.detach().numpy(), rtol=tol * 10, atol=tol * 10)
    np.testing.assert_allclose(pb.detach().numpy(), tb.detach().numpy(), rtol=tol * 10, atol=tol * 10)
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
    q = nn.Parameter(p.detach().numpy().copy())
    opt2 = optim.AdamW([q], lr=0.5)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.1
    g = rng.standard_normal(5).astype(np.float32)
    p.grad, q.grad = tm.tensor(g), tm.tensor(g)
    opt.step()
    opt2.step()
    np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_optimizer_bad_arguments_are_named():
    p = nn.Parameter(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="SGD: Invalid learning rate: -1"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0: 1.0"):
        optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
@pytest.mark.parametrize("kwargs,message", [
    (dict(lr=NAN), "Invalid learning rate: nan"),
    (dict(lr=INF), "Invalid learning rate: inf"),
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(eps=NAN), "Invalid epsilon value: nan"),
    (dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (dict(weight_decay=NAN), "Invalid weight_decay value: nan"),
    (dict(weight_decay=-1.0), "Invalid weight_decay value: -1.0"),
    (dict(betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    (dict(betas=(-0.1, 0.9)), "Invalid beta parameter at index 0: -0.1"),
    (dict(betas=(0.9, NAN)), "Invalid beta parameter at index 1: nan"),
])
def test_adam_refuses_nan_inf_and_out_of_range_hyperparameters_as_pytorch(cls, kwargs, message):
    p = nn.Parameter(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match=f"{cls.__name__}: {message}"):
        cls([p], **kwargs)
    if torch is not None and not math.isinf(kwargs.get("lr", 0.0)):  # PyTorch accepts lr=inf
        with pytest.raises(ValueError, match=message):
            getattr(torch.optim, cls.__name__)([torch.nn.Parameter(torch.zeros(2))], **kwargs)


@pytest.mark.parametrize("kwargs,message", [
    (dict(lr=NAN), "Invalid learning rate: nan"),
    (dict(momentum=NAN), "Invalid momentum value: nan"),
    (dict(momentum=-0.5), "Invalid momentum value: -0.5"),
    (dict(weight_decay=INF), "Invalid weight_decay value: inf"),
    (dict(dampening=NAN), "Invalid dampening value: nan"),
])
def test_sgd_refuses_nan_inf_and_negative_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=f"SGD: {message}"):
        optim.SGD([nn.Parameter(np.zeros(2, np.float32))], **kwargs)


def test_hyperparameters_of_the_wrong_type_are_named():
    p = nn.Parameter(np.zeros(2, np.float32))
    with pytest.raises(TypeError, match=r"Adam: lr must be a number, got str '0.1'"):
        optim.Adam([p], lr="0.1")
    with pytest.raises(TypeError, match=r"SGD: lr must be a number, got str"):
        optim.SGD([p], lr="0.1")
    with pytest.raises(TypeError, match=r"AdamW: betas must be a pair \(beta1, beta2\), got 0.9"):
        optim.AdamW([p], betas=0.9)
    with pytest.raises(TypeError, match=r"Adam: betas must be a pair"):
        optim.Adam([p], betas=(0.9, 0.99, 0.999))
    with pytest.raises(ValueError, match=r"Adam: Invalid learning rate: nan"):  # a group's own value too
        optim.Adam([{"params": [p], "lr": NAN}])


def test_param_group_without_params_is_named():
    p = nn.Parameter(np.zeros(2, np.float32))
    with pytest.raises(KeyError, match="parameter group 0 has no 'params' key") as info:
        optim.SGD([{"lr": 0.1}], lr=0.1)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith("SGD: parameter group 0")  # no quotes around a KeyError's message
    opt = optim.SGD([p], lr=0.1)
    with pytest.raises(KeyError, match="parameter group 1 has no 'params' key"):
        opt.add_param_group({"lr": 0.2})
    with pytest.raises(TypeError, match="got a single Parameter|got a single Tensor"):
        optim.SGD(p, lr=0.1)


def _adam_with_state():
    ps = [nn.Parameter(np.ones((2, 3), np.float32)), nn.Parameter(np.ones(3, np.float32))]
    opt = optim.Adam(ps, lr=0.1)
    for p in ps:
        p.grad = tm.ones(*p.shape)
    opt.step()
    return ps, opt


def test_load_state_dict_with_a_bad_parameter_index_is_named():
    ps, opt = _adam_with_state()
    sd = opt.state_dict()
    sd["state"][7] = sd["state"].pop(1)
    fresh = optim.Adam(ps, lr=0.1)
    with pytest.raises(ValueError, match=r"state is given for parameter index 7, but the saved parameter groups "
                                         r"list only indices \[0, 1\]"):
        fresh.load_state_dict(sd)
    assert fresh.state == {}  # nothing was half-loaded


@pytest.mark.parametrize("missing", ["exp_avg", "exp_avg_sq", "step"])
def test_load_state_dict_with_missing_state_keys_is_named(missing):
    ps, opt = _adam_with_state()
    sd = opt.state_dict()
    del sd["state"][0][missing]
    with pytest.raises(ValueError, match=f"Adam.load_state_dict: state of parameter 0 lacks '{missing}'"):
        optim.Adam(ps, lr=0.1).load_state_dict(sd)


def test_load_state_dict_checks_shapes_steps_and_hyperparameters():
    ps, opt = _adam_with_state()
    sd = opt.state_dict()
    sd["state"][1]["exp_avg"] = tm.zeros(4)
    with pytest.raises(ValueError, match=r"state 'exp_avg' of parameter 1 has shape \(4,\), the parameter has \(3,\)"):
        optim.Adam(ps).load_state_dict(sd)
    sd = opt.state_dict()
    sd["state"][0]["step"] = -1
    with pytest.raises(ValueError, match="'step' must be a whole number >= 0"):
        optim.Adam(ps).load_state_dict(sd)
    sd = opt.state_dict()
    sd["param_groups"][0]["lr"] = NAN
    with pytest.raises(ValueError, match="Invalid learning rate: nan"):
        optim.Adam(ps).load_state_dict(sd)
    with pytest.raises(ValueError, match="expected a dict with 'state' and 'param_groups'"):
        optim.Adam(ps).load_state_dict([("state", {})])
    # an empty entry is a parameter not yet stepped, and SGD starts a missing momentum buffer (as PyTorch)
    sd = optim.SGD(ps, lr=0.1, momentum=0.9).state_dict()
    sd["state"] = {0: {}, 1: {}}
    fresh = optim.SGD(ps, lr=0.1, momentum=0.9)
    fresh.load_state_dict(sd)
    assert fresh.state[ps[0]] == {}


def test_a_gradient_that_cannot_update_its_parameter_is_named():
    p = nn.Parameter(np.zeros((2, 3), np.float32))
    opt = optim.Adam([p])
    p._grad = tm.zeros(3, 2)  # (past the .grad setter, which refuses it as PyTorch's does)
    with pytest.raises(ValueError, match=r"Adam: a gradient has shape \(3, 2\), its parameter \(2, 3\)"):
        opt.step()
    p._grad = tm.zeros(2, 3, dtype=tm.float64)
    with pytest.raises(TypeError, match="Adam: a gradient has dtype float64, its parameter float32"):
        opt.step()
    p._data = np.zeros((3, 2), np.float32).T
    p.grad = tm.zeros(2, 3)
    with pytest.raises(ValueError, match="not C-contiguous"):
        opt.step()


@needs_torch
def test_loaded_state_continues_exactly_like_an_uninterrupted_run():
    ps, opt = _adam_with_state()
    sd = opt.state_dict()
    copies = [nn.Parameter(p.detach().numpy().copy()) for p in ps]
    resumed = optim.Adam(copies, lr=0.1)
    resumed.load_state_dict(sd)
    for a, b in zip(ps, copies):
        a.grad = b.grad = tm.full(a.shape, 0.5)
    opt.step()
    resumed.step()
    for a, b in zip(ps, copies):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_param_groups_get_their_own_hyperparameters():
    a, b = nn.Parameter(np.ones(2, np.float32)), nn.Parameter(np.ones(2, np.float32))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    a.grad, b.grad = tm.ones(2), tm.ones(2)
    opt.step()
    np.testing.assert_allclose(a.detach().numpy(), 0.9)
    np.testing.assert_allclose(b.detach().numpy(), 0.0)


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
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 0, 0.5, -1.0, -math.inf, "inf"])
def test_clip_grad_norm_matches_torch(norm_type):
    """Besides the usual norms: norm_type=0 is legal in PyTorch (ord-0 "norm": the count of
    non-zero entries, taken per gradient and then over those counts), and negative orders give
    0 when an entry is 0. We follow. One gradient is all zeros, another has a zero entry."""
    rng = np.random.default_rng(0)
    gs = [rng.standard_normal(s).astype(np.float32) * 3 for s in [(3, 4), (5,)]] + [np.zeros(2, np.float32)]
    gs[1][2] = 0.0
    ps = [nn.Parameter(np.zeros(g.shape, np.float32)) for g in gs]
    tps = [torch.nn.Parameter(torch.zeros(g.shape)) for g in gs]
    for p, t, g in zip(ps, tps, gs):
        p.grad, t.grad = tm.tensor(g), torch.tensor(g)
    n1 = optim.clip_grad_norm_(ps, 1.5, norm_type)
    n2 = torch.nn.utils.clip_grad_norm_(tps, 1.5, norm_type)
    np.testing.assert_allclose(n1.item(), n2.item(), rtol=1e-5)
    for p, t in zip(ps, tps):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_grad_norm_zero_norm_type_counts_gradients_with_a_non_zero_entry():
    ps = [nn.Parameter(np.zeros(3, np.float32)) for _ in range(3)]
    for p, g in zip(ps, ([1.0, 0.0, 2.0], [0.0, 0.0, 0.0], [3.0, 0.0, 0.0])):
        p.grad = tm.tensor(np.array(g, np.float32))
    total = optim.clip_grad_norm_(ps, 1.0, norm_type=0)
    assert total.item() == 2.0  # two gradients have a non-zero entry
    np.testing.assert_allclose(ps[2].grad.numpy(), [3.0 / (2.0 + 1e-6), 0, 0], rtol=1e-6)


def test_clip_grad_bad_arguments_are_named():
    p = nn.Parameter(np.zeros(3, np.float32))
    p.grad = tm.ones(3)
    with pytest.raises(ValueError, match="clip_grad_norm_: norm_type is nan"):
        optim.clip_grad_norm_([p], 1.0, norm_type=float("nan"))
    with pytest.raises(TypeError, match="clip_grad_norm_: norm_type must be a number, got str 'two'"):
        optim.clip_grad_norm_([p], 1.0, norm_type="two")
    with pytest.raises(ValueError, match="clip_grad_norm_: max_norm is -1.0, expected a number >= 0"):
        optim.clip_grad_norm_([p], -1.0)
    with pytest.raises(ValueError, match="max_norm is nan"):
        optim.clip_grad_norm_([p], float("nan"))
    np.testing.assert_array_equal(p.grad.numpy(), 1.0)  # untouched by the refused calls
    p.grad = tm.tensor(np.array([np.inf, 0, 0], np.float32))
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is inf"):
        optim.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


@needs_torch
def test_a_pytorch_adam_state_dict_loads_and_continues_like_pytorch():
    """torch saves 'step' as a float tensor and adds group keys of its own (foreach, fused,
    ...): both load, and the next steps match torch's."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((3, 2)).astype(np.float32)
    tp = torch.nn.Parameter(torch.tensor(w))
    topt = torch.optim.AdamW([tp], lr=0.05, weight_decay=0.1)
    for _ in range(2):
        tp.grad = torch.tensor(rng.standard_normal((3, 2)).astype(np.float32))
        topt.step()
    p = nn.Parameter(tp.detach().numpy().copy())
    opt = optim.AdamW([p], lr=0.05, weight_decay=0.1)
    opt.load_state_dict(topt.state_dict())
    assert opt.state[p]["step"] == 2
    for _ in range(2):
        g = rng.standard_normal((3, 2)).astype(np.float32)
        tp.grad, p.grad = torch.tensor(g), tm.tensor(g)
        topt.step()
        opt.step()
    np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
@pytest.mark.parametrize("name, kwargs", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01, amsgrad=True)),
                                          ("RMSprop", dict(momentum=0.9, centered=True)), ("Adagrad", {}),
                                          ("NAdam", {}), ("Rprop", {}), ("ASGD", {})])
def test_optimizer_state_holds_tensors_as_torch(name, kwargs):
    """``optimizer.state[p]`` holds Tensors under torch's keys: ``state["exp_avg"].norm()`` works, and
    the resume idiom ``state[k] = v.to(device)`` leaves training where torch's goes."""
    got = []
    for m in (torch, tm):
        p = m.nn.Parameter(m.tensor([1.0, -2.0, 3.0]))
        opt = getattr(m.optim, name)([p], **kwargs)
        for i in range(4):
            opt.zero_grad()
            (p * p * m.tensor([1.0, 2.0, 3.0])).sum().backward()
            opt.step()
            if i == 1:
                for state in opt.state.values():
                    for k, v in state.items():
                        if isinstance(v, m.Tensor):
                            state[k] = v.to("cpu")
        tensors = {k: v for k, v in opt.state[p].items() if isinstance(v, m.Tensor) and v.ndim > 0}
        got.append((sorted(tensors), [round(float(v.norm()), 5) for _, v in sorted(tensors.items())],
                    p.detach().numpy().round(5).tolist()))
    assert got[1] == got[0]
