"""PyTorch API gaps closed, each compared with torch: layers' forward argument names (keyword
calls), ``Tensor.numpy()`` refusing a tensor that requires grad, ``copy_`` shape checks,
Hardtanh's keywords, ``with device(...)``, dtype vs string equality, and the top-level functions
``empty_strided``, ``unravel_index``, ``diagflat``, ``vdot``, ``binomial``, ``scalar_tensor``,
``rsub``, ``frombuffer``, ``typename``, ``set_flush_denormal``, ``set_warn_always``,
``is_inference``, ``resize_as_``, ``new_empty_strided``, ``gradient`` and ``histogramdd``."""
import array
import inspect
import warnings

import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, check_op, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

# tinymm.nn classes whose forward deliberately differs from torch.nn's, and why
FORWARD_EXCEPTIONS = {
    "RNNBase": "torch's base declares an abstract forward(*input); tinymm's base holds the forward "
               "(input, hx=None) that RNN, LSTM and GRU share, whose signatures match torch's",
    "RNNCellBase": "the same for RNNCell, LSTMCell and GRUCell",
}


def _signature(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@needs_torch
def test_every_layer_forward_takes_torchs_argument_names():
    compared, wrong = 0, []
    for name in sorted(dir(tm.nn)):
        ours, theirs = getattr(tm.nn, name), getattr(torch.nn, name, None)
        if not (isinstance(ours, type) and issubclass(ours, tm.nn.Module) and isinstance(theirs, type)):
            continue
        compared += 1
        if name not in FORWARD_EXCEPTIONS and _signature(ours.forward) != _signature(theirs.forward):
            wrong.append(f"{name}: tinymm {inspect.signature(ours.forward)}, torch {inspect.signature(theirs.forward)}")
    assert not wrong, "\n".join(wrong)
    assert compared > 150


@needs_torch
def test_keyword_calls_as_in_torch():
    def run(m):
        m.manual_seed(0)
        x = m.tensor(np.arange(12, dtype=np.float32).reshape(1, 3, 4) / 10)
        lin, seq = m.nn.Linear(4, 2), m.nn.Sequential(m.nn.Tanh())
        mha = m.nn.MultiheadAttention(4, 2, batch_first=True)
        lstm = m.nn.LSTM(4, 3, batch_first=True)
        emb = m.nn.Embedding(5, 2)
        h = (m.zeros(1, 1, 3), m.ones(1, 1, 3))
        outs = [lin(input=x), seq(input=x), mha(query=x, key=x, value=x, need_weights=False)[0],
                lstm(x, hx=h)[0], emb(input=m.tensor([[1, 4]])), m.nn.Hardtanh(min_val=-0.2, max_val=0.5)(input=x),
                m.nn.Conv1d(3, 2, 2)(input=x), m.nn.LazyLinear(2)(input=x).shape]
        state = {type(mod).__name__: mod.state_dict() for mod in (lin, mha, lstm, emb)}
        return outs, state

    theirs, theirs_state = run(torch)
    tm.manual_seed(0)
    ours, _ = run(tm)
    assert ours[-1] == theirs[-1]
    # the same weights give the same outputs (tinymm's own init draws differently)
    t_out = [o for o in theirs[:2]] + [theirs[3]]
    lin, lstm = tm.nn.Linear(4, 2), tm.nn.LSTM(4, 3, batch_first=True)
    lin.load_state_dict(theirs_state["Linear"])
    lstm.load_state_dict(theirs_state["LSTM"])
    x = tm.tensor(np.arange(12, dtype=np.float32).reshape(1, 3, 4) / 10)
    got = [lin(input=x), tm.nn.Sequential(tm.nn.Tanh())(input=x), lstm(x, hx=(tm.zeros(1, 1, 3), tm.ones(1, 1, 3)))[0]]
    for g, w in zip(got, t_out):
        np.testing.assert_allclose(g.detach().numpy(), w.detach().numpy(), rtol=1e-5, atol=1e-6)


@needs_torch
def test_numpy_refuses_a_tensor_that_requires_grad():
    for m in (torch, tm):
        x = m.ones(2, requires_grad=True)
        with pytest.raises(RuntimeError) as err:
            x.numpy()
        assert str(err.value) == "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."
        with pytest.raises(RuntimeError):
            np.asarray(x * 2)
        assert x.numpy(force=True).tolist() == [1.0, 1.0] == x.tolist()
        assert np.shares_memory(x.numpy(force=True), x.detach().numpy())
        assert "requires_grad=True" in repr(x)
    with pytest.raises(TypeError):
        tm.ones(2).numpy(True)  # force is keyword-only, as torch's


@needs_torch
@pytest.mark.parametrize("dst,src", [((3,), (4,)), ((2, 3), (3, 2)), ((2, 3), (1, 2, 3)), ((3,), (2, 3)),
                                     ((), (2,)), ((2, 3), ()), ((2, 3), (3,)), ((2, 3), (2, 1))])
def test_copy_checks_shapes_as_torch(dst, src):
    outcome = []
    for m in (torch, tm):
        x = m.zeros(dst)
        try:
            x.copy_(m.arange(float(np.prod(src))).reshape(src))
            outcome.append(x.tolist())
        except RuntimeError:
            outcome.append("RuntimeError")
    assert outcome[0] == outcome[1]


@needs_torch
def test_hardtanh_keywords_and_errors():
    x = np.linspace(-2, 2, 9).astype(np.float32)
    for m in (torch, tm):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            layer = m.nn.Hardtanh(min_value=-0.5, max_value=0.25)
        assert [(w.category, str(w.message)) for w in caught] == [
            (FutureWarning, "keyword argument `min_value` is deprecated and renamed to `min_val`"),
            (FutureWarning, "keyword argument `max_value` is deprecated and renamed to `max_val`")]
        assert (layer.min_val, layer.max_val) == (-0.5, 0.25)
        np.testing.assert_allclose(layer(m.tensor(x)).numpy(), np.clip(x, -0.5, 0.25))
        np.testing.assert_allclose(m.nn.functional.hardtanh(m.tensor(x), min_val=-1.5, max_val=1.0).numpy(),
                                   np.clip(x, -1.5, 1.0))
        with pytest.raises(AssertionError, match=r"max_val \(1\) must be greater than min_val \(1\)"):
            m.nn.Hardtanh(1, 1)
        with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
            m.nn.functional.hardtanh(m.tensor(x), 2.0, 1.0)


@needs_torch
def test_device_is_a_context_manager_for_the_default_device():
    for m in (torch, tm):
        with m.device("cpu") as d:
            assert d == m.device("cpu") and m.get_default_device() == m.device("cpu")
            assert m.zeros(1).device == m.device("cpu")
    with tm.device("cuda"):  # nothing made inside: no GPU needed here
        assert tm.get_default_device().type == "cuda"
        with tm.device("cpu"):
            assert tm.get_default_device().type == "cpu"
        assert tm.get_default_device().type == "cuda"
    assert tm.get_default_device().type == "cpu"


@needs_torch
def test_dtype_is_not_equal_to_its_name():
    for m in (torch, tm):
        assert m.float32 != "float32" and not (m.float32 == "float32") and "int64" != m.int64
        assert m.float32 == m.float and {m.float32: 1}[m.float] == 1


# ----------------------------------------------------------------------------- functions


@needs_torch
def test_empty_strided_and_new_empty_strided():
    for m in (torch, tm):
        x = m.empty_strided((2, 3), (1, 2))
        assert tuple(x.shape) == (2, 3) and x.stride() == (1, 2) and x.dtype == m.float32
        x.fill_(2.0)
        assert x.sum().item() == 12.0
        assert m.empty_strided((2, 0), (1, 2)).shape == (2, 0) and m.empty_strided((), ()).shape == ()
        y = m.zeros(1, dtype=m.float64).new_empty_strided((3, 2), (1, 3))
        assert y.dtype == m.float64 and y.stride() == (1, 3)
        assert m.empty_strided((2,), (1,), requires_grad=True).requires_grad
        for size, stride in (((2, 3), (1,)), ((2, -3), (1, 2)), ((2, 3), (-1, 2))):
            with pytest.raises(RuntimeError):
                m.empty_strided(size, stride)
        with pytest.raises(RuntimeError, match="floating point"):
            m.empty_strided((2,), (1,), dtype=m.int64, requires_grad=True)


@needs_torch
def test_unravel_index():
    cases = [([4, 7], (2, 4)), (5, (2, 4)), ([8, -1, 11], (2, 4)), ([[1, 2], [3, 30]], (3, 2, 5)), ([1], 8),
             ([3], ())]
    for idx, shape in cases:
        theirs = torch.unravel_index(torch.tensor(idx), shape)
        ours = tm.unravel_index(tm.tensor(idx), shape)
        assert len(ours) == len(theirs)
        for o, t in zip(ours, theirs):
            assert o.dtype == tm.int64 and o.tolist() == t.tolist()
    for m in (torch, tm):
        with pytest.raises(TypeError, match="integer dtype"):
            m.unravel_index(m.tensor([1.0]), (2,))
        with pytest.raises(ValueError, match="cannot have negative values"):
            m.unravel_index(m.tensor([1]), (2, -4))
        with pytest.raises(TypeError):
            m.unravel_index(m.tensor([1]), (2, 1.5))


@needs_torch
def test_diagflat_vdot_rsub_values_and_gradients():
    check_op([(2, 2)], lambda x: x.diagflat(1))
    check_op([(3,)], lambda x: x.diagflat(-2))
    check_op([(4,), (4,)], lambda a, b: a.vdot(b))
    check_op([(2, 3), (2, 3)], lambda a, b: (torch if isinstance(a, torch.Tensor) else tm).rsub(a, b, alpha=0.5))
    check_op([(2, 3)], lambda a: (torch if isinstance(a, torch.Tensor) else tm).rsub(a, 4.0))
    for m in (torch, tm):
        assert m.diagflat(m.tensor(3.0)).tolist() == [[3.0]]
        assert m.vdot(m.tensor([1, 2]), m.tensor([3, 4])).item() == 11
        assert m.rsub(m.tensor([1, 2]), m.tensor([3, 3])).tolist() == [2, 1]
        for a, b in ((m.ones(2, 2), m.ones(2, 2)), (m.ones(2), m.ones(3)), (m.ones(2), m.ones(2, dtype=m.int64))):
            with pytest.raises(RuntimeError):
                m.vdot(a, b)
        for fn in (m.rsub, m.add, m.sub):
            with pytest.raises(RuntimeError, match="alpha must not be a floating point"):
                fn(m.tensor([1, 2]), 3, alpha=0.5)
        assert m.add(m.tensor([1, 2]), m.tensor([1.0, 2.0]), alpha=0.5).tolist() == [1.5, 3.0]
        assert m.sub(m.tensor([1, 2]), m.tensor([1, 2]), alpha=2).tolist() == [-1, -2]
        with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with"):
            m.rsub(m.tensor([True]), m.tensor([True]))


@needs_torch
def test_scalar_tensor():
    for args, kw in (((3,), {}), ((True,), {}), ((3,), {"dtype": "int64"}), ((2.5,), {"requires_grad": True})):
        got = []
        for m in (torch, tm):
            k = dict(kw, dtype=getattr(m, kw["dtype"])) if "dtype" in kw else kw
            t = m.scalar_tensor(*args, **k)
            got.append((t.shape == (), str(t.dtype).split(".")[-1], t.item(), t.requires_grad))
        assert got[0] == got[1]


@needs_torch
def test_binomial_edges_dtype_rules_and_no_derivative():
    count = [5.0, 5.0, -1.0, 2.5, 5.0, 0.0]
    prob = [0.0, 1.0, 1.0, 1.0, float("nan"), 0.5]
    for m in (torch, tm):
        got = m.binomial(m.tensor(count), m.tensor(prob))
        np.testing.assert_array_equal(got.numpy(), [0.0, 5.0, 0.0, 2.5, np.nan, 0.0])
        assert m.binomial(m.full((2, 3), 5.0), m.full((3,), 0.5)).shape == (2, 3)
        with pytest.raises(ValueError, match="floating-point dtypes for count"):
            m.binomial(m.tensor([5, 5]), m.tensor([0.5, 0.5]))
        with pytest.raises(RuntimeError):
            m.binomial(m.tensor([5.0], dtype=m.float64), m.tensor([0.5]))
        n = m.full((3,), 5.0, requires_grad=True)
        out = m.binomial(n, m.full((3,), 0.5))
        assert out.requires_grad
        with pytest.raises(RuntimeError, match="derivative for aten::binomial is not implemented"):
            out.sum().backward()
    tm.manual_seed(0)
    draws = tm.binomial(tm.full((4000,), 20.0), tm.full((4000,), 0.3)).numpy()
    assert set(np.unique(draws)) <= set(range(21)) and abs(draws.mean() - 6.0) < 0.15 and abs(draws.var() - 4.2) < 0.5


@needs_torch
def test_frombuffer_shares_memory_and_checks_as_torch():
    for m in (torch, tm):
        buf = array.array("i", [1, 2, 3, 4])
        x = m.frombuffer(buf, dtype=m.int32, count=2, offset=4)
        assert x.tolist() == [2, 3]
        x[0] = 20
        assert buf[1] == 20
        assert m.frombuffer(bytearray(b"\x00\x00\x80\x3f"), dtype=m.float32).tolist() == [1.0]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert m.frombuffer(b"\x01\x00\x00\x00", dtype=m.int32).tolist() == [1]
        assert any("not writable" in str(w.message) for w in caught)
    bad = [dict(dtype="int32", count=5), dict(dtype="int32", offset=16), dict(dtype="int64", offset=2),
           dict(dtype="int32", count=0), dict(dtype="int32", offset=-1)]
    for kw in bad:
        msgs = []
        for m in (torch, tm):
            with pytest.raises(ValueError) as err:
                m.frombuffer(array.array("i", [1, 2, 3, 4]), **dict(kw, dtype=getattr(m, kw["dtype"])))
            msgs.append(str(err.value))
        assert msgs[0] == msgs[1]
    with pytest.raises(ValueError, match="buffer protocol"):
        tm.frombuffer([1, 2], dtype=tm.float32)


@needs_torch
def test_typename_flags_is_inference_and_resize_as():
    for obj in (tm.zeros(2), tm.zeros(2, dtype=tm.int64), tm.zeros(2, dtype=tm.bool)):
        assert tm.typename(obj) == torch.typename(torch.from_numpy(obj.numpy()))
    for obj in (3, len, int, np.ndarray):
        assert tm.typename(obj) == torch.typename(obj)
    assert tm.typename(tm.nn.Linear) == "tinymm.nn.layers.Linear" == tm.typename(tm.nn.Linear(1, 1))
    assert tm.set_flush_denormal(True) is False and tm.set_flush_denormal(False) is False  # not supported
    for m in (torch, tm):
        assert m.is_warn_always_enabled() is False
        m.set_warn_always(True)
        assert m.is_warn_always_enabled() is True
        m.set_warn_always(False)
        with pytest.raises(RuntimeError, match="expects a bool"):
            m.set_warn_always(1)
        normal = m.ones(3)
        with m.inference_mode():
            made = normal * 2
            assert made.is_inference() and m.is_inference(made) and not normal.is_inference()
        assert made[1:].is_inference() and made.detach().is_inference() and not (made + 1).is_inference()
        with m.inference_mode(False):
            assert not m.ones(1).is_inference()
        r = m.zeros(2, 3)
        assert r.resize_as_(m.ones(3, 2)).shape == (3, 2)


# ----------------------------------------------------------------------------- gradient, histogramdd

X = np.array([[1.0, 2.0, 4.0, 8.0, 9.0], [10.0, 20.0, 40.0, 80.0, 70.0], [0.0, -1.0, 3.0, 2.0, 5.0]])
COORDS = np.array([0.0, 1.0, 1.5, 3.5, 4.0])


def _gradient_case(m, x, case):
    t = lambda a: m.tensor(a)  # noqa: E731
    return {
        "default": lambda: m.gradient(x),
        "dim1": lambda: m.gradient(x, dim=1),
        "scalar": lambda: m.gradient(x, spacing=2.0, dim=1),
        "per-dim": lambda: m.gradient(x, spacing=[2.0, 3.0]),
        "coords": lambda: m.gradient(x, spacing=(t(COORDS.astype(np.float32)),), dim=1),
        "coords2": lambda: m.gradient(x, spacing=(t(COORDS.astype(np.float32)),), dim=-1, edge_order=2),
        "order2": lambda: m.gradient(x, edge_order=2),
        "dims": lambda: m.gradient(x, dim=(1, 0), spacing=[0.5, 2.0]),
    }[case]()


@needs_torch
@pytest.mark.parametrize("case", ["default", "dim1", "scalar", "per-dim", "coords", "coords2", "order2", "dims"])
def test_gradient_values_and_backward_as_torch(case):
    xt = torch.tensor(X, dtype=torch.float32, requires_grad=True)
    xm = tm.tensor(X.astype(np.float32), requires_grad=True)
    theirs, ours = _gradient_case(torch, xt, case), _gradient_case(tm, xm, case)
    assert len(ours) == len(theirs)
    weights = np.random.default_rng(0).normal(size=(len(ours),) + X.shape).astype(np.float32)
    for o, th, w in zip(ours, theirs, weights):
        np.testing.assert_allclose(o.detach().numpy(), th.detach().numpy(), rtol=1e-5, atol=1e-5)
    sum(((o * tm.tensor(w)).sum() for o, w in zip(ours, weights)), tm.zeros(())).backward()
    sum(((o * torch.tensor(w)).sum() for o, w in zip(theirs, weights)), torch.zeros(())).backward()
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-5)


