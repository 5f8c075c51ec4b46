"""tinymm.func against torch.func, in float64 on small shapes: the transforms' values and result
layouts, their nesting and composition with backward(), PyTorch's tutorials (per-sample
gradients, model ensembling with stack_module_state, MAML with functional_call), vmap's
in_dims/out_dims/randomness, functional_call, and the exception classes on bad input."""
import copy
import warnings

import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

RNG = np.random.default_rng(0)
X, Y = RNG.standard_normal(3), RNG.standard_normal(3)
XB, YB = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 2))
MLP_WEIGHTS = {"0.weight": RNG.standard_normal((4, 3)), "0.bias": RNG.standard_normal(4),
               "2.weight": RNG.standard_normal((2, 4)), "2.bias": RNG.standard_normal(2)}


def _mlp(lib, weights=MLP_WEIGHTS):
    """The same float64 MLP 3 -> 4 -> 2 in either library."""
    m = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.Tanh(), lib.nn.Linear(4, 2)).double()
    m.load_state_dict({k: lib.tensor(v.copy()) for k, v in weights.items()})
    return m


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _close(a, b, rtol=1e-10, atol=1e-12):
    """Same nesting (tuple/list/dict), same shapes and values, same requires_grad."""
    if isinstance(b, dict):
        assert isinstance(a, dict) and list(a) == list(b), (a, b)
        for k in b:
            _close(a[k], b[k], rtol, atol)
    elif isinstance(b, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b), (a, b)
        for x, y in zip(a, b):
            _close(x, y, rtol, atol)
    elif isinstance(b, torch.Tensor):
        assert isinstance(a, tm.Tensor), type(a)
        assert tuple(a.shape) == tuple(b.shape), (a.shape, b.shape)
        assert a.requires_grad == b.requires_grad, (a.requires_grad, b.requires_grad)
        np.testing.assert_allclose(_np(a), _np(b), rtol=rtol, atol=atol)
    else:
        assert a == b


def _both(build):
    """``build(lib)`` for tinymm and torch."""
    return build(tm), build(torch)


def _t(lib, a, requires_grad=False):
    return lib.tensor(np.array(a, dtype=np.float64), requires_grad=requires_grad)


# ----------------------------------------------------------------------------- grad and friends


def test_grad_values_argnums_aux_and_pytrees():
    def build(lib):
        F = lib.func
        x, y = _t(lib, X), _t(lib, Y)
        f = lambda a, b: (a.sin() * b).sum() + (a ** 3).sum()  # noqa: E731
        return (
            F.grad(f)(x, y),
            F.grad(f, argnums=1)(x, y),
            F.grad(f, argnums=(0, -1))(x, y),
            F.grad_and_value(f)(x, y),
            F.grad(lambda a: ((a ** 2).sum(), a.cos()), has_aux=True)(x),
            F.grad_and_value(lambda a: ((a ** 2).sum(), {"c": a.cos()}), has_aux=True)(x),
            F.grad(lambda d: (d["w"] * d["v"][0]).sum() * d["v"][1].sum())({"w": x, "v": (y, x * 2)}),
            F.grad(lambda a: (a > 0).to(a.dtype).sum() * 0 + a.detach().sum())(x),  # independent of a: zeros
            F.grad(lambda a, s=1.0: (a * s).sum())(x, s=3.0),
        )

    _close(*_both(build))


def test_grad_nests_and_composes_with_backward():
    def build(lib):
        F = lib.func
        t = _t(lib, 0.7)
        f = lambda a: a.sin() * a ** 3  # noqa: E731
        third = F.grad(F.grad(F.grad(f)))(t)
        h = F.grad(lambda a: F.grad(lambda b: (a * b ** 2).sum())(_t(lib, Y)).sum())(_t(lib, X))  # mixed partials
        x = _t(lib, X, requires_grad=True)
        w = _t(lib, Y, requires_grad=True)
        g = F.grad(lambda a: (w * a ** 3).sum())(x)  # in the caller's graph: reaches x and w
        g.pow(2).sum().backward()
        with lib.no_grad():
            g_ng = F.grad(lambda a: (w * a ** 3).sum())(x)  # an outer no_grad: differentiated, not tracked
        return third, h, g, x.grad, w.grad, g_ng

    _close(*_both(build))


