"""F.conv1d / F.conv2d and nn.Conv1d / nn.Conv2d against PyTorch (values, gradients, float64
gradcheck through ``check_op``), default init, repr, state dicts, and the refused inputs."""
import math

import numpy as np
import pytest

import tinymm as tm
import tinymm.nn.functional as F
from tinymm import nn
from tinymm.kernels.conv import reference_backward
from helpers import TORCH_REASON, check_op, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)
# PyTorch warns that "same" with an even kernel copies the input; it is what is being compared.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

# (x shape, w shape, keyword arguments): strides, padding of every kind, dilation, groups
CONV2D_CASES = [
    ((2, 3, 7, 6), (4, 3, 3, 3), dict()),
    ((2, 3, 7, 6), (4, 3, 3, 3), dict(stride=2, padding=1)),
    ((1, 4, 8, 7), (6, 2, 3, 2), dict(stride=(2, 1), padding=(2, 1), dilation=(1, 2), groups=2)),
    ((2, 4, 6, 6), (4, 1, 3, 3), dict(padding="same", groups=4)),  # depthwise
    ((1, 2, 6, 5), (3, 2, 2, 4), dict(padding="same", dilation=(2, 1))),  # even kernels: asymmetric
    ((2, 2, 5, 5), (3, 2, 3, 3), dict(padding="valid", dilation=2)),
    ((3, 7, 6), (5, 3, 2, 2), dict(padding=1)),  # unbatched (C, H, W)
]

CONV1D_CASES = [
    ((2, 3, 11), (4, 3, 3), dict()),
    ((2, 4, 12), (6, 2, 4), dict(stride=3, padding=2, dilation=2, groups=2)),
    ((1, 3, 9), (3, 1, 4), dict(padding="same", groups=3)),
    ((3, 10), (2, 3, 5), dict(padding=2)),  # unbatched (C, L)
]


def torch_fn(name, kwargs):
    return lambda x, w, b: getattr(torch.nn.functional, name)(x, w, b, **kwargs)


@needs_torch
@pytest.mark.parametrize("x_shape,w_shape,kwargs", CONV2D_CASES)
def test_conv2d_matches_torch(x_shape, w_shape, kwargs):
    check_op([x_shape, w_shape, (w_shape[0],)], lambda x, w, b: F.conv2d(x, w, b, **kwargs),
             torch_fn("conv2d", kwargs))


@needs_torch
@pytest.mark.parametrize("x_shape,w_shape,kwargs", CONV1D_CASES)
def test_conv1d_matches_torch(x_shape, w_shape, kwargs):
    check_op([x_shape, w_shape, (w_shape[0],)], lambda x, w, b: F.conv1d(x, w, b, **kwargs),
             torch_fn("conv1d", kwargs))


@needs_torch
def test_conv2d_without_bias_and_float32_sizes_of_a_real_layer():
    """No bias; a 16 -> 16 layer big enough for the parallel im2col + GEMM path, in float32."""
    check_op([(4, 3, 9, 9), (5, 3, 3, 3)], lambda x, w: F.conv2d(x, w, padding=1),
             lambda x, w: torch.nn.functional.conv2d(x, w, padding=1))
    check_op([(4, 16, 24, 20), (16, 16, 3, 3)], lambda x, w: F.conv2d(x, w, stride=1, padding=1),
             lambda x, w: torch.nn.functional.conv2d(x, w, padding=1), atol=1e-4, gradcheck=False)


def test_input_without_grad_gets_none_and_weights_still_learn():
    x = tm.tensor(np.random.default_rng(0).standard_normal((2, 3, 5, 5)))
    conv = nn.Conv2d(3, 2, 3, dtype=np.float64)
    conv(x).sum().backward()
    assert x.grad is None
    assert conv.weight.grad.shape == (2, 3, 3, 3) and conv.bias.grad.shape == (2,)
    np.testing.assert_allclose(conv.bias.grad.numpy(), np.full(2, 18.0))  # 2 images x 3x3 outputs

# ----------------------------------------------------------------------------- modules


def copy_into_torch(ours, theirs):
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            p.copy_(torch.tensor(getattr(ours, name).detach().numpy()))


