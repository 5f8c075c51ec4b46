r"""Score-based metrics: ROC AUC, average precision and top-k accuracy.

All three rank samples (or classes) by score, so they are defined over the *distinct* score
thresholds: samples with tied scores enter the curve together, never one before the other.

ROC AUC
    The area under the curve (FPR, TPR) traced as the threshold falls through the distinct
    scores, by the trapezoid rule. A tie between a positive and a negative sample therefore
    counts one half, as in the Mann-Whitney statistic.
Average precision
    :math:`AP = \sum_n (R_n - R_{n-1}) P_n` over the distinct thresholds (a step-wise sum, not
    the interpolated area): scikit-learn's definition.
Top-k accuracy
    The true class is among the k highest-scoring classes. Ties are broken as scikit-learn
    does: among equal scores the class with the greater index ranks first.

Semantics, errors and warnings follow ``sklearn.metrics`` 1.9 (one deliberate difference:
``top_k_accuracy_score`` refuses ``k`` larger than the number of classes instead of warning).
"""
from __future__ import annotations

import numbers
import warnings
from itertools import combinations

import numpy as np

from ._inputs import (
    as_array,
    check_consistent_length,
    check_sample_weight,
    check_scores,
    column_or_1d,
    label_in,
    type_of_target,
)
from .classification import weighted_mean
from .exceptions import UndefinedMetricWarning

BINARY_AVERAGES = (None, "micro", "macro", "weighted", "samples")

# ----------------------------------------------------------------------------- curves


