"""Floor 4: the ``*_with_indices`` pooling functions and ``lp_pool3d``.

The 1-D/2-D ones are ``max_pool1d/2d`` and ``adaptive_max_pool1d/2d`` with
``return_indices=True`` (the kernels compute the indices); the 3-D ones are
``pool_gather``'s gathers.
"""
from __future__ import annotations

from tinymm import ops as O

from tinymm.nn.functional.pool import adaptive_max_pool1d, adaptive_max_pool2d, avg_pool3d, max_pool1d, max_pool2d
from tinymm.nn.functional.pool_gather import (  # noqa: F401  (re-exported)
    adaptive_max_pool3d_with_indices,
    max_pool3d_with_indices,
    triple_arg,
)


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
