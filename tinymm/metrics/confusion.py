"""Confusion counts: the sufficient statistics of every label-based classification metric.

For 1-d targets (binary or multiclass) everything accuracy, balanced accuracy, precision,
recall, F-beta and the classification report need is the weighted confusion matrix over the
labels present, so that is what :class:`LabelTable` keeps. It can be built from one pair of
arrays or accumulated batch by batch (:class:`TargetsBuilder`), and the metrics computed from
it are the same either way: this is how :class:`tinymm.metrics.MetricCollection` streams
classification metrics without keeping the predictions.

Multilabel indicator targets keep their rows (:class:`IndicatorTargets`), because
``average="samples"`` and subset accuracy are per-sample quantities.

Public functions here follow ``sklearn.metrics.confusion_matrix`` and
``sklearn.metrics.multilabel_confusion_matrix``: rows are true labels, columns predicted ones,
and in the 2x2 per-label matrices ``[[tn, fp], [fn, tp]]``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ._inputs import as_array, check_sample_weight, check_targets

# ----------------------------------------------------------------------------- containers


@dataclass
class LabelTable:
    """Weighted confusion matrix of 1-d targets over the labels present in them.

    labels : (L,) sorted union of the labels seen in ``y_true`` and ``y_pred``.
    cm : (L, L) ``cm[i, j]`` = total weight of samples with true label ``labels[i]`` predicted
        as ``labels[j]``; int64 without weights or with integer weights, else float64.
    true_sum, pred_sum : (L,) float64 totals per label over y_true and y_pred. They equal the
        row and column sums of ``cm`` but are summed sample by sample, in sample order, so
        weighted supports come out bit for bit as scikit-learn's (the report prints them).
    in_true : (L,) whether the label occurs in ``y_true`` at all (whatever its weight).
    weighted : whether sample weights were given (counts then behave as floats).
    """

    labels: np.ndarray
    cm: np.ndarray
    true_sum: np.ndarray
    pred_sum: np.ndarray
    in_true: np.ndarray
    weighted: bool

    @property
    def y_type(self) -> str:
        return "binary" if self.labels.shape[0] <= 2 else "multiclass"

    def index(self) -> dict:
        """label -> row, with Python equality (1 == 1.0 == True), as a dict lookup gives."""
        return {label: i for i, label in enumerate(self.labels)}


@dataclass
class IndicatorTargets:
    """Multilabel indicator targets: (n, C) arrays, nonzero meaning 'label present'."""

    y_true: np.ndarray
    y_pred: np.ndarray
    sample_weight: np.ndarray | None

    y_type = "multilabel-indicator"

    @property
    def labels(self) -> np.ndarray:
        return np.arange(self.y_true.shape[1])

    @property
    def weighted(self) -> bool:
        return self.sample_weight is not None


# ----------------------------------------------------------------------------- building


def _kind(y_type: str) -> str:
    return "indicator" if y_type == "multilabel-indicator" else "labels"


class TargetsBuilder:
    """Accumulates (y_true, y_pred[, sample_weight]) batches into a LabelTable/IndicatorTargets.

    Each batch is validated on its own (length, target type); a later batch may bring labels
    not seen before, and the table grows. Mixing 1-d and indicator batches is an error, as is
    giving sample weights for some batches only.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self._kind = None
        self._weighted = None
        self._n_batches = 0
        self._nonzero_weight = False
        # 1-d targets
        self._index: dict = {}
        self._cm = np.zeros((0, 0), dtype=np.float64)
        self._in_true = np.zeros(0, dtype=bool)
        self._true_sum = np.zeros(0, dtype=np.float64)
        self._pred_sum = np.zeros(0, dtype=np.float64)
        self._float_weights = False
        # indicator targets
        self._rows_true: list = []
        self._rows_pred: list = []
        self._rows_weight: list = []

    def update(self, y_true, y_pred, sample_weight=None) -> None:
        y_type, _, y_true, y_pred = check_targets(y_true, y_pred)
        # all-zero weights are refused for the whole, not per batch (see finalize)
        sample_weight = check_sample_weight(sample_weight, y_true.shape[0], allow_all_zero=True)
        kind = _kind(y_type)
        batch = self._n_batches + 1
        if self._kind is not None and kind != self._kind:
            raise ValueError(
                f"batch {batch} holds {y_type} targets but earlier batches held "
                + ("multilabel-indicator" if self._kind == "indicator" else "1-d label")
                + " targets"
            )
        weighted = sample_weight is not None
        if self._weighted is not None and weighted != self._weighted:
            raise ValueError(
                f"batch {batch} {'has' if weighted else 'lacks'} sample_weight but earlier "
                f"batches {'did not' if weighted else 'did'}; give it for every batch or none"
            )
        self._kind, self._weighted = kind, weighted
        if weighted and np.any(sample_weight != 0):
            self._nonzero_weight = True
        if kind == "indicator":  # copies: the caller may reuse its batch buffers
            self._rows_true.append(y_true.copy())
            self._rows_pred.append(y_pred.copy())
            self._rows_weight.append(None if sample_weight is None else sample_weight.copy())
        else:
            self._add_labels(y_true, y_pred, sample_weight)
        self._n_batches += 1

    def _global_ids(self, values: np.ndarray) -> np.ndarray:
        ids = np.empty(values.shape[0], dtype=np.int64)
        for i, v in enumerate(values):
            ids[i] = self._index.setdefault(v, len(self._index))
        return ids

    def _add_labels(self, y_true, y_pred, sample_weight) -> None:
        u_true, inv_true = np.unique(y_true, return_inverse=True)
        u_pred, inv_pred = np.unique(y_pred, return_inverse=True)
        g_true = self._global_ids(u_true)[inv_true.ravel()]
        g_pred = self._global_ids(u_pred)[inv_pred.ravel()]
        n = len(self._index)
        if n > self._cm.shape[0]:
            grown = np.zeros((n, n), dtype=np.float64)
            old = self._cm.shape[0]
            grown[:old, :old] = self._cm
            self._cm = grown
            self._in_true = np.concatenate([self._in_true, np.zeros(n - old, dtype=bool)])
            self._true_sum = np.concatenate([self._true_sum, np.zeros(n - old)])
            self._pred_sum = np.concatenate([self._pred_sum, np.zeros(n - old)])
        if sample_weight is not None and sample_weight.dtype.kind == "f":
            self._float_weights = True
        w = None if sample_weight is None else sample_weight.astype(np.float64)
        counts = np.bincount(g_true * n + g_pred, weights=w, minlength=n * n)
        self._cm += counts.reshape(n, n)
        self._true_sum += np.bincount(g_true, weights=w, minlength=n)
        self._pred_sum += np.bincount(g_pred, weights=w, minlength=n)
        self._in_true[g_true] = True

    def finalize(self) -> LabelTable | IndicatorTargets:
        if self._n_batches == 0:
            raise ValueError("no targets were given (no batch was added)")
        if self._weighted and not self._nonzero_weight:
            raise ValueError("sample_weight: all weights are zero; at least one must be nonzero")
        if self._kind == "indicator":
            y_true = np.concatenate(self._rows_true)
            y_pred = np.concatenate(self._rows_pred)
            # re-validate the whole: e.g. values {0, 1} in one batch and {0, 2} in another
            check_targets(y_true, y_pred)
            sw = None if not self._weighted else np.concatenate(self._rows_weight)
            return IndicatorTargets(y_true, y_pred, sw)
        keys = list(self._index)
        if len({isinstance(k, str) for k in keys}) > 1:
            raise ValueError(
                "mix of label input types (string and number) across batches: "
                f"{sorted(map(str, keys))}"
            )
        labels = np.asarray(sorted(keys))
        order = np.array([self._index[k] for k in sorted(keys)], dtype=np.int64)
        cm = self._cm[np.ix_(order, order)]
        if not self._float_weights:
            cm = np.rint(cm).astype(np.int64)
        return LabelTable(
            labels, cm, self._true_sum[order], self._pred_sum[order],
            self._in_true[order].copy(), bool(self._weighted),
        )