def test_vjp_tuple_outputs_aux_and_repeated_pullbacks():
    def build(lib):
        F = lib.func
        x, y = _t(lib, X), _t(lib, Y)
        out, fn = F.vjp(lambda a, b: (a * b, (a ** 2).sum() * b), x, y)
        ct = (_t(lib, Y[::-1]), _t(lib, X))
        out2, fn2, aux = F.vjp(lambda a: (a.exp(), a.sum()), x, has_aux=True)
        return out, fn(ct), fn(ct), out2, fn2(_t(lib, Y)), aux

    _close(*_both(build))


def test_jacrev_jacfwd_hessian_on_a_small_mlp():
    def build(lib):
        F = lib.func
        model = _mlp(lib)
        params = {k: v.detach() for k, v in model.named_parameters()}
        x = _t(lib, X)

        def out(p, a):
            return F.functional_call(model, p, (a,))

        def loss(p, a):
            return (out(p, a) ** 2).sum()

        return (
            F.jacrev(out, argnums=1)(params, x),
            F.jacfwd(out, argnums=1)(params, x),
            F.jacrev(out)(params, x),  # a dict shaped as params, blocks (2,) + param.shape
            F.jacrev(out, argnums=(0, 1))(params, x),
            F.jacrev(lambda a: (a.tanh(), {"s": a.sum()}))(x),
            F.jacrev(lambda a: (a.exp(), a.cos()), has_aux=True)(x),
            F.hessian(loss, argnums=1)(params, x),
            F.hessian(lambda b: loss({**params, "0.bias": b}, x))(params["0.bias"]),
            F.jacfwd(F.jacrev(lambda a: (a.sin() * a).sum()))(x),
        )

    _close(*_both(build))


def test_jvp_and_linearize_match_forward_mode():
    def build(lib):
        F = lib.func
        x, y = _t(lib, X), _t(lib, Y)
        f = lambda a, b: ((a * b).tanh(), {"s": (a ** 2).sum() * b})  # noqa: E731
        model = _mlp(lib)
        value, jvp_fn = F.linearize(lambda a: model(a).sin(), x)
        xr = _t(lib, X, requires_grad=True)
        tracked = F.jvp(lambda a: a ** 3, (xr,), (y,))  # J v = 3 a^2 v, in the caller's graph
        tracked[1].sum().backward()
        return (
            F.jvp(f, (x, y), (y, x)),
            F.jvp(lambda d: (d["w"].exp() * d["v"]).sum(), ({"w": x, "v": y},), ({"w": y, "v": x},)),
            F.jvp(lambda a: (a.cos(), a.sum()), (x,), (y,), has_aux=True),
            F.jvp(lambda a: a * 0 + 1, (x,), (y,)),
            value, jvp_fn(y), jvp_fn(x),
            tracked, xr.grad,
        )

    _close(*_both(build))


def test_functionalize_and_replace_all_batch_norm_modules():
    """(No batch-norm forward here: it would compile a Numba kernel for this test alone.)"""
    def build(lib):
        F = lib.func
        x = _t(lib, X)
        out = F.functionalize(lambda a: a.mul_(2).add(1))(x)  # the input still sees the mutation
        model = lib.nn.Sequential(lib.nn.Linear(3, 3), lib.nn.BatchNorm1d(3),
                                  lib.nn.Sequential(lib.nn.BatchNorm2d(2)), lib.nn.InstanceNorm1d(3, track_running_stats=True))
        assert F.replace_all_batch_norm_modules_(model) is model
        stats = [(m.track_running_stats, m.running_mean is None, m.running_var is None, m.num_batches_tracked is None)
                 for m in (model[1], model[2][0], model[3])]
        return out, x, stats, sorted(model.state_dict())

    _close(*_both(build))


# ----------------------------------------------------------------------------- tutorials


