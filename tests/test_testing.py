"""``tinymm.testing`` against ``torch.testing``: assert_close passes and fails on the same
inputs, with the same exception class and message (dtype names aside), default tolerances per
dtype, equal_nan, check_dtype, nested sequences and mappings; make_tensor's shapes, dtypes,
ranges, requires_grad, noncontiguous and exclude_zero, and its argument errors."""
import math
import warnings

import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _convert(m, x):
    """Nested data with ``("t", values, dtype)`` leaves made into tensors of library m."""
    if isinstance(x, tuple) and x and x[0] == "t":
        return m.tensor(x[1], dtype=getattr(m, x[2]))
    if isinstance(x, list):
        return [_convert(m, v) for v in x]
    if isinstance(x, dict):
        return {k: _convert(m, v) for k, v in x.items()}
    return x


def _outcome(m, actual, expected, kw):
    try:
        m.testing.assert_close(_convert(m, actual), _convert(m, expected), **kw)
    except Exception as e:  # noqa: BLE001  (the class is what is compared)
        return type(e), str(e)
    return None, None


def _plain(msg):
    """A message with the libraries' spellings of dtypes and shapes made alike."""
    return (msg.replace("torch.", "").replace("tinymm.", "").replace("Size([", "(").replace("])", ",)").replace(",,)", ",)")
            if msg else msg)


