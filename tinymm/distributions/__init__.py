"""``tinymm.distributions``: probability distributions with PyTorch's API and semantics
(``torch.distributions``): sample / rsample / log_prob / entropy / cdf / icdf, batch and event
shapes, ``expand``, argument validation against ``constraints``, transforms and
``TransformedDistribution``, ``biject_to``/``transform_to``, and ``kl_divergence`` with
``register_kl``.

Draws come from tinymm's global generator, so ``tinymm.manual_seed`` makes them repeatable;
the numbers drawn are not PyTorch's. Everything else (densities, entropies, moments, KLs and
their gradients) matches PyTorch.
"""
from tinymm.distributions import constraints, transforms
from tinymm.distributions.constraint_registry import biject_to, transform_to
from tinymm.distributions.continuous import (
    Cauchy,
    Exponential,
    Laplace,
    Normal,
    Uniform,
)
from tinymm.distributions.continuous_bernoulli import ContinuousBernoulli
from tinymm.distributions.discrete import (
    Bernoulli,
    Binomial,
    Categorical,
    Geometric,
    Multinomial,
    NegativeBinomial,
    OneHotCategorical,
    Poisson,
)
from tinymm.distributions.distribution import Distribution
from tinymm.distributions.gamma import (
    Beta,
    Chi2,
    Dirichlet,
    FisherSnedecor,
    Gamma,
    StudentT,
)
from tinymm.distributions.independent import Independent
from tinymm.distributions.kl import kl_divergence, register_kl
from tinymm.distributions import kl_lowrank  # noqa: F401  (probe8: registers the low-rank Gaussian KL pairs)
from tinymm.distributions.lowrank_multivariate_normal import LowRankMultivariateNormal
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
    Kumaraswamy,
    LogNormal,
    Pareto,
    TransformedDistribution,
    Weibull,
)
from tinymm.distributions.transforms import (
    AbsTransform,
    AffineTransform,
    ComposeTransform,
    CumulativeDistributionTransform,
    ExpTransform,
    IndependentTransform,
    LowerCholeskyTransform,
    PositiveDefiniteTransform,
    PowerTransform,
    ReshapeTransform,
    SigmoidTransform,
    SoftmaxTransform,
    SoftplusTransform,
    StickBreakingTransform,
    TanhTransform,
    Transform,
    identity_transform,
)
from tinymm.distributions.von_mises import VonMises

# probe4: HalfCauchy and OneHotCategoricalStraightThrough
from tinymm.distributions.discrete import OneHotCategoricalStraightThrough  # noqa: E402
from tinymm.distributions.transformed import HalfCauchy  # noqa: E402

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
    "ContinuousBernoulli",
    "CumulativeDistributionTransform",
    "Dirichlet",
    "Distribution",
    "ExpRelaxedCategorical",
    "ExpTransform",
    "Exponential",
    "FisherSnedecor",
    "Gamma",
    "Geometric",
    "Gumbel",
    "HalfNormal",
    "Independent",
    "IndependentTransform",
    "Kumaraswamy",
    "Laplace",
    "LogNormal",
    "LogitRelaxedBernoulli",
    "LowRankMultivariateNormal",
    "LowerCholeskyTransform",
    "MixtureSameFamily",
    "Multinomial",
    "MultivariateNormal",
    "NegativeBinomial",
    "Normal",
    "OneHotCategorical",
    "Pareto",
    "Poisson",
    "PositiveDefiniteTransform",
    "PowerTransform",
    "RelaxedBernoulli",
    "RelaxedOneHotCategorical",
    "ReshapeTransform",
    "SigmoidTransform",
    "SoftmaxTransform",
    "SoftplusTransform",
    "StickBreakingTransform",
    "StudentT",
    "TanhTransform",
    "Transform",
    "TransformedDistribution",
    "Uniform",
    "VonMises",
    "Weibull",
    "biject_to",
    "constraints",
    "identity_transform",
    "kl_divergence",
    "register_kl",
    "transform_to",
    "transforms",
]
__all__ += ["HalfCauchy", "OneHotCategoricalStraightThrough"]  # probe4

# dists: torch 2.13's remaining names (ExponentialFamily, five distributions, three transforms)
# and every torch.distributions.<submodule> path (small re-export modules beside the families)
from tinymm.distributions.exp_family import ExponentialFamily  # noqa: E402
from tinymm.distributions.generalized_pareto import GeneralizedPareto  # noqa: E402
from tinymm.distributions.inverse_gamma import InverseGamma  # noqa: E402
from tinymm.distributions.lkj_cholesky import LKJCholesky  # noqa: E402
from tinymm.distributions.logistic_normal import LogisticNormal  # noqa: E402
from tinymm.distributions.transforms import CatTransform, CorrCholeskyTransform, StackTransform  # noqa: E402
from tinymm.distributions.wishart import Wishart  # noqa: E402
from tinymm.distributions import (  # noqa: E402
    bernoulli,
    beta,
    binomial,
    categorical,
    cauchy,
    chi2,
    constraint_registry,
    continuous_bernoulli,
    dirichlet,
    distribution,
    exp_family,
    exponential,
    fishersnedecor,
    gamma,
    generalized_pareto,
    geometric,
    gumbel,
    half_cauchy,
    half_normal,
    independent,
    inverse_gamma,
    kl,
    kumaraswamy,
    laplace,
    lkj_cholesky,
    log_normal,
    logistic_normal,
    lowrank_multivariate_normal,
    mixture_same_family,
    multinomial,
    multivariate_normal,
    negative_binomial,
    normal,
    one_hot_categorical,
    pareto,
    poisson,
    relaxed_bernoulli,
    relaxed_categorical,
    studentT,
    transformed_distribution,
    uniform,
    utils,
    von_mises,
    weibull,
    wishart,
)

__all__ += [  # dists
    "CatTransform",
    "CorrCholeskyTransform",
    "ExponentialFamily",
    "GeneralizedPareto",
    "InverseGamma",
    "LKJCholesky",
    "LogisticNormal",
    "StackTransform",
    "Wishart",
]
