"""Gaps the probe4 scripts (tests/pytorch_scripts: time_sequence_prediction, fast_neural_style,
super_resolution, siamese_network, reinforce, language_translation) and their idioms found,
each compared with torch."""
import copy
import io

import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


# ---------------------------------------------------------------- torch.accelerator
@needs_torch
def test_accelerator_answers_as_torch_without_a_gpu():
    if tm.cuda.is_available() or torch.accelerator.is_available():
        pytest.skip("compares the no-accelerator answers; this machine has one")
    acc = tm.accelerator
    assert acc.is_available() is False and acc.device_count() == 0 == torch.accelerator.device_count()
    assert acc.current_accelerator() is None and acc.current_accelerator(check_available=True) is None
    device = acc.current_accelerator() if acc.is_available() else "cpu"  # the examples' idiom
    assert tm.zeros(2, device=device).device.type == "cpu"
    with acc.device_index(None):
        pass
    for call in (acc.current_device_index, acc.synchronize, acc.empty_cache, acc.memory_allocated,
                 lambda: acc.set_device_index(0)):
        with pytest.raises(RuntimeError, match="Cannot access accelerator device when none is available"):
            call()
    import tinymm.accelerator  # noqa: F401  (importable by name, as torch.accelerator)


# ---------------------------------------------------------------- init.calculate_gain
@needs_torch
@pytest.mark.parametrize("args", [("linear",), ("conv_transpose3d",), ("sigmoid",), ("tanh",), ("relu",), ("selu",),
                                  ("leaky_relu",), ("leaky_relu", 0.2), ("leaky_relu", 0), ("leaky_relu", 3)])
def test_calculate_gain_matches_torch_value_and_type(args):
    want, got = torch.nn.init.calculate_gain(*args), tm.nn.init.calculate_gain(*args)
    assert got == pytest.approx(want) and type(got) is type(want)


@needs_torch
@pytest.mark.parametrize("args", [("leaky_relu", True), ("leaky_relu", "0.2"), ("swish",)])
def test_calculate_gain_refuses_what_torch_refuses(args):
    with pytest.raises(ValueError):
        torch.nn.init.calculate_gain(*args)
    with pytest.raises(ValueError):
        tm.nn.init.calculate_gain(*args)


# ---------------------------------------------------------------- LBFGS state dicts
def _lbfgs_run(lib, x0, steps, state=None):
    w = lib.nn.Parameter(lib.tensor(x0, dtype=lib.float64))
    opt = lib.optim.LBFGS([w], history_size=3, max_iter=4)
    if state is not None:
        opt.load_state_dict(state)

    def closure():
        opt.zero_grad()
        loss = ((w - 2) ** 4).sum() + (w ** 2).sum()
        loss.backward()
        return loss
    for _ in range(steps):
        opt.step(closure)
    return w, opt


@needs_torch
def test_lbfgs_state_dict_saves_and_loads_with_weights_only_and_crosses_to_torch():
    x0 = [1.0, -1.0, 0.5]
    w_t, opt_t = _lbfgs_run(torch, x0, 1)
    w_m, opt_m = _lbfgs_run(tm, x0, 1)
    sd = opt_m.state_dict()["state"][0]
    assert all(isinstance(v, tm.Tensor) for v in sd["old_dirs"] + sd["old_stps"])
    assert len(sd["old_dirs"]) == len(opt_t.state_dict()["state"][0]["old_dirs"])
    buf = io.BytesIO()
    tm.save(opt_m.state_dict(), buf)  # the history lists used to be pickled as NumPy arrays,
    buf.seek(0)                       # which load (weights_only=True) refuses
    loaded = tm.load(buf)
    # the loaded state continues as torch's optimizer continues
    w_m2, _ = _lbfgs_run(tm, w_m.tolist(), 1, loaded)
    saved_t = copy.deepcopy(opt_t.state_dict())  # torch's continuation writes into the state it loaded
    w_t2, _ = _lbfgs_run(torch, w_t.tolist(), 1, opt_t.state_dict())
    np.testing.assert_allclose(w_m2.tolist(), w_t2.tolist(), rtol=1e-12)
    # and torch's state (ro as 0-d tensors, H_diag a tensor) loads into tinymm's LBFGS
    state_t = {"state": {0: {k: ([tm.tensor(x.numpy()) for x in v] if isinstance(v, list) and v and v[0] is not None
                                 else tm.tensor(v.numpy()) if isinstance(v, torch.Tensor) else v)
                             for k, v in saved_t["state"][0].items() if k != "al"}},
               "param_groups": saved_t["param_groups"]}
    w_m3, _ = _lbfgs_run(tm, w_t.tolist(), 1, state_t)
    np.testing.assert_allclose(w_m3.tolist(), w_t2.tolist(), rtol=1e-12)


