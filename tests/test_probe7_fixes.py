"""Gaps probe7's PyTorch programs (tests/pytorch_scripts: bilstm_crf, maml_sine, ...) hit in
tinymm, each checked against PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import TORCH_REASON, torch

import tinymm as tm

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


# ---- autograd.grad runs (and frees) only the nodes between its outputs and its inputs


def _grad_then_backward(lib, create_graph):
    """First-order MAML's shape: grad w.r.t. non-leaf fast weights, then backward through them."""
    x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
    fast = x * 3.0
    (g,) = lib.autograd.grad((fast ** 2).sum(), [fast], create_graph=create_graph)
    if create_graph:
        g = g.detach()
    fast2 = fast - 0.1 * g
    (fast2.exp() * fast).sum().backward()
    return x.grad.numpy(), g.numpy()


@needs_torch
@pytest.mark.parametrize("create_graph", [False, True])
def test_grad_of_a_non_leaf_leaves_the_graph_below_it_usable(create_graph):
    ours = _grad_then_backward(tm, create_graph)
    theirs = _grad_then_backward(torch, create_graph)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@needs_torch
def test_grad_does_not_walk_a_freed_graph_below_its_inputs_nor_hooks_there():
    def run(lib):
        calls = []
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        x.register_hook(lambda g: calls.append(1))
        y = x.exp()
        y.sum().backward()  # frees exp's node
        (gy,) = lib.autograd.grad((y * y).sum(), [y])
        return gy.numpy(), len(calls)

    (a, ca), (b, cb) = run(tm), run(torch)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert ca == cb == 1  # only the first backward reached x


def test_grad_through_a_freed_node_it_needs_still_raises():
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    z = x.exp().sum()
    tm.autograd.grad(z, [x])
    with pytest.raises(RuntimeError, match="second time"):
        tm.autograd.grad(z, [x])


# ---- nn.init: PyTorch's parameter names (torchdiffeq's constant_(m.bias, val=0)) and generator=

_INITS = ["uniform_", "normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_", "xavier_uniform_",
          "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_", "orthogonal_", "sparse_"]


@needs_torch
@pytest.mark.parametrize("name", _INITS)
def test_init_functions_take_pytorchs_parameter_names(name):
    import inspect

    ours = list(inspect.signature(getattr(tm.nn.init, name)).parameters)
    theirs = list(inspect.signature(getattr(torch.nn.init, name)).parameters)
    assert ours == theirs


def test_init_by_keyword_and_from_a_generator():
    w = tm.empty(4, 6)
    tm.nn.init.constant_(tensor=w, val=0.25)
    assert w.tolist() == [[0.25] * 6] * 4
    draws = {}
    for name, kw in [("uniform_", dict(a=-2.0, b=3.0)), ("normal_", dict(mean=1.0, std=0.5)),
                     ("xavier_uniform_", {}), ("xavier_normal_", {}), ("kaiming_uniform_", dict(a=0.1)),
                     ("kaiming_normal_", dict(mode="fan_out")), ("trunc_normal_", dict(std=0.02)),
                     ("orthogonal_", {}), ("sparse_", dict(sparsity=0.5))]:
        fn = getattr(tm.nn.init, name)
        runs = [fn(tm.empty(40, 30), **kw, generator=tm.Generator().manual_seed(seed)).numpy() for seed in (3, 3, 4)]
        np.testing.assert_array_equal(runs[0], runs[1], err_msg=name)
        assert not np.array_equal(runs[0], runs[2]), name
        draws[name] = runs[0]
    u = draws["uniform_"]
    assert u.min() >= -2.0 and u.max() < 3.0 and abs(u.mean() - 0.5) < 0.15
    assert abs(draws["normal_"].mean() - 1.0) < 0.05 and abs(draws["normal_"].std() - 0.5) < 0.05
    q = draws["orthogonal_"]
    np.testing.assert_allclose(q.T @ q, np.eye(30), atol=1e-5)
    # a draw from a generator leaves the default stream alone
    tm.manual_seed(0)
    a = tm.rand(3)
    tm.manual_seed(0)
    tm.nn.init.normal_(tm.empty(5), generator=tm.Generator().manual_seed(1))
    assert tm.rand(3).tolist() == a.tolist()


