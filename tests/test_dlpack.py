"""DLPack exchange (``tinymm.from_dlpack``, ``tinymm.utils.dlpack``, ``Tensor.__dlpack__``) and
torch's constants: shared memory both ways, with NumPy and with PyTorch, and PyTorch's errors."""
import math

import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch


def test_numpy_shares_memory_both_ways():
    t = tm.arange(4.0)
    a = np.from_dlpack(t)
    a[0] = 9.0
    assert t.tolist() == [9.0, 1.0, 2.0, 3.0]
    x = np.arange(6.0).reshape(2, 3)[:, ::2]  # strided: kept as a view, not copied
    y = tm.from_dlpack(x)
    y[1, 1] = -1.0
    assert x[1, 1] == -1.0 and y.shape == (2, 2) and y.dtype == tm.float64
    for arr in (np.array([True, False]), np.array([1 + 2j], np.complex64), np.arange(3, dtype=np.int16)):
        assert tm.from_dlpack(arr).dtype == tm.from_numpy(arr).dtype


def test_capsules_and_errors():
    t = tm.arange(3.0)
    capsule = tm.utils.dlpack.to_dlpack(t)
    u = tm.utils.dlpack.from_dlpack(capsule)
    u[0] = 5.0
    assert t[0].item() == 5.0
    with pytest.raises(RuntimeError, match="consumed only once"):
        tm.from_dlpack(capsule)  # a capsule is used once
    with pytest.raises(BufferError, match="require gradient"):
        np.from_dlpack(tm.ones(2, requires_grad=True))
    with pytest.raises(RuntimeError, match="__dlpack__"):
        tm.from_dlpack([1, 2])
    with pytest.raises(TypeError, match="tinymm Tensor"):
        tm.utils.dlpack.to_dlpack(np.ones(2))
    w = tm.ones(2, requires_grad=True)
    assert tm.from_dlpack(w).requires_grad is False  # a tinymm tensor comes back detached


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
def test_torch_shares_memory_both_ways():
    t = tm.arange(4.0)
    tt = torch.from_dlpack(t)
    tt[2] = 7.0
    assert t.tolist() == [0.0, 1.0, 7.0, 3.0]
    src = torch.arange(6.0).reshape(2, 3).t()  # non-contiguous
    m = tm.from_dlpack(src)
    assert m.tolist() == src.tolist() and m.dtype == tm.float32
    m[0, 0] = 42.0
    assert src[0, 0].item() == 42.0
    legacy = torch.arange(3)
    shared = tm.from_dlpack(torch.utils.dlpack.to_dlpack(legacy))  # an unversioned capsule: still writeable
    shared[0] = 8
    assert legacy.tolist() == [8, 1, 2]
    with pytest.raises(BufferError):
        torch.from_dlpack(tm.ones(1, requires_grad=True))


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
def test_constants_match_torch():
    for name in ("pi", "e", "inf", "nan"):
        a, b = getattr(tm, name), getattr(torch, name)
        assert (math.isnan(a) and math.isnan(b)) or a == b
    assert tm.newaxis is torch.newaxis is None
    assert tm.ones(2, 3)[:, tm.newaxis].shape == (2, 1, 3)
