"""tinymm.distributions against torch.distributions.

Deterministic quantities (log_prob, entropy, cdf, icdf, mean, mode, variance, stddev, KL,
log-det-Jacobians), their gradients w.r.t. the parameters, batch/event shapes under
broadcasting and ``expand`` are compared with PyTorch on the same inputs, in float32 and
float64. Draws are not PyTorch's numbers, so samples are checked by their statistics over
many seeded draws (deterministic: the seed is fixed), and rsample by its reparameterisation
identity and its gradients. Validation errors are compared by exception class.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import TORCH_REASON

import tinymm as tm
import tinymm.distributions as tmd

torch = pytest.importorskip("torch", reason=TORCH_REASON)
import torch.distributions as td  # noqa: E402

DTYPES = ["float32", "float64"]
TOL = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-7, atol=1e-9)}



# ----------------------------------------------------------------------------- inputs
def _rng(seed=0):
    return np.random.default_rng(seed)


def U(shape, low, high):
    return ("uniform", shape, low, high)


def _make(spec, rng, dtype):
    if isinstance(spec, np.ndarray):
        return spec.astype(dtype)
    kind, shape, low, high = spec
    return rng.uniform(low, high, size=shape).astype(dtype)


def _lower_cholesky(rng, batch, n):
    a = np.tril(rng.uniform(-0.5, 0.5, size=batch + (n, n)))
    idx = np.arange(n)
    a[..., idx, idx] = rng.uniform(0.5, 1.5, size=batch + (n,))
    return a


def _spd(rng, batch, n):
    m = rng.uniform(-1, 1, size=batch + (n, n))
    return m @ np.swapaxes(m, -1, -2) + n * np.eye(n)


# Each case: name, builder (D, *params) -> distribution (D is torch.distributions or
# tinymm.distributions), parameter specs, value sampler (rng, batch+event shape) -> array,
# and the parameters (by position) that a cdf gradient may flow to.
def _simplex(rng, shape):
    p = rng.uniform(0.1, 1.0, size=shape)
    return p / p.sum(-1, keepdims=True)


def _onehot(rng, shape):
    k = shape[-1]
    return np.eye(k)[rng.integers(0, k, size=shape[:-1])]


def _relaxed(D, name):
    """PyTorch keeps the logit-space relaxed bases in submodules; tinymm also exports them."""
    if D is td:
        return getattr(td.relaxed_bernoulli if "Bernoulli" in name else td.relaxed_categorical, name)
    return getattr(D, name)


CASES = {
    "Normal": (lambda D, a, b: D.Normal(a, b), [U((3, 1), -2, 2), U((4,), 0.5, 2)], lambda r, s: r.normal(size=s)),
    "Uniform": (lambda D, a, b: D.Uniform(a, b), [U((3,), -2, -1), U((2, 3), 1, 2)], lambda r, s: r.uniform(-0.9, 0.9, size=s)),
    "Laplace": (lambda D, a, b: D.Laplace(a, b), [U((3,), -1, 1), U((2, 3), 0.5, 2)], lambda r, s: r.normal(size=s)),
    "Cauchy": (lambda D, a, b: D.Cauchy(a, b), [U((3,), -1, 1), U((3,), 0.5, 2)], lambda r, s: r.normal(size=s)),
    "Exponential": (lambda D, a: D.Exponential(a), [U((2, 3), 0.5, 2)], lambda r, s: r.uniform(0.1, 3, size=s)),
    "StudentT": (lambda D, a, b, c: D.StudentT(a, b, c), [np.array([0.8, 1.5, 3.0, 6.0]), U((4,), -1, 1), U((4,), 0.5, 2)],
                 lambda r, s: r.normal(size=s)),
    "Gamma": (lambda D, a, b: D.Gamma(a, b), [U((4,), 0.5, 3), U((2, 1), 0.5, 2)], lambda r, s: r.uniform(0.1, 4, size=s), [1]),
    "Chi2": (lambda D, a: D.Chi2(a), [U((3,), 0.5, 5)], lambda r, s: r.uniform(0.1, 4, size=s), []),
    "Beta": (lambda D, a, b: D.Beta(a, b), [U((3,), 0.5, 3), U((2, 3), 0.5, 3)], lambda r, s: r.uniform(0.05, 0.95, size=s)),
    "Dirichlet": (lambda D, a: D.Dirichlet(a), [U((2, 4), 0.5, 3)], _simplex),
    "LogNormal": (lambda D, a, b: D.LogNormal(a, b), [U((3,), -1, 1), U((3,), 0.5, 1.5)], lambda r, s: r.uniform(0.1, 4, size=s)),
    "HalfNormal": (lambda D, a: D.HalfNormal(a), [U((3,), 0.5, 2)], lambda r, s: r.uniform(0.0, 3, size=s)),
    "Gumbel": (lambda D, a, b: D.Gumbel(a, b), [U((3,), -1, 1), U((3,), 0.5, 2)], lambda r, s: r.normal(size=s)),
    "BernoulliProbs": (lambda D, p: D.Bernoulli(probs=p), [U((3, 4), 0.1, 0.9)], lambda r, s: r.integers(0, 2, size=s)),
    "BernoulliLogits": (lambda D, p: D.Bernoulli(logits=p), [U((3, 4), -2, 2)], lambda r, s: r.integers(0, 2, size=s)),
    "CategoricalProbs": (lambda D, p: D.Categorical(probs=p), [U((2, 3, 5), 0.1, 1)], lambda r, s: r.integers(0, 5, size=s)),
    "CategoricalLogits": (lambda D, p: D.Categorical(logits=p), [U((3, 5), -2, 2)], lambda r, s: r.integers(0, 5, size=s)),
    "OneHotCategorical": (lambda D, p: D.OneHotCategorical(probs=p), [U((3, 4), 0.1, 1)], _onehot),
    "BinomialProbs": (lambda D, p: D.Binomial(5, probs=p), [U((3,), 0.1, 0.9)], lambda r, s: r.integers(0, 6, size=s)),
    "BinomialLogits": (lambda D, n, p: D.Binomial(n, logits=p), [np.array([3.0, 4.0, 7.0]), U((2, 3), -2, 2)],
                       lambda r, s: r.integers(0, 4, size=s)),
    "Multinomial": (lambda D, p: D.Multinomial(6, probs=p), [U((2, 4), 0.1, 1)],
                    lambda r, s: r.multinomial(6, [0.25] * s[-1], size=s[:-1])),
    "Geometric": (lambda D, p: D.Geometric(probs=p), [U((4,), 0.2, 0.9)], lambda r, s: r.integers(0, 6, size=s)),
    "GeometricLogits": (lambda D, p: D.Geometric(logits=p), [U((4,), -1, 1)], lambda r, s: r.integers(0, 6, size=s)),
    "Poisson": (lambda D, p: D.Poisson(p), [U((2, 3), 0.5, 5)], lambda r, s: r.integers(0, 8, size=s)),
    "MVNScaleTril": (lambda D, m, L: D.MultivariateNormal(m, scale_tril=L), [U((2, 3), -1, 1), _lower_cholesky(_rng(5), (), 3)],
                     lambda r, s: r.normal(size=s)),
    "MVNCovariance": (lambda D, m, S: D.MultivariateNormal(m, covariance_matrix=S), [U((3,), -1, 1), _spd(_rng(6), (2,), 3)],
                      lambda r, s: r.normal(size=s)),
    "MVNPrecision": (lambda D, m, P: D.MultivariateNormal(m, precision_matrix=P), [U((2, 3), -1, 1), _spd(_rng(7), (), 3)],
                     lambda r, s: r.normal(size=s)),
    "Independent": (lambda D, a, b: D.Independent(D.Normal(a, b), 1), [U((3, 4), -1, 1), U((3, 4), 0.5, 2)],
                    lambda r, s: r.normal(size=s)),
    "TanhNormal": (lambda D, a, b: D.TransformedDistribution(D.Normal(a, b), [D.transforms.TanhTransform()]),
                   [U((3,), -1, 1), U((3,), 0.5, 1.5)], lambda r, s: r.uniform(-0.95, 0.95, size=s)),
    "AffineExpNormal": (lambda D, a, b: D.TransformedDistribution(
        D.Normal(a, b), [D.transforms.AffineTransform(0.5, 2.0), D.transforms.ExpTransform()]),
        [U((3,), -1, 1), U((3,), 0.5, 1.5)], lambda r, s: r.uniform(0.2, 4, size=s)),
    "SigmoidAffineNormal": (lambda D, a, b: D.TransformedDistribution(
        D.Normal(a, b), D.transforms.ComposeTransform([D.transforms.AffineTransform(a, -b), D.transforms.SigmoidTransform()]).parts),
        [U((3,), -1, 1), U((3,), 0.5, 1.5)], lambda r, s: r.uniform(0.05, 0.95, size=s)),
    "RelaxedBernoulli": (lambda D, t, p: D.RelaxedBernoulli(t, logits=p), [U((1,), 0.3, 2), U((3,), -1, 1)],
                         lambda r, s: r.uniform(0.05, 0.95, size=s)),
    "RelaxedOneHotCategorical": (lambda D, t, p: D.RelaxedOneHotCategorical(t, probs=p), [U((2, 1), 0.3, 2), U((2, 4), 0.1, 1)],
                                 _simplex),
    "MixtureNormal": (lambda D, w, m, s: D.MixtureSameFamily(D.Categorical(logits=w), D.Normal(m, s)),
                      [U((2, 3), -1, 1), U((2, 3), -2, 2), U((3,), 0.5, 2)], lambda r, s: r.normal(size=s)),
    "MixtureIndependent": (lambda D, w, m, s: D.MixtureSameFamily(D.Categorical(probs=w), D.Independent(D.Normal(m, s), 1)),
                           [U((3,), 0.1, 1), U((3, 2), -2, 2), U((3, 2), 0.5, 2)], lambda r, s: r.normal(size=s)),
    "Weibull": (lambda D, a, b: D.Weibull(a, b), [U((3,), 0.5, 2), U((2, 3), 0.7, 3)], lambda r, s: r.uniform(0.1, 3, size=s)),
    "Pareto": (lambda D, a, b: D.Pareto(a, b), [U((3,), 0.5, 1), U((3,), 4.5, 6)], lambda r, s: r.uniform(1.1, 4, size=s)),
    "Kumaraswamy": (lambda D, a, b: D.Kumaraswamy(a, b), [np.array([0.7, 1.5, 3.0]), U((2, 3), 0.5, 3)],
                    lambda r, s: r.uniform(0.05, 0.95, size=s)),
    "NegativeBinomialProbs": (lambda D, n, p: D.NegativeBinomial(n, probs=p), [U((3,), 0.5, 5), U((2, 3), 0.1, 0.8)],
                              lambda r, s: r.integers(0, 8, size=s)),
    "NegativeBinomialLogits": (lambda D, n, p: D.NegativeBinomial(n, logits=p), [U((3,), 0.5, 5), U((3,), -2, 1)],
                               lambda r, s: r.integers(0, 8, size=s)),
    "FisherSnedecor": (lambda D, a, b: D.FisherSnedecor(a, b), [np.array([1.5, 3.0, 5.0, 8.0]), np.array([3.0, 4.5, 10.0, 12.0])],
                       lambda r, s: r.uniform(0.1, 4, size=s)),
    "ContinuousBernoulli": (lambda D, p: D.ContinuousBernoulli(probs=p), [np.array([0.1, 0.4995, 0.5, 0.5008, 0.8])],
                            lambda r, s: r.uniform(0.02, 0.98, size=s)),
    "ContinuousBernoulliLogits": (lambda D, p: D.ContinuousBernoulli(logits=p), [U((2, 3), -3, 3)],
                                  lambda r, s: r.uniform(0.02, 0.98, size=s)),
    "LogitRelaxedBernoulli": (lambda D, t, p: _relaxed(D, "LogitRelaxedBernoulli")(t, probs=p), [U((1,), 0.3, 2), U((3,), 0.2, 0.8)],
                              lambda r, s: r.normal(size=s)),
    "ExpRelaxedCategorical": (lambda D, t, p: _relaxed(D, "ExpRelaxedCategorical")(t, logits=p), [U((1,), 0.3, 2), U((2, 4), -1, 1)],
                              lambda r, s: np.log(_simplex(r, s))),
    "LowRankMVN": (lambda D, m, W, d: D.LowRankMultivariateNormal(m, W, d), [U((2, 4), -1, 1), U((4, 2), -1, 1), U((2, 4), 0.5, 2)],
                   lambda r, s: r.normal(size=s)),
    "VonMises": (lambda D, a, b: D.VonMises(a, b), [U((3,), -2, 2), np.array([0.5, 2.0, 20.0])], lambda r, s: r.uniform(-3, 3, size=s)),
}

METHODS = ["log_prob", "entropy", "cdf", "icdf", "mean", "mode", "variance", "stddev"]


def _build(name, dtype, seed=0):
    builder, specs, value_fn, *rest = CASES[name]
    rng = _rng(seed)
    arrays = [_make(s, rng, dtype) for s in specs]
    tm_params = [tm.tensor(a, requires_grad=True) for a in arrays]
    t_params = [torch.tensor(a, requires_grad=True) for a in arrays]
    return builder, arrays, tm_params, t_params, value_fn, (rest[0] if rest else None)


def _call(dist, method, arg):
    value = getattr(dist, method)  # a property (mean, variance, ...) or a method
    if not callable(value):
        return value
    return value(arg) if method in ("log_prob", "cdf", "icdf") else value()


def _outcome(fn):
    try:
        return fn(), None
    except NotImplementedError as e:
        return None, e


def _to_np(x):
    return x.detach().numpy() if hasattr(x, "detach") else np.asarray(x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name, dtype):
    """Shapes, every deterministic method and its parameter gradients, as PyTorch."""
    builder, arrays, tm_params, t_params, value_fn, cdf_grad = _build(name, dtype)
    d = builder(tmd, *tm_params)
    t = builder(td, *t_params)
    assert tuple(d.batch_shape) == tuple(t.batch_shape) and tuple(d.event_shape) == tuple(t.event_shape)
    assert d.has_rsample == t.has_rsample
    full = tuple(t.batch_shape) + tuple(t.event_shape)
    rng = _rng(1)
    value = value_fn(rng, full).astype(dtype)
    q = rng.uniform(0.05, 0.95, size=tuple(t.batch_shape)).astype(dtype)
    for method in METHODS:
        arg = q if method == "icdf" else value
        want, t_err = _outcome(lambda: _call(t, method, torch.tensor(arg)))
        got, tm_err = _outcome(lambda: _call(d, method, tm.tensor(arg)))
        if t_err is not None:
            assert tm_err is not None, f"{name}.{method}: torch raises NotImplementedError, tinymm returned a value"
            continue
        assert tm_err is None, f"{name}.{method}: {tm_err!r}"
        assert tuple(got.shape) == tuple(want.shape), f"{name}.{method}: shape {got.shape} vs {tuple(want.shape)}"
        assert str(got.dtype) == str(want.dtype).replace("torch.", "tinymm."), f"{name}.{method}: dtype {got.dtype} vs {want.dtype}"
        tol = TOL[dtype] if name != "VonMises" else dict(rtol=2e-6, atol=2e-6)
        np.testing.assert_allclose(_to_np(got), _to_np(want), err_msg=f"{name}.{method}", equal_nan=True, **tol)
        if not want.requires_grad:
            continue
        grad_to = range(len(arrays)) if method != "cdf" or cdf_grad is None else cdf_grad
        if not grad_to:
            continue
        w = rng.standard_normal(tuple(want.shape)).astype(dtype)
        finite = np.isfinite(_to_np(want))
        w = np.where(finite, w, 0).astype(dtype)
        t_in = [t_params[i] for i in grad_to]
        tm_in = [tm_params[i] for i in grad_to]
        if len(grad_to) < len(arrays):  # a parameter PyTorch gives no gradient for (Gamma.cdf's concentration)
            got = _call(builder(tmd, *[p if i in grad_to else p.detach() for i, p in enumerate(tm_params)]), method, tm.tensor(arg))
        t_grads = torch.autograd.grad(torch.where(torch.tensor(finite), want, 0).mul(torch.tensor(w)).sum(), t_in,
                                      allow_unused=True, retain_graph=True)
        for p in tm_params:
            p.grad = None
        (tm.where(tm.tensor(finite), got, 0.0) * tm.tensor(w)).sum().backward(retain_graph=True)
        for i, tp, tg in zip(grad_to, tm_in, t_grads):
            tg = np.zeros(arrays[i].shape, dtype) if tg is None else tg.detach().numpy()
            mg = np.zeros(arrays[i].shape, dtype) if tp.grad is None else tp.grad.numpy()
            tol = dict(rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"] * 10) if name != "VonMises" else dict(rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(mg, tg, err_msg=f"{name}.{method} grad of param {i}", equal_nan=True, **tol)


@pytest.mark.parametrize("name", sorted(CASES))
def test_expand_matches_torch(name):
    builder, arrays, tm_params, t_params, value_fn, _ = _build(name, "float64")
    d, t = builder(tmd, *tm_params), builder(td, *t_params)
    new_batch = (2,) + tuple(t.batch_shape)
    d.sample()  # fills lazily cached state, which the expanded copy must not reuse at the old shape
    de, te = d.expand(new_batch), t.expand(new_batch)
    assert tuple(de.batch_shape) == tuple(te.batch_shape) and tuple(de.event_shape) == tuple(te.event_shape)
    assert type(de) is type(d)
    value = value_fn(_rng(2), new_batch + tuple(t.event_shape)).astype(np.float64)
    np.testing.assert_allclose(de.log_prob(tm.tensor(value)).detach().numpy(), te.log_prob(torch.tensor(value)).detach().numpy(),
                               rtol=1e-7 if name != "VonMises" else 1e-6, atol=1e-9 if name != "VonMises" else 1e-6)
    with tm.no_grad():
        s = de.sample((3,))
    assert tuple(s.shape) == (3,) + new_batch + tuple(t.event_shape)


# ----------------------------------------------------------------------------- sampling
STAT_CASES = [n for n in sorted(CASES) if n not in ("Cauchy", "StudentT")]  # no finite mean/variance for all params


@pytest.mark.parametrize("name", STAT_CASES)
def test_sample_statistics(name):
    """Mean and variance of 20000 seeded draws within 6 standard errors of the distribution's
    (PyTorch-checked) mean and variance; shapes and dtypes as PyTorch's samples."""
    builder, arrays, tm_params, t_params, _, _ = _build(name, "float64")
    d, t = builder(tmd, *tm_params), builder(td, *t_params)
    n = 20000
    tm.manual_seed(1234)
    s = d.sample((n,))
    ts = t.sample((2,))
    assert tuple(s.shape) == (n,) + tuple(ts.shape[1:])
    assert str(s.dtype) == str(ts.dtype).replace("torch.", "tinymm.")
    assert not s.requires_grad
    x = s.detach().numpy().astype(np.float64)
    if name in ("TanhNormal", "AffineExpNormal", "SigmoidAffineNormal", "RelaxedBernoulli", "RelaxedOneHotCategorical",
                "LogitRelaxedBernoulli", "ExpRelaxedCategorical"):
        # no closed-form moments: compare with PyTorch's own draws
        with torch.no_grad():
            torch.manual_seed(0)
            ref = t.sample((n,)).detach().numpy()
        mean, var = ref.mean(0), ref.var(0)
        se_mean = np.sqrt((x.var(0) + var) / n)
        assert np.all(np.abs(x.mean(0) - mean) < 6 * se_mean), name
        return
    if name == "VonMises":  # circular: the mean direction is loc and the mean resultant length 1 − variance
        m = np.exp(1j * x).mean(0)
        np.testing.assert_allclose(np.angle(m), _to_np(t.loc), atol=0.05)
        np.testing.assert_allclose(np.abs(m), 1 - _to_np(t.variance), atol=0.02)
        assert np.all((x >= -math.pi) & (x < math.pi))
        return
    if name.startswith("Categorical"):  # no mean: compare the frequency of each category with probs
        probs = _to_np(t.probs)
        x = (x[..., None] == np.arange(probs.shape[-1])).astype(np.float64)
        mean, var = probs, probs * (1 - probs)
    else:
        mean, var = _to_np(t.mean), _to_np(t.variance)
    if name in ("FisherSnedecor",):  # only where the fourth moment exists (df2 > 8) is the variance test meaningful
        keep = _to_np(t.df2) > 8
        x, mean, var = x[:, keep], mean[keep], var[keep]
    se_mean = np.sqrt(var / n)
    assert np.all(np.abs(x.mean(0) - mean) < 6 * se_mean + 1e-12), f"{name}: {x.mean(0)} vs {mean}"
    # variance of the sample variance ≈ (μ4 − σ⁴)/n; bound μ4 with the sample's own fourth moment
    m4 = ((x - x.mean(0)) ** 4).mean(0)
    se_var = np.sqrt(np.maximum(m4 - var**2, 1e-12) / n)
    assert np.all(np.abs(x.var(0) - var) < 6 * se_var + 1e-12), f"{name}: {x.var(0)} vs {var}"