T = "t"
CASES = {
    "equal": ((T, [1.0, 2.0], "float32"), (T, [1.0, 2.0], "float32"), {}),
    "close_within_default": ((T, [1.0, 2.0], "float32"), (T, [1.0, 2.000001], "float32"), {}),
    "not_close": ((T, [1.0, 2.0, 3.0], "float32"), (T, [1.0, 2.5, 3.0], "float32"), {}),
    "not_close_2d": ((T, [[1.0, 2.0], [3.0, 4.0]], "float64"), (T, [[1.0, 2.0], [3.1, 0.0]], "float64"), {}),
    "float64_tight": ((T, [1.0], "float64"), (T, [1.0 + 1e-6], "float64"), {}),
    "given_tolerances": ((T, [1.0, 2.0], "float64"), (T, [1.1, 2.0], "float64"), {"rtol": 0.0, "atol": 0.2}),
    "given_tolerances_fail": ((T, [1.0, 2.0], "float64"), (T, [1.3, 2.0], "float64"), {"rtol": 0.01, "atol": 0.2}),
    "ints_equal": ((T, [1, 2], "int64"), (T, [1, 2], "int64"), {}),
    "ints_differ": ((T, [1, 2, 3], "int64"), (T, [1, 5, 0], "int64"), {}),
    "bools_differ": ((T, [True, False], "bool"), (T, [True, True], "bool"), {}),
    "scalar_tensor": ((T, 1.0, "float32"), (T, 1.5, "float32"), {}),
    "nan_default": ((T, [math.nan], "float32"), (T, [math.nan], "float32"), {}),
    "nan_equal": ((T, [math.nan, 1.0], "float32"), (T, [math.nan, 1.0], "float32"), {"equal_nan": True}),
    "inf": ((T, [math.inf, -math.inf], "float32"), (T, [math.inf, -math.inf], "float32"), {}),
    "inf_sign": ((T, [math.inf], "float32"), (T, [-math.inf], "float32"), {}),
    "dtype": ((T, [1.0], "float32"), (T, [1.0], "float64"), {}),
    "dtype_unchecked": ((T, [1.0], "float32"), (T, [1.0 + 1e-6], "float64"), {"check_dtype": False}),
    "dtype_unchecked_fail": ((T, [1.0], "float32"), (T, [1.1], "float64"), {"check_dtype": False}),
    "shape": ((T, [1.0, 2.0], "float32"), (T, [1.0, 2.0, 3.0], "float32"), {}),
    "python_numbers": (1.0, 1.0 + 1e-9, {}),
    "python_numbers_fail": (1.0, 1.5, {}),
    "python_ints": (3, 4, {}),
    "python_bools": (True, False, {}),
    "sequence": ([(T, [1.0], "float32"), (T, [2.0], "float32")], [(T, [1.0], "float32"), (T, [2.5], "float32")], {}),
    "sequence_length": ([1.0, 2.0], [1.0], {}),
    "mapping": ({"a": (T, [1.0], "float32")}, {"a": (T, [1.5], "float32")}, {}),
    "mapping_keys": ({"a": 1.0}, {"b": 1.0}, {}),
    "msg_string": ((T, [1.0], "float32"), (T, [2.0], "float32"), {"msg": "custom"}),
    "msg_callable": ((T, [1.0], "float32"), (T, [2.0], "float32"), {"msg": lambda m: "wrapped: " + m.splitlines()[0]}),
    "only_rtol": ((T, [1.0], "float32"), (T, [1.0], "float32"), {"rtol": 0.1}),
    "tensor_and_list": ((T, [1.0], "float32"), [1.0], {}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_assert_close_as_torch(name):
    actual, expected, kw = CASES[name]
    want_cls, want_msg = _outcome(torch, actual, expected, kw)
    got_cls, got_msg = _outcome(tm, actual, expected, kw)
    assert got_cls is want_cls, (got_cls, got_msg, want_cls, want_msg)
    if name != "tensor_and_list":  # (the messages name each library's Tensor class)
        assert _plain(got_msg) == _plain(want_msg)


def test_assert_close_dtype_message_names_both():
    with pytest.raises(AssertionError, match="attribute 'dtype' do not match: tinymm.float32 != tinymm.float64"):
        tm.testing.assert_close(tm.tensor([1.0]), tm.tensor([1.0], dtype=tm.float64))


def test_assert_close_numpy_arrays_and_non_contiguous_tensors():
    a = np.arange(6.0).reshape(2, 3)
    tm.testing.assert_close(a, a.copy())
    x = tm.tensor(a).mT
    tm.testing.assert_close(x, tm.tensor(a.T.copy()))


def test_assert_allclose_is_deprecated_and_lenient():
    with pytest.warns(FutureWarning):
        tm.testing.assert_allclose(tm.tensor([1.0, math.nan]), [1.0, math.nan])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(AssertionError):
            tm.testing.assert_allclose(tm.tensor([1.0]), tm.tensor([2.0]))
        tm.testing.assert_allclose(tm.tensor([1.0]), tm.tensor([1.0], dtype=tm.float64))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64", "int32", "uint8", "int8", "bool"])
def test_make_tensor_as_torch(dtype):
    tm.manual_seed(0)
    x = tm.testing.make_tensor(2, 3, 4, dtype=getattr(tm, dtype), device="cpu")
    t = torch.testing.make_tensor(2, 3, 4, dtype=getattr(torch, dtype), device="cpu")
    assert tuple(x.shape) == tuple(t.shape) and str(x.dtype) == str(t.dtype).replace("torch.", "tinymm.")
    a = x.detach().numpy().astype(np.float64)
    lo, hi = {"bool": (0, 1), "uint8": (0, 9)}.get(dtype, (-9, 9))
    assert a.min() >= lo and a.max() <= hi
    if dtype not in ("bool",):
        assert len(np.unique(a)) > 3  # drawn, not constant


def test_make_tensor_options():
    x = tm.testing.make_tensor((3, 4), dtype=tm.float64, device="cpu", low=2, high=3, requires_grad=True,
                               noncontiguous=True)
    assert x.shape == (3, 4) and x.requires_grad and not x.is_contiguous()
    assert x.detach().numpy().min() >= 2 and x.detach().numpy().max() < 3
    y = tm.testing.make_tensor(50, dtype=tm.int64, device="cpu", low=-1, high=2, exclude_zero=True)
    assert set(np.unique(y.detach().numpy())) <= {-1, 1}
    z = tm.testing.make_tensor((), dtype=tm.float32, device="cpu", noncontiguous=True)
    assert z.shape == ()


MAKE_ERRORS = {
    "low_ge_high": dict(dtype="int64", low=3, high=1),
    "grad_int": dict(dtype="int64", requires_grad=True),
    "nan_low": dict(dtype="float32", low=math.nan),
    "out_of_range": dict(dtype="uint8", low=-10, high=-5),
}


@pytest.mark.parametrize("name", sorted(MAKE_ERRORS))
def test_make_tensor_errors_as_torch(name):
    kw = dict(MAKE_ERRORS[name])
    dtype = kw.pop("dtype")
    with pytest.raises(Exception) as want:
        torch.testing.make_tensor(3, dtype=getattr(torch, dtype), device="cpu", **kw)
    with pytest.raises(want.type):
        tm.testing.make_tensor(3, dtype=getattr(tm, dtype), device="cpu", **kw)
