"""``torch.*`` functions that are no Tensor method: window functions, trapezoid integration,
``broadcast_shapes`` and ``can_cast``.

Windows (``hann_window`` ...) follow PyTorch: ``periodic=True`` (the default) computes the
symmetric window of length N + 1 and drops its last point (the form spectral analysis
wants); lengths 0 and 1 give ``[]`` and ``[1.]``. ``trapezoid`` / ``cumulative_trapezoid``
are built from differentiable ops (narrow, mul, add, sum/cumsum), so gradients reach both
``y`` and ``x``.
"""
from __future__ import annotations

import numpy as np

from tinymm import backend, factories
from tinymm.dtype_objects import KIND_CATEGORY
from tinymm.ops._util import ShapeError, normalize_dim
from tinymm.ops.convert import as_tensor, cast
from tinymm.ops.layout import narrow
from tinymm.ops.reduce import sum as tsum
from tinymm.ops.scan import cumsum
from tinymm.ops.shape import reshape
from tinymm.tensor import Size

# ----------------------------------------------------------------------------- windows


def _window(name, n, periodic, dtype, device, requires_grad, symmetric):
    """``symmetric(m)`` (a NumPy float64 array of m points) as PyTorch's window of length n."""
    if n < 0:
        raise RuntimeError(f"{name} requires non-negative window_length, got window_length={n}")
    dtype = np.dtype(dtype) if dtype is not None else backend.get_default_dtype()
    if dtype.kind not in "fc":
        raise TypeError(f"{name} expects floating point dtypes, got: {dtype}")
    if n <= 1:
        arr = np.ones(n)
    else:
        arr = symmetric(n + 1)[:-1] if periodic else symmetric(n)
    return factories.tensor(arr.astype(dtype), device=device or "cpu", requires_grad=requires_grad)


def _cosine_sum(coeffs):
    def window(m):
        phase = 2 * np.pi * np.arange(m) / (m - 1)
        return sum(c * np.cos(k * phase) for k, c in enumerate(coeffs))

    return window


def hann_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None, device=None,
                requires_grad: bool = False):
    """0.5 − 0.5·cos(2πn / (N − 1))."""
    return _window("hann_window", window_length, periodic, dtype, device, requires_grad, _cosine_sum((0.5, -0.5)))


def hamming_window(window_length: int, periodic: bool = True, alpha: float = 0.54, beta: float = 0.46, *,
                   dtype=None, layout=None, device=None, requires_grad: bool = False):
    """α − β·cos(2πn / (N − 1))."""
    return _window("hamming_window", window_length, periodic, dtype, device, requires_grad,
                   _cosine_sum((alpha, -beta)))


def blackman_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None, device=None,
                    requires_grad: bool = False):
    """0.42 − 0.5·cos(2πn / (N − 1)) + 0.08·cos(4πn / (N − 1))."""
    return _window("blackman_window", window_length, periodic, dtype, device, requires_grad,
                   _cosine_sum((0.42, -0.5, 0.08)))


def bartlett_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None, device=None,
                    requires_grad: bool = False):
    """1 − |2n / (N − 1) − 1| (a triangle)."""
    return _window("bartlett_window", window_length, periodic, dtype, device, requires_grad,
                   lambda m: 1 - np.abs(2 * np.arange(m) / (m - 1) - 1))


def kaiser_window(window_length: int, periodic: bool = True, beta: float = 12.0, *, dtype=None, layout=None,
                  device=None, requires_grad: bool = False):
    """I₀(β·√(1 − (2n / (N − 1) − 1)²)) / I₀(β)."""
    return _window("kaiser_window", window_length, periodic, dtype, device, requires_grad,
                   lambda m: np.i0(beta * np.sqrt(np.clip(1 - (2 * np.arange(m) / (m - 1) - 1) ** 2, 0, None)))
                   / np.i0(beta))


