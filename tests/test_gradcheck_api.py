"""``gradcheck``/``gradgradcheck`` with PyTorch's signatures and behaviour, and the
``torch.autograd`` submodules code imports from, each compared with PyTorch."""
import warnings

import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch


def _square_fn(lib, detach_in_backward):
    class Square(lib.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return 2 * g * (a.detach() if detach_in_backward else a)

    return Square.apply


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
def test_verdicts_match_torch():
    x = np.random.default_rng(0).standard_normal((2, 3))
    cases = [
        ("gradcheck", lambda L: (lambda t: (t * t).sin().sum(0)), {}),
        ("gradcheck", lambda L: (lambda t: t * 2 + 0 * t.detach()), {}),
        ("gradcheck", lambda L: _square_fn(L, False), {}),
        ("gradgradcheck", lambda L: (lambda t: (t * t).sin()), {}),
        ("gradgradcheck", lambda L: _square_fn(L, False), {}),
        ("gradgradcheck", lambda L: _square_fn(L, True), {}),  # second derivative lost: both fail
    ]
    for check, make, kw in cases:
        verdicts = []
        for lib in (tm, torch):
            t = lib.tensor(x, dtype=lib.float64, requires_grad=True)
            verdicts.append(getattr(lib.autograd, check)(make(lib), t, raise_exception=False, **kw))
        assert verdicts[0] == verdicts[1], (check, verdicts)


def test_wrong_gradient_and_options():
    class Wrong(tm.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return g * 3

    x = tm.randn(3, dtype=tm.float64, requires_grad=True)
    assert tm.autograd.gradcheck(Wrong.apply, x, raise_exception=False) is False
    with pytest.raises(tm.autograd.GradcheckError, match="autograd gives"):
        tm.autograd.gradcheck(Wrong.apply, (x,))
    assert x.grad is None  # gradcheck leaves .grad alone, as PyTorch's
    assert tm.autograd.gradcheck(Wrong.apply, x, check_backward_ad=False)
    with pytest.raises(NotImplementedError, match="check_forward_ad"):
        tm.autograd.gradcheck(lambda t: t, x, check_forward_ad=True)
    with pytest.raises(ValueError, match="requires_grad=True"):
        tm.autograd.gradcheck(lambda t: t, tm.ones(2, dtype=tm.float64))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert tm.autograd.gradcheck(lambda t: t * 2, tm.ones(2, requires_grad=True), eps=1e-3)
    assert any("double precision" in str(w.message) for w in caught)
    strided = tm.randn(3, 4, dtype=tm.float64).t().requires_grad_()  # a non-contiguous input is perturbed in place
    assert tm.autograd.gradcheck(lambda t: t.exp().sum(0), strided)
    go = tm.randn(3, dtype=tm.float64, requires_grad=True)
    assert tm.autograd.gradgradcheck(lambda t: t.tanh(), (x,), (go,))


def test_autograd_submodules():
    from tinymm.autograd.anomaly_mode import detect_anomaly, set_detect_anomaly
    from tinymm.autograd.function import Function, FunctionCtx, once_differentiable
    from tinymm.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
    from tinymm.autograd.grad_mode import enable_grad, inference_mode, no_grad, set_grad_enabled
    from tinymm.autograd.variable import Variable

    assert Function is tm.autograd.Function and FunctionCtx is tm.autograd.FunctionCtx
    assert once_differentiable is tm.autograd.once_differentiable and Variable is tm.autograd.Variable
    assert no_grad is tm.no_grad and detect_anomaly is tm.autograd.detect_anomaly
    assert gradcheck is tm.autograd.gradcheck and gradgradcheck is tm.autograd.gradgradcheck
    assert callable(tm.autograd.gradcheck)  # the function, not the module, as in PyTorch
    assert tm.autograd.grad_mode.set_grad_enabled is set_grad_enabled
    assert {enable_grad, inference_mode, set_detect_anomaly, GradcheckError}
