"""NumPy's floating-point warnings never leak out of tinymm's ops (PyTorch is silent on
overflow, inf·0, a negative base to a fractional power, nan/inf cast to an integer), while the
user's own NumPy code keeps whatever error state the user set (``tinymm.float_errors``)."""
import warnings

import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

HOSTILE = [-1e30, -1.0, -0.0, 0.0, 1.0, 100.0, 1e30, float("inf"), float("-inf"), float("nan")]

# Each is run with grad (forward and backward) under warnings-as-errors, then compared to torch.
EXPRESSIONS = [
    "x ** 2", "x ** 0.5", "x ** -1", "x * float('inf')", "x * x", "x + x", "x - x", "x / x",
    "x.exp()", "x.log()", "x.sqrt()", "x.pow(3)", "x.norm()", "x ** 1.5", "x ** -0.5", "x ** -1.5",
    "F.normalize(x, dim=0)", "x.sigmoid()", "x.tanh()", "x.softmax(0)", "x.reciprocal()",
    "torch.hypot(x, x)", "torch.atan2(x, x)", "x.var()",
]


def _run(lib, expr):
    x = lib.tensor(HOSTILE, dtype=lib.float32, requires_grad=True)
    y = eval(expr, {"x": x, "torch": lib, "F": lib.nn.functional})
    y.sum().backward()
    return y.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_ops_are_silent_and_match_torch(expr):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = _run(tm, expr)
    if torch is None:
        pytest.skip(TORCH_REASON)
    t_value, t_grad = _run(torch, expr)
    np.testing.assert_allclose(value, t_value, rtol=1e-5, atol=0, equal_nan=True)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-5, atol=0, equal_nan=True)


@pytest.mark.parametrize("dtype", ["int32", "int64", "int16"])
def test_casting_nan_and_inf_to_integers_is_silent(dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = tm.tensor(HOSTILE).to(getattr(tm, dtype))
    assert out.dtype == getattr(tm, dtype)
    if torch is None:
        pytest.skip(TORCH_REASON)
    ref = torch.tensor(HOSTILE).to(getattr(torch, dtype))
    # only the finite in-range values are defined; PyTorch and NumPy agree on those
    finite = [i for i, v in enumerate(HOSTILE) if abs(v) < 1e4]
    assert out.numpy()[finite].tolist() == ref.numpy()[finite].tolist()


@pytest.mark.parametrize("op", ["cumprod", "prod"])
def test_products_through_a_zero_and_overflow_are_silent(op):
    # (no inf or nan among the factors: beside a zero, PyTorch drops the terms that hold them;
    # prod's partial products must not overflow: PyTorch's order of them differs from ours)
    values = [-1e30, -1.0, 0.0, 2.0, 1e30, 1e30, 0.5] if op == "cumprod" else [-3.0, -1.0, 0.0, 2.0, 1e10, 1e10, 0.5]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = tm.tensor(values, requires_grad=True)
        (x.cumprod(0) if op == "cumprod" else x.prod()).sum().backward()
    if torch is None:
        pytest.skip(TORCH_REASON)
    t = torch.tensor(values, requires_grad=True)
    (t.cumprod(0) if op == "cumprod" else t.prod()).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-5, equal_nan=True)


def test_user_numpy_error_state_is_kept():
    before = np.geterr()
    old = np.seterr(all="raise")
    try:
        x = tm.tensor([1e30], requires_grad=True)
        (x * x).sum().backward()  # tinymm: silent, as PyTorch, even under the user's "raise"
        assert np.isinf(x.grad.numpy()[0]) is np.False_ and x.grad.numpy()[0] == np.float32(2e30)
        assert np.geterr()["over"] == "raise"  # the user's state is back after the op
        with pytest.raises(FloatingPointError):
            np.array([1e30], np.float32) * np.float32(1e30)  # the user's own NumPy code still raises
    finally:
        np.seterr(**old)
    assert np.geterr() == before


def test_user_numpy_warnings_still_warn_outside_ops():
    _ = tm.tensor([1e30]) * 1e30  # a tinymm op first: nothing of its silence stays behind
    with pytest.warns(RuntimeWarning, match="overflow"):
        np.array([1e30], np.float32) * np.float32(1e30)
