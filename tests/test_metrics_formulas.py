"""tinymm.metrics against the definitions, written out here from tp / fp / fn counts.

Small hand-checked cases: a class never predicted, a class never present, all correct,
all wrong, tied scores, a single sample. No scikit-learn needed.
"""
import math
import warnings

import numpy as np
import pytest

import tinymm.metrics as tm
from tinymm.metrics import UndefinedMetricWarning

# ----------------------------------------------------------------------------- reference


def counts(y_true, y_pred, label):
    """(tp, fp, fn) of one label, one-vs-rest, by plain counting."""
    tp = sum(1 for t, p in zip(y_true, y_pred) if t == label and p == label)
    fp = sum(1 for t, p in zip(y_true, y_pred) if t != label and p == label)
    fn = sum(1 for t, p in zip(y_true, y_pred) if t == label and p != label)
    return tp, fp, fn


def ratio(num, den, zero_division):
    return num / den if den else zero_division


def prf_reference(y_true, y_pred, labels, average, zero_division=0.0, beta=1.0):
    """Precision, recall and F-beta by the textbook formulas; NaN entries leave averages."""
    b2 = beta**2
    per_label = [counts(y_true, y_pred, label) for label in labels]
    if average == "micro":
        per_label = [tuple(sum(c[i] for c in per_label) for i in range(3))]
    p = [ratio(tp, tp + fp, zero_division) for tp, fp, fn in per_label]
    r = [ratio(tp, tp + fn, zero_division) for tp, fp, fn in per_label]
    f = [ratio((1 + b2) * tp, (1 + b2) * tp + b2 * fn + fp, zero_division)
         for tp, fp, fn in per_label]
    support = [tp + fn for tp, fp, fn in per_label]
    if average is None:
        return p, r, f, support

    def mean(values):
        pairs = [(v, s) for v, s in zip(values, support) if not math.isnan(v)]
        if not pairs:
            return math.nan
        if average == "weighted" and sum(s for _, s in pairs) > 0:
            return sum(v * s for v, s in pairs) / sum(s for _, s in pairs)
        return sum(v for v, _ in pairs) / len(pairs)

    return mean(p), mean(r), mean(f), None


def assert_close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float),
                               rtol=1e-12, atol=1e-12, equal_nan=True)


# 3 classes present, class 2 never predicted; label 3 is never present nor predicted
Y_TRUE = [0, 0, 1, 1, 1, 2]
Y_PRED = [0, 1, 1, 1, 0, 1]
LABELS = [0, 1, 2, 3]

HAND_CASES = {
    "never_predicted_and_never_present": (Y_TRUE, Y_PRED, LABELS),
    "all_correct": ([0, 1, 2, 2, 1], [0, 1, 2, 2, 1], [0, 1, 2]),
    "all_wrong": ([0, 1, 2, 2, 1], [1, 2, 0, 1, 0], [0, 1, 2]),
    "single_sample_right": ([2], [2], [2]),
    "single_sample_wrong": ([1], [0], [0, 1]),
    "predicted_never_true": ([0, 0, 0], [0, 1, 1], [0, 1]),
}


# ----------------------------------------------------------------------------- P / R / F


def test_hand_computed_counts():
    # class 0: tp=1 fp=1 fn=1; class 1: tp=2 fp=2 fn=1; class 2: tp=0 fp=0 fn=1; 3: nothing
    p, r, f, s = tm.precision_recall_fscore_support(
        Y_TRUE, Y_PRED, labels=LABELS, zero_division=0.0
    )
    assert_close(p, [1 / 2, 2 / 4, 0.0, 0.0])
    assert_close(r, [1 / 2, 2 / 3, 0 / 1, 0.0])
    assert_close(f, [2 / 4, 4 / 7, 0.0, 0.0])
    assert list(s) == [2, 3, 1, 0]
    # micro: tp=3, fp=3, fn=3 over labels 0..3
    assert_close(tm.precision_score(Y_TRUE, Y_PRED, average="micro", labels=LABELS), 3 / 6)
    assert_close(tm.f1_score(Y_TRUE, Y_PRED, average="macro", labels=LABELS,
                             zero_division=np.nan), (1 / 2 + 4 / 7 + 0.0) / 3)
    assert_close(tm.recall_score(Y_TRUE, Y_PRED, average="weighted"),
                 (2 * 1 / 2 + 3 * 2 / 3 + 1 * 0) / 6)