@needs_torch
def test_gradient_integer_input_edges_and_errors():
    for m in (torch, tm):
        out = m.gradient(m.tensor([1, 2, 4]), spacing=2)
        assert out[0].dtype == m.float32 and out[0].tolist() == [0.5, 0.75, 1.0]
        assert m.gradient(m.tensor(3.0)) == ()
    x = X.astype(np.float32)
    bad = [dict(edge_order=3), dict(spacing=[1.0, 2.0, 3.0]), dict(spacing=[1.0, 2.0, 3.0], dim=1),
           dict(dim=[1, 1])]
    for kw in bad:
        msgs = []
        for m in (torch, tm):
            with pytest.raises(RuntimeError) as err:
                m.gradient(m.tensor(x), **kw)
            msgs.append(str(err.value))
        assert msgs[0] == msgs[1], kw
    for m in (torch, tm):
        with pytest.raises(RuntimeError, match="at least edge_order\\+1"):
            m.gradient(m.tensor([1.0, 2.0]), edge_order=2)
        with pytest.raises(RuntimeError, match="to have one dimension"):
            m.gradient(m.tensor(x), spacing=[m.tensor(2.0)], dim=1)


POINTS = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5], [1.0, 2.0], [0.25, 1.75], [1.5, 0.0]], dtype=np.float32)


