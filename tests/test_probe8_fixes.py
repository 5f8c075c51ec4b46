"""Gaps probe8's PyTorch programs (tests/pytorch_scripts: autoformer, dlrm, ...) hit in tinymm,
each checked against PyTorch."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from helpers import TORCH_REASON, torch

import tinymm as tm

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


# ---- __version__ compares as a version (Autoformer: `1 if torch.__version__ >= '1.5.0' else 2`)

VERSIONS = ["0.4.1", "1.0", "1.0.0", "1.0a1", "1.0b2", "1.0rc1", "1.0.dev0", "1.0a1.dev2", "1.0.post1",
            "1.0.post1.dev3", "1.0+cpu", "1.0+cpu.2", "1.0+2", "1.5.0", "2.9", "2.10", "2.13.0", "2.13.0+cpu",
            "2.13.0+tinymm.0.1.0", "1!0.5"]


def test_version_orders_as_packaging_does():
    version = pytest.importorskip("packaging.version", reason="packaging is the oracle for PEP 440 order")
    from tinymm.torch_version import TorchVersion

    for a, b in itertools.product(VERSIONS, VERSIONS):
        for op in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__"):
            assert getattr(TorchVersion(a), op)(b) == getattr(version.Version(a), op)(version.Version(b)), (a, op, b)


@needs_torch
def test_tinymm_version_gates_code_as_torchs_does():
    for lib in (tm, torch):
        v = lib.__version__
        assert isinstance(v, str)
        assert v >= "1.5.0" and v > "2.9" and v >= (2, 0) and not v < (1, 13) and v < "3"
    assert tm.__version__.split("+")[0] == torch.__version__.split("+")[0]  # the API tinymm is tested against
    assert tm.__version__.endswith("+tinymm.0.1.0")
    with pytest.raises(TypeError):
        tm.__version__ < 2.0


# ---- complex parameters: load_state_dict and the elementwise optimizers (FEDformer's cfloat weights)


@needs_torch
def test_a_complex_parameter_loads_from_a_state_dict():
    w = (np.arange(6).reshape(2, 3) + 1j * np.ones((2, 3))).astype(np.complex64)

    class M(tm.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = tm.nn.Parameter(tm.zeros(2, 3, dtype=tm.cfloat))
            self.r = tm.nn.Parameter(tm.zeros(3))

    m = M()
    m.load_state_dict({"w": tm.tensor(w), "r": tm.tensor([1.0, 2.0, 3.0])})
    np.testing.assert_array_equal(m.w.detach().numpy(), w)
    assert m.w.dtype == tm.complex64
    with pytest.raises(RuntimeError, match="real-valued"):  # complex into a real tensor: still refused
        m.load_state_dict({"w": tm.tensor(w), "r": tm.tensor(w[0])})


def _complex_steps(lib, opt_name, kwargs):
    rng = np.random.default_rng(0)
    w0 = (rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))).astype(np.complex64)
    x = (rng.standard_normal((4, 3)) + 1j * rng.standard_normal((4, 3))).astype(np.complex64)
    w = lib.nn.Parameter(lib.tensor(w0))
    b = lib.nn.Parameter(lib.tensor(np.array([0.5, -0.25], np.float32)))
    opt = getattr(lib.optim, opt_name)([w, b], **kwargs)
    xs = lib.tensor(x)
    for _ in range(3):
        y = xs @ w
        loss = (y.real - b).square().sum() + (y.imag + 1).abs().sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w.detach().numpy(), b.detach().numpy()


@needs_torch
@pytest.mark.parametrize("opt_name, kwargs", [
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("AdamW", dict(lr=0.05)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.3, lr_decay=0.01)),
    ("ASGD", dict(lr=0.05, t0=1)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("Adamax", dict(lr=0.05)),
    ("NAdam", dict(lr=0.05)),
    ("RAdam", dict(lr=0.05)),
    ("Adadelta", dict(lr=1.0)),
    ("Rprop", dict(lr=0.05)),
])
def test_a_complex_parameter_steps_as_its_real_view(opt_name, kwargs):
    (w, b), (tw, tb) = _complex_steps(tm, opt_name, kwargs), _complex_steps(torch, opt_name, kwargs)
    assert w.dtype == np.complex64
    np.testing.assert_allclose(w, tw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b, tb, rtol=1e-5, atol=1e-6)


def test_optimizers_that_need_real_parameters_refuse_complex_ones_by_name():
    p = tm.nn.Parameter(tm.zeros(2, 2, dtype=tm.cfloat))
    for cls in (tm.optim.Adafactor, tm.optim.LBFGS):
        with pytest.raises(TypeError, match="float32 or float64 tensors, got .*complex64"):
            cls([p])
    with pytest.raises(TypeError, match="complex64 or complex128 tensors, got .*int64"):
        tm.optim.SGD([tm.nn.Parameter(tm.zeros(2, dtype=tm.float32)), tm.zeros(2, dtype=tm.int64)], lr=0.1)


# ---- quantile's q must have the input's dtype (tabular binning: a float32 linspace on float64 data)


@needs_torch
@pytest.mark.parametrize("fn", ["quantile", "nanquantile"])
@pytest.mark.parametrize("q", [0.5, [0.25, 0.75]])
def test_quantile_refuses_a_q_of_another_dtype_as_torch(fn, q):
    x = np.random.default_rng(0).standard_normal(11)
    for lib in (tm, torch):
        with pytest.raises(RuntimeError, match="q tensor must be same dtype as the input tensor"):
            getattr(lib, fn)(lib.tensor(x, dtype=lib.float64), lib.tensor(q, dtype=lib.float32))
    ours = getattr(tm, fn)(tm.tensor(x), tm.tensor(q, dtype=tm.float64), interpolation="midpoint")
    theirs = getattr(torch, fn)(torch.tensor(x), torch.tensor(q, dtype=torch.float64), interpolation="midpoint")
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
    assert ours.dtype == tm.float64


# ---- KL divergences with a LowRankMultivariateNormal on either side (DeepVAR-style heads)


def _gaussians(lib, which, batch_p, batch_q):
    rng = np.random.default_rng(3)
    n, m = 4, 2
    D = lib.distributions

    def lowrank(batch):
        loc = lib.tensor(rng.standard_normal(batch + (n,)), requires_grad=True)
        W = lib.tensor(rng.standard_normal(batch + (n, m)) * 0.5, requires_grad=True)
        d = lib.tensor(rng.uniform(0.3, 1.5, batch + (n,)), requires_grad=True)
        return D.LowRankMultivariateNormal(loc, W, d), [loc, W, d]

    def full(batch):
        loc = lib.tensor(rng.standard_normal(batch + (n,)), requires_grad=True)
        L = np.tril(rng.standard_normal(batch + (n, n)) * 0.3) + 1.2 * np.eye(n)
        L = lib.tensor(L, requires_grad=True)
        return D.MultivariateNormal(loc, scale_tril=L), [loc, L]

    make = {"lowrank": lowrank, "full": full}
    p, pp = make[which[0]](batch_p)
    q, qp = make[which[1]](batch_q)
    kl = D.kl_divergence(p, q)
    kl.sum().backward()
    return kl.detach().numpy(), [t.grad.numpy() for t in pp + qp]


@needs_torch
@pytest.mark.parametrize("which", [("lowrank", "lowrank"), ("lowrank", "full"), ("full", "lowrank")])
@pytest.mark.parametrize("batch_p, batch_q", [((), ()), ((3,), ()), ((2, 1), (3,))])
def test_kl_divergence_with_a_lowrank_gaussian_matches_torch(which, batch_p, batch_q):
    kl, grads = _gaussians(tm, which, batch_p, batch_q)
    tkl, tgrads = _gaussians(torch, which, batch_p, batch_q)
    assert kl.shape == tkl.shape
    np.testing.assert_allclose(kl, tkl, rtol=1e-10, atol=1e-12)
    for g, tg in zip(grads, tgrads):
        np.testing.assert_allclose(g, tg, rtol=1e-9, atol=1e-11)


def test_kl_divergence_with_a_lowrank_gaussian_equals_the_dense_formula():
    D = tm.distributions
    rng = np.random.default_rng(5)
    p = D.LowRankMultivariateNormal(tm.tensor(rng.standard_normal(3)), tm.tensor(rng.standard_normal((3, 1))),
                                    tm.tensor(rng.uniform(0.5, 1.0, 3)))
    q = D.LowRankMultivariateNormal(tm.tensor(rng.standard_normal(3)), tm.tensor(rng.standard_normal((3, 2))),
                                    tm.tensor(rng.uniform(0.5, 1.0, 3)))
    Sp, Sq = p.covariance_matrix.numpy(), q.covariance_matrix.numpy()
    dmu = q.loc.numpy() - p.loc.numpy()
    dense = 0.5 * (np.linalg.slogdet(Sq)[1] - np.linalg.slogdet(Sp)[1] + np.trace(np.linalg.solve(Sq, Sp))
                   + dmu @ np.linalg.solve(Sq, dmu) - 3)
    full_q = D.MultivariateNormal(q.loc, covariance_matrix=q.covariance_matrix)
    for kl in (D.kl_divergence(p, q), D.kl_divergence(p, full_q)):
        np.testing.assert_allclose(kl.item(), dense, rtol=1e-12)
    with pytest.raises(ValueError, match="different event shapes"):
        D.kl_divergence(p, D.MultivariateNormal(tm.zeros(2, dtype=tm.float64), tm.eye(2, dtype=tm.float64)))


# ---- torch.cpu and torch.get_device_module (device-agnostic training loops)


@needs_torch
def test_the_cpu_device_module_answers_as_torchs():
    for lib in (tm, torch):
        assert lib.cpu.is_available() and lib.cpu.is_initialized()
        assert lib.cpu.device_count() == 1 and lib.cpu.current_device() == "cpu"
        assert lib.cpu.synchronize() is None and lib.cpu.set_device("cpu") is None
        assert lib.get_device_module("cpu") is lib.cpu and lib.get_device_module(lib.device("cpu")) is lib.cpu
        assert lib.get_device_module("cuda:0") is lib.cuda
        getattr(lib, lib.device("cpu").type).synchronize()  # the device-agnostic spelling
    assert tm.get_device_module() is (tm.cuda if tm.cuda.is_available() else tm.cpu)
    with pytest.raises(RuntimeError):
        tm.get_device_module("meta")  # a device type tinymm does not have


@needs_torch
def test_cpu_amp_spellings_warn_and_behave_as_torch_amp_on_the_cpu():
    for lib in (tm, torch):
        with pytest.warns(FutureWarning, match="torch.cpu.amp.autocast"):
            ctx = lib.cpu.amp.autocast(enabled=False)
        with ctx:
            assert (lib.ones(2, 3) @ lib.ones(3, 2)).dtype == lib.float32
        with pytest.warns(FutureWarning, match="torch.cpu.amp.GradScaler"):
            scaler = lib.cpu.amp.GradScaler(init_scale=8.0)
        assert scaler.is_enabled() and scaler.get_scale() == 8.0
        p = lib.nn.Parameter(lib.tensor([1.0, -2.0]))
        opt = lib.optim.SGD([p], lr=0.5)
        scaler.scale((p * p).sum()).backward()
        scaler.step(opt)
        scaler.update()
        np.testing.assert_allclose(p.detach().numpy(), [0.0, 0.0])
    from tinymm.cpu.amp import autocast  # the module form of the import, as torch.cpu.amp's

    with pytest.raises(NotImplementedError, match="mixed-precision"):  # tinymm: no low-precision kernels
        with pytest.warns(FutureWarning):
            ctx = autocast()
        with ctx:
            pass


# ---- torch.tensor(pandas object): read by position as torch does (a float64 column stays float64)


@needs_torch
def test_tensor_of_a_pandas_series_keeps_its_dtype_as_torchs():
    pd = pytest.importorskip("pandas", reason="pandas is the source of these array-likes")
    df = pd.DataFrame({"price": [1.0, 2.5, 3.0], "qty": np.array([1, 2, 3], np.int32),
                       "f": np.array([0.5, 1.5, 2.5], np.float32), "flag": [True, False, True]})
    qty = df["qty"]
    objects = [df["price"], qty, df["f"], df["flag"], pd.Index([1.5, 2.5]), pd.Series([1, 2.5], dtype=object),
               pd.Series([np.float32(1), 2.0], dtype=object), pd.Series([[1.0, 2.0], [3.0, 4.0]])]
    for obj in objects:
        for make in ("tensor", "as_tensor", "Tensor", "DoubleTensor") + (("LongTensor",) if obj is qty else ()):
            ours, theirs = getattr(tm, make)(obj), getattr(torch, make)(obj)
            assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1], (make, obj)
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    # another library's tensor keeps its dtype too (0-dim included)
    for t in (torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64),
              torch.ones(2, 2, dtype=torch.int32)):
        assert str(tm.tensor(t).dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    # what torch cannot type, tinymm refuses too (a missing value is not silently NaN)
    for obj, match in [(pd.array([1, None, 3], dtype="Int64"), "Could not infer dtype of NAType"),
                       (pd.Series([1.0, None], dtype="Float64"), "Could not infer dtype of NAType"),
                       (pd.Series(pd.to_datetime(["2020-01-01"])), "Could not infer dtype of Timestamp")]:
        for lib in (tm, torch):
            with pytest.raises(RuntimeError, match=match):
                lib.tensor(obj)
    # (unlike torch, which reads a Series by position, tinymm also takes a label-indexed Series
    # and a DataFrame: their arrays, in their dtypes)
    assert tm.tensor(pd.Series([1.0, 2.0], index=[10, 11])).dtype == tm.float64
    assert tuple(tm.tensor(df[["price", "qty"]]).shape) == (3, 2)


# ---- torch.set_default_tensor_type (older forecasting code) and torch.version


@needs_torch
@pytest.mark.filterwarnings("ignore:torch.set_default_tensor_type")
def test_set_default_tensor_type_sets_the_default_dtype_as_torchs():
    try:
        for lib in (tm, torch):
            for t, want in [(lib.DoubleTensor, lib.float64), ("torch.FloatTensor", lib.float32),
                            ("torch.DoubleTensor", lib.float64), (lib.FloatTensor, lib.float32)]:
                if lib is tm:  # (torch warns once per process)
                    with pytest.warns(UserWarning, match="set_default_tensor_type\\(\\) is deprecated"):
                        lib.set_default_tensor_type(t)
                else:
                    lib.set_default_tensor_type(t)
                assert lib.get_default_dtype() == want
                assert lib.tensor([1.5]).dtype == want and lib.zeros(1).dtype == want
            for bad, err in [(lib.LongTensor, TypeError), ("torch.LongTensor", TypeError), (lib.float64, TypeError),
                             ("foo", ModuleNotFoundError)]:
                with pytest.raises(err):
                    lib.set_default_tensor_type(bad)
            assert lib.get_default_dtype() == lib.float32
    finally:
        tm.set_default_dtype(tm.float32)
        torch.set_default_dtype(torch.float32)
    if not tm.cuda.is_available():
        with pytest.raises(TypeError, match="not available"):
            tm.set_default_tensor_type("torch.cuda.FloatTensor")
        assert tm.get_default_device() == tm.device("cpu")


@needs_torch
def test_the_version_module_answers_as_torchs_cpu_build():
    for lib in (tm, torch):
        assert lib.version.__version__ == lib.__version__ and lib.version.__version__ >= "2.0"
        assert lib.version.hip is None and lib.version.debug is False
    if not tm.cuda.is_available():
        assert tm.version.cuda is None and torch.version.cuda is None  # (the CPU build is the oracle here)
    with pytest.raises(AttributeError):
        tm.version.not_a_field


# ---- Embedding / EmbeddingBag(sparse=True): sparse weight gradients, and the optimizers that take them

_SPARSE_W = np.random.default_rng(7).standard_normal((6, 3)).astype(np.float32)


def _sparse_grad(lib, kind):
    w = lib.nn.Parameter(lib.tensor(_SPARSE_W))
    if kind == "embedding":
        out = lib.nn.functional.embedding(lib.tensor([[1, 2, 1], [0, 5, 1]]), w, padding_idx=0, sparse=True)
    elif kind == "bag_sum_psw":
        out = lib.nn.functional.embedding_bag(lib.tensor([1, 2, 4, 4, 3]), w, lib.tensor([0, 2]), mode="sum",
                                              per_sample_weights=lib.tensor([1.0, 2.0, 3.0, 4.0, -1.0]), sparse=True)
    else:  # bag_mean_pad
        out = lib.nn.functional.embedding_bag(lib.tensor([[1, 2, 4], [4, 2, 2]]), w, mode="mean", padding_idx=2,
                                              sparse=True)
    (out * lib.arange(1.0, out.shape[-1] + 1)).sum().backward()
    return w.grad


@needs_torch
@pytest.mark.parametrize("kind", ["embedding", "bag_sum_psw", "bag_mean_pad"])
def test_a_sparse_embedding_gradient_is_torchs(kind):
    g, tg = _sparse_grad(tm, kind), _sparse_grad(torch, kind)
    assert g.is_sparse and tg.is_sparse and not g.is_coalesced()
    assert (g.sparse_dim(), g.dense_dim(), tuple(g.shape)) == (tg.sparse_dim(), tg.dense_dim(), tuple(tg.shape))
    np.testing.assert_array_equal(g._indices().numpy(), tg._indices().numpy())  # one entry per lookup, padding left out
    np.testing.assert_allclose(g._values().numpy(), tg._values().numpy(), rtol=1e-6)
    c, tc = g.coalesce(), tg.coalesce()
    np.testing.assert_array_equal(c.indices().numpy(), tc.indices().numpy())
    np.testing.assert_allclose(c.values().numpy(), tc.values().numpy(), rtol=1e-6)
    np.testing.assert_allclose(g.to_dense().numpy(), tg.to_dense().numpy(), rtol=1e-6)


def _sparse_steps(lib, name, kw):
    e = lib.nn.Embedding(6, 3, sparse=True, padding_idx=0)
    e.load_state_dict({"weight": lib.tensor(_SPARSE_W)})
    opt = getattr(lib.optim, name)(e.parameters(), **kw)
    idx = np.array([[1, 2, 1], [0, 5, 1], [3, 3, 2]])
    for s in range(3):
        opt.zero_grad()
        (e(lib.tensor(idx[:, : s + 1])) * lib.arange(1.0, 4.0)).sum().backward()
        opt.step()
    return e.weight.detach().numpy()


@needs_torch
@pytest.mark.parametrize("name, kw", [
    ("SGD", dict(lr=0.1)), ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1)),
    ("SGD", dict(lr=0.1, nesterov=True, momentum=0.5, maximize=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
    ("SparseAdam", dict(lr=0.1)), ("SparseAdam", dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6, maximize=True)),
])
def test_optimizers_step_a_sparse_gradient_as_torchs(name, kw):
    np.testing.assert_allclose(_sparse_steps(tm, name, kw), _sparse_steps(torch, name, kw), rtol=1e-5, atol=1e-6)


@needs_torch
@pytest.mark.parametrize("name, kw, match", [
    ("Adam", {}, "Adam does not support sparse gradients, please consider SparseAdam instead"),
    ("AdamW", {}, "Adam does not support sparse gradients"), ("RMSprop", {}, "RMSprop does not support sparse"),
    ("NAdam", {}, "NAdam does not support sparse"), ("Adafactor", {}, "Adafactor does not support sparse"),
    ("SGD", dict(lr=0.1, weight_decay=0.1), "add\\(sparse, dense\\) is not supported"),
    ("Adagrad", dict(weight_decay=0.1), "weight_decay option is not compatible with sparse gradients"),
])
def test_optimizers_refuse_a_sparse_gradient_as_torchs(name, kw, match):
    for lib in (tm, torch):
        with pytest.raises(RuntimeError, match=match):
            _sparse_steps(lib, name, kw)


@needs_torch
def test_sparse_gradients_accumulate_zero_and_refuse_clipping_as_torchs():
    for lib in (tm, torch):
        e = lib.nn.Embedding(6, 3, sparse=True)
        e.load_state_dict({"weight": lib.tensor(_SPARSE_W)})
        e(lib.tensor([1, 2])).sum().backward()
        e(lib.tensor([2, 4])).sum().backward()  # sparse + sparse: sparse
        assert e.weight.grad.is_sparse
        np.testing.assert_allclose(e.weight.grad.to_dense().numpy().sum(1), [0, 3, 6, 0, 3, 0])
        (e.weight * 2).sum().backward()  # + dense: dense
        assert not e.weight.grad.is_sparse
        np.testing.assert_allclose(e.weight.grad.numpy().sum(1), [6, 9, 12, 6, 9, 6])
        e.weight.grad = None
        e(lib.tensor([3])).sum().backward()
        with pytest.raises(NotImplementedError):
            lib.nn.utils.clip_grad_norm_(e.parameters(), 1.0)
        e.zero_grad(set_to_none=False)  # no entries left, still sparse
        assert e.weight.grad.is_sparse and e.weight.grad._nnz() == 0
        with pytest.raises(RuntimeError, match="SparseAdam does not support dense gradients"):
            p = lib.nn.Parameter(lib.ones(2))
            (p * 2).sum().backward()
            lib.optim.SparseAdam([p]).step()
        with pytest.raises(RuntimeError, match="scale_grad_by_freq not supported with sparse gradients"):
            lib.nn.Embedding(6, 3, sparse=True, scale_grad_by_freq=True)(lib.tensor([1, 1])).sum().backward()
        with pytest.raises(ValueError, match="max mode does not support sparse weights"):
            lib.nn.EmbeddingBag(6, 3, mode="max", sparse=True)(lib.tensor([1, 2]), lib.tensor([0]))
    # (a deliberate difference: through a non-leaf weight, tinymm's gradient arrives dense; torch's stays sparse)
    w = tm.nn.Parameter(tm.tensor(_SPARSE_W))
    tm.nn.functional.embedding(tm.tensor([1, 1]), w * 1.0, sparse=True).sum().backward()
    assert not w.grad.is_sparse and w.grad.numpy()[1].tolist() == [2.0, 2.0, 2.0]
