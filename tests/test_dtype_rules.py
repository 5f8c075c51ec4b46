"""Where PyTorch refuses an input that NumPy would take: the mean, variance and softmax of an
integer tensor (no output dtype to infer, or no kernel), a negative or zero slice step (no
negative strides); and ``mean(dtype=...)``, ``normal``'s place in the graph. Each is compared
with PyTorch: the same result, or the same exception class."""
import re

import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

INT_REDUCTIONS = [
    ("mean", lambda m, x: x.mean()),
    ("mean dim", lambda m, x: m.mean(x, 0)),
    ("var", lambda m, x: x.var()),
    ("std", lambda m, x: m.std(x, 0)),
    ("var_mean", lambda m, x: m.var_mean(x)),
    ("softmax", lambda m, x: x.softmax(0)),
    ("log_softmax", lambda m, x: m.log_softmax(x, 0)),
    ("mean of int with an int dtype", lambda m, x: x.mean(dtype=m.int64)),
    ("mean of float with an int dtype", lambda m, x: x.float().mean(dtype=m.int32)),
]


@needs_torch
@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
@pytest.mark.parametrize("name, fn", INT_REDUCTIONS, ids=[n for n, _ in INT_REDUCTIONS])
def test_integer_input_is_refused_as_torch_refuses_it(name, fn, dtype):
    values = np.array([[1, 0, 3], [4, 5, 0]]).astype(dtype)
    with pytest.raises(Exception) as expected:
        fn(torch, torch.from_numpy(values))
    with pytest.raises(type(expected.value)) as got:  # tinymm's class derives from PyTorch's
        fn(tm, tm.tensor(values))
    # the message names the dtype as PyTorch spells it ("Got: Long", "not implemented for 'Int'")
    named = re.findall(r"\b(Long|Int|Bool|Float|Double|Half)\b", str(expected.value))
    assert named == re.findall(r"\b(Long|Int|Bool|Float|Double|Half)\b", str(got.value))[:len(named)]


@needs_torch
@pytest.mark.parametrize("call", [
    lambda m, x: x.mean(dtype=m.float64),
    lambda m, x: m.mean(x, 1, True, dtype=m.float32),
    lambda m, x: x.float().mean(dim=0, dtype=m.float64),
    lambda m, x: x.softmax(1, dtype=m.float64),
    lambda m, x: x.logsumexp(1),
])
def test_a_float_dtype_argument_makes_integer_input_acceptable(call):
    values = np.array([[1, 2, 3], [4, 5, 7]])
    want, got = call(torch, torch.from_numpy(values)), call(tm, tm.tensor(values))
    assert str(got.dtype) == str(want.dtype).replace("torch.", "tinymm.")
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-6)


@needs_torch
@pytest.mark.parametrize("index", [(slice(None, None, -1),), (slice(None), slice(None, None, -2)),
                                   (slice(2, 0, -1),), (slice(None, None, 0),), (Ellipsis, slice(None, None, 0))])
def test_a_negative_or_zero_step_is_refused(index):
    values = np.arange(12.0).reshape(3, 4)
    with pytest.raises(ValueError) as expected:
        torch.from_numpy(values)[index]
    with pytest.raises(ValueError) as got:
        tm.tensor(values)[index]
    assert str(got.value).startswith(str(expected.value))
    t = tm.tensor(values)
    with pytest.raises(ValueError):
        t[index] = 0.0
    np.testing.assert_array_equal(t.detach().numpy(), values)  # nothing was written


def test_positive_steps_still_slice():
    t = tm.arange(10.0, requires_grad=True)
    picked = t[1::3]
    np.testing.assert_array_equal(picked.detach().numpy(), [1.0, 4.0, 7.0])
    picked.sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), [0, 1, 0, 0, 1, 0, 0, 1, 0, 0])


