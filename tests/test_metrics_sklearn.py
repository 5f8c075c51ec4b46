"""tinymm.metrics against scikit-learn (the reference) on hypothesis-drawn inputs.

Every comparison checks three things: the values (NaN-aware, to 1e-10), that both raise a
ValueError on the same inputs, and that both emit the same warnings (messages of every
UserWarning, UndefinedMetricWarning included). Binary, multiclass (2-10 classes) and
multilabel targets; every ``average`` and ``zero_division``; labels subsets with absent labels;
sample weights (float, integer, with zeros).
"""
import math
import warnings

import numpy as np
import pytest

sklearn_metrics = pytest.importorskip(
    "sklearn.metrics", reason="scikit-learn is the reference implementation (a test extra)"
)
hypothesis = pytest.importorskip("hypothesis", reason="hypothesis draws the test inputs")
from hypothesis import event, given, settings, strategies as st  # noqa: E402
from hypothesis.control import currently_in_test_context  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import tinymm.metrics as tm  # noqa: E402

# the heavily parametrized tests run a share of the profile's examples per combination
FEW = settings(max_examples=max(5, settings.default.max_examples // 3))

AVERAGES = [None, "binary", "micro", "macro", "weighted", "samples"]
ZERO_DIVISIONS = ["warn", 0.0, 1.0, np.nan]
# warnings the two sides legitimately word differently (same situation, same category family)
_RANKING_SYNONYMS = {
    "No positive class found in y_true, recall is set to one for all thresholds.",
}


# ----------------------------------------------------------------------------- comparison


def _run(fn, args, kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result, error = fn(*args, **kwargs), None
        except (ValueError, TypeError, ZeroDivisionError, NotImplementedError) as exc:
            result, error = None, exc
    messages = sorted(
        {str(w.message) for w in caught if issubclass(w.category, UserWarning)}
    )
    return result, error, messages


def _assert_values_equal(mine, ref, where):
    if isinstance(ref, dict):
        assert isinstance(mine, dict), where
        assert list(mine) == list(ref), f"{where}: keys {list(mine)} != {list(ref)}"
        for key in ref:
            _assert_values_equal(mine[key], ref[key], f"{where}[{key!r}]")
    elif isinstance(ref, (tuple, list)):
        assert len(mine) == len(ref), where
        for i, (a, b) in enumerate(zip(mine, ref)):
            _assert_values_equal(a, b, f"{where}[{i}]")
    elif ref is None:
        assert mine is None, f"{where}: {mine!r} is not None"
    elif isinstance(ref, str):
        assert mine == ref, f"{where}:\n{mine}\n!=\n{ref}"
    else:
        ref_arr, mine_arr = np.asarray(ref), np.asarray(mine)
        assert mine_arr.shape == ref_arr.shape, (where, mine_arr.shape, ref_arr.shape)
        np.testing.assert_allclose(
            mine_arr.astype(np.float64), ref_arr.astype(np.float64),
            rtol=1e-10, atol=1e-12, equal_nan=True, err_msg=where,
        )
        if ref_arr.ndim == 0:
            assert isinstance(mine, (float, int, np.floating, np.integer)), where


def same_as_sklearn(name, *args, compare_warnings=True, **kwargs):
    """Call tinymm.metrics.<name> and sklearn.metrics.<name>; assert they agree."""
    mine, mine_err, mine_warn = _run(getattr(tm, name), args, kwargs)
    ref, ref_err, ref_warn = _run(getattr(sklearn_metrics, name), args, kwargs)
    where = f"{name}(kwargs={kwargs})"
    if currently_in_test_context():  # outcome counts in --hypothesis-show-statistics
        event(f"{name}: {'raises' if ref_err is not None else 'value'}")
    if ref_err is not None:
        assert mine_err is not None, f"{where}: sklearn raised {ref_err!r}, tinymm gave {mine!r}"
        expected = ValueError if isinstance(ref_err, ValueError) else type(ref_err)
        assert isinstance(mine_err, expected), (where, mine_err, ref_err)
        return None
    assert mine_err is None, f"{where}: tinymm raised {mine_err!r}, sklearn returned {ref!r}"
    _assert_values_equal(mine, ref, where)
    if compare_warnings:
        mine_warn = [m for m in mine_warn if m not in _RANKING_SYNONYMS]
        ref_warn = [m for m in ref_warn if m not in _RANKING_SYNONYMS]
        assert mine_warn == ref_warn, f"{where}: warnings\n{mine_warn}\n!=\n{ref_warn}"
    return mine


# ----------------------------------------------------------------------------- strategies

BINARY_ALPHABETS = [(0, 1), (-1, 1), ("neg", "pos"), (False, True), (1, 2)]
WEIGHT_VALUES = [0.0, 0.5, 1.0, 1.7, 3.25]


@st.composite
def weights(draw, n):
    """None (half the time), float weights (zeros included) or integer weights."""
    kind = draw(st.sampled_from(["none", "none", "float", "int"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(hnp.arrays(np.int64, n, elements=st.integers(0, 3)))
    return draw(hnp.arrays(np.float64, n, elements=st.sampled_from(WEIGHT_VALUES)))


@st.composite
def targets(draw, kind, max_n=24):
    """(y_true, y_pred, alphabet) of the requested kind; predictions mostly right."""
    n = draw(st.integers(1, max_n))
    if kind == "multilabel":
        c = draw(st.integers(2, 6))
        y_true = draw(hnp.arrays(np.int64, (n, c), elements=st.integers(0, 1)))
        y_pred = draw(hnp.arrays(np.int64, (n, c), elements=st.integers(0, 1)))
        return y_true, y_pred, list(range(c))
    if kind == "binary":
        alphabet = list(draw(st.sampled_from(BINARY_ALPHABETS)))
    else:
        k = draw(st.integers(2, 10))
        names = draw(st.sampled_from(["int", "str"]))
        alphabet = list(range(k)) if names == "int" else [f"c{i}" for i in range(k)]
    index = st.integers(0, len(alphabet) - 1)
    i_true = draw(hnp.arrays(np.int64, n, elements=index))
    i_other = draw(hnp.arrays(np.int64, n, elements=index))
    right = draw(hnp.arrays(np.bool_, n))
    i_pred = np.where(right, i_true, i_other)
    values = np.array(alphabet)
    return values[i_true], values[i_pred], alphabet


def _labels_option(draw, alphabet, kind):
    choice = draw(st.sampled_from(["none", "none", "subset", "with_absent"]))
    if choice == "none":
        return None
    subset = draw(st.lists(st.sampled_from(alphabet), min_size=1, max_size=len(alphabet),
                           unique=True))
    if choice == "with_absent" and kind == "multiclass":
        subset = subset + ([99] if isinstance(alphabet[0], int) else ["zz"])
    return subset


# ----------------------------------------------------------------------------- P/R/F


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("zero_division", ZERO_DIVISIONS, ids=str)
@pytest.mark.parametrize("average", AVERAGES, ids=str)
@FEW
@given(data=st.data())
def test_precision_recall_fscore(kind, average, zero_division, data):
    y_true, y_pred, alphabet = data.draw(targets(kind))
    sw = data.draw(weights(len(y_true)))
    labels = _labels_option(data.draw, alphabet, kind)
    pos_label = data.draw(st.sampled_from([1, alphabet[-1], alphabet[0]]))
    name = data.draw(st.sampled_from([
        "precision_recall_fscore_support", "precision_score", "recall_score", "f1_score",
        "fbeta_score",
    ]))
    kwargs = dict(average=average, zero_division=zero_division, labels=labels,
                  pos_label=pos_label, sample_weight=sw)
    if name == "fbeta_score":
        kwargs["beta"] = data.draw(st.sampled_from([0.0, 0.5, 2.0, math.inf]))
    elif name == "precision_recall_fscore_support":
        kwargs["beta"] = data.draw(st.sampled_from([1.0, 0.5, 3.0]))
    same_as_sklearn(name, y_true, y_pred, **kwargs)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
@given(data=st.data())
def test_accuracy_and_confusion(kind, data):
    y_true, y_pred, alphabet = data.draw(targets(kind))
    sw = data.draw(weights(len(y_true)))
    normalize = data.draw(st.booleans())
    same_as_sklearn("accuracy_score", y_true, y_pred, normalize=normalize, sample_weight=sw)
    if sw is None or sw.sum() > 0:
        same_as_sklearn("balanced_accuracy_score", y_true, y_pred, sample_weight=sw,
                        adjusted=data.draw(st.booleans()))
    labels = _labels_option(data.draw, alphabet, kind)
    same_as_sklearn("multilabel_confusion_matrix", y_true, y_pred, sample_weight=sw,
                    labels=labels, samplewise=kind == "multilabel" and data.draw(st.booleans()))
    if kind != "multilabel":
        same_as_sklearn("confusion_matrix", y_true, y_pred, labels=labels, sample_weight=sw,
                        normalize=data.draw(st.sampled_from([None, "true", "pred", "all"])))


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("zero_division", ZERO_DIVISIONS, ids=str)
@FEW
@given(data=st.data())
def test_classification_report(kind, zero_division, data):
    y_true, y_pred, alphabet = data.draw(targets(kind))
    sw = data.draw(weights(len(y_true)))
    labels = _labels_option(data.draw, alphabet, kind)
    digits = data.draw(st.integers(1, 5))
    for output_dict in (False, True):
        same_as_sklearn("classification_report", y_true, y_pred, labels=labels,
                        sample_weight=sw, digits=digits, output_dict=output_dict,
                        zero_division=zero_division)


# ----------------------------------------------------------------------------- scores

# few distinct values, so ties between positives and negatives are common
TIED = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]


def scores(draw, shape, tied_only=False):
    """Scores with many ties (or, half the time, arbitrary finite values)."""
    if tied_only or draw(st.booleans()):
        return draw(hnp.arrays(np.float64, shape, elements=st.sampled_from(TIED)))
    return draw(hnp.arrays(np.float64, shape, elements=st.floats(-3, 3, width=32)))


def probabilities(draw, n, k):
    """(n, k) rows summing to one, from small integer masses (ties again)."""
    mass = draw(hnp.arrays(np.float64, (n, k), elements=st.sampled_from([0.0, 1.0, 2.0, 3.0])))
    mass[mass.sum(axis=1) == 0, 0] = 1.0
    return mass / mass.sum(axis=1, keepdims=True)


def class_labels(draw, n, k):
    return draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)))


def _all_present_or_labels(draw, y_true, k, min_classes):
    """Either pass labels=range(k), or re-encode y_true so every score column is present."""
    present = np.unique(y_true)
    if draw(st.booleans()) or present.shape[0] < min_classes:
        return y_true, list(range(k)), k
    return np.searchsorted(present, y_true), None, present.shape[0]


@given(data=st.data())
def test_roc_auc_and_average_precision_binary(data):
    y_true, _, alphabet = data.draw(targets("binary", max_n=30))
    y_score = scores(data.draw, len(y_true))
    sw = data.draw(weights(len(y_true)))
    max_fpr = data.draw(st.sampled_from([None, None, 0.3, 0.5, 1.0]))
    same_as_sklearn("roc_auc_score", y_true, y_score, sample_weight=sw, max_fpr=max_fpr)
    pos_label = data.draw(st.sampled_from([1, alphabet[0], alphabet[-1]]))
    same_as_sklearn("average_precision_score", y_true, y_score, sample_weight=sw,
                    pos_label=pos_label)


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted", "samples"], ids=str)
@given(data=st.data())
def test_roc_auc_and_average_precision_multilabel(average, data):
    y_true, _, _ = data.draw(targets("multilabel", max_n=20))
    y_score = scores(data.draw, y_true.shape, tied_only=True)
    sw = data.draw(weights(len(y_true)))
    same_as_sklearn("roc_auc_score", y_true, y_score, average=average, sample_weight=sw)
    same_as_sklearn("average_precision_score", y_true, y_score, average=average,
                    sample_weight=sw)


@pytest.mark.parametrize("multi_class", ["ovr", "ovo"])
@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"], ids=str)
@given(data=st.data())
def test_roc_auc_multiclass(multi_class, average, data):
    k = data.draw(st.integers(3, 10))
    n = data.draw(st.integers(2, 30))
    y_true = class_labels(data.draw, n, k)
    y_true, labels, k = _all_present_or_labels(data.draw, y_true, k, min_classes=3)
    proba = probabilities(data.draw, n, k)
    sw = data.draw(weights(n)) if multi_class == "ovr" else None
    same_as_sklearn("roc_auc_score", y_true, proba, multi_class=multi_class, average=average,
                    labels=labels, sample_weight=sw)
    n_present = np.unique(y_true).shape[0]
    if n_present >= 3 and multi_class == "ovr":
        # multiclass average precision: one-vs-rest over the classes present
        same_as_sklearn("average_precision_score", y_true,
                        probabilities(data.draw, n, n_present), average=average,
                        sample_weight=sw)


@given(data=st.data())
def test_top_k_accuracy(data):
    k_classes = data.draw(st.integers(2, 10))
    n = data.draw(st.integers(1, 30))
    y_true = class_labels(data.draw, n, k_classes)
    present = np.unique(y_true)
    use_labels = data.draw(st.booleans()) or present.shape[0] == 1
    if use_labels:
        labels, n_cols = list(range(k_classes)), k_classes
    else:
        labels, n_cols = None, present.shape[0]
        y_true = np.searchsorted(present, y_true)
    if n_cols == 2 and data.draw(st.booleans()):
        y_score = scores(data.draw, n)  # binary: scores of the greater class
    else:
        y_score = probabilities(data.draw, n, n_cols)
    k = data.draw(st.integers(1, n_cols))
    sw = data.draw(weights(n))
    normalize = data.draw(st.booleans())
    if sw is not None and normalize and sw.sum() == 0:
        sw = None
    same_as_sklearn("top_k_accuracy_score", y_true, y_score, k=k, labels=labels,
                    sample_weight=sw, normalize=normalize)


@given(data=st.data())
def test_log_loss(data):
    k = data.draw(st.integers(2, 6))
    n = data.draw(st.integers(1, 25))
    y_true = class_labels(data.draw, n, k)
    y_true, labels, k = _all_present_or_labels(data.draw, y_true, k, min_classes=2)
    proba = probabilities(data.draw, n, k)
    if data.draw(st.booleans()):  # rows not summing to one: used as given, with a warning
        proba = proba * data.draw(st.sampled_from([0.5, 0.9, 0.999999]))
    proba = proba.astype(data.draw(st.sampled_from([np.float64, np.float32])))
    if k == 2 and data.draw(st.booleans()):
        proba = proba[:, 1]
    sw = data.draw(weights(n))
    normalize = data.draw(st.booleans())
    if sw is not None and normalize and sw.sum() == 0:
        sw = None
    same_as_sklearn("log_loss", y_true, proba, labels=labels, sample_weight=sw,
                    normalize=normalize)


# ----------------------------------------------------------------------------- type errors

MIXED_INPUTS = [
    ([0, 1, 2], [[0, 1], [1, 0], [1, 1]]),          # multiclass vs multilabel
    ([0, 1, 1], [0.5, 1.0, 0.0]),                    # binary vs continuous
    ([0.5, 1.5, 2.0], [0.5, 1.5, 2.0]),              # continuous
    ([[0, 1, 2], [2, 1, 0]], [[0, 1, 2], [2, 1, 0]]),  # multiclass-multioutput
    (["a", "b", "a"], [0, 1, 0]),                    # strings vs numbers
    ([0, 1, 0], [0, 1]),                             # length mismatch
    ([[0, 1], [1, 0]], [[0, 1, 1], [1, 0, 1]]),      # multilabel with different widths
    ([], []),                                        # empty
]


@pytest.mark.parametrize("y_true, y_pred", MIXED_INPUTS)
@pytest.mark.parametrize("name", ["accuracy_score", "f1_score", "confusion_matrix",
                                  "precision_recall_fscore_support"])
def test_invalid_targets_raise_like_sklearn(name, y_true, y_pred):
    same_as_sklearn(name, y_true, y_pred)
    with pytest.raises(ValueError):
        getattr(tm, name)(y_true, y_pred)
