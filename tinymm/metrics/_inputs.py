"""Input conversion and validation shared by every metric.

Metrics take plain arrays: Python lists, NumPy arrays, CuPy arrays (copied to the host with
``.get()``) and tinymm Tensors, recognised without importing them (an object with a ``.numpy()``
method and a ``.data`` attribute; torch tensors fit the same description). Nothing here imports
CuPy, torch or tinymm's tensor module.

Label targets are classified the way scikit-learn does it, because its definitions are the
reference every metric is checked against:

``binary``
    1-d (or a column vector) with at most two distinct values, e.g. ``[0, 1, 1]``, ``["a", "b"]``.
``multiclass``
    1-d with more than two distinct values.
``multilabel-indicator``
    2-d with more than one column, integer/bool (or integral float) values, at most two distinct
    values; a nonzero entry means "label present".
``multiclass-multioutput``, ``continuous``, ``continuous-multioutput``, ``unknown``
    recognised only to be refused with a clear error.

Labels may be integers, strings or bools; mixing strings and numbers is an error.
"""
from __future__ import annotations

import math
import numbers
from itertools import chain

import numpy as np

# ----------------------------------------------------------------------------- conversion


def to_numpy(x):
    """Return ``x`` as a host object NumPy understands (lists pass through unchanged).

    CuPy arrays are detected by their module name (``cupy`` is never imported here) and copied
    with ``.get()``; tensor-like objects (a ``.numpy()`` method and a ``.data`` attribute) are
    detached when they can be and converted with ``.numpy()``.
    """
    if x is None or isinstance(x, np.ndarray):
        return x
    if type(x).__module__.startswith("cupy"):
        return x.get()
    if callable(getattr(x, "numpy", None)) and hasattr(x, "data"):
        if callable(getattr(x, "detach", None)):
            x = x.detach()
        out = x.numpy()
        if type(out).__module__.startswith("cupy"):  # a device tensor whose .numpy() stays put
            out = out.get()
        return out
    return x


def as_array(x, name: str) -> np.ndarray:
    """Convert ``x`` to a NumPy array; ragged nested sequences become object arrays."""
    x = to_numpy(x)
    if isinstance(x, str) or x is None:
        raise ValueError(f"{name}: expected an array-like (array, list or tensor), got {x!r}")
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except ValueError:  # ragged nested lists
            arr = np.asarray(x, dtype=object)
    if arr.dtype.kind == "c":
        raise ValueError(f"{name}: complex data is not supported")
    if arr.dtype.kind == "S":
        raise TypeError(
            f"{name}: labels given as bytes are not supported; convert them to str or int"
        )
    return arr


def num_samples(arr: np.ndarray, name: str) -> int:
    if arr.ndim == 0:
        raise TypeError(f"{name}: a single value ({arr!r}) is not a collection of samples")
    return arr.shape[0]


def check_consistent_length(**arrays) -> int:
    """All given (name=array) arrays, None skipped, must have the same first dimension."""
    lengths = {name: num_samples(a, name) for name, a in arrays.items() if a is not None}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(f"inconsistent numbers of samples: {detail}")
    return next(iter(lengths.values()))


def column_or_1d(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.ndim == 1:
        return arr
    if arr.ndim == 2 and arr.shape[1] == 1:
        return arr.ravel()
    raise ValueError(f"{name} should be a 1d array, got an array of shape {tuple(arr.shape)} instead")


def assert_all_finite(arr: np.ndarray, name: str) -> None:
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        what = "NaN" if np.isnan(arr).any() else "infinity"
        raise ValueError(f"{name} contains {what}")


def check_scores(y_score, name: str = "y_score", allow_nd: bool = False) -> np.ndarray:
    """Scores/probabilities: numeric, finite, 1-d or 2-d; returned as a float array.

    float64, float32 and float16 are kept (the dtype matters for ``log_loss``'s clipping);
    anything else numeric becomes float64.
    """
    arr = as_array(y_score, name)
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}") from None
    if arr.dtype not in (np.float64, np.float32, np.float16):
        arr = arr.astype(np.float64)
    if arr.ndim == 0:
        raise ValueError(f"{name} must be an array of scores, got the scalar {arr!r}")
    if arr.ndim > 2 and not allow_nd:
        raise ValueError(f"{name} must be 1-d or 2-d, got shape {tuple(arr.shape)}")
    assert_all_finite(arr, name)
    return arr


def check_sample_weight(
    sample_weight, n_samples: int, allow_all_zero: bool = False
) -> np.ndarray | None:
    """``None`` or a finite, numeric, 1-d array of length ``n_samples`` (dtype kept).

    All-zero weights are refused unless ``allow_all_zero`` (scikit-learn refuses them too).
    """
    if sample_weight is None:
        return None
    sw = as_array(sample_weight, "sample_weight")
    if sw.ndim != 1:
        raise ValueError(
            f"sample_weight must be 1-d of length {n_samples}, got shape {tuple(sw.shape)}"
        )
    if sw.dtype.kind not in "biuf":
        try:
            sw = sw.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"sample_weight must be numeric, got dtype {sw.dtype}") from None
    if sw.shape[0] != n_samples:
        raise ValueError(f"sample_weight has {sw.shape[0]} entries, expected {n_samples}")
    assert_all_finite(sw, "sample_weight")
    if not allow_all_zero and sw.size and not np.any(sw != 0):
        raise ValueError("sample_weight: all weights are zero; at least one must be nonzero")
    return sw