@needs_torch
@pytest.mark.parametrize("kw", [dict(bins=[2, 2]), dict(bins=3), dict(bins=[2, 3], range=[0.0, 2.0, 0.0, 3.0], density=True),
                                dict(bins="edges", weight=True), dict(bins=[3, 2], weight=True, density=True),
                                dict(bins=[2, 2], points="zeros"), dict(bins=[2, 2], points="empty"),
                                dict(bins=[2, 2], points="batched")])
def test_histogramdd_as_torch(kw):
    def run(m):
        pts = {None: POINTS, "zeros": np.zeros((3, 2), np.float32), "empty": np.zeros((0, 2), np.float32),
               "batched": POINTS.reshape(2, 3, 2)}[kw.get("points")]
        args = {k: v for k, v in kw.items() if k != "points"}
        if args["bins"] == "edges":
            args["bins"] = [m.tensor([0.0, 1.0, 2.0]), m.tensor([0.0, 0.5, 3.0])]
        if args.get("weight"):
            args["weight"] = m.tensor(np.arange(1, 1 + pts.shape[0], dtype=np.float32))
        hist, edges = m.histogramdd(m.tensor(pts), **args)
        return hist.numpy(), [e.numpy() for e in edges], str(hist.dtype).split(".")[-1]

    theirs, ours = run(torch), run(tm)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-6)
    assert len(ours[1]) == len(theirs[1]) and ours[2] == theirs[2]
    for o, t in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(o, t, rtol=1e-6)


@needs_torch
def test_histogramdd_errors_as_torch():
    bad = [dict(bins=[2]), dict(bins=[2, 2], range=[0.0, 1.0]), dict(bins=[2, 2], range=[1.0, 0.0, 0.0, 1.0]),
           dict(bins=[2, 2], weight="short"), dict(bins=[0, 2])]
    for kw in bad:
        msgs = []
        for m in (torch, tm):
            args = dict(kw)
            if args.get("weight") == "short":
                args["weight"] = m.ones(3)
            with pytest.raises(RuntimeError) as err:
                m.histogramdd(m.tensor(POINTS), **args)
            msgs.append(str(err.value))
        assert msgs[0] == msgs[1], kw
    for m in (torch, tm):
        with pytest.raises(NotImplementedError):
            m.histogramdd(m.tensor(POINTS.astype(np.int64)), bins=[2, 2])
