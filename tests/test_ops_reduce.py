"""Reductions, softmax and matmul: forward and gradients against PyTorch and NumPy."""
import numpy as np
import pytest

import tinymm as tm
from helpers import check_op, torch


@pytest.mark.parametrize("dim,keep", [(None, False), (0, False), (1, True), ((0, 2), False), (-1, True)])
def test_sum_and_mean_over_dims_match_torch(dim, keep):
    tdim = dim if dim is not None else tuple(range(3))
    check_op([(2, 3, 4)], lambda x: x.sum(dim=dim, keepdim=keep), lambda x: x.sum(dim=tdim, keepdim=keep))
    check_op([(2, 3, 4)], lambda x: x.mean(dim=dim, keepdim=keep), lambda x: x.mean(dim=tdim, keepdim=keep))


def test_numpy_spellings_axis_and_keepdims_are_accepted():
    x = tm.tensor(np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(x.sum(axis=1, keepdims=True).detach().numpy(), np.arange(12.0).reshape(3, 4).sum(1, keepdims=True))
    np.testing.assert_array_equal(x.max(axis=0).detach().numpy(), np.arange(12.0).reshape(3, 4).max(0))
    with pytest.raises(TypeError, match="dim or axis"):
        x.sum(dim=0, axis=1)


@pytest.mark.parametrize("correction", [0, 1])
def test_var_and_std_with_correction_match_torch(correction):
    check_op([(3, 5)], lambda x: x.var(dim=1, correction=correction))
    check_op([(3, 5)], lambda x: x.std(dim=0, keepdim=True, correction=correction))
    check_op([(3, 5)], lambda x: x.var())


def test_max_min_with_dim_return_values_and_int64_indices(rng):
    x = tm.tensor(rng.standard_normal((4, 6)), requires_grad=True)
    values, indices = x.max(dim=1)
    assert indices.dtype == np.int64 and values.shape == (4,)
    np.testing.assert_array_equal(indices.detach().numpy(), x.detach().numpy().argmax(1))
    check_op([(4, 6)], lambda x: x.max(dim=1).values)
    check_op([(4, 6)], lambda x: x.min(dim=0, keepdim=True)[0])


def test_max_without_dim_shares_gradient_between_ties():
    check_op([(3, 4)], lambda x: x.max())
    x = tm.tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.5, 0.5])


def test_argmax_argmin_match_numpy_with_and_without_dim(rng):
    a = rng.standard_normal((3, 5)).astype(np.float32)
    x = tm.tensor(a)
    np.testing.assert_array_equal(x.argmax(dim=1).detach().numpy(), a.argmax(1))
    np.testing.assert_array_equal(x.argmin().detach().numpy(), a.argmin())
    assert x.argmax(dim=0, keepdim=True).shape == (1, 5)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_logsumexp_matches_torch_and_survives_large_and_infinite_rows(dim):
    check_op([(3, 4)], lambda x: x.logsumexp(dim=dim))
    big = tm.tensor([[1000.0, 1000.0], [-np.inf, -np.inf]])
    out = big.logsumexp(dim=1).detach().numpy()
    np.testing.assert_allclose(out[0], 1000.0 + np.log(2.0))
    assert out[1] == -np.inf


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax_along_any_dim_match_torch(dim):
    check_op([(3, 4, 5)], lambda x: x.softmax(dim))
    check_op([(3, 4, 5)], lambda x: x.log_softmax(dim))


@pytest.mark.parametrize(
    "sa,sb",
    [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2))],
)
def test_matmul_follows_numpy_rules_for_1d_and_batched_operands(sa, sb):
    check_op([sa, sb], lambda a, b: a @ b, np_fn=lambda a, b: a @ b, atol=1e-4)


@pytest.mark.parametrize("which", [0, 1])
def test_matmul_gradient_for_one_operand_only(which):
    # Only the operand that needs a gradient has one; MatMul saves only what that needs.
    a, b = tm.randn(3, 4), tm.randn(4, 2)
    (a, b)[which].requires_grad_()
    (a @ b).sum().backward()
    want = np.ones((3, 2), np.float32) @ b.detach().numpy().T if which == 0 else a.detach().numpy().T @ np.ones((3, 2), np.float32)
    np.testing.assert_allclose((a, b)[which].grad.numpy(), want, rtol=1e-5)
    assert (a, b)[1 - which].grad is None


def test_matmul_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(5, 2\)"):
        tm.randn(3, 4) @ tm.randn(5, 2)
    with pytest.raises(ValueError, match="at least 1 dimension"):
        tm.tensor(1.0) @ tm.randn(2)
