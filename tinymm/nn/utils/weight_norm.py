"""``weight_norm`` and ``spectral_norm`` (``torch.nn.utils``'s hook-based forms) and their removal.

weight_norm: weight = g · v / ‖v‖ with the norm over every dim but ``dim``; the module's
``weight`` parameter is replaced by ``weight_g`` (shape 1 along every other dim) and
``weight_v``, and a forward pre-hook recomputes ``weight`` before each call (PyTorch's names,
so state dicts move both ways).

spectral_norm: weight = weight_orig / σ, σ the largest singular value of weight_orig viewed as
(shape[dim], rest), estimated by power iteration: buffers ``weight_u``, ``weight_v`` are
refined ``n_power_iterations`` times per call in training mode (without gradient), and
σ = uᵀ·W·v is differentiated through W only, as PyTorch does.
"""
from __future__ import annotations

import warnings

import numpy as np

from tinymm import backend
from tinymm.nn.parameter import Parameter
from tinymm.tensor import Tensor


def norm_except_dim(v: Tensor, dim):
    if dim is None:
        return (v * v).sum().sqrt()
    axes = tuple(a for a in range(v.ndim) if a != dim % v.ndim)
    return (v * v).sum(dim=axes, keepdim=True).sqrt()


class _WeightNorm:
    def __init__(self, name, dim):
        self.name, self.dim = name, dim

    def compute(self, module):
        g, v = getattr(module, self.name + "_g"), getattr(module, self.name + "_v")
        return v * (g / norm_except_dim(v, self.dim))

    def __call__(self, module, args):
        object.__setattr__(module, self.name, self.compute(module))


def weight_norm(module, name: str = "weight", dim: int = 0):
    """Reparametrise ``module.<name>`` as g · v/‖v‖ (see the module docstring); returns the module."""
    # PyTorch's deprecation: a module under this hook cannot be deepcopied (an EMA or target copy)
    warnings.warn("`tinymm.nn.utils.weight_norm` is deprecated in favor of "
                  "`tinymm.nn.utils.parametrizations.weight_norm`.", FutureWarning, stacklevel=2)
    weight = module._parameters.get(name)
    if weight is None:
        raise ValueError(f"weight_norm: {type(module).__name__} has no parameter {name!r}")
    if dim is not None and dim < -weight.ndim:
        raise ValueError(f"weight_norm: dim {dim} is out of range for a {weight.ndim}-D {name}")
    # PyTorch's dim=-1 is dim=None (one norm over the whole tensor, a scalar g), not the last dim
    hook = _WeightNorm(name, None if dim is None or dim == -1 else dim % weight.ndim)
    del module._parameters[name]
    g = norm_except_dim(Tensor._wrap(weight._data), hook.dim)
    module.register_parameter(name + "_g", Parameter(g._data.copy()))
    module.register_parameter(name + "_v", Parameter(weight._data.copy()))
    object.__setattr__(module, name, hook.compute(module))
    handle = module.register_forward_pre_hook(hook)
    module.__dict__.setdefault("_weight_norm_hooks", {})[name] = handle
    return module


def remove_weight_norm(module, name: str = "weight"):
    """Fold g · v/‖v‖ back into a plain ``<name>`` parameter and drop the hook."""
    hooks = module.__dict__.get("_weight_norm_hooks", {})
    if name not in hooks:
        raise ValueError(f"weight_norm of '{name}' not found in {type(module).__name__}")
    handle = hooks.pop(name)
    weight = handle.hooks_dict_ref[handle.id][2].compute(module)
    handle.remove()
    del module._parameters[name + "_g"], module._parameters[name + "_v"]  # (and their attributes)
    object.__delattr__(module, name)  # the computed weight: a plain attribute until now
    module.register_parameter(name, Parameter(weight._data.copy()))
    return module


class _SpectralNorm:
    def __init__(self, name, n_power_iterations, dim, eps):
        self.name, self.n_power_iterations, self.dim, self.eps = name, n_power_iterations, dim, eps

    def _matrix(self, w: Tensor) -> Tensor:
        if self.dim != 0:
            w = w.permute(self.dim, *[d for d in range(w.ndim) if d != self.dim])
        return w.reshape(w.shape[0], -1)

    def _normalize(self, a):
        return a / max(float(np.sqrt((a * a).sum())), self.eps)

    def compute(self, module, do_power_iteration: bool):
        w = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        mat = self._matrix(w)
        if do_power_iteration:
            m = mat._data
            for _ in range(self.n_power_iterations):
                # in place: the buffers are the state dict's tensors
                v._data[...] = self._normalize(m.T @ u._data)
                u._data[...] = self._normalize(m @ v._data)
        sigma = (Tensor._wrap(u._data.copy()) * (mat @ Tensor._wrap(v._data.copy()))).sum()
        return w / sigma

    def __call__(self, module, args):
        object.__setattr__(module, self.name, self.compute(module, module.training))


def spectral_norm(module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12, dim=None):
    """Divide ``module.<name>`` by its spectral norm before every call (see the module
    docstring). ``dim`` defaults to 1 for transposed convolutions, else 0."""
    if name in module.__dict__.get("_spectral_norm_hooks", {}):  # PyTorch's error for a second call
        raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
    weight = module._parameters.get(name)
    if weight is None:
        raise ValueError(f"spectral_norm: {type(module).__name__} has no parameter {name!r}")
    if n_power_iterations <= 0:
        raise ValueError(f"spectral_norm: Expected n_power_iterations to be positive, but got "
                         f"n_power_iterations={n_power_iterations}")
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    hook = _SpectralNorm(name, n_power_iterations, dim, eps)
    mat = hook._matrix(Tensor._wrap(weight._data))._data
    h, w = mat.shape
    rng = backend.rng(weight.device)
    u = hook._normalize(rng.normal(0.0, 1.0, h).astype(weight.dtype))
    v = hook._normalize(rng.normal(0.0, 1.0, w).astype(weight.dtype))
    del module._parameters[name]
    module.register_parameter(name + "_orig", weight)
    module.register_buffer(name + "_u", Tensor._of(u))
    module.register_buffer(name + "_v", Tensor._of(v))
    # PyTorch's: until the first call ``<name>`` is the raw weight's data, a leaf without grad
    # (so ``copy.deepcopy`` of a fresh module, an EMA generator's usual start, works) and no
    # power iteration runs here: u and v stay as drawn until the first training-mode call
    object.__setattr__(module, name, weight.data)
    handle = module.register_forward_pre_hook(hook)
    module.__dict__.setdefault("_spectral_norm_hooks", {})[name] = handle
    return module


def remove_spectral_norm(module, name: str = "weight"):
    """Fold the normalised weight back into a plain ``<name>`` parameter and drop the hook."""
    hooks = module.__dict__.get("_spectral_norm_hooks", {})
    if name not in hooks:
        raise ValueError(f"spectral_norm of '{name}' not found in {type(module).__name__}")
    handle = hooks.pop(name)
    weight = handle.hooks_dict_ref[handle.id][2].compute(module, False)
    handle.remove()
    del module._parameters[name + "_orig"]
    del module._buffers[name + "_u"], module._buffers[name + "_v"]  # (and their attributes)
    object.__delattr__(module, name)
    module.register_parameter(name, Parameter(weight._data.copy()))
    return module
