"""Layers real code uses now and then, each against PyTorch: fractional max pooling (with
PyTorch's ``_random_samples``, so the windows are the same), the adaptive log-softmax of
word-level language models, ``LazyConvTranspose3d`` and the deprecated ``NLLLoss2d``."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


@pytest.mark.parametrize("nd, spatial, kernel, out", [
    (2, (7, 9), (2, 3), (4, 5)), (2, (5, 5), 2, 4), (2, (6, 4), (3, 1), (1, 4)),
    (3, (5, 6, 7), (2, 2, 3), (3, 4, 4)), (3, (4, 4, 4), 1, 3),
])
def test_fractional_max_pool_matches_torch_for_the_same_samples(nd, spatial, kernel, out):
    rng = np.random.default_rng(sum(spatial))
    x = rng.standard_normal((2, 3) + spatial).astype(np.float32)
    x[0, 1].flat[2] = np.nan  # a NaN wins its windows, as in PyTorch
    u = rng.random((2, 3, nd)).astype(np.float32)
    g = None
    got = []
    for m in (torch, tm):
        fn = getattr(m.nn.functional, f"fractional_max_pool{nd}d")
        t = m.tensor(x, requires_grad=True)
        y, idx = fn(t, kernel, output_size=out, return_indices=True, _random_samples=m.tensor(u))
        g = rng.standard_normal(tuple(y.shape)).astype(np.float32) if g is None else g
        (y * m.tensor(g)).nansum().backward()
        got.append((y.detach().numpy(), idx.numpy(), t.grad.numpy()))
    np.testing.assert_array_equal(got[1][1], got[0][1])
    np.testing.assert_allclose(got[1][0], got[0][0])
    np.testing.assert_allclose(got[1][2], got[0][2])


def test_fractional_max_pool_module_with_a_ratio_and_unbatched_input():
    x = np.random.default_rng(1).standard_normal((3, 9, 8))
    u = np.random.default_rng(2).random((1, 3, 2))
    want = torch.nn.FractionalMaxPool2d((2, 3), output_ratio=(0.5, 0.6), _random_samples=torch.tensor(u))
    got = tm.nn.FractionalMaxPool2d((2, 3), output_ratio=(0.5, 0.6), _random_samples=tm.tensor(u))
    np.testing.assert_allclose(got(tm.tensor(x)).numpy(), want(torch.tensor(x)).numpy())
    assert list(got.state_dict()) == list(want.state_dict()) == ["_random_samples"]
    drawn = tm.nn.FractionalMaxPool3d(2, output_size=3)(tm.randn(2, 4, 5, 5, 5))  # tinymm's own draws
    assert tuple(drawn.shape) == (2, 4, 3, 3, 3)


@pytest.mark.parametrize("make", [
    lambda m: m.nn.FractionalMaxPool2d(2),
    lambda m: m.nn.FractionalMaxPool2d(2, output_size=3, output_ratio=0.5),
    lambda m: m.nn.FractionalMaxPool2d(2, output_ratio=1.5),
])
def test_fractional_max_pool_arguments_are_checked_as_torch(make):
    for m in (torch, tm):
        with pytest.raises(ValueError):
            make(m)


@pytest.mark.parametrize("nd, n, k, out", [(2, 5, 3, 4), (3, 5, 2, 4), (3, 5, 1, 5)])
def test_fractional_max_pool_refuses_windows_that_do_not_fit(nd, n, k, out):
    for m in (torch, tm):
        with pytest.raises(RuntimeError, match="too large relative to input"):
            getattr(m.nn.functional, f"fractional_max_pool{nd}d")(m.zeros((1, 1) + (n,) * nd), k, output_size=out)


@pytest.mark.parametrize("cutoffs, div_value, head_bias", [([3, 7], 4.0, False), ([2], 2.0, True),
                                                           ([1, 5, 8], 1.5, False)])
def test_adaptive_log_softmax_matches_torch(cutoffs, div_value, head_bias):
    rng = np.random.default_rng(len(cutoffs))
    want = torch.nn.AdaptiveLogSoftmaxWithLoss(16, 10, cutoffs, div_value=div_value, head_bias=head_bias)
    got = tm.nn.AdaptiveLogSoftmaxWithLoss(16, 10, cutoffs, div_value=div_value, head_bias=head_bias)
    assert [(k, tuple(v.shape)) for k, v in got.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in want.state_dict().items()]
    got.load_state_dict({k: tm.tensor(v.numpy()) for k, v in want.state_dict().items()})
    x = (rng.standard_normal((12, 16)) * 3).astype(np.float32)
    y = rng.integers(0, 10, 12)
    tx, gx = torch.tensor(x, requires_grad=True), tm.tensor(x, requires_grad=True)
    a, b = want(tx, torch.tensor(y)), got(gx, tm.tensor(y))
    a.loss.backward()
    b.loss.backward()
    assert b._fields == ("output", "loss")
    np.testing.assert_allclose(b.output.detach().numpy(), a.output.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-7)
    for p, q in zip(got.parameters(), want.parameters()):  # a cluster no target fell in: None in both
        assert (p.grad is None) == (q.grad is None)
        if q.grad is not None:
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.log_prob(tm.tensor(x)).detach().numpy(),
                               want.log_prob(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got.predict(tm.tensor(x)).numpy(), want.predict(torch.tensor(x)).numpy())
    one = got(tm.tensor(x[0]), tm.tensor(y[0]))
    assert one.output.shape == () and float(one.output) == pytest.approx(float(b.output[0]), rel=1e-6)


@pytest.mark.parametrize("call, error", [
    (lambda m: m.nn.AdaptiveLogSoftmaxWithLoss(4, 10, []), ValueError),
    (lambda m: m.nn.AdaptiveLogSoftmaxWithLoss(4, 10, [5, 3]), ValueError),
    (lambda m: m.nn.AdaptiveLogSoftmaxWithLoss(4, 10, [3, 10]), ValueError),
    (lambda m: m.nn.AdaptiveLogSoftmaxWithLoss(4, 10, [3])(m.zeros(2, 4), m.tensor([1, 10])), RuntimeError),
    (lambda m: m.nn.AdaptiveLogSoftmaxWithLoss(4, 10, [3])(m.zeros(2, 4), m.tensor([1])), RuntimeError),
    (lambda m: m.nn.AdaptiveLogSoftmaxWithLoss(4, 10, [3])(m.zeros(2, 4), m.tensor([[1]])), RuntimeError),
])
def test_adaptive_log_softmax_errors_as_torch(call, error):
    for m in (torch, tm):
        with pytest.raises(error):
            call(m)


def test_lazy_conv_transpose3d_and_nll_loss2d():
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 4, 4)).astype(np.float32)
    want, got = torch.nn.LazyConvTranspose3d(4, 3, stride=2), tm.nn.LazyConvTranspose3d(4, 3, stride=2)
    want(torch.tensor(x))
    got(tm.tensor(x))
    assert type(got).__name__ == "ConvTranspose3d"
    got.load_state_dict({k: tm.tensor(v.detach().numpy()) for k, v in want.state_dict().items()})
    np.testing.assert_allclose(got(tm.tensor(x)).detach().numpy(), want(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    logp = np.log(np.random.default_rng(4).dirichlet(np.ones(3), (2, 5, 5))).transpose(0, 3, 1, 2).astype(np.float32)
    target = np.random.default_rng(5).integers(0, 3, (2, 5, 5))
    with pytest.warns(FutureWarning, match="NLLLoss2d"):
        mine = tm.nn.NLLLoss2d()
    assert float(mine(tm.tensor(logp), tm.tensor(target))) == pytest.approx(
        float(torch.nn.NLLLoss2d()(torch.tensor(logp), torch.tensor(target))), rel=1e-6)
