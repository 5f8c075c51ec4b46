"""The classical orthogonal polynomials of ``torch.special``, evaluated as PyTorch evaluates
them: ``p(input, n)`` for every element of ``input`` and of ``n`` (broadcast together; n is
truncated to an integer, and n < 0 gives 0).

Three-term recurrences from p_0 = 1 and p_1, with n steps, in float64 (the result is rounded
to the output dtype: the default dtype for integer inputs, else the two inputs' promotion):

    T (Chebyshev, 1st kind)   p_1 = x         p_{k+1} = 2x p_k - p_{k-1}
    U (2nd kind)              p_1 = 2x        same recurrence
    V (3rd kind)              p_1 = 2x - 1    same recurrence
    W (4th kind)              p_1 = 2x + 1    same recurrence
    H (physicists' Hermite)   p_1 = 2x        p_{k+1} = 2x p_k - 2k p_{k-1}
    He (probabilists')        p_1 = x         p_{k+1} = x p_k - k p_{k-1}
    L (Laguerre)              p_1 = 1 - x     p_{k+1} = ((2k + 1 - x) p_k - k p_{k-1}) / (k + 1)
    P (Legendre)              p_1 = x         p_{k+1} = ((2k + 1) x p_k - k p_{k-1}) / (k + 1)

The shifted Chebyshev polynomials are T, U, V, W at 2x - 1. (Computing in float64 makes float32
results for large n more accurate than PyTorch's float32 loop, and NaN input gives NaN, where
PyTorch 2.13's CPU kernel returned finite values for NaN in some positions.) As in PyTorch, the Chebyshev
kinds use their closed forms inside (-1, 1) for larger n (T_n = cos(n θ), U_n = sin((n+1) θ) / sin θ,
V_n = cos((n + 1/2) θ) / cos(θ/2), W_n = sin((n + 1/2) θ) / sin(θ/2), θ = arccos x), where the
recurrence would take n steps, and exact values at x = ±1. The results are not differentiable
(PyTorch has no derivative for them either): they never require grad.
"""
from __future__ import annotations

import numpy as np

from tinymm import backend
from tinymm.ops._util import DTypeNotImplementedError, ShapeError, torch_dtype_name, xp_of
from tinymm.ops.promotion import result_type
from tinymm.tensor import Tensor

__all__ = ["chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w",
           "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
           "shifted_chebyshev_polynomial_w", "hermite_polynomial_h", "hermite_polynomial_he", "laguerre_polynomial_l",
           "legendre_polynomial_p"]

_FIRST = {  # p_1(x)
    "t": lambda x: x, "u": lambda x: 2 * x, "v": lambda x: 2 * x - 1, "w": lambda x: 2 * x + 1,
    "h": lambda x: 2 * x, "he": lambda x: x, "l": lambda x: 1 - x, "p": lambda x: x,
}


def _step(kind, x, k, p, q):
    """p_{k+1} from q = p_k and p = p_{k-1}."""
    if kind in "tuvw":
        return 2 * x * q - p
    if kind == "h":
        return 2 * x * q - 2 * k * p
    if kind == "he":
        return x * q - k * p
    if kind == "l":
        return ((2 * k + 1 - x) * q - k * p) / (k + 1)
    return ((2 * k + 1) * x * q - k * p) / (k + 1)  # Legendre


def _recurrence(kind, x, n, xp):
    """p_n(x) elementwise for integer-valued float n >= 0 (others: 0). Each step advances only
    the elements that still need it; an element whose last two values have both overflowed
    stops there as NaN (what the recurrence reaches: inf - inf), so a huge n outside [-1, 1]
    ends quickly."""
    out = xp.where(n == 0, 1.0, xp.where(n == 1, _FIRST[kind](x), 0.0)).reshape(-1)
    flat_x, flat_n = x.reshape(-1), n.reshape(-1)
    active = xp.flatnonzero(flat_n >= 2)
    xa, na = flat_x[active], flat_n[active]
    p, q = xp.ones_like(xa), _FIRST[kind](xa)
    k = 1
    with np.errstate(all="ignore"):
        while active.size:
            p, q = q, _step(kind, xa, k, p, q)
            k += 1
            overflowed = ~(xp.isfinite(p) | xp.isfinite(q)) & (na > k)
            done = (na == k) | overflowed
            if bool(done.any()):
                # an overflowed element would go on as inf - inf: NaN, which PyTorch's loop reaches
                out[active[done]] = xp.where(overflowed[done], np.nan, q[done])
                keep = ~done
                active, xa, na, p, q = active[keep], xa[keep], na[keep], p[keep], q[keep]
    return out.reshape(x.shape)


def _chebyshev_closed_forms(kind, x, n, out, xp):
    """PyTorch's closed forms (inside (-1, 1), n beyond the recurrence's range) and exact ends."""
    odd = (n % 2) == 1
    with np.errstate(all="ignore"):
        theta = xp.arccos(xp.clip(x, -1.0, 1.0))
        inside = xp.abs(x) < 1
        if kind == "t":
            closed = xp.cos(n * theta)
            ends = xp.where((x > 0) | ~odd, 1.0, -1.0)
            limit = 6
        elif kind == "u":
            s = xp.sin(theta)
            closed = xp.where(s != 0, xp.sin((n + 1) * theta) / s, (n + 1) * xp.cos((n + 1) * theta) * xp.cos(theta))
            ends = xp.where((x > 0) | ~odd, n + 1.0, -(n + 1.0))
            limit = 8
        elif kind == "v":
            c = xp.cos(theta / 2)
            closed = xp.where(c != 0, xp.cos((n + 0.5) * theta) / c, xp.where(~odd, 2.0 * n + 1, -(2.0 * n + 1)))
            ends = xp.where(x > 0, 1.0, xp.where(~odd, 2.0 * n + 1, -(2.0 * n + 1)))
            limit = 8
        else:  # w
            s = xp.sin(theta / 2)
            closed = xp.where(s != 0, xp.sin((n + 0.5) * theta) / s, xp.where(x > 0, 2.0 * n + 1, xp.where(~odd, 1.0, -1.0)))
            ends = xp.where(x > 0, 2.0 * n + 1, xp.where(~odd, 1.0, -1.0))
            limit = 8
    out = xp.where(inside & (n > limit), closed, out)
    return xp.where((xp.abs(x) == 1) & (n >= 0), ends, out)


