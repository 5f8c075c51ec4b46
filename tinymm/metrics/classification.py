r"""Label-based classification metrics: accuracy, balanced accuracy, precision, recall, F-beta.

Definitions (per label, from the one-vs-rest counts of :mod:`tinymm.metrics.confusion`):

.. math::

    P = \frac{tp}{tp + fp} \qquad R = \frac{tp}{tp + fn} \qquad
    F_\beta = \frac{(1 + \beta^2)\,tp}{(1 + \beta^2)\,tp + \beta^2 fn + fp}

With a zero denominator the value is ``zero_division`` (0.0 plus an
:class:`UndefinedMetricWarning` for ``"warn"``; NaN values are left out of averages).

``average`` (scikit-learn's semantics exactly):

``"binary"``  only the ``pos_label`` class; binary targets only.
``"micro"``   sum tp, fp, fn over the labels first, then divide.
``"macro"``   unweighted mean over labels.
``"weighted"`` mean weighted by each label's support (true count).
``"samples"`` per-sample scores of multilabel targets, then their (sample-weighted) mean.
``None``      per-label arrays.

Every public function here is "collect the confusion counts, then compute from them"; the
``*_from_targets`` halves are what :class:`tinymm.metrics.MetricCollection` calls on counts it
accumulated batch by batch, so streaming and one-shot results agree.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ._inputs import check_zero_division, label_in
from .confusion import LabelTable, collect_targets, label_counts, warn_if_single_label
from .exceptions import UndefinedMetricWarning

AVERAGE_OPTIONS = (None, "micro", "macro", "weighted", "samples")


# ----------------------------------------------------------------------------- helpers


def weighted_mean(values: np.ndarray, weights=None, normalize: bool = True) -> float:
    """sum(w * v) / sum(w) (or the sum when not normalizing); raises if weights sum to 0."""
    values = np.asarray(values, dtype=np.float64)
    if weights is None:
        return float(values.mean() if normalize else values.sum())
    weights = np.asarray(weights, dtype=np.float64)
    total = float(np.sum(values * weights))
    if not normalize:
        return total
    scale = float(weights.sum())
    if scale == 0.0:
        raise ZeroDivisionError("sample weights sum to zero, can't be normalized")
    return total / scale


def nan_average(values: np.ndarray, weights=None) -> float:
    """Weighted mean ignoring NaN entries; all-zero weights fall back to the plain mean."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[0] == 0:
        return math.nan
    keep = ~np.isnan(values)
    if not keep.any():
        return math.nan
    if weights is None:
        return float(values[keep].mean())
    weights = np.asarray(weights, dtype=np.float64)[keep]
    try:
        return weighted_mean(values[keep], weights)
    except ZeroDivisionError:
        return float(values[keep].mean())


def _warn_undefined(metric: str, modifier: str, average, result_size: int) -> None:
    per, across = ("label", "sample") if average == "samples" else ("sample", "label")
    where = "due to" if result_size == 1 else f"in {across}s with"
    warnings.warn(
        f"{metric.capitalize()} is ill-defined and being set to 0.0 {where} no {modifier} "
        f"{per}s. Use `zero_division` parameter to control this behavior.",
        UndefinedMetricWarning,
        stacklevel=4,
    )


