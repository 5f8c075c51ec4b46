"""Optimizer state, state dicts, hooks and parameter groups as PyTorch keeps and shows them.

Real training code inspects and rewrites optimizer state (``state["step"].item()``,
``opt.state_dict()["state"][0]["step"]``, loading a checkpoint written by PyTorch, an older one
with int steps), so the state's keys, types and dtypes must be PyTorch's, not just the
parameter trajectories. Each test runs the same program on both libraries and compares.
"""
import copy
import pickle
import warnings

import numpy as np
import pytest

import tinymm as tm
from tinymm import nn, optim
from tinymm.optim import lr_scheduler as S
from tinymm.optim import swa_utils

from helpers import TORCH_REASON

try:
    import torch
except ImportError:  # pragma: no cover - torch is an optional test dependency
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

CONFIGS = [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", {}), ("Adam", dict(amsgrad=True)), ("AdamW", {}),
           ("Adamax", {}), ("NAdam", {}), ("RAdam", {}), ("ASGD", dict(t0=1)), ("Adagrad", dict(lr_decay=0.1)),
           ("Adadelta", {}), ("Rprop", {}), ("RMSprop", dict(momentum=0.5, centered=True)), ("LBFGS", {})]
ONE_STEP_OPTIMIZERS = [name for name, _ in CONFIGS if name != "LBFGS"]


def _lib(lib):
    """(module, its nn) for 'torch' or 'tinymm'."""
    return (torch, torch.nn) if lib == "torch" else (tm, nn)


def _describe(v):
    """A state value's kind, dtype and shape, library-neutral."""
    if isinstance(v, list):
        return ("list", len(v), _describe(next((x for x in v if x is not None), None)))
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        return ("tensor", str(v.dtype).split(".")[-1], tuple(v.shape))
    return (type(v).__name__,)


def _plain(v):
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        return np.asarray(v.detach().numpy() if hasattr(v, "detach") else v, dtype=np.float64)
    return v


def _run(lib, name, kw, dtype, steps=3):
    """An optimizer of ``lib`` stepped ``steps`` times on a fixed quadratic; (param, optimizer)."""
    mod, nn_mod = _lib(lib)
    x = np.array([0.5, -1.5, 2.0], dtype=dtype)
    p = nn_mod.Parameter(mod.tensor(x))
    opt = getattr(mod.optim, name)([p], **kw)
    target = mod.tensor(np.array([1.0, 2.0, -1.0], dtype=dtype))

    def closure():
        opt.zero_grad()
        loss = ((p - target) ** 2 * mod.tensor(np.array([1.0, 3.0, 0.5], dtype=dtype))).sum()
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
    return p, opt


@needs_torch
@pytest.mark.parametrize("default", ["float32", "float64"])
@pytest.mark.parametrize("name,kw", CONFIGS, ids=[f"{n}{'-' + '-'.join(k) if k else ''}" for n, k in CONFIGS])
def test_state_keys_types_and_dtypes_are_torchs(name, kw, default):
    """``step`` is a 0-dim tensor of PyTorch's scalar dtype (float32, float64 when that is the
    default dtype), as are ASGD's eta/mu and NAdam's mu_product; LBFGS keeps Tensors under
    torch's keys; the values agree to rounding."""
    dtype = np.float64 if default == "float64" else np.float32
    old_t, old_m = torch.get_default_dtype(), tm.get_default_dtype()
    torch.set_default_dtype(getattr(torch, default))
    tm.set_default_dtype(getattr(tm, default))
    try:
        tp, topt = _run("torch", name, kw, dtype)
        mp, mopt = _run("tinymm", name, kw, dtype)
    finally:
        torch.set_default_dtype(old_t)
        tm.set_default_dtype(old_m)
    theirs, ours = topt.state[tp], mopt.state[mp]
    assert list(ours) == list(theirs)
    assert {k: _describe(v) for k, v in ours.items()} == {k: _describe(v) for k, v in theirs.items()}
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    if name == "LBFGS" and dtype == np.float32:  # its curvature pairs cancel: float32 dot products differ more
        tol = dict(rtol=1e-3, atol=1e-5)
    for k in theirs:
        a, b = _plain(ours[k]), _plain(theirs[k])
        if isinstance(b, list):
            for x, y in zip(a, b):
                if y is not None:
                    np.testing.assert_allclose(x, y, **tol, err_msg=k)
        else:
            np.testing.assert_allclose(a, b, **tol, err_msg=k)
    np.testing.assert_allclose(mp.detach().numpy(), tp.detach().numpy(), **tol)
    # the state dict holds the live entries, as PyTorch's (deepcopy it for a snapshot)
    assert all(v is ours[k] for k, v in mopt.state_dict()["state"][0].items())


