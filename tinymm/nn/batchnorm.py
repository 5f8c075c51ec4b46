"""``BatchNorm1d`` and ``BatchNorm2d``, PyTorch's layers, names, buffers and initialisation.

Parameters ``weight`` (ones) and ``bias`` (zeros) when ``affine``; buffers ``running_mean``
(zeros), ``running_var`` (ones) and ``num_batches_tracked`` (an int64 scalar) when
``track_running_stats``, so the state dict has PyTorch's keys and moves to and from
``torch.nn.BatchNorm*d``. ``Module.train()`` / ``eval()`` switch between batch statistics (and
updating the running ones) and the running statistics; without running statistics the batch
statistics are used in both modes.
"""
from __future__ import annotations

import numpy as np

from tinymm import backend
from tinymm.nn import functional as F
from tinymm.nn.functional._checks import ShapeError
from tinymm.nn.module import Module
from tinymm.nn.parameter import Parameter
from tinymm.tensor import Tensor


def register_affine(module, num_features: int, affine: bool, bias: bool, device, dtype):
    """A norm layer's per-channel ``weight`` (ones) and ``bias`` (zeros) when ``affine`` (the bias
    only with ``bias``, PyTorch's keyword); registered as None otherwise, as PyTorch does."""
    xp = backend.array_module(device)
    dt = np.dtype(dtype) if dtype is not None else backend.get_default_dtype()
    if affine:
        module.weight = Parameter(xp.ones(num_features, dtype=dt))
    else:
        module.register_parameter("weight", None)
    if affine and bias:
        module.bias = Parameter(xp.zeros(num_features, dtype=dt))
    else:
        module.register_parameter("bias", None)


def register_norm_state(module, num_features: int, affine: bool, track_running_stats: bool, device, dtype,
                        bias: bool = True):
    """PyTorch's per-channel state of a batch or instance norm: ``register_affine``'s weight and
    bias, buffers ``running_mean``, ``running_var`` and ``num_batches_tracked`` when
    ``track_running_stats`` (registered as None otherwise, as PyTorch does)."""
    xp = backend.array_module(device)
    dt = np.dtype(dtype) if dtype is not None else backend.get_default_dtype()
    register_affine(module, num_features, affine, bias, device, dtype)
    if track_running_stats:
        module.register_buffer("running_mean", Tensor._of(xp.zeros(num_features, dtype=dt)))
        module.register_buffer("running_var", Tensor._of(xp.ones(num_features, dtype=dt)))
        module.register_buffer("num_batches_tracked", Tensor._of(xp.zeros((), dtype=np.int64)))
    else:
        module.register_buffer("running_mean", None)
        module.register_buffer("running_var", None)
        module.register_buffer("num_batches_tracked", None)


class _NormBase(Module):
    """PyTorch's common base of the batch and instance norms (``isinstance(m, _NormBase)``
    picks out both); each subclass registers its own parameters and buffers."""

    _version = 2  # version 2 added num_batches_tracked (PyTorch's numbering)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        """A checkpoint older than version 2 (or without metadata) lacking ``num_batches_tracked``
        keeps the module's count (0 if none), as PyTorch."""
        version = local_metadata.get("version", None)
        if (version is None or version < 2) and self.track_running_stats:
            key = prefix + "num_batches_tracked"
            if key not in state_dict:
                state_dict[key] = self.num_batches_tracked if self.num_batches_tracked is not None \
                    else Tensor._of(np.zeros((), dtype=np.int64))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)


class _BatchNorm(_NormBase):
    _expected_dims = ()  # input ranks the subclass accepts
    _expected_text = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        if num_features < 0:
            raise ShapeError(f"{type(self).__name__}: num_features must not be negative, got {num_features}")
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        register_norm_state(self, num_features, affine, track_running_stats, device, dtype, bias)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean._data[...] = 0
            self.running_var._data[...] = 1
            self.num_batches_tracked._data[...] = 0

    def forward(self, input):
        if input.ndim not in self._expected_dims:
            raise ShapeError(f"{type(self).__name__}: expected {self._expected_text} input, got shape {tuple(input.shape)}")
        if input.shape[1] != self.num_features:
            raise ShapeError(f"{type(self).__name__}: input of shape {tuple(input.shape)} has {input.shape[1]} channels, "
                             f"the layer expects {self.num_features}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked._data += 1  # in place: the buffer stays the state dict's tensor
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked._data)
        # In training the batch statistics normalise; in eval the running ones when they exist.
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        keep_running = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if keep_running else None,
                            self.running_var if keep_running else None, self.weight, self.bias,
                            use_batch_stats, factor, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L): statistics per channel C."""

    _expected_dims = (2, 3)
    _expected_text = "a 2-D (N, C) or 3-D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W): statistics per channel C."""

    _expected_dims = (4,)
    _expected_text = "a 4-D (N, C, H, W)"


class BatchNorm3d(_BatchNorm):
    """Batch norm over (N, C, D, H, W): statistics per channel C."""

    _expected_dims = (5,)
    _expected_text = "a 5-D (N, C, D, H, W)"


class SyncBatchNorm(_BatchNorm):
    """Batch norm whose statistics PyTorch gathers across processes. tinymm trains in one
    process, so it is the plain batch norm of (N, C, *) (``process_group`` is accepted and
    unused); ``convert_sync_batchnorm`` swaps BatchNorm layers for it, keeping their tensors."""

    _expected_dims = (2, 3, 4, 5)
    _expected_text = "an (N, C, *) (2-D to 5-D)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group=None, device=None, dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        self.process_group = process_group

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                      process_group, bias=module.bias is not None or not module.affine)
            for registry in ("_parameters", "_buffers"):
                for name, t in getattr(module, registry).items():
                    if t is not None:
                        getattr(out, registry)[name] = t
                        object.__setattr__(out, name, t)
            out.training = module.training
            return out
        for name, child in list(module._modules.items()):
            if child is not None:
                module.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return module


# shims: public names of the base classes, for tinymm.nn.modules.batchnorm (torch.nn.modules.batchnorm)
NormBase, BatchNormBase = _NormBase, _BatchNorm