def _divide(numerator, denominator, metric, modifier, average, warn_for, zero_division):
    """numerator / denominator, with ``zero_division`` where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    mask = denominator == 0
    result = numerator / np.where(mask, 1.0, denominator)
    if not mask.any():
        return result
    result[mask] = check_zero_division(zero_division)
    if isinstance(zero_division, str) and zero_division == "warn" and metric in warn_for:
        _warn_undefined(metric, modifier, average, result.shape[0])
    return result


def _check_average(average, allow_binary: bool = True) -> None:
    if not (average in AVERAGE_OPTIONS or (allow_binary and average == "binary")):
        raise ValueError(
            f"average must be one of {AVERAGE_OPTIONS + (('binary',) if allow_binary else ())}; "
            f"got {average!r}"
        )


def _check_beta(beta) -> None:
    if not isinstance(beta, numbers.Real) or isinstance(beta, bool) or not beta >= 0:
        raise ValueError(f"beta must be a real number >= 0 (inf allowed), got {beta!r}")


def _set_wise_labels(targets, average, labels, pos_label):
    """The labels to score: ``[pos_label]`` for average='binary', else ``labels``."""
    y_type, present = targets.y_type, targets.labels
    if average == "binary":
        if y_type == "binary":
            if not label_in(pos_label, present) and present.shape[0] >= 2:
                raise ValueError(
                    f"pos_label={pos_label!r} is not a valid label: it should be one of "
                    f"{present.tolist()}"
                )
            return [pos_label]
        options = [None, "micro", "macro", "weighted", "samples"]
        if y_type == "multiclass":
            options.remove("samples")
        raise ValueError(
            f"Target is {y_type} but average='binary'. Please choose another average "
            f"setting, one of {options}."
        )
    if not (pos_label is None or (not isinstance(pos_label, str) and pos_label == 1)):
        warnings.warn(
            f"Note that pos_label (set to {pos_label!r}) is ignored when average != 'binary' "
            f"(got {average!r}). You may use labels=[pos_label] to specify a single positive "
            "class.",
            UserWarning,
            stacklevel=4,
        )
    return labels


# ----------------------------------------------------------------------------- core on counts


def accuracy_from_targets(targets, *, normalize=True):
    if isinstance(targets, LabelTable):
        cm = targets.cm
        if targets.weighted:
            correct, total = float(np.trace(cm)), float(cm.sum())
            if not normalize:
                return correct
            if total == 0.0:
                raise ZeroDivisionError("sample weights sum to zero, can't be normalized")
            return correct / total
        return float(np.trace(cm) / cm.sum()) if normalize else float(np.trace(cm))
    exact = np.all(targets.y_true == targets.y_pred, axis=1)
    return weighted_mean(exact, targets.sample_weight, normalize=normalize)


def balanced_accuracy_from_targets(targets, *, adjusted=False):
    if not isinstance(targets, LabelTable):
        raise ValueError(
            "balanced_accuracy_score: multilabel-indicator targets are not supported"
        )
    cm = targets.cm.astype(np.float64)
    warn_if_single_label(cm)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class = np.diag(cm) / cm.sum(axis=1)
    if np.isnan(per_class).any():
        warnings.warn("y_pred contains classes not in y_true", UserWarning, stacklevel=3)
        per_class = per_class[~np.isnan(per_class)]
    if per_class.size == 0:
        return math.nan
    score = np.float64(per_class.mean())
    if adjusted:
        n_classes = per_class.shape[0]
        chance = 1 / n_classes
        score = (score - chance) / np.float64(1 - chance)  # one class: 0/0, NaN as sklearn
    return float(score)


def prfs_from_targets(
    targets,
    *,
    beta=1.0,
    labels=None,
    pos_label=1,
    average=None,
    warn_for=("precision", "recall", "f-score"),
    zero_division="warn",
):
    check_zero_division(zero_division)
    _check_average(average)
    _check_beta(beta)
    labels = _set_wise_labels(targets, average, labels, pos_label)
    samplewise = average == "samples"
    tp, pred, true = label_counts(targets, labels=labels, samplewise=samplewise)
    # scikit-learn passes through the 2x2 matrices (pred = tp + fp, true = tp + fn); with float
    # weights that can change the last bit, which the report's support column shows
    pred, true = tp + (pred - tp), tp + (true - tp)
    if average == "micro":
        tp, pred, true = (np.array([x.sum()]) for x in (tp, pred, true))

    precision = _divide(tp, pred, "precision", "predicted", average, warn_for, zero_division)
    recall = _divide(tp, true, "recall", "true", average, warn_for, zero_division)
    if np.isposinf(beta):
        f_score = recall
    elif beta == 0:
        f_score = precision
    else:
        beta2 = float(beta) ** 2
        denominator = beta2 * true.astype(np.float64) + pred.astype(np.float64)
        f_score = _divide(
            (1 + beta2) * tp.astype(np.float64),
            denominator,
            "f-score",
            "true nor predicted",
            average,
            warn_for,
            zero_division,
        )

    if average is None:
        return precision, recall, f_score, true
    if average == "weighted":
        weights = true
    elif average == "samples":
        weights = targets.sample_weight
    else:
        weights = None
    return (
        nan_average(precision, weights),
        nan_average(recall, weights),
        nan_average(f_score, weights),
        None,
    )


# ----------------------------------------------------------------------------- public API


def accuracy_score(y_true, y_pred, *, normalize=True, sample_weight=None):
    """Fraction (or, with ``normalize=False``, weighted number) of correct predictions.

    For multilabel indicator targets this is subset accuracy: a sample counts only when its
    whole row of labels is right. ``sample_weight`` weights each sample.
    """
    return accuracy_from_targets(
        collect_targets(y_true, y_pred, sample_weight), normalize=normalize
    )


def balanced_accuracy_score(y_true, y_pred, *, sample_weight=None, adjusted=False):
    """Mean of the per-class recalls over the classes present in ``y_true``.

    Classes only predicted (never true) are left out with a warning. ``adjusted=True`` rescales
    so that chance level is 0 and perfect is 1: ``(score - 1/K) / (1 - 1/K)``.
    """
    return balanced_accuracy_from_targets(
        collect_targets(y_true, y_pred, sample_weight), adjusted=adjusted
    )


def precision_recall_fscore_support(
    y_true,
    y_pred,
    *,
    beta=1.0,
    labels=None,
    pos_label=1,
    average=None,
    warn_for=("precision", "recall", "f-score"),
    sample_weight=None,
    zero_division="warn",
):
    """Precision, recall, F-beta and support, per label or averaged (see the module doc).

    Parameters
    ----------
    y_true, y_pred : 1-d label arrays, or (n_samples, n_labels) indicator matrices.
    beta : weight of recall in the F-score (``inf`` gives recall, 0 gives precision).
    labels : labels to score (and their order when ``average is None``); labels absent from the
        data get zero counts; for multilabel targets they are column indices. Ignored for
        ``average='binary'``.
    pos_label : the positive class for ``average='binary'``.
    average : 'binary', 'micro', 'macro', 'weighted', 'samples' or None.
    warn_for : which of 'precision', 'recall', 'f-score' may warn when undefined.
    sample_weight : optional per-sample weights.
    zero_division : "warn" (0.0 and a warning), 0.0, 1.0 or np.nan.

    Returns
    -------
    ``(precision, recall, fbeta, support)``: floats and ``support=None`` when averaging, else
    per-label float arrays and the per-label true counts (int; float with sample weights).
    """
    check_zero_division(zero_division)
    _check_average(average)
    _check_beta(beta)
    return prfs_from_targets(
        collect_targets(y_true, y_pred, sample_weight),
        beta=beta,
        labels=labels,
        pos_label=pos_label,
        average=average,
        warn_for=warn_for,
        zero_division=zero_division,
    )


def fbeta_from_targets(
    targets, *, beta, labels=None, pos_label=1, average="binary", zero_division="warn"
):
    _, _, f, _ = prfs_from_targets(
        targets,
        beta=beta,
        labels=labels,
        pos_label=pos_label,
        average=average,
        warn_for=("f-score",),
        zero_division=zero_division,
    )
    return f


def f1_from_targets(targets, *, labels=None, pos_label=1, average="binary", zero_division="warn"):
    return fbeta_from_targets(
        targets,
        beta=1.0,
        labels=labels,
        pos_label=pos_label,
        average=average,
        zero_division=zero_division,
    )


def precision_from_targets(
    targets, *, labels=None, pos_label=1, average="binary", zero_division="warn"
):
    p, _, _, _ = prfs_from_targets(
        targets,
        labels=labels,
        pos_label=pos_label,
        average=average,
        warn_for=("precision",),
        zero_division=zero_division,
    )
    return p


def recall_from_targets(
    targets, *, labels=None, pos_label=1, average="binary", zero_division="warn"
):
    _, r, _, _ = prfs_from_targets(
        targets,
        labels=labels,
        pos_label=pos_label,
        average=average,
        warn_for=("recall",),
        zero_division=zero_division,
    )
    return r


def _one_shot(core, y_true, y_pred, sample_weight, average, zero_division, **kwargs):
    check_zero_division(zero_division)
    _check_average(average)
    if "beta" in kwargs:
        _check_beta(kwargs["beta"])
    return core(
        collect_targets(y_true, y_pred, sample_weight),
        average=average,
        zero_division=zero_division,
        **kwargs,
    )


def fbeta_score(
    y_true,
    y_pred,
    *,
    beta,
    labels=None,
    pos_label=1,
    average="binary",
    sample_weight=None,
    zero_division="warn",
):
    """F-beta score: ``(1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp)``, per label or averaged.

    See :func:`precision_recall_fscore_support` for the parameters; ``average`` defaults to
    'binary' (score of ``pos_label``).
    """
    return _one_shot(
        fbeta_from_targets, y_true, y_pred, sample_weight, average, zero_division,
        beta=beta, labels=labels, pos_label=pos_label,
    )


def f1_score(
    y_true,
    y_pred,
    *,
    labels=None,
    pos_label=1,
    average="binary",
    sample_weight=None,
    zero_division="warn",
):
    """F1 score, the harmonic mean of precision and recall: ``2 tp / (2 tp + fp + fn)``.

    See :func:`precision_recall_fscore_support` for the parameters.
    """
    return _one_shot(
        f1_from_targets, y_true, y_pred, sample_weight, average, zero_division,
        labels=labels, pos_label=pos_label,
    )


def precision_score(
    y_true,
    y_pred,
    *,
    labels=None,
    pos_label=1,
    average="binary",
    sample_weight=None,
    zero_division="warn",
):
    """Precision ``tp / (tp + fp)``: of the samples predicted positive, the fraction that are.

    See :func:`precision_recall_fscore_support` for the parameters.
    """
    return _one_shot(
        precision_from_targets, y_true, y_pred, sample_weight, average, zero_division,
        labels=labels, pos_label=pos_label,
    )


def recall_score(
    y_true,
    y_pred,
    *,
    labels=None,
    pos_label=1,
    average="binary",
    sample_weight=None,
    zero_division="warn",
):
    """Recall ``tp / (tp + fn)``: of the truly positive samples, the fraction found.

    See :func:`precision_recall_fscore_support` for the parameters.
    """
    return _one_shot(
        recall_from_targets, y_true, y_pred, sample_weight, average, zero_division,
        labels=labels, pos_label=pos_label,
    )
