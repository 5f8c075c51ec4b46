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
