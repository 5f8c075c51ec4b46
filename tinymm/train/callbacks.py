"""Callbacks: code the Trainer calls at fixed points of ``fit()``.

Subclass :class:`Callback` and override any hook; each receives the trainer, whose state
(``epoch``, ``step``, ``history``, ``model``, ``optimizer``, ``stop_training``) it may read, and
``stop_training`` it may set. Hooks run in the order the callbacks were given.

    on_fit_start(trainer)
    on_epoch_start(trainer, epoch)
    on_batch_end(trainer, step, loss)          loss: the batch's float loss
    on_epoch_end(trainer, epoch, logs)         logs: this epoch's history row
    on_fit_end(trainer)
"""
from __future__ import annotations

import math
import os
from pathlib import Path


class Callback:
    def on_fit_start(self, trainer) -> None:
        pass

    def on_epoch_start(self, trainer, epoch: int) -> None:
        pass

    def on_batch_end(self, trainer, step: int, loss: float) -> None:
        pass

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        pass

    def on_fit_end(self, trainer) -> None:
        pass


def resolve_mode(monitor: str, mode: str) -> str:
    if mode == "auto":
        return "min" if "loss" in monitor else "max"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
    return mode


def improved(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _monitored(logs: dict, monitor: str, who: str):
    if monitor not in logs:
        known = ", ".join(k for k in logs if k not in ("epoch", "step"))
        raise KeyError(f"{who}: monitor {monitor!r} is not in the epoch's logs ({known})")
    return logs[monitor]


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs."""

    def __init__(self, monitor: str = "val_loss", patience: int = 3, mode: str = "auto", min_delta: float = 0.0):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be a non-negative int, got {patience!r}")
        if not (isinstance(min_delta, (int, float)) and math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"EarlyStopping: min_delta must be a finite number >= 0, got {min_delta!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, float(min_delta)
        self.mode = resolve_mode(monitor, mode)
        self.best, self.wait, self.stopped_epoch = None, 0, None

    def on_epoch_end(self, trainer, epoch, logs):
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if improved(value, self.best, self.mode, self.min_delta):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.wait = state["best"], state["wait"]


class Checkpoint(Callback):
    """Save ``last.safetensors`` after every epoch and ``best.safetensors`` when ``monitor`` improves.

    Both are whole training states (see :mod:`tinymm.train.checkpoint`), written atomically, so
    ``Trainer(..., resume=True)`` can continue from ``last`` and ``tinymm eval`` can read ``best``.
    """

    def __init__(self, folder, monitor: str = "val_loss", mode: str = "auto", every: int = 1):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"Checkpoint: every must be a positive int, got {every!r}")
        self.folder = Path(os.fspath(folder))
        self.monitor, self.every = monitor, every
        self.mode = resolve_mode(monitor, mode)
        self.best = None

    @property
    def last_path(self) -> Path:
        return self.folder / "last.safetensors"

    @property
    def best_path(self) -> Path:
        return self.folder / "best.safetensors"

    def on_epoch_end(self, trainer, epoch, logs):
        value = logs.get(self.monitor)
        if improved(value, self.best, self.mode):
            self.best = value
            trainer.save_checkpoint(self.best_path)
        if (epoch + 1) % self.every == 0 or trainer.stop_training:
            trainer.save_checkpoint(self.last_path)

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best = state["best"]
