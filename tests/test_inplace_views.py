"""In-place writes and the graph, as PyTorch: an op keeps the input node it was given (a later
in-place write into that input is not part of it); in-place writes into a view (indexing,
``t``/``T``/``permute``, ``view``/``reshape``, ``unsqueeze``, ``diagonal``, ``unfold``) whose base is in the graph (``y[:, 0] *= 3``,
``v = y[0]; v.mul_(2)``, ``buf[1].copy_(w)``), as PyTorch: the base becomes a SetItem of the new
values (PyTorch's CopySlices), and a view is re-derived from its base's current history before
each write. Also: ``x[0]`` of a 1-D tensor is a view of x, so ``x[0].add_(1)`` changes x.
Every case is compared with PyTorch: values and gradients, or the exception class."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _x(m):
    return m.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)


def slice_mul_then_add(m):
    x = _x(m)
    y = x * 2
    y[:, 0] *= 3
    y[1:] += 1
    (y * y).sum().backward()
    return x.grad, y


def two_writes_into_one_view(m):
    x = _x(m)
    y = x * 2
    v = y[:, 0]
    v.mul_(3)
    v.add_(1)
    (y * y).sum().backward()
    return x.grad, v


def copy_into_a_buffer_row(m):
    w = m.tensor([1.0, 2.0], requires_grad=True)
    buf = m.zeros(3, 2)
    buf[1].copy_(w * 3)
    (buf ** 2).sum().backward()
    return w.grad, buf


def view_of_a_view(m):
    x = _x(m)
    y = x * 2
    v = y[1:][:, 1:]
    v.mul_(5)
    (y * y).sum().backward()
    return x.grad, y


def base_written_after_the_view_was_taken(m):
    x = _x(m)
    y = x * 2
    v = y[0]
    y.mul_(10)
    v.add_(1)
    (y * v.sum()).sum().backward()
    return x.grad, y


def clamp_then_sigmoid_on_a_row(m):
    x = _x(m)
    y = x * 1
    v = y[0]
    v.clamp_(max=1.5)
    v.sigmoid_()
    y.sum().backward()
    return x.grad, y


def the_view_used_after_its_write(m):
    x = _x(m)
    y = x * 1
    v = y[0]
    v.mul_(2)
    (v * y[0]).sum().backward()
    return (x.grad,)


def decode_boxes_style(m):
    x = _x(m)
    y = x.sigmoid()
    y[..., :1] *= 2
    y[..., 1:] = y[..., 1:] ** 2
    y.sum().backward()
    return x.grad, y


def element_and_row_views(m):
    x = _x(m)
    y = x * 1
    v, w = y[0], y[0, 1]
    w.mul_(7)
    v.add_(1)
    (y ** 2).sum().backward()
    return x.grad, y


def two_rows_from_two_leaves(m):
    a = m.tensor([1.0, 2.0], requires_grad=True)
    b = m.tensor([3.0, 4.0], requires_grad=True)
    y = m.zeros(2, 2)
    y[0].add_(a)
    y[1].addcmul_(a, b)
    (y ** 2).sum().backward()
    return a.grad, b.grad


def a_write_under_no_grad(m):
    x = _x(m)
    y = x * 1
    v = y[0]
    with m.no_grad():
        v.mul_(100)
    y.sum().backward()
    return x.grad, y


def consumer_made_before_an_in_place_write(m):
    """z = x * 2 keeps depending on x as it was: x.mul_(3) afterwards is not part of z."""
    a = m.tensor([1.0, 2.0], requires_grad=True)
    x = a * 1
    z = x * 2
    x.mul_(3)
    (z + x).sum().backward()
    return a.grad, z


def assignment_into_a_view(m):
    x = _x(m)
    w = m.tensor(5.0, requires_grad=True)
    y = x * 1
    v = y[0]
    v[1] = w * 2
    (y * y).sum().backward()
    return x.grad, w.grad, y


def assignment_from_the_same_view(m):
    x = _x(m)
    y = x * 1
    v = y[1:]
    v[:, 0] = v[:, 1] * 3
    (y ** 2).sum().backward()
    return x.grad, y


def view_taken_before_the_base_was_written(m):
    x = _x(m)
    y = x * 1
    v = y[:, 0]
    y.mul_(2)
    v.sum().backward()
    return x.grad, v


def view_of_a_view_after_base_and_view_writes(m):
    x = _x(m)
    y = x * 1
    v = y[0]
    w = v[1]
    y.mul_(5)
    v.add_(1)
    (w * 2 + v.sum()).backward()
    return x.grad, w


def transposed_view_written(m):
    x = _x(m)
    y = x * 2
    y.t()[0].mul_(3)
    y.T.add_(1)
    (y * y).sum().backward()
    return x.grad, y


def diagonal_regularised(m):
    """``cov.diagonal().add_(eps)``: a common way to keep a matrix positive definite."""
    x = _x(m)
    eps = m.tensor(0.5, requires_grad=True)
    cov = x @ x.T
    cov.diagonal().add_(eps)
    (cov ** 2).sum().backward()
    return x.grad, eps.grad, cov


def reshaped_and_unsqueezed_views_written(m):
    x = m.arange(6.0).reshape(2, 3).requires_grad_()
    y = x * 1
    y.view(-1)[1:4].mul_(2)
    y.unsqueeze(0).permute(2, 1, 0).squeeze(-1)[2].add_(1)
    y.movedim(0, 1).flatten().narrow(0, 0, 2).mul_(5)  # flatten of a transpose copies: no write
    (y * y).sum().backward()
    return x.grad, y


def unfold_windows_written(m):
    x = m.arange(8.0).reshape(2, 4).requires_grad_()
    y = x * 1
    y.unfold(1, 2, 2)[:, :, 0].mul_(3)
    u = y.unfold(1, 3, 1)  # overlapping windows: read, not written
    (u * u).sum().backward()
    return x.grad, y


def a_view_taken_before_a_write_into_the_base(m):
    x = _x(m)
    y = x * 1
    v = y.t()
    y.mul_(2)
    (v * v).sum().backward()
    return (x.grad,)


def restrided_in_place_then_written(m):
    """``t_()``/``unsqueeze_()`` keep the tensor in the graph; later writes reach its history,
    also when it viewed another tensor."""
    x = _x(m)
    z = x * 1
    y = z[1:]
    y.t_()
    y.mul_(3)
    w = x * 2
    w.unsqueeze_(0)
    w[0, 1].add_(1)
    (z * z).sum().backward()
    (w * w).sum().backward()
    return x.grad, z, w


CASES = [transposed_view_written, restrided_in_place_then_written, diagonal_regularised, reshaped_and_unsqueezed_views_written,
         unfold_windows_written, a_view_taken_before_a_write_into_the_base,
         consumer_made_before_an_in_place_write, assignment_into_a_view, assignment_from_the_same_view,
         view_taken_before_the_base_was_written, view_of_a_view_after_base_and_view_writes, slice_mul_then_add, two_writes_into_one_view, copy_into_a_buffer_row, view_of_a_view,
         base_written_after_the_view_was_taken, clamp_then_sigmoid_on_a_row, the_view_used_after_its_write,
         element_and_row_views, two_rows_from_two_leaves, a_write_under_no_grad]


@needs_torch
@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_matches_torch(case):
    for want, got in zip(case(torch), case(tm)):
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-6)


@needs_torch
def test_a_saved_view_written_later_is_caught_by_the_version_check():
    """pow saved y[..., 1:], which the assignment then overwrites: both libraries refuse."""
    for m in (torch, tm):
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            decode_boxes_style(m)


@needs_torch
def test_a_view_of_a_leaf_that_requires_grad_is_refused():
    for m in (torch, tm):
        w = m.tensor([1.0, 2.0], requires_grad=True)
        with pytest.raises(RuntimeError, match="view of a leaf"):
            w[0].mul_(2)


@needs_torch
def test_views_that_record_no_base_are_refused_with_the_fix_named():
    """split/chunk outputs (PyTorch refuses these too). (unbind's are indexing views here, which
    take the write where PyTorch refuses it.)"""
    for m in (torch, tm):
        with pytest.raises(RuntimeError):
            (_x(m) * 2).split(1)[0].add_(1)
    with pytest.raises(RuntimeError, match="clone"):
        (_x(tm) * 2).chunk(2)[1].mul_(2)


@needs_torch
@pytest.mark.parametrize("op", ["diagonal", "unfold", "t", "view", "unsqueeze", "permute", "narrow"])
def test_view_ops_share_memory_with_their_input(op):
    """Writing into the result writes into the input, as PyTorch (no grad involved)."""
    make = {"diagonal": lambda a: a.diagonal(1), "unfold": lambda a: a.unfold(1, 2, 2), "t": lambda a: a.t(),
            "view": lambda a: a.view(2, 2, 3), "unsqueeze": lambda a: a.unsqueeze(1),
            "permute": lambda a: a.permute(1, 0), "narrow": lambda a: a.narrow(1, 1, 2)}[op]
    got = []
    for m in (torch, tm):
        a = m.zeros(4, 3)
        make(a).add_(1)
        got.append(a.numpy().copy())
    np.testing.assert_array_equal(got[1], got[0])


def test_diag_of_a_matrix_is_a_copy():
    a = tm.zeros(3, 3)
    tm.diag(a).add_(1)
    assert float(a.sum()) == 0.0


@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_an_element_is_a_view(dtype):
    for m in (torch, tm):
        x = m.zeros(3, dtype=getattr(m, dtype))
        x[1].fill_(1)
        y = m.zeros(2, 2, dtype=getattr(m, dtype))
        y[1, 0].fill_(1)
        assert x.tolist() == [0, 1, 0] and y.tolist() == [[0, 0], [1, 0]]


def test_a_copied_view_owns_its_memory():
    import copy
    import pickle

    base = tm.zeros(3, 2)
    for clone in (copy.deepcopy(base[:, 0]), pickle.loads(pickle.dumps(base[:, 0]))):
        clone.add_(1)
        assert float(base.sum()) == 0.0 and clone._view_src is None


@needs_torch
def test_writing_into_an_expanded_tensor_is_refused_as_torch():
    for m in (torch, tm):
        x = m.zeros(1, 3).expand(2, 3)
        with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
            x.add_(1)