# ----------------------------------------------------------------------------- trapezoid


def _trapezoid_terms(name, y, x, dx, dim):
    """The per-interval areas (y[i] + y[i+1])/2 · Δx_i along ``dim`` (n − 1 of them)."""
    y = as_tensor(y, name)
    if y.dtype.kind not in "fc":
        y = cast(y, backend.get_default_dtype())
    axis = normalize_dim(name, y.ndim, dim)
    n = y.shape[axis]
    if n == 0:
        return None, y, axis
    left, right = narrow(y, axis, 0, n - 1), narrow(y, axis, 1, n - 1)
    mid = (left + right) * 0.5
    if x is None:
        return mid * (1.0 if dx is None else float(dx)), y, axis
    x = as_tensor(x, name)
    if x.dtype.kind not in "fc":
        x = cast(x, y.dtype)
    if x.ndim == 1:
        if x.shape[0] != n:
            raise ShapeError(f"{name}: There must be one `x` value for each sample point")
        spacing = x[1:] - x[:-1]
        shape = [1] * y.ndim
        shape[axis] = n - 1
        spacing = reshape(spacing, *shape)
    else:
        xaxis = normalize_dim(name, x.ndim, dim)
        if x.shape[xaxis] != n:
            raise ShapeError(f"{name}: There must be one `x` value for each sample point")
        spacing = narrow(x, xaxis, 1, n - 1) - narrow(x, xaxis, 0, n - 1)
    return mid * spacing, y, axis


def trapezoid(y, x=None, *, dx=None, dim: int = -1):
    """∫ y along ``dim`` by the trapezoidal rule, at sample points ``x`` (1-D, or broadcast
    with y) or with constant spacing ``dx`` (default 1)."""
    if x is not None and dx is not None:
        raise TypeError("trapezoid: give x or dx, not both")
    terms, y, axis = _trapezoid_terms("trapezoid", y, x, dx, dim)
    if terms is None:  # no interval: zero, with y's other dims
        shape = tuple(s for i, s in enumerate(y.shape) if i != axis)
        return factories.zeros(*shape, dtype=y.dtype, device=y.device)
    return tsum(terms, axis)


def trapz(y, x=None, *, dx=None, dim: int = -1):
    """Alias of ``trapezoid`` (NumPy's older name)."""
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y, x=None, *, dx=None, dim: int = -1):
    """The running trapezoid integral along ``dim`` (n − 1 values for n samples)."""
    if x is not None and dx is not None:
        raise TypeError("cumulative_trapezoid: give x or dx, not both")
    terms, y, axis = _trapezoid_terms("cumulative_trapezoid", y, x, dx, dim)
    if terms is None:
        return y * 1
    return cumsum(terms, axis)


# ----------------------------------------------------------------------------- shapes and dtypes


def broadcast_shapes(*shapes) -> Size:
    """The shape tensors of ``shapes`` broadcast to (RuntimeError when they do not fit)."""
    tuples = [(int(s),) if isinstance(s, (int, np.integer)) else tuple(int(v) for v in s) for s in shapes]
    try:
        return Size(np.broadcast_shapes(*tuples))
    except ValueError:
        raise ShapeError(f"Shape mismatch: objects cannot be broadcast to a single shape: {tuples}") from None


_CATEGORY = KIND_CATEGORY


def can_cast(from_, to) -> bool:
    """Whether PyTorch's casting rules allow ``from_`` → ``to``: never to a lower category
    (bool < integer < floating), any size within one."""
    a, b = np.dtype(from_), np.dtype(to)
    return _CATEGORY[a.kind] <= _CATEGORY[b.kind]


FUNCTIONS_MORE_OPS = tuple(
    (fn, None, fn.__name__) for fn in (
        hann_window, hamming_window, blackman_window, bartlett_window, kaiser_window,
        trapezoid, trapz, cumulative_trapezoid, broadcast_shapes, can_cast)
)