def collect_targets(y_true, y_pred, sample_weight=None) -> LabelTable | IndicatorTargets:
    """Validate one pair of targets and return its sufficient statistics."""
    builder = TargetsBuilder()
    builder.update(y_true, y_pred, sample_weight)
    return builder.finalize()


# ----------------------------------------------------------------------------- per-label counts


def _as_label_array(labels) -> np.ndarray:
    labels = as_array(labels, "labels")
    if labels.ndim != 1:
        labels = labels.ravel()
    return labels


def label_counts(targets, labels=None, samplewise: bool = False):
    """Per-label (or per-sample) true-positive, predicted and true totals.

    Returns ``(tp, pred, true)`` arrays: for each label of ``labels`` (all present labels in
    sorted order when None) or, with ``samplewise``, for each sample of multilabel targets.
    Labels that never occur get zero counts. Counts are float64 when sample weights were given.
    """
    if isinstance(targets, LabelTable):
        if samplewise:
            raise ValueError(
                "samplewise metrics (average='samples') are only available for multilabel "
                "targets, got " + targets.y_type
            )
        # Counts are floats with sample weights and, mirroring scikit-learn exactly (the
        # support column of classification_report shows it), when no sample is correct.
        as_float = targets.weighted or np.trace(targets.cm) == 0
        tp_all, pred_all, true_all = np.diag(targets.cm), targets.pred_sum, targets.true_sum
        if as_float:
            tp_all = tp_all.astype(np.float64)
        else:
            pred_all = np.rint(pred_all).astype(np.int64)
            true_all = np.rint(true_all).astype(np.int64)
        if labels is None:
            return tp_all.copy(), pred_all, true_all
        labels = _as_label_array(labels)
        index = targets.index()
        rows = np.array([index.get(label, -1) for label in labels], dtype=np.int64)
        found = rows >= 0

        def pick(values):
            out = np.zeros(labels.shape[0], dtype=values.dtype)
            out[found] = values[rows[found]]
            return out

        return pick(tp_all), pick(pred_all), pick(true_all)

    y_true, y_pred, sw = targets.y_true, targets.y_pred, targets.sample_weight
    n_cols = y_true.shape[1]
    if labels is not None:
        labels = _as_label_array(labels)
        if labels.size == 0:
            raise ValueError("labels is empty: give at least one column index")
        if labels.dtype.kind not in "iu":
            raise ValueError(
                f"labels must be integer column indices for multilabel targets, got {labels!r}"
            )
        if labels.max() > n_cols - 1:
            raise ValueError(
                f"all labels must be in [0, {n_cols}) for multilabel targets with {n_cols} "
                f"columns; got {labels.max()}"
            )
        if labels.min() < 0:
            raise ValueError(
                f"all labels must be in [0, {n_cols}) for multilabel targets; got {labels.min()}"
            )
        y_true, y_pred = y_true[:, labels], y_pred[:, labels]
    t, p = y_true != 0, y_pred != 0
    axis = 1 if samplewise else 0
    if sw is not None and sw.dtype.kind in "biu" and not samplewise and not (t.any() or p.any()):
        # scikit-learn's weighted counts of an all-zero indicator stay integer zeros when the
        # weights are integers (the report prints the support as "0", not "0.0")
        sw = None
    if sw is None:
        def count(m):
            return m.sum(axis=axis, dtype=np.int64)
    elif samplewise:
        def count(m):  # (number of labels) x (the sample's weight), as scikit-learn does
            return m.sum(axis=1, dtype=np.int64) * sw.astype(np.float64)
    else:
        w = sw.astype(np.float64)

        def count(m):  # per-label sums taken sample by sample, in sample order
            rows, cols = np.nonzero(m)
            return np.bincount(cols, weights=w[rows], minlength=m.shape[1]).astype(np.float64)

    return count(t & p), count(p), count(t)


