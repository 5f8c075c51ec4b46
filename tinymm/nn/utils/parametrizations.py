"""``weight_norm`` and ``spectral_norm`` as parametrizations (``torch.nn.utils.parametrizations``,
PyTorch's recommended forms): state-dict keys ``parametrizations.weight.original0`` (g) and
``original1`` (v) for weight norm; ``parametrizations.weight.original`` and the power-iteration
vectors ``parametrizations.weight.0._u`` / ``_v`` for spectral norm."""
from __future__ import annotations

import numpy as np

from tinymm import backend
from tinymm.nn.module import Module
from tinymm.nn.utils.parametrize import is_parametrized, register_parametrization
from tinymm.nn.utils.weight_norm import norm_except_dim
from tinymm.tensor import Tensor


class _WeightNorm(Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, weight_g, weight_v):
        return weight_v * (weight_g / norm_except_dim(weight_v, self.dim))

    def right_inverse(self, weight):
        return norm_except_dim(weight, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int = 0) -> Module:
    """weight = g · v/‖v‖ (norm over every dim but ``dim``) as a parametrization; ``dim=None``
    or ``-1`` (PyTorch's spelling of None): one norm over the whole tensor."""
    w = _named_tensor(module, name, "does not have a parameter, a buffer, or a parametrized element with name")
    if dim is not None and dim != -1 and not -w.ndim <= dim < w.ndim:
        raise IndexError(f"weight_norm: Dimension out of range (expected to be in range of [{-w.ndim}, {w.ndim - 1}], "
                         f"but got {dim}) for {name} of shape {tuple(w.shape)}")
    d = None if dim is None or dim == -1 else dim % w.ndim
    return register_parametrization(module, name, _WeightNorm(d), unsafe=True)


class _NoSuchTensorError(ValueError, AttributeError):
    """A parametrization asked for a tensor the module does not have (PyTorch: ValueError;
    AttributeError, as the attribute lookup raised before)."""


def _named_tensor(module: Module, name: str, what: str):
    if not (name in module._parameters or name in module._buffers or is_parametrized(module, name)):
        raise _NoSuchTensorError(f"Module '{type(module).__name__}' {what} '{name}'")
    return getattr(module, name)


class _SpectralNorm(Module):
    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12):
        super().__init__()
        if n_power_iterations <= 0:
            raise ValueError(f"spectral_norm: Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.dim = dim % weight.ndim if weight.ndim else 0
        self.eps, self.n_power_iterations = eps, n_power_iterations
        if weight.ndim > 1:
            mat = self._matrix(weight)._data
            rng = backend.rng(weight.device)
            u = self._normalize(rng.normal(0.0, 1.0, mat.shape[0]).astype(weight.dtype))
            v = self._normalize(rng.normal(0.0, 1.0, mat.shape[1]).astype(weight.dtype))
            self.register_buffer("_u", Tensor._of(u))
            self.register_buffer("_v", Tensor._of(v))
            self._power_method(mat, 15)  # a good start, as PyTorch does

    def _matrix(self, w):
        if self.dim != 0:
            w = w.permute(self.dim, *[d for d in range(w.ndim) if d != self.dim])
        return w.reshape(w.shape[0], -1)

    def _normalize(self, a):
        return a / max(float(np.sqrt((a * a).sum())), self.eps)

    def _power_method(self, mat, n):
        for _ in range(n):
            self._u._data[...] = self._normalize(mat @ self._v._data)
            self._v._data[...] = self._normalize(mat.T @ self._u._data)

    def forward(self, weight):
        if weight.ndim == 1:
            return weight / (weight * weight).sum().sqrt().clamp(min=self.eps)
        mat = self._matrix(weight)
        if self.training:
            self._power_method(mat._data, self.n_power_iterations)
        u, v = Tensor._wrap(self._u._data.copy()), Tensor._wrap(self._v._data.copy())
        sigma = (u * (mat @ v)).sum()
        return weight / sigma

    def right_inverse(self, value):
        return value


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim=None) -> Module:
    """weight / σ(weight) as a parametrization (σ by power iteration, refined in training)."""
    w = _named_tensor(module, name, "has no parameter or buffer with name")
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    return register_parametrization(module, name, _SpectralNorm(w, n_power_iterations, dim, eps))


# probe5: orthogonal (its own file)
from tinymm.nn.utils.orthogonal import orthogonal  # noqa: E402,F401
