"""KL divergences with a ``LowRankMultivariateNormal`` on either side (DeepVAR / GPVar-style
low-rank Gaussian heads compared against a full or another low-rank Gaussian), registered with
``register_kl`` as PyTorch registers them: (LowRank, LowRank), (LowRank, MVN), (MVN, LowRank).

For n-dimensional Gaussians p = N(μp, Σp), q = N(μq, Σq)

    KL(p ‖ q) = ½ [log|Σq| − log|Σp| + tr(Σq⁻¹Σp) + (μq − μp)ᵀΣq⁻¹(μq − μp) − n].

A low-rank Σ = W·Wᵀ + diag(D) keeps everything at the rank m through its capacitance factor C
(C·Cᵀ = I + Wᵀ·D⁻¹·W): log|Σ| by the determinant lemma, the Mahalanobis term by Woodbury
(both in ``lowrank_multivariate_normal``), and for a low-rank q, with A = C⁻¹·Wᵀ·D⁻¹ (m × n),

    Σq⁻¹ = D⁻¹ − Aᵀ·A,  so  tr(Σq⁻¹·S·Sᵀ) = Σᵢⱼ S[i, j]² / D[i] − |A·S|²_F

for any square root S of Σp: [Wp, diag(√Dp)] for a low-rank p (the two blocks summed apart,
nothing n × n is formed), Lp for a full p. For a full q, tr(Σq⁻¹·S·Sᵀ) = |Lq⁻¹·S|²_F.
"""
from __future__ import annotations

from tinymm.distributions.kl import register_kl
from tinymm.distributions.linalg import solve_triangular_lower
from tinymm.distributions.lowrank_multivariate_normal import (
    LowRankMultivariateNormal,
    batch_lowrank_logdet,
    batch_lowrank_mahalanobis,
)
from tinymm.distributions.multivariate_normal import MultivariateNormal, batch_mahalanobis
from tinymm.ops import broadcast_shapes

__all__: list = []


def _check_event(p, q):
    if p.event_shape != q.event_shape:
        raise ValueError("KL-divergence between two (Low Rank) Multivariate Normals with different event shapes "
                         f"cannot be computed (got {tuple(p.event_shape)} and {tuple(q.event_shape)})")


def _expand(x, batch, *tail):
    return x.expand(*batch, *tail)


def _lowrank_parts(q, batch):
    """(D, A) of a low-rank q, broadcast to ``batch``: Σq⁻¹ = diag(1/D) − Aᵀ·A."""
    W, D, C = q._unbroadcasted_cov_factor, q._unbroadcasted_cov_diag, q._capacitance_tril
    n, m = W.shape[-2], W.shape[-1]
    A = solve_triangular_lower(_expand(C, batch, m, m), _expand(W.mT / D.unsqueeze(-2), batch, m, n))
    return D, A


def _trace_lowrank_inv_times(D, A, S):
    """tr((diag(1/D) − AᵀA)·S·Sᵀ) for S (..., n, k)."""
    return (S.pow(2) / D.unsqueeze(-1)).sum((-2, -1)) - (A @ S).pow(2).sum((-2, -1))


def _trace_lowrank_inv_times_diag(D, A, Dp):
    """tr((diag(1/D) − AᵀA)·diag(Dp)): the diagonal block of a low-rank p, without an n × n."""
    return (Dp / D).sum(-1) - (A.pow(2) * Dp.unsqueeze(-2)).sum((-2, -1))


@register_kl(LowRankMultivariateNormal, LowRankMultivariateNormal)
def _kl_lowrank_lowrank(p, q):
    _check_event(p, q)
    n = p.event_shape[0]
    Wp, Dp = p._unbroadcasted_cov_factor, p._unbroadcasted_cov_diag
    batch = tuple(broadcast_shapes(Wp.shape[:-2], q._unbroadcasted_cov_factor.shape[:-2]))
    D, A = _lowrank_parts(q, batch)
    logdet_q = batch_lowrank_logdet(q._unbroadcasted_cov_factor, q._unbroadcasted_cov_diag, q._capacitance_tril)
    logdet_p = batch_lowrank_logdet(Wp, Dp, p._capacitance_tril)
    trace = (_trace_lowrank_inv_times(D, A, _expand(Wp, batch, n, Wp.shape[-1]))
             + _trace_lowrank_inv_times_diag(D, A, Dp))
    maha = batch_lowrank_mahalanobis(q._unbroadcasted_cov_factor, q._unbroadcasted_cov_diag, q.loc - p.loc,
                                     q._capacitance_tril)
    return 0.5 * (logdet_q - logdet_p + trace + maha - n)


@register_kl(LowRankMultivariateNormal, MultivariateNormal)
def _kl_lowrank_multivariatenormal(p, q):
    _check_event(p, q)
    n = p.event_shape[0]
    Wp, Dp = p._unbroadcasted_cov_factor, p._unbroadcasted_cov_diag
    Lq = q._unbroadcasted_scale_tril
    batch = tuple(broadcast_shapes(Wp.shape[:-2], Lq.shape[:-2]))
    Lq_b = _expand(Lq, batch, n, n)
    logdet_q = 2 * Lq.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    logdet_p = batch_lowrank_logdet(Wp, Dp, p._capacitance_tril)
    # |Lq⁻¹·[Wp, diag(√Dp)]|²_F, the two blocks apart
    trace = (solve_triangular_lower(Lq_b, _expand(Wp, batch, n, Wp.shape[-1])).pow(2).sum((-2, -1))
             + solve_triangular_lower(Lq_b, _expand(Dp.sqrt().diag_embed(), batch, n, n)).pow(2).sum((-2, -1)))
    maha = batch_mahalanobis(Lq, q.loc - p.loc)
    return 0.5 * (logdet_q - logdet_p + trace + maha - n)


@register_kl(MultivariateNormal, LowRankMultivariateNormal)
def _kl_multivariatenormal_lowrank(p, q):
    _check_event(p, q)
    n = p.event_shape[0]
    Lp = p._unbroadcasted_scale_tril
    batch = tuple(broadcast_shapes(Lp.shape[:-2], q._unbroadcasted_cov_factor.shape[:-2]))
    D, A = _lowrank_parts(q, batch)
    logdet_q = batch_lowrank_logdet(q._unbroadcasted_cov_factor, q._unbroadcasted_cov_diag, q._capacitance_tril)
    logdet_p = 2 * Lp.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    trace = _trace_lowrank_inv_times(D, A, _expand(Lp, batch, n, n))
    maha = batch_lowrank_mahalanobis(q._unbroadcasted_cov_factor, q._unbroadcasted_cov_diag, q.loc - p.loc,
                                     q._capacitance_tril)
    return 0.5 * (logdet_q - logdet_p + trace + maha - n)
