"""tinymm.autograd.functional against torch.autograd.functional: Jacobians, Hessians and their
products on small float64 functions, PyTorch's result nesting, strict mode and create_graph."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

RNG = np.random.default_rng(0)
W = RNG.standard_normal((3, 4))
A, B = RNG.standard_normal(4), RNG.standard_normal((2, 3))


def _f1(lib):  # one input, one output
    w = lib.tensor(W)
    return lambda x: (w @ x).tanh() * x[:3].exp()


def _f2(lib):  # two inputs, two outputs
    return lambda x, y: ((x[:3] * y).sum(1), (x ** 2).sum() + y.sin().mean())


def _scalar(lib):
    w = lib.tensor(W)
    return lambda x: ((w @ x).tanh() ** 2).sum() + (x ** 3).sum()


def _t(lib, *arrays):
    return tuple(lib.tensor(a.copy()) for a in arrays)


def _close(a, b):
    if isinstance(b, (tuple, list)):
        assert isinstance(a, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            _close(x, y)
        return
    assert tuple(a.shape) == tuple(b.shape)
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)


def _both(name, make_f, arrays, tuple_inputs, **kw):
    out = []
    for lib, mod in ((tm, tm.autograd.functional), (torch, torch.autograd.functional)):
        xs = _t(lib, *arrays)
        out.append(getattr(mod, name)(make_f(lib), xs if tuple_inputs else xs[0], **kw))
    return out


@pytest.mark.parametrize("name", ["jacobian", "hessian"])
def test_jacobian_and_hessian_match_torch(name):
    f = _f1 if name == "jacobian" else _scalar
    mine, theirs = _both(name, f, (A,), False)
    _close(mine, theirs)
    if name == "jacobian":
        mine, theirs = _both(name, _f2, (A, B), True)
        _close(mine, theirs)  # [output][input], each output.shape + input.shape
    else:
        g = lambda lib: (lambda x, y: (x[:3] * y).sum() * x.sum() + (y ** 2).sum())  # noqa: E731
        mine, theirs = _both(name, g, (A, B), True)
        _close(mine, theirs)


@pytest.mark.parametrize("name", ["vjp", "jvp", "vhp", "hvp"])
def test_products_match_torch(name):
    f = _f1 if name in ("vjp", "jvp") else _scalar
    v = RNG.standard_normal(3 if name == "vjp" else 4)
    mine, theirs = [], []
    for lib, mod, res in ((tm, tm.autograd.functional, mine), (torch, torch.autograd.functional, theirs)):
        res.extend(getattr(mod, name)(f(lib), lib.tensor(A.copy()), lib.tensor(v)))
    _close(tuple(mine), tuple(theirs))


def test_create_graph_reaches_the_callers_inputs():
    grads = []
    for lib in (tm, torch):
        x = lib.tensor(A.copy(), requires_grad=True)
        h = lib.autograd.functional.hessian(_scalar(lib), x, create_graph=True)
        assert h.requires_grad
        (h ** 2).sum().backward()
        grads.append(x.grad)
    _close(grads[0], grads[1])
    plain = tm.autograd.functional.jacobian(_f1(tm), tm.tensor(A, requires_grad=True))
    assert not plain.requires_grad


def test_unused_inputs_give_zeros_or_raise_in_strict_mode():
    f = lambda x, y: x * 2  # noqa: E731
    j = tm.autograd.functional.jacobian(f, (tm.ones(2), tm.ones(3)))
    assert j[1].shape == (2, 3) and (j[1].detach().numpy() == 0).all()
    with pytest.raises(RuntimeError, match="independent of input 1"):
        tm.autograd.functional.jacobian(f, (tm.ones(2), tm.ones(3)), strict=True)
    with pytest.raises(RuntimeError, match="does not require gradients"):
        tm.autograd.functional.jacobian(lambda x: tm.ones(2), tm.ones(2), strict=True)
    np.testing.assert_array_equal(tm.autograd.functional.jacobian(lambda x: tm.ones(2), tm.ones(2)).detach().numpy(),
                                  np.zeros((2, 2)))


def test_bad_arguments_raise_as_torch():
    F = tm.autograd.functional
    with pytest.raises(RuntimeError, match="single element"):
        F.hessian(lambda x: x ** 2, tm.ones(2))
    with pytest.raises(RuntimeError, match="v can only be None"):
        F.vjp(lambda x: x * 2, tm.ones(2))
    with pytest.raises(RuntimeError, match="shape"):
        F.jvp(lambda x: x * 2, tm.ones(2), tm.ones(3))
    with pytest.raises(TypeError, match="Tensor or a tuple of Tensors"):
        F.jacobian(lambda x: x, [1.0, 2.0])
    with pytest.raises(ValueError, match="strategy"):
        F.jacobian(lambda x: x, tm.ones(2), strategy="sideways")