@needs_torch
@pytest.mark.parametrize("name", ["Adam", "RMSprop", "Rprop"])
def test_step_reads_like_torchs(name):
    mp, mopt = _run("tinymm", name, {}, np.float32)
    tp, topt = _run("torch", name, {}, np.float32)
    ours, theirs = mopt.state[mp]["step"], topt.state[tp]["step"]
    assert ours.item() == theirs.item() == 3.0 and int(ours) == int(theirs) == 3
    assert float(mopt.state_dict()["state"][0]["step"]) == 3.0
    assert repr(ours) == repr(theirs) == "tensor(3.)"
    ours += 1  # in place, on the live counter, as torch code may do
    mp.grad = tm.ones(3)
    mopt.step()
    assert mopt.state[mp]["step"].item() == 5.0


def test_adagrad_creates_its_state_at_construction_as_torch():
    p = nn.Parameter(np.ones(2, np.float32))
    opt = optim.Adagrad([p], initial_accumulator_value=0.5)
    assert sorted(opt.state[p]) == ["step", "sum"] and opt.state[p]["step"].item() == 0.0
    np.testing.assert_array_equal(opt.state[p]["sum"].numpy(), [0.5, 0.5])
    assert list(opt.state_dict()["state"]) == [0]


@needs_torch
@pytest.mark.parametrize("name,kw", [("Adam", dict(amsgrad=True)), ("NAdam", {}), ("ASGD", dict(t0=1)),
                                     ("Adagrad", {}), ("RMSprop", dict(centered=True))])
