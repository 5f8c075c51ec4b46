"""``tinymm.testing``: PyTorch's ``torch.testing`` — ``assert_close``, the deprecated
``assert_allclose`` and ``make_tensor``.

``assert_close(actual, expected)`` passes when every pair of elements satisfies
|actual − expected| ≤ atol + rtol·|expected| (inf equal to inf of the same sign; NaN equal to
NaN only with ``equal_nan``), after checking shape, and (unless turned off) dtype and device.
Default tolerances by dtype, as PyTorch: float16 (rtol 1e-3, atol 1e-5), float32 (1.3e-6,
1e-5), float64 (1e-7, 1e-7), integers and bool (0, 0: exact); for two dtypes (with
``check_dtype=False``) the larger of each. A failure raises AssertionError with PyTorch's
message: the count of mismatched elements, the greatest absolute and relative differences and
their indices. Sequences and mappings are compared item by item; Python numbers as scalars.
"""
from __future__ import annotations

import collections.abc
import math
import numbers
import warnings

import numpy as np

from tinymm import backend
from tinymm.tensor import Tensor

__all__ = ["assert_close", "assert_allclose", "make_tensor"]

_PRECISIONS = {
    np.dtype(np.float16): (1e-3, 1e-5),
    np.dtype(np.float32): (1.3e-6, 1e-5),
    np.dtype(np.float64): (1e-7, 1e-7),
}


class _Mismatch(Exception):
    """A failed comparison: the exception class to raise and its message."""

    def __init__(self, cls, msg):
        super().__init__(msg)
        self.cls, self.msg = cls, msg


def _tolerances(dtypes, rtol, atol):
    if (rtol is None) != (atol is None):
        missing = "atol" if atol is None else "rtol"
        raise ValueError(f"Both 'rtol' and 'atol' must be either specified or omitted, but got no {missing}.")
    if rtol is not None:
        return float(rtol), float(atol)
    pairs = [_PRECISIONS.get(np.dtype(d), (0.0, 0.0)) for d in dtypes]
    return max(p[0] for p in pairs), max(p[1] for p in pairs)


def _fmt(x):
    """A value as PyTorch's ``.item()`` prints it (a Python int or float)."""
    return x.item() if hasattr(x, "item") else x


def _tensor_mismatch(a, e, matches, rtol, atol):
    n = matches.size
    bad = n - int(matches.sum())
    extra = f"Mismatched elements: {bad} / {n} ({bad / n:.1%})"
    af, ef, mf = a.reshape(-1), e.reshape(-1), matches.reshape(-1)
    if a.dtype.kind not in "fc":
        af, ef = af.astype(np.int64), ef.astype(np.int64)
    with np.errstate(all="ignore"):
        abs_diff = np.abs(af - ef)
        abs_diff[mf] = 0
        rel_diff = abs_diff / np.abs(ef)
        rel_diff[mf] = 0
    ia, ir = int(np.argmax(abs_diff)), int(np.argmax(rel_diff))

    def index(flat):
        return tuple(int(i) for i in np.unravel_index(flat, matches.shape)) if matches.shape else ()

    return _numeric_msg("Tensor-likes", extra, _fmt(abs_diff[ia]), index(ia), atol, _fmt(rel_diff[ir]), index(ir), rtol)


def _numeric_msg(what, extra, abs_diff, abs_idx, atol, rel_diff, rel_idx, rtol):
    equality = rtol == 0 and atol == 0

    def line(kind, diff, idx, tol):
        text = f"{kind.title()} difference: {diff}" if idx is None else f"Greatest {kind} difference: {diff} at index {idx}"
        return text + ("" if equality else f" (up to {tol} allowed)") + "\n"

    msg = f"{what} are not {'equal' if equality else 'close'}!\n\n{extra}\n"
    msg += line("absolute", abs_diff, abs_idx, atol) + line("relative", rel_diff, rel_idx, rtol)
    return msg.strip()


def _scalar_mismatch(actual, expected, rtol, atol):
    abs_diff = abs(actual - expected)
    rel_diff = math.inf if expected == 0 else abs_diff / abs(expected)
    return _numeric_msg("Scalars", f"Expected {expected} but got {actual}.", abs_diff, None, atol, rel_diff, None, rtol)


def _host(t):
    return t.numpy(force=True) if isinstance(t, Tensor) else np.asarray(t)


