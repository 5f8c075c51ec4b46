"""``weight_norm``, ``spectral_norm`` and ``orthogonal`` as parametrizations (``torch.nn.utils.parametrizations``,
PyTorch's recommended forms): state-dict keys ``parametrizations.weight.original0`` (g) and
``original1`` (v) for weight norm; ``parametrizations.weight.original`` and the power-iteration
vectors ``parametrizations.weight.0._u`` / ``_v`` for spectral norm."""
from __future__ import annotations

import numpy as np

from tinymm import backend
from tinymm.nn.module import Module
from tinymm.nn.utils.parametrize import register_parametrization
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
    w = getattr(module, name)
    d = None if dim is None or dim == -1 else dim % w.ndim
    return register_parametrization(module, name, _WeightNorm(d), unsafe=True)


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
    w = getattr(module, name)
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    return register_parametrization(module, name, _SpectralNorm(w, n_power_iterations, dim, eps))


# ----------------------------------------------------------------------------- orthogonal (lead)

_ORTHOGONAL_MAPS = ("matrix_exp", "cayley", "householder")


def _make_orthogonal(A):
    """The Q of A's QR decomposition with R's diagonal made positive (so unique): the nearest
    orthonormal columns in the Gram-Schmidt sense, as PyTorch's ``_make_orthogonal``."""
    from tinymm import linalg

    Q, R = linalg.qr(A)
    d = R.diagonal(dim1=-2, dim2=-1)
    phase = d / d.abs() if d.dtype.is_complex else d.sign()
    return Q * phase.unsqueeze(-2)


def _is_orthogonal(Q) -> bool:
    n, k = Q.shape[-2], Q.shape[-1]
    eps = 10.0 * n * float(np.finfo(Q._data.real.dtype).eps)
    gram = (Q.mH @ Q)._data
    return bool(backend.array_module(Q.device).allclose(gram, np.eye(k, dtype=gram.dtype), atol=eps))


class _Orthogonal(Module):
    """W = base · map(X) with map(X) orthogonal (``torch.nn.utils.parametrizations.orthogonal``):
    ``matrix_exp``/``cayley`` of the skew-symmetric part of X's lower triangle, or a product of
    Householder reflectors (X's strictly lower triangle, signs from its diagonal)."""

    def __init__(self, weight, orthogonal_map: str, *, use_trivialization: bool = True):
        super().__init__()
        if weight.dtype.is_complex and orthogonal_map == "householder":
            raise ValueError("The householder parametrization does not support complex tensors.")
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X):
        from tinymm import cat, eye, linalg

        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X = X.mT
            n, k = k, n
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            X = X.tril()
            if n != k:
                X = cat([X, X.new_zeros(n, n - k).expand(*X.shape[:-2], -1, -1)], dim=-1)
            A = X - X.mH
            if self.orthogonal_map == "matrix_exp":
                Q = linalg.matrix_exp(A)
            else:
                Id = eye(n, dtype=A.dtype, device=A.device)
                Q = linalg.solve(Id - 0.5 * A, Id + 0.5 * A)
            if n != k:
                Q = Q[..., :k]
        else:
            A = X.tril(diagonal=-1)
            tau = 2.0 / (1.0 + (A * A).sum(dim=-2))
            Q = linalg.householder_product(A, tau)
            Q = Q * X.diagonal(dim1=-2, dim2=-1).int().unsqueeze(-2)
        if getattr(self, "base", None) is not None:
            Q = self.base @ Q
        if transposed:
            Q = Q.mT
        return Q

    def right_inverse(self, Q):
        from tinymm import cat, geqrf, no_grad, randn, zeros_like

        with no_grad():
            if tuple(Q.shape) != self.shape:
                raise ValueError(f"Expected a matrix or batch of matrices of shape {self.shape}. "
                                 f"Got a tensor of shape {tuple(Q.shape)}.")
            Q_init = Q
            n, k = Q.shape[-2], Q.shape[-1]
            transpose = n < k
            if transpose:
                Q = Q.mT
                n, k = k, n
            if "base" not in self._buffers:
                if self.orthogonal_map in ("matrix_exp", "cayley"):
                    raise NotImplementedError("It is not possible to assign to the matrix exponential or the "
                                              "Cayley parametrizations when use_trivialization=False.")
                A, tau = geqrf(Q)  # Householder reflectors whose product is Q's QR Q
                diag = A.diagonal(dim1=-2, dim2=-1)
                diag.copy_(diag.sign())
                flip = (tau == 0.0)
                diag[flip] = diag[flip] * -1
                return A.mT if transpose else A
            if n == k:
                Q = Q.clone() if _is_orthogonal(Q) else _make_orthogonal(Q)
            else:  # complete the columns to a square orthogonal matrix (only the first k matter)
                N = randn(*(tuple(Q.shape[:-2]) + (n, n - k)), dtype=Q.dtype, device=Q.device)
                Q = _make_orthogonal(cat([Q, N], dim=-1))
            self.base = Q
            neg_id = zeros_like(Q_init)
            neg_id.diagonal(dim1=-2, dim2=-1).fill_(-1.0)
            return neg_id


def orthogonal(module: Module, name: str = "weight", orthogonal_map: str | None = None, *,
               use_trivialization: bool = True) -> Module:
    """Constrain ``module.<name>`` (a matrix, or batch of them) to orthonormal rows or columns,
    as PyTorch's: the default map is ``matrix_exp`` for square or complex matrices, else
    ``householder``. With ``use_trivialization`` (default) the current weight is kept, made
    orthogonal (QR with a positive R diagonal) when it is not, as the ``base`` buffer."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] or weight.dtype.is_complex else "householder"
    if orthogonal_map not in _ORTHOGONAL_MAPS:
        raise ValueError(f'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". Got: {orthogonal_map}')
    orth = _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization)
    return register_parametrization(module, name, orth, unsafe=True)