# ----------------------------------------------------------------------------- public functions


def _check_normalize(normalize) -> None:
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"normalize must be one of None, 'true', 'pred', 'all'; got {normalize!r}")


def normalize_confusion(cm: np.ndarray, normalize) -> np.ndarray:
    """Divide by row sums ('true'), column sums ('pred') or the total ('all'); 0/0 gives 0."""
    _check_normalize(normalize)
    if normalize is None:
        return cm
    with np.errstate(all="ignore"):
        if normalize == "true":
            cm = cm / cm.sum(axis=1, keepdims=True)
        elif normalize == "pred":
            cm = cm / cm.sum(axis=0, keepdims=True)
        else:
            cm = cm / cm.sum()
    return np.nan_to_num(cm)


def confusion_from_table(table, labels=None, normalize=None) -> np.ndarray:
    if not isinstance(table, LabelTable):
        raise ValueError(
            "confusion_matrix: multilabel-indicator targets are not supported; "
            "use multilabel_confusion_matrix"
        )
    _check_normalize(normalize)
    if labels is None:
        cm = table.cm.copy()
    else:
        labels = _as_label_array(labels)
        n = labels.shape[0]
        if n == 0:
            raise ValueError("confusion_matrix: 'labels' should contain at least one label")
        position = {label: i for i, label in enumerate(labels)}  # a repeated label: last wins
        pos = np.array([position.get(label, -1) for label in table.labels], dtype=np.int64)
        if not np.any((pos >= 0) & table.in_true):
            raise ValueError(
                f"confusion_matrix: none of labels={labels.tolist()} occurs in y_true "
                f"(y_true holds {table.labels[table.in_true].tolist()})"
            )
        keep = np.flatnonzero(pos >= 0)
        cm = np.zeros((n, n), dtype=table.cm.dtype)
        cm[np.ix_(pos[keep], pos[keep])] = table.cm[np.ix_(keep, keep)]
    cm = normalize_confusion(cm, normalize)
    warn_if_single_label(cm)
    return cm


