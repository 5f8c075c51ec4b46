"""``MultivariateNormal``: N(loc, Σ) over vectors (event_shape (n,)), parameterised by exactly
one of ``covariance_matrix`` Σ, ``precision_matrix`` Σ⁻¹ or ``scale_tril`` L (Σ = L·Lᵀ).

Everything goes through the lower Cholesky factor L (batch dims as given, not broadcast):
rsample = loc + L·ε; log_prob = −½(n·log 2π + |L⁻¹(x − loc)|²) − Σ log diag L; entropy
= ½n(1 + log 2π) + Σ log diag L. From a precision matrix P, L comes as PyTorch computes it:
the Cholesky factor of P with rows and columns reversed gives L⁻¹ (lower) without forming Σ.
"""
from __future__ import annotations

import math

import numpy as np

from tinymm.distributions import constraints
from tinymm.distributions.distribution import Distribution
from tinymm.distributions.linalg import cholesky, solve_triangular_lower
from tinymm.distributions.utils import draw, lazy_property
from tinymm.factories import eye
from tinymm.ops import flip, matmul
from tinymm.tensor import Size

__all__ = ["MultivariateNormal"]


def batch_mv(bmat, bvec):
    """Matrix-vector product over broadcast batch dims: (..., n, m) · (..., m) → (..., n)."""
    return matmul(bmat, bvec.unsqueeze(-1)).squeeze(-1)


def batch_mahalanobis(L, x):
    """|L⁻¹x|² for lower-triangular L (..., n, n) and x (..., n), batch dims broadcast."""
    return solve_triangular_lower(L, x.unsqueeze(-1)).squeeze(-1).pow(2).sum(-1)


def scale_tril_of(scale_tril, covariance_matrix, precision_matrix):
    """The lower Cholesky factor L (Σ = L Lᵀ) from whichever one of the three is given."""
    if scale_tril is not None:
        return scale_tril
    if covariance_matrix is not None:
        return cholesky(covariance_matrix)
    return precision_to_scale_tril(precision_matrix)


def precision_to_scale_tril(P):
    """L with L·Lᵀ = P⁻¹: reversing P's rows and columns, its Cholesky factor reversed and
    transposed is L⁻¹ (lower triangular); one triangular solve gives L."""
    Lf = cholesky(flip(P, (-2, -1)))
    L_inv = flip(Lf, (-2, -1)).transpose(-2, -1)
    Id = eye(P.shape[-1], dtype=P.dtype, device=P.device)
    return solve_triangular_lower(L_inv, Id)


class MultivariateNormal(Distribution):
    arg_constraints = {
        "loc": constraints.real_vector,
        "covariance_matrix": constraints.positive_definite,
        "precision_matrix": constraints.positive_definite,
        "scale_tril": constraints.lower_cholesky,
    }
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None, validate_args=None):
        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional.")
        if (covariance_matrix is not None) + (scale_tril is not None) + (precision_matrix is not None) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified.")
        given = next(m for m in (scale_tril, covariance_matrix, precision_matrix) if m is not None)
        name = "scale_tril" if scale_tril is not None else "covariance_matrix" if covariance_matrix is not None else "precision_matrix"
        if given.dim() < 2:
            raise ValueError(f"{name} matrix must be at least two-dimensional, with optional leading batch dimensions")
        batch_shape = Size(np.broadcast_shapes(tuple(given.shape[:-2]), tuple(loc.shape[:-1])))
        setattr(self, name, given.expand(tuple(batch_shape) + (-1, -1)))
        self.loc = loc.expand(tuple(batch_shape) + (-1,))
        super().__init__(batch_shape, self.loc.shape[-1:], validate_args=validate_args)
        self._unbroadcasted_scale_tril = scale_tril_of(scale_tril, covariance_matrix, precision_matrix)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(MultivariateNormal, _instance)
        batch_shape = Size(tuple(batch_shape))
        cov_shape = tuple(batch_shape + self.event_shape + self.event_shape)
        new.loc = self.loc.expand(tuple(batch_shape + self.event_shape))
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril
        for name in ("covariance_matrix", "scale_tril", "precision_matrix"):
            if name in self.__dict__:
                new.__dict__[name] = self.__dict__[name].expand(cov_shape)
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @lazy_property
    def scale_tril(self):
        return self._unbroadcasted_scale_tril.expand(tuple(self._batch_shape + self._event_shape + self._event_shape))

    @lazy_property
    def covariance_matrix(self):
        L = self._unbroadcasted_scale_tril
        return matmul(L, L.mT).expand(tuple(self._batch_shape + self._event_shape + self._event_shape))

    @lazy_property
    def precision_matrix(self):
        L = self._unbroadcasted_scale_tril
        Linv = solve_triangular_lower(L, eye(L.shape[-1], dtype=L.dtype, device=L.device))
        return matmul(Linv.mT, Linv).expand(tuple(self._batch_shape + self._event_shape + self._event_shape))

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return self._unbroadcasted_scale_tril.pow(2).sum(-1).expand(tuple(self._batch_shape + self._event_shape))

    def rsample(self, sample_shape=Size()):
        shape = self._extended_shape(sample_shape)
        eps = draw("normal", shape, self.loc)
        return self.loc + batch_mv(self._unbroadcasted_scale_tril, eps)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        diff = value - self.loc
        M = batch_mahalanobis(self._unbroadcasted_scale_tril, diff)
        half_log_det = self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return -0.5 * (self._event_shape[0] * math.log(2 * math.pi) + M) - half_log_det

    def entropy(self):
        half_log_det = self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        H = 0.5 * self._event_shape[0] * (1.0 + math.log(2 * math.pi)) + half_log_det
        if len(self._batch_shape) == 0:
            return H
        return H.expand(tuple(self._batch_shape))
