"""RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam and the remaining LR schedulers against
torch.optim, step by step; state-dict round trips."""

import numpy as np
import pytest

import tinymm as tm
from tinymm import nn, optim
from tinymm.optim import lr_scheduler as S
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)
# the comparisons step schedulers without a real training step in between
pytestmark = pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)`")


def _pair(make_tm, make_torch, steps=6, dtype=np.float32, split=None):
    """Run both optimizers on the same gradients; ``split`` saves/restores tinymm's state dict
    into a fresh optimizer after that many steps."""
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((4, 3)).astype(dtype)
    b0 = rng.standard_normal(3).astype(dtype)
    grads = [(rng.standard_normal((4, 3)).astype(dtype), rng.standard_normal(3).astype(dtype)) for _ in range(steps)]
    pw, pb = nn.Parameter(w0.copy()), nn.Parameter(b0.copy())
    tw, tb = torch.nn.Parameter(torch.tensor(w0.copy())), torch.nn.Parameter(torch.tensor(b0.copy()))
    o1, o2 = make_tm([pw, pb]), make_torch([tw, tb])
    for i, (gw, gb) in enumerate(grads):
        if split is not None and i == split:
            sd = o1.state_dict()
            o1 = make_tm([pw, pb])
            o1.load_state_dict(sd)
        pw.grad, pb.grad = tm.tensor(gw), tm.tensor(gb)
        tw.grad, tb.grad = torch.tensor(gw), torch.tensor(gb)
        o1.step()
        o2.step()
    # float64 too (NAdam's mu_product and ASGD's eta, mu are float32 scalars in both, as PyTorch)
    tol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(pw.detach().numpy(), tw.detach().numpy(), rtol=tol * 10, atol=tol * 10)
    np.testing.assert_allclose(pb.detach().numpy(), tb.detach().numpy(), rtol=tol * 10, atol=tol * 10)


CASES = [
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, maximize=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.1, maximize=True)),
    ("Adamax", dict()),
    ("Adamax", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    ("NAdam", dict()),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict()),
    ("RAdam", dict(lr=0.01, betas=(0.5, 0.6), weight_decay=0.1)),  # rectified from step 2 on
    ("RAdam", dict(lr=0.01, betas=(0.5, 0.6), weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("Rprop", dict()),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.1), maximize=True)),
    ("ASGD", dict()),
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.5, t0=2, weight_decay=0.1)),
]


@needs_torch
@pytest.mark.parametrize("name,kw", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_optimizers_match_torch(name, kw, dtype):
    _pair(lambda p: getattr(optim, name)(p, **kw), lambda p: getattr(torch.optim, name)(p, **kw), dtype=dtype)


@needs_torch
@pytest.mark.parametrize("name,kw", CASES[2:3] + CASES[5:6] + CASES[7:8] + CASES[9:10] + CASES[11:12] + CASES[14:15]
                         + CASES[17:18] + CASES[19:20])
def test_optimizer_state_dict_round_trip_continues_exactly(name, kw):
    _pair(lambda p: getattr(optim, name)(p, **kw), lambda p: getattr(torch.optim, name)(p, **kw), split=3)


def test_optimizers_refuse_bad_hyperparameters():
    p = [nn.Parameter(np.zeros(3, np.float32))]
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.RMSprop(p, lr=-1)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        optim.NAdam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Invalid rho value"):
        optim.Adadelta(p, rho=1.5)
    with pytest.raises(ValueError, match="lacks 'square_avg'"):
        o = optim.RMSprop(p)
        o.load_state_dict({"state": {0: {"step": 1}}, "param_groups": o.state_dict()["param_groups"]})


def _lrs(sched, opt, steps, metrics=None):
    out = []
    for i in range(steps):
        out.append([g["lr"] for g in opt.param_groups])
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[i])
    return np.array(out)


def _momenta(opt):
    g = opt.param_groups[0]
    return g["betas"][0] if "betas" in g else g["momentum"]


SCHEDULES = {
    "MultiStepLR": lambda S, o: S.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.5),
    "ExponentialLR": lambda S, o: S.ExponentialLR(o, gamma=0.8),
    "ConstantLR": lambda S, o: S.ConstantLR(o, factor=0.25, total_iters=4),
    "PolynomialLR": lambda S, o: S.PolynomialLR(o, total_iters=7, power=2.0),
    "MultiplicativeLR": lambda S, o: S.MultiplicativeLR(o, lr_lambda=lambda e: 0.9 if e % 2 else 0.95),
    "CosineAnnealingWarmRestarts": lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.01),
    "CosineAnnealingWarmRestarts1": lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=4),
    "OneCycleLR": lambda S, o: S.OneCycleLR(o, max_lr=1.0, total_steps=12),
    "OneCycleLR3": lambda S, o: S.OneCycleLR(o, max_lr=[1.0, 0.5], epochs=3, steps_per_epoch=4, three_phase=True,
                                             anneal_strategy="linear", div_factor=10, final_div_factor=100),
    "CyclicLR": lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3, step_size_down=2),
    "CyclicLR2": lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=2, mode="triangular2"),
    "CyclicLRexp": lambda S, o: S.CyclicLR(o, base_lr=[0.01, 0.02], max_lr=0.1, step_size_up=2, mode="exp_range",
                                           gamma=0.9),
    "Chained": lambda S, o: S.ChainedScheduler([S.ConstantLR(o, factor=0.1, total_iters=3),
                                                S.ExponentialLR(o, gamma=0.9)]),
    "Chained2": lambda S, o: S.ChainedScheduler([S.LinearLR(o, start_factor=0.2, total_iters=4),
                                                 S.MultiStepLR(o, milestones=[3, 6], gamma=0.5)]),
}


def _two_groups(mod, make_opt):
    a, b = np.ones(2, np.float32), np.ones(3, np.float32)
    if mod is optim:
        ps = [nn.Parameter(a), nn.Parameter(b)]
    else:
        ps = [torch.nn.Parameter(torch.tensor(a)), torch.nn.Parameter(torch.tensor(b))]
    return make_opt(mod, [{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.3}])


@needs_torch
@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("opt", ["SGD", "Adam"])
def test_schedulers_match_torch_step_by_step(name, opt):
    kw = dict(lr=0.1, momentum=0.9) if opt == "SGD" else dict(lr=0.1)
    o1 = _two_groups(optim, lambda m, g: getattr(m, opt)(g, **kw))
    o2 = _two_groups(torch, lambda m, g: getattr(m.optim, opt)(g, **kw))
    s1, s2 = SCHEDULES[name](S, o1), SCHEDULES[name](torch.optim.lr_scheduler, o2)
    steps = 12 if name.startswith("OneCycle") else 14
    for i in range(steps):
        np.testing.assert_allclose([g["lr"] for g in o1.param_groups], [g["lr"] for g in o2.param_groups],
                                   rtol=1e-12, atol=1e-15, err_msg=f"{name} step {i}")
        np.testing.assert_allclose(_momenta(o1), _momenta(o2), rtol=1e-12, err_msg=f"{name} momentum step {i}")
        assert s1.get_last_lr() == pytest.approx(s2.get_last_lr(), rel=1e-12)
        s1.step()
        s2.step()


@needs_torch
def test_warm_restarts_with_fractional_epochs_match_torch():
    o1 = optim.SGD([nn.Parameter(np.ones(2, np.float32))], lr=0.1)
    o2 = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1)
    s1 = S.CosineAnnealingWarmRestarts(o1, T_0=2, T_mult=2)
    s2 = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o2, T_0=2, T_mult=2)
    for epoch in range(7):
        for i in range(3):
            s1.step(epoch + i / 3)
            s2.step(epoch + i / 3)
            assert o1.param_groups[0]["lr"] == pytest.approx(o2.param_groups[0]["lr"], rel=1e-12)


@needs_torch
@pytest.mark.parametrize("kw", [dict(), dict(mode="max", factor=0.5, patience=1, threshold=0.1, threshold_mode="abs",
                                             cooldown=2, min_lr=0.01)])
def test_reduce_lr_on_plateau_matches_torch(kw):
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.9, 0.9, 0.9] * 3
    if kw.get("mode") == "max":
        metrics = [1 - m for m in metrics]
    kw = dict(kw, patience=kw.get("patience", 2))
    o1 = optim.SGD([nn.Parameter(np.ones(2, np.float32))], lr=0.1)
    o2 = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1)
    s1 = S.ReduceLROnPlateau(o1, **kw)
    s2 = torch.optim.lr_scheduler.ReduceLROnPlateau(o2, **kw)
    np.testing.assert_allclose(_lrs(s1, o1, len(metrics), metrics), _lrs(s2, o2, len(metrics), metrics), rtol=1e-12)


@pytest.mark.parametrize("name", ["OneCycleLR", "CyclicLR", "MultiplicativeLR", "CosineAnnealingWarmRestarts",
                                  "Chained"])
def test_scheduler_state_dict_resumes(name):
    def build():
        o = _two_groups(optim, lambda m, g: optim.SGD(g, lr=0.1, momentum=0.9))
        return o, SCHEDULES[name](S, o)

    o1, s1 = build()
    for _ in range(4):
        s1.step()
    o2, s2 = build()
    o2.load_state_dict(o1.state_dict())
    s2.load_state_dict(s1.state_dict())
    for _ in range(4):
        s1.step()
        s2.step()
        assert [g["lr"] for g in o1.param_groups] == [g["lr"] for g in o2.param_groups]


def test_scheduler_bad_arguments_are_named():
    o = optim.SGD([nn.Parameter(np.ones(2, np.float32))], lr=0.1)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        S.ReduceLROnPlateau(o, factor=1.5)
    with pytest.raises(ValueError, match="total_steps OR"):
        S.OneCycleLR(o, max_lr=1.0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        S.ConstantLR(o, factor=2.0)
    with pytest.raises(ValueError, match="momentum or beta1"):
        S.OneCycleLR(optim.Adagrad([nn.Parameter(np.ones(2, np.float32))]), max_lr=1.0, total_steps=3)
    s = S.OneCycleLR(o, max_lr=1.0, total_steps=2)
    s.step()
    s.step()
    with pytest.raises(ValueError, match="Tried to step 3 times"):
        s.step()


@needs_torch
@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
@pytest.mark.parametrize("problem", ["least_squares", "rosenbrock"])
def test_lbfgs_matches_torch(line_search_fn, problem):
    rng = np.random.default_rng(0)
    A, b = rng.standard_normal((6, 4)), rng.standard_normal(6)
    w0 = np.array([-1.2, 1.0, -0.5, 0.8])

    def loss_of(w, lib):
        if problem == "rosenbrock":
            return (100 * (w[1:] - w[:-1] ** 2) ** 2 + (1 - w[:-1]) ** 2).sum()
        r = lib.tensor(A) @ w - lib.tensor(b)
        return (r * r).sum() + 0.1 * (w ** 4).sum()

    kw = dict(lr=1 if line_search_fn else 0.2, max_iter=10, history_size=4, line_search_fn=line_search_fn)
    p, pt = nn.Parameter(w0.copy()), torch.nn.Parameter(torch.tensor(w0.copy()))
    o, ot = optim.LBFGS([p], **kw), torch.optim.LBFGS([pt], **kw)

    def closure():
        o.zero_grad()
        loss = loss_of(p, tm)
        loss.backward()
        return loss

    def closure_t():
        ot.zero_grad()
        loss = loss_of(pt, torch)
        loss.backward()
        return loss

    for _ in range(4):
        l1, l2 = o.step(closure), ot.step(closure_t)
        # float64 rounding differs in the last bits and Rosenbrock's curvature amplifies it a little
        assert float(l1.detach().numpy()) == pytest.approx(float(l2.detach()), rel=1e-6, abs=1e-12)
        np.testing.assert_allclose(p.detach().numpy(), pt.detach().numpy(), rtol=1e-6, atol=1e-10)
        assert o.state[p]["func_evals"] == ot.state[pt]["func_evals"]


def test_lbfgs_state_dict_round_trip_continues_exactly():
    # LBFGS keeps flat vectors over all parameters: not shaped like the first (a (2, 2) here)
    def run(resume):
        ps = [nn.Parameter(np.array([[1.0, -2.0], [0.5, 3.0]])), nn.Parameter(np.array([0.3, -0.7, 1.1]))]
        o = optim.LBFGS(ps, max_iter=3, history_size=2)

        def closure():
            o.zero_grad()
            loss = (ps[0] ** 4).sum() + ((ps[1] - 1.0) ** 2).sum() + (ps[0] * 0.5).sum()
            loss.backward()
            return loss

        for k in range(4):
            if resume and k == 2:
                saved = o.state_dict()
                o = optim.LBFGS(ps, max_iter=3, history_size=2)
                o.load_state_dict(saved)
            o.step(closure)
        return np.concatenate([p.detach().numpy().ravel() for p in ps])

    np.testing.assert_array_equal(run(True), run(False))


def test_lbfgs_needs_a_closure_and_one_group():
    p = nn.Parameter(np.zeros(2))
    with pytest.raises(RuntimeError, match="requires a closure"):
        optim.LBFGS([p]).step()
    with pytest.raises(ValueError, match="parameter groups"):
        optim.LBFGS([{"params": [p]}, {"params": [nn.Parameter(np.zeros(1))]}])
    with pytest.raises(ValueError, match="strong_wolfe"):
        optim.LBFGS([p], line_search_fn="armijo")


@needs_torch
def test_a_scheduler_written_for_pytorch_with_get_lr_runs_unchanged():
    def make(lib_sched):
        class WarmupThenHalve(lib_sched._LRScheduler):
            def __init__(self, optimizer, warmup, last_epoch=-1):
                self.warmup = warmup
                super().__init__(optimizer, last_epoch)

            def get_lr(self):
                if self.last_epoch < self.warmup:
                    return [base * (self.last_epoch + 1) / self.warmup for base in self.base_lrs]
                return [group["lr"] * (0.5 if self.last_epoch % 3 == 0 else 1.0)
                        for group in self.optimizer.param_groups]

        return WarmupThenHalve

    o1 = _two_groups(optim, lambda m, g: optim.SGD(g, lr=0.1))
    o2 = _two_groups(torch, lambda m, g: torch.optim.SGD(g, lr=0.1))
    s1, s2 = make(S)(o1, 3), make(torch.optim.lr_scheduler)(o2, 3)
    for _ in range(10):
        assert [g["lr"] for g in o1.param_groups] == pytest.approx([g["lr"] for g in o2.param_groups], rel=1e-12)
        o1.step(), o2.step()
        s1.step(), s2.step()
    s3 = S.StepLR(o1, step_size=2)
    with pytest.warns(UserWarning, match=r"epoch parameter in `scheduler.step\(\)`"):
        s3.step(7)  # PyTorch's deprecated epoch argument: jump there (the closed form), with its warning
    assert o1.param_groups[0]["lr"] == pytest.approx(s3.base_lrs[0] * 0.1 ** 3)


@needs_torch
@pytest.mark.parametrize("name,kw", [("RMSprop", dict(lr=0.01, momentum=0.9, centered=True)),
                                     ("Adagrad", dict(lr=0.1)), ("Adadelta", dict()), ("Adamax", dict()),
                                     ("NAdam", dict()), ("RAdam", dict()), ("Rprop", dict()),
                                     ("ASGD", dict(t0=1))])
def test_a_pytorch_state_dict_loads_and_continues_like_pytorch(name, kw):
    rng = np.random.default_rng(4)
    w = rng.standard_normal((3, 2)).astype(np.float32)
    tp = torch.nn.Parameter(torch.tensor(w))
    topt = getattr(torch.optim, name)([tp], **kw)
    for _ in range(3):
        tp.grad = torch.tensor(rng.standard_normal((3, 2)).astype(np.float32))
        topt.step()
    p = nn.Parameter(tp.detach().numpy().copy())
    opt = getattr(optim, name)([p], **kw)
    opt.load_state_dict(topt.state_dict())
    assert opt.state[p]["step"] == 3
    for _ in range(3):
        g = rng.standard_normal((3, 2)).astype(np.float32)
        tp.grad, p.grad = torch.tensor(g), tm.tensor(g)
        topt.step()
        opt.step()
    np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=1e-5, atol=1e-6)


@needs_torch
def test_warm_restarts_inside_sequential_lr_match_torch():
    def run(lib, S_mod, make_param):
        o = lib.optim.SGD([make_param()], lr=0.1, momentum=0.9)
        warm = S_mod.LinearLR(o, start_factor=0.1, total_iters=3)
        rest = S_mod.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=2, eta_min=0.01)
        seq = S_mod.SequentialLR(o, [warm, rest], milestones=[3])
        out = []
        for _ in range(16):
            out.append(o.param_groups[0]["lr"])
            o.step()
            seq.step()
        return out

    ours = run(tm, S, lambda: nn.Parameter(np.ones(2, np.float32)))
    theirs = run(torch, torch.optim.lr_scheduler, lambda: torch.nn.Parameter(torch.ones(2)))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_step_hooks_run_around_each_step_once_and_can_be_removed():
    calls = []
    for opt in (optim.SGD([nn.Parameter(np.ones(2, np.float32))], lr=0.1),
                optim.LBFGS([nn.Parameter(np.ones(2))], max_iter=2)):
        pre = opt.register_step_pre_hook(lambda o, a, k: calls.append(("pre", type(o).__name__)))
        post = opt.register_step_post_hook(lambda o, a, k: calls.append(("post", type(o).__name__)))
        p = opt.param_groups[0]["params"][0]

        def closure(p=p, opt=opt):
            opt.zero_grad()
            loss = (p * p).sum()
            loss.backward()
            return loss

        opt.step(closure)
        pre.remove()
        post.remove()
        opt.step(closure)
    assert calls == [("pre", "SGD"), ("post", "SGD"), ("pre", "LBFGS"), ("post", "LBFGS")]
