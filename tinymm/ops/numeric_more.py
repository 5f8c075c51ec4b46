"""``torch.*`` numeric functions with PyTorch's semantics: ``unravel_index``, ``diagflat``,
``vdot``, ``rsub``, ``binomial``, ``gradient``, ``histogramdd``, and ``is_inference``.

``gradient`` is built from differentiable ops (narrow, sub, mul, div, cat), so gradients reach
the input (and coordinate tensors given as ``spacing``). Its formulas are second-order central
differences inside, with first- or second-order one-sided differences at the edges
(``edge_order``); with coordinates the inside uses the non-uniform three-point formula
    (hs²·f(x+hd) + (hd² − hs²)·f(x) − hd²·f(x−hs)) / (hs·hd·(hd + hs)),
hs and hd the distances to the previous and next coordinate (NumPy's ``gradient`` too).
``binomial`` draws from tinymm's generator (``tinymm.manual_seed``); it has no derivative
(its result requires grad when the count does, and backward says so, as PyTorch).
"""
from __future__ import annotations

import collections
import itertools
import numbers

import numpy as np

from tinymm import backend
from tinymm.autograd import Function
from tinymm.ops._util import DTypeError, DTypeNotImplementedError, ShapeError, normalize_dim, torch_dtype_name, xp_of
from tinymm.ops.convert import as_tensor, cast
from tinymm.ops.elementwise import add, div, mul, sub
from tinymm.ops.layout import diag, narrow
from tinymm.ops.linalg import dot
from tinymm.ops.shape import cat, flatten, reshape
from tinymm.tensor import Tensor, is_inference_array

HistogramddResult = collections.namedtuple("histogramdd", ["hist", "bin_edges"])


