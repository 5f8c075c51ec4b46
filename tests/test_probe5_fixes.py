"""Gaps the probe5 scripts (tests/pytorch_scripts: ddpm, moe_transformer, realnvp, tcn, clip,
lora, ppo, text_classifiers, gnn, vqvae, audio_classifier) and their idioms found, each compared
with torch."""
import warnings

import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


# ---------------------------------------------------------------- division by zero
@needs_torch
def test_division_by_zero_gives_torchs_inf_and_nan_without_a_warning():
    num = np.array([1.0, -1.0, 0.0, 2.0], np.float32)
    den = np.array([0.0, 0.0, 0.0, 4.0], np.float32)
    want_x = torch.tensor(num, requires_grad=True)
    want_y = torch.tensor(den, requires_grad=True)
    want = want_x / want_y
    want.backward(torch.ones(4))
    x, y = tm.tensor(num, requires_grad=True), tm.tensor(den, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DDPM schedule's 1 / alphas_cumprod reaches 0
        got = x / y
        got.backward(tm.ones(4))
        scalar = 1.0 / tm.tensor([0.0, 2.0])
    np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
    np.testing.assert_array_equal(x.grad.numpy(), want_x.grad.numpy())
    np.testing.assert_array_equal(y.grad.numpy(), want_y.grad.numpy())
    np.testing.assert_array_equal(scalar.numpy(), (1.0 / torch.tensor([0.0, 2.0])).numpy())


# ---------------------------------------------------------------- parametrize.cached
def _weight_normed(lib):
    conv = lib.nn.Conv1d(2, 3, 2)
    conv.weight.data.copy_(lib.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 2, 2)))
    return lib.nn.utils.parametrizations.weight_norm(conv)


@needs_torch
def test_parametrize_cached_hands_out_one_tensor_per_block_as_torch():
    for lib in (torch, tm):
        conv = _weight_normed(lib)
        P = lib.nn.utils.parametrize
        assert conv.weight is not conv.weight
        with P.cached():
            w1 = conv.weight
            with P.cached():  # nested blocks share the cache
                assert conv.weight is w1
            assert conv.weight is w1
            loss = (w1 * 2).sum() + w1.sum()
        assert conv.weight is not w1  # emptied when the outermost block exits
        loss.backward()
        g = conv.parametrizations.weight.original1.grad
        if lib is torch:
            want = g.numpy()
        else:
            np.testing.assert_allclose(g.numpy(), want, rtol=1e-6, atol=1e-7)
        assert P.type_before_parametrizations(conv) is lib.nn.Conv1d
        assert P.type_before_parametrizations(lib.nn.Linear(1, 1)) is lib.nn.Linear


# ---------------------------------------------------------------- Module.train reaches overrides
@needs_torch
def test_eval_and_train_call_each_childs_train_override_as_torch():
    for lib in (torch, tm):
        calls = []

        class Merging(lib.nn.Linear):  # loralib's LoRA Linear merges its update on eval()
            def train(self, mode=True):
                calls.append(mode)
                return super().train(mode)

        model = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.Sequential(Merging(2, 2), lib.nn.ReLU()))
        assert model.eval() is model
        model.train()
        model.train(False)
        assert calls == [False, True, False]
        assert [m.training for m in model.modules()] == [False] * 5
        for bad in (0, "yes", None):
            with pytest.raises(ValueError, match="training mode is expected to be boolean"):
                model.train(bad)


# ---------------------------------------------------------------- torch.distributions.<module> paths
@needs_torch
def test_distribution_module_paths_hold_torchs_classes():
    import importlib
    import pkgutil

    from tinymm.distributions.categorical import Categorical
    from tinymm.distributions.normal import Normal

    assert Categorical is tm.distributions.Categorical and Normal is tm.distributions.Normal
    import tinymm.distributions.one_hot_categorical as ohc
    assert ohc.OneHotCategoricalStraightThrough is tm.distributions.OneHotCategoricalStraightThrough
    for info in pkgutil.iter_modules(torch.distributions.__path__):  # every one of torch's modules
        theirs = importlib.import_module(f"torch.distributions.{info.name}")
        ours = importlib.import_module(f"tinymm.distributions.{info.name}")
        assert getattr(tm.distributions, info.name) is ours
        for cls in getattr(theirs, "__all__", ()):
            if isinstance(getattr(theirs, cls), type) and cls in tm.distributions.__all__:
                assert getattr(ours, cls) is getattr(tm.distributions, cls), (info.name, cls)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("tinymm.distributions.no_such_distribution")


