"""Pretraining then fine-tuning (the seed's §3.3): CLIP-pretrain the image and text towers on
caption pairs, load them into the default vqa model, fine-tune on ``vqa`` with 10 % of the
training labels, and compare with the same model trained from scratch on the same 10 %.

    python examples/pretrain_finetune.py                     # full settings (the README's table)
    python examples/pretrain_finetune.py --clip-from DIR     # reuse a CLIP run (DIR/model, DIR/tokenizer.json)
    python examples/pretrain_finetune.py --tiny              # seconds (also TINYMM_EXAMPLE_TINY=1)

The vqa model is the registry's default for the task (``tinymm.models.build("vqa")``), built
with the CLIP model's tower sizes; both runs use one tokenizer (captions + questions), so the
pretrained text tower reads the questions with the ids it learned. ``--clip-from`` takes the
folder ``examples/clip_retrieval.py --out DIR`` writes; with the default settings of both
examples the pretraining is the same seeded run, so the numbers are the same either way.

One protocol for both models: the same initial head (one seed), the same labelled samples and
fine-tuning steps, and the learning rate picked for *each* model from the same grid by its
accuracy on the validation split; the test split is read once, for the picked runs.
"""
from __future__ import annotations

import argparse
import os
import time

import tinymm as tm
from tinymm import models
from tinymm.data import DataLoader, Tokenizer, load_task
from tinymm.models.clip import CLIPModel, load_towers
from tinymm.optim import AdamW, lr_scheduler
from tinymm.train import Trainer
from tinymm.train.pretrain import pretrain_model, retrieval_report
from tinymm.train.runs import evaluate_model

# CLIP: 96,000 generated pairs x 4 epochs at batch 128 = 3,000 steps (the quick preset's 312 steps
# gave towers worth 4 points less at lr 2e-3: 50.4 against 54.6; see the README)
FULL = dict(clip=dict(model="clip", train_samples=96000, batch_size=128, lr=2e-3, epochs=4),
            vqa_train=5000, label_fraction=0.1, batch_size=64, lrs=(1e-3, 2e-3, 4e-3, 8e-3), epochs=40,
            val=1000, test=1000, tower={})
TINY = dict(clip=dict(model="clip", train_samples=64, batch_size=32, lr=3e-3, epochs=1),
            vqa_train=320, label_fraction=0.1, batch_size=16, lrs=(1e-3, 3e-3), epochs=1, val=64, test=64,
            tower={"channels": 8, "embed_dim": 16, "hidden": 32})
MODELS = ("scratch", "CLIP-pretrained")


def finetune(model, rec, p, lr, seed, label):
    """Train ``model`` on the labelled 10 % for ``p['epochs']`` (AdamW at ``lr``, warm-up + cosine);
    return the number of steps."""
    n = int(p["vqa_train"] * p["label_fraction"])
    train = load_task("vqa", "train", num_samples=n)  # the first n samples of the split: the same for both runs
    loader = DataLoader(train, batch_size=p["batch_size"], shuffle=True, seed=seed, collate_fn=rec.collate,
                        prefetch=2)
    steps = len(loader) * p["epochs"]
    opt = AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = lr_scheduler.warmup_cosine(opt, warmup_steps=steps // 20, total_steps=steps)
    trainer = Trainer(model, opt, rec.loss, loader, scheduler=sched, scheduler_interval="step",
                      epochs=p["epochs"], target_key=rec.target_key, progress=False, log=lambda m: None)
    t0 = time.perf_counter()
    trainer.fit()
    print(f"{label}, lr {lr:g}: {n} labelled samples, {trainer.step} steps, {time.perf_counter() - t0:.0f} s",
          flush=True)
    return trainer.step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="seconds-long settings (CI); also TINYMM_EXAMPLE_TINY=1")
    ap.add_argument("--clip-from", default=None, help="a folder with model/ and tokenizer.json of a CLIP run")
    ap.add_argument("--model", default=None, help="vqa model name (default: the task's default)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    tiny = args.tiny or os.environ.get("TINYMM_EXAMPLE_TINY") == "1"
    p = TINY if tiny else FULL

    if args.clip_from:
        clip = CLIPModel.from_pretrained(os.path.join(args.clip_from, "model"))
        rec_clip = models.recipe("retrieval", tokenizer=Tokenizer.load(os.path.join(args.clip_from, "tokenizer.json")))
        print(f"CLIP towers from {args.clip_from}", flush=True)
    else:
        rec_clip = models.recipe("retrieval")
        t0 = time.perf_counter()
        clip, trainer = pretrain_model(rec_clip, {**p["clip"], "model_config": p["tower"]}, seed=args.seed, log=print)
        print(f"CLIP pretraining: {trainer.step} steps, {time.perf_counter() - t0:.0f} s", flush=True)
    r = retrieval_report(clip, rec_clip, num_samples=p["test"])
    print(f"  its retrieval (test gallery of {r['samples']}): R@1 image→text {100 * r['i2t'][1]:.1f}, "
          f"text→image {100 * r['t2i'][1]:.1f}", flush=True)

    rec = models.recipe("vqa", tokenizer=rec_clip.tokenizer)
    sizes = {k: getattr(clip.config, k) for k in ("channels", "embed_dim", "hidden")}
    picked = {}
    for label in MODELS:
        best = None
        for lr in p["lrs"]:
            tm.manual_seed(args.seed)  # the same initial head (and towers, before loading) for every run
            model = models.build("vqa", args.model, rec, **sizes)
            if label != "scratch":
                load_towers(clip, model)  # image → model.image, text → model.question
            steps = finetune(model, rec, p, lr, args.seed, label)
            val = evaluate_model(model, rec, "val", p["val"])["accuracy"]
            print(f"  validation accuracy {100 * val:.1f}", flush=True)
            if best is None or val > best[0]:
                best = (val, lr, steps, model)
        picked[label] = best

    print(f"\nvqa, {int(100 * p['label_fraction'])} % of {p['vqa_train']} training labels, model "
          f"{models.check('vqa', args.model)}; lr picked per model on the val split ({p['val']}) from "
          f"{', '.join(f'{lr:g}' for lr in p['lrs'])}; test split ({p['test']} samples):")
    results = {label: evaluate_model(model, rec, "test", p["test"]) for label, (_, _, _, model) in picked.items()}
    types = list(results["scratch"].get("per_type", {}))
    print(f"{'':<17} lr      steps  val    test  " + "  ".join(f"{t:>8}" for t in types))
    for label, res in results.items():
        val, lr, steps, _ = picked[label]
        print(f"{label:<17} {lr:<7g} {steps:>5}  {100 * val:5.1f}  {100 * res['accuracy']:5.1f}  " +
              "  ".join(f"{100 * res['per_type'][t]:8.1f}" for t in types))
    gain = 100 * (results["CLIP-pretrained"]["accuracy"] - results["scratch"]["accuracy"])
    print(f"pretrained − scratch: {gain:+.1f} points (test)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
