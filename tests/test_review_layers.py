"""Regressions found by a hostile review of the layers against PyTorch (branch revc).

One test per fix, named for the behaviour; each builds the same module in torch and tinymm
with copied weights and compares outputs and gradients, or the exception class on bad input.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinymm as tm
import tinymm.nn as mnn
import tinymm.nn.functional as MF

from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

if torch is not None:
    import torch.nn as tnn
    import torch.nn.functional as TF


def _copy(tmod, mmod):
    mmod.load_state_dict({k: tm.tensor(v.detach().numpy().copy()) for k, v in tmod.state_dict().items()})


def _compare(tmod, mmod, x, call=None, atol=1e-5):
    """Same weights, same input: outputs and the gradients of input and parameters agree."""
    call = call or (lambda m, a: m(a))
    _copy(tmod, mmod)
    tx = torch.tensor(x, requires_grad=True)
    mx = tm.tensor(x, requires_grad=True)
    tout, mout = call(tmod, tx), call(mmod, mx)
    np.testing.assert_allclose(mout.detach().numpy(), tout.detach().numpy(), atol=atol, rtol=1e-4)
    r = np.random.default_rng(1).standard_normal(tuple(tout.shape)).astype(x.dtype)
    (tout * torch.tensor(r)).sum().backward()
    (mout * tm.tensor(r)).sum().backward()
    np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), atol=atol * 10, rtol=1e-4)
    mparams = dict(mmod.named_parameters())
    for name, p in tmod.named_parameters():
        np.testing.assert_allclose(mparams[name].grad.numpy(), p.grad.numpy(), atol=atol * 10, rtol=1e-4)
    return mout


def _x(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ----------------------------------------------------------------------------- convolution


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("n,padding", [(1, 2), (2, (1, 2)), (2, "same"), (3, 1)])
def test_conv_padding_modes_pad_then_convolve(mode, n, padding):
    kw = dict(padding=padding, padding_mode=mode, bias=True)
    tmod = getattr(tnn, f"Conv{n}d")(2, 3, 2 if padding == "same" else 3, **kw)
    mmod = getattr(mnn, f"Conv{n}d")(2, 3, 2 if padding == "same" else 3, **kw)
    assert repr(mmod) == repr(tmod)
    _compare(tmod, mmod, _x(2, 2, *([5] * n)))


def test_conv_transpose_repr_puts_output_padding_before_groups():
    kw = dict(stride=2, output_padding=1, groups=2, bias=False)
    assert repr(mnn.ConvTranspose2d(4, 4, 3, **kw)) == repr(tnn.ConvTranspose2d(4, 4, 3, **kw))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_conv_transpose_output_padding_reached_through_dilation(n):
    # output_padding < dilation but >= padding + stride: the extra positions hold the bias
    kw = dict(stride=1, dilation=2, output_padding=1)
    tmod = getattr(tnn, f"ConvTranspose{n}d")(2, 3, 2, **kw)
    mmod = getattr(mnn, f"ConvTranspose{n}d")(2, 3, 2, **kw)
    _compare(tmod, mmod, _x(2, 2, *([3] * n)))


def test_conv_transpose3d_input_gradient_is_zeros_when_no_depth_is_reached():
    kw = dict(stride=3, padding=1)
    tmod, mmod = tnn.ConvTranspose3d(3, 1, (1, 3, 1), **kw), mnn.ConvTranspose3d(3, 1, (1, 3, 1), **kw)
    _compare(tmod, mmod, _x(2, 3, 2, 5, 3))
