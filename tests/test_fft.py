"""``tinymm.fft`` against ``torch.fft``: values, dtypes and gradients (PyTorch's convention for
complex gradients), every ``n``/``s``/``dim``/``norm`` path, and float64 finite differences for
the real transforms, whose gradients are the subtle ones."""
from __future__ import annotations

import numpy as np
import pytest
from complex_helpers import compare, rand
from helpers import TORCH_REASON, torch

import tinymm as tm

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

NORMS = [None, "ortho", "forward"]


def _both(name, **kw):
    return (lambda x: getattr(tm.fft, name)(x, **kw)), (lambda x: getattr(torch.fft, name)(x, **kw))


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name, kw, dtype", [
    ("fft", {}, "complex128"), ("fft", {"n": 5}, "complex128"), ("fft", {"n": 3, "dim": 0}, "float64"),
    ("ifft", {}, "complex128"), ("ifft", {"n": 7, "dim": -2}, "complex128"),
    ("rfft", {}, "float64"), ("rfft", {"n": 7}, "float64"), ("rfft", {"n": 4, "dim": 0}, "float64"),
    ("irfft", {}, "complex128"), ("irfft", {"n": 9}, "complex128"), ("irfft", {"n": 4}, "complex128"),
    ("irfft", {"dim": 0}, "complex128"),
    ("hfft", {}, "complex128"), ("hfft", {"n": 5}, "complex128"),
    ("ihfft", {}, "float64"), ("ihfft", {"n": 5}, "float64"),
])
def test_one_dim(name, kw, dtype, norm):
    fn_tm, fn_torch = _both(name, norm=norm, **kw)
    compare(fn_tm, fn_torch, rand((4, 6), dtype), atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name, kw, dtype", [
    ("fft2", {}, "complex128"), ("ifft2", {"s": (3, 7)}, "complex128"),
    ("fftn", {}, "float64"), ("fftn", {"s": (2, 5)}, "complex128"), ("fftn", {"dim": (0, 2)}, "complex128"),
    ("ifftn", {"s": (4, -1), "dim": (2, 0)}, "complex128"),
    ("rfft2", {}, "float64"), ("rfftn", {"s": (3, 3)}, "float64"), ("rfftn", {"dim": (2, 0)}, "float64"),
    ("irfft2", {}, "complex128"), ("irfftn", {"s": (3, 5)}, "complex128"), ("irfftn", {"dim": (0, 1)}, "complex128"),
    ("irfftn", {"s": (2, 3, 6)}, "complex128"),
    ("hfft2", {}, "complex128"), ("hfftn", {"s": (4, 8)}, "complex128"), ("hfftn", {"dim": (0, 2)}, "complex128"),
    ("ihfft2", {}, "float64"), ("ihfftn", {"s": (3, 5), "dim": (0, 1)}, "float64"), ("ihfftn", {}, "float64"),
])
def test_many_dims(name, kw, dtype, norm):
    fn_tm, fn_torch = _both(name, norm=norm, **kw)
    compare(fn_tm, fn_torch, rand((3, 4, 5), dtype), atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("name, dtype, want", [("fft", "float32", "complex64"), ("rfft", "float32", "complex64"),
                                               ("irfft", "complex64", "float32"), ("fft", "int64", "complex64"),
                                               ("ifft", "complex64", "complex64")])
def test_precision_kept(name, dtype, want):
    a = rand((8,), dtype) if dtype != "int64" else np.arange(8)
    out = compare(*_both(name), a, grad=dtype != "int64", atol=1e-5, rtol=1e-4)
    assert str(out.dtype) == f"tinymm.{want}"


def _gradcheck(fn, *shapes):
    xs = [tm.tensor(np.random.default_rng(i).standard_normal(s), requires_grad=True) for i, s in enumerate(shapes)]
    assert tm.gradcheck(fn, xs, eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("norm", NORMS)
def test_real_transforms_finite_differences(norm):
    _gradcheck(lambda x: tm.view_as_real(tm.fft.rfft(x, n=7, norm=norm)), (2, 6))
    _gradcheck(lambda x: tm.view_as_real(tm.fft.rfftn(x, s=(3, 4), norm=norm)), (2, 5))
    # the imaginary parts of the DC (and, for even n, Nyquist) bins are ignored: their gradient is 0
    _gradcheck(lambda a, b: tm.fft.irfft(tm.complex(a, b), n=6, norm=norm), (2, 4), (2, 4))
    _gradcheck(lambda a, b: tm.fft.irfft(tm.complex(a, b), n=5, norm=norm), (2, 4), (2, 4))
    _gradcheck(lambda a, b: tm.fft.irfftn(tm.complex(a, b), norm=norm), (3, 3), (3, 3))
    _gradcheck(lambda a, b: tm.fft.hfft(tm.complex(a, b), norm=norm), (4,), (4,))


def test_freqs_and_shifts():
    for n, d in ((8, 1.0), (7, 0.1), (1, 2.0)):
        np.testing.assert_allclose(tm.fft.fftfreq(n, d).numpy(), torch.fft.fftfreq(n, d).numpy())
        np.testing.assert_allclose(tm.fft.rfftfreq(n, d).numpy(), torch.fft.rfftfreq(n, d).numpy())
    assert tm.fft.fftfreq(4).dtype is tm.float32
    assert tm.fft.fftfreq(4, dtype=tm.float64).dtype is tm.float64
    for fn in ("fftshift", "ifftshift"):
        for kw in ({}, {"dim": 1}, {"dim": (0, -1)}):
            ours = lambda x, fn=fn, kw=kw: getattr(tm.fft, fn)(x, **kw)
            theirs = lambda x, fn=fn, kw=kw: getattr(torch.fft, fn)(x, **kw)
            compare(ours, theirs, rand((3, 5)))
            compare(ours, theirs, rand((4, 5), "float64"))


def test_round_trips_and_spectral_layer():
    """An FNO-style spectral layer: rfft2, keep the low modes, multiply by complex weights, irfft2."""
    r = np.random.default_rng(0)
    x = r.standard_normal((2, 3, 8, 8))
    w = (r.standard_normal((3, 3, 4, 3)) + 1j * r.standard_normal((3, 3, 4, 3))) * 0.1
    grads = []
    for lib in (tm, torch):
        xt = lib.tensor(x, requires_grad=True)
        wt = lib.tensor(w, requires_grad=True)
        xf = lib.fft.rfft2(xt, norm="ortho")
        top = lib.einsum("bixy,ioxy->boxy", xf[:, :, :4, :3], wt)
        out_ft = lib.zeros(2, 3, 8, 5, dtype=lib.complex128)
        out_ft = lib.cat([lib.cat([top, out_ft[:, :, :4, 3:]], dim=3), out_ft[:, :, 4:]], dim=2)
        y = lib.fft.irfft2(out_ft, s=(8, 8), norm="ortho")
        (y * lib.tensor(x)).sum().backward()
        grads.append((y.detach().numpy(), xt.grad.numpy(), wt.grad.resolve_conj().numpy()))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, atol=1e-10)
    z = tm.tensor(rand((5,)))
    np.testing.assert_allclose(tm.fft.ifft(tm.fft.fft(z)).numpy(), z.numpy(), atol=1e-12)


def test_errors_like_torch():
    x, xt = tm.ones(4), torch.ones(4)
    z, zt = tm.ones(4, dtype=tm.complex64), torch.ones(4, dtype=torch.complex64)
    cases = [
        (lambda m, a, c: m.fft.rfft(c), RuntimeError),
        (lambda m, a, c: m.fft.ihfft(c), RuntimeError),
        (lambda m, a, c: m.fft.fft(a, n=0), RuntimeError),
        (lambda m, a, c: m.fft.irfft(m.ones(1, dtype=c.dtype)), RuntimeError),
        (lambda m, a, c: m.fft.fft(a, norm="bad"), (RuntimeError, ValueError)),
        (lambda m, a, c: m.fft.fft(a, dim=3), IndexError),
        (lambda m, a, c: m.fft.fftn(a, s=(2, 2)), RuntimeError),
    ]
    for fn, exc in cases:
        with pytest.raises(exc):
            fn(torch, xt, zt)
        with pytest.raises(exc):
            fn(tm, x, z)
