"""``tinymm.distributions``: probability distributions with PyTorch's API and semantics
(``torch.distributions``): sample / rsample / log_prob / entropy / cdf / icdf, batch and event
shapes, ``expand``, argument validation against ``constraints``, transforms and
``TransformedDistribution``, and ``kl_divergence`` with ``register_kl``.

Draws come from tinymm's global generator, so ``tinymm.manual_seed`` makes them repeatable;
the numbers drawn are not PyTorch's. Everything else (densities, entropies, moments, KLs and
their gradients) matches PyTorch.
"""
from tinymm.distributions import constraints, transforms
from tinymm.distributions.continuous import (
    Cauchy,
    Exponential,
    Laplace,
    Normal,
    Uniform,
)
from tinymm.distributions.discrete import (
    Bernoulli,
    Binomial,
    Categorical,
    Geometric,
    Multinomial,
    OneHotCategorical,
    Poisson,
)
from tinymm.distributions.distribution import Distribution
from tinymm.distributions.gamma import Beta, Chi2, Dirichlet, Gamma, StudentT
from tinymm.distributions.independent import Independent
from tinymm.distributions.kl import kl_divergence, register_kl
from tinymm.distributions.mixture import MixtureSameFamily
from tinymm.distributions.multivariate_normal import MultivariateNormal
from tinymm.distributions.relaxed import (
    ExpRelaxedCategorical,
    LogitRelaxedBernoulli,
    RelaxedBernoulli,
    RelaxedOneHotCategorical,
)
from tinymm.distributions.transformed import (
    Gumbel,
    HalfNormal,
    LogNormal,
    TransformedDistribution,
)
from tinymm.distributions.transforms import (
    AbsTransform,
    AffineTransform,
    ComposeTransform,
    ExpTransform,
    IndependentTransform,
    PowerTransform,
    SigmoidTransform,
    SoftmaxTransform,
    TanhTransform,
    Transform,
    identity_transform,
)

__all__ = [
    "AbsTransform",
    "AffineTransform",
    "Bernoulli",
    "Beta",
    "Binomial",
    "Categorical",
    "Cauchy",
    "Chi2",
    "ComposeTransform",
    "Dirichlet",
    "Distribution",
    "ExpRelaxedCategorical",
    "ExpTransform",
    "Exponential",
    "Gamma",
    "Geometric",
    "Gumbel",
    "HalfNormal",
    "Independent",
    "IndependentTransform",
    "Laplace",
    "LogNormal",
    "LogitRelaxedBernoulli",
    "MixtureSameFamily",
    "Multinomial",
    "MultivariateNormal",
    "Normal",
    "OneHotCategorical",
    "Poisson",
    "PowerTransform",
    "RelaxedBernoulli",
    "RelaxedOneHotCategorical",
    "SigmoidTransform",
    "SoftmaxTransform",
    "StudentT",
    "TanhTransform",
    "Transform",
    "TransformedDistribution",
    "Uniform",
    "constraints",
    "identity_transform",
    "kl_divergence",
    "register_kl",
    "transforms",
]
