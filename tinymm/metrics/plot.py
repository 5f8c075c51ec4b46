"""Confusion-matrix heat map written to a PNG file.

Drawn on a ``matplotlib.figure.Figure`` with its own Agg canvas, so the user's global backend
(``matplotlib.use``) and pyplot state are untouched and no display is needed. matplotlib is
imported only when a plot is made.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tinymm._atomic import atomic_write

from ._inputs import as_array
from .confusion import normalize_confusion


def plot_confusion_matrix(
    cm,
    path,
    class_names=None,
    *,
    normalize=None,
    title=None,
    cmap="Blues",
    values_format=None,
    dpi=100,
):
    """Save a confusion matrix (rows: true class, columns: predicted class) as a PNG.

    Parameters
    ----------
    cm : (K, K) counts, e.g. from :func:`tinymm.metrics.confusion_matrix`.
    path : where to write the PNG (parent folders are created). The file is written to a
        temporary name and renamed, so a reader never sees half a file.
    class_names : K tick labels (default ``0 .. K-1``).
    normalize : None, 'true', 'pred' or 'all', as in ``confusion_matrix`` (0/0 shows 0).
    title : figure title.
    values_format : format of the cell texts (default ``"d"`` for integer counts, ``".2f"``
        otherwise).

    Returns the path written, as a ``pathlib.Path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cm = as_array(cm, "cm")
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"cm must be a non-empty square (K, K) matrix, got shape {tuple(cm.shape)}")
    if cm.dtype.kind not in "biuf":
        raise ValueError(f"cm must be numeric, got dtype {cm.dtype}")
    n = cm.shape[0]
    if class_names is None:
        class_names = [str(i) for i in range(n)]
    else:
        class_names = [str(c) for c in class_names]
        if len(class_names) != n:
            raise ValueError(f"class_names has {len(class_names)} names for a {n}x{n} matrix")
    cm = normalize_confusion(cm, normalize)
    if values_format is None:
        values_format = "d" if cm.dtype.kind in "biu" else ".2f"

    size = max(4.0, 0.6 * n + 2.5)
    fig = Figure(figsize=(size, size), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(cm, interpolation="nearest", cmap=cmap)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)

    vmin, vmax = float(np.min(cm)), float(np.max(cm))
    middle = (vmin + vmax) / 2
    low, high = image.cmap(0.0), image.cmap(1.0)
    for i in range(n):
        for j in range(n):
            value = cm[i, j]
            ax.text(
                j, i, format(value, values_format),
                ha="center", va="center",
                color=high if value < middle else low,  # readable on the cell's colour
            )
    ax.set(
        xticks=np.arange(n), yticks=np.arange(n),
        xticklabels=class_names, yticklabels=class_names,
        xlabel="Predicted label", ylabel="True label",
    )
    ax.tick_params(axis="x", labelrotation=45)
    ax.set_ylim(n - 0.5, -0.5)
    if title is not None:
        ax.set_title(title)
    fig.tight_layout()

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: fig.savefig(fh, format="png"))
    return path