def test_manual_seed_makes_samples_repeatable():
    d = tmd.Normal(tm.zeros(3), tm.ones(3))
    g = tmd.Gamma(tm.tensor([0.5, 2.0]), tm.tensor(1.0))
    c = tmd.Categorical(logits=tm.zeros(4))
    tm.manual_seed(7)
    a = [d.sample((5,)), g.rsample((5,)), c.sample((5,))]
    tm.manual_seed(7)
    b = [d.sample((5,)), g.rsample((5,)), c.sample((5,))]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.detach().numpy(), y.detach().numpy())
    assert not np.array_equal(d.sample((5,)).detach().numpy(), a[0].detach().numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_rsample_reparameterisation(dtype):
    """rsample = loc + ε·scale: gradients of f(x) = Σ x² are those of PyTorch's same
    expression with the same ε."""
    loc = tm.tensor(np.array([0.5, -1.0, 2.0], dtype), requires_grad=True)
    scale = tm.tensor(np.array([1.0, 0.3, 2.0], dtype), requires_grad=True)
    tm.manual_seed(3)
    x = tmd.Normal(loc, scale).rsample((4,))
    assert x.dtype == np.dtype(dtype) and tuple(x.shape) == (4, 3)
    eps = ((x.detach() - loc.detach()) / scale.detach()).detach().numpy()
    (x**2).sum().backward()
    tl = torch.tensor(loc.detach().numpy(), requires_grad=True)
    ts = torch.tensor(scale.detach().numpy(), requires_grad=True)
    tx = tl + torch.tensor(eps) * ts
    (tx**2).sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), tl.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(scale.grad.numpy(), ts.grad.numpy(), rtol=TOL[dtype]["rtol"] * 10, atol=1e-4 if dtype == "float32" else 1e-8)


