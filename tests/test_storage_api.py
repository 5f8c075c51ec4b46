"""Storage and memory methods against PyTorch: ``untyped_storage``/``storage`` (sharing seen
through data_ptr, sizes of a view's whole block), ``to_dense``, ``is_pinned``, ``is_shared``,
``dim_order``, ``const_data_ptr``, ``output_nr``, ``nonzero_static``, ``as_subclass``."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _same_answers(fn):
    got = fn(tm, tm.arange(12.0).reshape(3, 4))
    want = fn(torch, torch.arange(12.0).reshape(3, 4))
    assert got == want, (got, want)


@pytest.mark.parametrize("fn", [
    lambda L, t: (t.untyped_storage().nbytes(), len(t[1:].untyped_storage()), t[1:].untyped_storage().size()),
    lambda L, t: t[1:, ::2].untyped_storage().data_ptr() == t.untyped_storage().data_ptr(),
    lambda L, t: t.clone().untyped_storage().data_ptr() == t.untyped_storage().data_ptr(),
    lambda L, t: (t.is_pinned(), t.is_shared(), t.to_dense() is t, str(t.to_dense(L.float64).dtype)[-7:]),
    lambda L, t: (t.dim_order(), t.t().dim_order(), t[None].dim_order(), t.const_data_ptr() == t.data_ptr()),
    lambda L, t: (t.output_nr, (t.requires_grad_() * 2).output_nr),
    lambda L, t: L.nonzero_static(t - 5, size=3).tolist(),
    lambda L, t: L.nonzero_static(t > 9, size=4, fill_value=-7).tolist(),
    lambda L, t: (t.reshape(-1)[:5] > 2).nonzero_static(size=0).shape,
    lambda L, t: L.nonzero_static(L.tensor(3.0), size=2).tolist(),
])
def test_matches_torch(fn):
    _same_answers(fn)


def test_typed_storage():
    t = tm.arange(6, dtype=tm.int32).reshape(2, 3)
    with pytest.warns(UserWarning, match="TypedStorage is deprecated"):
        s = t[1].storage()
    with pytest.warns(UserWarning):
        ts = torch.arange(6, dtype=torch.int32).reshape(2, 3)[1].storage()
    assert (s.size(), s.tolist(), s.element_size(), s[4]) == (ts.size(), ts.tolist(), ts.element_size(), ts[4])
    assert s.data_ptr() == t.data_ptr() and s.untyped().nbytes() == 24


def test_as_subclass_keeps_memory_and_graph():
    class Mine(tm.Tensor):
        pass

    x = tm.ones(3, requires_grad=True)
    y = (x * 2).as_subclass(Mine)
    assert type(y) is Mine and y.requires_grad
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 8.0)
    base = tm.zeros(2)
    alias = base.as_subclass(Mine)
    alias[0] = 5.0
    assert base[0].item() == 5.0
    with pytest.raises(TypeError, match="subclass of Tensor"):
        base.as_subclass(int)
    with pytest.raises(RuntimeError, match="size"):
        tm.nonzero_static(base, size=-1)