@pytest.mark.parametrize("case", HAND_CASES)
@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"], ids=str)
@pytest.mark.parametrize("zero_division", [0.0, 1.0, np.nan], ids=str)
@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0])
def test_prf_matches_formulas(case, average, zero_division, beta):
    y_true, y_pred, labels = HAND_CASES[case]
    expected = prf_reference(y_true, y_pred, labels, average, zero_division, beta)
    got = tm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=average, zero_division=zero_division, beta=beta
    )
    for g, e in zip(got[:3], expected[:3]):
        assert_close(g, e)
    if average is None:
        assert list(got[3]) == expected[3]
    else:
        assert got[3] is None
    f = tm.fbeta_score(y_true, y_pred, beta=beta, labels=labels, average=average,
                       zero_division=zero_division)
    assert_close(f, expected[2])


def test_binary_average_uses_pos_label():
    y_true = ["cat", "dog", "dog", "cat", "dog"]
    y_pred = ["dog", "dog", "cat", "cat", "dog"]
    tp, fp, fn = counts(y_true, y_pred, "dog")  # 2, 1, 1
    assert (tp, fp, fn) == (2, 1, 1)
    assert tm.precision_score(y_true, y_pred, pos_label="dog") == 2 / 3
    assert tm.recall_score(y_true, y_pred, pos_label="dog") == 2 / 3
    assert tm.precision_score(y_true, y_pred, pos_label="cat") == 1 / 2
    with pytest.raises(ValueError, match="pos_label='bird' is not a valid label"):
        tm.f1_score(y_true, y_pred, pos_label="bird")
    with pytest.raises(ValueError, match="pos_label=1 is not a valid label"):
        tm.f1_score(y_true, y_pred)


def test_zero_division_warn_is_zero_plus_warning():
    with pytest.warns(UndefinedMetricWarning, match="Precision is ill-defined"):
        p = tm.precision_score([0, 1, 1], [0, 0, 0])
    assert p == 0.0
    with pytest.warns(UndefinedMetricWarning, match="Recall is ill-defined"):
        assert tm.recall_score([0, 0], [0, 1]) == 0.0
    with pytest.warns(UndefinedMetricWarning, match="F-score is ill-defined"):
        assert tm.f1_score([0, 0], [0, 0]) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tm.f1_score([0, 0], [0, 0], zero_division=1.0) == 1.0
        assert math.isnan(tm.f1_score([0, 0], [0, 0], zero_division=np.nan))
    assert issubclass(UndefinedMetricWarning, UserWarning)


def test_zero_division_nan_is_left_out_of_macro_average():
    # labels 0 and 1 defined, label 2 never predicted -> precision NaN, left out
    y_true, y_pred = [0, 1, 2], [0, 1, 1]
    assert tm.precision_score(y_true, y_pred, average="macro", zero_division=np.nan) == (
        (1 + 1 / 2) / 2
    )
    assert tm.precision_score(y_true, y_pred, average="macro", zero_division=0.0) == (
        (1 + 1 / 2 + 0) / 3
    )


def test_multilabel_counts_and_samples_average():
    y_true = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    y_pred = np.array([[1, 0, 0], [0, 1, 1], [1, 0, 0], [0, 0, 0]])
    # per label: 0: tp 2 fp 0 fn 0; 1: tp 1 fp 0 fn 1; 2: tp 0 fp 1 fn 1
    p, r, f, s = tm.precision_recall_fscore_support(y_true, y_pred, zero_division=0.0)
    assert_close(p, [1, 1, 0])
    assert_close(r, [1, 1 / 2, 0])
    assert list(s) == [2, 2, 1]
    # per sample precision: 1/1, 1/2, 1/1, undefined (-> zero_division)
    assert_close(tm.precision_score(y_true, y_pred, average="samples", zero_division=0.0),
                 (1 + 1 / 2 + 1 + 0) / 4)
    assert_close(tm.precision_score(y_true, y_pred, average="samples", zero_division=np.nan),
                 (1 + 1 / 2 + 1) / 3)
    # subset accuracy: rows 0, 1, 2 differ, row 3 matches
    assert tm.accuracy_score(y_true, y_pred) == 1 / 4
    with pytest.raises(ValueError, match="average='binary'"):
        tm.f1_score(y_true, y_pred)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        tm.f1_score(y_true, y_pred, average="macro", labels=[0, 3])


