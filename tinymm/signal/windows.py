"""``torch.signal.windows``: the window functions of signal processing (SciPy's definitions,
which PyTorch follows), as 1-D tensors of length M.

Every window is symmetric by default (``sym=True``: w[n] = w[M-1-n], for filter design); with
``sym=False`` it is *periodic* (for spectral analysis: the first M points of the symmetric
window of length M+1). Values are computed in float64 and returned in ``dtype`` (the default
dtype unless given; float32 or float64 only, as in PyTorch). M = 0 gives an empty tensor and
M = 1 a single 1.

With n = 0..M-1 and x_n = -pi + 2 pi n / (M-1):

    general_cosine(a)    sum_k a_k cos(k x_n)            hann = [1/2, 1/2], hamming = [0.54, 0.46],
                                                          blackman = [0.42, 0.5, 0.08], nuttall
    general_hamming(al)  al + (1 - al) cos(x_n)
    bartlett             1 - |2n/(M-1) - 1|
    cosine               sin(pi (n + 1/2) / M)
    gaussian(std)        exp(-(n - (M-1)/2)^2 / (2 std^2))
    exponential(c, tau)  exp(-|n - c| / tau), c = (M-1)/2 by default (M/2 when periodic)
    kaiser(beta)         I0(beta sqrt(1 - (2n/(M-1) - 1)^2)) / I0(beta)
"""
from __future__ import annotations

import math

import numpy as np

from tinymm import factories
from tinymm.backend import get_default_dtype
from tinymm.dtype_objects import as_dtype
from tinymm.layout_objects import check_layout

__all__ = ["bartlett", "blackman", "cosine", "exponential", "gaussian", "general_cosine", "general_hamming",
           "hamming", "hann", "kaiser", "nuttall"]


def _window(name, M, sym, dtype, device, requires_grad, values, single_is_one=True) -> "factories.Tensor":
    """Checks M and dtype (PyTorch's errors), then builds the window from ``values(n, L)``: the
    float64 window of length L at the points n (L = M + 1 when periodic, then cut to M). M = 1
    gives [1.0] unless ``single_is_one`` is False (an exponential window with its own centre)."""
    if isinstance(M, bool) or not isinstance(M, (int, np.integer)):
        raise TypeError(f"{name}: M must be an int, got {type(M).__name__}")
    if M < 0:
        raise ValueError(f"{name} requires non-negative window length, got M={M}")
    d = get_default_dtype() if dtype is None else as_dtype(dtype)
    if d.name not in ("float32", "float64"):
        raise ValueError(f"{name} expects float32 or float64 dtypes, got: {d}")
    if M == 0 or (M == 1 and single_is_one):
        w = np.ones(M)
    else:
        length = M if sym else M + 1
        w = values(np.arange(length, dtype=np.float64), length)[:M]
    return factories.tensor(w.astype(d.dtype), device=device, requires_grad=requires_grad)


def _check_layout(layout) -> None:
    check_layout(layout, "torch.signal.windows")


def general_cosine(M, *, a, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """sum_k a[k] cos(k x_n), x_n from -pi to pi (see the module docstring)."""
    _check_layout(layout)
    if not isinstance(a, (list, tuple)):
        raise TypeError(f"Coefficients must be a list/tuple, got {type(a).__name__}")
    if len(a) == 0:
        raise ValueError("Coefficients cannot be empty")
    coefficients = [float(c) for c in a]

    def values(n, L):
        x = -math.pi + 2 * math.pi * n / (L - 1)
        return sum(c * np.cos(k * x) for k, c in enumerate(coefficients))

    return _window("general_cosine", M, sym, dtype, device, requires_grad, values)


def general_hamming(M, *, alpha=0.54, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """alpha + (1 - alpha) cos(x_n): Hann at alpha = 0.5, Hamming at 0.54."""
    return general_cosine(M, a=[alpha, 1.0 - alpha], sym=sym, dtype=dtype, layout=layout, device=device,
                          requires_grad=requires_grad)


def hann(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    return general_cosine(M, a=[0.5, 0.5], sym=sym, dtype=dtype, layout=layout, device=device,
                          requires_grad=requires_grad)


def hamming(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    return general_hamming(M, sym=sym, dtype=dtype, layout=layout, device=device, requires_grad=requires_grad)


def blackman(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    return general_cosine(M, a=[0.42, 0.5, 0.08], sym=sym, dtype=dtype, layout=layout, device=device,
                          requires_grad=requires_grad)


def nuttall(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """The minimum 4-term Blackman-Harris window (Nuttall's)."""
    return general_cosine(M, a=[0.3635819, 0.4891775, 0.1365995, 0.0106411], sym=sym, dtype=dtype,
                          layout=layout, device=device, requires_grad=requires_grad)


def bartlett(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """The triangular window that is 0 at both ends."""
    _check_layout(layout)
    return _window("bartlett", M, sym, dtype, device, requires_grad,
                   lambda n, L: 1.0 - np.abs(2.0 * n / (L - 1) - 1.0))


def cosine(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """The sine window: half a period of a sine."""
    _check_layout(layout)
    return _window("cosine", M, sym, dtype, device, requires_grad, lambda n, L: np.sin(math.pi * (n + 0.5) / L))


def gaussian(M, *, std=1.0, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    _check_layout(layout)
    if std <= 0:
        raise ValueError(f"Standard deviation must be positive, got: {std} instead.")
    return _window("gaussian", M, sym, dtype, device, requires_grad,
                   lambda n, L: np.exp(-((n - (L - 1) / 2.0) ** 2) / (2.0 * std * std)))


def exponential(M, *, center=None, tau=1.0, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """exp(-|n - center| / tau); ``center`` may be given only for a periodic window."""
    _check_layout(layout)
    if tau <= 0:
        raise ValueError(f"Tau must be positive, got: {tau} instead.")
    if sym and center is not None:
        raise ValueError("Center must be None for symmetric windows")
    # the centre of the length-M symmetric window, or of the length-(M+1) one cut to M
    c = ((M - 1) / 2.0 if sym else M / 2.0) if center is None else float(center)
    return _window("exponential", M, sym, dtype, device, requires_grad, lambda n, L: np.exp(-np.abs(n - c) / tau),
                   single_is_one=center is None)


def kaiser(M, *, beta=12.0, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    """The Kaiser-Bessel window; beta trades main-lobe width for side-lobe level."""
    _check_layout(layout)
    if beta < 0:
        raise ValueError(f"beta must be non-negative, got: {beta} instead.")
    return _window("kaiser", M, sym, dtype, device, requires_grad,
                   lambda n, L: np.i0(beta * np.sqrt(np.clip(1.0 - (2.0 * n / (L - 1) - 1.0) ** 2, 0.0, None)))
                   / np.i0(beta))