# ---------------------------------------------------------------- factories' size= keyword
@needs_torch
@pytest.mark.parametrize("name", ["empty", "zeros", "ones", "rand", "randn"])
def test_factories_take_size_by_keyword_as_torch(name):
    for size in ((2, 3), [4], torch.Size([1, 2])):
        want = getattr(torch, name)(size=size, dtype=torch.float64)
        got = getattr(tm, name)(size=tuple(size) if isinstance(size, torch.Size) else size, dtype=tm.float64)
        assert tuple(got.shape) == tuple(want.shape) and got.dtype == tm.float64
        if name in ("zeros", "ones"):
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert getattr(tm, name)(size=tm.Size([2, 1])).shape == (2, 1)
    assert getattr(tm, name)(size=(2,), requires_grad=True).requires_grad
    for lib in (torch, tm):
        with pytest.raises(TypeError):
            getattr(lib, name)(2, size=(3,))
        with pytest.raises(TypeError):
            getattr(lib, name)(size=2)


# ---------------------------------------------------------------- parametrizations.orthogonal
def _orth(lib, shape, w, **kw):
    m = lib.nn.Linear(shape[1], shape[0], dtype=lib.float64)
    with lib.no_grad():
        m.weight.copy_(lib.tensor(w))
    return lib.nn.utils.parametrizations.orthogonal(m, **kw)


@needs_torch
@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 4)])
@pytest.mark.parametrize("kw", [{}, {"orthogonal_map": "cayley"}, {"orthogonal_map": "householder"},
                                {"orthogonal_map": "matrix_exp"},
                                {"orthogonal_map": "householder", "use_trivialization": False}])
def test_orthogonal_parametrization_matches_torch(shape, kw):
    rng = np.random.default_rng(sum(shape))
    w = rng.standard_normal(shape)
    theirs, ours = _orth(torch, shape, w, **kw), _orth(tm, shape, w, **kw)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    # the completed base of a non-square weight is drawn at random: load torch's
    ours.load_state_dict({k: tm.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), atol=1e-12)
    # move the unconstrained tensor away from its start so that every map does real work
    step = rng.standard_normal(shape) * 0.3
    with torch.no_grad():
        theirs.parametrizations.weight.original.add_(torch.tensor(step))
    with tm.no_grad():
        ours.parametrizations.weight.original.add_(tm.tensor(step))
    target = rng.standard_normal(shape)
    (theirs.weight * torch.tensor(target)).sum().backward()
    (ours.weight * tm.tensor(target)).sum().backward()
    Wt, Wo = theirs.weight.detach().numpy(), ours.weight.detach().numpy()
    np.testing.assert_allclose(Wo, Wt, atol=1e-10)
    householder = kw.get("orthogonal_map", "householder" if shape[0] != shape[1] else None) == "householder"
    if not householder:  # householder scales each column by int(diagonal): not orthogonal once moved
        gram = Wo.T @ Wo if shape[0] >= shape[1] else Wo @ Wo.T
        np.testing.assert_allclose(gram, np.eye(min(shape)), atol=1e-10)
    np.testing.assert_allclose(ours.parametrizations.weight.original.grad.numpy(),
                               theirs.parametrizations.weight.original.grad.numpy(), atol=1e-10)


@needs_torch
def test_orthogonal_assigns_and_refuses_as_torch():
    rng = np.random.default_rng(0)
    w, q = rng.standard_normal((3, 3)), np.linalg.qr(rng.standard_normal((3, 3)))[0]
    for lib in (torch, tm):
        m = _orth(lib, (3, 3), w)
        m.weight = lib.tensor(q)  # an orthogonal matrix is kept as it is
        np.testing.assert_allclose(m.weight.detach().numpy(), q, atol=1e-12)
        with pytest.raises(ValueError):
            lib.nn.utils.parametrizations.orthogonal(lib.nn.Linear(2, 2), orthogonal_map="qr")
        with pytest.raises(ValueError):
            lib.nn.utils.parametrizations.orthogonal(lib.nn.Linear(2, 2), name="bias")
        # registering keeps the weight as the unconstrained tensor; assigning cannot be done
        kept = _orth(lib, (3, 3), w, orthogonal_map="cayley", use_trivialization=False)
        np.testing.assert_array_equal(kept.parametrizations.weight.original.detach().numpy(), w)
        with pytest.raises(NotImplementedError):
            kept.weight = lib.tensor(q)
        with pytest.raises(ValueError):
            _orth(lib, (3, 3), w).weight = lib.zeros(2, 2, dtype=lib.float64)


