"""Gradient clipping, in place on ``.grad``, with PyTorch's semantics.

``clip_grad_norm_`` computes the norm as PyTorch does, in two levels: each gradient's
``norm_type``-norm, then the ``norm_type``-norm of those norms. For p > 0 that is the norm of
all gradients joined; ``inf`` is the largest ``|g|``; ``-inf`` the smallest. ``norm_type=0``
follows ``torch.linalg.vector_norm``'s ord 0 (the count of non-zero entries) at both levels, so
the "total norm" is the number of gradients that have a non-zero entry: legal, as in PyTorch,
though rarely what anyone wants. A negative norm_type is a true "norm" of negative order (0
when any entry is 0, as PyTorch). Unlike PyTorch, a NaN ``norm_type`` or a NaN or negative
``max_norm`` raises instead of clipping by a meaningless or sign-flipping factor.
"""
from __future__ import annotations

import math

import numpy as np

from tinymm.kernels._common import array_module
from tinymm.tensor import Tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    if any(getattr(g, "is_sparse", False) for g in grads):  # probe8: as PyTorch's, which has no sparse kernel here
        raise NotImplementedError("gradient clipping: a sparse gradient (Embedding(sparse=True)) cannot be "
                                  "clipped in place; PyTorch has no sparse norm/clamp kernel for it either")
    return grads


def _as_float(fn, name, value) -> float:
    if isinstance(value, bool):
        raise TypeError(f"{fn}: {name} must be a number, got bool")
    try:
        v = float(value)  # PyTorch accepts "inf" as a norm_type
    except (TypeError, ValueError):
        raise TypeError(f"{fn}: {name} must be a number, got {type(value).__name__} {value!r}") from None
    if math.isnan(v):
        raise ValueError(f"{fn}: {name} is nan, expected a number")
    return v


def _vector_norm(a, p: float) -> float:
    """``torch.linalg.vector_norm(a, p)`` of a 1-D float64 array (host or device), as a float."""
    a = abs(a)
    if a.size == 0:
        return 0.0
    if p == math.inf:
        return float(a.max())
    if p == -math.inf:
        return float(a.min())
    if p == 0:
        return float((a != 0).sum())
    with np.errstate(divide="ignore", over="ignore"):  # |0|^p for p < 0 is inf: the norm is then 0
        return float((a**p).sum() ** (1.0 / p))


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Scale all gradients together so their joint ``norm_type``-norm is at most ``max_norm``.
    (``foreach`` picks PyTorch's implementation; tinymm has one, so it is accepted and unused.)

    The scale is max_norm / (total + 1e-6), applied only when below 1. Returns the total norm
    before clipping (a 0-d tensor of the gradients' dtype, on their device).
    """
    fn = "clip_grad_norm_"
    norm_type = _as_float(fn, "norm_type", norm_type)
    max_norm = _as_float(fn, "max_norm", max_norm)
    if max_norm < 0:
        raise ValueError(f"{fn}: max_norm is {max_norm}, expected a number >= 0")
    grads = _grads(parameters)
    if not grads:
        return Tensor._of(np.zeros((), np.float32))
    total = _total_norm(fn, grads, norm_type, error_if_nonfinite)
    _scale(grads, max_norm, total)
    return Tensor._wrap(array_module(grads[0]._data).asarray(total, dtype=grads[0].dtype))


def _total_norm(fn, tensors, norm_type, error_if_nonfinite) -> float:
    per_tensor = [_vector_norm(t._data.reshape(-1).astype(np.float64), norm_type) for t in tensors]
    total = _vector_norm(np.asarray(per_tensor), norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"{fn}: the total norm of order {norm_type} of the gradients is {total} (non-finite), "
                           f"so it cannot be clipped (pass error_if_nonfinite=False to skip this check)")
    return total


def _scale(grads, max_norm: float, total: float) -> None:
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        # an inf gradient (a float16 overflow that GradScaler's step will skip) gives total inf,
        # coef 0 and inf * 0 = nan, silently as PyTorch
        with np.errstate(invalid="ignore"):
            for g in grads:
                g._data *= g._data.dtype.type(coef)


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """The ``norm_type``-norm of the norms of ``tensors`` (the gradients themselves, not
    parameters): the first half of ``clip_grad_norm_``."""
    fn = "get_total_norm"
    norm_type = _as_float(fn, "norm_type", norm_type)
    tensors = [tensors] if isinstance(tensors, Tensor) else [t for t in tensors if t is not None]
    if not tensors:
        return Tensor._of(np.zeros((), np.float32))
    total = _total_norm(fn, tensors, norm_type, error_if_nonfinite)
    return Tensor._wrap(array_module(tensors[0]._data).asarray(total, dtype=tensors[0].dtype))


def clip_grads_with_norm_(parameters, max_norm: float, total_norm, foreach=None) -> None:
    """Scale the gradients by max_norm / (total_norm + 1e-6) when that is below 1: the second
    half of ``clip_grad_norm_``, given a total norm computed before."""
    max_norm = _as_float("clip_grads_with_norm_", "max_norm", max_norm)
    total = float(total_norm.item() if hasattr(total_norm, "item") else total_norm)
    _scale(_grads(parameters), max_norm, total)


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    """PyTorch's deprecated name of ``clip_grad_norm_``."""
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element to [−clip_value, clip_value]."""
    clip_value = _as_float("clip_grad_value_", "clip_value", clip_value)
    for g in _grads(parameters):
        array_module(g._data).clip(g._data, -clip_value, clip_value, out=g._data)