def _compare_tensors(actual, expected, rtol, atol, equal_nan, check_device, check_dtype):
    if tuple(actual.shape) != tuple(expected.shape):
        raise _Mismatch(AssertionError, f"The values for attribute 'shape' do not match: {tuple(actual.shape)} != "
                                        f"{tuple(expected.shape)}.")
    dev_a = str(getattr(actual, "device", "cpu"))
    dev_e = str(getattr(expected, "device", "cpu"))
    if check_device and dev_a != dev_e:
        raise _Mismatch(AssertionError, f"The values for attribute 'device' do not match: {dev_a} != {dev_e}.")
    if check_dtype and actual.dtype != expected.dtype:
        raise _Mismatch(AssertionError, f"The values for attribute 'dtype' do not match: {actual.dtype} != {expected.dtype}.")
    rtol, atol = _tolerances((actual.dtype, expected.dtype), rtol, atol)
    a, e = _host(actual), _host(expected)
    if a.dtype != e.dtype:
        common = np.promote_types(a.dtype, e.dtype)
        a, e = a.astype(common), e.astype(common)
    if a.dtype.kind == "b":
        matches = a == e
    else:
        with np.errstate(all="ignore"):
            matches = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan)
    if matches.all():
        return
    if a.ndim == 0:
        raise _Mismatch(AssertionError, _scalar_mismatch(_fmt(a[()]), _fmt(e[()]), rtol, atol))
    raise _Mismatch(AssertionError, _tensor_mismatch(a, e, matches, rtol, atol))


def _is_number(x):
    return isinstance(x, (numbers.Number, np.number)) and not isinstance(x, (bool, np.bool_))


def _compare(actual, expected, opts, id_):
    tensorish = (Tensor, np.ndarray)
    if isinstance(actual, tensorish) or isinstance(expected, tensorish):
        if not (isinstance(actual, Tensor) and isinstance(expected, Tensor)
                or isinstance(actual, np.ndarray) and isinstance(expected, np.ndarray)):
            raise _Mismatch(TypeError, f"No comparison pair was able to handle inputs of type {type(actual)} and "
                                       f"{type(expected)}.")
        return _compare_tensors(actual, expected, **opts)
    if isinstance(actual, (bool, np.bool_)) and isinstance(expected, (bool, np.bool_)):
        if bool(actual) is not bool(expected):
            raise _Mismatch(AssertionError, f"Booleans mismatch: {bool(actual)} is not {bool(expected)}")
        return
    if _is_number(actual) and _is_number(expected):
        if opts["check_dtype"] and type(actual) is not type(expected):
            raise _Mismatch(AssertionError, f"The values for attribute 'dtype' do not match: {type(actual).__name__} != "
                                            f"{type(expected).__name__}.")
        dtypes = [np.int64 if isinstance(x, numbers.Integral) else np.float64 for x in (actual, expected)]
        rtol, atol = _tolerances(dtypes, opts["rtol"], opts["atol"])
        a, e = _fmt(actual), _fmt(expected)
        both_nan = isinstance(a, float) and isinstance(e, float) and math.isnan(a) and math.isnan(e)
        if (both_nan and opts["equal_nan"]) or a == e or abs(a - e) <= atol + rtol * abs(e):
            return
        raise _Mismatch(AssertionError, _scalar_mismatch(a, e, rtol, atol))
    if isinstance(actual, collections.abc.Mapping) and isinstance(expected, collections.abc.Mapping):
        if set(actual) != set(expected):
            missing, extra = sorted(set(expected) - set(actual), key=repr), sorted(set(actual) - set(expected), key=repr)
            raise _Mismatch(AssertionError, f"The keys of the mappings do not match:\nMissing keys in the actual "
                                            f"mapping: {missing}\nAdditional keys in the actual mapping: {extra}")
        for k in expected:
            _compare_item(actual[k], expected[k], opts, id_ + (k,))
        return
    if (isinstance(actual, collections.abc.Sequence) and isinstance(expected, collections.abc.Sequence)
            and not isinstance(actual, str) and not isinstance(expected, str)):
        if len(actual) != len(expected):
            raise _Mismatch(AssertionError, f"The length of the sequences mismatch: {len(actual)} != {len(expected)}")
        for i, (x, y) in enumerate(zip(actual, expected)):
            _compare_item(x, y, opts, id_ + (i,))
        return
    if actual is None and expected is None:
        return
    raise _Mismatch(TypeError, f"No comparison pair was able to handle inputs of type {type(actual)} and {type(expected)}.")


def _compare_item(actual, expected, opts, id_):
    try:
        _compare(actual, expected, opts, id_)
    except _Mismatch as m:
        if id_ and "The failure occurred for item" not in m.msg:
            m.msg += f"\n\nThe failure occurred for item {''.join(f'[{i!r}]' for i in id_)}"
        raise