# ----------------------------------------------------------------------------- accuracy & cm


@pytest.mark.parametrize("case", HAND_CASES)
def test_accuracy_and_balanced_accuracy(case):
    y_true, y_pred, _ = HAND_CASES[case]
    correct = sum(t == p for t, p in zip(y_true, y_pred))
    assert tm.accuracy_score(y_true, y_pred) == correct / len(y_true)
    assert tm.accuracy_score(y_true, y_pred, normalize=False) == correct
    present = sorted(set(y_true))
    recalls = [counts(y_true, y_pred, c)[0] / sum(t == c for t in y_true) for c in present]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
        assert_close(tm.balanced_accuracy_score(y_true, y_pred), np.mean(recalls))


def test_weighted_accuracy():
    assert tm.accuracy_score([0, 1, 1], [0, 1, 0], sample_weight=[1, 2, 5]) == 3 / 8
    assert tm.accuracy_score([0, 1, 1], [0, 1, 0], sample_weight=[1, 2, 5], normalize=False) == 3


def test_confusion_matrix_hand_case():
    cm = tm.confusion_matrix(Y_TRUE, Y_PRED)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, [[1, 1, 0], [1, 2, 0], [0, 1, 0]])
    # rows: true label; labels reorder, select and add absent ones; other samples are left out
    np.testing.assert_array_equal(
        tm.confusion_matrix(Y_TRUE, Y_PRED, labels=[2, 1, 3]),
        [[0, 1, 0], [0, 2, 0], [0, 0, 0]],
    )
    assert_close(tm.confusion_matrix(Y_TRUE, Y_PRED, normalize="true"),
                 [[1 / 2, 1 / 2, 0], [1 / 3, 2 / 3, 0], [0, 1, 0]])
    assert_close(tm.confusion_matrix(Y_TRUE, Y_PRED, normalize="pred"),
                 [[1 / 2, 1 / 4, 0], [1 / 2, 2 / 4, 0], [0, 1 / 4, 0]])  # empty column -> 0
    assert_close(tm.confusion_matrix(Y_TRUE, Y_PRED, normalize="all"),
                 np.array([[1, 1, 0], [1, 2, 0], [0, 1, 0]]) / 6)
    assert_close(tm.confusion_matrix([0, 1], [1, 1], sample_weight=[0.5, 2.0]),
                 [[0, 0.5], [0, 2.0]])
    with pytest.raises(ValueError, match="none of labels"):
        tm.confusion_matrix(Y_TRUE, Y_PRED, labels=[7, 8])
    with pytest.warns(UserWarning, match="single label"):
        tm.confusion_matrix([1], [1])


def test_multilabel_confusion_matrix():
    mcm = tm.multilabel_confusion_matrix(Y_TRUE, Y_PRED, labels=[0, 1, 2])
    # [[tn, fp], [fn, tp]] per label
    np.testing.assert_array_equal(mcm[0], [[3, 1], [1, 1]])
    np.testing.assert_array_equal(mcm[1], [[1, 2], [1, 2]])
    np.testing.assert_array_equal(mcm[2], [[5, 0], [1, 0]])


def test_classification_report_layout_and_dict():
    report = tm.classification_report(Y_TRUE, Y_PRED, target_names=["a", "b", "c"],
                                      zero_division=0.0)
    lines = report.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[2].split() == ["a", "0.50", "0.50", "0.50", "2"]
    assert lines[4].split() == ["c", "0.00", "0.00", "0.00", "1"]
    assert lines[6].split() == ["accuracy", "0.50", "6"]
    assert lines[7].split()[:2] == ["macro", "avg"]
    d = tm.classification_report(Y_TRUE, Y_PRED, output_dict=True, zero_division=0.0)
    assert list(d) == ["0", "1", "2", "accuracy", "macro avg", "weighted avg"]
    assert d["1"] == {"precision": 0.5, "recall": 2 / 3, "f1-score": 4 / 7, "support": 3.0}
    assert d["accuracy"] == 0.5
    # a label subset: micro average is no longer accuracy
    d = tm.classification_report(Y_TRUE, Y_PRED, labels=[0, 1], output_dict=True)
    assert "micro avg" in d and "accuracy" not in d


