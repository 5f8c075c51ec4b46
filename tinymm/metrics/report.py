"""``classification_report``: per-label precision/recall/F1/support and their averages.

The text table and the ``output_dict=True`` dictionary follow
``sklearn.metrics.classification_report``: one row per label, then ``accuracy`` (the micro
average, when it equals accuracy: single-label targets with every present label reported) or
``micro avg``, then ``macro avg``, ``weighted avg`` and, for multilabel targets, ``samples avg``.
"""
from __future__ import annotations

import warnings

import numpy as np

from ._inputs import as_array
from .classification import prfs_from_targets
from .confusion import LabelTable, collect_targets

HEADERS = ["precision", "recall", "f1-score", "support"]


def report_from_targets(
    targets, *, labels=None, target_names=None, digits=2, output_dict=False,
    zero_division="warn",
):
    multilabel = not isinstance(targets, LabelTable)
    present = targets.labels
    if labels is None:
        labels = present
        labels_given = False
    else:
        labels = as_array(labels, "labels")
        labels_given = True

    micro_is_accuracy = not multilabel and (
        not labels_given or set(labels.tolist()) >= set(present.tolist())
    )
    if target_names is not None and len(labels) != len(target_names):
        if labels_given:
            warnings.warn(
                f"labels size, {len(labels)}, does not match size of target_names, "
                f"{len(target_names)}",
                UserWarning,
                stacklevel=3,
            )
        else:
            raise ValueError(
                f"Number of classes, {len(labels)}, does not match size of target_names, "
                f"{len(target_names)}. Try specifying the labels parameter"
            )
    if target_names is None:
        target_names = ["%s" % label for label in labels]

    p, r, f1, s = prfs_from_targets(
        targets, labels=labels, average=None, zero_division=zero_division
    )
    rows = list(zip(target_names, p, r, f1, s))
    averages = ("micro", "macro", "weighted") + (("samples",) if multilabel else ())

    if output_dict:
        report = {row[0]: dict(zip(HEADERS, [float(v) for v in row[1:]])) for row in rows}
    else:
        width = max(max((len(name) for name in target_names), default=0), len("weighted avg"),
                    digits)
        head_fmt = "{:>{width}s} " + " {:>9}" * len(HEADERS)
        text = head_fmt.format("", *HEADERS, width=width) + "\n\n"
        row_fmt = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
        for row in rows:
            text += row_fmt.format(*row, width=width, digits=digits)
        text += "\n"

    for average in averages:
        heading = "accuracy" if (average == "micro" and micro_is_accuracy) else f"{average} avg"
        avg_p, avg_r, avg_f1, _ = prfs_from_targets(
            targets, labels=labels, average=average, zero_division=zero_division
        )
        values = [avg_p, avg_r, avg_f1, np.sum(s)]
        if output_dict:
            report[heading] = dict(zip(HEADERS, [float(v) for v in values]))
        elif heading == "accuracy":
            acc_fmt = "{:>{width}s} " + " {:>9.{digits}}" * 2 + " {:>9.{digits}f}" + " {:>9}\n"
            text += acc_fmt.format(heading, "", "", *values[2:], width=width, digits=digits)
        else:
            text += row_fmt.format(heading, *values, width=width, digits=digits)

    if output_dict:
        if "accuracy" in report:
            report["accuracy"] = report["accuracy"]["precision"]
        return report
    return text


def classification_report(
    y_true,
    y_pred,
    *,
    labels=None,
    target_names=None,
    sample_weight=None,
    digits=2,
    output_dict=False,
    zero_division="warn",
):
    """Text summary (or dict) of precision, recall, F1 and support per label and averaged.

    Parameters
    ----------
    labels : labels to include (default: all present, sorted).
    target_names : display names matching ``labels``.
    digits : decimals in the text table (the dict keeps full precision).
    output_dict : return ``{name: {"precision", "recall", "f1-score", "support"}, ...,
        "accuracy": float (when applicable), "macro avg": {...}, "weighted avg": {...}}``.
    zero_division : as in :func:`tinymm.metrics.precision_recall_fscore_support`.
    """
    return report_from_targets(
        collect_targets(y_true, y_pred, sample_weight),
        labels=labels,
        target_names=target_names,
        digits=digits,
        output_dict=output_dict,
        zero_division=zero_division,
    )
