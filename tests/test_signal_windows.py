"""``tinymm.signal.windows`` against ``torch.signal.windows``: every window, both symmetries,
lengths 0-11, float32 and float64, and PyTorch's errors; ``tinymm.strided``/``Tensor.layout``."""
import pickle

import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

PARAMS = {"general_cosine": dict(a=[0.3, 0.5, 0.2]), "kaiser": dict(beta=5.5), "gaussian": dict(std=1.7),
          "exponential": dict(tau=2.5), "general_hamming": dict(alpha=0.6)}
NAMES = ["bartlett", "blackman", "cosine", "exponential", "gaussian", "general_cosine", "general_hamming",
         "hamming", "hann", "kaiser", "nuttall"]


@pytest.mark.parametrize("name", NAMES)
def test_window_matches_torch(name):
    assert sorted(NAMES) == sorted(torch.signal.windows.__all__)
    for M in (0, 1, 2, 3, 4, 5, 8, 11):
        for sym in (True, False):
            for dtype in ("float32", "float64"):
                kw = dict(PARAMS.get(name, {}))
                want = getattr(torch.signal.windows, name)(M, sym=sym, dtype=getattr(torch, dtype), **kw)
                got = getattr(tm.signal.windows, name)(M, sym=sym, dtype=getattr(tm, dtype), **kw)
                assert got.dtype == getattr(tm, dtype) and tuple(got.shape) == tuple(want.shape)
                np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=1e-6 if dtype == "float32" else 1e-12,
                                           err_msg=f"{name} M={M} sym={sym} {dtype}")
    assert getattr(tm.signal.windows, name)(4, **PARAMS.get(name, {})).dtype == tm.get_default_dtype()
    assert getattr(tm.signal.windows, name)(3, requires_grad=True, **PARAMS.get(name, {})).requires_grad


def test_exponential_centre_for_periodic_windows():
    for M in (1, 2, 5):
        for center in (None, 0.0, 1.3):
            want = torch.signal.windows.exponential(M, sym=False, center=center, tau=0.7, dtype=torch.float64)
            got = tm.signal.windows.exponential(M, sym=False, center=center, tau=0.7, dtype=tm.float64)
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)


@pytest.mark.parametrize("call", [
    lambda W, L: W.hann(-1), lambda W, L: W.gaussian(5, std=0), lambda W, L: W.exponential(5, center=1.0),
    lambda W, L: W.hann(5, dtype=L.int64), lambda W, L: W.kaiser(5, beta=-1.0),
    lambda W, L: W.general_cosine(5, a=[]), lambda W, L: W.exponential(5, tau=0),
    lambda W, L: W.general_cosine(5, a=3),
])
def test_errors_match_torch(call):
    with pytest.raises(Exception) as want:
        call(torch.signal.windows, torch)
    with pytest.raises(want.type):
        call(tm.signal.windows, tm)


def test_layout_objects():
    assert tm.ones(2).layout is tm.strided and repr(tm.strided) == "tinymm.strided"
    assert pickle.loads(pickle.dumps(tm.strided)) is tm.strided
    assert tm.signal.windows.hann(3, layout=torch.strided).shape == (3,)  # PyTorch's object is accepted
    with pytest.raises(ValueError, match="strided"):
        tm.signal.windows.hann(3, layout=torch.sparse_coo)
