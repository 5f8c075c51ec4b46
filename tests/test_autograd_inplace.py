"""Autograd cannot be fooled by in-place edits: each case behaves as PyTorch does.

Every scenario is written once against the shared API and run on tinymm and on torch (the
torch run is the oracle: it proves the expected behaviour is PyTorch's; it skips with the
reason when torch is not installed, the tinymm run never does).
"""
import numpy as np
import pytest

import tinymm as tm
import tinymm.nn.functional as tmF
from helpers import TORCH_REASON, torch

MODIFIED = "modified by an inplace operation"


def _libs():
    return [
        pytest.param((tm, tmF), id="tinymm"),
        pytest.param(
            (torch, torch.nn.functional if torch is not None else None),
            id="torch",
            marks=pytest.mark.skipif(torch is None, reason=TORCH_REASON),
        ),
    ]


def _vals(t):
    return np.asarray(t.detach().numpy())


@pytest.mark.parametrize("lib", _libs())
def test_input_saved_by_mul_then_modified_raises_naming_the_op(lib):
    L, _ = lib
    x = L.ones(3, requires_grad=True)
    a = L.ones(3) * 2
    y = (x * a).sum()
    a[0] = 100.0
    with pytest.raises(RuntimeError, match=MODIFIED) as err:
        y.backward()
    assert "is at version 1; expected version 0" in str(err.value)
    if L is tm:
        assert "MulBackward" in str(err.value) and "float32 tensor of shape (3,)" in str(err.value)


@pytest.mark.parametrize("lib", _libs())
def test_writing_through_detach_into_a_saved_output_raises(lib):
    L, _ = lib
    x = L.ones(3, requires_grad=True)
    y = (x * 1.0).exp()  # exp saves its output
    y.detach()[0] = 5.0  # detach shares memory and the version counter
    assert y._version == 1
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.sum().backward()


@pytest.mark.parametrize("lib", _libs())
def test_zero_on_a_leaf_that_requires_grad_raises_outside_no_grad(lib):
    L, _ = lib
    w = L.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        w.zero_()
    with pytest.raises(RuntimeError, match="leaf"):
        w.add_(1.0)
    with L.no_grad():
        w.zero_()
    assert w._version == 1 and _vals(w).tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("lib", _libs())
def test_editing_embedding_indices_before_backward_raises(lib):
    L, F = lib
    w = L.ones(5, 2, requires_grad=True)
    idx = L.tensor([0, 1, 1])
    y = F.embedding(idx, w).sum()
    idx[0] = 3
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()


@pytest.mark.parametrize("lib", _libs())
def test_editing_cross_entropy_targets_before_backward_raises(lib):
    L, F = lib
    x = L.tensor(np.arange(12, dtype=np.float32).reshape(3, 4) / 7, requires_grad=True)
    t = L.tensor([0, 1, 2])
    y = F.cross_entropy(x, t)
    t[0] = 3
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()


@pytest.mark.parametrize("lib", _libs())
def test_setitem_of_a_value_that_requires_grad_records_the_op(lib):
    L, _ = lib
    w = L.tensor([1.0, 3.0], requires_grad=True)
    out = L.zeros(3)
    out[0] = (w * w).sum()
    assert out.requires_grad and out.grad_fn is not None
    (out * L.tensor([2.0, 5.0, 7.0])).sum().backward()
    np.testing.assert_allclose(_vals(w.grad), [2 * 2 * 1.0, 2 * 2 * 3.0])


@pytest.mark.parametrize("lib", _libs())
def test_setitem_into_a_non_leaf_passes_gradient_to_the_untouched_part(lib):
    L, _ = lib
    x = L.ones(3, requires_grad=True)
    w = L.tensor([4.0], requires_grad=True)
    y = x * 2
    y[1:2] = w * 3  # a slice of the target gets a value with its own history
    y.sum().backward()
    np.testing.assert_allclose(_vals(x.grad), [2.0, 0.0, 2.0])
    np.testing.assert_allclose(_vals(w.grad), [3.0])


