"""Engine semantics: accumulation, zero_grad, retain_graph, no_grad, detach, deep chains."""
import numpy as np
import pytest

import tinymm as tm
from tinymm import nn


def test_gradients_accumulate_across_backward_calls():
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])


def test_shared_subexpression_gets_the_sum_of_its_consumers():
    x = tm.tensor([2.0], requires_grad=True)
    y = x * x  # used twice below
    z = y * 3 + y.exp()
    z.backward(tm.ones(1))
    np.testing.assert_allclose(x.grad.numpy(), [3 * 4 + np.exp(4.0) * 4], rtol=1e-5)


def test_zero_grad_resets():
    lin = nn.Linear(3, 2)
    lin(tm.randn(4, 3)).sum().backward()
    assert lin.weight.grad is not None
    lin.zero_grad()
    assert lin.weight.grad is None
    lin(tm.randn(4, 3)).sum().backward()
    lin.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(lin.weight.grad.numpy(), 0)


def test_second_backward_through_freed_graph_raises():
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.exp([1.0, 2.0]), rtol=1e-6)


def test_no_grad_records_nothing_as_context_and_decorator():
    x = tm.tensor([1.0], requires_grad=True)
    with tm.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None

    @tm.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    assert tm.is_grad_enabled()


def test_detach_cuts_the_graph_and_shares_memory():
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad
    y = (d * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    a = tm.tensor([1.0])
    a.detach()._data[0] = 5.0
    assert a.item() == 5.0


def test_deep_chain_does_not_hit_recursion_limit():
    x = tm.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001**10_000], rtol=1e-3)


def test_each_node_runs_backward_once_in_a_diamond():
    calls = []

    class Spy(tm.Function):
        on_tensors = False  # an array-level op, as tinymm's own

        @staticmethod
        def forward(ctx, a):
            return a * 1

        @staticmethod
        def backward(ctx, g):
            calls.append(1)
            return g

    x = tm.tensor([1.0], requires_grad=True)
    s = Spy.apply(x)
    (s * 2 + s * 3 + s).sum().backward()
    assert len(calls) == 1
    np.testing.assert_allclose(x.grad.numpy(), [6.0])


def test_retain_grad_on_intermediate():
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 3).retain_grad()
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [6.0, 12.0])
    np.testing.assert_allclose(x.grad.numpy(), [18.0, 36.0])


def test_backward_errors_are_clear():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tm.tensor([1.0]).sum().backward()
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="single-element"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"grad has shape \(3,\)"):
        (x * 2).backward(tm.ones(3))
    with pytest.raises(RuntimeError, match="Only Tensors of floating point"):
        tm.tensor([1, 2], requires_grad=True)


def test_mixing_float_dtypes_promotes_as_pytorch_does():
    a = tm.ones(2, requires_grad=True)
    b = tm.ones(2, dtype=tm.float64, requires_grad=True)
    out = a * b
    assert out.dtype == np.float64  # the wider dtype
    out.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64  # each grad in its own dtype
    assert (a + tm.tensor(2.0, dtype=tm.float64)).dtype == np.float32  # a 0-d tensor does not widen
    assert (tm.tensor(2.0) + b).dtype == np.float64
    assert (a + b.float()).dtype == np.float32


def test_gradcheck_catches_a_wrong_gradient():
    class Wrong(tm.Function):
        on_tensors = False  # an array-level op, as tinymm's own

        @staticmethod
        def forward(ctx, a):
            return a * a

        @staticmethod
        def backward(ctx, g):
            return g  # should be 2·a·g

    x = tm.tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(AssertionError, match="finite differences"):
        tm.gradcheck(lambda t: Wrong.apply(t), [x])
    # float32 inputs: PyTorch's warning, then float32 differences too coarse to pass
    with pytest.warns(UserWarning, match="double precision"), pytest.raises(AssertionError, match="finite differences"):
        tm.gradcheck(lambda t: t * 2, [tm.tensor([1.0], requires_grad=True)])


def test_multi_output_function_fills_missing_grads():
    x = tm.tensor(np.arange(6.0), requires_grad=True)
    a, b, c = x.split(2)
    (b * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 2, 2, 0, 0])


# ----------------------------------------------------------------------------- gradient ownership
# Backward hands a leaf the array a Function produced fresh (no copy); anything the caller or
# another tensor may hold is copied, so the in-place accumulation of a second backward can
# never write into it.


def test_accumulating_twice_never_mutates_a_seed_gradient_the_user_holds():
    x = tm.tensor([1.0, 2.0, 3.0], requires_grad=True)
    seed = np.array([1.0, 10.0, 100.0], dtype=np.float32)
    for _ in range(2):
        x.clone().backward(tm.from_numpy(seed))  # Clone passes the seed through unchanged
    x.backward(tm.from_numpy(seed))  # a leaf root: its gradient is the seed itself
    np.testing.assert_array_equal(seed, [1.0, 10.0, 100.0])
    np.testing.assert_array_equal(x.grad.numpy(), 3 * seed)


def test_one_gradient_array_given_to_two_leaves_is_not_shared():
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    w = tm.tensor([5.0, 7.0], requires_grad=True)
    for _ in range(2):
        (x + w).sum().backward()  # Add returns the same array for both inputs
    assert not np.shares_memory(x.grad.numpy(), w.grad.numpy())
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0])


def test_a_gradient_that_is_a_saved_array_is_copied_not_adopted():
    weights = np.array([2.0, 3.0])

    class DotWith(tm.Function):  # backward returns the array it saved, a legal thing to do
        on_tensors = False  # an array-level op, as tinymm's own

        @staticmethod
        def forward(ctx, x, c):
            ctx.save_for_backward(c)
            return (x * c).sum()

        @staticmethod
        def backward(ctx, g):
            (c,) = ctx.saved_arrays
            return (c if g == 1 else g * c), None

    x = tm.tensor([1.0, 1.0], dtype=tm.float64, requires_grad=True)
    for _ in range(2):
        DotWith.apply(x, weights).backward()
    np.testing.assert_array_equal(weights, [2.0, 3.0])
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 6.0])


def test_retained_grad_of_a_non_leaf_used_twice_is_the_sum():
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    (y + y * 3).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [4.0, 4.0])
    np.testing.assert_array_equal(x.grad.numpy(), [8.0, 8.0])


def test_a_fresh_gradient_becomes_the_leaf_grad_without_a_copy(monkeypatch):
    from tinymm import autograd

    copies = []
    monkeypatch.setattr(autograd, "_owned", lambda g: copies.append(g) or np.array(g))
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).sum().backward()  # Mul.backward makes g*3 fresh: adopted as it is
    assert copies == [] and x.grad.numpy().base is None
    x.clone().backward(tm.ones(2))  # the caller's seed passes through Clone: copied
    assert len(copies) == 0  # x.grad exists already: accumulated in place, nothing adopted
    x.grad = None
    x.clone().backward(tm.ones(2))
    assert len(copies) == 1