@pytest.mark.parametrize("old_int_steps", [False, True])
def test_a_torch_state_dict_with_tensor_or_int_steps_loads_and_continues(name, kw, old_int_steps):
    """PyTorch's state dict (tensor steps), or an older one with int steps and float scalars,
    loads; the step comes back a 0-dim tensor (an int one of the scalar dtype), and the next
    steps follow torch's."""
    tp, topt = _run("torch", name, kw, np.float32)
    sd = copy.deepcopy(topt.state_dict())
    if old_int_steps:
        for s in sd["state"].values():
            s["step"] = int(s["step"].item())
            for key in ("eta", "mu", "mu_product"):
                if key in s:
                    s[key] = s[key].item()
        topt.load_state_dict(copy.deepcopy(sd))
    mp = nn.Parameter(tp.detach().numpy().copy())
    mopt = getattr(optim, name)([mp], **kw)
    mopt.load_state_dict(sd)
    theirs, ours = topt.state[tp], mopt.state[mp]
    assert {k: _describe(v) for k, v in ours.items()} == {k: _describe(v) for k, v in theirs.items()}
    for _ in range(2):
        g = np.array([0.3, -1.0, 2.0], np.float32)
        tp.grad, mp.grad = torch.tensor(g), tm.tensor(g)
        topt.step()
        mopt.step()
    np.testing.assert_allclose(mp.detach().numpy(), tp.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert ours["step"].item() == theirs["step"].item()


@needs_torch
def test_lbfgs_state_dict_round_trips_through_torch():
    """tinymm's LBFGS state dict loads into torch's LBFGS and back, and both continue alike."""
    mp, mopt = _run("tinymm", "LBFGS", dict(history_size=3, max_iter=4), np.float64, steps=2)
    tp, topt = _run("torch", "LBFGS", dict(history_size=3, max_iter=4), np.float64, steps=2)
    # ours into torch's
    tq = torch.nn.Parameter(torch.tensor(mp.detach().numpy().copy()))
    tq_opt = torch.optim.LBFGS([tq], history_size=3, max_iter=4)
    sd = mopt.state_dict()
    tq_opt.load_state_dict({"state": {0: {k: (torch.tensor(v.numpy()) if isinstance(v, tm.Tensor) else
                                              [torch.tensor(x.numpy()) if isinstance(x, tm.Tensor) else x for x in v]
                                              if isinstance(v, list) else v) for k, v in sd["state"][0].items()}},
                            "param_groups": sd["param_groups"]})
    # torch's into ours
    mq = nn.Parameter(tp.detach().numpy().copy())
    mq_opt = optim.LBFGS([mq], history_size=3, max_iter=4)
    mq_opt.load_state_dict(topt.state_dict())
    assert {k: _describe(v) for k, v in mq_opt.state[mq].items()} == \
        {k: _describe(v) for k, v in topt.state[tp].items()}
    for p_m, o_m, p_t, o_t in ((mq, mq_opt, tp, topt), (mp, mopt, tq, tq_opt)):
        for lib, p, o in (("tinymm", p_m, o_m), ("torch", p_t, o_t)):
            mod = _lib(lib)[0]

            def closure(p=p, o=o, mod=mod):
                o.zero_grad()
                loss = ((p - mod.tensor(np.array([1.0, 2.0, -1.0]))) ** 2).sum()
                loss.backward()
                return loss

            o.step(closure)
        np.testing.assert_allclose(p_m.detach().numpy(), p_t.detach().numpy(), rtol=1e-9, atol=1e-12)


@needs_torch
def test_parameter_groups_as_torch():
    """Duplicates inside a group warn and are numbered as torch numbers them; a set is refused;
    (name, param) pairs give ``param_names``; the group dict itself is kept; non-leaf refused."""
    def both(fn):
        out = []
        for lib in ("torch", "tinymm"):
            mod, nn_mod = _lib(lib)
            try:
                out.append(("ok", fn(mod, lambda: nn_mod.Parameter(mod.ones(2)))))
            except Exception as e:  # noqa: BLE001 - the class is what is compared
                out.append(("error", type(e).__name__ if type(e).__name__ != "ParamGroupError" else "KeyError"))
        assert repr(out[0]) == repr(out[1]), out
        return out[1]

    def duplicates(mod, P):
        p, q = P(), P()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            opt = mod.optim.SGD([p, p], lr=0.1)
        opt.add_param_group({"params": [q], "lr": 0.5})
        return [x.category.__name__ for x in w], [g["params"] for g in opt.state_dict()["param_groups"]]

    assert both(duplicates)[1] == (["UserWarning"], [[1, 1], [2]])

    def named(mod, P):
        opt = mod.optim.Adam([("a", P()), ("b", P())])
        group = {"params": [("c", P())], "lr": 0.5}
        opt.add_param_group(group)
        sd = opt.state_dict()["param_groups"]
        return sd[0]["param_names"], sd[1]["param_names"], sd[1]["params"], opt.param_groups[1] is group

    assert both(named)[1] == (["a", "b"], ["c"], [2], True)
    both(lambda mod, P: mod.optim.SGD([P()], lr=0.1).add_param_group({"params": {P()}}))  # TypeError: a set
    both(lambda mod, P: mod.optim.Adam([("a", P())]).add_param_group({"params": [P()]}))  # names on some only
    both(lambda mod, P: mod.optim.SGD([P() * 2], lr=0.1))  # non-leaf
    both(lambda mod, P: mod.optim.SGD([P()], lr=0.1).add_param_group({"lr": 1.0}))  # KeyError
    p = nn.Parameter(np.ones(2, np.float32))
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        optim.SGD([p], lr=0.1).add_param_group({"params": [p]})


@needs_torch
@pytest.mark.parametrize("name,kw", [("Adam", dict(betas=[0.8, 0.9])), ("NAdam", dict(betas=[0.8, 0.9])),
                                     ("RAdam", dict(betas=[0.8, 0.9])), ("Adamax", dict(betas=(0.8, 0.9))),
                                     ("Rprop", dict(etas=[0.4, 1.1], step_sizes=[1e-5, 10])), ("LBFGS", {})])
def test_print_optimizer_shows_torchs_groups(name, kw):
    """print(opt): the same keys, values and containers (a list of betas stays a list where
    PyTorch keeps it; LBFGS's default lr is the int 1)."""
    ours = getattr(optim, name)([nn.Parameter(np.ones(2, np.float32))], **kw)
    theirs = getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(2))], **kw)
    assert repr(ours) == repr(theirs) and ours.defaults == theirs.defaults


