"""PyTorch's per-distribution module paths: ``from torch.distributions.normal import Normal``,
``torch.distributions.categorical.Categorical``. tinymm groups its distributions by family
(``continuous``, ``discrete``, ``transformed``, ...), so each of PyTorch's module names that has
no file here is made a small module holding the same classes, registered in ``sys.modules``
under ``tinymm.distributions.<name>`` (the import system looks there first) and set as an
attribute of the package. Names whose file already matches PyTorch's (``gamma``,
``independent``, ``multivariate_normal``, ``von_mises``, ...) are left to their files."""
from __future__ import annotations

import sys
import types

# PyTorch's module name -> the classes (its ``__all__``) that tinymm has
TORCH_MODULES = {
    "bernoulli": ("Bernoulli",),
    "beta": ("Beta",),
    "binomial": ("Binomial",),
    "categorical": ("Categorical",),
    "cauchy": ("Cauchy",),
    "chi2": ("Chi2",),
    "dirichlet": ("Dirichlet",),
    "exponential": ("Exponential",),
    "fishersnedecor": ("FisherSnedecor",),
    "geometric": ("Geometric",),
    "gumbel": ("Gumbel",),
    "half_cauchy": ("HalfCauchy",),
    "half_normal": ("HalfNormal",),
    "kumaraswamy": ("Kumaraswamy",),
    "laplace": ("Laplace",),
    "log_normal": ("LogNormal",),
    "mixture_same_family": ("MixtureSameFamily",),
    "multinomial": ("Multinomial",),
    "negative_binomial": ("NegativeBinomial",),
    "normal": ("Normal",),
    "one_hot_categorical": ("OneHotCategorical", "OneHotCategoricalStraightThrough"),
    "pareto": ("Pareto",),
    "poisson": ("Poisson",),
    "relaxed_bernoulli": ("LogitRelaxedBernoulli", "RelaxedBernoulli"),
    "relaxed_categorical": ("ExpRelaxedCategorical", "RelaxedOneHotCategorical"),
    "studentT": ("StudentT",),
    "transformed_distribution": ("TransformedDistribution",),
    "uniform": ("Uniform",),
    "weibull": ("Weibull",),
}


def install(package: types.ModuleType) -> None:
    """Register one module per ``TORCH_MODULES`` entry under ``package`` (already holding the
    classes)."""
    for name, classes in TORCH_MODULES.items():
        full = f"{package.__name__}.{name}"
        module = types.ModuleType(full, f"PyTorch's ``torch.distributions.{name}`` path: {', '.join(classes)}.")
        for cls in classes:
            setattr(module, cls, getattr(package, cls))
        module.__all__ = list(classes)
        module.__package__ = package.__name__
        sys.modules[full] = module
        setattr(package, name, module)
