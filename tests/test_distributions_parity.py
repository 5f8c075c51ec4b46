"""tinymm.distributions against torch 2.13's surface: every ``torch.distributions.<module>``
path, ExponentialFamily (natural parameters, log-normalisers, the generic entropy and KL),
InverseGamma, LogisticNormal, GeneralizedPareto, Wishart, LKJCholesky, the Cat/Stack/
CorrCholesky transforms, the newer constraints, every ``biject_to``/``transform_to``
registration and the tril utils.

Deterministic quantities and their gradients are compared with PyTorch on the same inputs;
draws (different RNG streams) by moments over seeded samples, and rsample gradients by
recovering each draw's noise and differentiating PyTorch's same expression of it.
"""
from __future__ import annotations

import importlib
import math
import warnings

import numpy as np
import pytest
from helpers import TORCH_REASON

import tinymm as tm
import tinymm.distributions as tmd

torch = pytest.importorskip("torch", reason=TORCH_REASON)
import torch.distributions as td  # noqa: E402

SUBMODULES = (
    "bernoulli beta binomial categorical cauchy chi2 constraint_registry constraints continuous_bernoulli dirichlet "
    "distribution exp_family exponential fishersnedecor gamma generalized_pareto geometric gumbel half_cauchy half_normal "
    "independent inverse_gamma kl kumaraswamy laplace lkj_cholesky log_normal logistic_normal lowrank_multivariate_normal "
    "mixture_same_family multinomial multivariate_normal negative_binomial normal one_hot_categorical pareto poisson "
    "relaxed_bernoulli relaxed_categorical studentT transformed_distribution transforms uniform utils von_mises weibull wishart"
).split()


def _np(x):
    return x.detach().numpy() if hasattr(x, "detach") else np.asarray(x)


def _close(got, want, rtol=1e-7, atol=1e-9, msg=""):
    assert tuple(np.shape(_np(got))) == tuple(np.shape(_np(want))), f"{msg}: shape {np.shape(_np(got))} vs {np.shape(_np(want))}"
    np.testing.assert_allclose(_np(got), _np(want), rtol=rtol, atol=atol, equal_nan=True, err_msg=msg)


# ----------------------------------------------------------------------------- module paths
@pytest.mark.parametrize("name", SUBMODULES)
def test_every_torch_submodule_path_imports_its_names(name):
    tmod = importlib.import_module(f"torch.distributions.{name}")
    mmod = importlib.import_module(f"tinymm.distributions.{name}")
    missing = [n for n in tmod.__all__ if not hasattr(mmod, n)]
    assert not missing, f"tinymm.distributions.{name} lacks {missing}"
    assert set(tmod.__all__) <= set(mmod.__all__)
    assert getattr(tmd, name) is mmod
    for n in tmod.__all__:  # the classes are the package's own, not copies
        if n[:1].isupper() and hasattr(tmd, n) and n != "Constraint":
            assert getattr(mmod, n) is getattr(tmd, n), n


def test_package_all_matches_torch():
    assert set(td.__all__) <= set(tmd.__all__), sorted(set(td.__all__) - set(tmd.__all__))
    ns = {}
    exec("from tinymm.distributions.normal import Normal\nfrom tinymm.distributions.relaxed_bernoulli import RelaxedBernoulli", ns)
    assert ns["Normal"] is tmd.Normal and ns["RelaxedBernoulli"] is tmd.RelaxedBernoulli


# ----------------------------------------------------------------------------- ExponentialFamily
EXPFAM = {
    "Normal": lambda D, T: D.Normal(T.tensor([0.3, -1.0, 2.0]), T.tensor([0.5, 2.0, 1.3])),
    "Exponential": lambda D, T: D.Exponential(T.tensor([0.3, 2.0, 5.0])),
    "Gamma": lambda D, T: D.Gamma(T.tensor([0.3, 2.0, 4.0]), T.tensor([1.5, 0.5, 2.0])),
    "Chi2": lambda D, T: D.Chi2(T.tensor([0.7, 2.0, 6.0])),
    "BernoulliProbs": lambda D, T: D.Bernoulli(probs=T.tensor([0.3, 0.9, 0.5])),
    "BernoulliLogits": lambda D, T: D.Bernoulli(logits=T.tensor([-2.0, 0.4, 3.0])),
    "ContinuousBernoulli": lambda D, T: D.ContinuousBernoulli(probs=T.tensor([0.2, 0.4999, 0.5, 0.7])),
    "Poisson": lambda D, T: D.Poisson(T.tensor([0.5, 3.0, 7.0])),
    "Beta": lambda D, T: D.Beta(T.tensor([0.5, 2.0, 3.0]), T.tensor([1.5, 0.7, 3.0])),
    "Dirichlet": lambda D, T: D.Dirichlet(T.tensor([[0.5, 2.0, 3.0], [1.0, 1.0, 4.0]])),
    "Wishart": lambda D, T: D.Wishart(T.tensor([3.5, 5.0]), covariance_matrix=T.tensor([[2.0, 0.3], [0.3, 1.0]])),
}