def test_init_generator_must_be_on_the_tensors_device():
    class OtherDevice(tm.Generator):
        def __init__(self):
            super().__init__()
            self.device = "cuda"

    with pytest.raises(RuntimeError, match="device type for generator"):
        tm.nn.init.uniform_(tm.empty(3), generator=OtherDevice())


# ---- Module registries: learn2learn's clone_module / update_module write _parameters directly


def _clone_module(module):
    """learn2learn's clone_module, cut down: a __new__-made copy sharing __dict__, its
    registries copied, each parameter replaced by a differentiable clone."""
    clone = module.__new__(type(module))
    clone.__dict__ = module.__dict__.copy()
    clone._parameters = clone._parameters.copy()
    clone._buffers = clone._buffers.copy()
    clone._modules = clone._modules.copy()
    for k, p in module._parameters.items():
        if p is not None:
            clone._parameters[k] = p.clone()
    for k, sub in module._modules.items():
        clone._modules[k] = _clone_module(sub)
    return clone


def _maml_l2l(lib):
    w1 = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    net = lib.nn.Sequential(lib.nn.Linear(4, 3), lib.nn.Tanh(), lib.nn.Linear(3, 1))
    net.load_state_dict({"0.weight": lib.tensor(w1), "0.bias": lib.zeros(3), "2.weight": lib.ones(1, 3),
                         "2.bias": lib.zeros(1)})
    x = lib.tensor(w1[::-1].copy())
    learner = _clone_module(net)
    loss = learner(x).pow(2).mean()
    grads = lib.autograd.grad(loss, list(learner.parameters()), create_graph=True)
    for (name, p), g in zip(list(learner.named_parameters()), grads):  # update_module
        owner, leaf = learner.get_submodule(name.rpartition(".")[0]), name.rpartition(".")[2]
        owner._parameters[leaf] = p - 0.5 * g
    adapted = learner[0].weight
    learner(x).sum().backward()
    return [adapted.detach().numpy(), net[0].weight.grad.numpy(), net[2].bias.grad.numpy(),
            np.array([learner[0].weight is learner[0]._parameters["weight"], learner[0].weight.is_leaf,
                      len(list(learner.parameters())), net[0].weight.requires_grad])]