def test_loading_a_state_dict_of_another_shape_raises_torchs_valueerror():
    ps = [nn.Parameter(np.ones(2, np.float32)) for _ in range(3)]
    one = optim.Adam(ps[:1])
    with pytest.raises(ValueError, match="loaded state dict contains a parameter group that doesn't match the size "
                                         "of optimizer's group"):
        one.load_state_dict(optim.Adam(ps[:2]).state_dict())
    with pytest.raises(ValueError, match="loaded state dict has a different number of parameter groups"):
        one.load_state_dict(optim.Adam([{"params": ps[:1]}, {"params": ps[1:]}]).state_dict())


def test_an_empty_state_entry_is_a_parameter_not_yet_stepped():
    p, q = nn.Parameter(np.ones(2, np.float32)), nn.Parameter(np.ones(2, np.float32))
    opt = optim.Adam([p, q])
    opt.state[q]  # PyTorch code often looks before the first step (a defaultdict)
    p.grad = tm.ones(2)
    opt.step()
    sd = opt.state_dict()
    assert sd["state"][1] == {} and sorted(sd["state"][0]) == ["exp_avg", "exp_avg_sq", "step"]
    fresh = optim.Adam([nn.Parameter(np.ones(2, np.float32)), nn.Parameter(np.ones(2, np.float32))])
    fresh.load_state_dict(sd)
    assert fresh.state[fresh.param_groups[0]["params"][1]] == {}


def test_state_dict_and_load_state_dict_hooks_run_in_torchs_order():
    calls = []
    opt = optim.Adam([nn.Parameter(np.ones(2, np.float32))], lr=0.1)
    opt.register_state_dict_pre_hook(lambda o: calls.append("pre"))
    opt.register_state_dict_pre_hook(lambda o: calls.append("pre-first"), prepend=True)

    def add_extra(o, sd):
        calls.append("post")
        return {**sd, "extra": 1}

    opt.register_state_dict_post_hook(add_extra)

    def drop_extra(o, sd):
        calls.append(("load-pre", sorted(sd)))
        sd.pop("extra")  # a shallow copy: the caller's dict keeps it

    opt.register_load_state_dict_pre_hook(drop_extra)
    handle = opt.register_load_state_dict_post_hook(lambda o: calls.append("load-post"))
    sd = opt.state_dict()
    opt.load_state_dict(sd)
    handle.remove()
    opt.load_state_dict(sd)
    assert "extra" in sd
    assert calls == ["pre-first", "pre", "post", ("load-pre", ["extra", "param_groups", "state"]), "load-post",
                     ("load-pre", ["extra", "param_groups", "state"])]


def test_an_optimizer_with_hooks_pickles_and_deep_copies_without_them_as_torch():
    p = nn.Parameter(np.ones(2, np.float32))
    opt = optim.Adam([p], lr=0.1)
    opt.register_step_post_hook(lambda o, a, k: None)  # a lambda: it could not be pickled
    p.grad = tm.ones(2)
    opt.step()
    for other in (pickle.loads(pickle.dumps(opt)), copy.deepcopy(opt)):
        assert len(other._optimizer_step_post_hooks) == 0 and len(opt._optimizer_step_post_hooks) == 1
        q = other.param_groups[0]["params"][0]
        assert other.state[q]["step"].item() == 1.0 and other.state[q]["exp_avg"] is not opt.state[p]["exp_avg"]


