"""``torch.autograd.Function`` written by users, on Tensors, as in PyTorch: the same code runs
with ``import tinymm as torch`` and gives torch's values, gradients and errors."""
import numpy as np
import pytest

import tinymm as tm
from tinymm.autograd import Function

from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _define(lib):
    class LeakyClamp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, lo, slope=0.1):
            ctx.save_for_backward(x)
            ctx.lo, ctx.slope = lo, slope
            return x.clamp(min=lo)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (x > ctx.lo).float() + ctx.slope * g, None, None

    class MulAdd(lib.autograd.Function):  # two tensor inputs, two outputs, the second not differentiable
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            idx = (a > 0).long()
            ctx.mark_non_differentiable(idx)
            return a * b + b, idx

        @staticmethod
        def backward(ctx, g, g_idx):
            a, b = ctx.saved_tensors
            ga = g * b if ctx.needs_input_grad[0] else None
            gb = g * (a + 1) if ctx.needs_input_grad[1] else None
            return ga, gb

    class Square(lib.autograd.Function):  # the new style: forward without ctx, setup_context
        @staticmethod
        def forward(x):
            return x * x

        @staticmethod
        def setup_context(ctx, inputs, output):
            (x,) = inputs
            ctx.save_for_backward(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    return LeakyClamp, MulAdd, Square


@needs_torch
def test_user_functions_match_torch_values_and_gradients():
    rng = np.random.default_rng(0)
    xa, xb = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    results = {}
    for lib in (tm, torch):
        LeakyClamp, MulAdd, Square = _define(lib)
        a = lib.tensor(xa, requires_grad=True)
        b = lib.tensor(xb, requires_grad=True)
        y = LeakyClamp.apply(a, 0.0, slope=0.2)
        z, idx = MulAdd.apply(y, b)
        loss = (Square.apply(z) * lib.arange(4.0)).sum()
        loss.backward()
        assert not idx.requires_grad and z.requires_grad
        results[lib.__name__] = [t.detach().numpy() for t in (loss, idx, a.grad, b.grad)]
    for ours, theirs in zip(results["tinymm"], results["torch"]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_needs_input_grad_and_no_grad_give_plain_outputs():
    _, MulAdd, _ = _define(tm)
    a = tm.ones(2, requires_grad=True)
    b = tm.ones(2)
    seen = {}

    class Probe(tm.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            seen["needs"] = ctx.needs_input_grad
            seen["grad_mode"] = tm.is_grad_enabled()
            return x + y

        @staticmethod
        def backward(ctx, g):
            return g, None

    out = Probe.apply(a, b)
    assert seen == {"needs": (True, False), "grad_mode": False} and out.requires_grad
    with tm.no_grad():
        z, _ = MulAdd.apply(a, b)
    assert not z.requires_grad
    out.sum().backward()
    assert a.grad.tolist() == [1.0, 1.0] and b.grad is None


def test_bad_backward_returns_raise_torchs_errors():
    a = tm.ones(2, requires_grad=True)

    def make(ret):
        class Bad(Function):
            @staticmethod
            def forward(ctx, x, k):
                return x * 2

            @staticmethod
            def backward(ctx, g):
                return ret(g)
        return Bad

    with pytest.raises(RuntimeError, match=r"function BadBackward returned an incorrect number of gradients \(expected 2, got 1\)"):
        make(lambda g: g).apply(a, 3).sum().backward()
    with pytest.raises(RuntimeError, match=r"returned a gradient different than None at position 2, but the corresponding forward input was not a Variable"):
        make(lambda g: (g, g)).apply(a, 3).sum().backward()
    with pytest.raises(RuntimeError, match=r"returned an invalid gradient at index 0 - got \[\] but expected shape compatible with \[2\]"):
        make(lambda g: (g.sum(), None)).apply(a, 3).sum().backward()
    a.grad = None
    make(lambda g: (tm.ones(3, 2), None)).apply(a, 3).sum().backward()  # broadcastable: summed, as torch
    assert a.grad.tolist() == [3.0, 3.0]
    with pytest.raises(TypeError, match=r"save_for_backward can only save variables, but argument 1 is of type int"):
        class SavesInt(Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x, 3)
                return x

            @staticmethod
            def backward(ctx, g):
                return g
        SavesInt.apply(a)


def test_a_saved_tensor_modified_in_place_is_refused_and_returned_grads_are_owned():
    LeakyClamp, _, _ = _define(tm)
    x = tm.randn(3, requires_grad=True)
    h = x * 1.0
    y = LeakyClamp.apply(h, 0.0)
    h.add_(1.0)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation.*LeakyClampBackward"):
        y.sum().backward()

    keep = {}

    class ReturnsSaved(Function):
        @staticmethod
        def forward(ctx, w):
            keep["buf"] = tm.ones(2)
            return w * 1.0

        @staticmethod
        def backward(ctx, g):
            return keep["buf"]

    w = tm.zeros(2, requires_grad=True)
    ReturnsSaved.apply(w).sum().backward()
    w.grad.add_(5.0)
    assert keep["buf"].tolist() == [1.0, 1.0]  # the leaf's grad is not the user's array


def test_tinymms_own_ops_stay_array_level_and_user_subclasses_are_tensor_level():
    from tinymm.ops import elementwise

    ops = [v for v in vars(elementwise).values() if isinstance(v, type) and issubclass(v, Function) and v is not Function]
    assert ops and not any(op.on_tensors for op in ops)
    LeakyClamp, _, _ = _define(tm)
    assert LeakyClamp.on_tensors


def test_saved_output_is_differentiated_again_with_create_graph():
    # PyTorch gives a saved output back with its grad_fn, so a backward written with it
    # (exp' = exp) has a second derivative; tinymm rebuilds it as the node's output.
    class Exp(tm.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y

    x = tm.tensor([0.3, -1.2, 2.0], dtype=tm.float64, requires_grad=True)
    assert tm.autograd.gradgradcheck(Exp.apply, (x,))
    (g,) = tm.autograd.grad(Exp.apply(x).sum(), x, create_graph=True)
    (gg,) = tm.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), np.exp(x.detach().numpy()), rtol=1e-12)
    y = Exp.apply(x)
    y.sum().backward()  # the first-order path, and the saved output unchanged after it
    np.testing.assert_allclose(x.grad.numpy(), np.exp(x.detach().numpy()), rtol=1e-12)