def check_zero_division(zero_division):
    """Validate ``zero_division`` and return the value it stands for (``"warn"`` -> 0.0)."""
    if isinstance(zero_division, str):
        if zero_division == "warn":
            return 0.0
    elif isinstance(zero_division, numbers.Real) and not isinstance(zero_division, bool):
        if zero_division in (0, 1):
            return float(zero_division)
        if math.isnan(zero_division):
            return math.nan
    raise ValueError(
        f"zero_division must be one of 'warn', 0.0, 1.0 or np.nan, got {zero_division!r}"
    )


# ----------------------------------------------------------------------------- target types

TYPES_SUPPORTED = ("binary", "multiclass", "multilabel-indicator")


def _is_integral_float(values: np.ndarray) -> bool:
    return values.dtype.kind == "f" and bool(np.all(np.mod(values, 1) == 0))


def is_multilabel(y: np.ndarray) -> bool:
    """2-d, more than one column, at most two distinct integer-like values."""
    if not (y.ndim == 2 and y.shape[1] > 1):
        return False
    if y.dtype.kind not in "biuf":
        return False
    values = np.unique(y)
    return values.shape[0] < 3 and (y.dtype.kind in "biu" or _is_integral_float(values))


def type_of_target(y, name: str = "y") -> str:
    """The kind of label target ``y`` is; see the module docstring for the vocabulary."""
    y = as_array(y, name)
    if is_multilabel(y):
        return "multilabel-indicator"
    if y.ndim not in (1, 2):
        return "unknown"
    if min(y.shape) == 0:
        return "binary" if y.ndim == 1 else "unknown"
    first = y[0]
    if y.ndim == 1 and isinstance(first, (list, tuple)):
        raise ValueError(
            f"{name}: a sequence of sequences is not a supported multilabel format; "
            "use a binary indicator matrix of shape (n_samples, n_labels)"
        )
    if y.dtype == object and not isinstance(y.flat[0], str):
        return "unknown"
    suffix = "-multioutput" if (y.ndim == 2 and y.shape[1] > 1) else ""
    if y.dtype.kind == "f":
        assert_all_finite(y, name)
        if np.any(np.mod(y, 1) != 0):
            return "continuous" + suffix
    if np.unique(y).shape[0] > 2 or (y.ndim == 2 and y.shape[1] > 1):
        return "multiclass" + suffix
    return "binary"


def _is_string_label(label) -> bool:
    return isinstance(label, str)


def unique_labels(*ys: np.ndarray, y_type: str) -> np.ndarray:
    """Sorted union of the labels in ``ys`` (column indices for multilabel targets)."""
    if y_type == "multilabel-indicator":
        n_cols = {y.shape[1] for y in ys}
        if len(n_cols) > 1:
            raise ValueError(
                "multilabel indicator inputs have different numbers of labels (columns): "
                + " vs ".join(str(y.shape[1]) for y in ys)
            )
        return np.arange(ys[0].shape[1])
    per_array = [np.unique(y) for y in ys]
    kinds = [{_is_string_label(v) for v in u} for u in per_array]
    if len(set().union(*kinds)) > 1:
        detail = " and ".join(str(u.tolist()) for u in per_array)
        raise ValueError(f"mix of label input types (string and number): got {detail}")
    # A set built in argument order keeps the first representative of equal labels
    # (True vs 1): the same choice scikit-learn makes, so reports name labels alike.
    return np.asarray(sorted(set(chain.from_iterable(per_array))))


def check_targets(y_true, y_pred, name_true: str = "y_true", name_pred: str = "y_pred"):
    """Validate a pair of label targets for a classification metric.

    Returns ``(y_type, labels, y_true, y_pred)``: the common type (one of
    :data:`TYPES_SUPPORTED`), the sorted union of labels and the two arrays (1-d for binary and
    multiclass targets, 2-d indicator matrices for multilabel ones).
    """
    y_true = as_array(y_true, name_true)
    y_pred = as_array(y_pred, name_pred)
    check_consistent_length(**{name_true: y_true, name_pred: y_pred})
    type_true = type_of_target(y_true, name_true)
    type_pred = type_of_target(y_pred, name_pred)
    if y_true.shape[0] < 1:
        raise ValueError(f"{name_true} and {name_pred} are empty; at least 1 sample is required")

    types = {type_true, type_pred}
    if types == {"binary", "multiclass"}:
        types = {"multiclass"}
    if len(types) > 1:
        raise ValueError(
            f"classification metrics can't handle a mix of {type_true} ({name_true}) "
            f"and {type_pred} ({name_pred}) targets"
        )
    (y_type,) = types
    if y_type not in TYPES_SUPPORTED:
        raise ValueError(f"{y_type} targets are not supported (got them in {name_true})")

    if y_type in ("binary", "multiclass"):
        y_true = column_or_1d(y_true, name_true)
        y_pred = column_or_1d(y_pred, name_pred)
    labels = unique_labels(y_true, y_pred, y_type=y_type)
    if y_type == "binary" and labels.shape[0] > 2:
        y_type = "multiclass"
    return y_type, labels, y_true, y_pred


def label_in(value, labels: np.ndarray) -> bool:
    """``value in labels`` with NumPy's elementwise-equality meaning (False across types)."""
    if labels.size == 0:
        return False
    if labels.dtype.kind in "UO" and not isinstance(value, str):
        return False
    if labels.dtype.kind not in "UO" and isinstance(value, str):
        return False
    return bool(np.any(labels == value))
