"""``parametrize.cached`` and the ``foreach`` argument of the gradient-clipping functions."""
import numpy as np

import tinymm as tm
import tinymm.nn.utils.parametrize as P


class _Symmetric(tm.nn.Module):
    calls = 0

    def forward(self, X):
        _Symmetric.calls += 1
        return X.triu() + X.triu(1).transpose(-1, -2)


def test_cached_computes_once_per_block():
    m = tm.nn.Linear(3, 3)
    P.register_parametrization(m, "weight", _Symmetric())
    _Symmetric.calls = 0
    with P.cached():
        first, second = m.weight, m.weight
        with P.cached():  # nested blocks share the cache
            third = m.weight
    assert first is second is third and _Symmetric.calls == 1
    assert m.weight is not m.weight and _Symmetric.calls == 3  # outside: computed on each read
    x = tm.ones(2, 3)
    with P.cached():
        m(x).sum().backward()  # gradients flow through the cached value
    assert m.parametrizations.weight.original.grad is not None


def test_clip_foreach_accepted():
    p = tm.nn.Parameter(tm.ones(2))
    p.grad = tm.tensor([3.0, 4.0])
    total = tm.nn.utils.clip_grad_norm_([p], 1.0, foreach=True)
    assert abs(total.item() - 5.0) < 1e-6
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    tm.nn.utils.clip_grad_value_([p], 0.7, foreach=False)
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.7], rtol=1e-6)
