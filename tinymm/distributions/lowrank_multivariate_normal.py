"""``LowRankMultivariateNormal``: N(loc, W·Wᵀ + diag(D)) with W (..., n, m), m ≪ n.

Everything avoids n × n work through the m × m capacitance matrix K = I + Wᵀ·D⁻¹·W (its
Cholesky factor C is computed once): by the matrix determinant lemma
log|Σ| = 2·Σ log diag C + Σ log D, and by the Woodbury identity
xᵀΣ⁻¹x = xᵀD⁻¹x − |C⁻¹·Wᵀ·D⁻¹·x|². rsample = loc + W·ε_m + √D·ε_n.
"""
from __future__ import annotations

import math

from tinymm.distributions import constraints
from tinymm.distributions.distribution import Distribution
from tinymm.distributions.linalg import cholesky, solve_triangular_lower
from tinymm.distributions.multivariate_normal import batch_mahalanobis, batch_mv
from tinymm.distributions.utils import draw, lazy_property
from tinymm.factories import eye
from tinymm.ops import broadcast_tensors, diag_embed, matmul
from tinymm.tensor import Size

__all__ = ["LowRankMultivariateNormal"]


def batch_capacitance_tril(W, D):
    """Cholesky factor of K = I + Wᵀ·D⁻¹·W, (..., m, m)."""
    m = W.shape[-1]
    Wt_Dinv = W.mT / D.unsqueeze(-2)
    K = matmul(Wt_Dinv, W) + eye(m, dtype=W.dtype, device=W.device)
    return cholesky(K)


def batch_lowrank_logdet(W, D, capacitance_tril):
    """log|W·Wᵀ + diag(D)| by the matrix determinant lemma."""
    return 2 * capacitance_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1) + D.log().sum(-1)


def batch_lowrank_mahalanobis(W, D, x, capacitance_tril):
    """xᵀ(W·Wᵀ + diag(D))⁻¹x by the Woodbury identity."""
    Wt_Dinv = W.mT / D.unsqueeze(-2)
    Wt_Dinv_x = batch_mv(Wt_Dinv, x)
    return (x.pow(2) / D).sum(-1) - batch_mahalanobis(capacitance_tril, Wt_Dinv_x)


class LowRankMultivariateNormal(Distribution):
    arg_constraints = {
        "loc": constraints.real_vector,
        "cov_factor": constraints.independent(constraints.real, 2),
        "cov_diag": constraints.independent(constraints.positive, 1),
    }
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, cov_factor, cov_diag, validate_args=None):
        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional.")
        event_shape = tuple(loc.shape[-1:])
        if cov_factor.dim() < 2:
            raise ValueError("cov_factor must be at least two-dimensional, with optional leading batch dimensions")
        if tuple(cov_factor.shape[-2:-1]) != event_shape:
            raise ValueError(f"cov_factor must be a batch of matrices with shape {event_shape[0]} x m")
        if tuple(cov_diag.shape[-1:]) != event_shape:
            raise ValueError(f"cov_diag must be a batch of vectors with shape {event_shape}")
        try:
            loc_, self.cov_factor, cov_diag_ = broadcast_tensors(loc.unsqueeze(-1), cov_factor, cov_diag.unsqueeze(-1))
        except (RuntimeError, ValueError) as e:
            raise ValueError(
                f"Incompatible batch shapes: loc {tuple(loc.shape)}, cov_factor {tuple(cov_factor.shape)}, cov_diag {tuple(cov_diag.shape)}"
            ) from e
        self.loc = loc_[..., 0]
        self.cov_diag = cov_diag_[..., 0]
        self._unbroadcasted_cov_factor = cov_factor
        self._unbroadcasted_cov_diag = cov_diag
        self._capacitance_tril = batch_capacitance_tril(cov_factor, cov_diag)
        super().__init__(self.loc.shape[:-1], event_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LowRankMultivariateNormal, _instance)
        batch_shape = Size(tuple(batch_shape))
        loc_shape = tuple(batch_shape + self.event_shape)
        new.loc = self.loc.expand(loc_shape)
        new.cov_diag = self.cov_diag.expand(loc_shape)
        new.cov_factor = self.cov_factor.expand(loc_shape + tuple(self.cov_factor.shape[-1:]))
        new._unbroadcasted_cov_factor = self._unbroadcasted_cov_factor
        new._unbroadcasted_cov_diag = self._unbroadcasted_cov_diag
        new._capacitance_tril = self._capacitance_tril
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _full(self, *event):
        return tuple(self._batch_shape) + event

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @lazy_property
    def variance(self):
        n = self._event_shape[0]
        return (self._unbroadcasted_cov_factor.pow(2).sum(-1) + self._unbroadcasted_cov_diag).expand(self._full(n))

    @lazy_property
    def scale_tril(self):
        # Σ = D^½(I + D^-½WWᵀD^-½)D^½, so L = D^½·chol(I + D^-½WWᵀD^-½): an n × n Cholesky
        n = self._event_shape[0]
        sqrt_d = self._unbroadcasted_cov_diag.sqrt().unsqueeze(-1)
        Dinvsqrt_W = self._unbroadcasted_cov_factor / sqrt_d
        K = matmul(Dinvsqrt_W, Dinvsqrt_W.mT) + eye(n, dtype=sqrt_d.dtype, device=sqrt_d.device)
        return (sqrt_d * cholesky(K)).expand(self._full(n, n))

    @lazy_property
    def covariance_matrix(self):
        n = self._event_shape[0]
        W = self._unbroadcasted_cov_factor
        return (matmul(W, W.mT) + diag_embed(self._unbroadcasted_cov_diag)).expand(self._full(n, n))

    @lazy_property
    def precision_matrix(self):
        # Woodbury: Σ⁻¹ = D⁻¹ − (C⁻¹WᵀD⁻¹)ᵀ(C⁻¹WᵀD⁻¹)
        n = self._event_shape[0]
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        A = solve_triangular_lower(self._capacitance_tril, W.mT / D.unsqueeze(-2))
        return (diag_embed(D.reciprocal()) - matmul(A.mT, A)).expand(self._full(n, n))

    def rsample(self, sample_shape=Size()):
        shape = self._extended_shape(sample_shape)
        w_shape = tuple(shape[:-1]) + tuple(self.cov_factor.shape[-1:])
        eps_w = draw("normal", w_shape, self.loc)
        eps_d = draw("normal", shape, self.loc)
        return self.loc + batch_mv(self._unbroadcasted_cov_factor, eps_w) + self._unbroadcasted_cov_diag.sqrt() * eps_d

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        diff = value - self.loc
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        M = batch_lowrank_mahalanobis(W, D, diff, self._capacitance_tril)
        log_det = batch_lowrank_logdet(W, D, self._capacitance_tril)
        return -0.5 * (self._event_shape[0] * math.log(2 * math.pi) + log_det + M)

    def entropy(self):
        log_det = batch_lowrank_logdet(self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag, self._capacitance_tril)
        H = 0.5 * (self._event_shape[0] * (1.0 + math.log(2 * math.pi)) + log_det)
        if len(self._batch_shape) == 0:
            return H
        return H.expand(tuple(self._batch_shape))