@pytest.mark.parametrize("lib", _libs())
def test_version_counter_is_shared_by_detach_and_views(lib):
    L, _ = lib
    x = L.zeros(4)
    d = x.detach()
    d[0] = 2.0
    assert x._version == d._version == 1
    v = x[1:]
    v.fill_(3.0)
    assert x._version == 2 and v._version == 2
    x.reshape(2, 2).mul_(2.0)
    assert x._version == 3 and _vals(x).tolist() == [4.0, 6.0, 6.0, 6.0]


@pytest.mark.parametrize("lib", _libs())
def test_in_place_ops_on_a_non_leaf_are_recorded(lib):
    L, _ = lib
    x = L.tensor([0.5, 1.0, 3.0], requires_grad=True)
    y = x * 2
    y.add_(1.0)
    y.mul_(3.0)
    y.clamp_(0.0, 10.0)
    (y * y).sum().backward()
    np.testing.assert_allclose(_vals(y), [6.0, 9.0, 10.0])
    np.testing.assert_allclose(_vals(x.grad), [2 * 6.0 * 6, 2 * 9.0 * 6, 0.0])


@pytest.mark.parametrize("lib", _libs())
def test_changing_an_operand_whose_value_no_gradient_needs_is_fine(lib):
    L, _ = lib
    x = L.tensor([1.0, 2.0], requires_grad=True)
    a = L.tensor([3.0, 4.0])
    y = (x * a).sum()  # d/dx needs a, not x: x is not saved
    with L.no_grad():
        x.add_(10.0)
    y.backward()
    np.testing.assert_allclose(_vals(x.grad), [3.0, 4.0])


@pytest.mark.parametrize("lib", _libs())
def test_copy_into_a_plain_tensor_passes_gradient_to_the_source(lib):
    L, _ = lib
    w = L.tensor([1.0, 2.0], requires_grad=True)
    buf = L.zeros(2, 2)
    buf.copy_(w * 3)  # broadcast over the rows
    buf.sum().backward()
    np.testing.assert_allclose(_vals(w.grad), [6.0, 6.0])


def test_in_place_with_gradient_on_a_view_of_graph_memory_reaches_the_base():
    # PyTorch rewrites the base tensor's graph here (CopySlices); so does tinymm
    # (tests/test_inplace_views.py compares many such cases with torch)
    x = tm.ones(4, requires_grad=True)
    y = x * 2
    v = y[1:3]
    v.mul_(3.0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 6.0, 6.0, 2.0])


def test_in_place_on_a_layers_output_is_allowed_even_when_its_array_is_a_numpy_view():
    # linear, conv and batch norm return NumPy views of their own buffers (a reshaped GEMM
    # result); that memory belongs to the output alone, as in PyTorch: the ResNet residual
    # ``out += shortcut(x)`` must work and give torch's gradients.
    from tinymm.tensor import storage_of

    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    x0 = rng.standard_normal((5, 3)).astype(np.float32)
    x = tm.tensor(x0, requires_grad=True)
    y = tmF.linear(x, tm.tensor(w))
    assert storage_of(y._data) is not y._data  # the case this test is about
    y += x @ tm.tensor(w.T)
    y.mul_(0.5)
    (y * y).sum().backward()
    if torch is not None:
        tx = torch.tensor(x0, requires_grad=True)
        ty = torch.nn.functional.linear(tx, torch.tensor(w))
        ty += tx @ torch.tensor(w.T)
        ty.mul_(0.5)
        (ty * ty).sum().backward()
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-5)
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5)
    # a view that records no base (split's outputs, as PyTorch) is still refused
    h = x * 2
    with pytest.raises(RuntimeError, match="view of another tensor"):
        h.split(1)[0].add_(1.0)
    # an indexing view of a tensor outside the graph takes the gradient, as in PyTorch
    buf = tm.zeros(4, 3)
    buf[1:3].add_(x[:2])
    x.grad = None
    (buf * buf).sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[:2], 2 * x0[:2], rtol=1e-6)
    assert not x.grad.numpy()[2:].any()