# ---------------------------------------------------------------- cross_entropy, every target ignored
@needs_torch
@pytest.mark.parametrize("kw", [{}, {"label_smoothing": 0.1}, {"weight": [1.0, 2.0, 3.0]}])
def test_cross_entropy_with_every_target_ignored_is_nan_with_zero_grads_and_no_warning(kw, recwarn):
    results = []
    for lib in (torch, tm):
        x = lib.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]], requires_grad=True)
        extra = {k: lib.tensor(v) if k == "weight" else v for k, v in kw.items()}
        loss = lib.nn.functional.cross_entropy(x, lib.tensor([1, 1]), ignore_index=1, **extra)
        loss.backward()
        results.append((loss.item(), x.grad.tolist()))
    assert np.isnan(results[0][0]) and np.isnan(results[1][0])
    assert results[1][1] == results[0][1]
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


# ---------------------------------------------------------------- LSTMCell given one state
@needs_torch
def test_lstm_cell_given_one_hidden_state_says_it_expects_two():
    with pytest.raises(RuntimeError, match="two hidden states"):
        torch.nn.LSTMCell(1, 3)(torch.zeros(2, 1), (torch.zeros(2, 3),))
    with pytest.raises(RuntimeError, match="two hidden states.*tuple of 1"):
        tm.nn.LSTMCell(1, 3)(tm.zeros(2, 1), (tm.zeros(2, 3),))