# ---------------------------------------------------------------- Module.to_empty
@needs_torch
@pytest.mark.parametrize("recurse", [True, False])
def test_module_to_empty_keeps_shapes_dtypes_and_parameter_objects_as_torch(recurse):
    for lib in (torch, tm):
        model = lib.nn.Sequential(lib.nn.Linear(3, 2), lib.nn.BatchNorm1d(2))
        model.register_buffer("steps", lib.zeros(4, dtype=lib.int64))
        before = {n: p for n, p in model.named_parameters()}
        state = {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}
        assert model.to_empty(device="cpu", recurse=recurse) is model
        assert {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()} == state
        assert all(p is before[n] and p.requires_grad for n, p in model.named_parameters())
        model[0].reset_parameters()  # the usual next step: initialise in place
        assert bool(lib.isfinite(model[0].weight).all())
        with pytest.raises(TypeError):
            model.to_empty("cpu")  # device is keyword-only


# ---------------------------------------------------------------- view refuses what needs a copy
_VIEWS = [lambda x: x.t().view(-1), lambda x: x.t().view(4, 3), lambda x: x[:, 1:].view(-1),
          lambda x: x[:, 1:].view(3, 1, 3), lambda x: x[:, :2].view(3, 2, 1), lambda x: x[::2].view(2, 2, 2),
          lambda x: x.t()[:1].view(-1), lambda x: x.t().view(4, 3, 1), lambda x: x[:1].expand(3, 4).view(3, 2, 2),
          lambda x: x[:1].expand(3, 4).view(12), lambda x: x.t().view_as(x.new_zeros(12)),
          lambda x: x[:0].t().view(-1), lambda x: x.unsqueeze(1).transpose(0, 1).view(3, 4),
          lambda x: x.permute(1, 0).contiguous().view(12), lambda x: x.t().reshape(12)]


@needs_torch
@pytest.mark.parametrize("i", range(len(_VIEWS)))
def test_view_gives_a_view_or_refuses_as_torch(i):
    """A transposed or sliced tensor whose strides cannot give the new shape: RuntimeError
    (MoE code's ``targets.view(-1)`` on ``data[:, 1:]`` fails in PyTorch and must here too)."""
    make = _VIEWS[i]
    x_t = torch.arange(12.0).view(3, 4).requires_grad_()
    x_m = tm.arange(12.0).view(3, 4).requires_grad_()
    try:
        want = make(x_t)
    except RuntimeError:
        with pytest.raises(RuntimeError, match="view size is not compatible"):
            make(x_m)
        return
    got = make(x_m)
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
    (want * torch.arange(float(want.numel())).view(want.shape)).sum().backward()
    (got * tm.arange(float(got.numel())).view(got.shape)).sum().backward()
    np.testing.assert_array_equal(x_m.grad.numpy(), x_t.grad.numpy())


# ---------------------------------------------------------------- factories' out=
_FACTORY_OUT = [
    ("zeros", (2, 2), {}, "float32", (2, 2)), ("zeros", (2,), {}, "int64", (0,)), ("ones", (3,), {}, "float64", (3,)),
    ("empty", (2,), {}, "float64", (2,)), ("full", ((2,), 7), {}, "int32", (2,)), ("arange", (5,), {}, "float64", (0,)),
    ("arange", (1, 4, 0.5), {}, "float32", (6,)), ("linspace", (0, 1, 3), {}, "float32", (3,)),
    ("logspace", (0, 2, 3), {}, "float64", (3,)), ("eye", (2,), {}, "float32", (2, 2)),
    ("rand", (3,), {}, "float64", (3,)), ("randn", (2, 2), {}, "float32", (2, 2)),
    ("randint", (0, 4, (3,)), {}, "int64", (3,)), ("randperm", (4,), {}, "int64", (4,)),
]


@needs_torch
@pytest.mark.parametrize("name,args,kw,dtype,out_shape", _FACTORY_OUT, ids=[f"{c[0]}-{c[3]}" for c in _FACTORY_OUT])
def test_factories_write_into_out_with_its_dtype_as_torch(name, args, kw, dtype, out_shape):
    results = []
    for lib in (torch, tm):
        out = lib.empty(out_shape, dtype=getattr(lib, dtype))
        got = getattr(lib, name)(*args, out=out, **kw)
        assert got is out
        results.append(out)
    want, got = results
    assert tuple(got.shape) == tuple(want.shape) and str(got.dtype).split(".")[-1] == dtype
    if name not in ("empty", "rand", "randn", "randint", "randperm"):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    if name == "randperm":
        assert sorted(got.tolist()) == [0, 1, 2, 3]


@needs_torch
def test_factory_out_refusals_match_torch():
    for lib in (torch, tm):
        with pytest.raises(RuntimeError):
            lib.ones(3, out=lib.empty(3), dtype=lib.float64)  # a dtype other than out's
        with pytest.raises(TypeError):
            lib.zeros(2, out=[0.0, 0.0])
        with pytest.raises(RuntimeError):  # out= functions don't take part in autograd
            lib.zeros(2, out=lib.empty(2, requires_grad=True))