@needs_torch
def test_learn2learn_clone_and_update_module_train_the_original_as_torch():
    for a, b in zip(_maml_l2l(tm), _maml_l2l(torch)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@needs_torch
def test_registry_writes_and_deletes_are_the_attribute_as_torch():
    def run(lib):
        m = lib.nn.Linear(2, 3)
        m._parameters["weight"] = lib.nn.Parameter(lib.ones(3, 2))
        m._buffers["scale"] = lib.full((3,), 2.0)
        m._modules["act"] = lib.nn.ReLU()
        out = [m.weight.sum().item(), m.scale.tolist(), type(m.act).__name__,
               sorted(k for k, _ in m.named_buffers()), sorted(m.state_dict())]
        del m._parameters["bias"]
        out.append(hasattr(m, "bias"))
        m._buffers.pop("scale")
        out.append(hasattr(m, "scale"))
        del m.act
        out.append(("act" in m._modules, hasattr(m, "act")))
        with pytest.raises(AttributeError):
            del m.nothing_here
        return out

    assert run(tm) == run(torch)


def test_registries_survive_deepcopy_and_a_plain_dict_in_their_place():
    import copy

    m = tm.nn.Sequential(tm.nn.Linear(2, 3), tm.nn.BatchNorm1d(3))
    c = copy.deepcopy(m)
    assert c[0]._parameters.owner is c[0] and c[0].weight is c[0]._parameters["weight"]
    c[0]._parameters["weight"] = tm.ones(3, 2)
    assert c[0].weight.sum().item() == 6 and m[0].weight.sum().item() != 6
    c[1]._buffers = {"running_mean": tm.full((3,), 5.0)}  # a plain dict is wrapped, attributes follow
    assert c[1].running_mean.tolist() == [5.0] * 3
    with pytest.raises(AttributeError, match="super"):
        tm.nn.Module.__new__(tm.nn.Module).weight = tm.nn.Parameter(tm.ones(1))


@needs_torch
def test_tensors_and_parameters_take_attributes_of_their_own_as_torch():
    import copy

    def run(lib):
        p = lib.nn.Parameter(lib.ones(2))
        p.update = lib.full((2,), 3.0)  # learn2learn
        p._no_weight_decay = True  # timm / Mamba
        t = (p * 2).detach()
        t.tag = "fast"
        q = copy.deepcopy(t)  # (PyTorch's Parameter.__deepcopy__ drops them; a Tensor's keeps them)
        with pytest.raises(AttributeError):
            t.nothing_here
        return [q.tag, p._no_weight_decay, t.tag, (p + p.update).tolist(), hasattr(lib.ones(1), "update")]

    assert run(tm) == run(torch)


@needs_torch
def test_deepcopy_of_a_parameter_or_model_starts_without_gradients_as_torch():
    import copy

    def run(lib):
        m = lib.nn.Linear(2, 1)
        m.load_state_dict({"weight": lib.tensor([[0.5, -1.0]]), "bias": lib.tensor([0.25])})
        m.weight.register_hook(lambda g: g * 10)
        m(lib.ones(1, 2)).sum().backward()
        target = copy.deepcopy(m)  # the DQN tutorial's target network, a MAML learner
        out = [target.weight.grad is None, type(target.weight).__name__, target.weight.requires_grad,
               target.weight.tolist(), target.weight is not m.weight]
        target(lib.ones(1, 2)).sum().backward()  # the hook stayed behind
        frozen = copy.deepcopy(lib.nn.Parameter(lib.ones(2), requires_grad=False))
        shared = copy.deepcopy([m.weight, m.weight])
        return out + [target.weight.grad.tolist(), frozen.requires_grad, shared[0] is shared[1]]

    assert run(tm) == run(torch)


# ---- autograd.grad(is_grads_batched=True): a Jacobian in one call (PINN / Jacobian code)


def _batched_jacobian(lib, create_graph):
    x = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
    w = lib.tensor([[1.0, 2.0], [0.5, -1.0], [0.0, 3.0]], dtype=lib.float64, requires_grad=True)
    y = (x.sin().unsqueeze(1) * w).sum(0) * x.sum()  # (2,)
    jx, jw = lib.autograd.grad(y, [x, w], grad_outputs=lib.eye(2, dtype=lib.float64), is_grads_batched=True,
                               create_graph=create_graph)
    out = [jx.detach().numpy(), jw.detach().numpy()]
    if create_graph:
        (hx,) = lib.autograd.grad((jx ** 2).sum() + jw.sum(), [x])
        out.append(hx.numpy())
    return out


@needs_torch
@pytest.mark.parametrize("create_graph", [False, True])
def test_grad_is_grads_batched_matches_torch(create_graph):
    ours, theirs = _batched_jacobian(tm, create_graph), _batched_jacobian(torch, create_graph)
    assert [a.shape for a in ours] == [b.shape for b in theirs]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_grad_is_grads_batched_bad_grad_outputs_raise():
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    y = x ** 2
    with pytest.raises(RuntimeError, match="batch dimension"):
        tm.autograd.grad(y, x, grad_outputs=tm.ones(3), is_grads_batched=True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        tm.autograd.grad(y, x, is_grads_batched=True)
    (g,) = tm.autograd.grad(y.sum(), x, grad_outputs=tm.tensor([1.0, 3.0]), is_grads_batched=True)
    assert g.tolist() == [[2.0, 4.0], [6.0, 12.0]]