# ---------------------------------------------------------------- mse_loss / l1_loss / huber_loss weight=
@needs_torch
@pytest.mark.parametrize("fn", ["mse_loss", "l1_loss", "huber_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_weighted_regression_losses_match_torch(fn, reduction):
    out = []
    for lib in (torch, tm):
        x = lib.tensor([[0.5, -1.0, 2.0], [0.0, 3.0, -2.5]], dtype=lib.float64, requires_grad=True)
        w = lib.tensor([[1.0, 0.5, 2.0], [0.0, 1.0, 3.0]], dtype=lib.float64, requires_grad=True)
        target = lib.tensor([1.0, 0.0, -1.0], dtype=lib.float64).expand(2, 3)
        loss = getattr(lib.nn.functional, fn)(x, target, reduction=reduction, weight=w)
        loss.sum().backward()
        out.append([np.asarray(v.tolist()) for v in (loss, x.grad, w.grad)])
    for want, got in zip(*out):
        np.testing.assert_allclose(got, want, rtol=1e-12)


@needs_torch
@pytest.mark.parametrize("fn", ["mse_loss", "l1_loss", "huber_loss"])
def test_regression_loss_weight_of_another_shape_is_refused_as_torch(fn):
    for lib in (torch, tm):
        with pytest.raises(ValueError, match="Weights and input must have the same size"):
            getattr(lib.nn.functional, fn)(lib.zeros(2, 3), lib.zeros(2, 3), weight=lib.ones(3))


# ---------------------------------------------------------------- DataLoader multiprocessing_context / in_order
@needs_torch
def test_dataloader_takes_multiprocessing_context_and_in_order_as_torch():
    import inspect
    import multiprocessing

    ours = list(inspect.signature(tm.utils.data.DataLoader.__init__).parameters)
    theirs = list(inspect.signature(torch.utils.data.DataLoader.__init__).parameters)
    assert ours == theirs
    for lib in (torch, tm):
        loader = lib.utils.data.DataLoader(list(range(5)), batch_size=2, num_workers=2, multiprocessing_context="spawn",
                                           in_order=False)
        if lib is tm:  # (torch's would start processes; in_order=False lets its batches come in any order)
            assert [b.tolist() for b in loader] == [[0, 1], [2, 3], [4]]
        assert loader.multiprocessing_context is multiprocessing.get_context("spawn") and loader.in_order is False
        ctx = multiprocessing.get_context("fork")
        assert lib.utils.data.DataLoader([1], num_workers=1, multiprocessing_context=ctx).multiprocessing_context is ctx
        with pytest.raises(ValueError, match="num_workers > 0"):
            lib.utils.data.DataLoader([1], multiprocessing_context="spawn")
        with pytest.raises(ValueError, match="valid start method"):
            lib.utils.data.DataLoader([1], num_workers=1, multiprocessing_context="bogus")
        with pytest.raises(TypeError, match="valid context object"):
            lib.utils.data.DataLoader([1], num_workers=1, multiprocessing_context=3)


# ---------------------------------------------------------------- StackDataset, __getitems__
@needs_torch
def test_stack_dataset_and_batched_getitems_as_torch():
    class Batched:
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return i

        def __getitems__(self, idx):
            return [100 + i for i in idx]

    for lib in (torch, tm):
        D = lib.utils.data
        a, b = D.TensorDataset(lib.arange(4.0)), list("wxyz")
        tup, named = D.StackDataset(a, b), D.StackDataset(num=a, ch=b)
        assert len(tup) == 4 and tup[1][1] == "x" and tup[1][0][0].item() == 1.0
        assert set(named[2]) == {"num", "ch"} and named[2]["ch"] == "y"
        assert [s[1] for s in D.StackDataset(Batched(), b).__getitems__([0, 3])] == ["w", "z"]
        assert [s[0] for s in D.StackDataset(Batched(), b).__getitems__([0, 3])] == [100, 103]
        assert [x.tolist() for x in D.DataLoader(Batched(), batch_size=3)] == [[100, 101, 102], [103]]
        assert [x for x in D.DataLoader(Batched(), batch_size=None)] == [0, 1, 2, 3]
        batch = next(iter(D.DataLoader(D.StackDataset(num=a, ch=b), batch_size=2)))
        assert batch["num"][0].tolist() == [0.0, 1.0] and list(batch["ch"]) == ["w", "x"]
        with pytest.raises(ValueError, match="Size mismatch"):
            D.StackDataset(a, [1])
        with pytest.raises(ValueError):
            D.StackDataset(a, k=b)
        with pytest.raises(ValueError):
            D.StackDataset()


# ---------------------------------------------------------------- HalfCauchy, OneHotCategoricalStraightThrough
@needs_torch
def test_half_cauchy_matches_torch():
    out = []
    for lib in (torch, tm):
        scale = lib.tensor([0.5, 2.0], dtype=lib.float64, requires_grad=True)
        d = lib.distributions.HalfCauchy(scale)
        v = lib.tensor([0.3, 1.5], dtype=lib.float64)
        lp = d.log_prob(v)
        lp.sum().backward()
        q = lib.tensor([0.2, 0.9], dtype=lib.float64)
        loose = lib.distributions.HalfCauchy(scale, validate_args=False)
        out.append([lp.tolist(), scale.grad.tolist(), d.cdf(v).tolist(), d.icdf(q).tolist(), d.entropy().tolist(),
                    d.mean.tolist(), d.variance.tolist(), d.mode.tolist(),
                    loose.log_prob(lib.tensor([-1.0, 0.0], dtype=lib.float64)).tolist()])
        draws = d.rsample((50,))
        assert list(draws.shape) == [50, 2] and bool((draws >= 0).all()) and d.has_rsample
        assert tuple(d.expand((4, 2)).batch_shape) == (4, 2)
        with pytest.raises(ValueError):
            lib.distributions.HalfCauchy(lib.tensor([-1.0]), validate_args=True)
        with pytest.raises(ValueError):
            d.log_prob(lib.tensor([-1.0, 0.0], dtype=lib.float64))
    np.testing.assert_allclose(np.array(out[1]), np.array(out[0]), rtol=1e-12)


@needs_torch
def test_one_hot_categorical_straight_through_matches_torch():
    grads = []
    for lib in (torch, tm):
        p = lib.tensor([[0.2, 0.5, 0.3]], requires_grad=True)
        d = lib.distributions.OneHotCategoricalStraightThrough(probs=p)
        r = d.rsample((4,))
        assert list(r.shape) == [4, 1, 3] and bool((r.sum(-1) == 1).all()) and d.has_rsample
        assert isinstance(d, lib.distributions.OneHotCategorical)
        (r * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        grads.append((p.grad.tolist(), d.log_prob(lib.tensor([[0.0, 1.0, 0.0]])).tolist()))
    np.testing.assert_allclose(grads[1][0], grads[0][0], rtol=1e-6)
    np.testing.assert_allclose(grads[1][1], grads[0][1], rtol=1e-6)


# ---------------------------------------------------------------- bool() of a tensor without one element
@needs_torch
@pytest.mark.parametrize("n", [0, 2])
def test_truth_value_of_a_tensor_without_one_element_is_torchs_runtime_error(n):
    words = "no values" if n == 0 else "more than one value"
    for lib in (torch, tm):
        with pytest.raises(RuntimeError, match=f"Boolean value of Tensor with {words} is ambiguous"):
            bool(lib.zeros(n))
    with pytest.raises(ValueError):  # what tinymm raised before stays catchable
        bool(tm.zeros(n))
    assert bool(tm.ones(1, 1)) and not tm.zeros(())