# ----------------------------------------------------------------------------- scores


def mann_whitney_auc(y, s):
    pos = [si for yi, si in zip(y, s) if yi]
    neg = [si for yi, si in zip(y, s) if not yi]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def step_average_precision(y, s):
    """sum over distinct thresholds t (descending) of (R_t - R_prev) * P_t."""
    total_pos = sum(y)
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(s), reverse=True):
        tp = sum(1 for yi, si in zip(y, s) if si >= t and yi)
        fp = sum(1 for yi, si in zip(y, s) if si >= t and not yi)
        recall = tp / total_pos
        ap += (recall - prev_recall) * tp / (tp + fp)
        prev_recall = recall
    return ap


def test_roc_auc_with_ties():
    y, s = [0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9]
    # pairs (pos, neg): 0.5>0.1, 0.5=0.5 (half), 0.9>0.1, 0.9>0.5 -> 3.5 / 4
    assert tm.roc_auc_score(y, s) == 0.875 == mann_whitney_auc(y, s)
    assert tm.roc_auc_score(y, [0.3] * 4) == 0.5  # all tied
    assert tm.roc_auc_score([0, 1], [0.2, 0.8]) == 1.0  # all correct
    assert tm.roc_auc_score([0, 1], [0.8, 0.2]) == 0.0  # all wrong
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 2, 15)
        s = rng.integers(0, 4, 15) / 4  # many ties
        if 0 < y.sum() < 15:
            assert_close(tm.roc_auc_score(y, s), mann_whitney_auc(y, s))


def test_roc_auc_single_class_and_multiclass():
    with pytest.warns(UndefinedMetricWarning, match="Only one class"):
        assert math.isnan(tm.roc_auc_score([1, 1, 1], [0.2, 0.4, 0.9]))
    with pytest.warns(UndefinedMetricWarning, match="Only one class"):
        assert math.isnan(tm.roc_auc_score([1], [0.5]))  # single sample
    y = [0, 1, 2, 2]
    p = np.array([[0.7, 0.2, 0.1], [0.2, 0.6, 0.2], [0.1, 0.2, 0.7], [0.3, 0.3, 0.4]])
    ovr = [mann_whitney_auc([t == c for t in y], p[:, c]) for c in range(3)]
    assert_close(tm.roc_auc_score(y, p, multi_class="ovr"), np.mean(ovr))
    with pytest.raises(ValueError, match="multi_class"):
        tm.roc_auc_score(y, p)
    with pytest.raises(ValueError, match=r"shape \(n_samples,\)"):
        tm.roc_auc_score([0, 1, 1], np.ones((3, 2)) / 2)
    with pytest.raises(ValueError, match="not in parameter 'labels'"):
        tm.roc_auc_score(y, p, multi_class="ovr", labels=[0, 1, 3])


def test_average_precision_step_sum():
    y, s = [1, 0, 1, 1, 0], [0.9, 0.8, 0.7, 0.7, 0.1]
    # thresholds 0.9: P=1 R=1/3; 0.8: P=1/2 R=1/3; 0.7: P=3/4 R=1; 0.1: P=3/5 R=1
    assert_close(tm.average_precision_score(y, s), 1 / 3 * 1 + 2 / 3 * 3 / 4)
    assert_close(step_average_precision(y, s), 5 / 6)
    rng = np.random.default_rng(1)
    for _ in range(20):
        y = rng.integers(0, 2, 12)
        s = rng.integers(0, 5, 12) / 4
        if y.sum():
            assert_close(tm.average_precision_score(y, s), step_average_precision(y, s))
    assert tm.average_precision_score([0, 1], [0.1, 0.9]) == 1.0
    with pytest.warns(UndefinedMetricWarning, match="No positive class"):
        assert tm.average_precision_score([0, 0], [0.1, 0.9]) == 0.0