def unravel_index(indices, shape):
    """The coordinates in an array of ``shape`` of each flat index in ``indices``: a tuple of
    int64 tensors shaped as ``indices``, one per dim. Indices wrap modulo each size, as in
    PyTorch (no bounds check)."""
    x = as_tensor(indices, "unravel_index")
    if x.dtype.kind not in "iu":
        raise TypeError(f"expected 'indices' to be integer dtype, but got {x.dtype}")
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (int(shape),)
    elif isinstance(shape, (tuple, list)):
        for d in shape:
            if not isinstance(d, numbers.Integral):
                raise TypeError(f"expected 'shape' sequence to only contain ints, but got {type(d)}")
        shape = tuple(int(d) for d in shape)
    else:
        raise TypeError(f"expected 'shape' to be int or sequence of ints, but got {type(shape)}")
    if any(d < 0 for d in shape):
        raise ValueError(f"'shape' cannot have negative values, but got {tuple(shape)}")
    xp = xp_of(x._data)
    coefs = list(itertools.accumulate(reversed(shape[1:] + (1,)), lambda a, b: a * b))[::-1]
    flat = x._data.astype(np.int64)
    return tuple(Tensor._wrap(xp.asarray((flat // c) % d, dtype=np.int64)) for c, d in zip(coefs, shape))


def diagflat(input, offset: int = 0):
    """The square matrix with the flattened ``input`` on diagonal ``offset``."""
    return diag(flatten(as_tensor(input, "diagflat")), int(offset))


def vdot(input, other):
    """Σ conj(input)·other of two 1-D tensors of one dtype (real dtypes here: tinymm's
    complex tensors come from another change, and conj then matters)."""
    a, b = as_tensor(input, "vdot"), as_tensor(other, "vdot")
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError(f"1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    if a.dtype != b.dtype:
        raise DTypeError(f"dot : expected both vectors to have same dtype, but found "
                         f"{torch_dtype_name(a.dtype)} and {torch_dtype_name(b.dtype)}")
    if a.dtype.kind == "c":
        raise DTypeNotImplementedError("vdot: complex tensors are not supported by tinymm yet")
    if a.shape[0] != b.shape[0]:
        raise ShapeError(f"inconsistent tensor size, expected tensor [{a.shape[0]}] and src [{b.shape[0]}] to have "
                         f"the same number of elements, but got {a.shape[0]} and {b.shape[0]} elements respectively")
    return dot(a, b)


def rsub(input, other, *, alpha=1):
    """``other − alpha·input`` (``sub`` with its operands swapped)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"rsub(): argument 'input' must be Tensor, not {type(input).__name__}")
    return sub(other, input, alpha=alpha)


# ----------------------------------------------------------------------------- binomial


class _Binomial(Function):
    @staticmethod
    def forward(ctx, count, prob, generator=None):
        xp = xp_of(count)
        n, p = xp.broadcast_arrays(count, prob)
        whole = xp.floor(xp.maximum(n, 0))
        safe_p = xp.where(xp.isnan(p), 0.5, xp.clip(p, 0.0, 1.0))
        draw = backend.rng(backend.device_of(count), generator).binomial(whole.astype(np.int64), safe_p)
        # PyTorch's edges: p >= 1 gives the count itself, p <= 0 or count <= 0 zero, NaN p NaN
        out = xp.where(p >= 1, n, draw.astype(count.dtype))
        out = xp.where((p <= 0) | (n <= 0), 0, out)
        return xp.where(xp.isnan(p), xp.nan, out).astype(count.dtype)

    @staticmethod
    def backward(ctx, g):
        raise RuntimeError("derivative for aten::binomial is not implemented")


def binomial(count, prob, generator=None):
    """Binomial(count, prob) draws, element by element (broadcast), in count's float dtype."""
    n, p = as_tensor(count, "binomial"), as_tensor(prob, "binomial")
    if n.dtype.kind != "f":
        raise ValueError(f"binomial only supports floating-point dtypes for count, got: {torch_dtype_name(n.dtype)}")
    if p.dtype != n.dtype:
        raise DTypeError(f"Found dtype {torch_dtype_name(p.dtype)} but expected {torch_dtype_name(n.dtype)}")
    np.broadcast_shapes(n.shape, p.shape)
    return _Binomial.apply(n, p, generator=generator)


# ----------------------------------------------------------------------------- gradient


def _spacings(x, spacing, dims, dim_given):
    """Per dim: a Python number (uniform step) or a 1-D coordinate Tensor."""
    if spacing is None:
        return [1.0] * len(dims)
    if isinstance(spacing, (numbers.Number, Tensor)) and not (isinstance(spacing, Tensor) and spacing.ndim):
        step = spacing.item() if isinstance(spacing, Tensor) else spacing
        return [step] * len(dims)
    spacing = list(spacing)
    if len(spacing) != len(dims):
        if dim_given:
            raise RuntimeError(f"torch.gradient expected spacing to be unspecified, a scalar or it's spacing and dim "
                               f"arguments to have the same length, but got a spacing argument of length "
                               f"{len(spacing)} and a dim argument of length {len(dims)}.")
        raise RuntimeError(f"torch.gradient expected spacing to be unspecified, a scalar, or a list of length equal to "
                           f"'self.dim() = {x.ndim}', since dim argument was not given, but got a list of length "
                           f"{len(spacing)}")
    out = []
    for s, d in zip(spacing, dims):
        if isinstance(s, Tensor):
            if s.ndim != 1:
                raise RuntimeError(f"torch.gradient expected each element of spacing to have one dimension, but got "
                                   f"an element with {s.ndim} dimensions!")
            if s.shape[0] != x.shape[d]:
                raise ShapeError(f"torch.gradient: spacing tensor for dim {d} has {s.shape[0]} coordinates, the "
                                 f"input has size {x.shape[d]} there")
            out.append(s)
        else:
            out.append(s)
    return out


def _along(t, d, ndim):
    """A 1-D tensor shaped to broadcast along dim ``d`` of an ``ndim``-D tensor."""
    shape = [1] * ndim
    shape[d] = -1
    return reshape(t, shape)


def _gradient_1d(f, d, h, edge_order):
    n, nd = f.shape[d], f.ndim

    def at(start, length=1):
        return narrow(f, d, start, length)

    if isinstance(h, Tensor):
        c = cast(h, f.dtype) if h.dtype != f.dtype else h
        dx = sub(narrow(c, 0, 1, n - 1), narrow(c, 0, 0, n - 1))  # (n-1,) steps
        hs, hd = narrow(dx, 0, 0, n - 2), narrow(dx, 0, 1, n - 2)
        hs, hd = _along(hs, d, nd), _along(hd, d, nd)
        num = sub(add(mul(mul(hs, hs), at(2, n - 2)), mul(sub(mul(hd, hd), mul(hs, hs)), at(1, n - 2))),
                  mul(mul(hd, hd), at(0, n - 2)))
        inside = div(num, mul(mul(hs, hd), add(hd, hs)))
        first, last = narrow(dx, 0, 0, 1), narrow(dx, 0, n - 2, 1)
        if edge_order == 1:
            left = div(sub(at(1), at(0)), _along(first, d, nd))
            right = div(sub(at(n - 1), at(n - 2)), _along(last, d, nd))
        else:
            d1, d2 = _along(first, d, nd), _along(narrow(dx, 0, 1, 1), d, nd)
            s12 = add(d1, d2)
            left = add(add(mul(div(add(mul(d1, 2.0), d2), mul(d1, s12)), mul(at(0), -1.0)),
                           mul(div(s12, mul(d1, d2)), at(1))),
                       mul(div(d1, mul(d2, s12)), mul(at(2), -1.0)))
            e1, e2 = _along(narrow(dx, 0, n - 3, 1), d, nd), _along(last, d, nd)
            s12 = add(e1, e2)
            right = add(add(mul(div(e2, mul(e1, s12)), at(n - 3)),
                            mul(div(s12, mul(e1, e2)), mul(at(n - 2), -1.0))),
                        mul(div(add(mul(e2, 2.0), e1), mul(e2, s12)), at(n - 1)))
    else:
        h = float(h)
        inside = div(sub(at(2, n - 2), at(0, n - 2)), 2.0 * h)
        if edge_order == 1:
            left = div(sub(at(1), at(0)), h)
            right = div(sub(at(n - 1), at(n - 2)), h)
        else:
            left = div(add(add(mul(at(0), -3.0), mul(at(1), 4.0)), mul(at(2), -1.0)), 2.0 * h)
            right = div(add(add(mul(at(n - 1), 3.0), mul(at(n - 2), -4.0)), at(n - 3)), 2.0 * h)
    return cat([left, inside, right], dim=d)


def gradient(input, *, spacing=1, dim=None, edge_order: int = 1):
    """The derivative of ``input`` along each of ``dim`` (default: every dim), estimated by
    finite differences: a tuple of tensors shaped as ``input``. ``spacing``: one number (the
    step along every dim), one number per dim, or one 1-D tensor of coordinates per dim."""
    x = as_tensor(input, "gradient")
    if edge_order not in (1, 2):
        raise RuntimeError("torch.gradient only supports edge_order=1 and edge_order=2.")
    if dim is None:
        dims, dim_given = list(range(x.ndim)), False
    else:
        raw = [dim] if isinstance(dim, numbers.Integral) else list(dim)
        dims = [normalize_dim("gradient", x.ndim, d) for d in raw]
        for d in dims:
            if dims.count(d) > 1:
                raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
        dim_given = True
    steps = _spacings(x, spacing, dims, dim_given)
    if any(x.shape[d] < edge_order + 1 for d in dims):
        raise RuntimeError("torch.gradient expected each dimension size to be at least edge_order+1")
    if x.dtype.kind not in "fc":
        x = cast(x, backend.get_default_dtype())
    return tuple(_gradient_1d(x, d, h, edge_order) for d, h in zip(dims, steps))


# ----------------------------------------------------------------------------- histogramdd


def histogramdd(input, bins, *, range=None, weight=None, density: bool = False):
    """The D-dimensional histogram of the points in ``input`` (..., D): ``bins`` an int (each
    dim), D ints, or D 1-D tensors of edges; ``range`` [min0, max0, min1, max1, ...].
    Returns (hist, bin_edges) as PyTorch: hist in input's dtype, a tuple of D edge tensors."""
    x = as_tensor(input, "histogramdd")
    if x.dtype.kind != "f":
        raise DTypeNotImplementedError(f"\"histogramdd\" not implemented for '{torch_dtype_name(x.dtype)}'")
    if x.ndim < 1:
        raise ShapeError("torch.histogramdd: input tensor should have at least 1 dimension")
    D = x.shape[-1]
    pts = x.numpy(force=True).reshape(-1, D).astype(np.float64)
    if isinstance(bins, numbers.Integral):
        bins = [int(bins)] * D
    bins = list(bins)
    if len(bins) != D:
        raise ShapeError("histogramdd: The size of bins must be equal to the innermost dimension of the input.")
    w = None
    if weight is not None:
        wt = as_tensor(weight, "histogramdd")
        if tuple(wt.shape) != tuple(x.shape[:-1]):
            raise ShapeError(f"torch.histogramdd: if weight tensor is provided it should have the same shape as the "
                             f"input tensor excluding its innermost dimension, but got input with shape "
                             f"{list(x.shape)} and weight with shape {list(wt.shape)}")
        w = wt.numpy(force=True).reshape(-1).astype(np.float64)
    if range is not None:
        range = [float(r) for r in range]
        if len(range) != 2 * D:
            raise RuntimeError(f"torch.histogramdd: for a {D}-dimensional histogram range should have {2 * D} "
                               f"elements, but got {len(range)}")
    edges = []
    for d, b in enumerate(bins):
        if isinstance(b, Tensor):
            e = b.numpy(force=True).astype(np.float64)
            if e.ndim != 1 or e.size < 1:
                raise ShapeError("torch.histogramdd: each bin tensor must be 1-D with at least one edge")
            if (np.diff(e) < 0).any():
                raise RuntimeError("torch.histogramdd: bin edges must be non-decreasing")
            edges.append(e)
            continue
        b = int(b)
        if b <= 0:
            raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {b} for dimension {d}")
        if range is not None:
            lo, hi = range[2 * d], range[2 * d + 1]
        elif pts.shape[0]:
            lo, hi = float(pts[:, d].min()), float(pts[:, d].max())
        else:
            lo, hi = 0.0, 1.0
        if lo > hi:
            raise RuntimeError(f"torch.histogramdd: min should not exceed max, but got min {lo:g} max {hi:g} "
                               f"for dimension {d}")
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        # PyTorch's equal-width edges, computed in the input's dtype
        edges.append(np.linspace(lo, hi, b + 1).astype(x.dtype).astype(np.float64))
    hist, _ = np.histogramdd(pts, bins=edges, weights=w, density=density)
    dev = x.device
    return HistogramddResult(
        Tensor._wrap(backend.to_device(hist.astype(x.dtype), dev)),
        tuple(Tensor._wrap(backend.to_device(e.astype(x.dtype), dev)) for e in edges))


# ----------------------------------------------------------------------------- inference tensors


def is_inference(input) -> bool:
    """Whether ``input`` was made inside ``inference_mode()`` (or views memory that was)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"is_inference(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    return is_inference_array(input._data)


NUMERIC_MORE_OPS = (
    (unravel_index, None, "unravel_index"),
    (diagflat, "diagflat", "diagflat"),
    (vdot, "vdot", "vdot"),
    (rsub, None, "rsub"),
    (binomial, None, "binomial"),
    (gradient, None, "gradient"),
    (histogramdd, None, "histogramdd"),
    (is_inference, "is_inference", "is_inference"),
)
