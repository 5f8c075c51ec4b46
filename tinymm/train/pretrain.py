"""Contrastive (CLIP) pretraining behind ``tinymm pretrain``, and its retrieval evaluation.

    res = pretrain_run(PretrainSettings(preset="quick"), "runs/retrieval-clip")
    print(format_retrieval(res))

The run trains the task's default model (a :class:`~tinymm.models.clip.CLIPModel`) with the
Trainer on generated image-caption pairs, for a fixed number of epochs (never a time budget,
so the numbers do not depend on the machine's load), then ranks a held-out gallery of the
test split's pairs (1,000 by default): recall@1/5/10 image→text and text→image, where a
caption that is the same string as the true one counts as a hit (the report says how many of
the gallery's captions have such a duplicate). The run folder holds ``model/``
(``save_pretrained``), ``tokenizer.json``, ``run.json``, the Trainer's history and checkpoints,
and ``report.json``.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import tinymm as tm
from tinymm import backend, models, optim
from tinymm._atomic import atomic_write
from tinymm.data import DataLoader, load_task
from tinymm.metrics import count_duplicates, recall_at_k, same_string_relevance
from tinymm.models.clip import clip_loss
from tinymm.train.trainer import Trainer, to_tensors

PRETRAIN_PRESETS = {
    # 312 steps, ~1 minute of one core; `--train-samples 96000` gives the examples' 3,000 steps (README)
    "quick": dict(train_samples=10000, batch_size=128, lr=2e-3, epochs=4),
    # seconds: for tests and smoke runs
    "tiny": dict(train_samples=128, batch_size=32, lr=3e-3, epochs=1, gallery=64,
                 model_config={"channels": 8, "embed_dim": 16, "hidden": 32, "proj_dim": 16, "proj_hidden": 32}),
}
KS = (1, 5, 10)


@dataclass
class PretrainSettings:
    task: str = "retrieval"
    model: str | None = None
    preset: str = "quick"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    train_samples: int | None = None
    gallery: int | None = None
    device: str = "cpu"
    seed: int = 0

    def resolved(self) -> dict:
        if self.task != "retrieval":
            raise ValueError(f"pretrain: contrastive pretraining needs image-caption pairs; "
                             f"the only such task is 'retrieval', got {self.task!r}")
        if self.preset not in PRETRAIN_PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known: {', '.join(PRETRAIN_PRESETS)}")
        p = {"gallery": 1000, **PRETRAIN_PRESETS[self.preset]}
        for key in ("epochs", "batch_size", "lr", "train_samples", "gallery"):
            if getattr(self, key) is not None:
                p[key] = getattr(self, key)
        for key in ("epochs", "batch_size", "train_samples", "gallery"):
            if p[key] < 1:
                raise ValueError(f"pretrain: {key.replace('_', '-')} must be at least 1, got {p[key]}")
        if p["gallery"] < max(KS):
            raise ValueError(f"pretrain: the gallery needs at least {max(KS)} pairs for recall@{max(KS)}, "
                             f"got {p['gallery']}")
        p["model"] = models.check(self.task, self.model)
        return p


def embed_pairs(model, rec, ds, batch_size: int = 250, device: str = "cpu"):
    """(image embeddings (N, P), caption embeddings (N, P), captions) of a pair dataset, in eval mode."""
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=rec.collate)
    images, texts, captions = [], [], []
    was_training = model.training
    model.eval()
    try:
        with tm.no_grad():
            for raw in loader:
                batch = to_tensors(raw, device)
                images.append(backend.to_device(model.encode_image(batch["image"])._data, "cpu"))
                texts.append(backend.to_device(model.encode_text(batch["caption_ids"], batch["caption_mask"])._data,
                                               "cpu"))
                captions.extend(raw["caption"])
    finally:
        model.train(was_training)
    return np.concatenate(images), np.concatenate(texts), captions


def retrieval_scores(image_embeds, text_embeds, captions, relevant=None) -> dict:
    """recall@1/5/10 both ways over the gallery, plus its duplicate count.

    ``relevant`` defaults to :func:`~tinymm.metrics.same_string_relevance` of the captions (a
    caption equal to the true one is a hit).
    """
    sim = image_embeds @ text_embeds.T  # (N, N) cosines: rows images, columns captions
    if relevant is None:
        relevant = same_string_relevance(captions)
    recall = recall_at_k(sim, KS, direction="both", relevant=relevant)
    return {"i2t": recall["i2t"], "t2i": recall["t2i"], "duplicates": count_duplicates(captions)}


def retrieval_report(model, rec, split: str = "test", num_samples: int = 1000, device: str = "cpu") -> dict:
    """Recall@1/5/10 both ways on the first ``num_samples`` pairs of ``split`` (see retrieval_scores)."""
    ds = load_task("retrieval", split, num_samples=num_samples, image_size=rec.image_size)
    img, txt, captions = embed_pairs(model, rec, ds, device=device)
    return {"split": split, "samples": len(ds), **retrieval_scores(img, txt, captions)}


def format_retrieval(res: dict, title: str = "") -> str:
    d = res["duplicates"]
    head = f"{title} — " if title else ""
    lines = [f"{head}{res['split']} split, gallery of {res['samples']} image-caption pairs "
             f"({d['duplicated']} captions have a string-equal duplicate in the gallery, in {d['groups']} groups; "
             f"a duplicate of the true caption counts as a hit)",
             "  direction      " + "  ".join(f"R@{k:<4}" for k in KS)]
    for key, name in (("i2t", "image→text"), ("t2i", "text→image")):
        lines.append(f"  {name:<13}  " + "  ".join(f"{100 * res[key][k]:5.1f}" for k in KS))
    return "\n".join(lines)


def fit_contrastive(model, train, collate, p: dict, seed: int = 0, device: str = "cpu", out_dir=None,
                    progress: bool = False, log=None, loss=None):
    """Train ``model`` on ``train`` (shuffled, ``p["batch_size"]``, last partial batch dropped so
    every step sees as many negatives) for ``p["epochs"]`` with AdamW at ``p["lr"]``, a 5 %
    linear warm-up and cosine decay; the loss is :func:`~tinymm.models.clip.clip_loss` of the
    model's (B, B) logits, or ``model.contrastive_loss`` where the model has one (or ``loss`` when
    given). Returns the Trainer."""
    loader = DataLoader(train, batch_size=p["batch_size"], shuffle=True, seed=seed, drop_last=True,
                        collate_fn=collate, prefetch=2)
    steps = max(1, len(loader)) * p["epochs"]
    opt = optim.AdamW(model.parameters(), lr=p["lr"], weight_decay=1e-4)
    sched = optim.lr_scheduler.warmup_cosine(opt, warmup_steps=steps // 20, total_steps=steps)
    loss = loss or getattr(model, "contrastive_loss", clip_loss)
    trainer = Trainer(model, opt, lambda out, batch: loss(out), loader, scheduler=sched,
                      scheduler_interval="step", epochs=p["epochs"], out_dir=out_dir, device=device,
                      target_key="target", progress=progress, log=log or (lambda m: None))
    trainer.fit()
    return trainer


def pretrain_model(rec, p: dict, seed: int = 0, device: str = "cpu", out_dir=None, progress: bool = False,
                   log=None):
    """Build the model ``p["model"]`` and train it contrastively per ``p``; return (model, trainer)."""
    tm.manual_seed(seed)
    model = models.build(rec.task, p["model"], rec, **p.get("model_config", {}))
    train = load_task(rec.task, "train", num_samples=p["train_samples"], image_size=rec.image_size)
    trainer = fit_contrastive(model, train, rec.collate, p, seed, device, out_dir, progress, log)
    return model, trainer


def pretrain_run(settings: PretrainSettings, out_dir, progress: bool = True, log=print) -> dict:
    """Pretrain per ``settings``, save under ``out_dir``, return the gallery report."""
    out = Path(os.fspath(out_dir))
    p = settings.resolved()
    rec = models.recipe(settings.task)
    out.mkdir(parents=True, exist_ok=True)
    rec.tokenizer.save(out / "tokenizer.json")
    doc = {**asdict(settings), "resolved": p}
    atomic_write(out / "run.json", lambda f: f.write(json.dumps(doc, indent=1).encode()))
    model, trainer = pretrain_model(rec, p, settings.seed, settings.device, out, progress, log)
    model.save_pretrained(out / "model")
    res = retrieval_report(model, rec, "test", p["gallery"], settings.device)
    res.update(model=p["model"], task=settings.task, epochs_run=len(trainer.history), steps=trainer.step)
    atomic_write(out / "report.json", lambda f: f.write(json.dumps(res, indent=1).encode()))
    return res