def test_log_loss_formula():
    p = np.array([[0.8, 0.2], [0.3, 0.7]])
    assert_close(tm.log_loss([0, 1], p), -(math.log(0.8) + math.log(0.7)) / 2)
    assert_close(tm.log_loss([0, 1], p[:, 1]), -(math.log(0.8) + math.log(0.7)) / 2)
    assert_close(tm.log_loss(["a", "b"], p, normalize=False), -(math.log(0.8) + math.log(0.7)))
    assert_close(tm.log_loss([0, 1], p, sample_weight=[3, 1]),
                 -(3 * math.log(0.8) + math.log(0.7)) / 4)
    assert_close(tm.log_loss([1], [[0.2, 0.8]], labels=[0, 1]), -math.log(0.8))  # one sample
    # rows not summing to 1 are used as given (not renormalized), with a warning
    with pytest.warns(UserWarning, match="do not sum to one"):
        assert_close(tm.log_loss([0, 1], [[0.4, 0.1], [0.1, 0.1]]),
                      -(math.log(0.4) + math.log(0.1)) / 2)
    # 0 is clipped to eps of the dtype
    eps64, eps32 = np.finfo(np.float64).eps, np.finfo(np.float32).eps
    assert_close(tm.log_loss([0, 1], [[0.0, 1.0], [0.0, 1.0]]), -math.log(eps64) / 2)
    assert_close(tm.log_loss([0, 1], np.array([[0.0, 1.0], [0.0, 1.0]], np.float32)),
                 np.float32(-np.log(np.float32(eps32)) / 2))
    # a class absent from y_true needs labels
    with pytest.raises(ValueError, match="labels"):
        tm.log_loss([0, 1], [[0.2, 0.3, 0.5], [0.1, 0.8, 0.1]])
    assert_close(tm.log_loss([0, 1], [[0.2, 0.3, 0.5], [0.1, 0.8, 0.1]], labels=[0, 1, 2]),
                 -(math.log(0.2) + math.log(0.8)) / 2)
    with pytest.raises(ValueError, match="not belonging to the passed labels"):
        tm.log_loss([0, 5], [[0.2, 0.3, 0.5], [0.1, 0.8, 0.1]], labels=[0, 1, 2])
    with pytest.raises(ValueError, match="greater than 1"):
        tm.log_loss([0, 1], [[0.2, 1.3], [0.1, 0.9]])
    with pytest.raises(ValueError, match="only one label"):
        tm.log_loss([1, 1], [0.5, 0.5])


