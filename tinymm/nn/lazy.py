"""Lazy layers: ``LazyLinear``, ``LazyConv1d/2d/3d``, ``LazyConvTranspose1d/2d``,
``LazyBatchNorm1d/2d/3d``, ``LazyInstanceNorm1d/2d/3d``: the input size (``in_features``,
``in_channels``, ``num_features``) is taken from the first input.

Until then the parameters are empty placeholders (shape (0,)), the same Parameter objects
that are filled in place at the first call, so an optimizer built before it keeps working
(PyTorch asks for a dry run before building the optimizer; here it is optional). At that call
the layer initialises as its eager twin would and becomes that class, as in PyTorch.
"""
from __future__ import annotations

import numpy as np

from tinymm import backend
from tinymm.nn.batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d, BatchNormBase, NormBase
from tinymm.nn.conv import Conv1d, Conv2d, Conv3d, ConvNdBase, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from tinymm.nn.layers import Linear
from tinymm.nn.module import Module
from tinymm.nn.normalization import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d
from tinymm.nn.parameter_more import UninitializedParameter  # opse



class _Lazy:
    """Mixin: build the eager twin's tensors with the inferred size at the first call."""

    cls_to_become = None

    def has_uninitialized_params(self) -> bool:
        return True

    def extra_repr(self) -> str:
        return ""  # the eager base's repr reads sizes a lazy module does not have yet

    def _materialize(self, size: int):
        eager = type(self).cls_to_become
        twin = eager(*self._twin_args(size), **self._twin_kwargs)
        for registry in ("_parameters", "_buffers"):
            mine, theirs = getattr(self, registry), getattr(twin, registry)
            for name, t in theirs.items():
                if t is None:
                    continue
                if mine.get(name) is not None:
                    mine[name]._data = t._data  # the same Parameter object, now with data
                    if isinstance(mine[name], UninitializedParameter):  # opse: and a plain Parameter, as PyTorch
                        mine[name].__class__ = UninitializedParameter.cls_to_become
                elif registry == "_buffers":
                    self.register_buffer(name, t)
        for k, v in twin.__dict__.items():
            if k not in ("_parameters", "_buffers", "_modules", "_non_persistent", "training", "_hooks") \
                    and k not in self._parameters and k not in self._buffers:
                object.__setattr__(self, k, v)
        self.__class__ = eager

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.cls_to_become is not None:  # the eager twin's forward signature (input=, output_size=)
            cls.forward = cls.cls_to_become.forward

    def __call__(self, *args, **kwargs):
        x = args[0] if args else kwargs["input"]
        self._materialize(int(x.shape[self._size_dim(x)]))
        return Module.__call__(self, *args, **kwargs)

    def _size_dim(self, x):
        return 1 if x.ndim > self._unbatched_ndim else 0


def _placeholder(device, dtype):
    dt = np.dtype(dtype) if dtype is not None else backend.get_default_dtype()
    return UninitializedParameter(backend.array_module(device).empty((0,), dt))  # opse


class LazyLinear(_Lazy, Module):
    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None):
        Module.__init__(self)
        self.out_features, self.in_features = out_features, 0
        self.weight = _placeholder(device, dtype)
        if bias:
            self.bias = _placeholder(device, dtype)
        else:
            self.register_parameter("bias", None)
        self._twin_kwargs = dict(bias=bias, device=device, dtype=dtype)

    def _twin_args(self, size):
        return size, self.out_features

    def _size_dim(self, x):
        return -1 + x.ndim


class _LazyConv(_Lazy, ConvNdBase):  # shims: a _ConvNd before materialising, as PyTorch's
    def __init__(self, out_channels, kernel_size, *args, bias=True, device=None, dtype=None, **kwargs):
        Module.__init__(self)
        self.out_channels, self.in_channels = out_channels, 0
        self.weight = _placeholder(device, dtype)
        if bias:
            self.bias = _placeholder(device, dtype)
        else:
            self.register_parameter("bias", None)
        self._rest = (kernel_size,) + args
        self._twin_kwargs = dict(kwargs, bias=bias, device=device, dtype=dtype)

    def _twin_args(self, size):
        return (size, self.out_channels) + self._rest


class LazyConv1d(_LazyConv):
    cls_to_become, _unbatched_ndim = Conv1d, 2


class LazyConv2d(_LazyConv):
    cls_to_become, _unbatched_ndim = Conv2d, 3


class LazyConv3d(_LazyConv):
    cls_to_become, _unbatched_ndim = Conv3d, 4


class LazyConvTranspose1d(_LazyConv):
    cls_to_become, _unbatched_ndim = ConvTranspose1d, 2


class LazyConvTranspose2d(_LazyConv):
    cls_to_become, _unbatched_ndim = ConvTranspose2d, 3


class LazyConvTranspose3d(_LazyConv):
    cls_to_become, _unbatched_ndim = ConvTranspose3d, 4


class _LazyNorm(_Lazy, NormBase):  # shims: a _NormBase before materialising, as PyTorch's
    _unbatched_ndim = 0

    def __init__(self, eps: float = 1e-5, momentum=0.1, affine: bool = True, track_running_stats: bool = True,
                 device=None, dtype=None, *, bias: bool = True):
        Module.__init__(self)
        self.num_features = 0
        if affine:
            self.weight = _placeholder(device, dtype)
        else:
            self.register_parameter("weight", None)
        if affine and bias:
            self.bias = _placeholder(device, dtype)
        else:
            self.register_parameter("bias", None)
        self._twin_kwargs = dict(eps=eps, momentum=momentum, affine=affine, track_running_stats=track_running_stats,
                                 device=device, dtype=dtype, bias=bias)

    def _twin_args(self, size):
        return (size,)

    def _size_dim(self, x):
        return 1


class LazyBatchNorm1d(_LazyNorm, BatchNormBase):
    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyNorm, BatchNormBase):
    cls_to_become = BatchNorm2d


class LazyBatchNorm3d(_LazyNorm, BatchNormBase):
    cls_to_become = BatchNorm3d


class _LazyInstanceNorm(_LazyNorm):
    # PyTorch's lazy instance norms default to affine=True and track_running_stats=True (unlike
    # InstanceNorm*d itself): _LazyNorm's defaults, kept as PyTorch has them

    def _size_dim(self, x):
        return 1 if x.ndim > self._unbatched_ndim else 0


class LazyInstanceNorm1d(_LazyInstanceNorm):
    cls_to_become, _unbatched_ndim = InstanceNorm1d, 2


class LazyInstanceNorm2d(_LazyInstanceNorm):
    cls_to_become, _unbatched_ndim = InstanceNorm2d, 3


class LazyInstanceNorm3d(_LazyInstanceNorm):
    cls_to_become, _unbatched_ndim = InstanceNorm3d, 4

