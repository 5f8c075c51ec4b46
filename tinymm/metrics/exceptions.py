"""Warnings raised by :mod:`tinymm.metrics`."""


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined on the given input and was replaced by a fixed value.

    Raised, for example, when precision is asked for a label that is never predicted and
    ``zero_division="warn"`` (the value used is then 0.0), or when ROC AUC is asked for a
    ``y_true`` that holds a single class (the value returned is NaN). It subclasses
    ``UserWarning`` as scikit-learn's warning of the same name does, so filters written for
    either catch it.
    """