def assert_close(actual, expected, *, allow_subclasses: bool = True, rtol=None, atol=None, equal_nan: bool = False,
                 check_device: bool = True, check_dtype: bool = True, check_layout: bool = True,
                 check_stride: bool = False, msg=None):
    """``torch.testing.assert_close`` (see the module docstring). ``msg`` (a string, or a
    callable given the generated message) replaces the message."""
    if (rtol is None) != (atol is None):
        _tolerances((), rtol, atol)  # raises the ValueError naming the missing one
    opts = dict(rtol=rtol, atol=atol, equal_nan=equal_nan, check_device=check_device, check_dtype=check_dtype)
    try:
        _compare_item(actual, expected, opts, ())
    except _Mismatch as m:
        text = m.msg
        if msg is not None:
            text = msg(text) if callable(msg) else msg
        raise m.cls(text) from None


def assert_allclose(actual, expected, rtol=None, atol=None, equal_nan: bool = True, msg: str = ""):
    """``torch.testing.assert_allclose`` (deprecated in PyTorch, as there: use assert_close).
    Non-tensor inputs are made tensors like ``expected``; dtypes are not checked; NaNs are
    equal by default."""
    warnings.warn("`torch.testing.assert_allclose()` is deprecated since 1.12 and will be removed in a future release. "
                  "Please use `torch.testing.assert_close()` instead.", FutureWarning, stacklevel=2)
    if not isinstance(actual, Tensor):
        actual = Tensor._of(actual)
    if not isinstance(expected, Tensor):
        expected = Tensor._of(expected, dtype=actual.dtype)
    if rtol is None and atol is None:
        rtol, atol = _tolerances((actual.dtype, expected.dtype), None, None)
    assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan, check_device=True,
                 check_dtype=False, msg=msg or None)


def make_tensor(*shape, dtype, device, low=None, high=None, requires_grad: bool = False,
                noncontiguous: bool = False, exclude_zero: bool = False, memory_format=None) -> Tensor:
    """``torch.testing.make_tensor``: a tensor of ``shape`` filled uniformly from [low, high)
    (defaults [−9, 9) for floats, [−9, 10) for integers clamped to the dtype's range, bools
    0/1), drawn from tinymm's generator. ``noncontiguous`` returns a strided view (every other
    element of a doubled last dim); ``exclude_zero`` replaces zeros by 1 (integers) or the
    dtype's smallest normal number (floats)."""
    if len(shape) == 1 and isinstance(shape[0], collections.abc.Sequence):
        shape = shape[0]
    shape = tuple(int(s) for s in shape)
    dt = np.dtype(dtype)
    if noncontiguous and memory_format is not None:
        raise ValueError(f"The parameters `noncontiguous` and `memory_format` are mutually exclusive, but got "
                         f"noncontiguous={noncontiguous} and memory_format={memory_format}")
    if requires_grad and dt.kind in "biu":
        raise ValueError(f"`requires_grad=True` is not supported for boolean and integral dtypes, but got dtype={dt}")
    if dt.kind not in "biuf":
        raise TypeError(f"The requested dtype '{dt}' is not supported by tinymm.testing.make_tensor().")
    noncontiguous = noncontiguous and math.prod(shape) > 1
    if noncontiguous:
        shape = shape[:-1] + (2 * shape[-1],)
    if dt.kind == "b":
        lo_, hi_, default = 0, 2, (0, 2)
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        lo_, hi_, default = int(info.min), int(info.max) + (1 if dt != np.int64 else 0), (-9, 10)
    else:
        info = np.finfo(dt)
        lo_, hi_, default = float(info.min), float(info.max), (-9, 9)
    low = default[0] if low is None else low
    high = default[1] if high is None else high
    if any(isinstance(v, float) and math.isnan(v) for v in (low, high)):
        raise ValueError(f"`low` and `high` cannot be NaN, but got low={low} and high={high}")
    if low >= high and not (low == high and dt.kind == "f"):
        raise ValueError(f"`low` must be less than `high`, but got {low} >= {high}")
    if high < lo_ or low >= hi_:
        raise ValueError(f"The value interval specified by `low` and `high` is [{low}, {high}), but {dt} only "
                         f"supports [{lo_}, {hi_})")
    low, high = min(max(low, lo_), hi_), min(max(high, lo_), hi_)
    dev = backend.parse_device(device)
    g = backend.rng(dev)
    if dt.kind in "biu":
        arr = g.integers(math.ceil(low), math.ceil(high), size=shape).astype(dt)
    else:
        if high - low >= np.finfo(dt).max:
            arr = (g.uniform(low / 2, high / 2, size=shape) * 2).astype(dt)
        else:
            arr = g.uniform(low, high, size=shape).astype(dt)
    if noncontiguous:
        arr = arr[..., 1::2]
    if exclude_zero:
        arr[arr == 0] = 1 if dt.kind in "biu" else np.finfo(dt).tiny
    t = Tensor._wrap(arr)
    if dt.kind == "f":
        t.requires_grad = bool(requires_grad)
    return t