def test_per_sample_gradients_tutorial():
    """torch.func's per-sample-gradients tutorial: vmap(grad(compute_loss), in_dims=(None, None, 0, 0))."""
    def build(lib):
        F = lib.func
        model = _mlp(lib)
        params = {k: v.detach() for k, v in model.named_parameters()}
        buffers = {k: v.detach() for k, v in model.named_buffers()}

        def compute_loss(params, buffers, sample, target):
            batch, targets = sample.unsqueeze(0), target.unsqueeze(0)
            predictions = F.functional_call(model, (params, buffers), (batch,))
            return lib.nn.functional.mse_loss(predictions, targets)

        per_sample = F.vmap(F.grad(compute_loss), in_dims=(None, None, 0, 0))(params, buffers, _t(lib, XB), _t(lib, YB))
        return per_sample

    mine, theirs = _both(build)
    _close(mine, theirs)
    # each row is the gradient of that sample's loss alone (ordinary autograd on one sample)
    model = _mlp(tm)
    tm.nn.functional.mse_loss(model(tm.tensor(XB[1:2])), tm.tensor(YB[1:2])).backward()
    np.testing.assert_allclose(mine["0.weight"][1].detach().numpy(), model[0].weight.grad.numpy(), rtol=1e-10)


def test_ensembling_with_stack_module_state():
    """torch.func's model-ensembling tutorial (the base copy stays on the CPU: tinymm has no meta device)."""
    def build(lib):
        F = lib.func
        models = [_mlp(lib, {k: v * (1 + i) for k, v in MLP_WEIGHTS.items()}) for i in range(3)]
        params, buffers = F.stack_module_state(models)
        base = copy.deepcopy(models[0])

        def fmodel(params, buffers, x):
            return F.functional_call(base, (params, buffers), (x,))

        same = F.vmap(fmodel, in_dims=(0, 0, None))(params, buffers, _t(lib, XB))
        minibatches = _t(lib, np.stack([XB, XB[::-1], XB * 2]))
        different = F.vmap(fmodel)(params, buffers, minibatches)
        different.sum().backward()  # stacked params are leaves that require grad
        return params, same, different, params["0.weight"].grad

    mine, theirs = _both(build)
    _close(mine, theirs)


def test_maml_with_functional_call_and_grad():
    """Two inner SGD steps through torch.func.grad, then the outer loss's gradient reaches the
    model's own parameters through both steps (second order)."""
    def build(lib):
        F = lib.func
        model = _mlp(lib)
        params = dict(model.named_parameters())

        def loss(p, x, y):
            return lib.nn.functional.mse_loss(F.functional_call(model, p, (x,)), y)

        fast = params
        for _ in range(2):
            grads = F.grad(loss)(fast, _t(lib, XB[:2]), _t(lib, YB[:2]))
            fast = {k: fast[k] - 0.1 * grads[k] for k in fast}
        outer = loss(fast, _t(lib, XB[2:]), _t(lib, YB[2:]))
        outer.backward()
        return outer, {k: p.grad for k, p in model.named_parameters()}, {k: p.detach() for k, p in model.named_parameters()}

    _close(*_both(build))


# ----------------------------------------------------------------------------- vmap


def test_vmap_in_dims_out_dims_and_nesting():
    def build(lib):
        F = lib.func
        a, b = _t(lib, XB), _t(lib, XB.T.copy())
        w = _t(lib, Y)
        f = lambda u, v: u * v + v.sum()  # noqa: E731
        return (
            F.vmap(f)(a, a),
            F.vmap(f, in_dims=(0, 1))(a, b),
            F.vmap(f, in_dims=(-2, -1), out_dims=1)(a, b),
            F.vmap(f, in_dims=(0, None))(a, w),
            F.vmap(lambda u: (u.sum(), u * 2), out_dims=(0, 1))(a),
            F.vmap(lambda u: u * 2, out_dims=(1,))(a),
            F.vmap(lambda u: [u.sum(), (u * 2, u)], out_dims=[0, (1, 0)])(a),
            F.vmap(lambda d, s: d["p"] * s + d["q"][1], in_dims=({"p": 0, "q": (None, 1)}, None))(
                {"p": a, "q": (w, b)}, 2.0),
            F.vmap(lambda u, scale: u * scale)(a, scale=w),
            F.vmap(lambda u: {"y": u.exp()})(a),
            F.vmap(lambda u: (u * 2, lib.ones(2, dtype=lib.float64)), out_dims=(0, None))(a),
            F.vmap(F.vmap(lambda s, t: s * t), in_dims=(0, None))(a, w),  # outer products, row by row
            F.vmap(F.vmap(lambda s: s ** 2, in_dims=0), in_dims=1, out_dims=-1)(a),
            lib.vmap(lambda u: u.sum())(_t(lib, np.zeros((0, 3)))),
            F.vmap(lambda u: u[None] * 1.0)(_t(lib, np.zeros((0, 3)))),
        )

    _close(*_both(build))


