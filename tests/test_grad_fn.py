"""Tensor.grad_fn as PyTorch presents it: one node object per op with name(), next_functions
(AccumulateGrad for leaves) and metadata; the tensor repr; anomaly mode naming a user Function."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch


def test_node_names_links_and_identity():
    x = tm.ones(3, requires_grad=True)
    w = tm.ones(3)  # no grad: (None, 0) in next_functions
    y = x * w
    node = y.grad_fn
    assert node is y.grad_fn and node.name() == "MulBackward0"
    (leaf, i0), (none, i1) = node.next_functions
    assert leaf.variable is x and leaf.name() == "torch::autograd::AccumulateGrad" and i0 == 0
    assert none is None and i1 == 0
    z = y.sum()
    assert z.grad_fn.next_functions[0][0] is node
    node.metadata["tag"] = 1
    assert y.grad_fn.metadata == {"tag": 1}
    assert repr(y).endswith("grad_fn=<MulBackward0>)")
    assert x.grad_fn is None and y.detach().grad_fn is None


def test_multi_output_op_shares_one_node():
    a, b = tm.ones(4, requires_grad=True).chunk(2)
    assert a.grad_fn is b.grad_fn
    assert [i for _, i in (a + b).grad_fn.next_functions] == [0, 1]


def test_walking_the_graph_reaches_every_leaf():
    x, y = tm.ones(2, requires_grad=True), tm.ones(2, requires_grad=True)
    out = ((x * 2 + y).relu() * x).sum()
    seen, stack, parents_of_x = {}, [out.grad_fn], 0
    while stack:
        n = stack.pop()
        if n is None or id(n) in seen:
            continue
        seen[id(n)] = n
        for f, _ in n.next_functions:
            parents_of_x += getattr(f, "variable", None) is x
            stack.append(f)
    leaves = [n.variable for n in seen.values() if hasattr(n, "variable")]
    assert len(leaves) == 2 and any(t is x for t in leaves) and any(t is y for t in leaves)
    assert parents_of_x == 2  # one AccumulateGrad for x, fed from both products


class _Sq(tm.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2 * x * float("nan")


def test_user_function_node_name_and_anomaly_message():
    x = tm.ones(3, requires_grad=True)
    y = _Sq.apply(x)
    assert y.grad_fn.name() == "_SqBackward"
    with tm.autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match=r"Function '_SqBackward' returned nan values in its 0th output"):
            _Sq.apply(x).sum().backward()
        with pytest.raises(RuntimeError, match=r"Function 'SqrtBackward0' returned nan"):
            (tm.tensor([0.0], requires_grad=True).sqrt() * 0).backward()


def test_node_hooks_say_unsupported():
    y = tm.ones(2, requires_grad=True) * 2
    with pytest.raises(NotImplementedError, match="Tensor.register_hook"):
        y.grad_fn.register_hook(lambda *a: None)


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
def test_names_match_torch_for_common_ops():
    for op in (lambda t: t * 2, lambda t: t + 1, lambda t: t.sum(), lambda t: t.exp(), lambda t: t.sqrt()):
        a = op(tm.ones(3, requires_grad=True)).grad_fn.name()
        b = op(torch.ones(3, requires_grad=True)).grad_fn.name()
        assert a == b, (a, b)


def test_asking_for_grad_fn_makes_no_reference_cycle():
    import gc
    import weakref

    gc.disable()
    try:
        x = tm.ones(1000, requires_grad=True)
        y = x * 3
        y.grad_fn.metadata["seen"] = True
        ref = weakref.ref(y._node[0])
        del y
        assert ref() is None  # freed by reference counting alone
    finally:
        gc.enable()
