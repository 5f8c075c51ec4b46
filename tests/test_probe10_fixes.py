"""Gaps the probe10 scripts (tests/pytorch_scripts: hifigan, conformer, videomae_timesformer,
slowfast_x3d, fairseq_speech, waveglow: video and speech model code) and their idioms found, each compared
with torch: ``torch.conv_tbc``, the time-major convolution fairseq's ConvTBC module calls, and
``torch.onnx.is_in_onnx_export()``, which fairseq's positional embedding asks on every forward."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _inputs(t=7, b=2, cin=3, k=3, cout=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((t, b, cin)).astype(np.float32), rng.standard_normal((k, cin, cout)).astype(np.float32),
            rng.standard_normal(cout).astype(np.float32))


@needs_torch
@pytest.mark.parametrize("pad,k", [(p, k) for p in (0, 1, 2, 4, -1, -2) for k in (1, 3, 4) if 7 + 2 * p - k >= 0])
def test_conv_tbc_values_and_gradients_match_torch(pad, k):
    x, w, b = _inputs(k=k)  # 7 steps: the combinations above leave at least one output step
    outs, grads = [], []
    for lib in (torch, tm):
        tx, tw, tb = (lib.tensor(a, requires_grad=True) for a in (x, w, b))
        out = lib.conv_tbc(tx, tw, tb, pad)
        # a weighted sum, so each output position has its own gradient
        (out * lib.arange(out.numel(), dtype=lib.float32).reshape(out.shape).sin()).sum().backward()
        outs.append(out.detach().numpy())
        grads.append([g.grad.numpy() for g in (tx, tw, tb)])
    assert outs[0].shape == outs[1].shape
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-5)
    for gt, gm in zip(*grads):
        np.testing.assert_allclose(gm, gt, rtol=1e-5, atol=1e-5)


@needs_torch
def test_conv_tbc_keyword_pad_and_float64_match_torch():
    x, w, b = (a.astype(np.float64) for a in _inputs())
    t = torch.conv_tbc(torch.tensor(x), torch.tensor(w), torch.tensor(b), pad=1)
    m = tm.conv_tbc(tm.tensor(x), tm.tensor(w), tm.tensor(b), pad=1)
    assert m.dtype == tm.float64
    np.testing.assert_allclose(m.numpy(), t.numpy(), rtol=1e-12, atol=1e-12)


@needs_torch
@pytest.mark.parametrize("case", ["input_2d", "weight_2d", "bias_size", "channels", "too_short"])
def test_conv_tbc_rejects_what_torch_rejects_naming_the_problem(case):
    x, w, b = _inputs()
    args = {"input_2d": (x[0], w, b, 0), "weight_2d": (x, w[0], b, 0), "bias_size": (x, w, b[:2], 0),
            "channels": (x, w[:, :2], b, 0), "too_short": (x, w, b, -3)}[case]
    words = {"input_2d": "Input must have 3 dims", "weight_2d": "Weight tensor must have 3 dims",
             "bias_size": "Bias size must equal", "channels": "input channels", "too_short": "negative dimension"}[case]
    with pytest.raises(RuntimeError, match=words):
        torch.conv_tbc(*(torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args))
    with pytest.raises(RuntimeError, match=words):
        tm.conv_tbc(*(tm.tensor(a) if isinstance(a, np.ndarray) else a for a in args))


@needs_torch
def test_conv_tbc_needs_a_bias_as_torch():
    x, w, _ = _inputs()
    for lib in (torch, tm):
        with pytest.raises(TypeError, match="bias"):
            lib.conv_tbc(lib.tensor(x), lib.tensor(w), None)


# ---------------------------------------------------------------- torch.onnx.is_in_onnx_export
@needs_torch
def test_onnx_is_in_onnx_export_answers_as_torch_outside_an_export():
    # fairseq's SinusoidalPositionalEmbedding.forward asks this on every call
    import tinymm.onnx

    assert tm.onnx.is_in_onnx_export() is torch.onnx.is_in_onnx_export() is False
    assert tinymm.onnx.is_in_onnx_export is tm.onnx.is_in_onnx_export
    assert "onnx" in dir(tm)
