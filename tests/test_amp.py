"""``GradScaler`` against ``torch.amp.GradScaler("cpu")`` step for step (scale, skipped steps,
parameters), its errors and state, and ``autocast``'s honest refusal when enabled."""
import warnings

import numpy as np
import pytest

import tinymm as tm
from tinymm import amp, nn

from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _run(lib, scaler, w0, xs, poison):
    model = lib.nn.Linear(3, 2)
    with lib.no_grad():
        model.weight.copy_(lib.tensor(w0))
        model.bias.zero_()
    opt = lib.optim.SGD(model.parameters(), lr=0.1)
    scales, norms = [], []
    for i, x in enumerate(xs):
        opt.zero_grad()
        loss = model(lib.tensor(x)).pow(2).sum()
        if i in poison:
            loss = loss * float("inf")
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        norms.append(float(lib.nn.utils.clip_grad_norm_(model.parameters(), 5.0)))
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
    return scales, norms, model.weight.detach().numpy().copy(), scaler.state_dict()


@needs_torch
def test_grad_scaler_matches_torch_step_for_step():
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((2, 3)).astype(np.float32)
    xs = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(9)]
    poison = {2, 3, 7}
    ours = _run(tm, amp.GradScaler("cpu", init_scale=1024.0, growth_interval=2), w0, xs, poison)
    theirs = _run(torch, torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=2), w0, xs, poison)
    assert ours[0] == theirs[0]  # the scale after every update: backoff on inf, growth every 2 clean steps
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-5)  # unscaled norms (inf on the poisoned steps)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-5, atol=1e-6)  # skipped steps left the weights alone
    assert ours[3] == {k: (float(v) if isinstance(v, float) else v) for k, v in theirs[3].items()}


def test_scaler_errors_state_and_the_disabled_passthrough():
    model = nn.Linear(2, 1)
    opt = tm.optim.SGD(model.parameters(), lr=0.1)
    s = amp.GradScaler("cpu", init_scale=8.0)
    s.scale(model(tm.ones(1, 2)).sum()).backward()
    assert model.bias.grad.item() == 8.0
    s.unscale_(opt)
    assert model.bias.grad.item() == 1.0
    with pytest.raises(RuntimeError, match=r"unscale_\(\) has already been called on this optimizer since the last update\(\)"):
        s.unscale_(opt)
    s.step(opt)
    with pytest.raises(RuntimeError, match=r"step\(\) has already been called since the last update\(\)"):
        s.step(opt)
    s.update()
    with pytest.raises(RuntimeError, match="No inf checks were recorded prior to update"):
        s.update()
    s2 = amp.GradScaler("cpu")
    s2.load_state_dict(s.state_dict())
    assert s2.get_scale() == 8.0 and s2.state_dict() == s.state_dict()
    with pytest.raises(ValueError, match="growth_factor should be > 1"):
        amp.GradScaler("cpu", growth_factor=1.0)
    with pytest.raises(ValueError, match="outputs must be a Tensor"):
        s.scale(3.0)
    off = amp.GradScaler("cpu", enabled=False)
    loss = model(tm.ones(1, 2)).sum()
    assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {}


@pytest.mark.skipif(tm.cuda.is_available(), reason="checks what happens where no GPU is usable")
def test_a_cuda_scaler_without_a_gpu_warns_and_disables_itself_as_torch():
    from tinymm.cuda.amp import GradScaler

    with pytest.warns(UserWarning, match="GradScaler is enabled, but CUDA is not available.  Disabling."):
        s = GradScaler()
    assert not s.is_enabled()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not tm.amp.GradScaler(enabled=False).is_enabled()


def test_autocast_disabled_is_a_no_op_and_enabled_refuses_by_name():
    x = tm.ones(2, 2)
    with tm.autocast(device_type="cpu", dtype=tm.float16, enabled=False):
        y = x @ x
    assert y.dtype == tm.float32

    @tm.autocast("cpu", enabled=False)
    def f(a):
        return a + 1

    assert f(x).tolist() == [[2.0, 2.0], [2.0, 2.0]]
    with pytest.raises(NotImplementedError, match=r"no mixed-precision kernels.*enabled=False"):
        with tm.autocast("cpu"):
            pass
    from tinymm.cuda.amp import autocast

    with autocast(enabled=False):
        pass
    with pytest.raises(RuntimeError, match="device_type must be 'cpu' or 'cuda', got 'tpu'"):
        tm.autocast("tpu")
