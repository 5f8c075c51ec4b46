"""Gaps probe11 found running GAN / generative-training code, each checked against PyTorch."""
import copy

import numpy as np
import pytest

import tinymm
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _sn_linear(lib, w, b, u, v):
    m = lib.nn.utils.spectral_norm(lib.nn.Linear(3, 4))
    m.load_state_dict({"weight_orig": lib.tensor(w), "bias": lib.tensor(b),
                       "weight_u": lib.tensor(u), "weight_v": lib.tensor(v)})
    return m


def test_hook_spectral_norm_module_deepcopies_before_its_first_call_like_torch():
    # G_ema = copy.deepcopy(G) right after building a spectrally normalised G: torch's fresh
    # module holds weight.data (a leaf) until the first call, so the copy works
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    u, v = rng.standard_normal(4).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    outs = {}
    for lib in (torch, tinymm):
        m = _sn_linear(lib, w, b, u, v)
        twin = copy.deepcopy(m)
        m.eval(), twin.eval()
        outs[lib.__name__] = (m(lib.tensor(x)).detach().numpy(), twin(lib.tensor(x)).detach().numpy())
        m.train()
        m(lib.tensor(x))  # now weight is computed from weight_orig: not a leaf, copying refuses
        with pytest.raises(RuntimeError, match="deepcopy"):
            copy.deepcopy(m)
    for a, b_ in zip(outs["torch"], outs["tinymm"]):
        np.testing.assert_allclose(b_, a, rtol=1e-6, atol=1e-6)


def test_hook_spectral_norm_runs_no_power_iteration_at_construction_like_torch():
    # torch leaves u, v as drawn and weight = the raw weight until the first call; a power
    # iteration here would give every later sigma estimate one extra step
    lin = tinymm.nn.Linear(3, 4)
    raw = lin.weight.detach().numpy().copy()
    m = tinymm.nn.utils.spectral_norm(lin)
    assert not m.weight.requires_grad and m.weight.grad_fn is None
    np.testing.assert_array_equal(m.weight.numpy(), raw)
    u0, v0 = m.weight_u.numpy().copy(), m.weight_v.numpy().copy()
    # one training call from those buffers is exactly torch's one step from the same buffers
    t = _sn_linear(torch, raw, np.zeros(4, np.float32), u0, v0)
    x = np.ones((1, 3), np.float32)
    m.bias.data.zero_()
    np.testing.assert_allclose(m(tinymm.tensor(x)).detach().numpy(), t(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.weight_u.numpy(), t.weight_u.numpy(), rtol=1e-5, atol=1e-6)


def test_autograd_grad_refuses_empty_inputs_like_torch():
    # a penalty over "the parameters that still require grad", taken while every one is frozen
    for lib in (torch, tinymm):
        lin = lib.nn.Linear(3, 1).requires_grad_(False)
        x = lib.ones(2, 3, requires_grad=True)
        out = (lin(x) * x).sum()
        with pytest.raises(RuntimeError, match="`inputs` argument to `grad\\(\\)` cannot be empty"):
            lib.autograd.grad(out, [p for p in lin.parameters() if p.requires_grad], create_graph=True)
        with pytest.raises(RuntimeError, match="cannot be empty"):
            lib.autograd.grad(out, (p for p in lin.parameters() if p.requires_grad))
        # a generator of inputs is still read once and answered in order
        g = lib.autograd.grad(out, (t for t in [x]), retain_graph=True)
        assert len(g) == 1 and tuple(g[0].shape) == (2, 3)


def test_hook_spectral_norm_twice_on_one_parameter_raises_torchs_error():
    for lib in (torch, tinymm):
        m = lib.nn.utils.spectral_norm(lib.nn.Linear(3, 4))
        with pytest.raises(RuntimeError, match="Cannot register two spectral_norm hooks on the same parameter weight"):
            lib.nn.utils.spectral_norm(m)


class _Extra:
    """Modules whose extra_repr is one line, several lines, or empty, with and without children."""

    @staticmethod
    def build(lib):
        class Multi(lib.nn.Module):
            def extra_repr(self):
                return "a=1\nb=2"

        class WithChild(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = lib.nn.Linear(2, 3)

            def extra_repr(self):
                return "scale=0.5"

        return [lib.nn.utils.parametrizations.spectral_norm(lib.nn.Linear(3, 4)), Multi(), WithChild(),
                lib.nn.Linear(2, 2), lib.nn.Sequential(lib.nn.ReLU(), WithChild()), lib.nn.Module()]


def test_module_repr_puts_extra_repr_on_its_own_line_beside_children_like_torch():
    # print(netG) of a spectrally normalised layer: torch prints the features above the ModuleDict
    for ours, theirs in zip(_Extra.build(tinymm), _Extra.build(torch)):
        assert repr(ours).replace("tinymm", "torch") == repr(theirs)
