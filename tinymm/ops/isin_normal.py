"""``torch.isin`` (membership of each element in a set of values) and ``torch.normal`` (draws
from N(mean, std²) with tensor or number parameters), as PyTorch defines them.

isin records no gradient (its result is boolean). normal's result is in the graph when mean or
std requires grad, as PyTorch's, but PyTorch defines its derivative with respect to mean and std
as zero: it is not the reparameterised sample (``distributions.Normal(...).rsample()`` is).
"""
from __future__ import annotations

import numbers

import numpy as np

from tinymm import backend, factories
from tinymm.autograd import Function
from tinymm.ops._util import ShapeError, xp_of
from tinymm.ops.convert import as_tensor
from tinymm.tensor import Tensor


def isin(elements, test_elements, *, assume_unique: bool = False, invert: bool = False) -> Tensor:
    """A bool tensor shaped as ``elements``: True where the element equals one of
    ``test_elements`` (False there with ``invert=True``). Either side may be a number, not both."""
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError(f"isin(): expected a Tensor for elements or test_elements, got "
                        f"{type(elements).__name__} and {type(test_elements).__name__}")
    el = as_tensor(elements, "isin")
    te = as_tensor(test_elements, "isin")
    xp = xp_of(el._data)
    return Tensor._wrap(xp.isin(el._data, te._data, assume_unique=assume_unique, invert=invert))


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Independent draws from N(mean, std²): shaped as ``mean`` and ``std`` broadcast together
    when either is a tensor, else as ``size`` (required when both are numbers)."""
    tensors = [t for t in (mean, std) if isinstance(t, Tensor)]
    if not tensors:
        if size is None:
            raise TypeError("normal(): with a number mean and std, size is required")
        if not std >= 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
        draw = factories.randn(*((size,) if isinstance(size, numbers.Integral) else tuple(size)),
                     generator=generator, dtype=dtype, device=device or "cpu")
        out = Tensor._wrap(draw._data * draw._data.dtype.type(std) + draw._data.dtype.type(mean))
        return out.requires_grad_(True) if requires_grad else out
    if size is not None:
        raise TypeError("normal(): size is only accepted when mean and std are both numbers")
    m, s = (as_tensor(v, "normal") if isinstance(v, Tensor) else v for v in (mean, std))
    ref = tensors[0]
    if ref.dtype.kind not in "fc":
        raise RuntimeError(f"normal expects floating point mean and std, got {ref.dtype}")
    xp = xp_of(ref._data)
    m_arr = m._data if isinstance(m, Tensor) else m
    s_arr = s._data if isinstance(s, Tensor) else s
    if bool(xp.any(xp.asarray(s_arr) < 0)):
        raise RuntimeError("normal expects all elements of std >= 0.0")
    try:
        shape = np.broadcast_shapes(np.shape(m_arr) if isinstance(m, Tensor) else (),
                                    np.shape(s_arr) if isinstance(s, Tensor) else ())
    except ValueError:
        raise ShapeError(f"normal: mean of shape {tuple(np.shape(m_arr))} and std of shape "
                         f"{tuple(np.shape(s_arr))} do not broadcast") from None
    z = backend.rng(backend.device_of(ref._data), generator).standard_normal(shape)
    draw = (m_arr + s_arr * xp.asarray(z, dtype=ref.dtype)).astype(ref.dtype, copy=False)
    return Normal.apply(draw, *tensors)


class Normal(Function):
    """Puts a draw in the graph of its tensor parameters with PyTorch's zero derivative."""

    @staticmethod
    def forward(ctx, draw, *params):
        ctx.shapes = [p.shape for p in params]
        return draw

    @staticmethod
    def backward(ctx, g):
        xp = xp_of(g)
        return (None, *(xp.zeros(shape, g.dtype) for shape in ctx.shapes))


ISIN_NORMAL_OPS = ((isin, None, "isin"), (normal, None, "normal"))