def test_top_k_accuracy_hand_cases():
    scores = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.4, 0.4, 0.2], [0.3, 0.3, 0.4]])
    y = [1, 1, 0, 0]
    labels = [0, 1, 2]  # y holds two classes: name all three, as the score columns do
    # top-2 sets: {0,1}, {2,1}, {1,0} (tie: greater index first), {2,1} (tie 0/1 -> 1)
    assert tm.top_k_accuracy_score(y, scores, k=2, labels=labels) == 3 / 4
    # top-1: 0, 2, 1 (tie -> greater index), 2
    assert tm.top_k_accuracy_score(y, scores, k=1, labels=labels) == 0.0
    assert tm.top_k_accuracy_score([1, 2, 1, 2], scores, k=1, labels=labels) == 3 / 4
    assert tm.top_k_accuracy_score(y, scores, k=2, labels=labels, normalize=False) == 3
    assert tm.top_k_accuracy_score([0, 2, 1, 2], scores, k=1) == 1.0  # all correct
    assert tm.top_k_accuracy_score([0], scores[:1], k=1, labels=labels) == 1.0  # one sample
    with pytest.warns(UndefinedMetricWarning, match="perfect score"):
        assert tm.top_k_accuracy_score(y, scores, k=3, labels=labels) == 1.0
    with pytest.raises(ValueError, match="larger than the number of classes"):
        tm.top_k_accuracy_score(y, scores, k=4, labels=labels)
    with pytest.raises(ValueError, match="y_true is binary while y_score is 2d"):
        tm.top_k_accuracy_score(y, scores, k=1)
    with pytest.raises(ValueError, match="not in parameter 'labels'"):
        tm.top_k_accuracy_score([0, 5], scores[:2], k=1, labels=[0, 1, 2])
    with pytest.raises(ValueError, match="n_classes"):
        tm.top_k_accuracy_score([0, 1, 2], np.array([0.1, 0.5, 0.3]), k=1)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("call, match", [
    (lambda: tm.accuracy_score([0, 1, 0], [0, 1]), "inconsistent numbers of samples"),
    (lambda: tm.f1_score([0, 1], [0, 1], sample_weight=[1.0]), "sample_weight"),
    (lambda: tm.f1_score([0, 1, 2], [0, 1, 1]), "average='binary'"),
    (lambda: tm.f1_score([0, 1], [0, 1], average="mean"), "average must be one of"),
    (lambda: tm.f1_score([0, 1], [0, 1], zero_division=2), "zero_division"),
    (lambda: tm.fbeta_score([0, 1], [0, 1], beta=-1), "beta"),
    (lambda: tm.accuracy_score([0, 1], [[0, 1], [1, 1]]), "mix of"),
    (lambda: tm.accuracy_score([0.5, 1.0], [0.5, 1.0]), "continuous"),
    (lambda: tm.accuracy_score(["a", "b"], [0, 1]), "string and number"),
    (lambda: tm.accuracy_score([], []), "empty"),
    (lambda: tm.accuracy_score([0, np.nan], [0, 1]), "NaN"),
    (lambda: tm.confusion_matrix([0, 1], [0, 1], normalize="rows"), "normalize"),
    (lambda: tm.roc_auc_score([0, 1, 1], [[0.1], [0.2]]), "inconsistent numbers of samples"),
    (lambda: tm.roc_auc_score([0, 1], [0.2, np.inf]), "infinity"),
    (lambda: tm.top_k_accuracy_score([0, 1, 2], np.eye(3), k=0), "k must be"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_bad_input_names_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------- input kinds


class FakeTensor:
    """Duck-typed like tinymm.Tensor: .detach().numpy() and .data."""

    def __init__(self, array):
        self.data = np.asarray(array)

    def numpy(self):
        return self.data


class FakeCupyArray:
    """Looks like a cupy.ndarray to the converter: module name and .get()."""

    __module__ = "cupy._core.core"

    def __init__(self, array):
        self._host = np.asarray(array)

    def get(self):
        return self._host


@pytest.mark.parametrize("wrap", [list, np.asarray, FakeTensor, FakeCupyArray],
                         ids=["list", "numpy", "tensor", "cupy"])
def test_accepts_lists_arrays_tensors_and_cupy(wrap):
    y_true, y_pred = [0, 1, 2, 2, 1], [0, 2, 2, 2, 1]
    scores = np.eye(3)[[0, 2, 2, 2, 1]] * 0.8 + 0.2 / 3 * (1 - np.eye(3)[[0, 2, 2, 2, 1]]) + 0.0
    scores = scores / scores.sum(axis=1, keepdims=True)
    assert tm.accuracy_score(wrap(y_true), wrap(y_pred)) == 0.8
    assert tm.f1_score(wrap(y_true), wrap(y_pred), average="micro") == 0.8
    np.testing.assert_array_equal(tm.confusion_matrix(wrap(y_true), wrap(y_pred)),
                                  [[1, 0, 0], [0, 1, 1], [0, 0, 2]])
    assert tm.top_k_accuracy_score(wrap(y_true), wrap(scores), k=1) == 0.8
    assert np.isfinite(tm.log_loss(wrap(y_true), wrap(scores)))
    assert tm.recall_at_k(wrap(np.eye(4)), 1) == 1.0


def test_accepts_torch_tensors():
    torch = pytest.importorskip("torch", reason="torch tensors are one accepted input kind")
    y = torch.tensor([0, 1, 1, 0])
    s = torch.tensor([0.1, 0.9, 0.4, 0.3], requires_grad=True)
    assert tm.accuracy_score(y, torch.tensor([0, 1, 0, 0])) == 0.75
    assert tm.roc_auc_score(y, s) == 1.0


def test_bool_and_string_labels():
    assert tm.f1_score([True, False, True], [True, True, True]) == 0.8
    assert tm.recall_score(np.array(["b", "a", "b"]), np.array(["b", "b", "a"]),
                           pos_label="b") == 0.5
    d = tm.classification_report([True, False], [True, True], output_dict=True,
                                 zero_division=0.0)
    assert list(d)[:2] == ["False", "True"]
