"""tinymm.metrics: evaluation metrics on plain arrays (floor 6: arrays in, numbers out).

Inputs may be lists, NumPy arrays, CuPy arrays or tinymm Tensors (converted on the way in;
nothing here imports the tensor module, CuPy or scikit-learn). Names, parameters and semantics
follow ``sklearn.metrics`` (1.9), edge cases included, so numbers compare across models and
papers; the tests check every function against its formula and against scikit-learn.

Files:
    _inputs.py        conversion, validation, target types (binary / multiclass / multilabel)
    confusion.py      confusion counts; confusion_matrix, multilabel_confusion_matrix
    classification.py accuracy, balanced accuracy, precision, recall, F-beta
    report.py         classification_report
    probabilistic.py  log_loss
    ranking.py        roc_auc_score, average_precision_score, top_k_accuracy_score
    retrieval.py      recall@k, median rank, MRR for image <-> text similarity matrices
    accumulator.py    MetricCollection: per-batch updates, epoch-level results
    plot.py           plot_confusion_matrix -> PNG
"""
from .accumulator import MetricCollection
from .classification import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    fbeta_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
)
from .confusion import confusion_matrix, multilabel_confusion_matrix
from .exceptions import UndefinedMetricWarning
from .plot import plot_confusion_matrix
from .probabilistic import log_loss
from .ranking import average_precision_score, roc_auc_score, top_k_accuracy_score
from .report import classification_report
from .retrieval import mean_reciprocal_rank, median_rank, recall_at_k, retrieval_ranks
from .retrieval import count_duplicates, same_string_relevance
from ._inputs import type_of_target

__all__ = [
    "MetricCollection",
    "UndefinedMetricWarning",
    "accuracy_score",
    "average_precision_score",
    "balanced_accuracy_score",
    "classification_report",
    "confusion_matrix",
    "count_duplicates",
    "f1_score",
    "fbeta_score",
    "log_loss",
    "mean_reciprocal_rank",
    "median_rank",
    "multilabel_confusion_matrix",
    "plot_confusion_matrix",
    "precision_recall_fscore_support",
    "precision_score",
    "recall_at_k",
    "recall_score",
    "retrieval_ranks",
    "roc_auc_score",
    "same_string_relevance",
    "top_k_accuracy_score",
    "type_of_target",
]