@pytest.mark.parametrize("name,build", [
    ("Laplace", lambda D, a, b: D.Laplace(a, b)),
    ("Cauchy", lambda D, a, b: D.Cauchy(a, b)),
    ("Gumbel", lambda D, a, b: D.Gumbel(a, b)),
    ("LogNormal", lambda D, a, b: D.LogNormal(a, b)),
    ("Uniform", lambda D, a, b: D.Uniform(a, a + b)),
])
def test_location_scale_rsample_gradients(name, build):
    """For x = g(loc, scale, noise): dx/dloc and dx/dscale recovered from the draw itself
    match the autograd gradient (the identity each reparameterisation implies)."""
    loc = tm.tensor([0.3, -0.2], dtype=tm.float64, requires_grad=True)
    scale = tm.tensor([1.5, 0.7], dtype=tm.float64, requires_grad=True)
    tm.manual_seed(11)
    x = build(tmd, loc, scale).rsample((5,))
    x.sum().backward()
    xv = x.detach().numpy()
    if name == "LogNormal":  # x = exp(loc + scale·ε)
        eps = (np.log(xv) - loc.detach().numpy()) / scale.detach().numpy()
        dloc, dscale = xv.sum(0), (xv * eps).sum(0)
    elif name == "Uniform":  # x = low + u·(high − low), high = low + scale
        dloc, dscale = np.full(2, 5.0), ((xv - loc.detach().numpy()) / scale.detach().numpy()).sum(0)
    else:  # x = loc + scale·ε
        dloc, dscale = np.full(2, 5.0), ((xv - loc.detach().numpy()) / scale.detach().numpy()).sum(0)
    np.testing.assert_allclose(loc.grad.numpy(), dloc, rtol=1e-10)
    np.testing.assert_allclose(scale.grad.numpy(), dscale, rtol=1e-8)


