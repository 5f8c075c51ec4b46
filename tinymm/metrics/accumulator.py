"""``MetricCollection``: accumulate batches during an epoch, compute the metrics at its end.

    metrics = MetricCollection({
        "acc": accuracy_score,
        "f1": partial(f1_score, average="macro"),
        "auc": partial(roc_auc_score, multi_class="ovr"),
    })
    for batch in loader:
        metrics.update(y_true, y_pred_or_scores)     # NumPy/CuPy arrays, Tensors or lists
    metrics.compute()   # {"acc": ..., "f1": ..., "auc": ...}
    metrics.reset()

The numbers are those of calling each metric once on the concatenated epoch.

How the state is kept: label metrics of this package (accuracy, balanced accuracy, precision,
recall, F-beta, precision_recall_fscore_support, confusion matrix, classification report,
given directly or as a ``functools.partial`` with keyword arguments) are computed from a
running weighted confusion matrix over the labels seen so far, so memory does not grow with
the number of samples (multilabel indicator targets keep their rows, which per-sample averages
need). Any other callable ``f(y_true, y_pred[, sample_weight=...])`` gets the concatenated
batches, which are kept until ``compute``.

All metrics of one collection receive the same ``(y_true, y_pred)``: group label metrics and
score metrics (which take probabilities) into separate collections.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping

import numpy as np

from ._inputs import as_array, check_consistent_length, check_sample_weight
from .classification import (
    accuracy_from_targets,
    accuracy_score,
    balanced_accuracy_from_targets,
    balanced_accuracy_score,
    f1_from_targets,
    f1_score,
    fbeta_from_targets,
    fbeta_score,
    precision_from_targets,
    precision_recall_fscore_support,
    precision_score,
    prfs_from_targets,
    recall_from_targets,
    recall_score,
)
from .confusion import TargetsBuilder, confusion_from_table, confusion_matrix
from .report import classification_report, report_from_targets

# public function -> the same metric computed from accumulated confusion counts
STREAMING = {
    accuracy_score: accuracy_from_targets,
    balanced_accuracy_score: balanced_accuracy_from_targets,
    precision_score: precision_from_targets,
    recall_score: recall_from_targets,
    f1_score: f1_from_targets,
    fbeta_score: fbeta_from_targets,
    precision_recall_fscore_support: prfs_from_targets,
    confusion_matrix: confusion_from_table,
    classification_report: report_from_targets,
}


def _streaming_form(metric: Callable):
    """``(core, kwargs)`` when ``metric`` can run on accumulated counts, else None."""
    func, kwargs = metric, {}
    if isinstance(metric, functools.partial):
        if metric.args:
            return None
        func, kwargs = metric.func, dict(metric.keywords)
    core = STREAMING.get(func) if _hashable(func) else None
    if core is None or "sample_weight" in kwargs:
        return None
    try:
        inspect.signature(core).bind(None, **kwargs)
    except TypeError:
        return None
    return core, kwargs


def _hashable(obj) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


class MetricCollection:
    """Named metrics updated per batch and computed once on the whole epoch.

    Parameters
    ----------
    metrics : ``{name: callable}`` (or a list of callables, named by ``__name__``). Each is
        called as ``f(y_true, y_pred)``, plus ``sample_weight=`` when weights were given.
    streaming : compute this package's label metrics from running confusion counts (default).
        With False every metric gets the concatenated batches.
    """

    def __init__(self, metrics, *, streaming: bool = True):
        if not isinstance(metrics, Mapping):
            metrics = {_name(m): m for m in metrics}
        if not metrics:
            raise ValueError("MetricCollection needs at least one metric")
        for name, metric in metrics.items():
            if not callable(metric):
                raise TypeError(f"metric {name!r} is not callable: {metric!r}")
        self.metrics = dict(metrics)
        self._streaming = {}
        if streaming:
            for name, metric in self.metrics.items():
                form = _streaming_form(metric)
                if form is not None:
                    self._streaming[name] = form
        self._needs_buffer = len(self._streaming) < len(self.metrics)
        self._targets = TargetsBuilder()
        self.reset()

    def reset(self) -> None:
        """Forget every batch (start a new epoch)."""
        self._targets.reset()
        self._batches: list = []
        self._weighted = None
        self._trailing = None
        self.n_batches = 0
        self.n_samples = 0

    def update(self, y_true, y_pred, sample_weight=None) -> None:
        """Add one batch: labels (or indicator rows) and predictions or scores."""
        batch = self.n_batches + 1
        weighted = sample_weight is not None
        if self._weighted is not None and weighted != self._weighted:
            raise ValueError(
                f"batch {batch} {'has' if weighted else 'lacks'} sample_weight but earlier "
                "batches did not; give it for every batch or none"
            )
        y_true = as_array(y_true, "y_true")
        y_pred = as_array(y_pred, "y_pred")
        n = check_consistent_length(y_true=y_true, y_pred=y_pred)
        sample_weight = check_sample_weight(sample_weight, n, allow_all_zero=True)
        trailing = (y_true.shape[1:], y_pred.shape[1:])
        if self._needs_buffer and self._trailing is not None and trailing != self._trailing:
            raise ValueError(
                f"batch {batch} has per-sample shapes y_true {trailing[0]}, y_pred "
                f"{trailing[1]}; earlier batches had {self._trailing[0]}, {self._trailing[1]}"
            )
        if self._streaming:  # validates the batch before changing any state
            self._targets.update(y_true, y_pred, sample_weight)
        if self._needs_buffer:
            self._trailing = trailing
            self._batches.append((y_true.copy(), y_pred.copy(),
                                  None if sample_weight is None else sample_weight.copy()))
        self._weighted = weighted
        self.n_batches += 1
        self.n_samples += n

    def compute(self) -> dict:
        """Every metric on everything seen since the last reset: ``{name: value}``."""
        if self.n_batches == 0:
            raise ValueError("MetricCollection.compute() called before any update()")
        results = {}
        targets = self._targets.finalize() if self._streaming else None
        y_true = y_pred = sw = None
        if self._needs_buffer:
            y_true = np.concatenate([b[0] for b in self._batches])
            y_pred = np.concatenate([b[1] for b in self._batches])
            sw = np.concatenate([b[2] for b in self._batches]) if self._weighted else None
        for name, metric in self.metrics.items():
            if name in self._streaming:
                core, kwargs = self._streaming[name]
                results[name] = core(targets, **kwargs)
            elif sw is None:
                results[name] = metric(y_true, y_pred)
            else:
                results[name] = metric(y_true, y_pred, sample_weight=sw)
        return results

    def __repr__(self) -> str:
        kinds = ", ".join(
            f"{name}{' (streaming)' if name in self._streaming else ''}" for name in self.metrics
        )
        return f"MetricCollection([{kinds}], n_batches={self.n_batches})"


def _name(metric) -> str:
    if isinstance(metric, functools.partial):
        return _name(metric.func)
    return getattr(metric, "__name__", repr(metric))
