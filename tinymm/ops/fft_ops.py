"""Discrete Fourier transforms (``torch.fft``): three Functions and the public functions on them.

With F the unnormalised DFT over the chosen axes (sign −1 in the exponent) and F^H its adjoint
(the unnormalised inverse, sign +1), each transform is a scale c (``norm``: "backward" puts
1/n on the inverse, "forward" on the forward transform, "ortho" 1/√n on both) times:

- ``FftC2C``: F x (fft, fftn) or F^H x (ifft, ifftn), complex → complex;
- ``FftR2C``: the first n//2 + 1 entries along the last axis of F x, x real (rfft, rfftn);
- ``FftC2R``: the real signal of length n whose half spectrum is x (irfft, irfftn): the missing
  half is the conjugate mirror, the imaginary parts of the bins that are their own mirror
  (0, and n/2 for even n) are ignored.

Before a transform the input is cropped or zero-padded at the end of each axis to the signal
size (``n``/``s``; for FftC2R to n//2 + 1 along the last axis), as PyTorch and NumPy do.

Backward (PyTorch's convention for complex gradients: x̄ = A^H ḡ for a linear map A):

- FftC2C: the other direction with the dual norm ("backward" <-> "forward", "ortho" stays), since
  (c F)^H = c F^H;
- FftR2C: zero-pad ḡ back to the full length along the last axis, inverse FftC2C with the dual
  norm, real part (x is real);
- FftC2R: FftR2C of ḡ with the dual norm, and the bins 1 … n − (n//2 + 1) doubled (each stands for
  itself and its mirror in the full spectrum);
- then the gradient is cropped or zero-padded back to the input's shape (the adjoint of the
  resize). A real input of FftC2C gets the real part of its complex gradient (autograd does
  that for every op).

hfft/ihfft are irfft(conj x)/conj(rfft x) with the dual norm (NumPy's and PyTorch's definition),
so they need no Function of their own. float32 input gives complex64 output (NumPy ≥ 2 keeps
single precision; the result is cast in any case), integer input is promoted to the default
float dtype. The arrays go through ``xp.fft`` (NumPy's pocketfft, or cuFFT through CuPy: that
path is written the same way but has not been run).
"""
from __future__ import annotations

import numpy as np

from tinymm import backend
from tinymm.autograd import Function
from tinymm.ops._util import DTypeError, normalize_dim, torch_dtype_name, xp_of
from tinymm.ops.complex_ops import conj
from tinymm.ops.convert import as_tensor, cast
from tinymm.tensor import Tensor