def test_gamma_rsample_implicit_gradient():
    """dx/dα per draw equals the CDF-inversion derivative (x(α) = P⁻¹(α, u) at fixed u,
    differenced with scipy's gammaincinv) and PyTorch's _standard_gamma_grad; dx/drate = −x/rate."""
    from scipy.special import gammainc, gammaincinv

    alpha = tm.tensor([0.1, 0.7, 1.0, 3.0, 25.0], dtype=tm.float64, requires_grad=True)
    rate = tm.tensor(2.0, dtype=tm.float64, requires_grad=True)
    tm.manual_seed(5)
    x = tmd.Gamma(alpha, rate).rsample((40,))
    x.backward(tm.ones_like(x))
    a = alpha.detach().numpy()
    std = x.detach().numpy() * 2.0  # the Gamma(α, 1) draws
    u = gammainc(a, std)
    h = 1e-6 * a
    want = (gammaincinv(a + h, u) - gammaincinv(a - h, u)) / (2 * h) / 2.0
    ok = (u > 1e-12) & (u < 1 - 1e-12)  # gammaincinv loses precision in the far tails
    per_draw = tmd.gamma.standard_gamma_grad(std, np.broadcast_to(a, std.shape).copy()) / 2.0
    np.testing.assert_allclose(per_draw[ok], want[ok], rtol=1e-5)
    np.testing.assert_allclose(alpha.grad.numpy(), per_draw.sum(0), rtol=1e-12)
    tgrad = torch._standard_gamma_grad(torch.tensor(np.broadcast_to(a, std.shape).copy()), torch.tensor(std)).detach().numpy() / 2.0
    np.testing.assert_allclose(per_draw, tgrad, rtol=2e-3, atol=1e-8)
    np.testing.assert_allclose(rate.grad.numpy(), -(x.detach().numpy() / 2.0).sum(), rtol=1e-10)


@pytest.mark.parametrize("name", ["Beta", "Dirichlet", "Chi2", "StudentT"])
def test_pathwise_gradient_is_unbiased(name):
    """The mean of rsample's gradients over many draws matches d/dθ of the analytic mean."""
    n = 20000
    tm.manual_seed(21)
    if name == "Beta":
        a = tm.tensor([0.7, 2.0], dtype=tm.float64, requires_grad=True)
        b = tm.tensor([1.5, 3.0], dtype=tm.float64, requires_grad=True)
        tmd.Beta(a, b).rsample((n,)).sum().backward()
        av, bv = a.detach().numpy(), b.detach().numpy()
        want_a, want_b = bv / (av + bv) ** 2, -av / (av + bv) ** 2
        np.testing.assert_allclose(a.grad.numpy() / n, want_a, rtol=0.05)
        np.testing.assert_allclose(b.grad.numpy() / n, want_b, rtol=0.05)
    elif name == "Dirichlet":
        c = tm.tensor([0.8, 1.5, 3.0], dtype=tm.float64, requires_grad=True)
        x = tmd.Dirichlet(c).rsample((n,))
        x[:, 0].sum().backward()  # E[x0] = c0/Σc
        cv = c.detach().numpy()
        s = cv.sum()
        want = np.array([(s - cv[0]) / s**2, -cv[0] / s**2, -cv[0] / s**2])
        np.testing.assert_allclose(c.grad.numpy() / n, want, rtol=0.05)
    elif name == "Chi2":
        df = tm.tensor([0.6, 4.0], dtype=tm.float64, requires_grad=True)
        tmd.Chi2(df).rsample((n,)).sum().backward()  # E[x] = df
        np.testing.assert_allclose(df.grad.numpy() / n, [1.0, 1.0], rtol=0.05)
    else:
        df = tm.tensor([5.0], dtype=tm.float64, requires_grad=True)
        loc = tm.tensor([0.5], dtype=tm.float64, requires_grad=True)
        scale = tm.tensor([2.0], dtype=tm.float64, requires_grad=True)
        x = tmd.StudentT(df, loc, scale).rsample((n,))
        (x**2).sum().backward()  # E[x²] = loc² + scale²·df/(df − 2)
        np.testing.assert_allclose(loc.grad.numpy() / n, [1.0], rtol=0.05)
        np.testing.assert_allclose(scale.grad.numpy() / n, [2 * 2.0 * 5 / 3], rtol=0.05)
        np.testing.assert_allclose(df.grad.numpy() / n, [4.0 * -2 / 9], rtol=0.1)


# ----------------------------------------------------------------------------- KL
def _pair(D, name, P):
    if name == "Normal":
        return D.Normal(P[0], P[1]), D.Normal(P[2], P[3])
    if name == "Laplace":
        return D.Laplace(P[0], P[1]), D.Laplace(P[2], P[3])
    if name == "Uniform":
        return D.Uniform(P[0] - P[1], P[0] + P[1]), D.Uniform(P[2] - P[3] - 2.0, P[2] + P[3] + 2.0)
    if name == "Exponential":
        return D.Exponential(P[1]), D.Exponential(P[3])
    if name == "Gamma":
        return D.Gamma(P[1], P[3]), D.Gamma(P[3], P[1])
    if name == "Beta":
        return D.Beta(P[1], P[3]), D.Beta(P[3] + 0.5, P[1])
    if name == "Poisson":
        return D.Poisson(P[1]), D.Poisson(P[3])
    if name == "Bernoulli":
        return D.Bernoulli(logits=P[0]), D.Bernoulli(logits=P[2])
    if name == "Geometric":
        return D.Geometric(logits=P[0]), D.Geometric(logits=P[2])
    if name == "Categorical":
        return D.Categorical(logits=P[4]), D.Categorical(probs=P[5])
    if name == "OneHotCategorical":
        return D.OneHotCategorical(logits=P[4]), D.OneHotCategorical(probs=P[5])
    if name == "Dirichlet":
        return D.Dirichlet(P[5] * 3), D.Dirichlet(P[5] + 1)
    if name == "Independent":
        return D.Independent(D.Normal(P[4], P[5]), 1), D.Independent(D.Normal(P[5], P[5] + 1), 1)
    if name == "LogNormal":
        return D.LogNormal(P[0], P[1]), D.LogNormal(P[2], P[3])
    if name == "MVN":
        return (D.MultivariateNormal(P[4], scale_tril=P[6]),
                D.MultivariateNormal(P[5][0], covariance_matrix=P[7]))
    if name == "Binomial":
        return D.Binomial(5, logits=P[0]), D.Binomial(5, probs=P[3] / 2.5)
    if name == "Cauchy":
        return D.Cauchy(P[0], P[1]), D.Cauchy(P[2], P[3])
    if name == "ContinuousBernoulli":
        return D.ContinuousBernoulli(logits=P[0] * 3), D.ContinuousBernoulli(probs=P[3] / 2.5)
    if name == "Gumbel":
        return D.Gumbel(P[0], P[1]), D.Gumbel(P[2], P[3])
    if name == "HalfNormal":
        return D.HalfNormal(P[1]), D.HalfNormal(P[3])
    if name == "Pareto":
        return D.Pareto(P[1], P[3] + 1), D.Pareto(P[3], P[1] + 2)
    if name == "UniformNormal":
        return D.Uniform(P[0] - P[1], P[0] + P[1]), D.Normal(P[2], P[3])
    if name == "NormalLaplace":
        return D.Normal(P[0], P[1]), D.Laplace(P[2], P[3])
    if name == "LaplaceNormal":
        return D.Laplace(P[0], P[1]), D.Normal(P[2], P[3])
    if name == "ExponentialGamma":
        return D.Exponential(P[1]), D.Gamma(P[3], P[1] + 0.5)
    if name == "GammaExponential":
        return D.Gamma(P[3], P[1]), D.Exponential(P[1] + 0.5)
    if name == "BetaUniform":
        return D.Beta(P[1], P[3]), D.Uniform(P[0] - 1.0, P[2] + 1.0)
    raise KeyError(name)


