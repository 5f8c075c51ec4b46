"""Whole runs behind ``tinymm train`` / ``eval`` / ``predict``: data, model, Trainer, report.

A run directory holds ``checkpoints/`` (``last``/``best``, see :mod:`tinymm.train.checkpoint`),
``model/`` (``save_pretrained`` of the best model: ``config.json`` + ``model.safetensors``),
``tokenizer.json``, ``run.json`` (the settings), ``history.json``/``.csv``, the PNG plots and
``report.json`` (the test-split metrics). This module composes the floors below it (data,
models, Trainer); the Trainer itself still knows no modality.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import tinymm as tm
from tinymm import models, optim
from tinymm._atomic import atomic_write
from tinymm.data import DataLoader, Tokenizer, load_task
from tinymm.metrics import accuracy_score, classification_report, precision_recall_fscore_support
from tinymm.models.pretrained import read_json
from tinymm.serialization import CheckpointError
from tinymm.train.checkpoint import restore_checkpoint
from tinymm.train.trainer import Trainer

PRESETS = {
    # A preset is bounded by its step count (epochs × train_samples / batch_size), so the same
    # command gives the same numbers on any CPU; ``minutes`` is only a safety cap on training
    # time. The learning rate follows a cosine from ``lr`` to 0 over all the steps.
    # quick: 2,400 steps, ~4 minutes of training on 2 CPU cores, ~5 minutes with compilation,
    # data and the test report
    "quick": dict(minutes=4.3, train_samples=15360, batch_size=64, lr=3e-3, epochs=10),
    # full: at most 30 minutes on 2 CPU cores
    "full": dict(minutes=27.0, train_samples=15360, batch_size=64, lr=3e-3, epochs=60),
    # seconds: for tests and smoke runs
    "tiny": dict(minutes=1.0, train_samples=256, batch_size=32, lr=3e-3, epochs=1,
                 model_config={"channels": 8, "hidden": 32, "embed_dim": 16, "head_hidden": 32}),
}


@dataclass
class RunSettings:
    task: str = "vqa"
    model: str | None = None
    preset: str = "quick"
    epochs: int | None = None
    minutes: float | None = None
    batch_size: int | None = None
    lr: float | None = None
    device: str = "cpu"
    seed: int = 0
    train_samples: int | None = None
    val_samples: int = 1000
    test_samples: int = 1000

    def resolved(self) -> dict:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known: {', '.join(PRESETS)}")
        p = dict(PRESETS[self.preset])
        for key in ("epochs", "minutes", "batch_size", "lr", "train_samples"):
            if getattr(self, key) is not None:
                p[key] = getattr(self, key)
        p["model"] = models.check(self.task, self.model)
        return p


def total_steps(p: dict) -> int:
    """The optimizer steps of a resolved preset: epochs × batches per epoch."""
    return p["epochs"] * -(-p["train_samples"] // p["batch_size"])


def _loader(ds, rec, batch_size, shuffle=False, seed=0, prefetch=0, epoch_size=None):
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, seed=seed, collate_fn=rec.collate,
                      prefetch=prefetch, epoch_size=epoch_size)


def evaluate_model(model, rec, split: str = "test", num_samples: int = 1000, batch_size: int = 128,
                   device: str = "cpu") -> dict:
    """Accuracy (overall and per question type), macro P/R/F1 and the per-class report on a split."""
    ds = load_task(rec.task, split, num_samples=num_samples, image_size=rec.image_size)
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.0), rec.loss, [], device=device,
                      progress=False, target_key=rec.target_key, log=lambda m: None)
    logits = trainer.predict(_loader(ds, rec, batch_size))
    pred = logits.argmax(axis=1)
    true = ds.head_targets(len(ds))  # the split's targets, without generating its samples again
    result = {"split": split, "samples": int(len(ds)), "accuracy": float(accuracy_score(true, pred))}
    p, r, f, _ = precision_recall_fscore_support(true, pred, average="macro", zero_division=0)
    result.update(macro_precision=float(p), macro_recall=float(r), macro_f1=float(f))
    if rec.task in ("vqa", "av_qa", "video_qa"):
        types = np.array([ds[i]["question_type"] for i in range(len(ds))])
        result["per_type"] = {t: float((pred[types == t] == true[types == t]).mean()) for t in sorted(set(types))}
    labels = sorted(set(true.tolist()) | set(pred.tolist()))
    result["report"] = classification_report(true, pred, labels=labels,
                                             target_names=[rec.class_names[i] for i in labels], zero_division=0)
    return result


def format_report(res: dict, title: str = "") -> str:
    lines = [f"{title} — {res['split']} split, {res['samples']} samples" if title else f"{res['split']} split"]
    lines.append(f"  accuracy        {res['accuracy']:.4f}")
    for t, a in res.get("per_type", {}).items():
        lines.append(f"    {t:<12}  {a:.4f}")
    lines.append(f"  macro precision {res['macro_precision']:.4f}   recall {res['macro_recall']:.4f}   "
                 f"F1 {res['macro_f1']:.4f}")
    lines.append("")
    lines.append(res["report"])
    return "\n".join(lines)


def train_run(settings: RunSettings, out_dir, resume: bool = False, progress: bool = True, log=print) -> dict:
    """Train one model per ``settings``; save everything under ``out_dir``; return the test report."""
    out = Path(os.fspath(out_dir))
    p = settings.resolved()
    rec = models.recipe(settings.task)
    run_cfg = {"task": settings.task, "model": p["model"], "preset": settings.preset, "seed": settings.seed}
    if resume:
        saved = read_run(out)
        for key in ("task", "model"):
            if saved.get(key) != run_cfg[key]:
                raise CheckpointError(f"--resume: {out} was trained with {key}={saved.get(key)!r}, "
                                      f"this run asks for {key}={run_cfg[key]!r}")
        rec = models.recipe(settings.task, tokenizer=Tokenizer.load(out / "tokenizer.json"))
    tm.manual_seed(settings.seed)
    model = models.build(settings.task, p["model"], rec, **models.preset_config(settings.task, p["model"], p.get("model_config", {})))
    opt = optim.AdamW(model.parameters(), lr=p["lr"], weight_decay=1e-4)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps(p))
    # every epoch draws fresh samples: the split holds epochs × train_samples generated samples and
    # the loader walks it one train_samples-long window per epoch
    train = load_task(settings.task, "train", num_samples=p["epochs"] * p["train_samples"], image_size=rec.image_size)
    val = load_task(settings.task, "val", num_samples=settings.val_samples, image_size=rec.image_size)
    out.mkdir(parents=True, exist_ok=True)
    if rec.tokenizer is not None and not resume:
        rec.tokenizer.save(out / "tokenizer.json")
    doc = {**run_cfg, **{k: v for k, v in asdict(settings).items() if k not in run_cfg}, "resolved": p}
    atomic_write(out / "run.json", lambda f: f.write(json.dumps(doc, indent=1).encode()))
    trainer = Trainer(model, opt, rec.loss, _loader(train, rec, p["batch_size"], True, settings.seed, prefetch=2,
                                                      epoch_size=p["train_samples"]),
                      _loader(val, rec, 256), scheduler=sched, scheduler_interval="step", epochs=p["epochs"], out_dir=out, device=settings.device,
                      target_key=rec.target_key, max_minutes=p["minutes"], class_names=rec.class_names,
                      progress=progress, run_config=run_cfg, log=log)
    t0 = time.perf_counter()
    trainer.fit(resume=resume)
    seconds = time.perf_counter() - t0
    best = out / "checkpoints" / "best.safetensors"
    if best.exists():
        restore_checkpoint(best, model=model, restore_rng=False)
    model.save_pretrained(out / "model")
    res = evaluate_model(model, rec, "test", settings.test_samples, device=settings.device)
    res.update(model=p["model"], task=settings.task, train_seconds=seconds, epochs_run=len(trainer.history))
    atomic_write(out / "report.json", lambda f: f.write(json.dumps(res, indent=1).encode()))
    return res


def read_run(run_dir) -> dict:
    run_dir = Path(os.fspath(run_dir))
    return read_json(run_dir / "run.json", f"{run_dir} is not a tinymm run directory (no run.json)", "")


def load_run(run_dir, device: str = "cpu"):
    """(model, recipe, run settings) of a finished run directory."""
    run_dir = Path(os.fspath(run_dir))
    doc = read_run(run_dir)
    if not (run_dir / "model" / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir} has no saved model (model/config.json): did the run finish?")
    tok = Tokenizer.load(run_dir / "tokenizer.json") if (run_dir / "tokenizer.json").is_file() else None
    rec = models.recipe(doc["task"], tokenizer=tok)
    model = models.from_pretrained(run_dir / "model", device=device)
    return model, rec, doc


def is_contrastive(model) -> bool:
    """True for a dual encoder (a `tinymm pretrain` run's model): it ranks pairs, it has no classes."""
    return hasattr(model, "encode_image") and hasattr(model, "encode_text")


def predict_one(run_dir, index: int, split: str = "test", device: str = "cpu") -> dict:
    """One sample's inputs (as text), the model's top answers and the truth."""
    model, rec, _ = load_run(run_dir, device)
    if is_contrastive(model):
        raise ValueError(f"{run_dir} holds a contrastive model ({type(model).__name__}): it ranks captions and "
                         f"has no answers to predict; `tinymm eval {run_dir}` gives its retrieval recall")
    ds = load_task(rec.task, split, image_size=rec.image_size)
    if not 0 <= index < len(ds):
        raise IndexError(f"--index {index} is outside the {split} split (0..{len(ds) - 1})")
    sample = ds[index]
    batch = rec.collate([sample])
    from tinymm.train.trainer import to_tensors

    model.eval()
    with tm.no_grad():
        logits = model(to_tensors(batch, device)).numpy(force=True)[0]
    prob = np.exp(logits - logits.max())
    prob /= prob.sum()
    top = np.argsort(-prob)[:3]
    out = {"index": index, "split": split, "truth": rec.class_names[int(sample[rec.target_key])],
           "answer": rec.class_names[int(top[0])],
           "top": [(rec.class_names[int(i)], float(prob[i])) for i in top]}
    for key in ("question", "caption", "question_type"):
        if key in sample:
            out[key] = sample[key]
    if "scene" in sample:
        out["scene"] = [f"{o['size']} {o['colour']} {o['shape']} at ({o['x']:.0f}, {o['y']:.0f})"
                        for o in sample["scene"]["objects"]]
    return out
