"""The Gamma family: Gamma, Chi2, Beta, Dirichlet, and StudentT (a Normal over a Chi2 scale).

Reparameterised Gamma draws (implicit reparameterisation, Figurnov et al. 2018). A draw
x ~ Gamma(α, 1) is x = F⁻¹(u; α) for u ~ U(0, 1) and F(x; α) = P(α, x), the regularised lower
incomplete gamma function. Holding u fixed and differentiating F(x(α); α) = u gives

    dx/dα = −(∂F/∂α)(x; α) / f(x; α),   f(x; α) = x^(α−1)·e^(−x)/Γ(α),

so only ∂F/∂α at the drawn x is needed, never F⁻¹. Here ∂F/∂α is a central difference of
``scipy.special.gammainc`` in α, in float64 with step 1e-5·α (truncation ~1e-10 relative),
taken on whichever tail, P or Q = 1 − P, is smaller so that it keeps its relative precision.
PyTorch computes the same derivative with series/asymptotic approximations, so per-draw
gradients agree to those approximations' accuracy, not bit for bit.

Dirichlet draws are normalised Gamma draws, G_i/ΣG, and Beta(a, b) is the first coordinate
of Dirichlet((a, b)); their gradients are the pathwise derivative of that normalisation over
the implicit Gamma gradients — a valid reparameterisation gradient (unbiased for
d/dα E[f(x)]), though per draw not the same numbers as PyTorch's, which differentiates the
Beta marginal CDF instead.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from tinymm import backend
from tinymm.autograd import Function
from tinymm.distributions import constraints
from tinymm.distributions.distribution import Distribution
from tinymm.distributions.exp_family import ExponentialFamily
from tinymm.distributions.utils import (
    as_float_tensor,
    batch_shape_of,
    broadcast_all,
    draw,
    finfo_of,
    xlogy,
)
from tinymm.factories import tensor
from tinymm.nn.functional import one_hot
from tinymm.ops import digamma, lgamma, stack, where
from tinymm.ops._util import xp_of
from tinymm.ops.special import special_of
from tinymm.tensor import Size, Tensor

__all__ = ["Beta", "Chi2", "Dirichlet", "FisherSnedecor", "Gamma", "StudentT", "standard_gamma", "standard_gamma_grad"]


def standard_gamma_grad(x, alpha):
    """dx/dα of a Gamma(α, 1) draw x at fixed uniform noise (the module docstring), as an
    array in ``x``'s dtype, computed in float64."""
    xp = xp_of(x)
    sp = special_of(x)
    x64 = x.astype(np.float64)
    a64 = alpha.astype(np.float64)
    h = 1e-5 * a64
    lower = sp.gammainc(a64, x64) <= 0.5
    d_lower = (sp.gammainc(a64 + h, x64) - sp.gammainc(a64 - h, x64)) / (2 * h)
    d_upper = (sp.gammaincc(a64 + h, x64) - sp.gammaincc(a64 - h, x64)) / (2 * h)
    dF = xp.where(lower, d_lower, -d_upper)
    log_pdf = (a64 - 1) * xp.log(x64) - x64 - sp.gammaln(a64)
    return (-dF * xp.exp(-log_pdf)).astype(x.dtype)


class StandardGamma(Function):
    """x ~ Gamma(alpha, 1), elementwise, from tinymm's generator; backward: implicit gradient.
    Saves the draw and alpha."""

    @staticmethod
    def forward(ctx, alpha):
        rng = backend.rng("cpu" if xp_of(alpha) is np else "cuda")
        tiny = finfo_of(alpha.dtype).tiny
        x = rng.standard_gamma(alpha.astype(np.float64))
        x = xp_of(alpha).maximum(x, tiny).astype(alpha.dtype)
        ctx.save_for_backward(x, alpha)
        return x

    @staticmethod
    def backward(ctx, g):
        x, alpha = ctx.saved_arrays
        return g * standard_gamma_grad(x, alpha)


