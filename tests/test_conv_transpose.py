"""conv_transpose1d/2d, ConvTranspose1d/2d and conv3d/Conv3d against PyTorch (values, gradients, float64
gradcheck, state dicts, output_size) and their shape errors."""
import numpy as np
import pytest

import tinymm as tm
from tinymm import nn
from tinymm.nn import functional as F
from helpers import TORCH_REASON, check_op, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

# (in, out/groups, k, stride, padding, output_padding, groups, dilation)
CASES_2D = [
    (2, 3, (3, 3), 1, 0, 0, 1, 1),
    (2, 3, (3, 2), 2, 1, 1, 1, 1),
    (4, 2, (2, 3), (3, 2), (2, 1), (1, 0), 2, (2, 1)),
    (3, 1, (3, 3), 2, 0, 1, 3, 1),  # depthwise
    (2, 2, (1, 1), 1, 0, 0, 1, 1),
]


@needs_torch
@pytest.mark.parametrize("cin,og,k,s,p,op,g,d", CASES_2D)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose2d_matches_torch(cin, og, k, s, p, op, g, d, bias):
    shapes = [(2, cin, 4, 5), (cin, og) + k] + ([(og * g,)] if bias else [])
    fn = (lambda x, w, b=None: F.conv_transpose2d(x, w, b, s, p, op, g, d))
    tfn = (lambda x, w, b=None: torch.nn.functional.conv_transpose2d(x, w, b, s, p, op, g, d))
    check_op(shapes, fn, tfn, atol=1e-5, rtol=1e-4)


@needs_torch
@pytest.mark.parametrize("k,s,p,op,g,d", [(3, 1, 0, 0, 1, 1), (4, 2, 1, 1, 1, 1), (3, 3, 2, 2, 2, 2)])
def test_conv_transpose1d_matches_torch(k, s, p, op, g, d):
    shapes = [(2, 4, 6), (4, 3, k), (3 * g,)]
    check_op(shapes, lambda x, w, b: F.conv_transpose1d(x, w, b, s, p, op, g, d),
             lambda x, w, b: torch.nn.functional.conv_transpose1d(x, w, b, s, p, op, g, d))
    check_op([(4, 6), (4, 3, k)], lambda x, w: F.conv_transpose1d(x, w, None, s, p, op, g, d),
             lambda x, w: torch.nn.functional.conv_transpose1d(x, w, None, s, p, op, g, d))


@needs_torch
@pytest.mark.parametrize("cls,shape", [("ConvTranspose1d", (2, 4, 5)), ("ConvTranspose2d", (2, 4, 5, 3))])
def test_conv_transpose_modules_load_torch_state_dicts(cls, shape):
    kw = dict(stride=2, padding=1, output_padding=1, groups=2)
    ours, theirs = getattr(nn, cls)(4, 6, 3, **kw), getattr(torch.nn, cls)(4, 6, 3, **kw)
    assert ours.weight.shape == tuple(theirs.weight.shape)
    bound = 1 / np.sqrt(3 * (3 if cls.endswith("1d") else 9))
    assert np.abs(ours.weight.detach().numpy()).max() <= bound + 1e-7 and np.abs(ours.bias.detach().numpy()).max() <= bound + 1e-7
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(ours(tm.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), atol=1e-5)
    # output_size picks the output padding
    size = [2 * s for s in shape[2:]]
    np.testing.assert_allclose(ours(tm.tensor(x), output_size=size).detach().numpy(),
                               theirs(torch.tensor(x), output_size=size).detach().numpy(), atol=1e-5)


def test_conv_transpose_is_the_input_gradient_of_conv():
    x = tm.randn(2, 3, 7, 6, requires_grad=True)
    w = tm.randn(4, 3, 3, 3)
    y = F.conv2d(x, w, stride=2, padding=1)
    g = tm.randn(*y.shape)
    (y * g).sum().backward()
    back = F.conv_transpose2d(g, w, stride=2, padding=1, output_padding=(0, 1))
    np.testing.assert_allclose(back.detach().numpy(), x.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_conv_transpose_errors_are_named():
    with pytest.raises(RuntimeError, match=r"input has 3 channels .* expects 4"):
        F.conv_transpose2d(tm.randn(1, 3, 4, 4), tm.randn(4, 2, 3, 3))
    with pytest.raises(RuntimeError, match="output padding must be smaller than either stride or dilation"):
        F.conv_transpose2d(tm.randn(1, 4, 4, 4), tm.randn(4, 2, 3, 3), output_padding=1)
    with pytest.raises(RuntimeError, match=r"bias has shape \(2,\), expected \(4,\)"):
        F.conv_transpose1d(tm.randn(1, 4, 4), tm.randn(4, 2, 3), tm.randn(2), groups=2)
    with pytest.raises(RuntimeError, match="expected a 4-D batched"):
        F.conv_transpose2d(tm.randn(4, 4), tm.randn(4, 2, 3, 3))
    with pytest.raises(ValueError, match="valid sizes range from 9 to 10"):
        nn.ConvTranspose2d(4, 2, 3, stride=2)(tm.randn(1, 4, 4, 4), output_size=(12, 12))


@needs_torch
@pytest.mark.parametrize("s,p,d,g", [(1, 0, 1, 1), (2, 1, 1, 2), ((1, 2, 1), (2, 0, 1), (2, 1, 1), 1)])
def test_conv3d_matches_torch(s, p, d, g):
    check_op([(2, 4, 5, 4, 5), (6, 4 // g, 3, 2, 3), (6,)], lambda x, w, b: F.conv3d(x, w, b, s, p, d, g),
             lambda x, w, b: torch.nn.functional.conv3d(x, w, b, s, p, d, g), atol=2e-5)


@needs_torch
@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_conv3d_module_same_padding_and_state_dict():
    ours, theirs = nn.Conv3d(2, 3, (2, 3, 2), padding="same"), torch.nn.Conv3d(2, 3, (2, 3, 2), padding="same")
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((3, 2, 4, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(tm.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(ours(tm.tensor(x[0])).detach().numpy(), theirs(torch.tensor(x[0])).detach().numpy(), atol=1e-5)
    with pytest.raises(RuntimeError, match="input has 3 channels"):
        F.conv3d(tm.randn(1, 3, 4, 4, 4), tm.randn(2, 2, 1, 1, 1))


@needs_torch
@pytest.mark.parametrize("s,p,op,g,d", [(1, 0, 0, 1, 1), (2, 1, 1, 2, 1), ((2, 1, 2), (1, 0, 1), (1, 0, 1), 1, (1, 2, 1))])
def test_conv_transpose3d_matches_torch(s, p, op, g, d):
    check_op([(1, 4, 3, 3, 2), (4, 2, 2, 2, 3), (2 * g,)],
             lambda x, w, b: F.conv_transpose3d(x, w, b, s, p, op, g, d),
             lambda x, w, b: torch.nn.functional.conv_transpose3d(x, w, b, s, p, op, g, d), atol=2e-5)
    ours, theirs = nn.ConvTranspose3d(4, 2 * g, 2, s, p, op, g, dilation=d), \
        torch.nn.ConvTranspose3d(4, 2 * g, 2, s, p, op, g, dilation=d)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((4, 3, 3, 2)).astype(np.float32)  # unbatched
    np.testing.assert_allclose(ours(tm.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), atol=1e-5)