_DUAL = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def _complex_of(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    return dtype if dtype.kind == "c" else np.dtype(f"c{2 * dtype.itemsize}")


def _real_of(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    return dtype if dtype.kind == "f" else np.dtype(f"f{dtype.itemsize // 2}")


def _resize(xp, x, axes, sizes):
    """``x`` cropped or zero-padded at the end of each axis in ``axes`` to ``sizes``."""
    if all(x.shape[a] == n for a, n in zip(axes, sizes)):
        return x
    crop = [slice(None)] * x.ndim
    pad = [(0, 0)] * x.ndim
    for a, n in zip(axes, sizes):
        crop[a] = slice(0, min(n, x.shape[a]))
        pad[a] = (0, max(n - x.shape[a], 0))
    return xp.pad(x[tuple(crop)], pad)


def _back_to(xp, g, shape, axes):
    """The adjoint of ``_resize``: ``g`` cropped or zero-padded back to ``shape``."""
    return _resize(xp, g, axes, [shape[a] for a in axes])


class FftC2C(Function):
    """fftn (``inverse`` False) or ifftn over ``axes`` at sizes ``sizes``."""

    complex_grad = True

    @staticmethod
    def forward(ctx, x, axes, sizes, norm, inverse):
        xp = xp_of(x)
        ctx.meta = (x.shape, axes, norm, inverse)
        xr = _resize(xp, x, axes, sizes)
        transform = xp.fft.ifftn if inverse else xp.fft.fftn
        return transform(xr, axes=axes, norm=norm).astype(_complex_of(x.dtype), copy=False)

    @staticmethod
    def backward(ctx, g):
        shape, axes, norm, inverse = ctx.meta
        xp = xp_of(g)
        adjoint = xp.fft.fftn if inverse else xp.fft.ifftn
        return _back_to(xp, adjoint(g, axes=axes, norm=_DUAL[norm]).astype(g.dtype, copy=False), shape, axes)


class FftR2C(Function):
    """rfftn over ``axes`` (the last one halved) at sizes ``sizes``; ``x`` is real."""

    complex_grad = True

    @staticmethod
    def forward(ctx, x, axes, sizes, norm):
        xp = xp_of(x)
        ctx.meta = (x.shape, x.dtype, axes, sizes, norm)
        xr = _resize(xp, x, axes, sizes)
        return xp.fft.rfftn(xr, axes=axes, norm=norm).astype(_complex_of(x.dtype), copy=False)

    @staticmethod
    def backward(ctx, g):
        shape, dtype, axes, sizes, norm = ctx.meta
        xp = xp_of(g)
        full = _resize(xp, g, axes[-1:], sizes[-1:])  # the other half of the spectrum gets no gradient
        gx = xp.fft.ifftn(full, axes=axes, norm=_DUAL[norm]).real.astype(dtype)
        return _back_to(xp, gx, shape, axes)


class FftC2R(Function):
    """irfftn over ``axes`` giving a real signal of sizes ``sizes`` (last axis: n)."""

    complex_grad = True

    @staticmethod
    def forward(ctx, x, axes, sizes, norm):
        xp = xp_of(x)
        ctx.meta = (x.shape, axes, sizes, norm)
        half = list(sizes[:-1]) + [sizes[-1] // 2 + 1]
        xr = _resize(xp, x, axes, half)
        return xp.fft.irfftn(xr, s=sizes, axes=axes, norm=norm).astype(_real_of(x.dtype), copy=False)

    @staticmethod
    def backward(ctx, g):
        shape, axes, sizes, norm = ctx.meta
        xp = xp_of(g)
        gx = xp.fft.rfftn(g, axes=axes, norm=_DUAL[norm]).astype(_complex_of(g.dtype), copy=False)
        doubled = sizes[-1] - gx.shape[axes[-1]]
        if doubled > 0:
            index = [slice(None)] * gx.ndim
            index[axes[-1]] = slice(1, 1 + doubled)
            gx[tuple(index)] *= 2
        return _back_to(xp, gx, shape, axes)


# ----------------------------------------------------------------------------- argument handling


def _norm(norm) -> str:
    if norm is None:
        return "backward"
    if norm not in _DUAL:
        raise ValueError(f"Invalid normalization mode: {norm}")
    return norm


def _input(name: str, x, real_only: bool = False) -> Tensor:
    """The input as an inexact tensor (integers become the default float dtype)."""
    x = as_tensor(x, name)
    kind = x._data.dtype.kind
    if real_only and kind == "c":
        raise DTypeError(f"{name} expects a real input tensor, but got {torch_dtype_name(x.dtype)}")
    if kind not in "fc" or x._data.dtype.itemsize < (8 if kind == "c" else 4):
        x = cast(x, backend.get_default_dtype())
    return x


def _one_dim(name: str, x: Tensor, n, dim):
    """``(axes, sizes)`` of a 1-D transform; ``n`` None is the input's size."""
    if x.ndim == 0:
        raise IndexError(f"{name}: Dimension specified as {dim} but tensor has no dimensions")
    axis = normalize_dim(name, x.ndim, dim)
    size = x.shape[axis] if n is None else int(n)
    if size < 1:
        raise RuntimeError(f"Invalid number of data points ({size}) specified")
    return (axis,), (size,)


def _many_dims(name: str, x: Tensor, s, dim, half_last: bool = False):
    """``(axes, sizes)`` of an n-D transform, PyTorch's rules: no ``dim`` means the last
    ``len(s)`` dims, or all dims when ``s`` is None too; -1 in ``s`` keeps a size. With
    ``half_last`` (inverse real transforms) a missing last size is 2·(m − 1)."""
    if dim is None:
        axes = tuple(range(x.ndim)) if s is None else tuple(range(x.ndim - len(s), x.ndim))
        if s is not None and len(s) > x.ndim:
            raise RuntimeError(f"Got shape with {len(s)} values but input tensor only has {x.ndim} dimensions.")
    else:
        dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
        axes = tuple(normalize_dim(name, x.ndim, d) for d in dims)
        if len(set(axes)) != len(axes):
            raise RuntimeError(f"{name}: dims must be unique")
        if s is not None and len(s) != len(axes):
            raise RuntimeError("When given, dim and shape arguments must have the same length")
    if not axes:
        raise RuntimeError(f"{name} must transform at least one axis")
    sizes = []
    for i, a in enumerate(axes):
        given = None if s is None else int(s[i])
        if given is None or given == -1:
            given = 2 * (x.shape[a] - 1) if half_last and i == len(axes) - 1 else x.shape[a]
        if given < 1:
            raise RuntimeError(f"Invalid number of data points ({given}) specified")
        sizes.append(given)
    return axes, tuple(sizes)


# ----------------------------------------------------------------------------- public functions


def _c2c(x, axes, sizes, norm, inverse):
    return FftC2C.apply(x, axes, sizes, _norm(norm), inverse)


def fft(input, n=None, dim=-1, norm=None) -> Tensor:
    """The 1-D DFT along ``dim`` (complex output; real input is allowed)."""
    x = _input("fft", input)
    return _c2c(x, *_one_dim("fft", x, n, dim), norm, False)


def ifft(input, n=None, dim=-1, norm=None) -> Tensor:
    """The 1-D inverse DFT along ``dim``."""
    x = _input("ifft", input)
    return _c2c(x, *_one_dim("ifft", x, n, dim), norm, True)


def fftn(input, s=None, dim=None, norm=None) -> Tensor:
    x = _input("fftn", input)
    return _c2c(x, *_many_dims("fftn", x, s, dim), norm, False)


def ifftn(input, s=None, dim=None, norm=None) -> Tensor:
    x = _input("ifftn", input)
    return _c2c(x, *_many_dims("ifftn", x, s, dim), norm, True)


def fft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    return fftn(input, s, dim, norm)


def ifft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    return ifftn(input, s, dim, norm)


def rfft(input, n=None, dim=-1, norm=None) -> Tensor:
    """The non-negative-frequency half (n//2 + 1 entries) of the DFT of a real signal."""
    x = _input("rfft", input, real_only=True)
    return FftR2C.apply(x, *_one_dim("rfft", x, n, dim), _norm(norm))


def rfftn(input, s=None, dim=None, norm=None) -> Tensor:
    x = _input("rfftn", input, real_only=True)
    return FftR2C.apply(x, *_many_dims("rfftn", x, s, dim), _norm(norm))


def rfft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    return rfftn(input, s, dim, norm)


def irfft(input, n=None, dim=-1, norm=None) -> Tensor:
    """The real signal (length ``n``, default 2·(m − 1)) whose half spectrum is ``input``."""
    x = _input("irfft", input)
    axes, _ = _one_dim("irfft", x, None, dim)
    size = 2 * (x.shape[axes[0]] - 1) if n is None else int(n)
    if size < 1:
        raise RuntimeError(f"Invalid number of data points ({size}) specified")
    return FftC2R.apply(_as_complex(x), axes, (size,), _norm(norm))


def irfftn(input, s=None, dim=None, norm=None) -> Tensor:
    x = _input("irfftn", input)
    axes, sizes = _many_dims("irfftn", x, s, dim, half_last=True)
    return FftC2R.apply(_as_complex(x), axes, sizes, _norm(norm))


def irfft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    return irfftn(input, s, dim, norm)


def hfft(input, n=None, dim=-1, norm=None) -> Tensor:
    """The real DFT of a signal with Hermitian symmetry given by its first half: irfft of the
    conjugate with the dual norm (``hfft`` is a forward transform)."""
    return irfft(conj(_input("hfft", input)), n, dim, _DUAL[_norm(norm)])


def ihfft(input, n=None, dim=-1, norm=None) -> Tensor:
    """The inverse of ``hfft``: the conjugate of rfft with the dual norm (real input)."""
    return conj(rfft(_input("ihfft", input, real_only=True), n, dim, _DUAL[_norm(norm)]))


def hfftn(input, s=None, dim=None, norm=None) -> Tensor:
    """``hfft`` over several dims: the real n-d DFT of a Hermitian-symmetric signal given by
    its half along the last of ``dim`` (irfftn of the conjugate, dual norm, as ``hfft``)."""
    return irfftn(conj(_input("hfftn", input)), s, dim, _DUAL[_norm(norm)])


def hfft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    return hfftn(input, s, dim, norm)


def ihfftn(input, s=None, dim=None, norm=None) -> Tensor:
    """The inverse of ``hfftn``: the conjugate of rfftn with the dual norm (real input)."""
    return conj(rfftn(_input("ihfftn", input, real_only=True), s, dim, _DUAL[_norm(norm)]))


def ihfft2(input, s=None, dim=(-2, -1), norm=None) -> Tensor:
    return ihfftn(input, s, dim, norm)


def _as_complex(x: Tensor) -> Tensor:
    return x if x._data.dtype.kind == "c" else cast(x, _complex_of(x._data.dtype))


def fftfreq(n, d=1.0, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The sample frequencies of an n-point DFT: [0, 1, …, ⌈n/2⌉ − 1, −⌊n/2⌋, …, −1] / (d·n)."""
    xp = backend.array_module(device)
    k = xp.concatenate([xp.arange(0, (n + 1) // 2), xp.arange(-(n // 2), 0)]).astype(np.float64)
    return _freqs(k / (d * n), dtype, requires_grad)


def rfftfreq(n, d=1.0, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The sample frequencies of rfft's output: [0, 1, …, ⌊n/2⌋] / (d·n)."""
    xp = backend.array_module(device)
    return _freqs(xp.arange(0, n // 2 + 1).astype(np.float64) / (d * n), dtype, requires_grad)


def _freqs(values, dtype, requires_grad) -> Tensor:
    out = Tensor._wrap(values.astype(backend.get_default_dtype() if dtype is None else np.dtype(dtype)))
    return out.requires_grad_(True) if requires_grad else out


def _shift(name: str, input, dim, inverse: bool) -> Tensor:
    from tinymm.ops.layout import roll

    x = as_tensor(input, name)
    if dim is None:
        axes = tuple(range(x.ndim))
    else:
        dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
        axes = tuple(normalize_dim(name, x.ndim, d) for d in dims)
    if not axes:
        return x
    shifts = tuple(((x.shape[a] + 1) // 2) if inverse else (x.shape[a] // 2) for a in axes)
    return roll(x, shifts, axes)


def fftshift(input, dim=None) -> Tensor:
    """Put the zero frequency in the middle (roll each dim by n//2)."""
    return _shift("fftshift", input, dim, False)


def ifftshift(input, dim=None) -> Tensor:
    """Undo ``fftshift`` (roll each dim by −(n//2))."""
    return _shift("ifftshift", input, dim, True)
