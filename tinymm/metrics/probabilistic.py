r"""``log_loss``: the cross-entropy of predicted class probabilities.

.. math::

    \mathrm{log\_loss} = -\frac{1}{\sum_i w_i} \sum_i w_i \sum_k y_{ik} \log \hat p_{ik}

where :math:`y_{ik}` one-hot encodes the true class of sample ``i`` over the sorted classes (of
``labels`` if given, else of ``y_true``) and :math:`\hat p` is clipped to
``[eps, 1 - eps]``, ``eps`` being the machine epsilon of the probabilities' dtype (float64 for
integer input). As in scikit-learn 1.9, rows that do not sum to one are *not* renormalized:
a ``UserWarning`` says so and the given values are used. Probabilities outside [0, 1] are an
error. A 1-d ``y_proba`` (or one column) is the probability of the greater class of a binary
problem.
"""
from __future__ import annotations

import warnings

import numpy as np

from ._inputs import (
    as_array,
    check_consistent_length,
    check_sample_weight,
    check_scores,
    is_multilabel,
    type_of_target,
)


def _one_hot(y_true: np.ndarray, labels):
    """(n, K) one-hot encoding of y_true over the sorted classes, and those classes."""
    if labels is not None:
        labels_arr = as_array(labels, "labels").ravel()
        classes = np.unique(labels_arr)
        if classes.shape != labels_arr.shape or not np.all(classes == labels_arr):
            warnings.warn(
                f"Labels passed were {labels_arr.tolist()}. But this function assumes labels "
                f"are ordered lexicographically. Pass the ordered labels={classes.tolist()} "
                "and ensure that the columns of y_prob correspond to this ordering.",
                UserWarning,
                stacklevel=3,
            )
        outside = np.setdiff1d(y_true.ravel(), classes)
        if outside.size:
            raise ValueError(
                f"log_loss: y_true contains values {outside.tolist()} not belonging to the "
                f"passed labels {labels_arr.tolist()}"
            )
    else:
        classes = np.unique(y_true)
    if classes.shape[0] == 1:
        if labels is None:
            raise ValueError(
                f"log_loss: y_true contains only one label ({classes[0]!r}). Please provide "
                "the list of all expected class labels explicitly through the labels argument."
            )
        raise ValueError(
            f"log_loss: the labels array needs to contain at least two labels, got "
            f"{classes.tolist()}"
        )
    one_hot = (y_true[:, None] == classes[None, :]).astype(np.float64)
    return one_hot, classes


def log_loss(y_true, y_proba, *, normalize=True, sample_weight=None, labels=None):
    """Mean (or, with ``normalize=False``, summed) negative log-likelihood of the true classes.

    Parameters
    ----------
    y_true : (n_samples,) labels, or an (n_samples, n_classes) indicator matrix.
    y_proba : (n_samples, n_classes) probabilities, columns in sorted class order; or
        (n_samples,) probabilities of the greater class for a binary problem.
    sample_weight : optional (n_samples,) weights.
    labels : all class labels, when ``y_true`` lacks some of them.
    """
    y_proba = check_scores(y_proba, "y_proba")
    if y_proba.max() > 1:
        raise ValueError(f"log_loss: y_proba contains values greater than 1: {y_proba.max()}")
    if y_proba.min() < 0:
        raise ValueError(f"log_loss: y_proba contains values lower than 0: {y_proba.min()}")
    y_true = as_array(y_true, "y_true")
    n = check_consistent_length(y_proba=y_proba, y_true=y_true)
    sample_weight = check_sample_weight(sample_weight, n)

    if is_multilabel(y_true):
        if labels is not None:
            raise ValueError("log_loss: labels cannot be given with an indicator-matrix y_true")
        one_hot = (y_true != 0).astype(np.float64)
        classes = np.arange(y_true.shape[1])
    else:
        y_type = type_of_target(y_true, "y_true")
        if y_type not in ("binary", "multiclass"):
            raise ValueError(f"log_loss: {y_type} y_true is not supported")
        y_true = y_true.ravel() if y_true.ndim == 2 and y_true.shape[1] == 1 else y_true
        if y_true.ndim != 1:
            raise ValueError(f"log_loss: y_true must be 1-d, got shape {tuple(y_true.shape)}")
        one_hot, classes = _one_hot(y_true, labels)

    if y_proba.ndim == 1:
        y_proba = y_proba[:, None]
    if y_proba.shape[1] == 1:
        y_proba = np.concatenate([1 - y_proba, y_proba], axis=1)

    eps = np.finfo(y_proba.dtype).eps
    row_sums = y_proba.sum(axis=1)
    if not np.all(np.isclose(row_sums, 1, rtol=np.sqrt(eps))):
        warnings.warn(
            "The y_prob values do not sum to one. Make sure to pass probabilities.",
            UserWarning,
            stacklevel=2,
        )
    if classes.shape[0] != y_proba.shape[1]:
        if labels is None:
            raise ValueError(
                f"log_loss: y_true and y_proba contain different numbers of classes: "
                f"{classes.shape[0]} vs {y_proba.shape[1]}. Please provide the true labels "
                f"explicitly through the labels argument. Classes found in y_true: "
                f"{classes.tolist()}"
            )
        raise ValueError(
            f"log_loss: the number of classes in labels ({classes.shape[0]}) differs from "
            f"the number of columns of y_proba ({y_proba.shape[1]})"
        )

    clipped = np.clip(y_proba, eps, 1 - eps)
    # x log y with 0 log y = 0; computed in the probabilities' dtype, as the clipping is
    log_p = np.log(clipped)
    per_sample = -np.sum(np.where(one_hot > 0, one_hot.astype(clipped.dtype) * log_p, 0), axis=1)
    return _average(per_sample, sample_weight, normalize)


def _average(values: np.ndarray, weights, normalize: bool) -> float:
    """(Weighted) mean or sum with NumPy's dtype rules, as scikit-learn computes it: float32
    losses reduce in float32 unless weights promote them."""
    if weights is None:
        return float(values.mean() if normalize else values.sum())
    if not normalize:
        return float(np.dot(values, weights))
    if np.sum(weights) == 0:
        raise ZeroDivisionError("sample weights sum to zero, can't be normalized")
    return float(np.average(values, weights=weights))
