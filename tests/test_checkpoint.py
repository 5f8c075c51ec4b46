"""``tinymm.utils.checkpoint``: the same values and gradients as the plain call (and as
torch's checkpoint), dropout replayed with the first run's random state, parameters trained
when no input requires grad."""
import numpy as np
import pytest

import tinymm as tm
from tinymm import nn
from tinymm.utils.checkpoint import checkpoint, checkpoint_sequential

from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _block(lib, p=0.0):
    lib.manual_seed(0)
    return lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.Tanh(), lib.nn.Dropout(p), lib.nn.Linear(8, 3))


def _grads(model):
    return [p.grad.numpy().copy() for p in model.parameters()]


def test_values_and_gradients_equal_the_plain_call_with_dropout_replayed():
    x0 = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    runs = []
    for use_ckpt in (False, True):
        model = _block(tm, p=0.5)
        x = tm.tensor(x0, requires_grad=True)
        tm.manual_seed(7)
        h = x * 2.0
        y = checkpoint(model, h, use_reentrant=False) if use_ckpt else model(h)
        (y ** 2).sum().backward()
        runs.append((y.detach().numpy(), x.grad.numpy(), _grads(model)))
    (y0, gx0, gp0), (y1, gx1, gp1) = runs
    np.testing.assert_array_equal(y0, y1)
    np.testing.assert_allclose(gx0, gx1, rtol=1e-6)
    for a, b in zip(gp0, gp1):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_parameters_train_when_no_input_requires_grad_and_no_grad_mode_records_nothing():
    model = _block(tm)
    x = tm.randn(3, 4)
    checkpoint(model, x).sum().backward()
    assert all(p.grad is not None and np.abs(p.grad.numpy()).sum() > 0 for p in model.parameters())
    with tm.no_grad():
        assert not checkpoint(model, x).requires_grad
    seq = nn.Sequential(*[nn.Linear(4, 4) for _ in range(5)])
    x = tm.randn(2, 4, requires_grad=True)
    ref = seq(x)
    ref.sum().backward()
    want = [p.grad.numpy().copy() for p in seq.parameters()] + [x.grad.numpy().copy()]
    seq.zero_grad()
    x.grad = None
    out = checkpoint_sequential(seq, 2, x, use_reentrant=False)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-6)
    out.sum().backward()
    for a, b in zip([p.grad.numpy() for p in seq.parameters()] + [x.grad.numpy()], want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@needs_torch
def test_gradients_match_torchs_checkpoint():
    x0 = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    res = {}
    for lib in (tm, torch):
        model = _block(lib)
        if lib is torch:
            with torch.no_grad():
                for p, q in zip(model.parameters(), _block(tm).parameters()):
                    p.copy_(torch.tensor(q.detach().numpy()))
        x = lib.tensor(x0, requires_grad=True)
        ck = tm.utils.checkpoint.checkpoint if lib is tm else torch.utils.checkpoint.checkpoint
        y = ck(model, x, use_reentrant=False)
        (y.sin()).sum().backward()
        res[lib.__name__] = (y.detach().numpy(), x.grad.numpy(), _grads(model))
    np.testing.assert_allclose(res["tinymm"][0], res["torch"][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res["tinymm"][1], res["torch"][1], rtol=1e-5, atol=1e-6)
    for a, b in zip(res["tinymm"][2], res["torch"][2]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