def _float64(D, T, build):
    with (torch.no_grad() if T is torch else tm.no_grad()):
        pass
    prev = T.get_default_dtype()
    T.set_default_dtype(T.float64)
    try:
        return build(D, T)
    finally:
        T.set_default_dtype(prev)


@pytest.mark.parametrize("name", sorted(EXPFAM))
def test_exponential_family_natural_params_and_entropy(name):
    d = _float64(tmd, tm, EXPFAM[name])
    t = _float64(td, torch, EXPFAM[name])
    assert isinstance(d, tmd.ExponentialFamily) and isinstance(t, td.ExponentialFamily)
    assert issubclass(type(d), tmd.exp_family.ExponentialFamily)
    for got, want in zip(d._natural_params, t._natural_params, strict=True):
        _close(got, want, msg=f"{name} natural params")
    mp = [tm.tensor(_np(p), requires_grad=True) for p in d._natural_params]
    tp = [torch.tensor(_np(p), requires_grad=True) for p in t._natural_params]
    got, want = d._log_normalizer(*mp), t._log_normalizer(*tp)
    _close(got, want, msg=f"{name} log-normaliser")
    got.sum().backward()
    want.sum().backward()
    for a, b in zip(mp, tp):
        _close(a.grad, b.grad, rtol=1e-6, atol=1e-9, msg=f"{name} ∇F (the mean of the sufficient statistic)")
    has_carrier = name not in ("Poisson", "Beta", "Dirichlet")  # PyTorch defines no carrier-measure mean there
    if not has_carrier:
        with pytest.raises(NotImplementedError):
            td.ExponentialFamily.entropy(t)
        with pytest.raises(NotImplementedError):
            tmd.ExponentialFamily.entropy(d)
        return
    generic = tmd.ExponentialFamily.entropy(d)
    _close(generic, td.ExponentialFamily.entropy(t), rtol=1e-7, atol=1e-9, msg=f"{name} generic entropy vs torch")
    _close(generic, d.entropy(), rtol=1e-6, atol=1e-8, msg=f"{name} generic entropy vs the closed form")
    _close(d.entropy(), t.entropy(), rtol=1e-7, atol=1e-9, msg=f"{name} entropy")
    assert generic.requires_grad  # differentiable in the (detached) natural parameters, as PyTorch's


def test_expfamily_kl_rule_like_torch():
    from tinymm.distributions.kl import _KL_REGISTRY

    assert (tmd.ExponentialFamily, tmd.ExponentialFamily) in _KL_REGISTRY
    rng = np.random.default_rng(0)
    covs = [np.array([[2.0, 0.3], [0.3, 1.0]]), np.array([[1.0, -0.2], [-0.2, 0.5]])]
    dfs = [np.array([3.5, 5.0]), np.array([2.5, 7.0])]
    mods = []
    for D, T in ((tmd, tm), (td, torch)):
        params = [T.tensor(a, requires_grad=True) for a in covs + dfs]
        p = D.Wishart(params[2], covariance_matrix=params[0])
        q = D.Wishart(params[3], covariance_matrix=params[1])
        kl = D.kl_divergence(p, q)
        w = rng.standard_normal(2) if D is tmd else w
        (kl * T.tensor(w)).sum().backward()
        mods.append((kl, params))
    (mk, mp), (tk, tp) = mods
    _close(mk, tk, rtol=1e-7, msg="KL(Wishart‖Wishart)")
    for i, what in ((1, "q.cov"), (3, "q.df")):
        _close(mp[i].grad, tp[i].grad, rtol=1e-6, atol=1e-9, msg=f"KL grad {what}")
    for i in (0, 2):  # p's natural parameters are detached copies there, in both libraries
        assert mp[i].grad is None and tp[i].grad is None
    # a family of its own, with no KL registered: the generic rule, as PyTorch
    for D, T in ((tmd, tm), (td, torch)):
        class Geo(D.Exponential):  # noqa: B903 - a distinct type the pair rule must accept
            pass

        got = D.kl_divergence(Geo(T.tensor([0.5, 2.0], dtype=T.float64)), Geo(T.tensor([1.5, 1.0], dtype=T.float64)))
        want = D.kl_divergence(D.Exponential(T.tensor([0.5, 2.0], dtype=T.float64)), D.Exponential(T.tensor([1.5, 1.0], dtype=T.float64)))
        _close(got, want, rtol=1e-9)
        with pytest.raises(NotImplementedError):
            D.kl_divergence(D.Normal(T.tensor(0.0), T.tensor(1.0)), D.Poisson(T.tensor(1.0)))


def test_kl_ambiguity_warns_like_torch():
    for D in (tmd, td):
        class A(D.Normal):
            pass

        class B(D.Normal):
            pass

        class AA(A):
            pass

        class BB(B):
            pass

        D.register_kl(A, D.Normal)(lambda p, q: "left")
        D.register_kl(D.Normal, B)(lambda p, q: "right")
        with pytest.warns(RuntimeWarning, match="Ambiguous kl_divergence"):
            assert D.kl_divergence(AA(0.0, 1.0), BB(0.0, 1.0)) == "left"
