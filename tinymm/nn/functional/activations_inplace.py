"""Floor 4: the in-place activations of ``torch.nn.functional`` (``F.relu_``, ``F.elu_``, ...)
and the deprecated ``upsample_nearest``/``upsample_bilinear``.

Each ``*_`` is its out-of-place activation written back into the input through
``tinymm.ops.inplace.inplace_of``: the input's memory changes (views of it see the change),
its version counter is bumped (a Function that saved it refuses to backward), and with a
graph the input becomes the activation's output node; a leaf that requires grad is refused,
as PyTorch.
"""
from __future__ import annotations

import warnings

from tinymm import ops as O
from tinymm.ops.inplace import inplace_of

from tinymm.nn.functional.activations import celu, elu, hardtanh, leaky_relu, rrelu, selu, threshold
from tinymm.nn.functional.upsample import interpolate

relu_ = inplace_of("relu_", O.relu)
_elu_ = inplace_of("elu_", elu)
_celu_ = inplace_of("celu_", celu)
selu_ = inplace_of("selu_", selu)
_leaky_relu_ = inplace_of("leaky_relu_", leaky_relu)
_hardtanh_ = inplace_of("hardtanh_", hardtanh)
_rrelu_ = inplace_of("rrelu_", rrelu)
_threshold_ = inplace_of("threshold_", threshold)


def elu_(input, alpha: float = 1.0):
    return _elu_(input, alpha)


def celu_(input, alpha: float = 1.0):
    return _celu_(input, alpha)


def leaky_relu_(input, negative_slope: float = 0.01):
    return _leaky_relu_(input, negative_slope)


def hardtanh_(input, min_val: float = -1.0, max_val: float = 1.0):
    return _hardtanh_(input, min_val, max_val)


def rrelu_(input, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False):
    return _rrelu_(input, lower, upper, training)


def threshold_(input, threshold: float, value: float):
    return _threshold_(input, threshold, value)


def upsample_nearest(input, size=None, scale_factor=None):
    """Deprecated alias: ``interpolate(input, size, scale_factor, mode="nearest")``."""
    warnings.warn("nn.functional.upsample_nearest is deprecated. Use nn.functional.interpolate instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """Deprecated alias: ``interpolate(..., mode="bilinear", align_corners=True)``."""
    warnings.warn("nn.functional.upsample_bilinear is deprecated. Use nn.functional.interpolate instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
