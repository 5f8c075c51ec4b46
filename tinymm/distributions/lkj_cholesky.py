"""``LKJCholesky(dim, concentration)``: the LKJ distribution over lower Cholesky factors L of
dim × dim correlation matrices, as PyTorch's ``torch.distributions.lkj_cholesky``. The
correlation matrix M = L·Lᵀ has density ∝ det(M)^(η − 1) (η = concentration; η = 1 is
uniform over correlation matrices). With the Jacobian of L ↦ L·Lᵀ, the density of L is

    log p(L) = Σ_{i=2..D} (2(η − 1) + D − i)·log L_ii − log Z(η),
    log Z = ½(D − 1)·log π + log Γ_{D−1}(η + (D − 2)/2) − (D − 1)·log Γ(η + (D − 1)/2)

(Lewandowski, Kurowicka & Joe 2009, p. 1999; Γ_p the multivariate gamma function).

``sample`` is their onion method, vectorised over rows: row i of L is √y_i·u_i with u_i
uniform on the unit sphere of the first i coordinates (a normalised Gaussian) and
y_i ~ Beta(i/2, η + (D − 2)/2 − i/2), the diagonal filling the rest of the unit length. No
rsample (the Beta draws are not reparameterised here, as in PyTorch).
"""
from __future__ import annotations

import math

from tinymm.autograd import no_grad
from tinymm.distributions import constraints
from tinymm.distributions.distribution import Distribution
from tinymm.distributions.gamma import Beta
from tinymm.distributions.utils import broadcast_all, draw, finfo_of
from tinymm.factories import arange
from tinymm.ops import cat, lgamma, mvlgamma
from tinymm.tensor import Size

__all__ = ["LKJCholesky"]


class LKJCholesky(Distribution):
    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky

    def __init__(self, dim: int, concentration=1.0, validate_args=None):
        if dim < 2:
            raise ValueError(f"Expected dim to be an integer greater than or equal to 2. Found dim={dim}.")
        self.dim = dim
        (self.concentration,) = broadcast_all(concentration)
        batch_shape = self.concentration.shape
        event_shape = Size((dim, dim))
        # row i's squared off-diagonal length is Beta(i/2, η + (D − 2)/2 − i/2); row 0 has none
        c = self.concentration
        marginal_conc = c + 0.5 * (self.dim - 2)
        offset = arange(self.dim - 1, dtype=c.dtype, device=c.device)
        offset = cat([offset.new_zeros((1,)), offset])
        self._beta = Beta(offset + 0.5, marginal_conc.unsqueeze(-1) - 0.5 * offset)
        super().__init__(batch_shape, event_shape, validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LKJCholesky, _instance)
        batch_shape = Size(tuple(batch_shape))
        new.dim = self.dim
        new.concentration = self.concentration.expand(tuple(batch_shape))
        new._beta = self._beta.expand(batch_shape + (self.dim,))
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def sample(self, sample_shape=Size()):
        with no_grad():
            y = self._beta.sample(sample_shape).unsqueeze(-1)
            u_normal = draw("normal", self._extended_shape(sample_shape), y).tril(-1)
            norm = u_normal.pow(2).sum(-1, keepdim=True).sqrt()
            # row 0 has no off-diagonal part: 0/0 there becomes 0
            norm = norm.clamp(min=float(finfo_of(y.dtype).tiny))
            w = y.sqrt() * (u_normal / norm)
            diag = (1 - w.pow(2).sum(-1)).clamp(min=float(finfo_of(w.dtype).tiny)).sqrt()
            return w + diag.diag_embed()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        diag_elems = value.diagonal(dim1=-1, dim2=-2)[..., 1:]
        order = arange(2, self.dim + 1, dtype=self.concentration.dtype, device=self.concentration.device)
        order = 2 * (self.concentration - 1).unsqueeze(-1) + self.dim - order
        unnormalized_log_pdf = (order * diag_elems.log()).sum(-1)
        dm1 = self.dim - 1
        alpha = self.concentration + 0.5 * dm1
        denominator = lgamma(alpha) * dm1
        numerator = mvlgamma(alpha - 0.5, dm1)
        # Γ_{D−1}'s own π term is (D − 1)(D − 2)/4·log π; the normaliser needs D(D − 1)/4·log π
        pi_constant = 0.5 * dm1 * math.log(math.pi)
        return unnormalized_log_pdf - (pi_constant + numerator - denominator)