def warn_if_single_label(cm: np.ndarray) -> None:
    if cm.shape == (1, 1):
        warnings.warn(
            "A single label was found in 'y_true' and 'y_pred'. For the confusion matrix to "
            "have the correct shape, use the 'labels' parameter to pass all known labels.",
            UserWarning,
            stacklevel=4,
        )


def confusion_matrix(y_true, y_pred, *, labels=None, sample_weight=None, normalize=None):
    """Confusion matrix ``C`` with ``C[i, j]`` = samples of true class i predicted as j.

    Parameters
    ----------
    y_true, y_pred : (n_samples,) label arrays (ints, strings or bools).
    labels : optional (n_classes,) labels indexing the matrix, in this order. Samples whose true
        or predicted label is not in ``labels`` are left out; at least one label must occur in
        ``y_true``. Default: the sorted union of the labels present.
    sample_weight : optional (n_samples,) weights; integer weights keep integer counts.
    normalize : None, 'true' (rows sum to 1), 'pred' (columns sum to 1) or 'all'. A row or
        column with no samples normalizes to zeros.

    Returns an int64 matrix (float64 when normalized or with float weights), as
    ``sklearn.metrics.confusion_matrix`` does.
    """
    _check_normalize(normalize)
    return confusion_from_table(
        collect_targets(y_true, y_pred, sample_weight), labels=labels, normalize=normalize
    )


def multilabel_confusion_matrix(
    y_true, y_pred, *, sample_weight=None, labels=None, samplewise=False
):
    """One-vs-rest 2x2 confusion matrices ``[[tn, fp], [fn, tp]]``, per label or per sample.

    Works for binary and multiclass targets (each label against the rest) and multilabel
    indicator targets (each column; ``labels`` are then column indices). ``samplewise=True``
    (multilabel only) gives one matrix per sample. Returns an array of shape
    (n_labels or n_samples, 2, 2).
    """
    targets = collect_targets(y_true, y_pred, sample_weight)
    tp, pred, true = label_counts(targets, labels=labels, samplewise=samplewise)
    fp, fn = pred - tp, true - tp
    if isinstance(targets, IndicatorTargets):
        sw = targets.sample_weight
        if samplewise:
            width = targets.y_true.shape[1] if labels is None else _as_label_array(labels).size
            total = width if sw is None else sw.astype(np.float64) * width
        else:
            total = targets.y_true.shape[0] if sw is None else sw.astype(np.float64).sum()
    else:
        total = targets.cm.sum()
        if targets.weighted:
            total = float(total)
    tn = total - tp - fp - fn
    return np.stack([tn, fp, fn, tp], axis=1).reshape(-1, 2, 2)