def test_step_hooks_global_and_own_in_torchs_order():
    from tinymm.optim import optimizer as O

    seen = []
    p = nn.Parameter(np.ones(2, np.float32))
    opt = optim.SGD([p], lr=0.1)
    g_pre = O.register_optimizer_step_pre_hook(lambda o, a, k: seen.append(("global-pre", a[0] is o)))
    g_post = O.register_optimizer_step_post_hook(lambda o, a, k: seen.append("global-post"))
    try:
        opt.register_step_pre_hook(lambda o, a, k: seen.append("pre"))
        opt.register_step_post_hook(lambda o, a, k: seen.append("post"))
        p.grad = tm.ones(2)
        opt.step()
    finally:
        g_pre.remove()
        g_post.remove()
    opt.step()
    assert seen == [("global-pre", True), "pre", "post", "global-post", "pre", "post"]
    opt.register_step_pre_hook(lambda o, a, k: 5)
    with pytest.raises(RuntimeError, match="must return None or a tuple of"):
        opt.step()


@needs_torch
@pytest.mark.parametrize("name", ONE_STEP_OPTIMIZERS)
def test_a_tensor_lr_steps_as_torchs(name):
    """A 1-element Tensor lr is kept in the group and used as its value; a scheduler fills it
    in place."""
    out = []
    for lib in ("torch", "tinymm"):
        mod, nn_mod = _lib(lib)
        p = nn_mod.Parameter(mod.ones(3))
        opt = getattr(mod.optim, name)([p], lr=mod.tensor(0.05))
        lr = opt.param_groups[0]["lr"]
        sched = mod.optim.lr_scheduler.ExponentialLR(opt, 0.5)
        for _ in range(3):
            p.grad = mod.tensor([1.0, -2.0, 3.0])
            opt.step()
            sched.step()
        assert opt.param_groups[0]["lr"] is lr and float(lr) == pytest.approx(0.05 * 0.5 ** 3)
        out.append(p.detach().numpy().copy())
    np.testing.assert_allclose(out[1], out[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        getattr(optim, name)([nn.Parameter(np.ones(2, np.float32))], lr=tm.tensor([0.1, 0.2]))


@needs_torch
@pytest.mark.parametrize("name", ["Adam", "Adagrad"])
def test_a_fused_groups_step_is_float32_as_torch(name):
    """PyTorch keeps a fused group's step in float32 whatever the default dtype (and casts a
    loaded one so); otherwise float64 under a float64 default."""
    out = []
    old_t, old_m = torch.get_default_dtype(), tm.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    tm.set_default_dtype(tm.float64)
    try:
        for lib in ("torch", "tinymm"):
            mod, nn_mod = _lib(lib)
            row = []
            for kw in (dict(fused=True), {}):
                p = nn_mod.Parameter(mod.ones(3))
                opt = getattr(mod.optim, name)([p], **kw)
                p.grad = mod.ones(3)
                opt.step()
                sd = copy.deepcopy(opt.state_dict())
                sd["state"][0]["step"] = 3
                opt.load_state_dict(sd)
                row.append((str(opt.state_dict()["state"][0]["exp_avg" if name == "Adam" else "sum"].dtype),
                            str(opt.state[p]["step"].dtype)))
            out.append([tuple(x.split(".")[-1] for x in r) for r in row])
    finally:
        torch.set_default_dtype(old_t)
        tm.set_default_dtype(old_m)
    assert out[0] == out[1] == [("float64", "float32"), ("float64", "float64")]


def test_adam_refuses_a_tensor_lr_with_foreach_as_torch():
    with pytest.raises(ValueError, match="lr as a Tensor is not supported for capturable=False and foreach=True"):
        optim.Adam([nn.Parameter(np.ones(2, np.float32))], lr=tm.tensor(0.1), foreach=True)


# ----------------------------------------------------------------------------- LR schedulers


def _norm(v):
    """A scheduler state value, comparable across the libraries (functions as a marker)."""
    if callable(v) and not isinstance(v, type):
        return "<fn>"
    if isinstance(v, float):
        return round(v, 12)
    if isinstance(v, (list, tuple)):
        return type(v)(_norm(x) for x in v)
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    return v


SCHEDULERS = {
    "StepLR": lambda L, o: L.StepLR(o, 3, 0.5),
    "MultiStepLR": lambda L, o: L.MultiStepLR(o, [2, 5, 5], 0.5),
    "LambdaLR": lambda L, o: L.LambdaLR(o, lambda e: 0.9 ** e),
    "MultiplicativeLR": lambda L, o: L.MultiplicativeLR(o, lambda e: 0.9),
    "CosineAnnealingWarmRestarts": lambda L, o: L.CosineAnnealingWarmRestarts(o, 3, 2, 0.001),
    "OneCycleLR": lambda L, o: L.OneCycleLR(o, [1.0, 2.0], total_steps=12, three_phase=True),
    "CyclicLR": lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=3),
    "SequentialLR": lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.1, 1.0, 3), L.CosineAnnealingLR(o, 6)], [3]),
    # past T_max and with eta_min the chained cosine is not a product of factors: torch's
    # chainable form is what must be followed
    "ChainedCosine": lambda L, o: L.ChainedScheduler([L.CosineAnnealingLR(o, 4, 0.01), L.ExponentialLR(o, 0.9)]),
    "ChainedWarmup": lambda L, o: L.ChainedScheduler([L.LinearLR(o, 0.1, 1.0, 3), L.StepLR(o, 2, 0.5)]),
    "ReduceLROnPlateau": lambda L, o: L.ReduceLROnPlateau(o, patience=1, cooldown=1, factor=0.5),
    "SWALR": lambda L, o: (L.SWALR if hasattr(L, "SWALR") else swa_utils.SWALR)(o, swa_lr=[0.05, 0.01],
                                                                                anneal_epochs=3),
}