@needs_torch
@pytest.mark.parametrize("params", ["mean", "std", "both"])
def test_normal_is_in_the_graph_with_a_zero_derivative(params):
    """PyTorch's normal(mean, std) output requires grad when a parameter does, and its derivative
    with respect to either is defined as zero (it is not the reparameterised sample)."""
    grads = {}
    for m in (torch, tm):
        mean = m.tensor([0.5, -1.0, 2.0], requires_grad=params in ("mean", "both"))
        std = m.tensor([1.0, 0.1, 3.0], requires_grad=params in ("std", "both"))
        out = m.normal(mean, std)
        assert out.requires_grad and out.grad_fn is not None
        assert type(out.grad_fn).__name__.startswith("NormalBackward") or out.grad_fn.name().startswith("Normal")
        (out * 3.0).sum().backward()
        grads[m] = [None if p.grad is None else p.grad.numpy() for p in (mean, std)]
    for want, got in zip(grads[torch], grads[tm]):
        assert (want is None) == (got is None)
        if want is not None:
            np.testing.assert_array_equal(got, want)


def test_normal_without_grad_parameters_stays_out_of_the_graph():
    out = tm.normal(tm.zeros(2, 3), tm.ones(3))
    assert out.shape == (2, 3) and not out.requires_grad and out.grad_fn is None


@needs_torch
@pytest.mark.parametrize("call", [
    lambda m: m.tensor([True, False]) - m.tensor([1.0, 2.0]),
    lambda m: 1 - m.tensor([True, False]),
    lambda m: m.tensor([1.0, 2.0]) - True,
    lambda m: -m.tensor([True]),
    lambda m: m.tensor([3.0]).sub_(m.tensor([True])),
    lambda m: m.tensor([2, 3]) ** -1,
    lambda m: m.tensor([3, 4]).norm(),
    lambda m: m.linalg.vector_norm(m.tensor([3, 4])),
    lambda m: m.zeros(2, 0, 3).unflatten(2, (2, 2)),
    lambda m: m.zeros(2, 6).unflatten(1, (4, -1)),
])
def test_refused_like_torch(call):
    with pytest.raises(Exception) as expected:
        call(torch)
    with pytest.raises(type(expected.value)) as got:
        call(tm)
    assert str(got.value) == str(expected.value)


@needs_torch
@pytest.mark.parametrize("call", [
    lambda m: m.add(m.tensor([1, 2]), 1, alpha=2),
    lambda m: m.sub(m.tensor([1.0, 2.0]), 1, alpha=2),
    lambda m: m.tensor([1.0, 2.0]).add_(3, alpha=0.5),
    lambda m: m.tensor([0, 1, -1, 2, -2, 3]) ** m.tensor([-1, -1, -1, -1, -1, -2]),
    lambda m: m.tensor([0, 1, -1, 2, -2, 3], dtype=m.int32) ** m.tensor([-2]),
    lambda m: 2 ** m.tensor([-1, 3]),
    lambda m: m.tensor([2, 3]) ** m.tensor([2, 0]),
    lambda m: m.zeros(0).softmax(0),
    lambda m: m.zeros(2, 0).log_softmax(1),
    lambda m: m.zeros(0, 3).softmax(1),
    lambda m: m.tensor([[1, 2, 3]]).clip(-0.1, 0.1),
    lambda m: m.tensor([[1, 2, 3]]).clamp(min=1.5),
    lambda m: m.tensor([[1, 2, 3]]).clamp(0, 2),
    lambda m: m.zeros(2, 6).unflatten(1, (2, -1)),
    lambda m: m.zeros(2, 0).unflatten(1, (0, 5)),
])
def test_accepted_like_torch(call):
    want, got = call(torch), call(tm)
    assert tuple(got.shape) == tuple(want.shape) and str(got.dtype) == str(want.dtype).replace("torch.", "tinymm.")
    np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())


def test_softmax_of_an_empty_dim_has_an_empty_gradient():
    x = tm.zeros(2, 0, 3, requires_grad=True)
    x.log_softmax(1).sum().backward()
    assert x.grad.shape == (2, 0, 3)


@needs_torch
def test_cat_skips_a_legacy_empty_1d_tensor():
    """``out = torch.tensor([]); out = torch.cat([out, x])`` in a loop, as PyTorch allows."""
    for m in (torch, tm):
        out = m.tensor([])
        for i in range(3):
            out = m.cat([out, m.ones(1, 2) * i])
        assert out.tolist() == [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]
        mixed = m.cat([m.zeros(0, dtype=m.int64), m.ones(2, 3, dtype=m.int32)])
        assert tuple(mixed.shape) == (2, 3) and str(mixed.dtype).endswith("int64")
        with pytest.raises(RuntimeError):
            m.cat([m.zeros(0, 2), m.ones(2, 3)])


