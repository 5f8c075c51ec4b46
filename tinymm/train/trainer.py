"""The training loop (floor 8). It knows no modality: only the contract below.

**The contract with models**: ``model(batch)`` takes the dict a task's collate yields, with its
numeric NumPy arrays turned into Tensors on the trainer's device (strings, lists and dicts
pass through untouched), and returns logits ``(B, K)`` — or embeddings, for contrastive
models. ``loss_fn(output, batch)`` returns a scalar Tensor. Metrics compare
``argmax(logits, 1)`` with the batch's target (``target_key``: by default the first of
``label``, ``answer``, ``target`` that the batch has); a model whose output is not ``(B, K)``
logits is trained and evaluated on its loss alone.

One step: batch → Tensors → forward → loss (a NaN or inf stops training, naming the step and
the batch's ``index`` values, keeping the last good checkpoint) → ``zero_grad`` → backward →
optional ``clip_grad_norm_`` → ``optimizer.step()``. After each epoch: the scheduler steps
(or after each step, ``scheduler_interval="step"``), the validation set is evaluated, a row
goes into the history (JSON + CSV in ``out_dir``), the callbacks run (checkpointing is one),
and one summary line is printed. At the end: loss/metric curves and the validation confusion
matrix as PNG files.

Resuming (``fit(resume=True)``) loads ``out_dir/checkpoints/last.safetensors``: weights,
optimizer and scheduler state, RNG states, epoch, step, history and callback states. The
loaders' order is a function of (seed, epoch) (:class:`tinymm.data.DataLoader`), so on the CPU
a run killed after epoch k and resumed ends with weights bit-identical to an uninterrupted run.
"""
from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from tinymm import backend
from tinymm.autograd import no_grad
from tinymm.metrics import accuracy_score, confusion_matrix, f1_score
from tinymm.metrics.plot import plot_confusion_matrix
from tinymm.nn.utils.clip_grad import clip_grad_norm_
from tinymm.serialization import CheckpointError
from tinymm.tensor import Tensor
from tinymm.train import checkpoint as ckpt
from tinymm.train.callbacks import Callback, Checkpoint
from tinymm.train.history import plot_history, write_history

TARGET_KEYS = ("label", "answer", "target")