def _schedule(lib, name):
    mod, nn_mod = _lib(lib)
    ps = [nn_mod.Parameter(mod.ones(2)) for _ in range(2)]
    opt = mod.optim.SGD([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.2}], lr=0.1, momentum=0.9)
    L = mod.optim.swa_utils if name == "SWALR" else mod.optim.lr_scheduler
    sched = SCHEDULERS[name](L, opt)
    lrs = [sched.get_last_lr()]
    for i in range(10):
        opt.step()
        if name == "ReduceLROnPlateau":
            sched.step(5.0 - i if i < 4 else 5.0)
        else:
            sched.step()
        if i == 5 and name == "MultiplicativeLR":
            opt.param_groups[0]["lr"] = 0.3  # a rate set by hand is carried on by the chainable form
        lrs.append(sched.get_last_lr())
    return opt, sched, lrs


@needs_torch
@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_schedulers_rates_and_state_dicts_are_torchs(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_opt, t_sched, t_lrs = _schedule("torch", name)
    m_opt, m_sched, m_lrs = _schedule("tinymm", name)
    np.testing.assert_allclose(np.array(m_lrs), np.array(t_lrs), rtol=1e-12, atol=1e-15)
    assert _norm(m_sched.state_dict()) == _norm(t_sched.state_dict())
    drop = ("params",)
    assert [_norm({k: v for k, v in g.items() if k not in drop}) for g in m_opt.param_groups] == \
        [_norm({k: v for k, v in g.items() if k not in drop}) for g in t_opt.param_groups]


def test_a_lambda_schedulers_state_dict_pickles_and_restores_callable_objects():
    """Plain functions and lambdas are not saved (None, as torch); a callable object's
    attributes are, and loading puts them back."""
    class Decay:
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, epoch):
            return self.rate ** epoch

    opt = optim.SGD([{"params": [nn.Parameter(np.ones(2, np.float32))]},
                     {"params": [nn.Parameter(np.ones(2, np.float32))]}], lr=0.1)
    sched = S.LambdaLR(opt, [lambda e: 1.0, Decay(0.5)])
    sched.step()
    sd = pickle.loads(pickle.dumps(sched.state_dict()))
    assert sd["lr_lambdas"] == [None, {"rate": 0.5}]
    other = S.LambdaLR(opt, [lambda e: 1.0, Decay(0.9)])
    other.load_state_dict(sd)
    assert other.lr_lambdas[1].rate == 0.5 and other.last_epoch == 1 and "lr_lambdas" in sd


def test_a_scheduler_resuming_needs_initial_lr_as_torch():
    opt = optim.SGD([nn.Parameter(np.ones(2, np.float32))], lr=0.1)
    with pytest.raises(KeyError, match="param 'initial_lr' is not specified in param_groups\\[0\\]"):
        S.StepLR(opt, 2, last_epoch=3)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        S.StepLR(object(), 2)
