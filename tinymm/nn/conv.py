"""``Conv1d`` and ``Conv2d`` with PyTorch's arguments, parameter names, shapes, init and repr.

``weight`` (out_channels, in_channels / groups, *kernel_size) and ``bias`` (out_channels,), so
state dicts load into ``torch.nn.Conv1d/Conv2d`` and back. Default init as PyTorch:
``kaiming_uniform_(weight, a=sqrt(5))``, which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and
bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels / groups * prod(kernel_size).
``padding_mode`` 'reflect', 'replicate' and 'circular' pad with ``F.pad`` first and then
convolve without padding, as PyTorch does.
"""
from __future__ import annotations

import math

import numpy as np

from tinymm import backend
from tinymm.factories import FactorySizeError
from tinymm.nn import functional as F
from tinymm.nn import init
from tinymm.nn.module import Module
from tinymm.nn.parameter import Parameter

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ntuple(name, value, n):
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value}")
    return value


class _ConvNd(Module):
    _n = 0  # spatial dims
    _functional = None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        n, cls = self._n, type(self).__name__
        if groups <= 0:
            raise ValueError(f"{cls}: groups must be a positive integer, got {groups}")
        if in_channels % groups:
            raise ValueError(f"{cls}: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{cls}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{cls}: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _ntuple("kernel_size", kernel_size, n)
        self.stride = _ntuple("stride", stride, n)
        self.dilation = _ntuple("dilation", dilation, n)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{cls}: invalid padding string {padding!r}, should be one of ('valid', 'same')")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{cls}: padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _ntuple("padding", padding, n)
        self.padding_mode = padding_mode
        xp = backend.array_module(device)
        dt = np.dtype(dtype) if dtype is not None else backend.get_default_dtype()
        if in_channels < 0 or out_channels < 0:  # PyTorch fails creating the weight: RuntimeError
            raise FactorySizeError(f"{cls}: channels must not be negative, got in_channels={in_channels}, "
                                   f"out_channels={out_channels}")
        self.weight = Parameter(xp.empty((out_channels, in_channels // groups) + self.kernel_size, dt))
        if bias:
            self.bias = Parameter(xp.empty((out_channels,), dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_channels // self.groups * math.prod(self.kernel_size)
            if fan_in:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def _reversed_padding_repeated_twice(self):
        """F.pad's widths (last dim first) for the non-zeros padding modes; 'same' puts the odd
        extra element after, as the zeros path does."""
        if self.padding == "valid":
            return (0, 0) * self._n
        if self.padding == "same":
            totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            pairs = [(t // 2, t - t // 2) for t in totals]
        else:
            pairs = [(p, p) for p in self.padding]
        return tuple(w for pair in reversed(pairs) for w in pair)

    def forward(self, input):
        if self.padding_mode != "zeros":
            input = F.pad(input, self._reversed_padding_repeated_twice(), mode=self.padding_mode)
            return self._functional(input, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return self._functional(input, self.weight, self.bias, self.stride, self.padding,
                                self.dilation, self.groups)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._n:
            s += f", dilation={self.dilation}"
        if getattr(self, "output_padding", (0,) * self._n) != (0,) * self._n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-D convolution over (B, in_channels, L) or unbatched (in_channels, L) input."""

    _n = 1
    _functional = staticmethod(F.conv1d)


class Conv2d(_ConvNd):
    """2-D convolution over (B, in_channels, H, W) or unbatched (in_channels, H, W) input."""

    _n = 2
    _functional = staticmethod(F.conv2d)


class _ConvTransposeNd(_ConvNd):
    """Transposed convolution: ``weight`` (in_channels, out_channels / groups, *kernel_size),
    ``bias`` (out_channels,), PyTorch's init (fan_in from weight dim 1, out_channels / groups
    · Πkernel). ``forward(x, output_size=None)``: ``output_size`` picks the output_padding that
    reaches that size, as PyTorch."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        cls = type(self).__name__
        if padding_mode != "zeros":
            raise ValueError(f'{cls}: Only "zeros" padding mode is supported for {cls}, got {padding_mode!r}')
        if isinstance(padding, str):
            raise ValueError(f"{cls}: padding must be an int or a tuple of ints, got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)
        self.output_padding = _ntuple("output_padding", output_padding, self._n)
        xp = backend.array_module(device)
        self.weight = Parameter(xp.empty((in_channels, out_channels // groups) + self.kernel_size, self.weight.dtype))
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            if fan_in:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def _output_padding(self, x, output_size):
        if output_size is None:
            return self.output_padding
        n, cls = self._n, type(self).__name__
        output_size = list(output_size)[-n:]
        if len(output_size) != n:
            raise ValueError(f"{cls}: output_size must have {n} or {n + 2} elements (got {len(output_size)})")
        pads = []
        for d in range(n):
            L = x.shape[x.ndim - n + d]
            smallest = (L - 1) * self.stride[d] - 2 * self.padding[d] + self.dilation[d] * (self.kernel_size[d] - 1) + 1
            largest = smallest + self.stride[d] - 1
            if not smallest <= output_size[d] <= largest:
                raise ValueError(f"{cls}: requested an output size of {output_size}, but valid sizes range from "
                                 f"{smallest} to {largest} (for an input of {tuple(x.shape[-n:])})")
            pads.append(output_size[d] - smallest)
        return tuple(pads)

    def forward(self, input, output_size=None):
        return self._functional(input, self.weight, self.bias, self.stride, self.padding,
                                self._output_padding(input, output_size), self.groups, self.dilation)


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-D convolution of (B, in_channels, L) or (in_channels, L)."""

    _n = 1
    _functional = staticmethod(F.conv_transpose1d)


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-D convolution of (B, in_channels, H, W) or (in_channels, H, W)."""

    _n = 2
    _functional = staticmethod(F.conv_transpose2d)


class Conv3d(_ConvNd):
    """3-D convolution over (B, in_channels, D, H, W) or unbatched (in_channels, D, H, W)
    (built on conv2d, one batched call per depth tap)."""

    _n = 3
    _functional = staticmethod(F.conv3d)


class ConvTranspose3d(_ConvTransposeNd):
    """Transposed 3-D convolution of (B, in_channels, D, H, W) or (in_channels, D, H, W)
    (built on conv_transpose2d, one batched call per depth tap)."""

    _n = 3
    _functional = staticmethod(F.conv_transpose3d)


# shims: the public name of the base class, for tinymm.nn.modules.conv (torch.nn.modules.conv)
ConvNdBase = _ConvNd
