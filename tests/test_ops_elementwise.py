"""Elementwise ops: forward and gradients against PyTorch and NumPy, plus gradcheck."""
import numpy as np
import pytest

import tinymm as tm
import tinymm.nn.functional as F
from helpers import check_op, torch

if torch is not None:
    import torch.nn.functional as TF


BINARY_SHAPES = [[(3, 4), (3, 4)], [(3, 4), (4,)], [(2, 1, 4), (3, 1)], [(1,), (2, 3)], [(), (2, 2)]]
BINARY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b}


@pytest.mark.parametrize("shapes", BINARY_SHAPES)
@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_ops_broadcast_and_unbroadcast_gradients(op, shapes):
    check_op(shapes, BINARY[op], np_fn=BINARY[op], low=0.5, high=2.0)


def test_pow_with_tensor_and_scalar_exponents_and_bases():
    check_op([(3, 4)], lambda x: x**3, np_fn=lambda x: x**3)
    check_op([(3, 4)], lambda x: x**0.5, np_fn=lambda x: x**0.5, positive=True)
    check_op([(3, 4), (3, 4)], lambda a, b: a**b, np_fn=lambda a, b: a**b, positive=True)
    check_op([(3, 4)], lambda x: 2.0**x, np_fn=lambda x: 2.0**x)


def test_python_scalars_on_either_side_are_constants():
    f = lambda x: 1 - 2 * x / 3 + 4  # noqa: E731
    check_op([(2, 3)], f, np_fn=f)
    check_op([(2, 3)], lambda x: 1 / x, np_fn=lambda x: 1 / x, positive=True)


@pytest.mark.parametrize("name", ["exp", "tanh", "sigmoid", "abs", "relu"])
def test_unary_methods_match_torch(name):
    check_op([(4, 5)], lambda x: getattr(x, name)())


def test_negation_matches_torch():
    check_op([(4, 5)], lambda x: -x, np_fn=lambda x: -x)


def test_log_and_sqrt_on_positive_inputs_match_numpy_and_torch():
    check_op([(4, 5)], lambda x: x.log(), np_fn=np.log, positive=True)
    check_op([(4, 5)], lambda x: x.sqrt(), np_fn=np.sqrt, positive=True)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_exact_and_tanh_forms_match_torch(approximate):
    check_op([(4, 6)], lambda x: F.gelu(x, approximate=approximate), lambda x: TF.gelu(x, approximate=approximate))


def test_silu_matches_torch():
    check_op([(4, 6)], F.silu, lambda x: TF.silu(x))


def test_sigmoid_is_stable_for_large_inputs():
    x = tm.tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    np.testing.assert_allclose(x.sigmoid().detach().numpy(), [0.0, 1.9287e-22, 0.5, 1.0, 1.0], rtol=1e-4)


def test_clamp_passes_gradient_inside_inclusive_bounds():
    check_op([(5, 5)], lambda x: x.clamp(-0.5, 0.7))
    check_op([(5, 5)], lambda x: x.clamp(min=0.1))
    x = tm.tensor([0.0, 1.0, 2.0], requires_grad=True)
    x.clamp(0.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0, 0.0])


def test_maximum_minimum_match_torch_and_split_ties_evenly():
    check_op([(3, 4), (4,)], tm.maximum, lambda a, b: torch.maximum(a, b), np.maximum)
    check_op([(3, 4), (3, 1)], tm.minimum, lambda a, b: torch.minimum(a, b), np.minimum)
    a = tm.tensor([1.0, 2.0], requires_grad=True)
    b = tm.tensor([1.0, 3.0], requires_grad=True)
    tm.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.5, 0.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.5, 1.0])


def test_float64_inputs_stay_float64_through_a_composite():
    check_op([(3, 4), (4,)], lambda a, b: (a * b).exp().sum(dim=0), dtype="float64", low=-1, high=1)


def test_integer_tensors_promote_to_float_for_float_ops():
    i = tm.tensor([1, 2, 3])
    assert i.dtype == np.int64
    assert (i * 0.5).dtype == np.float32
    assert i.exp().dtype == np.float32
    assert (i / 2).dtype == np.float32
    assert (i + tm.tensor([0.5, 0.5, 0.5])).dtype == np.float32