KL_PAIRS = ["Normal", "Laplace", "Uniform", "Exponential", "Gamma", "Beta", "Poisson", "Bernoulli", "Geometric",
            "Categorical", "OneHotCategorical", "Dirichlet", "Independent", "LogNormal", "MVN", "Binomial", "Cauchy",
            "ContinuousBernoulli", "Gumbel", "HalfNormal", "Pareto", "UniformNormal", "NormalLaplace", "LaplaceNormal",
            "ExponentialGamma", "GammaExponential", "BetaUniform"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", KL_PAIRS)
def test_kl_matches_torch(name, dtype):
    rng = _rng(3)
    arrays = [rng.uniform(-1, 1, (3,)), rng.uniform(0.5, 2, (3,)), rng.uniform(-1, 1, (3,)), rng.uniform(0.5, 2, (3,)),
              rng.uniform(-1, 1, (2, 4)), rng.uniform(0.2, 1.0, (2, 4)), _lower_cholesky(rng, (2,), 4), _spd(rng, (), 4)]
    arrays = [a.astype(dtype) for a in arrays]
    tp = [torch.tensor(a, requires_grad=True) for a in arrays]
    mp = [tm.tensor(a, requires_grad=True) for a in arrays]
    want = td.kl_divergence(*_pair(td, name, tp))
    got = tmd.kl_divergence(*_pair(tmd, name, mp))
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), **TOL[dtype])
    w = rng.standard_normal(tuple(want.shape)).astype(dtype)
    tg = torch.autograd.grad((want * torch.tensor(w)).sum(), tp, allow_unused=True)
    (got * tm.tensor(w)).sum().backward()
    for i, (m, g) in enumerate(zip(mp, tg)):
        mg = np.zeros(arrays[i].shape) if m.grad is None else m.grad.numpy()
        g = np.zeros(arrays[i].shape) if g is None else g.detach().numpy()
        np.testing.assert_allclose(mg, g, err_msg=f"grad {i}", rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"] * 10)


def test_kl_infinite_and_unregistered():
    p, q = tmd.Uniform(tm.tensor([0.0]), tm.tensor([2.0])), tmd.Uniform(tm.tensor([0.5]), tm.tensor([3.0]))
    tp, tq = td.Uniform(torch.tensor([0.0]), torch.tensor([2.0])), td.Uniform(torch.tensor([0.5]), torch.tensor([3.0]))
    assert tmd.kl_divergence(p, q).item() == td.kl_divergence(tp, tq).item() == math.inf
    b = tmd.Bernoulli(probs=tm.tensor([0.0, 1.0, 0.5]))
    c = tmd.Bernoulli(probs=tm.tensor([0.5, 0.5, 0.0]))
    want = td.kl_divergence(td.Bernoulli(probs=torch.tensor([0.0, 1.0, 0.5])), td.Bernoulli(probs=torch.tensor([0.5, 0.5, 0.0])))
    np.testing.assert_allclose(tmd.kl_divergence(b, c).detach().numpy(), want.detach().numpy(), rtol=1e-6)
    with pytest.raises(NotImplementedError):
        td.kl_divergence(td.Cauchy(0.0, 1.0), td.Normal(0.0, 1.0))
    with pytest.raises(NotImplementedError, match="No KL"):
        tmd.kl_divergence(tmd.Cauchy(0.0, 1.0), tmd.Normal(0.0, 1.0))


def test_register_kl_most_specific_wins():
    class MyNormal(tmd.Normal):
        pass

    @tmd.register_kl(MyNormal, tmd.Normal)
    def _kl(p, q):
        return tm.tensor(42.0)

    try:
        assert tmd.kl_divergence(MyNormal(0.0, 1.0), tmd.Normal(1.0, 1.0)).item() == 42.0
        assert tmd.kl_divergence(tmd.Normal(0.0, 1.0), MyNormal(1.0, 1.0)).item() == pytest.approx(0.5)
    finally:
        from tinymm.distributions import kl

        kl._KL_REGISTRY.pop((MyNormal, tmd.Normal))
        kl._KL_MEMOIZE.clear()
    with pytest.raises(TypeError):
        tmd.register_kl(int, tmd.Normal)


# ----------------------------------------------------------------------------- transforms
TRANSFORMS = {
    "Exp": (lambda T, p: T.ExpTransform(), (-2, 2)),
    "Tanh": (lambda T, p: T.TanhTransform(), (-3, 3)),
    "Sigmoid": (lambda T, p: T.SigmoidTransform(), (-3, 3)),
    "Affine": (lambda T, p: T.AffineTransform(p[0], p[1]), (-2, 2)),
    "AffineNumber": (lambda T, p: T.AffineTransform(1.5, -0.5), (-2, 2)),
    "AffineEvent": (lambda T, p: T.AffineTransform(p[0], p[1], event_dim=1), (-2, 2)),
    "Power": (lambda T, p: T.PowerTransform(p[1]), (0.2, 2)),
    "Compose": (lambda T, p: T.ComposeTransform([T.AffineTransform(p[0], p[1]), T.TanhTransform(), T.AffineTransform(0.0, 3.0)]),
                (-2, 2)),
    "InverseExp": (lambda T, p: T.ExpTransform().inv, (0.2, 3)),
    "Independent": (lambda T, p: T.IndependentTransform(T.SigmoidTransform(), 1), (-2, 2)),
    "Softplus": (lambda T, p: T.SoftplusTransform(), (-3, 3)),
    "StickBreaking": (lambda T, p: T.StickBreakingTransform(), (-2, 2)),
    "Reshape": (lambda T, p: T.ReshapeTransform((3,), (3, 1)), (-2, 2)),
    "NormalCDF": (lambda T, p: T.CumulativeDistributionTransform(
        (td if T is td.transforms else tmd).Normal(p[0], p[1])), (-2, 2)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_transform_matches_torch(name, dtype):
    build, (lo, hi) = TRANSFORMS[name]
    rng = _rng(4)
    x = rng.uniform(lo, hi, (2, 3)).astype(dtype)
    params = [rng.uniform(-1, 1, (3,)).astype(dtype), rng.uniform(0.5, 2, (3,)).astype(dtype)]
    tx, mx = torch.tensor(x, requires_grad=True), tm.tensor(x, requires_grad=True)
    tpar = [torch.tensor(p, requires_grad=True) for p in params]
    mpar = [tm.tensor(p, requires_grad=True) for p in params]
    tt, mt = build(td.transforms, tpar), build(tmd.transforms, mpar)
    ty, my = tt(tx), mt(mx)
    np.testing.assert_allclose(my.detach().numpy(), ty.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(mt.inv(my).detach().numpy(), tt.inv(ty).detach().numpy(), rtol=1e-3 if dtype == "float32" else 1e-7,
                               atol=1e-4 if dtype == "float32" else 1e-9)
    tl, ml = tt.log_abs_det_jacobian(tx, ty), mt.log_abs_det_jacobian(mx, my)
    assert tuple(ml.shape) == tuple(tl.shape)
    np.testing.assert_allclose(ml.detach().numpy(), tl.detach().numpy(), **TOL[dtype])
    assert (mt.domain.event_dim, mt.codomain.event_dim, mt.bijective) == (tt.domain.event_dim, tt.codomain.event_dim, tt.bijective)
    w = rng.standard_normal(tuple(tl.shape)).astype(dtype)
    tg = torch.autograd.grad((tl * torch.tensor(w)).sum() + ty.sum(), [tx] + tpar, allow_unused=True)
    ((ml * tm.tensor(w)).sum() + my.sum()).backward()
    for i, (m, g) in enumerate(zip([mx] + mpar, tg)):
        mg = np.zeros(m.shape) if m.grad is None else m.grad.numpy()
        g = np.zeros(m.shape) if g is None else g.detach().numpy()
        np.testing.assert_allclose(mg, g, err_msg=f"grad {i}", rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"] * 10)


@pytest.mark.parametrize("name", ["LowerCholesky", "PositiveDefinite"])
def test_matrix_transforms_match_torch(name):
    x = _rng(9).uniform(-1, 1, (2, 3, 3))
    tt = getattr(td.transforms, name + "Transform")()
    mt = getattr(tmd.transforms, name + "Transform")()
    tx, mx = torch.tensor(x, requires_grad=True), tm.tensor(x, requires_grad=True)
    ty, my = tt(tx), mt(mx)
    np.testing.assert_allclose(my.detach().numpy(), ty.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(mt.inv(my).detach().numpy(), tt.inv(ty).detach().numpy(), rtol=1e-8, atol=1e-10)
    w = _rng(10).standard_normal(x.shape)
    (ty * torch.tensor(w)).sum().backward()
    (my * tm.tensor(w)).sum().backward()
    np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert mt.codomain.check(my).detach().numpy().all()


@pytest.mark.parametrize("which", ["biject_to", "transform_to"])
def test_constraint_registry_matches_torch(which):
    x = _rng(11).uniform(-2, 2, (2, 3))
    for make in (lambda C: C.real, lambda C: C.positive, lambda C: C.nonnegative, lambda C: C.greater_than(1.5),
                 lambda C: C.less_than(-1.0), lambda C: C.unit_interval, lambda C: C.interval(-2.0, 3.0),
                 lambda C: C.half_open_interval(0.0, 1.0), lambda C: C.simplex, lambda C: C.real_vector,
                 lambda C: C.independent(C.positive, 1)):
        tt = getattr(td, which)(make(td.constraints))
        mt = getattr(tmd, which)(make(tmd.constraints))
        assert type(mt).__name__ == type(tt).__name__, (make(td.constraints), tt, mt)
        ty, my = tt(torch.tensor(x)), mt(tm.tensor(x))
        np.testing.assert_allclose(my.detach().numpy(), ty.detach().numpy(), rtol=1e-10, err_msg=repr(tt))
        assert make(tmd.constraints).check(my).detach().numpy().all()
    with pytest.raises(NotImplementedError):
        getattr(td, which)(td.constraints.boolean)
    with pytest.raises(NotImplementedError, match="Cannot transform"):
        getattr(tmd, which)(tmd.constraints.boolean)


def test_transform_cache_and_softmax():
    t = tmd.transforms.TanhTransform(cache_size=1)
    x = tm.tensor([20.0, -0.5])
    y = t(x)
    assert t.inv(y) is x  # atanh(1.0) would be inf; the cache returns the very x
    assert tmd.transforms.ExpTransform() == tmd.transforms.ExpTransform()
    assert tmd.transforms.ExpTransform().inv == tmd.transforms.ExpTransform().inv
    with pytest.raises(ValueError):
        tmd.transforms.TanhTransform(cache_size=2)
    x = np.array([[0.2, -1.0, 3.0], [1.0, 1.0, 1.0]], np.float32)
    sm_t, sm_m = td.transforms.SoftmaxTransform(), tmd.transforms.SoftmaxTransform()
    np.testing.assert_allclose(sm_m(tm.tensor(x)).detach().numpy(), sm_t(torch.tensor(x)).detach().numpy(), rtol=1e-6)
    with pytest.raises(NotImplementedError):
        sm_m.log_abs_det_jacobian(tm.tensor(x), sm_m(tm.tensor(x)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sac_tanh_normal_policy(dtype):
    """SAC's squashed Gaussian: a = tanh(u), u ~ N(μ, σ) by rsample; log π(a) through the
    cached transform equals N.log_prob(u) − log(1 − tanh²u) computed by PyTorch on the same
    u, gradients to μ and σ included."""
    rng = _rng(8)
    mu_np = rng.uniform(-1, 1, (4, 2)).astype(dtype)
    std_np = rng.uniform(0.3, 3.0, (4, 2)).astype(dtype)
    mu, std = tm.tensor(mu_np, requires_grad=True), tm.tensor(std_np, requires_grad=True)
    pi = tmd.TransformedDistribution(tmd.Normal(mu, std), [tmd.transforms.TanhTransform(cache_size=1)])
    tm.manual_seed(9)
    a = pi.rsample()
    logp = pi.log_prob(a).sum(-1)
    loss = (logp - a.sum(-1)).mean()
    loss.backward()
    tm.manual_seed(9)
    eps = ((tmd.Normal(mu, std).rsample().detach() - mu.detach()) / std.detach()).detach().numpy()
    tmu, tstd = torch.tensor(mu_np, requires_grad=True), torch.tensor(std_np, requires_grad=True)
    u = tmu + torch.tensor(eps) * tstd
    t_a = torch.tanh(u)
    t_logp = (td.Normal(tmu, tstd).log_prob(u) - td.transforms.TanhTransform().log_abs_det_jacobian(u, t_a)).sum(-1)
    t_loss = (t_logp - t_a.sum(-1)).mean()
    t_loss.backward()
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == "float32" else dict(rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(loss.item(), t_loss.item(), **tol)
    np.testing.assert_allclose(mu.grad.numpy(), tmu.grad.numpy(), **tol)
    np.testing.assert_allclose(std.grad.numpy(), tstd.grad.numpy(), **tol)
    assert tuple(pi.batch_shape) == (4, 2) and pi.has_rsample


# ----------------------------------------------------------------------------- validation
def _raises_like_torch(build, exc=ValueError, match=None):
    with pytest.raises(exc):
        build(td, torch)
    with pytest.raises(exc, match=match):
        build(tmd, tm)


@pytest.mark.parametrize("build,match", [
    (lambda D, T: D.Normal(T.tensor([0.0, 1.0]), T.tensor([1.0, -1.0])), r"Expected parameter scale .* GreaterThan\(lower_bound=0.0\)"),
    (lambda D, T: D.Bernoulli(probs=T.tensor([1.5])), r"Interval\(lower_bound=0.0, upper_bound=1.0\)"),
    (lambda D, T: D.Bernoulli(probs=T.tensor([0.5]), logits=T.tensor([0.0])), "Either `probs` or `logits`"),
    (lambda D, T: D.Categorical(probs=T.tensor(0.5)), "at least one-dimensional"),
    (lambda D, T: D.Categorical(probs=T.tensor([0.5, -0.1])), "Simplex"),
    (lambda D, T: D.Uniform(T.tensor(1.0), T.tensor(0.0)), "low>= high"),
    (lambda D, T: D.Dirichlet(T.tensor([1.0, 0.0])), "Expected parameter concentration"),
    (lambda D, T: D.MultivariateNormal(T.zeros(2), covariance_matrix=T.tensor([[1.0, 2.0], [2.0, 1.0]])), "PositiveDefinite"),
    (lambda D, T: D.MultivariateNormal(T.zeros(2), scale_tril=T.tensor([[1.0, 1.0], [0.0, 1.0]])), "LowerCholesky"),
    (lambda D, T: D.MultivariateNormal(T.zeros(2)), "Exactly one of"),
    (lambda D, T: D.Geometric(probs=T.tensor([0.0, 0.5])), "to be positive"),
    (lambda D, T: D.Binomial(T.tensor([2.5]), probs=T.tensor([0.5])), "IntegerGreaterThan"),
    (lambda D, T: D.Exponential(T.tensor([1.0])).log_prob(T.tensor([-1.0])), r"Expected value argument .* within the support"),
    (lambda D, T: D.Bernoulli(probs=T.tensor([0.3])).log_prob(T.tensor([0.5])), "Boolean"),
    (lambda D, T: D.Categorical(logits=T.zeros(3)).log_prob(T.tensor([3])), "IntegerInterval"),
    (lambda D, T: D.Normal(T.zeros(3), T.ones(3)).log_prob(T.zeros(4)), "not broadcastable"),
    (lambda D, T: D.Dirichlet(T.ones(3)).log_prob(T.ones(4) / 4), "right-most size of value must match event_shape"),
    (lambda D, T: D.Normal(T.zeros(3), T.ones(3)).log_prob(0.5), "must be a Tensor"),
    (lambda D, T: D.Beta(T.tensor([1.0]), T.tensor([1.0])).log_prob(T.tensor([1.5])), "within the support"),
    (lambda D, T: D.Independent(D.Normal(T.zeros(3), T.ones(3)), 2), "reinterpreted_batch_ndims"),
])
def test_validation_errors_like_torch(build, match):
    _raises_like_torch(build, match=match)


def test_validate_args_off():
    d = tmd.Normal(tm.tensor([0.0]), tm.tensor([-1.0]), validate_args=False)
    assert np.isnan(d.log_prob(tm.tensor([0.0])).item())
    assert tmd.Exponential(tm.tensor([1.0]), validate_args=False).log_prob(tm.tensor([-1.0])).item() == pytest.approx(1.0)
    assert tmd.Distribution._validate_args is True  # PyTorch's default: on
    tmd.Distribution.set_default_validate_args(False)
    try:
        tmd.Normal(tm.tensor([0.0]), tm.tensor([-1.0]))
        assert tmd.Normal(0.0, 1.0, validate_args=True)._validate_args
    finally:
        tmd.Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError):
        tmd.Normal(tm.tensor([0.0]), tm.tensor([-1.0]))
    with pytest.raises(ValueError):
        tmd.Distribution.set_default_validate_args("yes")


def test_constraints_check_like_torch():
    c, t = tmd.constraints, td.constraints
    v = np.array([[0.2, 0.8], [0.5, 0.6], [-0.1, 1.1]])
    for name in ("real", "positive", "nonnegative", "unit_interval", "simplex", "boolean", "nonnegative_integer", "real_vector"):
        np.testing.assert_array_equal(getattr(c, name).check(tm.tensor(v)).detach().numpy(), getattr(t, name).check(torch.tensor(v)).detach().numpy(), err_msg=name)
        assert repr(getattr(c, name)) == repr(getattr(t, name))
    for mk in (lambda C: C.interval(0.0, 0.6), lambda C: C.half_open_interval(0.0, 0.6), lambda C: C.greater_than(0.3),
               lambda C: C.integer_interval(0, 1), lambda C: C.independent(C.positive, 1)):
        np.testing.assert_array_equal(mk(c).check(tm.tensor(v)).detach().numpy(), mk(t).check(torch.tensor(v)).detach().numpy())
        assert repr(mk(c)) == repr(mk(t))
    ints = np.array([[0.0, 1.0, 2.0], [3.0, 1.5, -1.0]])
    for mk in (lambda C: C.nonnegative_integer, lambda C: C.positive_integer, lambda C: C.integer_interval(0, 2),
               lambda C: C.greater_than_eq(1.0), lambda C: C.less_than(1.5), lambda C: C.one_hot, lambda C: C.multinomial(4)):
        np.testing.assert_array_equal(mk(c).check(tm.tensor(ints)).detach().numpy(), mk(t).check(torch.tensor(ints)).detach().numpy(), err_msg=repr(mk(t)))
        assert repr(mk(c)) == repr(mk(t)) and mk(c).is_discrete == mk(t).is_discrete and mk(c).event_dim == mk(t).event_dim
    assert c.is_dependent(c.dependent) and not c.is_dependent(c.real)
    m = np.array([[[2.0, 0.0], [0.5, 1.0]], [[1.0, 0.0], [0.0, -1.0]]])
    np.testing.assert_array_equal(c.lower_cholesky.check(tm.tensor(m)).detach().numpy(), t.lower_cholesky.check(torch.tensor(m)).detach().numpy())
    pd = np.array([[[2.0, 0.5], [0.5, 1.0]], [[1.0, 2.0], [2.0, 1.0]], [[1.0, 0.3], [0.0, 1.0]]])
    for name in ("positive_definite", "positive_semidefinite", "symmetric", "square", "lower_triangular", "lower_cholesky"):
        np.testing.assert_array_equal(getattr(c, name).check(tm.tensor(pd)).detach().numpy(), getattr(t, name).check(torch.tensor(pd)).detach().numpy(),
                                      err_msg=name)


def test_shapes_and_support_like_torch():
    for D, T in ((tmd, tm), (td, torch)):
        assert tuple(D.Normal(0.0, 1.0).batch_shape) == ()
        assert tuple(D.Normal(0.0, 1.0).sample((2, 3)).shape) == (2, 3)
    d, t = tmd.Categorical(logits=tm.zeros(2, 5)), td.Categorical(logits=torch.zeros(2, 5))
    assert tuple(d.enumerate_support().shape) == tuple(t.enumerate_support().shape)
    assert tuple(d.enumerate_support(expand=False).shape) == tuple(t.enumerate_support(expand=False).shape)
    assert repr(d.support) == repr(t.support)
    b, tb = tmd.Binomial(4, probs=tm.full((3,), 0.3)), td.Binomial(4, probs=torch.full((3,), 0.3))
    np.testing.assert_allclose(b.entropy().detach().numpy(), tb.entropy().detach().numpy(), rtol=1e-5)
    m, tmn = tmd.Multinomial(5, probs=tm.tensor([0.2, 0.3, 0.5])), td.Multinomial(5, probs=torch.tensor([0.2, 0.3, 0.5]))
    np.testing.assert_allclose(m.entropy().detach().numpy(), tmn.entropy().detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(d.perplexity().detach().numpy(), t.perplexity().detach().numpy(), rtol=1e-6)
    s = tmd.Dirichlet(tm.tensor([0.5, 0.7, 0.9])).mode
    np.testing.assert_allclose(s.detach().numpy(), td.Dirichlet(torch.tensor([0.5, 0.7, 0.9])).mode.detach().numpy())
    assert tm.__getattr__("distributions") is tmd  # `import tinymm as torch; torch.distributions` works lazily


@pytest.mark.parametrize("dtype", DTYPES)
def test_private_linalg_matches_torch(dtype):
    """distributions.linalg: Cholesky and the lower-triangular solve, values and gradients
    (batched, with broadcast batch dims in the solve)."""
    from tinymm.distributions.linalg import cholesky, solve_triangular_lower

    rng = _rng(13)
    a = _spd(rng, (2,), 4).astype(dtype)
    b = rng.normal(size=(3, 1, 4, 2)).astype(dtype)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    ma, mb = tm.tensor(a, requires_grad=True), tm.tensor(b, requires_grad=True)
    tL, mL = torch.linalg.cholesky(ta), cholesky(ma)
    tx = torch.linalg.solve_triangular(tL, tb, upper=False)
    mx = solve_triangular_lower(mL, mb)
    tol = TOL[dtype] if dtype == "float64" else dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mL.detach().numpy(), tL.detach().numpy(), **tol)
    np.testing.assert_allclose(mx.detach().numpy(), tx.detach().numpy(), **tol)
    w1, w2 = rng.normal(size=a.shape).astype(dtype), rng.normal(size=tx.shape).astype(dtype)
    ((tL * torch.tensor(w1)).sum() + (tx * torch.tensor(w2)).sum()).backward()
    ((mL * tm.tensor(w1)).sum() + (mx * tm.tensor(w2)).sum()).backward()
    gtol = dict(rtol=1e-6, atol=1e-8) if dtype == "float64" else dict(rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(ma.grad.numpy(), ta.grad.numpy(), **gtol)
    np.testing.assert_allclose(mb.grad.numpy(), tb.grad.numpy(), **gtol)
    with pytest.raises(RuntimeError):
        torch.linalg.cholesky(torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(RuntimeError, match="positive-definite"):
        cholesky(tm.tensor([[1.0, 2.0], [2.0, 1.0]]))


def test_mvn_rsample_gradient_through_cholesky():
    """x = loc + chol(Σ)·ε: gradients w.r.t. loc and Σ equal PyTorch's for the same ε."""
    rng = _rng(14)
    loc, cov = rng.normal(size=(2, 3)), _spd(rng, (), 3)
    mloc, mcov = tm.tensor(loc, requires_grad=True), tm.tensor(cov, requires_grad=True)
    tm.manual_seed(15)
    d = tmd.MultivariateNormal(mloc, covariance_matrix=mcov)
    x = d.rsample((5,))
    L = np.linalg.cholesky(cov)
    eps = np.linalg.solve(L, (x.detach().numpy() - loc)[..., None])[..., 0]
    (x.pow(3)).sum().backward()
    tloc, tcov = torch.tensor(loc, requires_grad=True), torch.tensor(cov, requires_grad=True)
    tx = tloc + (torch.linalg.cholesky(tcov) @ torch.tensor(eps)[..., None])[..., 0]
    (tx.pow(3)).sum().backward()
    np.testing.assert_allclose(mloc.grad.numpy(), tloc.grad.numpy(), rtol=1e-9)
    np.testing.assert_allclose(mcov.grad.numpy(), tcov.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_distribution_utils_match_torch():
    from torch.distributions import utils as tu

    from tinymm.distributions import utils as mu

    p = np.array([[0.0, 0.3, 1.0], [0.5, 1e-9, 0.999]], np.float32)
    for fn in ("clamp_probs",):
        np.testing.assert_allclose(getattr(mu, fn)(tm.tensor(p)).detach().numpy(), getattr(tu, fn)(torch.tensor(p)).detach().numpy())
    for binary in (False, True):
        np.testing.assert_allclose(mu.probs_to_logits(tm.tensor(p), binary).detach().numpy(), tu.probs_to_logits(torch.tensor(p), binary).detach().numpy(),
                                   rtol=1e-6)
        np.testing.assert_allclose(mu.logits_to_probs(tm.tensor(p), binary).detach().numpy(), tu.logits_to_probs(torch.tensor(p), binary).detach().numpy(),
                                   rtol=1e-6)
    a, b = mu.broadcast_all(tm.zeros(2, 1), 3.0)
    assert tuple(a.shape) == tuple(b.shape) == (2, 1) and b.dtype == tm.float32
    with pytest.raises(ValueError):
        mu.broadcast_all("x", tm.zeros(2))
    for name, build in (("Bernoulli", lambda D, T: D.Bernoulli(probs=T.tensor([[0.3, 0.6]]))),
                        ("Binomial", lambda D, T: D.Binomial(3, probs=T.tensor([0.3, 0.6]))),
                        ("OneHotCategorical", lambda D, T: D.OneHotCategorical(probs=T.tensor([[0.3, 0.7], [0.5, 0.5]])))):
        for expand in (True, False):
            want = build(td, torch).enumerate_support(expand)
            got = build(tmd, tm).enumerate_support(expand)
            np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy(), err_msg=name)


# ----------------------------------------------------------------------------- realistic code
def reinforce_step(torch, w, obs, actions, returns):
    """A REINFORCE loss written as PyTorch code."""
    logits = obs @ w
    dist = torch.distributions.Categorical(logits=logits)
    logp = dist.log_prob(actions)
    loss = -(logp * (returns - returns.mean())).mean() - 0.01 * dist.entropy().mean()
    loss.backward()
    return loss


def vae_loss(torch, enc_w, dec_w, x, eps):
    """A Gaussian-encoder, Bernoulli-decoder VAE's negative ELBO written as PyTorch code."""
    D = torch.distributions
    h = x @ enc_w
    mu, log_var = h[:, :2], h[:, 2:]
    q = D.Independent(D.Normal(mu, (0.5 * log_var).exp()), 1)
    prior = D.Independent(D.Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    z = mu + (0.5 * log_var).exp() * eps
    recon = D.Independent(D.Bernoulli(logits=z @ dec_w), 1).log_prob(x)
    loss = (D.kl_divergence(q, prior) - recon + 0.0 * q.log_prob(z)).mean()
    loss.backward()
    return loss


@pytest.mark.parametrize("snippet", ["reinforce", "vae"])
def test_pytorch_code_runs_with_tinymm_imported_as_torch(snippet):
    rng = _rng(12)
    if snippet == "reinforce":
        arrays = [rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(6, 3)).astype(np.float32),
                  rng.integers(0, 4, size=6), rng.normal(size=6).astype(np.float32)]
        fn, grad_of = reinforce_step, [0]
    else:
        arrays = [rng.normal(size=(5, 4)).astype(np.float32) * 0.5, rng.normal(size=(2, 5)).astype(np.float32),
                  rng.integers(0, 2, size=(3, 5)).astype(np.float32), rng.normal(size=(3, 2)).astype(np.float32)]
        fn, grad_of = vae_loss, [0, 1]
    import tinymm as torch_like  # the only change to the PyTorch code: what "torch" is

    tins = [torch.tensor(a, requires_grad=i in grad_of) for i, a in enumerate(arrays)]
    mins = [torch_like.tensor(a, requires_grad=i in grad_of) for i, a in enumerate(arrays)]
    want = fn(torch, *tins)
    got = fn(torch_like, *mins)
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-5)
    for i in grad_of:
        np.testing.assert_allclose(mins[i].grad.numpy(), tins[i].grad.numpy(), rtol=1e-4, atol=1e-6)


def test_where_gradient_selects_like_torch():
    """Distributions guard undefined branches with where(ok, x, c) (StudentT.variance, Bernoulli
    KL): the branch not taken must get a zero gradient even when its upstream gradient is
    inf/NaN, as PyTorch's where (select, not multiply by the mask); nansum keeps PyTorch's
    multiply-by-mask gradient."""
    x = np.array([4.0, -1.0, 0.5])
    tx, mx = torch.tensor(x, requires_grad=True), tm.tensor(x, requires_grad=True)
    torch.where(tx > 0, tx, 0.0).log().sum().backward()  # log(0) has gradient inf at the masked element
    with np.errstate(divide="ignore"):
        tm.where(mx > 0, mx, 0.0).log().sum().backward()
    np.testing.assert_array_equal(mx.grad.numpy(), tx.grad.numpy())
    y = np.array([[np.nan, np.nan], [1.0, np.nan]])
    ty, my = torch.tensor(y, requires_grad=True), tm.tensor(y, requires_grad=True)
    torch.nanmean(ty, 1).sum().backward()
    with np.errstate(divide="ignore", invalid="ignore"):  # the all-NaN row: 1/0 upstream, as in PyTorch
        tm.nanmean(my, 1).sum().backward()
    np.testing.assert_array_equal(my.grad.numpy(), ty.grad.numpy())