def test_vmap_gradients_flow_to_mapped_and_unmapped_inputs():
    def build(lib):
        F = lib.func
        a = _t(lib, XB, requires_grad=True)
        w = _t(lib, Y, requires_grad=True)
        out = F.vmap(lambda u, v: (u * v).tanh().sum(), in_dims=(0, None))(a, w)
        (out * _t(lib, [1.0, 2.0, 3.0, 4.0])).sum().backward()
        per_sample = F.vmap(F.jacrev(lambda u, v: (u * v).sin()), in_dims=(0, None))(a.detach(), w.detach())
        return out, a.grad, w.grad, per_sample

    _close(*_both(build))


def test_vmap_randomness():
    x = tm.zeros(4, 3)
    for lib in (tm, torch):
        with pytest.raises(RuntimeError, match="randomness"):
            lib.vmap(lambda u: u + lib.rand(3))(lib.zeros(4, 3))
        with pytest.raises(RuntimeError, match="randomness"):
            lib.vmap(lambda u: u, randomness="sometimes")
    tm.manual_seed(0)
    same = tm.vmap(lambda u: u + tm.rand(3), randomness="same")(x).detach().numpy()
    assert np.all(same == same[0]) and len(np.unique(same)) == 3
    after_same = tm.rand(1).item()
    tm.manual_seed(0)
    tm.rand(3)
    assert tm.rand(1).item() == after_same  # the generator moved as much as one sample's draws
    different = tm.vmap(lambda u: u + tm.rand(3), randomness="different")(x).detach().numpy()
    assert len(np.unique(different)) == 12
    dropped = tm.vmap(tm.nn.Dropout(0.5), randomness="different")(tm.ones(4, 50)).detach().numpy()
    assert set(np.unique(dropped)) <= {0.0, 2.0} and not np.all(dropped == dropped[0])


# ----------------------------------------------------------------------------- functional_call