@needs_torch
def test_comparing_with_none_is_a_bool():
    for m in (torch, tm):
        t = m.tensor([1.0])
        assert (t == None) is False and (t != None) is True  # noqa: E711


@needs_torch
def test_a_0d_integer_tensor_does_not_widen_a_tensor_with_dims():
    for m in (torch, tm):
        i32, u8 = m.tensor([1, 2], dtype=m.int32), m.tensor([1, 2], dtype=m.uint8)
        got = [str(x.dtype).split(".")[-1] for x in (
            i32 * m.tensor(2), m.tensor(2) + i32, u8 + m.tensor(3), m.tensor([True]) + m.tensor(2),
            i32 + m.tensor([1]), u8 + m.tensor([1], dtype=m.int8))]
        assert got == ["int32", "int32", "uint8", "int64", "int64", "int16"]


class _Reflected:
    def __radd__(self, other):
        return "radd"

    def __rmul__(self, other):
        return "rmul"

    def __rmatmul__(self, other):
        return "rmatmul"


@needs_torch
def test_operators_hand_foreign_operands_back_to_python():
    """PyTorch returns NotImplemented for what is not a tensor, number or array, so the other
    operand's reflected method runs, or Python's TypeError names both types."""
    for m in (torch, tm):
        t = m.tensor([1.0, 2.0])
        assert (t + _Reflected(), t * _Reflected(), t @ _Reflected()) == ("radd", "rmul", "rmatmul")
        for other in ([1.0, 2.0], (1.0,), "a", None):
            with pytest.raises(TypeError, match="unsupported operand"):
                t - other


@needs_torch
@pytest.mark.parametrize("call", [
    lambda m, np_: m.tensor([1.0]) + np_.float64(2),
    lambda m, np_: np_.float64(2) * m.tensor([1.0]),
    lambda m, np_: m.tensor([1, 2]) * np_.float32(1.5),
    lambda m, np_: m.tensor([1, 2]) + np_.int64(3),
    lambda m, np_: m.tensor([1.0], dtype=m.float64) - np_.float32(0.5),
])
def test_a_numpy_scalar_counts_as_a_python_number(call):
    want, got = call(torch, np), call(tm, np)
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy())


@needs_torch
@pytest.mark.parametrize("call, refused", [
    (lambda m: m.tensor([1, 2]).add_(1.5), True),
    (lambda m: m.tensor([1, 2]).div_(2), True),
    (lambda m: m.tensor([1, 2]).mul_(m.tensor([0.5, 1.0])), True),
    (lambda m: m.tensor([True]).add_(1), True),
    (lambda m: m.tensor([1, 2]).add_(3), False),
    (lambda m: m.tensor([1.0, 2.0]).add_(m.tensor([1, 1])), False),
    (lambda m: m.tensor([1, 2], dtype=m.int32).add_(m.tensor([1, 1])), False),
])
def test_an_in_place_result_must_fit_the_tensor(call, refused):
    if refused:
        for m in (torch, tm):
            with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
                call(m)
    else:
        assert call(tm).tolist() == call(torch).tolist()


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
@pytest.mark.parametrize("dtype", ["int32", "float32", "float64", "float16", "uint8"])
def test_view_as_another_dtype_reads_the_same_bytes(dtype):
    """``x.view(dtype)``: the last dim scales with the element size, nothing is differentiable,
    and the result shares x's memory."""
    got = []
    for m in (torch, tm):
        x = m.tensor(np.arange(8, dtype=np.float32).reshape(2, 4) * 1.5, requires_grad=True)
        y = x.view(getattr(m, dtype))
        assert not y.requires_grad
        with m.no_grad():
            x.view(getattr(m, dtype))[0].zero_()
        got.append((tuple(y.shape), y.detach().numpy().tolist(), x.detach().numpy().tolist()))
    assert got[0] == got[1]


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
def test_view_as_another_dtype_refuses_what_torch_refuses():
    for make in (lambda m: m.zeros(2, 3).view(m.float64), lambda m: m.zeros(2, 3).t().view(m.float16),
                 lambda m: m.zeros(()).view(m.float16)):
        for m in (torch, tm):
            with pytest.raises(RuntimeError):
                make(m)
