"""Train a model for a fixed number of epochs on samples held in memory, and score it: what the
examples' comparison tables (a model against its baselines) are made of.

    trainer = train_epochs(model, rec, train_samples, epochs=8, lr=2e-3)
    score(trainer, rec, test_samples)   # {"accuracy": ..., "exist": ..., "count": ..., ...}
    print(format_table("test accuracy", [("film", s1), ("image_only", s2)]))

Bounded by epochs (seeded shuffling, a warm-up + cosine schedule per step), never by time, so
the numbers do not depend on how busy the machine is.
"""
from __future__ import annotations

import numpy as np

from tinymm import optim
from tinymm.data import DataLoader
from tinymm.train.trainer import Trainer


def train_epochs(model, rec, train, epochs: int, lr: float, batch_size: int = 64, seed: int = 0,
                 weight_decay: float = 1e-4, log=None) -> Trainer:
    """AdamW with a 5 % linear warm-up then cosine decay, ``epochs`` passes over ``train`` (any
    dataset: ``len`` + ``[i] -> dict``), collated by ``rec.collate``; returns the fitted Trainer."""
    opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * -(-len(train) // batch_size)
    sched = optim.lr_scheduler.warmup_cosine(opt, warmup_steps=steps // 20, total_steps=steps)
    loader = DataLoader(train, batch_size, shuffle=True, seed=seed, collate_fn=rec.collate)
    trainer = Trainer(model, opt, rec.loss, loader, scheduler=sched, scheduler_interval="step", epochs=epochs,
                      progress=False, target_key=rec.target_key, log=log or (lambda msg: None))
    trainer.fit()
    return trainer


def score(trainer: Trainer, rec, test) -> dict:
    """Accuracy on ``test`` (samples as dicts), and per question type when they have one."""
    pred = trainer.predict(DataLoader(test, 256, collate_fn=rec.collate)).argmax(1)
    hit = pred == np.array([test[i][rec.target_key] for i in range(len(test))])
    out = {"accuracy": float(hit.mean())}
    if len(test) and "question_type" in test[0]:
        types = np.array([test[i]["question_type"] for i in range(len(test))])
        out.update({t: float(hit[types == t].mean()) for t in sorted(set(types))})
    return out


def format_table(title: str, rows: list) -> str:
    """``rows`` of (model name, :func:`score` dict) as a text table: overall, then per type."""
    cols = [k for k in rows[0][1] if k != "accuracy"]
    w = max(len("model"), *(len(name) for name, _ in rows)) + 2
    lines = [title, f"{'model':<{w}}{'overall':>9}" + "".join(f"{c:>9}" for c in cols)]
    lines += [f"{name:<{w}}{s['accuracy']:>9.3f}" + "".join(f"{s[c]:>9.3f}" for c in cols) for name, s in rows]
    return "\n".join(lines)