class _Tied:
    @staticmethod
    def build(lib):
        class Tied(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.a = lib.nn.Linear(2, 2, bias=False).double()
                self.b = lib.nn.Linear(2, 2, bias=False).double()
                self.b.weight = self.a.weight
                self.register_buffer("scale", lib.ones(2, dtype=lib.float64))

            def forward(self, x, shift=0.0):
                if isinstance(shift, Exception):
                    raise shift
                return self.b(self.a(x)) * self.scale + shift

        m = Tied()
        m.a.weight.data.copy_(lib.tensor(MLP_WEIGHTS["0.weight"][:2, :2].copy()))
        return m


def test_functional_call_substitutes_and_restores():
    def build(lib):
        F = lib.func
        m = _Tied.build(lib)
        x = _t(lib, XB[:, :2])
        w = _t(lib, np.eye(2) * 2)
        out = [
            F.functional_call(m, {"a.weight": w}, x),  # tied: b.weight follows
            F.functional_call(m, {"a.weight": w}, (x,), tie_weights=False),
            F.functional_call(m, ({"a.weight": w}, {"scale": _t(lib, [1.0, 3.0])}), (x,), {"shift": 1.0}),
            F.functional_call(m, {"a.weight": w, "b.weight": w, "scale": _t(lib, [2.0, 2.0])}, (x,), strict=True),
        ]
        with pytest.raises(ZeroDivisionError):
            F.functional_call(m, {"a.weight": w}, (x,), {"shift": ZeroDivisionError("inside the module")})
        out.append(m(x))  # the originals are back, also after the exception
        assert isinstance(m.a.weight, lib.nn.Parameter) and m.a.weight is m.b.weight
        p = _t(lib, np.eye(2), requires_grad=True)
        F.functional_call(m, {"a.weight": p}, (x,)).sum().backward()
        out.append(p.grad)
        assert m.a.weight.grad is None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out.append(lib.nn.utils.stateless.functional_call(m, {"a.weight": w}, (x,)))
        assert any(issubclass(c.category, FutureWarning) for c in caught)
        return out

    _close(*_both(build))


def test_functional_call_writes_reassigned_buffers_back():
    """A buffer the module assigns anew during the call ends in the given dict (PyTorch's
    note: "in-place operations on parameters/buffers will be reflected"), not in the module."""
    def build(lib):
        class Counter(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("calls", lib.zeros((), dtype=lib.float64))

            def forward(self, x):
                self.calls = self.calls + 1
                return x * self.calls

        m = Counter()
        state = {"calls": _t(lib, 5.0)}
        out = lib.func.functional_call(m, state, (_t(lib, X),))
        return out, state, dict(m.named_buffers())

    _close(*_both(build))


def test_functional_call_on_a_parametrized_module():
    """The original's name substitutes the original; the parametrized name goes through the
    property (right_inverse), and the old value is put back the same way."""
    def build(lib):
        import importlib

        parametrize = importlib.import_module(lib.__name__ + ".nn.utils.parametrize")

        class Double(lib.nn.Module):
            def forward(self, w):
                return w * 2

            def right_inverse(self, w):
                return w / 2

        m = lib.nn.Linear(3, 3, bias=False).double()
        m.weight.data.copy_(_t(lib, MLP_WEIGHTS["0.weight"][:3]))
        parametrize.register_parametrization(m, "weight", Double())
        x = _t(lib, X)
        return (lib.func.functional_call(m, {"parametrizations.weight.original": _t(lib, np.eye(3))}, (x,)),
                lib.func.functional_call(m, {"weight": _t(lib, np.eye(3) * 3)}, (x,)),
                m(x), m.parametrizations.weight.original.detach())

    _close(*_both(build))


# ----------------------------------------------------------------------------- errors


def _err_cases():
    f = lambda a: (a ** 2).sum()  # noqa: E731
    return {
        "grad of a vector": lambda F, lib, x: F.grad(lambda a: a * 2)(x),
        "grad of a 1-element vector": lambda F, lib, x: F.grad(lambda a: a.sum().reshape(1))(x),
        "grad of a float": lambda F, lib, x: F.grad(lambda a: 3.0)(x),
        "has_aux without a pair": lambda F, lib, x: F.grad(f, has_aux=True)(x),
        "argnums out of range": lambda F, lib, x: F.grad(f, argnums=1)(x),
        "argnums float": lambda F, lib, x: F.grad(f, argnums=0.0)(x),
        "argnums empty": lambda F, lib, x: F.grad(f, argnums=())(x),
        "grad of a number": lambda F, lib, x: F.grad(f)(2.0),
        "grad of an integer tensor": lambda F, lib, x: F.grad(lambda a: (a * 1.0).sum())(lib.arange(3)),
        "jacrev of a float output": lambda F, lib, x: F.jacrev(lambda a: 1.0)(x),
        "vjp cotangent shape": lambda F, lib, x: F.vjp(lambda a: a * 2, x)[1](lib.ones(4, dtype=lib.float64)),
        "vjp cotangent structure": lambda F, lib, x: F.vjp(lambda a: a * 2, x)[1]((x, x)),
        "vmap batch sizes": lambda F, lib, x: F.vmap(lambda a, b: a + b)(lib.ones(2, 3), lib.ones(3, 3)),
        "vmap a number": lambda F, lib, x: F.vmap(lambda a, b: a * b)(lib.ones(2, 3), 2.0),
        "vmap nothing mapped": lambda F, lib, x: F.vmap(lambda a: a, in_dims=(None,))(x),
        "vmap in_dims None": lambda F, lib, x: F.vmap(lambda a: a, in_dims=None)(x),
        "vmap in_dims list": lambda F, lib, x: F.vmap(lambda a: a, in_dims=[0])(x),
        "vmap in_dims length": lambda F, lib, x: F.vmap(lambda a, b: a, in_dims=(0,))(x, x),
        "vmap in_dim too big": lambda F, lib, x: F.vmap(lambda a: a, in_dims=1)(x),
        "vmap a 0-d tensor": lambda F, lib, x: F.vmap(lambda a: a)(x.sum()),
        "vmap no inputs": lambda F, lib, x: F.vmap(lambda: x)(),
        "vmap returns a float": lambda F, lib, x: F.vmap(lambda a: 1.0)(x),
        "vmap returns None": lambda F, lib, x: F.vmap(lambda a: None)(x),
        "vmap out_dims None, batched": lambda F, lib, x: F.vmap(lambda a: a * 2, out_dims=None)(x),
        "vmap out_dims too big": lambda F, lib, x: F.vmap(lambda a: a * 2, out_dims=1)(x),
        "vmap out_dims structure": lambda F, lib, x: F.vmap(lambda a: (a, a), out_dims=(0, 0, 0))(x),
        "vmap out_dims 1-tuple, 2 outputs": lambda F, lib, x: F.vmap(lambda a: (a, a), out_dims=(0,))(x),
        "vmap chunk_size 0": lambda F, lib, x: F.vmap(lambda a: a, chunk_size=0)(x),
        "vmap in_dim a string": lambda F, lib, x: F.vmap(lambda a: a, in_dims=("a",))(x),
        "jacrev chunk_size 0": lambda F, lib, x: F.jacrev(lambda a: a, chunk_size=0)(x),
        "jacfwd draws": lambda F, lib, x: F.jacfwd(lambda a: a * lib.rand(3, dtype=lib.float64))(x),
        "jacfwd randomness": lambda F, lib, x: F.jacfwd(lambda a: a, randomness="x")(x),
        "argnums repeated": lambda F, lib, x: F.grad(lambda a, b: (a * b).sum(), argnums=(0, 0))(x, x),
        "vjp cotangent a number": lambda F, lib, x: F.vjp(lambda a: a * 2, x)[1](1.0),
        "jvp primals not a tuple": lambda F, lib, x: F.jvp(lambda a: a, x, (x,)),
        "jvp tangents structure": lambda F, lib, x: F.jvp(lambda a: a, (x,), (x, x)),
        "jvp tangent shape": lambda F, lib, x: F.jvp(lambda a: a, (x,), (lib.ones(4, dtype=lib.float64),)),
        "jvp integer primal": lambda F, lib, x: F.jvp(lambda a: a, (lib.arange(3),), (lib.arange(3),)),
        "jvp no primals": lambda F, lib, x: F.jvp(lambda: x, (), ()),
        "jvp strict, independent": lambda F, lib, x: F.jvp(lambda a: lib.ones(2), (x,), (x,), strict=True),
        "linearize tangents": lambda F, lib, x: F.linearize(lambda a: a.sin(), x)[1](x, x),
        "functionalize remove": lambda F, lib, x: F.functionalize(lambda a: a, remove="views"),
        "stack no models": lambda F, lib, x: F.stack_module_state([]),
        "stack requires_grad mixed": lambda F, lib, x: F.stack_module_state(
            [lib.nn.Linear(2, 2), lib.nn.Linear(2, 2).requires_grad_(False)]),
        "stack train and eval": lambda F, lib, x: F.stack_module_state([lib.nn.Linear(2, 2), lib.nn.Linear(2, 2).eval()]),
        "functional_call strict": lambda F, lib, x: F.functional_call(lib.nn.Linear(2, 2), {"weight": lib.ones(2, 2),
                                                                                            "foo": x}, (lib.ones(2),),
                                                                      strict=True),
        "functional_call key twice": lambda F, lib, x: F.functional_call(lib.nn.Linear(2, 2), ({"bias": x}, {"bias": x}),
                                                                         (lib.ones(2),)),
        "functional_call not dicts": lambda F, lib, x: F.functional_call(lib.nn.Linear(2, 2), [1], (lib.ones(2),)),
        "functional_call tied values": lambda F, lib, x: F.functional_call(
            _Tied.build(lib), {"a.weight": lib.eye(2, dtype=lib.float64), "b.weight": lib.ones(2, 2, dtype=lib.float64)},
            (lib.ones(2, dtype=lib.float64),)),
    }


@pytest.mark.parametrize("case", list(_err_cases()))
def test_errors_raise_what_torch_raises(case):
    fn = _err_cases()[case]
    caught = []
    for lib in (torch, tm):
        with pytest.raises(Exception) as info:
            fn(lib.func, lib, _t(lib, X))
        caught.append(info.value)
    theirs, mine = caught
    assert isinstance(mine, type(theirs)), (case, type(mine), mine, type(theirs), theirs)
    if case == "functional_call strict":
        assert str(mine) == str(theirs)
