"""torch.autograd.graph: saved_tensors_hooks, save_on_cpu, disable_saved_tensors_hooks,
increment_version and Node, against PyTorch (gradients, hook protocol, errors)."""
import os

import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _mlp_grads(lib, hooks=None, retain=False):
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.standard_normal((4, 5)))
    w1 = lib.tensor(rng.standard_normal((5, 6)), requires_grad=True)
    w2 = lib.tensor(rng.standard_normal((6, 3)), requires_grad=True)
    ctx = hooks(lib) if hooks else None
    if ctx is not None:
        with ctx:
            loss = (lib.tanh(x @ w1) @ w2).exp().mean() + (w1 * w1).sum().sqrt()
    else:
        loss = (lib.tanh(x @ w1) @ w2).exp().mean() + (w1 * w1).sum().sqrt()
    loss.backward(retain_graph=retain)
    if retain:
        loss.backward()
    return w1.grad.numpy(), w2.grad.numpy()


@needs_torch
@pytest.mark.parametrize("kind", ["identity", "clone", "disk", "save_on_cpu"])
def test_gradients_through_hooks_match_torch(kind, tmp_path):
    def hooks(lib):
        graph = lib.autograd.graph
        if kind == "identity":
            return graph.saved_tensors_hooks(lambda t: t, lambda t: t)
        if kind == "clone":
            return graph.saved_tensors_hooks(lambda t: t.detach().clone(), lambda t: t)
        if kind == "save_on_cpu":
            return graph.save_on_cpu()
        counter = [0]

        def pack(t):  # the tutorial's hooks: each saved tensor goes to a file
            counter[0] += 1
            path = os.path.join(tmp_path, f"{lib.__name__}_{counter[0]}.pt")
            lib.save(t, path)
            return path

        return graph.saved_tensors_hooks(pack, lambda path: lib.load(path))

    for ours, ref in zip(_mlp_grads(tm, hooks), _mlp_grads(torch, hooks)):
        np.testing.assert_allclose(ours, ref, rtol=1e-10)


def test_every_packed_tensor_is_unpacked_and_retain_graph_unpacks_again():
    packed, unpacked = [], []

    def pack(t):
        packed.append(tuple(t.shape))
        return t

    def unpack(t):
        unpacked.append(tuple(t.shape))
        return t

    grads = _mlp_grads(tm, lambda lib: lib.autograd.graph.saved_tensors_hooks(pack, unpack), retain=True)
    plain = _mlp_grads(tm, retain=True)
    assert packed and len(unpacked) >= 2 * len(set(packed))  # each backward unpacked again
    for g, p in zip(grads, plain):
        np.testing.assert_allclose(g, p, rtol=1e-12)


@needs_torch
def test_custom_function_saved_tensors_go_through_the_hooks_as_torch():
    counts = {}
    for lib in (tm, torch):
        class Mul(lib.autograd.Function):
            @staticmethod
            def forward(ctx, a, b):
                ctx.save_for_backward(a, b)
                return a * b

            @staticmethod
            def backward(ctx, g):
                a, b = ctx.saved_tensors
                return g * b, g * a

        seen = []
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = lib.tensor([3.0, 4.0], requires_grad=True)
        with lib.autograd.graph.saved_tensors_hooks(lambda t: (seen.append("pack"), t * 1)[1],
                                                    lambda t: (seen.append("unpack"), t)[1]):
            y = Mul.apply(a, b)
        y.sum().backward()
        counts[lib.__name__] = (seen.count("pack"), seen.count("unpack"), a.grad.tolist(), b.grad.tolist())
    assert counts["tinymm"] == counts["torch"]


def test_innermost_hooks_apply_and_create_graph_works():
    outer, inner = [], []
    x = tm.tensor([0.5, -1.0], dtype=tm.float64, requires_grad=True)
    with tm.autograd.graph.saved_tensors_hooks(lambda t: (outer.append(1), t)[1], lambda t: t):
        with tm.autograd.graph.saved_tensors_hooks(lambda t: (inner.append(1), t)[1], lambda t: t):
            y = (x.sin() * x).sum()
        z = x.exp().sum()
    assert inner and outer
    (g,) = tm.autograd.grad(y + z, x, create_graph=True)
    (gg,) = tm.autograd.grad(g.sum(), x)
    xv = x.detach().numpy()
    np.testing.assert_allclose(gg.numpy(), -xv * np.sin(xv) + 2 * np.cos(xv) + np.exp(xv), rtol=1e-12)


@pytest.mark.parametrize("lib_name", ["tinymm", "torch"])
def test_errors_as_torch(lib_name):
    lib = tm if lib_name == "tinymm" else torch
    if lib is None:
        pytest.skip(TORCH_REASON)
    graph = lib.autograd.graph
    x = lib.ones(2, requires_grad=True)
    with graph.saved_tensors_hooks(lambda t: 1, lambda p: p):
        y = x.exp()
    with pytest.raises(TypeError, match="unpack_hook"):
        y.sum().backward()
    with graph.disable_saved_tensors_hooks("hooks are off here"):
        with pytest.raises(RuntimeError, match="hooks are off here"):
            with graph.saved_tensors_hooks(lambda t: t, lambda t: t):
                pass
    with graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        with pytest.raises(RuntimeError, match="no disabling"):
            with graph.disable_saved_tensors_hooks("no disabling"):
                pass


@pytest.mark.parametrize("lib_name", ["tinymm", "torch"])
def test_increment_version_and_node(lib_name):
    lib = tm if lib_name == "tinymm" else torch
    if lib is None:
        pytest.skip(TORCH_REASON)
    x = lib.ones(2, requires_grad=True)
    q = x * 1
    w = q * q
    assert isinstance(w.grad_fn, lib.autograd.graph.Node)
    lib.autograd.graph.increment_version(q)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        w.sum().backward()