MODULE_CASES = [
    (nn.Conv2d, "Conv2d", (3, 8, 3), dict(padding=1), (2, 3, 10, 9)),
    (nn.Conv2d, "Conv2d", (4, 6, (2, 3)), dict(stride=(1, 2), dilation=(2, 1), groups=2, bias=False), (2, 4, 9, 11)),
    (nn.Conv2d, "Conv2d", (6, 6, 3), dict(padding="same", groups=6), (1, 6, 8, 8)),
    (nn.Conv1d, "Conv1d", (40, 16, 5), dict(padding=2), (2, 40, 30)),
    (nn.Conv1d, "Conv1d", (4, 4, 4), dict(padding="same", dilation=2, groups=4), (2, 4, 13)),
]


@needs_torch
@pytest.mark.parametrize("cls,torch_name,args,kwargs,x_shape", MODULE_CASES)
def test_module_matches_torch_forward_and_backward(cls, torch_name, args, kwargs, x_shape):
    ours = cls(*args, **kwargs)
    theirs = getattr(torch.nn, torch_name)(*args, **kwargs)
    copy_into_torch(ours, theirs)
    x = np.random.default_rng(1).standard_normal(x_shape).astype(np.float32)
    tx, xx = tm.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, yt = ours(tx), theirs(xx)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    g = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
    y.backward(tm.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(tx.grad.numpy(), xx.grad.numpy(), rtol=1e-4, atol=1e-5)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(getattr(ours, name).grad.numpy(), p.grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)
    assert repr(ours) == repr(theirs)


@needs_torch
@pytest.mark.parametrize("cls,torch_name,args,kwargs,x_shape", MODULE_CASES)
def test_module_float64_gradcheck(cls, torch_name, args, kwargs, x_shape):
    ours = cls(*args, **kwargs, dtype=np.float64)
    small = (1, x_shape[1]) + tuple(min(s, 6) for s in x_shape[2:])
    x = tm.tensor(np.random.default_rng(3).standard_normal(small), requires_grad=True)
    params = [p for p in (ours.weight, ours.bias) if p is not None]
    tm.gradcheck(lambda x, *ps: ours(x), [x] + params)


@needs_torch
def test_state_dict_round_trip_with_torch():
    ours = nn.Conv2d(3, 16, 3, padding=1)
    theirs = torch.nn.Conv2d(3, 16, 3, padding=1)
    theirs.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in ours.state_dict().items()})
    back = nn.Conv2d(3, 16, 3, padding=1)
    back.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict()) == ["bias", "weight"]
    x = np.random.default_rng(4).standard_normal((1, 3, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(back(tm.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


@needs_torch
@pytest.mark.parametrize("name,args,kwargs", [
    ("Conv2d", (3, 16, 3), {}), ("Conv2d", (3, 16, 3), dict(stride=2, padding=(1, 2), bias=False)),
    ("Conv2d", (4, 8, 2), dict(padding="same", dilation=2, groups=4)), ("Conv2d", (4, 8, 3), dict(padding="valid")),
    ("Conv1d", (40, 64, 5), dict(padding=2)), ("Conv1d", (4, 8, 3), dict(stride=2, dilation=3, groups=2, bias=False)),
])
def test_repr_matches_torch(name, args, kwargs):
    assert repr(getattr(nn, name)(*args, **kwargs)) == repr(getattr(torch.nn, name)(*args, **kwargs))


def test_default_init_bounds():
    """kaiming_uniform(a=sqrt 5) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias too."""
    conv = nn.Conv2d(8, 32, 3, groups=2)
    fan_in = 8 // 2 * 9
    bound = 1 / math.sqrt(fan_in)
    w, b = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    assert w.shape == (32, 4, 3, 3) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert np.abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound  # std of U(-a, a) is a / sqrt 3
    assert np.abs(b).max() <= bound
    assert nn.Conv1d(3, 5, 4, bias=False).bias is None


# ----------------------------------------------------------------------------- refused inputs


def tensor(*shape):
    return tm.tensor(np.zeros(shape, np.float32))


@pytest.mark.parametrize("call,message", [
    (lambda: F.conv2d(tensor(1, 3, 8, 8), tensor(4, 4, 3, 3)), r"input has 3 channels \(shape \(1, 3, 8, 8\)\).*expects 4"),
    (lambda: F.conv2d(tensor(1, 4, 8, 8), tensor(4, 3, 3, 3), groups=2), r"input has 4 channels.*groups=2 expects 6"),
    (lambda: F.conv2d(tensor(1, 4, 8, 8), tensor(6, 2, 3, 3), groups=4), r"6 output channels.*not divisible by groups=4"),
    (lambda: F.conv2d(tensor(1, 3, 4, 4), tensor(2, 3, 5, 5)), r"kernel of size \(5, 5\).*larger than the padded input \(4, 4\)"),
    (lambda: F.conv2d(tensor(1, 3, 4, 4), tensor(2, 3, 3, 3), dilation=2), r"dilated \(5, 5\).*padded input \(4, 4\)"),
    (lambda: F.conv2d(tensor(3, 8), tensor(2, 3, 3, 3)), r"4-D batched .* or 3-D unbatched input, got 2-D input of shape \(3, 8\)"),
    (lambda: F.conv2d(tensor(1, 1, 3, 8, 8), tensor(2, 3, 3, 3)), r"got 5-D input of shape \(1, 1, 3, 8, 8\)"),
    (lambda: F.conv1d(tensor(1, 1, 3, 8), tensor(2, 3, 3)), r"3-D batched \(B, C, L\) or 2-D unbatched input, got 4-D"),
    (lambda: F.conv2d(tensor(1, 3, 8, 8), tensor(2, 3, 3)), r"weight must be 4-D .* got shape \(2, 3, 3\)"),
    (lambda: F.conv2d(tensor(1, 3, 8, 8), tensor(2, 3, 3, 3), tensor(3)), r"bias has shape \(3,\), expected \(2,\)"),
    (lambda: F.conv2d(tensor(1, 3, 8, 8), tensor(2, 3, 3, 3), stride=2, padding="same"), r"'same' is not supported for strided"),
    (lambda: F.conv2d(tensor(1, 3, 8, 8), tensor(2, 3, 3, 3), padding="full"), r"invalid padding string 'full'"),
    (lambda: F.conv2d(tensor(1, 3, 8, 8), tensor(2, 3, 3, 3), stride=0), r"stride must be >= 1, got \(0, 0\)"),
    (lambda: F.conv2d(tensor(1, 3, 8, 8), tensor(2, 3, 3, 3), padding=(1, 2, 3)), r"padding must be an int or a tuple of 2 ints"),
    (lambda: F.conv2d(tensor(1, 3, 8, 8), tensor(2, 3, 3, 3), groups=0), r"groups must be a positive int"),
])
def test_bad_input_raises_runtime_error_naming_shapes(call, message):
    with pytest.raises(RuntimeError, match=message):
        call()


def test_conv2d_accepts_unbatched_3d_input_like_torch():
    x = np.random.default_rng(5).standard_normal((3, 6, 6)).astype(np.float32)
    w = np.random.default_rng(6).standard_normal((2, 3, 3, 3)).astype(np.float32)
    y = F.conv2d(tm.tensor(x), tm.tensor(w), padding=1)
    assert y.shape == (2, 6, 6)
    np.testing.assert_allclose(y.detach().numpy(), F.conv2d(tm.tensor(x[None]), tm.tensor(w), padding=1).detach().numpy()[0], rtol=1e-6)


def test_dtype_and_module_argument_errors():
    with pytest.raises(TypeError, match="input must be floating"):
        F.conv2d(tm.tensor(np.zeros((1, 3, 4, 4), np.int64)), tensor(2, 3, 3, 3))
    with pytest.raises(TypeError, match="dtype mismatch"):
        F.conv2d(tm.tensor(np.zeros((1, 3, 4, 4))), tensor(2, 3, 3, 3))
    with pytest.raises(ValueError, match="in_channels \\(3\\) must be divisible by groups \\(2\\)"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels \\(5\\) must be divisible by groups \\(2\\)"):
        nn.Conv2d(4, 5, 3, groups=2)
    with pytest.raises(ValueError, match="'same' is not supported for strided"):
        nn.Conv1d(4, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(4, 4, 3, padding_mode="mirror")


def test_non_contiguous_input_and_broadcast_gradient():
    """A transposed (non-contiguous) input, and sum()'s gradient, a broadcast view, both work."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 6, 5))
    w = rng.standard_normal((4, 3, 3, 3))
    xt = tm.tensor(np.ascontiguousarray(x.transpose(0, 1, 3, 2)), requires_grad=True)
    tw = tm.tensor(w, requires_grad=True)
    y = F.conv2d(xt.transpose(2, 3), tw, padding=1)
    y.sum().backward()
    want = F.conv2d(tm.tensor(x), tm.tensor(w), padding=1)
    np.testing.assert_allclose(y.detach().numpy(), want.detach().numpy(), rtol=1e-12)
    ones = np.ones(want.shape)
    want_dx = reference_backward(x, w, ones, padding=((1, 1), (1, 1)))[0]
    np.testing.assert_allclose(xt.grad.numpy(), want_dx.transpose(0, 1, 3, 2), rtol=1e-10)
