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

# probe5: PyTorch's per-distribution module paths (torch.distributions.categorical, .normal, ...)
import sys  # noqa: E402

from tinymm.distributions import module_paths as _module_paths  # noqa: E402

_module_paths.install(sys.modules[__name__])