def _evaluate(name: str, kind: str, input, n, shifted: bool = False) -> Tensor:
    for position, (arg, value) in enumerate((("input", input), ("n", n)), start=1):
        if not isinstance(value, (Tensor, int, float, bool, np.number)):
            raise TypeError(f"{name}(): argument '{arg}' (position {position}) must be Tensor or Number, "
                            f"not {type(value).__name__}")
    dtype = result_type(input, n)
    if dtype.kind not in "biuf":
        raise DTypeNotImplementedError(f"\"{name}_cpu\" not implemented for '{torch_dtype_name(dtype)}'")
    if dtype.kind == "f" and dtype.itemsize < 4:
        raise DTypeNotImplementedError(f"\"{name}_cpu\" not implemented for '{torch_dtype_name(dtype)}'")
    out_dtype = dtype if dtype.kind == "f" else backend.get_default_dtype()
    like = input if isinstance(input, Tensor) else n if isinstance(n, Tensor) else None
    xp = np if like is None else xp_of(like._data)
    device = "cpu" if like is None else like.device
    x = xp.asarray(input._data if isinstance(input, Tensor) else input, dtype=np.float64)
    nf = xp.asarray(n._data if isinstance(n, Tensor) else n, dtype=np.float64)
    if isinstance(input, Tensor) and isinstance(n, Tensor) and input.device != n.device and input.ndim and n.ndim:
        raise ValueError(f"{name}: tensors are on different devices: {input.device} and {n.device}")  # as check_pair
    try:
        x, nf = xp.broadcast_arrays(x, nf)
    except ValueError:
        raise ShapeError(f"{name}: the shapes of input {tuple(x.shape)} and n {tuple(nf.shape)} do not broadcast") from None
    with np.errstate(invalid="ignore"):
        # PyTorch casts n to int64 (truncation; NaN and out-of-range become negative: 0 out)
        ni = xp.where(xp.isfinite(nf) & (xp.abs(nf) < 2.0**62), xp.trunc(nf), -1.0)
    if shifted:
        x = 2 * x - 1
    if kind in "tuvw":  # n beyond the closed-form threshold inside (-1, 1) needs no recurrence steps
        steps = xp.where(((xp.abs(x) < 1) & (ni > (6 if kind == "t" else 8))) | (xp.abs(x) == 1), 0.0, ni)
        out = _recurrence(kind, x, steps, xp)
        out = _chebyshev_closed_forms(kind, x, ni, out, xp)
    else:
        at_ends = (x == 0) if kind == "l" else (xp.abs(x) == 1) if kind == "p" else xp.zeros(x.shape, bool)
        out = _recurrence(kind, x, xp.where(at_ends, 0.0, ni), xp)
        if kind == "l":
            out = xp.where((x == 0) & (ni >= 0), 1.0, out)
        elif kind == "p":
            odd = (ni % 2) == 1
            out = xp.where((xp.abs(x) == 1) & (ni >= 0), xp.where((x > 0) | ~odd, 1.0, -1.0), out)
    out = xp.where(ni < 0, 0.0, out)
    with np.errstate(over="ignore"):  # float64 values beyond float32's range round to inf, as PyTorch's
        out = out.astype(out_dtype.dtype if hasattr(out_dtype, "dtype") else out_dtype)
    return Tensor._of(xp.ascontiguousarray(out), device=device)


def chebyshev_polynomial_t(input, n, *, out=None):
    return _evaluate("chebyshev_polynomial_t", "t", input, n)


def chebyshev_polynomial_u(input, n, *, out=None):
    return _evaluate("chebyshev_polynomial_u", "u", input, n)


def chebyshev_polynomial_v(input, n, *, out=None):
    return _evaluate("chebyshev_polynomial_v", "v", input, n)


def chebyshev_polynomial_w(input, n, *, out=None):
    return _evaluate("chebyshev_polynomial_w", "w", input, n)


def shifted_chebyshev_polynomial_t(input, n, *, out=None):
    return _evaluate("shifted_chebyshev_polynomial_t", "t", input, n, shifted=True)


def shifted_chebyshev_polynomial_u(input, n, *, out=None):
    return _evaluate("shifted_chebyshev_polynomial_u", "u", input, n, shifted=True)


def shifted_chebyshev_polynomial_v(input, n, *, out=None):
    return _evaluate("shifted_chebyshev_polynomial_v", "v", input, n, shifted=True)


def shifted_chebyshev_polynomial_w(input, n, *, out=None):
    return _evaluate("shifted_chebyshev_polynomial_w", "w", input, n, shifted=True)


def hermite_polynomial_h(input, n, *, out=None):
    return _evaluate("hermite_polynomial_h", "h", input, n)


def hermite_polynomial_he(input, n, *, out=None):
    return _evaluate("hermite_polynomial_he", "he", input, n)


def laguerre_polynomial_l(input, n, *, out=None):
    return _evaluate("laguerre_polynomial_l", "l", input, n)


def legendre_polynomial_p(input, n, *, out=None):
    return _evaluate("legendre_polynomial_p", "p", input, n)
