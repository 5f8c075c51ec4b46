"""Regression examples for the divergences from PyTorch that probe16's differential tests
(test_probe16_differential.py) found, one explicit case each, checked against PyTorch."""
import numpy as np
import pytest

from helpers import torch
from test_probe16_differential import diff

pytestmark = pytest.mark.skipif(torch is None, reason="PyTorch (the test oracle) is not installed")


def a(values, dtype):
    return np.asarray(values, dtype=dtype)


def test_int_true_division_does_not_wrap_through_the_common_int_dtype():
    # uint8 tensor / 0-d int8 tensor: the common int dtype is uint8, but the quotient is taken
    # on the values (−3, not 253)
    diff(lambda L, x, y: x / y, [a([10], "uint8"), a(-3, "int8")])
    diff(lambda L, x, y: L.xlogy(x, y), [a([10], "uint8"), a(-6, "int8")])
    diff(lambda L, x, y: L.atan2(x, y), [a([10, 0], "uint8"), a(-3, "int8")])


def test_isclose_and_lerp_refuse_mixed_dtypes():
    diff(lambda L, x, y: L.isclose(x, y), [a(0, "bool"), a(5, "int8")])
    diff(lambda L, x, y: L.allclose(x, y), [a([1, 2], "int64"), a([1.0, 2.0], "float32")])
    diff(lambda L, x, y: L.lerp(x, y, 0.5), [a([1.0], "float32"), a([2.0], "float64")])


def test_inf_and_negative_norms_refuse_an_empty_reduction():
    diff(lambda L, x: L.linalg.vector_norm(x, ord=float("inf")), [np.zeros(0, "float32")])
    diff(lambda L, x: L.norm(x, p=float("inf")), [np.zeros(0, "float32")])
    diff(lambda L, x: L.linalg.vector_norm(x, ord=float("inf"), dim=1), [np.zeros((3, 0), "float32")])
    diff(lambda L, x: L.linalg.vector_norm(x, ord=-1.0, dim=0), [np.zeros((3, 0), "float32")])  # (allowed)


@pytest.mark.parametrize("name", ["cumsum", "cumprod", "cummax", "logcumsumexp", "median", "index_select"])
def test_zero_d_tensors_check_the_dim(name):
    calls = {"cumsum": lambda L, x: L.cumsum(x, 1), "cumprod": lambda L, x: L.cumprod(x, 1),
             "cummax": lambda L, x: L.cummax(x, 1), "logcumsumexp": lambda L, x: L.logcumsumexp(x, 1),
             "median": lambda L, x: L.median(x, 1), "index_select": lambda L, x: L.index_select(x, 1, L.tensor([0]))}
    diff(calls[name], [a(1.5, "float32")])


def test_zero_d_shape_ops():
    x = [a(1.5, "float32")]
    diff(lambda L, t: L.transpose(t, 0, -1), x)
    diff(lambda L, t: L.movedim(t, 0, 0), x)
    diff(lambda L, t: L.kthvalue(t, 1, 0), x)
    diff(lambda L, t: L.kthvalue(t, 1, 0), [a(5, "int8")])
    for call in (lambda L, t: L.split(t, 1), lambda L, t: L.chunk(t, 1), lambda L, t: L.narrow(t, 0, 0, 0),
                 lambda L, t: L.unflatten(t, 0, (-1, 1)), lambda L, t: L.unflatten(t, 1, (-1, 1)),
                 lambda L, t: L.roll(t, 1, 0), lambda L, t: L.flip(t, (0, -1)),
                 lambda L, t: L.index_select(t, 0, L.tensor([0, 0]))):
        diff(call, x)


def test_zero_size_flatten_and_unflatten_keep_the_other_dims():
    diff(lambda L, t: L.flatten(t, 1, 1), [np.zeros((0, 1), "float32")])
    diff(lambda L, t: L.flatten(t, 1, 1), [np.zeros((0, 2, 3), "float32")])
    diff(lambda L, t: L.unflatten(t, 0, (-1, 1)), [np.zeros((0, 0), "float32")])
    diff(lambda L, t: L.unflatten(t, 1, (-1, 1)), [np.zeros((0, 0), "float32")])


def test_add_and_sub_alpha_scale_in_the_result_dtype():
    diff(lambda L, x, y: L.add(x, y, alpha=2), [a(False, "bool"), a(True, "bool")])
    diff(lambda L, x, y: L.add(x, y, alpha=2), [a(5, "int8"), a(False, "bool")])
    diff(lambda L, x, y: L.sub(x, y, alpha=-1), [a(5, "int8"), a(10, "uint8")])
    diff(lambda L, x, y: L.add(x, y, alpha=2), [a([1.0], "float32"), a([2.0], "float64")])


def test_einsum_gradients_of_broadcast_size_one_subscripts():
    diff(lambda L, x, y: L.einsum("ij,jk->ik", x, y), [np.ones((2, 0)), np.ones((1, 3))])
    diff(lambda L, x, y: L.einsum("ij,jk->ik", x, y), [np.arange(6.0).reshape(2, 3), np.arange(3.0).reshape(1, 3)])
    diff(lambda L, x, y: L.einsum("...ij,...jk->...ik", x, y), [np.zeros((0, 0)), np.zeros((1, 0))])


def test_relu_backward_of_a_zero_d_tensor():
    diff(lambda L, x: L.relu(x), [a(-1.25, "float32")])
    diff(lambda L, x: L.relu(x), [a(1.25, "float64")])


def test_integer_division_of_an_empty_tensor_by_zero_is_empty():
    diff(lambda L, x, y: L.remainder(x, y), [np.zeros(0, "int8"), a(False, "bool")])
    diff(lambda L, x, y: L.div(x, y, rounding_mode="floor"), [np.zeros(0, "bool"), a(0, "int8")])
    diff(lambda L, x, y: L.floor_divide(x, y), [a([3], "int32"), a(0, "int32")])  # (still refused)


def test_clamp_with_tensor_bounds_and_addcmul_promote_all_operands():
    diff(lambda L, x, lo, hi: L.clamp(x, lo, hi), [a([False], "bool"), a(5, "int8"), a(10, "uint8")])
    diff(lambda L, x, lo: L.clamp(x, min=lo), [a([1, 7], "int32"), a([2.5], "float32")])
    diff(lambda L, x, lo: L.clamp(x, min=lo), [a([1, 7], "int8"), a([2, 3], "uint8")])
    diff(lambda L, x, t1, t2: L.addcmul(x, t1, t2, value=-1), [a(5, "int8"), a(3, "uint8"), a(4, "uint8")])
    diff(lambda L, x, t1, t2: L.addcmul(x, t1, t2, value=2), [a(5, "int8"), a(False, "bool"), a(True, "bool")])
    diff(lambda L, x, t1, t2: L.addcmul(x, t1, t2, value=0.5), [a([1.0, 2.0], "float32"), a([3.0], "float64"),
                                                                a([2.0], "float32")])


def test_repeated_dims_of_a_zero_d_tensor_are_refused():
    # 0 and -1 name the same pseudo-dim of a 0-d tensor
    for call in (lambda L, t: L.sum(t, dim=(0, -1)), lambda L, t: L.amax(t, dim=(0, -1)),
                 lambda L, t: L.squeeze(t, (0, -1)), lambda L, t: L.flip(t, (0, -1)),
                 lambda L, t: L.sum(t, dim=(0,))):
        diff(call, [a(1.5, "float32")])
