"""``Wishart(df, covariance_matrix | precision_matrix | scale_tril)``: the distribution of
Σ_{i≤ν} x_i·x_iᵀ for x_i ~ N(0, Σ), over p × p positive-definite matrices, as PyTorch's
``torch.distributions.wishart``. With Σ = L·Lᵀ and ν = df > p − 1:

    log p(X) = −ν·(p·log 2/2 + Σ log diag L) − log Γ_p(ν/2) + (ν − p − 1)/2·log|X| − tr(Σ⁻¹X)/2

(Γ_p the multivariate gamma function). It is an exponential family with
θ = (−Σ⁻¹/2, (ν − p − 1)/2). rsample is Bartlett's decomposition: X = (L·A)(L·A)ᵀ with A lower
triangular, A_ii = √χ²(ν − i) (reparameterised Chi2 draws, so gradients reach df) and
A_ij ~ N(0, 1) below the diagonal.

For ν < p the draws are often singular. ``rsample`` redraws the singular ones up to
``max_try_correction`` (default 10) times and warns "Singular sample detected." when it met
any. (PyTorch 2.13's check is inverted: it warns on every draw and redraws the valid ones;
this does what its docstring says.)
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from tinymm.distributions import constraints
from tinymm.distributions.exp_family import ExponentialFamily
from tinymm.distributions.gamma import Chi2
from tinymm.distributions.multivariate_normal import scale_tril_of
from tinymm.distributions.utils import draw, finfo_of, lazy_property
from tinymm.factories import arange, eye, tensor
from tinymm.linalg import slogdet
from tinymm.ops import cholesky_solve, digamma, mvlgamma, where
from tinymm.tensor import Size

__all__ = ["Wishart"]

_LOG_2 = math.log(2)


def mvdigamma(x, p: int):
    """The multivariate digamma ψ_p(x) = Σ_{i<p} ψ(x − i/2), for x > (p − 1)/2."""
    if not bool((x > (p - 1) / 2)._data.all()):
        raise AssertionError("Wrong domain for multivariate digamma function.")
    return digamma(x.unsqueeze(-1) - arange(p, dtype=x.dtype, device=x.device) / 2).sum(-1)


class Wishart(ExponentialFamily):
    support = constraints.positive_definite
    has_rsample = True
    _mean_carrier_measure = 0

    @property
    def arg_constraints(self):
        return {
            "covariance_matrix": constraints.positive_definite,
            "precision_matrix": constraints.positive_definite,
            "scale_tril": constraints.lower_cholesky,
            "df": constraints.greater_than(self.event_shape[-1] - 1),
        }

    def __init__(self, df, covariance_matrix=None, precision_matrix=None, scale_tril=None, validate_args=None):
        if (covariance_matrix is not None) + (scale_tril is not None) + (precision_matrix is not None) != 1:
            raise AssertionError("Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified.")
        param = next(m for m in (covariance_matrix, precision_matrix, scale_tril) if m is not None)
        if param.dim() < 2:
            raise ValueError("scale_tril must be at least two-dimensional, with optional leading batch dimensions")
        if isinstance(df, numbers.Number):
            batch_shape = Size(tuple(param.shape[:-2]))
            self.df = tensor(float(df), dtype=param.dtype, device=param.device)
        else:
            batch_shape = Size(np.broadcast_shapes(tuple(param.shape[:-2]), tuple(df.shape)))
            self.df = df.expand(tuple(batch_shape))
        event_shape = Size(tuple(param.shape[-2:]))
        p = event_shape[-1]
        if bool((self.df <= p - 1)._data.any()):
            raise ValueError(f"Value of df={df} expected to be greater than ndim - 1 = {p - 1}.")
        full = tuple(batch_shape) + (-1, -1)
        if scale_tril is not None:
            self.scale_tril = param.expand(full)
        elif covariance_matrix is not None:
            self.covariance_matrix = param.expand(full)
        else:
            self.precision_matrix = param.expand(full)
        if bool((self.df < p)._data.any()):
            warnings.warn("Low df values detected. Singular samples are highly likely to occur for ndim - 1 < df < ndim.", stacklevel=2)
        super().__init__(batch_shape, event_shape, validate_args=validate_args)
        self._batch_dims = [-(x + 1) for x in range(len(self._batch_shape))]
        self._unbroadcasted_scale_tril = scale_tril_of(scale_tril, covariance_matrix, precision_matrix)
        self._dist_chi2 = self._chi2_of(self.df, batch_shape)

    def _chi2_of(self, df, batch_shape):
        """χ²(ν − i) for i = 0 … p − 1: the squared diagonal of Bartlett's factor."""
        p = self._event_shape[-1]
        L = self._unbroadcasted_scale_tril
        steps = arange(p, dtype=L.dtype, device=L.device).expand(tuple(batch_shape) + (-1,))
        return Chi2(df=df.unsqueeze(-1) - steps)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Wishart, _instance)
        batch_shape = Size(tuple(batch_shape))
        cov_shape = tuple(batch_shape + self.event_shape)
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril.expand(cov_shape)
        new.df = self.df.expand(tuple(batch_shape))
        new._batch_dims = [-(x + 1) for x in range(len(batch_shape))]
        for name in ("covariance_matrix", "scale_tril", "precision_matrix"):
            if name in self.__dict__:
                new.__dict__[name] = self.__dict__[name].expand(cov_shape)
        ExponentialFamily.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._dist_chi2 = new._chi2_of(new.df, batch_shape)
        new._validate_args = self._validate_args
        return new

    def _matrix_shape(self):
        return tuple(self._batch_shape + self._event_shape)

    @lazy_property
    def scale_tril(self):
        return self._unbroadcasted_scale_tril.expand(self._matrix_shape())

    @lazy_property
    def covariance_matrix(self):
        L = self._unbroadcasted_scale_tril
        return (L @ L.mT).expand(self._matrix_shape())

    @lazy_property
    def precision_matrix(self):
        L = self._unbroadcasted_scale_tril
        identity = eye(self._event_shape[-1], dtype=L.dtype, device=L.device)
        return cholesky_solve(identity, L).expand(self._matrix_shape())

    def _df_as_matrix(self, value):
        return value.reshape(tuple(self._batch_shape) + (1, 1))

    @property
    def mean(self):
        return self._df_as_matrix(self.df) * self.covariance_matrix

    @property
    def mode(self):
        factor = self.df - self.covariance_matrix.shape[-1] - 1
        factor = where(factor <= 0, math.nan, factor)
        return self._df_as_matrix(factor) * self.covariance_matrix

    @property
    def variance(self):
        V = self.covariance_matrix
        diag_V = V.diagonal(dim1=-2, dim2=-1)
        return self._df_as_matrix(self.df) * (V.pow(2) + diag_V.unsqueeze(-1) * diag_V.unsqueeze(-2))

    def _bartlett_sampling(self, sample_shape=Size()):
        p = self._event_shape[-1]
        shape = tuple(sample_shape) + tuple(self._batch_shape) + (p, p)
        L = self._unbroadcasted_scale_tril
        diag = self._dist_chi2.rsample(sample_shape).sqrt().clamp(min=float(finfo_of(L.dtype).eps))
        noise = diag.diag_embed() + draw("normal", shape, L).tril(-1)
        chol = L @ noise
        return chol @ chol.mT

    def _singular(self, sample):
        """Whether each draw (over the sample dims) is not positive definite in some batch entry."""
        bad = ~self.support.check(sample)
        if self._batch_shape:
            bad = bad.reshape(tuple(bad.shape[: bad.ndim - len(self._batch_shape)]) + (-1,)).any(-1)
        return bad

    def rsample(self, sample_shape=Size(), max_try_correction=None):
        """A draw by Bartlett's decomposition; singular draws (possible when df < p) are drawn
        again up to ``max_try_correction`` times (default 10), with a warning."""
        if max_try_correction is None:
            max_try_correction = 10
        sample_shape = Size(tuple(sample_shape))
        sample = self._bartlett_sampling(sample_shape)
        singular = self._singular(sample)
        if bool(singular._data.any()):
            warnings.warn("Singular sample detected.", stacklevel=2)
            mask_shape = tuple(singular.shape) + (1,) * (len(self._batch_shape) + 2)
            for _ in range(max_try_correction):
                fresh = self._bartlett_sampling(sample_shape)
                sample = where(singular.reshape(mask_shape), fresh, sample)
                singular = self._singular(sample)
                if not bool(singular._data.any()):
                    break
        return sample

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        nu = self.df
        p = self._event_shape[-1]
        L = self._unbroadcasted_scale_tril
        half_log_det = L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return (
            -nu * (p * _LOG_2 / 2 + half_log_det)
            - mvlgamma(nu / 2, p)
            + (nu - p - 1) / 2 * slogdet(value).logabsdet
            - cholesky_solve(value, L).diagonal(dim1=-2, dim2=-1).sum(-1) / 2
        )

    def entropy(self):
        nu = self.df
        p = self._event_shape[-1]
        half_log_det = self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return (
            (p + 1) * (p * _LOG_2 / 2 + half_log_det)
            + mvlgamma(nu / 2, p)
            - (nu - p - 1) / 2 * mvdigamma(nu / 2, p)
            + nu * p / 2
        )

    @property
    def _natural_params(self):
        p = self._event_shape[-1]
        return -self.precision_matrix / 2, (self.df - p - 1) / 2

    def _log_normalizer(self, x, y):
        p = self._event_shape[-1]
        return (y + (p + 1) / 2) * (-slogdet(-2 * x).logabsdet + _LOG_2 * p) + mvlgamma(y + (p + 1) / 2, p)

