"""``stft``/``istft`` against PyTorch: values, gradients (signal and window), round trips,
``Tensor.stft``/``Tensor.istft`` and PyTorch's errors."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from complex_helpers import compare, rand
from helpers import TORCH_REASON, torch

import tinymm as tm

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _lib(t):
    return torch if isinstance(t, torch.Tensor) else tm


CASES = [
    {"n_fft": 8},
    {"n_fft": 8, "hop_length": 3, "win_length": 6},
    {"n_fft": 7, "center": False, "hop_length": 2},
    {"n_fft": 8, "pad_mode": "constant", "normalized": True},
    {"n_fft": 6, "pad_mode": "replicate", "hop_length": 4},
    {"n_fft": 8, "pad_mode": "circular", "onesided": False},
]


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
@pytest.mark.parametrize("shape", [(30,), (2, 23)])
def test_stft(kw, shape):
    win = kw.get("win_length", kw["n_fft"])
    fn = lambda x, w: _lib(x).stft(x, window=w, return_complex=True, **kw)
    compare(fn, fn, rand(shape, "float64"), np.hanning(win + 2)[1:-1] + 0.1, atol=1e-9, rtol=1e-7)


def test_stft_complex_input_and_method():
    fn = lambda x: x.stft(8, hop_length=2, window=_lib(x).hann_window(8, dtype=_lib(x).float64))
    compare(fn, fn, rand((20,)), atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("kw", [{"n_fft": 8}, {"n_fft": 8, "hop_length": 3, "win_length": 6, "length": 25},
                                {"n_fft": 7, "center": False, "hop_length": 2}, {"n_fft": 8, "normalized": True, "length": 40},
                                {"n_fft": 8, "onesided": False}])
def test_istft(kw):
    n_fft = kw["n_fft"]
    onesided = kw.pop("onesided", True)
    win = kw.get("win_length", n_fft)
    r = np.random.default_rng(0)
    signal = r.standard_normal((2, 30))
    window = np.hanning(win + 2)[1:-1] + 0.1
    spec = torch.stft(torch.tensor(signal), n_fft, hop_length=kw.get("hop_length"), win_length=kw.get("win_length"),
                      window=torch.tensor(window), center=kw.get("center", True), normalized=kw.get("normalized", False),
                      onesided=onesided, return_complex=True).numpy()
    spec = spec + 0.01 * rand(spec.shape)  # not exactly an stft: the least-squares path is exercised
    fn = lambda z, w: _lib(z).istft(z, window=w, onesided=onesided, **kw)
    compare(fn, fn, spec, window, atol=1e-9, rtol=1e-7)


def test_round_trip_and_return_complex_false():
    x = tm.tensor(np.random.default_rng(1).standard_normal(50), dtype=tm.float32)
    w = tm.hann_window(16)
    spec = tm.stft(x, 16, hop_length=4, window=w, return_complex=True)
    assert spec.dtype is tm.complex64 and tuple(spec.shape) == (9, 13)
    back = spec.istft(16, hop_length=4, window=w, length=50)
    np.testing.assert_allclose(back.numpy(), x.numpy(), atol=1e-5)
    with pytest.warns(UserWarning, match="deprecated"):
        real = tm.stft(x, 16, window=w, return_complex=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = torch.stft(torch.tensor(x.numpy()), 16, window=torch.hann_window(16), return_complex=False)
    np.testing.assert_allclose(real.numpy(), want.numpy(), atol=1e-5)


def test_errors_like_torch():
    x, xt = tm.ones(20), torch.ones(20)
    w = tm.ones(8)
    cases = [
        (lambda m, a: m.stft(a, 8, window=m.ones(8)), "return_complex"),
        (lambda m, a: m.stft(a, 8, hop_length=0, window=m.ones(8), return_complex=True), "hop_length"),
        (lambda m, a: m.stft(a, 8, win_length=9, window=m.ones(9), return_complex=True), "win_length"),
        (lambda m, a: m.stft(a, 8, window=m.ones(5), return_complex=True), "window"),
        (lambda m, a: m.stft(a, 64, window=m.ones(64), center=False, return_complex=True), "n_fft"),
        (lambda m, a: m.stft(a.reshape(1, 1, 20), 8, window=m.ones(8), return_complex=True), "1D or 2D"),
        (lambda m, a: m.istft(m.ones(5, 3), 8, window=m.ones(8)), "complex"),
        (lambda m, a: m.istft(m.ones(4, 3, dtype=m.complex64), 8, window=m.ones(8)), "frequency"),
    ]
    for fn, words in cases:
        with pytest.raises(RuntimeError, match=words):
            fn(torch, xt)
        with pytest.raises(RuntimeError, match=words):
            fn(tm, x)
    with pytest.warns(UserWarning, match="window was not provided"):
        tm.stft(x, 8, return_complex=True)
    assert w.shape == (8,)
