"""``GroupNorm``, ``InstanceNorm1d/2d/3d`` and ``RMSNorm`` with PyTorch's arguments, defaults,
parameter and buffer names (state dicts move to and from ``torch.nn``).

GroupNorm: ``weight`` ones and ``bias`` zeros (num_channels,) when ``affine`` (default True);
``bias=False`` (keyword, as PyTorch's) leaves the bias out, here and in InstanceNorm.
InstanceNorm: ``affine=False`` and ``track_running_stats=False`` by default, as PyTorch; with
tracking, buffers ``running_mean``, ``running_var`` and ``num_batches_tracked`` as BatchNorm's,
used in eval mode. RMSNorm: ``weight`` ones over ``normalized_shape``; ``eps=None`` is the
input dtype's machine epsilon.
"""
from __future__ import annotations

import numpy as np

from tinymm import backend
from tinymm.nn import functional as F
from tinymm.nn.batchnorm import NormBase, register_affine, register_norm_state
from tinymm.nn.functional._checks import ShapeError
from tinymm.nn.module import Module
from tinymm.nn.parameter import Parameter


def _dtype(dtype):
    return np.dtype(dtype) if dtype is not None else backend.get_default_dtype()


class GroupNorm(Module):
    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        register_affine(self, num_channels, affine, bias, device, dtype)

    def forward(self, input):
        if input.ndim >= 2 and input.shape[1] != self.num_channels:
            raise ShapeError(f"GroupNorm: input of shape {tuple(input.shape)} has {input.shape[1]} channels, the layer "
                             f"expects {self.num_channels}")
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, bias={self.bias is not None}"


class _InstanceNorm(NormBase):  # shims: torch's base, _NormBase
    _spatial = 0

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = False,
                 track_running_stats: bool = False, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        register_norm_state(self, num_features, affine, track_running_stats, device, dtype, bias)

    def forward(self, input):
        name, n = type(self).__name__, self._spatial
        if input.ndim not in (n + 1, n + 2):
            raise ShapeError(f"{name}: expected {n + 1}D (unbatched) or {n + 2}D (batched) input, got shape "
                             f"{tuple(input.shape)}")
        unbatched = input.ndim == n + 1
        if unbatched:
            input = input.unsqueeze(0)
        if self.affine and input.shape[1] != self.num_features:
            raise ShapeError(f"{name}: expected input's size at dim=1 to match num_features ({self.num_features}), "
                             f"but got input of shape {tuple(input.shape)}")
        use_input_stats = self.training or not self.track_running_stats
        # PyTorch's instance norm keeps num_batches_tracked (for state-dict parity) but never counts,
        # and momentum=None is momentum 0 there (running statistics stay put), not a cumulative average
        y = F.instance_norm(input, self.running_mean, self.running_var, self.weight, self.bias, use_input_stats,
                            self.momentum if self.momentum is not None else 0.0, self.eps)
        return y.squeeze(0) if unbatched else y

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        """A checkpoint without metadata that holds running statistics this module does not
        track is refused with PyTorch's explanation (they stopped being tracked by default in 0.4)."""
        if local_metadata.get("version", None) is None and not self.track_running_stats:
            keys = [prefix + n for n in ("running_mean", "running_var") if prefix + n in state_dict]
            if keys:
                klass, names = type(self).__name__, " and ".join(f'"{k}"' for k in keys)
                error_msgs.append(
                    f"Unexpected running stats buffer(s) {names} "
                    f"for {klass} with track_running_stats=False. If state_dict is a checkpoint saved before 0.4.0, "
                    f"this may be expected because {klass} does not track running stats by default since 0.4.0. "
                    f"Please remove these keys from state_dict. If the running stats are actually needed, instead "
                    f"set track_running_stats=True in {klass} to enable them. See the documentation of {klass} "
                    f"for details.")
                for k in keys:
                    state_dict.pop(k)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)


class InstanceNorm1d(_InstanceNorm):
    """Instance norm of (N, C, L) or unbatched (C, L): statistics per sample and channel."""

    _spatial = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance norm of (N, C, H, W) or unbatched (C, H, W)."""

    _spatial = 2


class InstanceNorm3d(_InstanceNorm):
    """Instance norm of (N, C, D, H, W) or unbatched (C, D, H, W)."""

    _spatial = 3


class RMSNorm(Module):
    def __init__(self, normalized_shape, eps=None, elementwise_affine: bool = True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if any(d < 0 for d in self.normalized_shape):  # PyTorch fails creating the weight: RuntimeError
            raise ShapeError(f"RMSNorm: normalized_shape {self.normalized_shape} has a negative size")
        if elementwise_affine:
            xp = backend.array_module(device)
            self.weight = Parameter(xp.ones(self.normalized_shape, dtype=_dtype(dtype)))
        else:
            self.register_parameter("weight", None)

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class LocalResponseNorm(Module):
    """Normalise each channel by the summed squares of its ``size`` neighbours:
    b_c = a_c / (k + alpha/n · Σ_{c' near c} a_c'²)^beta, over (N, C, *)."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
