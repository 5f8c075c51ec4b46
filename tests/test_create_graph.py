"""Higher-order gradients (``create_graph=True``): each op's double backward against PyTorch and
against finite differences of the first gradient; the four ways real code differentiates twice
(physics-informed nets, WGAN-GP, Hessian-vector products, MAML) run in tinymm and in PyTorch
from the same weights; the engine's semantics (.grad with a graph, hooks, retain_graph,
allow_unused); and the NotImplementedError an op without a differentiable backward raises."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import TORCH_REASON, torch

import tinymm as tm
import tinymm.nn.functional as F

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _np(t):
    return np.asarray(t.detach().numpy())


def _second_order(lib, f, arrays, w, v):
    """g = d(Σ w·f(xs))/dxs with create_graph, then d(Σ_i g_i·v_i)/dxs: first and second order."""
    xs = [lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in arrays]
    y = f(*xs)
    gs = lib.autograd.grad((y * lib.tensor(w, dtype=lib.float64)).sum(), xs, create_graph=True)
    s = sum((g * lib.tensor(vi, dtype=lib.float64)).sum() for g, vi in zip(gs, v))
    hs = lib.autograd.grad(s, xs, allow_unused=True)
    return [_np(g) for g in gs], [np.zeros_like(a) if h is None else _np(h) for h, a in zip(hs, arrays)]


def _first(f, arrays, w):
    xs = [tm.tensor(a, dtype=tm.float64, requires_grad=True) for a in arrays]
    gs = tm.autograd.grad((f(*xs) * tm.tensor(w, dtype=tm.float64)).sum(), xs)
    return [_np(g) for g in gs]


def _check(f_tm, f_torch, arrays, fd=True, vs_torch=True):
    r = np.random.default_rng(1)
    with tm.no_grad():
        out_shape = f_tm(*[tm.tensor(a, dtype=tm.float64) for a in arrays]).shape
    w = r.standard_normal(out_shape)
    v = [r.standard_normal(a.shape) for a in arrays]
    g, h = _second_order(tm, f_tm, arrays, w, v)
    if torch is not None and vs_torch:
        gt, ht = _second_order(torch, f_torch, arrays, w, v)
        for a, b in zip(g + h, gt + ht):
            np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
    if fd:  # H·v is the derivative of the first gradient along v
        eps = 1e-6
        plus = _first(f_tm, [a + eps * vi for a, vi in zip(arrays, v)], w)
        minus = _first(f_tm, [a - eps * vi for a, vi in zip(arrays, v)], w)
        for hi, p, m in zip(h, plus, minus):
            np.testing.assert_allclose(hi, (p - m) / (2 * eps), rtol=1e-5, atol=1e-6)


def _lib(x):
    return torch if torch is not None and isinstance(x, torch.Tensor) else tm


def _Fn(x):
    return torch.nn.functional if _lib(x) is torch else F


R = np.random.default_rng(0)
X = R.uniform(-1.5, 1.5, (3, 4))
POS = R.uniform(0.3, 2.0, (3, 4))
UNIT = R.uniform(-0.8, 0.8, (3, 4))

UNARY = {
    "exp": (lambda x: x.exp(), X), "log": (lambda x: x.log(), POS), "sqrt": (lambda x: x.sqrt(), POS),
    "abs": (lambda x: x.abs() * x, X), "tanh": (lambda x: x.tanh(), X), "sigmoid": (lambda x: x.sigmoid(), X),
    "relu": (lambda x: x.relu() * x, X), "neg": (lambda x: -(x * x * x), X),
    "sin": (lambda x: x.sin(), X), "cos": (lambda x: x.cos(), X), "tan": (lambda x: x.tan(), UNIT),
    "asin": (lambda x: x.asin(), UNIT), "acos": (lambda x: x.acos(), UNIT), "atan": (lambda x: x.atan(), X),
    "sinh": (lambda x: x.sinh(), X), "cosh": (lambda x: x.cosh(), X), "asinh": (lambda x: x.asinh(), X),
    "acosh": (lambda x: x.acosh(), POS + 1.2), "atanh": (lambda x: x.atanh(), UNIT),
    "rsqrt": (lambda x: x.rsqrt(), POS), "reciprocal": (lambda x: x.reciprocal(), POS),
    "square": (lambda x: x.square(), X), "exp2": (lambda x: x.exp2(), X), "log2": (lambda x: x.log2(), POS),
    "log10": (lambda x: x.log10(), POS), "log1p": (lambda x: x.log1p(), POS), "expm1": (lambda x: x.expm1(), X),
    "erf": (lambda x: x.erf(), X), "clamp": (lambda x: x.clamp(-0.5, 0.7) * x, X),
    "pow3": (lambda x: x ** 3, X), "pow2": (lambda x: x ** 2, X), "pow_frac": (lambda x: x ** 2.5, POS),
    "rpow": (lambda x: 2.0 ** x, X),
    "elu": (lambda x: _Fn(x).elu(x, 0.7), X), "celu": (lambda x: _Fn(x).celu(x, 0.8), X),
    "selu": (lambda x: _Fn(x).selu(x), X), "leaky_relu": (lambda x: _Fn(x).leaky_relu(x, 0.2) * x, X),
    "hardtanh": (lambda x: _Fn(x).hardtanh(x, -0.6, 0.9) * x, X),
    "hardsigmoid": (lambda x: _Fn(x).hardsigmoid(x * 4) * x, X), "hardswish": (lambda x: _Fn(x).hardswish(x * 4), X),
    "softplus": (lambda x: _Fn(x).softplus(x), X), "softplus_beta": (lambda x: _Fn(x).softplus(x, beta=2.0, threshold=2.0), X),
    "softsign": (lambda x: _Fn(x).softsign(x), X), "logsigmoid": (lambda x: _Fn(x).logsigmoid(x), X),
    "tanhshrink": (lambda x: _Fn(x).tanhshrink(x), X), "threshold": (lambda x: _Fn(x).threshold(x, 0.1, -2.0) * x, X),
    "hardshrink": (lambda x: _Fn(x).hardshrink(x, 0.4) * x, X), "softshrink": (lambda x: _Fn(x).softshrink(x, 0.4) * x, X),
    "silu": (lambda x: _Fn(x).silu(x), X), "gelu": (lambda x: _Fn(x).gelu(x), X),
    "gelu_tanh": (lambda x: _Fn(x).gelu(x, approximate="tanh"), X),
    "softmax": (lambda x: _Fn(x).softmax(x, dim=-1), X), "softmax_dim0": (lambda x: _Fn(x).softmax(x, dim=0), X),
    "log_softmax": (lambda x: _Fn(x).log_softmax(x, dim=1), X),
    "cross_entropy": (lambda x: _Fn(x).cross_entropy(x, _lib(x).tensor([0, 3, 1])), X),
    "cross_entropy_sum": (lambda x: _Fn(x).cross_entropy(x * x, _lib(x).tensor([2, 3, 1]), reduction="sum"), X),
    "cross_entropy_none_ignore": (
        lambda x: _Fn(x).cross_entropy(x, _lib(x).tensor([2, -100, 1]), reduction="none") * x.sum(dim=1), X),
    "cross_entropy_4d": (lambda x: _Fn(x).cross_entropy(x.reshape(1, 3, 2, 2), _lib(x).tensor([[[0, 2], [1, 1]]])), X),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_double_backward(name):
    f, a = UNARY[name]
    # PyTorch has no double backward for hardsigmoid ("derivative for aten::hardsigmoid_backward
    # is not implemented"); there finite differences are the oracle
    _check(f, f, [a], vs_torch=name != "hardsigmoid")


A34, B4, B31, P34 = R.standard_normal((3, 4)), R.standard_normal(4), R.standard_normal((3, 1)), R.uniform(0.5, 2, (3, 4))
BINARY = {
    "add": (lambda a, b: (a + b) ** 3, [A34, B4]), "sub": (lambda a, b: (a - b) ** 3, [A34, B31]),
    "mul": (lambda a, b: a * b * a, [A34, B4]), "div": (lambda a, b: a / b, [A34, P34]),
    "div_bcast": (lambda a, b: a / b, [A34, P34[:, :1]]), "pow": (lambda a, b: a ** b, [P34, A34]),
    "maximum": (lambda a, b: _lib(a).maximum(a, b) * a * b, [A34, B4]),
    "minimum": (lambda a, b: _lib(a).minimum(a, b) * a * b, [A34, B31]),
    "matmul": (lambda a, b: (a @ b).tanh(), [A34, R.standard_normal((4, 2))]),
    "matmul_vec": (lambda a, b: (a @ b).tanh(), [A34, B4]),
    "vec_matmul": (lambda a, b: (a @ b).tanh(), [B4, R.standard_normal((4, 3))]),
    "vec_vec": (lambda a, b: (a @ b).tanh(), [B4, R.standard_normal(4)]),
    "matmul_batch": (lambda a, b: (a @ b).tanh(), [R.standard_normal((2, 3, 4)), R.standard_normal((4, 2))]),
    "linear": (lambda x, w, b: _Fn(x).linear(x, w, b).tanh(),
               [R.standard_normal((2, 3, 4)), R.standard_normal((5, 4)), R.standard_normal(5)]),
    "layer_norm": (lambda x, w, b: _Fn(x).layer_norm(x, (4,), w, b).tanh() * x,
                   [A34, R.uniform(0.5, 1.5, 4), R.standard_normal(4)]),
    "layer_norm_2d": (lambda x, w: _Fn(x).layer_norm(x, (3, 4), w, None) ** 3,
                      [R.standard_normal((2, 3, 4)), R.uniform(0.5, 1.5, (3, 4))]),
    "cat": (lambda a, b: _lib(a).cat([a, b * b], dim=0) ** 3, [A34, R.standard_normal((2, 4))]),
    "stack": (lambda a, b: _lib(a).stack([a, b], dim=1).tanh(), [A34, A34 + 1]),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_multi_input_double_backward(name):
    f, arrays = BINARY[name]
    _check(f, f, arrays)


A234 = R.standard_normal((2, 3, 4))
SHAPE = {
    "sum": lambda x: x.sum(dim=1).tanh(), "sum_all": lambda x: x.sum() ** 2,
    "sum_keep": lambda x: (x.sum(dim=(0, 2), keepdim=True) * x).tanh(), "mean": lambda x: x.mean(dim=0).sin(),
    "mean_all": lambda x: x.mean() ** 3, "var": lambda x: x.var(dim=1) * x.sum(dim=1),
    "std_all": lambda x: x.std() * x, "var_keep": lambda x: x.var(dim=(0, 2), keepdim=True, correction=0) ** 2,
    "norm2": lambda x: x.norm(2, dim=1), "norm2_all": lambda x: x.norm() * x, "norm3": lambda x: x.norm(3, dim=-1),
    "norm1": lambda x: x.norm(1, dim=2) * x.sum(dim=2), "norm_keep": lambda x: x.norm(dim=0, keepdim=True) * x,
    "reshape": lambda x: x.reshape(6, 4).tanh(), "permute": lambda x: x.permute(2, 0, 1).tanh() * x.sum(),
    "transpose": lambda x: x.transpose(0, 2).sin(), "expand": lambda x: x[:, :1, :].expand(2, 3, 4).tanh() * x,
    "unsqueeze": lambda x: x.unsqueeze(1).squeeze(1).exp(),
    "getitem": lambda x: x[:, 1:, ::2].tanh(), "getitem_adv": lambda x: x[:, [0, 2, 0]].tanh(),
    "getitem_int": lambda x: x[1, :, 2] ** 3, "clone": lambda x: x.clone().tanh(),
    "normalize": lambda x: _Fn(x).normalize(x, dim=1) * x, "layer_norm_plain": lambda x: _Fn(x).layer_norm(x, (4,)) ** 3,
    "contiguous": lambda x: x.transpose(0, 1).contiguous().sin(),
    "split": lambda x: x.split([1, 2], dim=1)[0].tanh() * x.split([1, 2], dim=1)[1].sum(),
    "chunk": lambda x: x.chunk(2, dim=2)[1] ** 3,
}


@pytest.mark.parametrize("name", sorted(SHAPE))
def test_reduction_and_shape_double_backward(name):
    f = SHAPE[name]
    _check(f, f, [A234])


# ----------------------------------------------------------------------------- the real scenarios


def _mlp(sizes, act, seed):
    """A tinymm and a PyTorch MLP (float64) holding the same weights."""
    r = np.random.default_rng(seed)
    layers_tm, layers_t = [], []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w, b = r.standard_normal((n_out, n_in)) / np.sqrt(n_in), r.standard_normal(n_out) * 0.1
        lt = tm.nn.Linear(n_in, n_out).double()
        lt.weight._data[...] = w
        lt.bias._data[...] = b
        layers_tm.append(lt)
        if torch is not None:
            lp = torch.nn.Linear(n_in, n_out).double()
            with torch.no_grad():
                lp.weight.copy_(torch.tensor(w))
                lp.bias.copy_(torch.tensor(b))
            layers_t.append(lp)
        if i < len(sizes) - 2:
            layers_tm.append(act(tm.nn))
            if torch is not None:
                layers_t.append(act(torch.nn))
    return tm.nn.Sequential(*layers_tm), (torch.nn.Sequential(*layers_t) if torch is not None else None)


def _same_grads(net_tm, net_t):
    for (name, p), q in zip(net_tm.named_parameters(), net_t.parameters()):
        np.testing.assert_allclose(_np(p.grad), q.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def _pinn(lib, net, xs):
    x = lib.tensor(xs, dtype=lib.float64, requires_grad=True)
    u = net(lib.sin(x))
    du = lib.autograd.grad(u.sum(), x, create_graph=True)[0]
    d2u = lib.autograd.grad(du.sum(), x, create_graph=True)[0]
    loss = ((d2u + u) ** 2).mean() + (du ** 2).mean()
    loss.backward()
    return loss


@needs_torch
@pytest.mark.parametrize("act", [lambda nn: nn.Tanh(), lambda nn: nn.Softplus(beta=2.0), lambda nn: nn.ELU()],
                         ids=["tanh", "softplus", "elu"])
def test_physics_informed_second_derivative(act):
    net_tm, net_t = _mlp([1, 8, 8, 1], act, 3)
    xs = np.linspace(-1, 1, 7).reshape(7, 1)
    l_tm, l_t = _pinn(tm, net_tm, xs), _pinn(torch, net_t, xs)
    np.testing.assert_allclose(float(l_tm), float(l_t.detach()), rtol=1e-10)
    _same_grads(net_tm, net_t)


def _wgan_gp(lib, critic, real, fake, alpha):
    real, fake = lib.tensor(real, dtype=lib.float64), lib.tensor(fake, dtype=lib.float64)
    a = lib.tensor(alpha, dtype=lib.float64)
    interp = (a * real + (1 - a) * fake).requires_grad_(True)
    out = critic(interp)
    g = lib.autograd.grad(outputs=out, inputs=interp, grad_outputs=lib.ones_like(out), create_graph=True,
                          retain_graph=True)[0]
    gp = ((g.norm(2, dim=1) - 1) ** 2).mean()
    loss = critic(fake).mean() - critic(real).mean() + 10 * gp
    loss.backward()
    return loss


@needs_torch
def test_wgan_gradient_penalty():
    critic_tm, critic_t = _mlp([3, 16, 16, 1], lambda nn: nn.LeakyReLU(0.2), 5)
    r = np.random.default_rng(2)
    real, fake, alpha = r.standard_normal((6, 3)), r.standard_normal((6, 3)), r.uniform(size=(6, 1))
    l_tm, l_t = _wgan_gp(tm, critic_tm, real, fake, alpha), _wgan_gp(torch, critic_t, real, fake, alpha)
    np.testing.assert_allclose(float(l_tm), float(l_t.detach()), rtol=1e-10)
    _same_grads(critic_tm, critic_t)


def _hvp(lib, xs, vs, m):
    x = lib.tensor(xs, dtype=lib.float64, requires_grad=True)
    v, M = lib.tensor(vs, dtype=lib.float64), lib.tensor(m, dtype=lib.float64)
    f = ((M @ x).tanh() ** 2).sum() + (x ** 4).sum() * 0.1 + lib.exp(x[0] * x[1])
    (g,) = lib.autograd.grad(f, x, create_graph=True)
    (hv,) = lib.autograd.grad((g * v).sum(), x)
    return _np(hv)


@needs_torch
def test_hessian_vector_product():
    r = np.random.default_rng(4)
    xs, vs, m = r.standard_normal(5), r.standard_normal(5), r.standard_normal((3, 5))
    np.testing.assert_allclose(_hvp(tm, xs, vs, m), _hvp(torch, xs, vs, m), rtol=1e-10, atol=1e-12)


def _maml(lib, net, Fn, tasks, classify, lr=0.1):
    params = list(net.parameters())
    outer = 0
    for xs, ys, xq, yq in tasks:
        xs, xq = lib.tensor(xs, dtype=lib.float64), lib.tensor(xq, dtype=lib.float64)
        if classify:
            ys, yq = lib.tensor(ys), lib.tensor(yq)
            loss_fn = Fn.cross_entropy
        else:
            ys, yq = lib.tensor(ys, dtype=lib.float64), lib.tensor(yq, dtype=lib.float64)
            loss_fn = Fn.mse_loss

        def forward(x, p):
            h = Fn.relu(Fn.linear(x, p[0], p[1]))
            return Fn.linear(h, p[2], p[3])

        inner = loss_fn(forward(xs, params), ys)
        grads = lib.autograd.grad(inner, params, create_graph=True)
        fast = [p - lr * g for p, g in zip(params, grads)]
        outer = outer + loss_fn(forward(xq, fast), yq)
    outer.backward()
    return outer


@needs_torch
@pytest.mark.parametrize("classify", [False, True], ids=["regression", "classification"])
def test_maml_inner_step(classify):
    n_out = 3 if classify else 1
    net_tm, net_t = _mlp([2, 10, n_out], lambda nn: nn.ReLU(), 6)
    r = np.random.default_rng(5)
    if classify:
        tasks = [(r.standard_normal((5, 2)), r.integers(0, 3, 5), r.standard_normal((4, 2)), r.integers(0, 3, 4))
                 for _ in range(2)]
    else:
        tasks = [tuple(r.standard_normal(s) for s in ((5, 2), (5, 1), (4, 2), (4, 1))) for _ in range(2)]
    l_tm = _maml(tm, net_tm, F, tasks, classify)
    l_t = _maml(torch, net_t, torch.nn.functional, tasks, classify)
    np.testing.assert_allclose(float(l_tm), float(l_t.detach()), rtol=1e-10)
    _same_grads(net_tm, net_t)


# ----------------------------------------------------------------------------- engine semantics


def test_backward_create_graph_leaves_grad_with_graph():
    x = tm.tensor([0.5, -1.0, 2.0], dtype=tm.float64, requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.grad_fn is not None and x.grad.requires_grad
    np.testing.assert_allclose(_np(x.grad), 3 * _np(x) ** 2)
    g1 = x.grad
    x.grad = None
    g1.sum().backward()  # d/dx Σ 3x² = 6x
    np.testing.assert_allclose(_np(x.grad), 6 * _np(x))


def test_create_graph_accumulates_out_of_place_and_retains_graph():
    x = tm.tensor([1.0, 2.0], dtype=tm.float64, requires_grad=True)
    y = (x * x).sum()
    y.backward(create_graph=True)
    first = x.grad
    y.backward(create_graph=True)  # the graph was kept (retain_graph defaults to create_graph)
    np.testing.assert_allclose(_np(first), [2.0, 4.0])  # the first Tensor is not written into
    np.testing.assert_allclose(_np(x.grad), [4.0, 8.0])


def test_grad_create_graph_false_gives_constants():
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    (g,) = tm.autograd.grad((x * x).sum(), x)
    assert g.grad_fn is None and not g.requires_grad


def test_hooks_see_and_replace_tensor_gradients():
    x = tm.tensor([1.0, 2.0], dtype=tm.float64, requires_grad=True)
    y = x * x
    seen = []
    y.register_hook(lambda g: seen.append(g) or g * 2)
    (g,) = tm.autograd.grad(y.sum(), x, create_graph=True)
    assert isinstance(seen[0], tm.Tensor)
    np.testing.assert_allclose(_np(g), 4 * _np(x))
    (h,) = tm.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(_np(h), [4.0, 4.0])


def test_allow_unused_and_materialize_grads():
    x = tm.tensor([1.0], requires_grad=True)
    z = tm.tensor([1.0], requires_grad=True)
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match="not have been used"):
        tm.autograd.grad(y, [x, z], create_graph=True)
    gx, gz = tm.autograd.grad(y, [x, z], create_graph=True, allow_unused=True)
    assert gz is None and gx.requires_grad
    gx, gz = tm.autograd.grad(y, [x, z], create_graph=True, materialize_grads=True)
    np.testing.assert_allclose(_np(gz), [0.0])


def test_first_derivative_of_linear_function_is_constant():
    # d(Σ 3x)/dx = 3 does not depend on x: differentiating again gives unused / zeros, as PyTorch
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    (g,) = tm.autograd.grad((x * 3).sum(), x, create_graph=True)
    np.testing.assert_allclose(_np(g), [3.0, 3.0])
    assert not g.requires_grad or tm.autograd.grad(g.sum(), x, allow_unused=True)[0] is None


def test_backward_inputs_with_create_graph():
    x = tm.tensor([1.0, 3.0], dtype=tm.float64, requires_grad=True)
    w = tm.tensor([2.0, 2.0], dtype=tm.float64, requires_grad=True)
    (x * x * w).sum().backward(inputs=[x], create_graph=True)
    assert w.grad is None and x.grad.grad_fn is not None
    np.testing.assert_allclose(_np(x.grad), 2 * _np(x) * _np(w))


@needs_torch
def test_user_function_backward_is_differentiated():
    class Cube(tm.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x ** 2

    x = tm.tensor([0.5, -2.0], dtype=tm.float64, requires_grad=True)
    (g,) = tm.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
    (h,) = tm.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(_np(h), 6 * _np(x))


def test_once_differentiable_backward_refuses_create_graph():
    class Square(tm.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @tm.autograd.once_differentiable
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 2 * x

    x = tm.tensor([1.0, 2.0], requires_grad=True)
    # the gradient it is given (of a sum) carries no graph: it runs unrecorded, as PyTorch's
    (g,) = tm.autograd.grad(Square.apply(x).sum(), x, create_graph=True)
    np.testing.assert_allclose(_np(g), [2.0, 4.0])
    assert not g.requires_grad
    with pytest.raises(RuntimeError, match="once_differentiable"):
        tm.autograd.grad((Square.apply(x) ** 2).sum(), x, create_graph=True)
    np.testing.assert_allclose(_np(tm.autograd.grad(Square.apply(x).sum(), x)[0]), [2.0, 4.0])


def test_op_without_formula_gives_first_order_then_raises_naming_its_backward():
    # as PyTorch for an op without a double backward: the gradient's values are right, and
    # differentiating it again raises, naming the op, instead of giving a wrong result
    x = tm.randn(2, 3, dtype=tm.float64, requires_grad=True)
    a = tm.tensor([2.0], dtype=tm.float64)
    f = lambda: (tm.special.gammainc(a, x.exp()) ** 2).sum()  # noqa: E731  (its derivative calls SciPy)
    (g,) = tm.autograd.grad(f(), x, create_graph=True)
    np.testing.assert_allclose(_np(g), _np(tm.autograd.grad(f(), x)[0]))
    with pytest.raises(NotImplementedError, match="create_graph=True: GammaincBackward0 has no differentiable backward"):
        tm.autograd.grad(g.sum(), x)


def test_leaf_grad_from_create_graph_is_its_own_storage():
    x = tm.tensor([1.0, 2.0], dtype=tm.float64, requires_grad=True)
    (x.sum() * x.sum()).backward(create_graph=True)  # Sum's gradient is a broadcast view
    assert x.grad.grad_fn.name() == "CloneBackward0"
    (x * x).sum().backward()  # a plain backward adds into it in place
    np.testing.assert_allclose(_np(x.grad), [6 + 2, 6 + 4])


def test_unsupported_op_on_a_branch_grad_does_not_need():
    x = tm.randn(3, dtype=tm.float64, requires_grad=True)
    w = tm.randn(3, dtype=tm.float64, requires_grad=True)
    y = (w.cumsum(0) * (x * x)).sum()
    (g,) = tm.autograd.grad(y, x, create_graph=True)
    np.testing.assert_allclose(_np(g), 2 * _np(x) * _np(w.cumsum(0)))
    (h,) = tm.autograd.grad(g.sum(), x)  # the second derivative does not pass through cumsum's backward
    np.testing.assert_allclose(_np(h), 2 * _np(w.cumsum(0)))


def test_inplace_change_of_saved_tensor_still_raises():
    x = tm.tensor([1.0, 2.0], dtype=tm.float64, requires_grad=True)
    y = x * 1
    z = (y * y).sum()
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        tm.autograd.grad(z, x, create_graph=True)


def test_inplace_change_of_layer_norm_input_raises():
    x = tm.randn(4, 3, dtype=tm.float64, requires_grad=True)
    for transpose in (False, True):  # forward saved the input itself / a contiguous copy
        z = x * 1
        y = F.layer_norm(z.transpose(0, 1) if transpose else z, (4,) if transpose else (3,))
        z.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            tm.autograd.grad((y ** 3).sum(), x, create_graph=True)


def test_retain_graph_false_frees():
    x = tm.tensor([1.0, 2.0], dtype=tm.float64, requires_grad=True)
    y = (x.exp() * x).sum()
    tm.autograd.grad(y, x, create_graph=True, retain_graph=False)
    with pytest.raises(RuntimeError, match="second time"):
        tm.autograd.grad(y, x)