def binary_clf_curve(y_true: np.ndarray, y_score: np.ndarray, sample_weight=None):
    """Cumulative (fps, tps) at each distinct score threshold, highest threshold first.

    ``y_true`` is boolean (positive or not). Samples of zero weight are dropped first.
    Returns ``(fps, tps, thresholds)``; ``tps[i]`` is the (weighted) number of positives with
    score >= ``thresholds[i]``.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    if sample_weight is not None:
        keep = sample_weight != 0
        y_true, y_score = y_true[keep], y_score[keep]
        weight = sample_weight[keep].astype(np.float64)
    else:
        weight = None
    if y_true.shape[0] == 0:
        raise ValueError("no sample with a nonzero weight: the curve is empty")
    order = np.argsort(y_score, kind="stable")[::-1]
    y_score, y_true = y_score[order], y_true[order]
    # the last index of each run of equal scores, and the end of the array
    ends = np.r_[np.flatnonzero(np.diff(y_score)), y_true.shape[0] - 1]
    if weight is None:
        tps = np.cumsum(y_true)[ends]
        fps = 1 + ends - tps
    else:
        weight = weight[order]
        tps = np.cumsum(y_true * weight)[ends]
        fps = np.cumsum((1 - y_true) * weight)[ends]
    return fps, tps, y_score[ends]


def _roc_points(y_true, y_score, sample_weight):
    fps, tps, _ = binary_clf_curve(y_true, y_score, sample_weight)
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    if fps[-1] <= 0:
        warnings.warn(
            "No negative samples in y_true, false positive value should be meaningless",
            UndefinedMetricWarning,
            stacklevel=4,
        )
        fpr = np.full(fps.shape, np.nan)
    else:
        fpr = fps / fps[-1]
    if tps[-1] <= 0:
        warnings.warn(
            "No positive samples in y_true, true positive value should be meaningless",
            UndefinedMetricWarning,
            stacklevel=4,
        )
        tpr = np.full(tps.shape, np.nan)
    else:
        tpr = tps / tps[-1]
    return fpr, tpr


def _trapezoid(x, y) -> float:
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def _binary_roc_auc(y_true, y_score, sample_weight=None, max_fpr=None) -> float:
    y_true = np.asarray(y_true)
    if np.unique(y_true).shape[0] != 2:
        warnings.warn(
            "Only one class is present in y_true. ROC AUC score is not defined in that case.",
            UndefinedMetricWarning,
            stacklevel=4,
        )
        return np.nan
    fpr, tpr = _roc_points(y_true, y_score, sample_weight)
    if max_fpr is None or max_fpr == 1:
        return _trapezoid(fpr, tpr)
    # the partial area up to max_fpr (linear interpolation at max_fpr), McClish-standardized:
    # 0.5 for a non-discriminant score, 1 for a perfect one
    stop = np.searchsorted(fpr, max_fpr, "right")
    x_interp, y_interp = [fpr[stop - 1], fpr[stop]], [tpr[stop - 1], tpr[stop]]
    tpr = np.append(tpr[:stop], np.interp(max_fpr, x_interp, y_interp))
    fpr = np.append(fpr[:stop], max_fpr)
    partial_auc = _trapezoid(fpr, tpr)
    min_area, max_area = 0.5 * max_fpr**2, max_fpr
    return float(0.5 * (1 + (partial_auc - min_area) / (max_area - min_area)))


def _binary_average_precision(y_true, y_score, sample_weight=None, pos_label=1) -> float:
    positive = np.asarray(y_true) == pos_label
    fps, tps, _ = binary_clf_curve(positive, y_score, sample_weight)
    predicted = tps + fps
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted != 0, tps / np.where(predicted != 0, predicted, 1), 0.0)
    if tps[-1] == 0:
        warnings.warn(
            "No positive class found in y_true, recall is set to one for all thresholds.",
            UndefinedMetricWarning,
            stacklevel=4,
        )
        recall = np.ones_like(tps)
    else:
        recall = tps / tps[-1]
    steps = np.diff(np.r_[0.0, recall])
    return float(max(0.0, np.sum(steps * precision)))


# ----------------------------------------------------------------------------- averaging


def _check_average(average, options) -> None:
    if average not in options:
        raise ValueError(f"average must be one of {options}; got {average!r}")


def _average_binary_score(metric, y_true, y_score, average, sample_weight=None):
    """Apply a binary score metric per column (label) or per row, then average.

    ``y_true`` is an (n, C) indicator matrix, ``y_score`` (n, C) scores.
    micro: all entries as one binary problem; macro: mean over labels; weighted: mean weighted
    by each label's (weighted) positive count, 0 if there are none; samples: per-row score,
    averaged with the sample weights; None: per-label array.
    """
    _check_average(average, BINARY_AVERAGES)
    if y_score.shape != y_true.shape:
        raise ValueError(
            f"y_score must have the shape of the indicator y_true {tuple(y_true.shape)}, "
            f"got {tuple(y_score.shape)}"
        )
    y_true = y_true.astype(np.float64)
    score_weight, average_weight, axis = sample_weight, None, 1
    if average == "micro":
        if score_weight is not None:
            score_weight = np.repeat(score_weight, y_true.shape[1])
        y_true, y_score = y_true.ravel()[:, None], y_score.ravel()[:, None]
    elif average == "weighted":
        if score_weight is not None:
            average_weight = np.sum(y_true * np.reshape(score_weight, (-1, 1)), axis=0)
        else:
            average_weight = np.sum(y_true, axis=0)
        if np.isclose(average_weight.sum(), 0.0):
            return 0.0
    elif average == "samples":
        average_weight, score_weight, axis = score_weight, None, 0

    n_scores = y_score.shape[axis]
    scores = np.zeros(n_scores)
    for c in range(n_scores):
        yt = y_true[:, c] if axis == 1 else y_true[c, :]
        ys = y_score[:, c] if axis == 1 else y_score[c, :]
        scores[c] = metric(yt, ys, sample_weight=score_weight)
    if average is None:
        return scores
    if average_weight is not None:
        # zero-weight labels/samples must not bring a NaN into the average
        scores[np.asarray(average_weight) == 0] = 0
        return weighted_mean(scores, average_weight)
    return float(np.mean(scores))


def _binarize(y_true: np.ndarray, classes: np.ndarray) -> np.ndarray:
    return (y_true[:, None] == classes[None, :]).astype(np.int64)


def _check_sorted_unique_labels(labels) -> np.ndarray:
    labels = column_or_1d(as_array(labels, "labels"), "labels")
    classes = np.unique(labels)
    if classes.shape[0] != labels.shape[0]:
        raise ValueError(f"parameter 'labels' must be unique, got {labels.tolist()}")
    if not np.array_equal(classes, labels):
        raise ValueError(f"parameter 'labels' must be ordered (sorted), got {labels.tolist()}")
    return classes


# ----------------------------------------------------------------------------- public API


def roc_auc_score(
    y_true,
    y_score,
    *,
    average="macro",
    sample_weight=None,
    max_fpr=None,
    multi_class="raise",
    labels=None,
):
    """Area under the ROC curve (trapezoid over the distinct thresholds).

    Binary: ``y_score`` (n_samples,) scores of the greater label. Multilabel: (n, C) scores per
    label, averaged by ``average`` ('micro', 'macro', 'weighted', 'samples', None). Multiclass:
    (n, K) probabilities (rows summing to 1) with ``multi_class='ovr'`` (each class against the
    rest, averaged by ``average``) or ``'ovo'`` (Hand & Till: every pair of classes). A class
    absent from ``y_true`` gives NaN with an :class:`UndefinedMetricWarning`. ``max_fpr``
    (binary only) returns the McClish-standardized partial AUC over FPR in [0, max_fpr].
    """
    if max_fpr is not None and not (
        isinstance(max_fpr, numbers.Real) and 0 < max_fpr <= 1
    ):
        raise ValueError(f"max_fpr must be in (0, 1] or None, got {max_fpr!r}")
    if multi_class not in ("raise", "ovr", "ovo"):
        raise ValueError(f"multi_class must be 'raise', 'ovr' or 'ovo', got {multi_class!r}")
    y_true = as_array(y_true, "y_true")
    y_type = type_of_target(y_true, "y_true")
    y_score = check_scores(y_score, "y_score")
    n = check_consistent_length(y_true=y_true, y_score=y_score)
    # all-zero weights are refused where a curve is built (binary_clf_curve), not here: with
    # average="samples" they only weight the mean (scikit-learn's order of checks)
    sample_weight = check_sample_weight(sample_weight, n, allow_all_zero=True)

    if y_type == "multiclass" or (
        y_type == "binary" and y_score.ndim == 2 and y_score.shape[1] > 2
    ):
        if max_fpr is not None and max_fpr != 1.0:
            raise ValueError(
                f"partial AUC (max_fpr={max_fpr}) is not available for multiclass targets"
            )
        if multi_class == "raise":
            raise ValueError(
                "y_true is multiclass: choose multi_class='ovr' (one-vs-rest) or 'ovo' "
                "(one-vs-one)"
            )
        return _multiclass_roc_auc(
            column_or_1d(y_true, "y_true"), y_score, labels, multi_class, average, sample_weight
        )
    if y_type == "binary":
        _check_average(average, BINARY_AVERAGES)
        y_true = column_or_1d(y_true, "y_true")
        if y_score.ndim == 2 and y_score.shape[1] != 1:
            raise ValueError(
                f"y_true is binary, so y_score must have shape (n_samples,) (scores of the "
                f"greater label), got {tuple(y_score.shape)}"
            )
        y_score = y_score.ravel()
        classes = np.unique(y_true)
        positive = y_true == classes[-1] if classes.shape[0] == 2 else np.zeros(n, dtype=bool)
        return _binary_roc_auc(positive, y_score, sample_weight, max_fpr)
    if y_type == "multilabel-indicator":
        return _average_binary_score(
            lambda yt, ys, sample_weight=None: _binary_roc_auc(yt, ys, sample_weight, max_fpr),
            y_true,
            y_score,
            average,
            sample_weight,
        )
    raise ValueError(f"roc_auc_score: {y_type} y_true is not supported")


def _multiclass_roc_auc(y_true, y_score, labels, multi_class, average, sample_weight):
    if y_score.ndim != 2:
        raise ValueError(
            "y_score needs to be of shape (n_samples, n_classes), since y_true contains "
            f"multiple classes; got shape {tuple(y_score.shape)}"
        )
    if not np.allclose(1, y_score.sum(axis=1)):
        raise ValueError(
            "Target scores need to be probabilities for multiclass roc_auc, i.e. they should "
            "sum up to 1.0 over classes"
        )
    options = ("macro", "weighted", None)
    if multi_class == "ovr":
        options = ("micro",) + options
    if average not in options:
        raise ValueError(f"average must be one of {options} for multiclass problems")
    if average is None and multi_class == "ovo":
        raise NotImplementedError("average=None is not implemented for multi_class='ovo'.")
    if labels is not None:
        classes = _check_sorted_unique_labels(labels)
        if classes.shape[0] != y_score.shape[1]:
            raise ValueError(
                f"number of given labels, {classes.shape[0]}, not equal to the number of "
                f"columns in 'y_score', {y_score.shape[1]}"
            )
        outside = np.setdiff1d(y_true, classes)
        if outside.size:
            raise ValueError(f"'y_true' contains labels not in parameter 'labels': "
                             f"{outside.tolist()}")
    else:
        classes = np.unique(y_true)
        if classes.shape[0] != y_score.shape[1]:
            raise ValueError(
                f"number of classes in y_true ({classes.shape[0]}) not equal to the number "
                f"of columns in 'y_score' ({y_score.shape[1]}); pass labels= to name them all"
            )
    if multi_class == "ovr":
        return _average_binary_score(
            _binary_roc_auc, _binarize(y_true, classes), y_score, average, sample_weight
        )
    if sample_weight is not None:
        raise ValueError("sample_weight is not supported for multiclass one-vs-one ROC AUC")
    # Hand & Till (2001): mean over pairs (a, b) of the classes present of the two AUCs,
    # a vs b scored by column a and b vs a scored by column b, on the samples of a or b.
    encoded = np.searchsorted(classes, y_true)
    present = np.unique(encoded)
    pair_scores, prevalence = [], []
    for a, b in combinations(present, 2):
        a_mask, b_mask = encoded == a, encoded == b
        ab = a_mask | b_mask
        prevalence.append(np.mean(ab))
        a_auc = _binary_roc_auc(a_mask[ab], y_score[ab, a])
        b_auc = _binary_roc_auc(b_mask[ab], y_score[ab, b])
        pair_scores.append((a_auc + b_auc) / 2)
    weights = prevalence if average == "weighted" else None
    return float(np.average(pair_scores, weights=weights))


def average_precision_score(y_true, y_score, *, average="macro", pos_label=1, sample_weight=None):
    """Average precision: ``sum_n (R_n - R_{n-1}) P_n`` over the distinct thresholds.

    Binary: ``y_score`` (n_samples,) scores of ``pos_label``. Multilabel (n, C) and multiclass
    (one-vs-rest over the sorted classes of ``y_true``) scores are averaged by ``average``
    ('micro', 'macro', 'weighted', 'samples', None). No positive sample gives 0.0 with a
    warning.
    """
    _check_average(average, BINARY_AVERAGES)
    y_true = as_array(y_true, "y_true")
    y_type = type_of_target(y_true, "y_true")
    y_score = check_scores(y_score, "y_score")
    n = check_consistent_length(y_true=y_true, y_score=y_score)
    # all-zero weights are refused where a curve is built (binary_clf_curve), not here: with
    # average="samples" they only weight the mean (scikit-learn's order of checks)
    sample_weight = check_sample_weight(sample_weight, n, allow_all_zero=True)

    def metric(yt, ys, sample_weight=None):
        return _binary_average_precision(yt, ys, sample_weight, pos_label=pos_label)

    if y_type == "binary":
        y_true = column_or_1d(y_true, "y_true")
        present = np.unique(y_true)
        if present.shape[0] == 2 and not label_in(pos_label, present):
            raise ValueError(
                f"pos_label={pos_label!r} is not a valid label: it should be one of "
                f"{present.tolist()}"
            )
        if y_score.ndim == 2 and y_score.shape[1] != 1:
            raise ValueError(
                f"y_true is binary, so y_score must have shape (n_samples,), got {tuple(y_score.shape)}"
            )
        return metric(y_true, y_score.ravel(), sample_weight)
    if y_type in ("multilabel-indicator", "multiclass"):
        if pos_label != 1 or isinstance(pos_label, str):
            raise ValueError(
                f"pos_label is fixed to 1 for {y_type} y_true; do not set it (got {pos_label!r})"
            )
        if y_type == "multiclass":
            y_true = _binarize(y_true, np.unique(y_true))
            if y_score.shape != y_true.shape:
                raise ValueError(
                    "y_score needs to be of shape (n_samples, n_classes) "
                    f"= {tuple(y_true.shape)}, since y_true contains multiple classes; "
                    f"got {tuple(y_score.shape)}"
                )
        return _average_binary_score(metric, y_true, y_score, average, sample_weight)
    raise ValueError(f"average_precision_score: {y_type} y_true is not supported")


def top_k_accuracy_score(
    y_true, y_score, *, k=2, normalize=True, sample_weight=None, labels=None
):
    """Fraction of samples whose true class is among the ``k`` highest-scored classes.

    ``y_score`` is (n_samples, n_classes) with columns in the sorted order of ``labels`` (or of
    the classes in ``y_true``); for binary targets it may be (n_samples,) scores of the greater
    class, and then with k=1 a sample is predicted positive when its score exceeds 0.5 (scores
    in [0, 1]) or 0 (other scores). Ties: among equal scores the class with the greater index
    ranks first (scikit-learn's rule). ``k`` equal to the number of classes warns (the score is
    trivially 1); ``k`` larger than it is an error.
    """
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    y_true = column_or_1d(as_array(y_true, "y_true"), "y_true")
    y_type = type_of_target(y_true, "y_true")
    if y_type == "binary" and labels is not None and len(labels) > 2:
        y_type = "multiclass"
    if y_type not in ("binary", "multiclass"):
        raise ValueError(f"y type must be 'binary' or 'multiclass', got '{y_type}' instead")
    y_score = check_scores(y_score, "y_score")
    if y_type == "binary":
        if y_score.ndim == 2 and y_score.shape[1] != 1:
            raise ValueError(
                f"y_true is binary while y_score is 2d with {y_score.shape[1]} classes. If "
                "y_true does not contain all the labels, labels must be provided."
            )
        y_score = column_or_1d(y_score, "y_score")
    elif y_score.ndim != 2:
        raise ValueError(
            "y_score needs to be of shape (n_samples, n_classes), since y_true contains "
            f"multiple classes; got shape {tuple(y_score.shape)}"
        )
    n = check_consistent_length(y_true=y_true, y_score=y_score)
    sample_weight = check_sample_weight(sample_weight, n, allow_all_zero=True)
    n_score_classes = y_score.shape[1] if y_score.ndim == 2 else 2

    if labels is None:
        classes = np.unique(y_true)
        if classes.shape[0] != n_score_classes:
            raise ValueError(
                f"number of classes in 'y_true' ({classes.shape[0]}) not equal to the number "
                f"of classes in 'y_score' ({n_score_classes}). You can provide a list of all "
                "known classes by assigning it to the `labels` parameter."
            )
    else:
        classes = _check_sorted_unique_labels(labels)
        if classes.shape[0] != n_score_classes:
            raise ValueError(
                f"number of given labels ({classes.shape[0]}) not equal to the number of "
                f"classes in 'y_score' ({n_score_classes})"
            )
        outside = np.setdiff1d(y_true, classes)
        if outside.size:
            raise ValueError(
                f"'y_true' contains labels not in parameter 'labels': {outside.tolist()}"
            )
    n_classes = classes.shape[0]
    if k > n_classes:
        raise ValueError(
            f"k={k} is larger than the number of classes ({n_classes}); top-k accuracy needs "
            "k <= n_classes"
        )
    if k == n_classes:
        warnings.warn(
            f"'k' ({k}) greater than or equal to 'n_classes' ({n_classes}) will result in a "
            "perfect score and is therefore meaningless.",
            UndefinedMetricWarning,
            stacklevel=2,
        )
    encoded = np.searchsorted(classes, y_true)
    if y_type == "binary":
        if k == 1:
            threshold = 0.5 if (y_score.min() >= 0 and y_score.max() <= 1) else 0
            hits = (y_score > threshold).astype(np.int64) == encoded
        else:
            hits = np.ones(y_score.shape, dtype=bool)
    else:
        # stable ascending sort reversed: among ties the greater class index comes first
        ranked = np.argsort(y_score, axis=1, kind="stable")[:, ::-1][:, :k]
        hits = (ranked == encoded[:, None]).any(axis=1)
    return weighted_mean(hits, sample_weight, normalize=normalize)
