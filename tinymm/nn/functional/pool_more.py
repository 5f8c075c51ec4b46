"""Floor 4: the ``*_with_indices`` pooling functions and ``lp_pool3d``.

They are ``max_pool1d/2d/3d`` and ``adaptive_max_pool1d/2d/3d`` with ``return_indices=True``
(PyTorch's ``*_with_indices`` always return both).
"""
from __future__ import annotations

import numbers

from tinymm import ops as O

from tinymm.nn.functional.pool import (adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d, avg_pool3d,
                                       max_pool1d, max_pool2d, max_pool3d)
from tinymm.nn.functional._checks import ShapeError


def triple_arg(fn, name, value, minimum):
    """``value`` (an int or 1 or 3 ints) as a triple of ints >= ``minimum``."""
    if isinstance(value, numbers.Integral):
        value = (int(value),) * 3
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        value = value * 3
    if len(value) != 3:
        raise TypeError(f"{fn}: {name} must be an int or a tuple of 3 ints, got {value!r}")
    if any(v < minimum for v in value):
        raise ShapeError(f"{fn}: {name} must be at least {minimum}, got {value}")
    return value



def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    """``(values, indices)`` of ``max_pool3d``; indices are flat ``d·H·W + h·W + w`` per volume."""
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def adaptive_max_pool3d_with_indices(input, output_size, return_indices=False):
    return adaptive_max_pool3d(input, output_size, return_indices=True)


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    """``(values, indices)`` of ``max_pool1d`` (always both, as PyTorch's)."""
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    """``(values, indices)`` of ``max_pool2d``; indices are flat ``h·W + w`` per plane."""
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=False):
    return adaptive_max_pool1d(input, output_size, return_indices=True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=False):
    return adaptive_max_pool2d(input, output_size, return_indices=True)


def lp_pool3d(input, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
    """(Σ_window x^p)^(1/p) over windows of (N, C, D, H, W): an average pool of x^p times the
    window volume (PyTorch's formula, sign-corrected as its lp_pool1d/2d)."""
    x = O.as_tensor(input, "lp_pool3d")
    kd, kh, kw = triple_arg("lp_pool3d", "kernel_size", kernel_size, 1)
    out = avg_pool3d(x ** norm_type, (kd, kh, kw), stride, 0, ceil_mode)
    return (out.sign() * out.abs().relu() * (kd * kh * kw)) ** (1.0 / norm_type)
