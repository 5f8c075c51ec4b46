"""Training history: one row per epoch, saved as JSON and CSV and drawn as PNG curves.

A row is a flat dict: ``epoch``, ``step``, ``lr``, ``train_loss``, ``train_<metric>``,
``val_loss``, ``val_<metric>``, ``seconds`` and ``data_share`` (the fraction of the epoch's
training time spent waiting for the next batch). Plots are drawn on a matplotlib ``Figure``
with its own Agg canvas (no display, the user's pyplot state untouched) and written atomically.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tinymm._atomic import atomic_write


def write_history(rows: list[dict], folder) -> tuple[Path, Path]:
    """Write ``history.json`` and ``history.csv`` into ``folder``; return both paths."""
    folder = Path(folder)
    js = folder / "history.json"
    atomic_write(js, lambda f: f.write(json.dumps(rows, indent=1).encode()))
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    cs = folder / "history.csv"
    atomic_write(cs, lambda f: f.write(buf.getvalue().encode()))
    return js, cs


def plot_history(rows: list[dict], folder) -> list[Path]:
    """``loss.png`` (train/val loss per epoch) and, when metrics were logged, ``metrics.png``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    folder = Path(folder)
    epochs = [r["epoch"] + 1 for r in rows]
    written = []
    names = sorted({k[len("train_"):] for r in rows for k in r if k.startswith("train_")} |
                   {k[len("val_"):] for r in rows for k in r if k.startswith("val_")})
    for name, file in (("loss", "loss.png"), ("metrics", "metrics.png")):
        shown = ["loss"] if name == "loss" else [n for n in names if n != "loss"]
        if not shown:
            continue
        fig = Figure(figsize=(6, 4))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        for metric in shown:
            for split, style in (("train", "-"), ("val", "--")):
                key = f"{split}_{metric}"
                pts = [(e, r[key]) for e, r in zip(epochs, rows) if r.get(key) is not None]
                if pts:
                    ax.plot(*zip(*pts), style, marker="o", markersize=3, label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = folder / file

        def write(f, fig=fig):
            fig.savefig(f, format="png", dpi=100)

        atomic_write(path, write)
        written.append(path)
    return written
