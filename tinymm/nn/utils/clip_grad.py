"""Gradient clipping, in place on ``.grad``, with PyTorch's semantics."""
from __future__ import annotations

import math

import numpy as np

from tinymm.tensor import Tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients together so their joint ``norm_type``-norm is at most ``max_norm``.

    The scale is max_norm / (total + 1e-6), applied only when below 1. Returns the total norm
    before clipping (a 0-d tensor).
    """
    grads = _grads(parameters)
    if not grads:
        return Tensor(np.zeros((), np.float32))
    norm_type = float(norm_type)
    if norm_type == math.inf:
        total = max(float(abs(g.data).max()) for g in grads)
    else:
        total = sum(float((abs(g.data.astype(np.float64)) ** norm_type).sum()) for g in grads) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of the gradients is {total}")
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g.data *= g.data.dtype.type(coef)
    return Tensor(np.asarray(total, dtype=grads[0].dtype))


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient element to [−clip_value, clip_value]."""
    for g in _grads(parameters):
        np.clip(g.data, -clip_value, clip_value, out=g.data)