def standard_gamma(concentration: Tensor) -> Tensor:
    """Gamma(concentration, 1) draws of concentration's shape, differentiable in concentration."""
    return StandardGamma.apply(concentration)


class RegularizedGammaP(Function):
    """P(a, x) = γ(a, x)/Γ(a); differentiable in x only (∂/∂x = x^(a−1)e^(−x)/Γ(a)), as
    PyTorch's gammainc, which raises for a gradient in a."""

    @staticmethod
    def forward(ctx, a, x):
        ctx.save_for_backward(a, x)
        return special_of(x).gammainc(a, x).astype(x.dtype)

    @staticmethod
    def backward(ctx, g):
        a, x = ctx.saved_arrays
        if ctx.needs_input_grad[0]:
            raise RuntimeError("the derivative for 'input' (the concentration of gammainc) is not implemented.")
        xp = xp_of(x)
        sp = special_of(x)
        with np.errstate(all="ignore"):
            dx = xp.exp((a - 1) * xp.log(x) - x - sp.gammaln(a))
        return None, (g * dx).astype(g.dtype)


class Gamma(ExponentialFamily):
    """Gamma(concentration, rate): density rate^c·x^(c−1)·e^(−rate·x)/Γ(c) on x > 0;
    θ = (c − 1, −rate), F(θ) = log Γ(θ₁ + 1) + (θ₁ + 1)·log(−1/θ₂)."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True
    _mean_carrier_measure = 0

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        super().__init__(batch_shape_of((concentration, rate), self.rate), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Gamma, _instance)
        batch_shape = Size(tuple(batch_shape))
        new.concentration = self.concentration.expand(batch_shape)
        new.rate = self.rate.expand(batch_shape)
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self):
        return self.concentration / self.rate

    @property
    def mode(self):
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self):
        return self.concentration / self.rate.pow(2)

    def rsample(self, sample_shape=Size()):
        shape = self._extended_shape(sample_shape)
        value = standard_gamma(self.concentration.expand(shape)) / self.rate.expand(shape)
        tiny = finfo_of(value.dtype).tiny
        value._data[...] = xp_of(value._data).maximum(value._data, tiny)  # no gradient through the clamp, as PyTorch
        return value

    def log_prob(self, value):
        value = as_float_tensor(value, self.rate)
        if self._validate_args:
            self._validate_sample(value)
        c, r = self.concentration, self.rate
        return xlogy(c, r) + xlogy(c - 1, value) - r * value - lgamma(c)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        c, x = broadcast_all(self.concentration, self.rate * value)
        return RegularizedGammaP.apply(c, x)

    def entropy(self):
        c = self.concentration
        return c - self.rate.log() + lgamma(c) + (1.0 - c) * digamma(c)

    @property
    def _natural_params(self):
        return (self.concentration - 1, -self.rate)

    def _log_normalizer(self, x, y):
        return lgamma(x + 1) + (x + 1) * (-y.reciprocal()).log()


class Chi2(Gamma):
    """χ²(df) = Gamma(df/2, 1/2)."""

    arg_constraints = {"df": constraints.positive}

    def __init__(self, df, validate_args=None):
        super().__init__(0.5 * df, 0.5, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Chi2, _instance)
        return Gamma.expand(self, batch_shape, new)

    @property
    def df(self):
        return self.concentration * 2

    def __repr__(self):
        return f"Chi2(df: {self.df if self.df.numel() == 1 else self.df.shape})"


class Dirichlet(ExponentialFamily):
    """Dirichlet(concentration) on the probability simplex; concentration is (..., k).
    θ = concentration, F(θ) = Σ log Γ(θ_i) − log Γ(Σ θ_i) (no carrier-measure mean, as PyTorch)."""

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration, validate_args=None):
        if concentration.dim() < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        super().__init__(concentration.shape[:-1], concentration.shape[-1:], validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Dirichlet, _instance)
        batch_shape = Size(tuple(batch_shape))
        new.concentration = self.concentration.expand(batch_shape + self.event_shape)
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def rsample(self, sample_shape=Size()):
        shape = self._extended_shape(sample_shape)
        g = standard_gamma(self.concentration.expand(shape))
        return g / g.sum(-1, keepdim=True)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        c = self.concentration
        return xlogy(c - 1.0, value).sum(-1) + lgamma(c.sum(-1)) - lgamma(c).sum(-1)

    @property
    def mean(self):
        return self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def mode(self):
        cm1 = (self.concentration - 1).clamp(min=0.0)
        with np.errstate(invalid="ignore"):
            mode = cm1 / cm1.sum(-1, keepdim=True)
        # all concentrations below 1: PyTorch puts the mode at the argmax of that (all-NaN) row
        corner = one_hot(mode.argmax(-1), cm1.shape[-1]).type_as(mode)
        mask = (self.concentration < 1).all(-1, keepdim=True)
        return where(mask, corner, mode)

    @property
    def variance(self):
        c0 = self.concentration.sum(-1, keepdim=True)
        return self.concentration * (c0 - self.concentration) / (c0.pow(2) * (c0 + 1))

    def entropy(self):
        c = self.concentration
        k = c.shape[-1]
        a0 = c.sum(-1)
        return lgamma(c).sum(-1) - lgamma(a0) - (k - a0) * digamma(a0) - ((c - 1.0) * digamma(c)).sum(-1)

    @property
    def _natural_params(self):
        return (self.concentration,)

    def _log_normalizer(self, x):
        return lgamma(x).sum(-1) - lgamma(x.sum(-1))


class Beta(ExponentialFamily):
    """Beta(concentration1, concentration0) on [0, 1]: density ∝ x^(c1−1)(1 − x)^(c0−1);
    θ = (c1, c0), F(θ) = log B(θ₁, θ₂) (no carrier-measure mean, as PyTorch)."""

    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        if isinstance(concentration1, numbers.Real) and isinstance(concentration0, numbers.Real):
            c10 = tensor([float(concentration1), float(concentration0)])
        else:
            c1, c0 = broadcast_all(concentration1, concentration0)
            c10 = stack([c1, c0], -1)
        self._dirichlet = Dirichlet(c10, validate_args=validate_args)
        super().__init__(self._dirichlet._batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Beta, _instance)
        batch_shape = Size(tuple(batch_shape))
        new._dirichlet = self._dirichlet.expand(batch_shape)
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def concentration1(self):
        return self._dirichlet.concentration[..., 0]

    @property
    def concentration0(self):
        return self._dirichlet.concentration[..., 1]

    @property
    def mean(self):
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self):
        return self._dirichlet.mode[..., 0]

    @property
    def variance(self):
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total.pow(2) * (total + 1))

    def rsample(self, sample_shape=Size()):
        return self._dirichlet.rsample(sample_shape)[..., 0]

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self._dirichlet.log_prob(stack([value, 1.0 - value], -1))

    def entropy(self):
        return self._dirichlet.entropy()

    @property
    def _natural_params(self):
        return (self.concentration1, self.concentration0)

    def _log_normalizer(self, x, y):
        return lgamma(x) + lgamma(y) - lgamma(x + y)

    def __repr__(self):
        return f"Beta(concentration1: {self._show(self.concentration1)}, concentration0: {self._show(self.concentration0)})"

    @staticmethod
    def _show(t):
        return t if t.numel() == 1 else t.shape


class StudentT(Distribution):
    """Student's t with ``df`` degrees of freedom, shifted by loc and scaled by scale."""

    arg_constraints = {"df": constraints.positive, "loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None):
        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        self._chi2 = Chi2(self.df)
        super().__init__(self.df.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(StudentT, _instance)
        batch_shape = Size(tuple(batch_shape))
        new.df = self.df.expand(batch_shape)
        new.loc = self.loc.expand(batch_shape)
        new.scale = self.scale.expand(batch_shape)
        new._chi2 = self._chi2.expand(batch_shape)
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self):
        return where(self.df <= 1, float("nan"), self.loc)

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        df, scale = self.df, self.scale
        with np.errstate(all="ignore"):
            finite = scale.pow(2) * df / (df - 2)
        m = where(df > 2, finite, where(df > 1, float("inf"), float("nan")))
        return m.type_as(df)

    def rsample(self, sample_shape=Size()):
        shape = self._extended_shape(sample_shape)
        x = draw("normal", shape, self.df)
        z = self._chi2.rsample(sample_shape)
        y = x * (z / self.df).rsqrt()
        return self.loc + self.scale * y

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        df = self.df
        y = (value - self.loc) / self.scale
        z = self.scale.log() + 0.5 * df.log() + 0.5 * math.log(math.pi) + lgamma(0.5 * df) - lgamma(0.5 * (df + 1.0))
        return -0.5 * (df + 1.0) * (y**2.0 / df).log1p() - z

    def entropy(self):
        df = self.df
        lbeta = lgamma(0.5 * df) + math.lgamma(0.5) - lgamma(0.5 * (df + 1))
        return (
            self.scale.log()
            + 0.5 * (df + 1) * (digamma(0.5 * (df + 1)) - digamma(0.5 * df))
            + 0.5 * df.log()
            + lbeta
        )


class FisherSnedecor(Distribution):
    """F(df1, df2): (X1/df1)/(X2/df2) for independent X_i ~ χ²(df_i), i.e. the ratio of
    Gamma(df_i/2, df_i/2) draws; rsample differentiates through both."""

    arg_constraints = {"df1": constraints.positive, "df2": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, df1, df2, validate_args=None):
        self.df1, self.df2 = broadcast_all(df1, df2)
        self._gamma1 = Gamma(self.df1 * 0.5, self.df1)
        self._gamma2 = Gamma(self.df2 * 0.5, self.df2)
        super().__init__(batch_shape_of((df1, df2), self.df1), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(FisherSnedecor, _instance)
        batch_shape = Size(tuple(batch_shape))
        new.df1 = self.df1.expand(batch_shape)
        new.df2 = self.df2.expand(batch_shape)
        new._gamma1 = self._gamma1.expand(batch_shape)
        new._gamma2 = self._gamma2.expand(batch_shape)
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self):
        df2 = where(self.df2 <= 2, float("nan"), self.df2)
        return df2 / (df2 - 2)

    @property
    def mode(self):
        mode = (self.df1 - 2) / self.df1 * self.df2 / (self.df2 + 2)
        return where(self.df1 <= 2, float("nan"), mode)

    @property
    def variance(self):
        df2 = where(self.df2 <= 4, float("nan"), self.df2)
        return 2 * df2.pow(2) * (self.df1 + df2 - 2) / (self.df1 * (df2 - 2).pow(2) * (df2 - 4))

    def rsample(self, sample_shape=Size()):
        shape = tuple(self._extended_shape(sample_shape))
        tiny = float(finfo_of(self.df1.dtype).tiny)
        x1 = self._gamma1.rsample(sample_shape).reshape(shape)
        x2 = self._gamma2.rsample(sample_shape).reshape(shape)
        y = x1 / x2
        y._data[...] = xp_of(y._data).maximum(y._data, tiny)  # no gradient through the clamp, as PyTorch
        return y

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        ct1 = self.df1 * 0.5
        ct2 = self.df2 * 0.5
        ct3 = self.df1 / self.df2
        t1 = (ct1 + ct2).lgamma() - ct1.lgamma() - ct2.lgamma()
        t2 = ct1 * ct3.log() + (ct1 - 1) * value.log()
        t3 = (ct1 + ct2) * (ct3 * value).log1p()
        return t1 + t2 - t3
