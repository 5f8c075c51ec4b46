"""GELU with erf (PyTorch's ``F.gelu(x, approximate="none")``), forward and backward.

Shapes: any; ``x``, ``g`` (the incoming gradient) and the outputs share one shape and dtype
(float32 or float64). Forward saves nothing but ``x``: backward recomputes Φ and φ, which costs
less than keeping a second activation-sized array alive::

    Φ(x)  = ½ erfc(−x/√2)           (the standard normal CDF)
    φ(x)  = exp(−x²/2) / √(2π)      (its density)
    y     = x · Φ(x)
    dx    = g · (Φ(x) + x · φ(x))

Why a kernel: BERT's feed-forward layers apply GELU to (tokens × 4C) activations, and SciPy's
``erf`` (one libm call per element) took a third of all-MiniLM-L6-v2's forward pass. The float32
CPU version here is straight-line arithmetic that LLVM vectorises (8 lanes on AVX2):

- ``s = x²/2`` exactly as ``s_hi + s_lo`` (Dekker's split of x into 12 + 12 bits, so that
  ``exp(−s) = exp(−s_hi) · exp(−s_lo)`` keeps full relative accuracy far into the tail, where
  exp's argument is large and one rounding of x² would cost ``s`` ulps);
- ``|x|/√2 < 0.75``: Φ = ½ + ½ erf(x/√2), with erf(a) = a · P(a²), P of degree 5
  (relative error 1.7e-9);
- else: ½ erfc(a) = ½ exp(−a²) · erfcx(a), erfcx(a) a degree-9 polynomial in t = 1/(1 + a/2)
  (relative error 3e-7 with float32 rounding, on a ∈ [0.75, 10]); Φ = ½ erfc(a) for x < 0,
  1 − ½ erfc(a) for x > 0, so the negative tail (where torch's ½(1 + erf) cancels to 0) keeps
  its relative accuracy;
- |x| is clamped to 14 for Φ (beyond, Φ is 0 or 1 in float32); NaN propagates.

Both fits are Chebyshev least-squares fits (``numpy.polynomial.Chebyshev.fit``, relative weights)
of SciPy's ``erf(a)/a`` on [0, 0.75] (in a²) and ``erfcx`` on [0.75, 10] (in t), converted to
power form. float64 uses libm's ``erfc`` and ``exp`` per element (exact to float64 rounding;
float64 is for gradient checks, not speed).

``reference_*`` is the specification in plain NumPy with SciPy's ``erfc``; the CUDA version is
one elementwise Numba CUDA kernel with CUDA's ``erfc``. Dispatch: ``forward(x, impl=None)``,
``backward(g, x, impl=None)`` by array type (or ``impl``: "reference", "cpu", "cuda"); inputs
are trusted (``tinymm.nn.functional.gelu`` checks them).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ._common import (array_module, blocks_for, contiguous, launch_on_cupy_stream, numba_cuda,
                      parallel_threshold, resolve_impl, serial_and_parallel)

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# Arrays of at least this many elements run the parallel CPU loop (elementwise work is light:
# the pool's wake-up costs more than it saves below about a million elements on 2 shared cores).
CPU_PARALLEL_MIN_ELEMENTS = parallel_threshold(1 << 20)


# ============================================================================ reference (NumPy)


def _reference_cdf_pdf(x):
    from scipy.special import erfc

    x64 = x.astype(np.float64)
    return 0.5 * erfc(-x64 * _INV_SQRT2), _INV_SQRT_2PI * np.exp(-0.5 * x64 * x64)


def reference_forward(x):
    cdf, _ = _reference_cdf_pdf(x)
    return (x * cdf).astype(x.dtype)


def reference_backward(g, x):
    cdf, pdf = _reference_cdf_pdf(x)
    return (g * (cdf + x * pdf)).astype(x.dtype)


# ============================================================================ CPU (Numba)

import numba  # noqa: E402  (after the reference, which needs only NumPy and SciPy)
from numba.core import types  # noqa: E402
from numba.extending import overload  # noqa: E402

from ._cpu_math import exp_f32  # noqa: E402

_F = np.float32
_P = tuple(_F(c) for c in (1.1283791664527250, -0.37612624041384335, 0.11283440261175233,
                           -0.026837517010104738, 0.0051198819053597114, -0.00067872502869972449))
_R = tuple(_F(c) for c in (3.6742659083599527e-06, 0.2819816927147864, 0.28361729468168084,
                           0.23504440944434396, 0.23430761266147962, -0.10468363315321796,
                           0.3997735512222862, -0.6032336688566119, 0.34618768592380794,
                           -0.07299867362710394))
_SPLIT = _F(4097.0)  # 2^12 + 1: Dekker's split of a float32 into two 12-bit halves
_CLAMP = _F(14.0)
_SMALL_A = _F(0.75)


@numba.njit(inline="always")
def _cdf_and_pdf_f32(x):
    """(Φ(x), φ(x)) of a float32, branch-free (both branches computed, one selected)."""
    xc = min(max(x, -_CLAMP), _CLAMP)
    c = _SPLIT * xc
    hi = c - (c - xc)
    lo = xc - hi
    s_hi = _F(0.5) * (hi * hi)                       # exact: 12-bit halves square exactly
    s_lo = _F(0.5) * (lo * (hi + hi + lo))           # the rest of x²/2, |s_lo| <= 0.02
    e_lo = _F(1.0) - s_lo * (_F(1.0) - s_lo * (_F(0.5) - s_lo * (_F(1.0) / _F(6.0) - s_lo * _F(1.0 / 24.0))))
    gauss = exp_f32(-s_hi) * e_lo                    # exp(−x²/2)
    a = abs(xc) * _F(_INV_SQRT2)
    u = s_hi + s_lo                                  # a²
    p = _P
    erf_small = (xc * _F(_INV_SQRT2)) * (p[0] + u * (p[1] + u * (p[2] + u * (p[3] + u * (p[4] + u * p[5])))))
    t = _F(1.0) / (_F(1.0) + _F(0.5) * a)
    r = _R
    erfcx = r[0] + t * (r[1] + t * (r[2] + t * (r[3] + t * (r[4] + t * (r[5] + t * (r[6] + t * (
        r[7] + t * (r[8] + t * r[9]))))))))
    half_erfc = _F(0.5) * gauss * erfcx              # ½ erfc(a) = Φ(−|x|)
    tail = half_erfc if xc < 0 else _F(1.0) - half_erfc
    cdf = _F(0.5) + _F(0.5) * erf_small if a < _SMALL_A else tail
    cdf = cdf if x == x else x                       # NaN in, NaN out
    return cdf, gauss * _F(_INV_SQRT_2PI)


def cdf_and_pdf(x):
    """(Φ(x), φ(x)) in x's precision, for the compiled loops: float32 → the polynomial above,
    float64 → libm's erfc and exp (this body; also what plain Python runs, as under
    NUMBA_DISABLE_JIT=1)."""
    return 0.5 * math.erfc(-x * _INV_SQRT2), _INV_SQRT_2PI * math.exp(-0.5 * x * x)


_cdf_and_pdf_f64 = numba.njit(inline="always")(cdf_and_pdf)


@overload(cdf_and_pdf, inline="always")
def _cdf_and_pdf_typed(x):
    if x == types.float32:
        return lambda x: _cdf_and_pdf_f32(x)
    return lambda x: _cdf_and_pdf_f64(x)


@serial_and_parallel(fastmath={"contract"})  # FMAs in the polynomials: 17 % faster, no reassociation
def _forward_loop(x, y):
    for i in numba.prange(x.shape[0]):
        cdf, _ = cdf_and_pdf(x[i])
        y[i] = x[i] * cdf


@serial_and_parallel(fastmath={"contract"})
def _backward_loop(g, x, dx):
    for i in numba.prange(x.shape[0]):
        cdf, pdf = cdf_and_pdf(x[i])
        dx[i] = g[i] * (cdf + x[i] * pdf)


def _cpu_forward(x):
    flat = contiguous(x).reshape(-1)
    y = np.empty_like(flat)
    _forward_loop.for_work(flat.size, CPU_PARALLEL_MIN_ELEMENTS)(flat, y)
    return y.reshape(x.shape)


def _cpu_backward(g, x):
    flat = contiguous(x).reshape(-1)
    gf = contiguous(g.astype(x.dtype, copy=False)).reshape(-1)
    dx = np.empty_like(flat)
    _backward_loop.for_work(flat.size, CPU_PARALLEL_MIN_ELEMENTS)(gf, flat, dx)
    return dx.reshape(x.shape)


# ============================================================================ CUDA (Numba)

CUDA_BLOCK = 256
cuda = None  # numba.cuda, bound on first use; a module global so the CUDA simulator can swap it


@functools.lru_cache(maxsize=None)
def _cuda_kernels():
    """One thread per element; CUDA's ``erfc`` and ``exp`` (libdevice) in the array's dtype."""
    global cuda
    cuda = numba_cuda()

    @cuda.jit
    def forward(x, y):
        i = cuda.grid(1)
        if i < x.shape[0]:
            v = x[i]
            y[i] = v * (0.5 * math.erfc(-v * _INV_SQRT2))

    @cuda.jit
    def backward(g, x, dx):
        i = cuda.grid(1)
        if i < x.shape[0]:
            v = x[i]
            dx[i] = g[i] * (0.5 * math.erfc(-v * _INV_SQRT2) + v * (_INV_SQRT_2PI * math.exp(-0.5 * v * v)))

    return forward, backward


def _cuda_forward(x):
    flat = contiguous(x).reshape(-1)
    y = array_module(x).empty_like(flat)
    if flat.size:
        launch_on_cupy_stream(_cuda_kernels()[0], blocks_for(flat.size, CUDA_BLOCK), CUDA_BLOCK, 0, (flat, y))
    return y.reshape(x.shape)


def _cuda_backward(g, x):
    flat = contiguous(x).reshape(-1)
    gf = contiguous(g.astype(x.dtype, copy=False)).reshape(-1)
    dx = array_module(x).empty_like(flat)
    if flat.size:
        launch_on_cupy_stream(_cuda_kernels()[1], blocks_for(flat.size, CUDA_BLOCK), CUDA_BLOCK, 0, (gf, flat, dx))
    return dx.reshape(x.shape)


# ============================================================================ dispatch

_FORWARD = {"reference": reference_forward, "cpu": _cpu_forward, "cuda": _cuda_forward}
_BACKWARD = {"reference": reference_backward, "cpu": _cpu_backward, "cuda": _cuda_backward}


def forward(x, impl=None):
    """GELU(x) = x·Φ(x), same shape and dtype as ``x``. Save ``x`` for backward."""
    return _FORWARD[resolve_impl(impl, x, "gelu")](x)


def backward(g, x, impl=None):
    """The gradient ``g · (Φ(x) + x·φ(x))`` with respect to ``x``."""
    return _BACKWARD[resolve_impl(impl, x, "gelu")](g, x)