METRICS = {
    "accuracy": accuracy_score,
    "f1_macro": lambda y, p: f1_score(y, p, average="macro", zero_division=0),
}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the batch."""


def to_tensors(batch: dict, device: str) -> dict:
    """The batch with every numeric NumPy array as a Tensor on ``device``; other values as they are."""
    out = {}
    for k, v in batch.items():
        if isinstance(v, np.ndarray) and v.dtype.kind in "fiub":
            out[k] = Tensor._of(v, device=device)
        else:
            out[k] = v
    return out


def _metric_table(metrics) -> dict:
    if metrics is None:
        return {"accuracy": accuracy_score}
    if isinstance(metrics, dict):
        bad = [k for k, f in metrics.items() if not callable(f)]
        if bad:
            raise TypeError(f"Trainer: metrics must map names to callables f(y_true, y_pred); {bad[0]!r} is not callable")
        return dict(metrics)
    table = {}
    for name in metrics:
        if name not in METRICS:
            raise ValueError(f"Trainer: unknown metric {name!r}; known: {', '.join(METRICS)} (or pass a dict of callables)")
        table[name] = METRICS[name]
    return table


def _positive_int(name, v, allow_none=False):
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"Trainer: {name} must be a positive int, got {v!r}")
    return int(v)


class Trainer:
    """Fit a model on a loader; see the module docstring for the contract and the files."""

    def __init__(self, model, optimizer, loss_fn, train_loader, val_loader=None, scheduler=None,
                 metrics=None, device="cpu", grad_clip=None, epochs: int = 1, callbacks=(), out_dir=None, *,
                 target_key: str | None = None, monitor: str | None = None, scheduler_interval: str = "epoch",
                 max_minutes: float | None = None, max_steps: int | None = None, class_names=None,
                 progress: bool = True, run_config: dict | None = None, log=None):
        if not callable(loss_fn):
            raise TypeError(f"Trainer: loss_fn must be callable (output, batch) -> loss, got {type(loss_fn).__name__}")
        for name, loader in (("train_loader", train_loader), ("val_loader", val_loader)):
            if loader is not None and not hasattr(loader, "__iter__"):
                raise TypeError(f"Trainer: {name} must be iterable (a DataLoader), got {type(loader).__name__}")
        if grad_clip is not None and not (isinstance(grad_clip, (int, float)) and math.isfinite(grad_clip) and grad_clip > 0):
            raise ValueError(f"Trainer: grad_clip must be a positive finite number or None, got {grad_clip!r}")
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"Trainer: scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        if max_minutes is not None and not (isinstance(max_minutes, (int, float)) and max_minutes > 0):
            raise ValueError(f"Trainer: max_minutes must be a positive number or None, got {max_minutes!r}")
        bad = [c for c in callbacks if not isinstance(c, Callback)]
        if bad:
            raise TypeError(f"Trainer: callbacks must be Callback instances, got {type(bad[0]).__name__}")
        self.device = backend.parse_device(device)
        if self.device == "cuda":
            ok, why = backend.cuda_status()
            if not ok:
                raise RuntimeError(f"Trainer: device 'cuda' is not usable here: {why}")
        self.model = model.to(self.device)
        self.optimizer, self.loss_fn, self.scheduler = optimizer, loss_fn, scheduler
        self.train_loader, self.val_loader = train_loader, val_loader
        self.metrics = _metric_table(metrics)
        self.grad_clip, self.epochs = grad_clip, _positive_int("epochs", epochs)
        self.max_steps = _positive_int("max_steps", max_steps, allow_none=True)
        self.max_seconds = None if max_minutes is None else 60.0 * max_minutes
        self.target_key, self.scheduler_interval = target_key, scheduler_interval
        self.class_names = class_names
        self.progress, self.run_config = progress, dict(run_config or {})
        self.log = log if log is not None else (lambda msg: print(msg, flush=True))
        self.out_dir = None if out_dir is None else Path(os.fspath(out_dir))
        self.monitor = monitor or ("val_accuracy" if val_loader is not None and "accuracy" in self.metrics
                                   else ("val_loss" if val_loader is not None else "train_loss"))
        self.callbacks = list(callbacks)
        if self.out_dir is not None and not any(isinstance(c, Checkpoint) for c in self.callbacks):
            self.callbacks.append(Checkpoint(self.out_dir / "checkpoints", monitor=self.monitor))
        self.epoch, self.step, self.history = 0, 0, []
        self.stop_training, self.stop_reason = False, None

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint_callback(self):
        return next((c for c in self.callbacks if isinstance(c, Checkpoint)), None)

    def save_checkpoint(self, path) -> Path:
        states = [c.state_dict() if hasattr(c, "state_dict") else None for c in self.callbacks]
        return ckpt.save_checkpoint(path, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                                    epoch=self.epoch, step=self.step,
                                    extra={"history": self.history, "callbacks": states, "monitor": self.monitor,
                                           "config": self.run_config})

    def _resume(self) -> None:
        cb = self._checkpoint_callback()
        if cb is None:
            raise ValueError("Trainer.fit(resume=True) needs out_dir (or a Checkpoint callback) to find the checkpoint")
        if not cb.last_path.exists():
            raise FileNotFoundError(f"resume: no checkpoint at {cb.last_path}")
        doc = ckpt.restore_checkpoint(cb.last_path, model=self.model, optimizer=self.optimizer,
                                      scheduler=self.scheduler)
        saved_cfg = doc.get("config") or {}
        for key in ("model", "task"):
            if key in saved_cfg and key in self.run_config and saved_cfg[key] != self.run_config[key]:
                raise CheckpointError(f"resume: {cb.last_path} was trained with {key}={saved_cfg[key]!r}, "
                                      f"this run asks for {key}={self.run_config[key]!r}")
        self.epoch, self.step, self.history = doc["epoch"] + 1, doc["step"], doc["history"]
        for c, state in zip(self.callbacks, doc.get("callbacks") or []):
            if state is not None and hasattr(c, "load_state_dict"):
                c.load_state_dict(state)

    # ------------------------------------------------------------------ one pass
    def _target(self, batch):
        if self.target_key is not None:
            if self.target_key not in batch:
                raise KeyError(f"Trainer: target_key {self.target_key!r} is not in the batch (keys: {', '.join(batch)})")
            return batch[self.target_key]
        return next((batch[k] for k in TARGET_KEYS if k in batch), None)

    @staticmethod
    def _as_labels(output):
        if isinstance(output, Tensor) and output.ndim == 2:
            return output._data.argmax(axis=1)
        return None

    def _scores(self, y_true: list, y_pred: list, prefix: str) -> dict:
        if not y_true or not self.metrics:
            return {}
        yt = np.concatenate([backend.to_device(np.asarray(a) if isinstance(a, np.ndarray) else a, "cpu")
                             for a in y_true])
        yp = np.concatenate([backend.to_device(a, "cpu") for a in y_pred])
        return {f"{prefix}_{name}": float(fn(yt, yp)) for name, fn in self.metrics.items()}

    def _check_finite(self, value: float, batch: dict) -> None:
        if math.isfinite(value):
            return
        idx = batch.get("index")
        where = f"; batch indices {np.asarray(idx).tolist()}" if idx is not None else ""
        cb = self._checkpoint_callback()
        kept = (f"; the last good checkpoint is {cb.last_path}" if cb is not None and cb.last_path.exists()
                else "; no checkpoint was written before it")
        raise TrainingDiverged(f"training stopped at step {self.step} (epoch {self.epoch + 1}): "
                               f"the loss is {value}{where}{kept}")

    def _train_epoch(self, t_start: float) -> dict:
        from tqdm.auto import tqdm

        self.model.train()
        total, count, correct, y_true, y_pred = 0.0, 0, 0, [], []
        wait = 0.0
        n = len(self.train_loader) if hasattr(self.train_loader, "__len__") else None
        bar = tqdm(total=n, desc=f"epoch {self.epoch + 1}/{self.epochs}", disable=not self.progress,
                   leave=False, file=sys.stderr, dynamic_ncols=True)
        it = iter(self.train_loader)
        t_epoch = time.perf_counter()
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    raw = next(it)
                except StopIteration:
                    break
                wait += time.perf_counter() - t0
                batch = to_tensors(raw, self.device)
                output = self.model(batch)
                loss = self.loss_fn(output, batch)
                value = float(loss.item())
                self._check_finite(value, raw)
                self.optimizer.zero_grad()
                loss.backward()
                if self.grad_clip is not None:
                    clip_grad_norm_(self.model.parameters(), self.grad_clip)
                self.optimizer.step()
                if self.scheduler is not None and self.scheduler_interval == "step":
                    self.scheduler.step()
                self.step += 1
                target, labels = self._target(raw), self._as_labels(output)
                b = len(target) if target is not None else 1
                total, count = total + value * b, count + b
                postfix = {"loss": f"{total / count:.4f}"}
                if target is not None and labels is not None:
                    y_true.append(np.asarray(target))
                    y_pred.append(labels)
                    correct += int((backend.to_device(labels, "cpu") == y_true[-1]).sum())
                    postfix["acc"] = f"{correct / count:.3f}"
                bar.set_postfix(postfix, refresh=False)
                bar.update(1)
                for c in self.callbacks:
                    c.on_batch_end(self, self.step, value)
                if self.max_steps is not None and self.step >= self.max_steps:
                    self.stop_training, self.stop_reason = True, f"max_steps={self.max_steps} reached"
                    break
                if self.max_seconds is not None and time.perf_counter() - t_start > self.max_seconds:
                    self.stop_training, self.stop_reason = True, f"time budget of {self.max_seconds / 60:g} min reached"
                    break
        finally:
            bar.close()
            close = getattr(it, "close", None)
            if close is not None:
                close()
        seconds = time.perf_counter() - t_epoch
        row = {"train_loss": total / max(count, 1)}
        row.update(self._scores(y_true, y_pred, "train"))
        row["seconds"] = seconds
        row["data_share"] = wait / seconds if seconds > 0 else 0.0
        return row

    def evaluate(self, loader, prefix: str | None = None) -> dict:
        """Loss and metrics over ``loader`` in eval mode without gradients: ``{"loss": ..., "accuracy": ...}``."""
        out, y_true, y_pred = self._run_eval(loader, keep_outputs=False)
        res = {k.split("_", 1)[1]: v for k, v in self._scores(y_true, y_pred, "x").items()}
        res = {"loss": out, **res}
        return res if prefix is None else {f"{prefix}_{k}": v for k, v in res.items()}

    def _run_eval(self, loader, keep_outputs: bool):
        was_training = self.model.training
        self.model.eval()
        total, count, y_true, y_pred, outputs = 0.0, 0, [], [], []
        try:
            with no_grad():
                for raw in loader:
                    batch = to_tensors(raw, self.device)
                    output = self.model(batch)
                    if keep_outputs:
                        outputs.append(backend.to_device(output._data, "cpu"))
                        continue
                    target, labels = self._target(raw), self._as_labels(output)
                    loss = float(self.loss_fn(output, batch).item())
                    b = len(target) if target is not None else 1
                    total, count = total + loss * b, count + b
                    if target is not None and labels is not None:
                        y_true.append(np.asarray(target))
                        y_pred.append(labels)
        finally:
            self.model.train(was_training)
        if keep_outputs:
            return outputs
        return total / max(count, 1), y_true, y_pred

    def predict(self, loader) -> np.ndarray:
        """The model's outputs (logits or embeddings) over ``loader``, concatenated, as NumPy."""
        outs = self._run_eval(loader, keep_outputs=True)
        return np.concatenate(outs) if outs else np.zeros((0,), dtype=np.float32)

    # ------------------------------------------------------------------ fit
    def fit(self, resume: bool = False) -> list[dict]:
        """Train for ``epochs`` (or until a callback, ``max_steps`` or ``max_minutes`` stops it).

        Returns the history, one dict per epoch.
        """
        if resume:
            self._resume()
        t_start = time.perf_counter()
        for c in self.callbacks:
            c.on_fit_start(self)
        self.stop_training = False
        while self.epoch < self.epochs and not self.stop_training:
            if hasattr(self.train_loader, "set_epoch"):
                self.train_loader.set_epoch(self.epoch)
            for c in self.callbacks:
                c.on_epoch_start(self, self.epoch)
            row = {"epoch": self.epoch, "step": 0, "lr": float(self.optimizer.param_groups[0]["lr"])}
            row.update(self._train_epoch(t_start))
            row["step"] = self.step
            if self.scheduler is not None and self.scheduler_interval == "epoch":
                self.scheduler.step()
            if self.val_loader is not None:
                row.update(self.evaluate(self.val_loader, prefix="val"))
            self.history.append(row)
            if self.out_dir is not None:
                write_history(self.history, self.out_dir)
            for c in self.callbacks:
                c.on_epoch_end(self, self.epoch, row)
            self.log(self._summary(row))
            self.epoch += 1
        if self.stop_reason:
            self.log(f"stopped: {self.stop_reason}")
        if self.out_dir is not None and self.history:
            plot_history(self.history, self.out_dir)
            self._plot_confusion()
        for c in self.callbacks:
            c.on_fit_end(self)
        return self.history

    def _summary(self, row: dict) -> str:
        parts = [f"epoch {row['epoch'] + 1}/{self.epochs}"]
        for k, v in row.items():
            if k in ("epoch", "step", "seconds", "data_share", "lr"):
                continue
            parts.append(f"{k} {v:.4f}")
        parts.append(f"lr {row['lr']:.3g}")
        parts.append(f"{row['seconds']:.1f}s (data {100 * row['data_share']:.0f}%)")
        return "  ".join(parts)

    def _plot_confusion(self) -> None:
        if self.val_loader is None:
            return
        _, y_true, y_pred = self._run_eval(self.val_loader, keep_outputs=False)
        if not y_true:
            return
        yt, yp = np.concatenate(y_true), np.concatenate([backend.to_device(a, "cpu") for a in y_pred])
        k = int(max(yt.max(), yp.max())) + 1
        names = self.class_names
        if names is not None and len(names) >= k:
            k = len(names)
        cm = confusion_matrix(yt, yp, labels=list(range(k)))
        plot_confusion_matrix(cm, self.out_dir / "confusion_matrix.png",
                              class_names=None if names is None else list(names)[:k], title="validation")
