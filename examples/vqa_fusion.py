"""Every fusion head on ``vqa`` beside the unimodal baselines, overall and per question type, in
one table (the seed's §2.2–2.3: how an image and a question meet).

    python examples/vqa_fusion.py [--epochs 4] [--train-samples 19200] [--tiny]

Each model is ``tinymm.models.build("vqa", name)``: the same conv backbone and GRU question
encoder, a different head (tinymm/models/fusion.py):

- early: pooled image + question → MLP; late: one classifier per modality, mixed
- gated: a gated multimodal unit; cross_attention: question tokens attend to the image cells
- film: the question scales and shifts the feature maps; relational: FiLM + two attention hops
- find: every answer through one "find the described object" module (the default model)
- image_only / text_only: the baselines, one input cut

All are trained on the same generated samples (kept in memory) for the same number of epochs
(AdamW, warm-up + cosine), so the table is bounded by steps, not time. The default budget is
1,200 steps per model, half the ``tinymm train`` quick preset; ``--tiny`` (or env
TINYMM_EXAMPLE_TINY=1) is a seconds-long smoke run.
"""
import argparse
import os
import time

import tinymm as tm
from tinymm import models
from tinymm.data import load_task
from tinymm.train import format_table, score, train_epochs

NAMES = ("find", "relational", "film", "cross_attention", "gated", "early", "late", "image_only", "text_only")
KEEP = ("image", "question", "answer", "question_type", "index")  # what the collate and scoring read


def materialise(split, n):
    ds = load_task("vqa", split, num_samples=n)
    return [{k: s[k] for k in KEEP} for s in (ds[i] for i in range(n))]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--train-samples", type=int, default=19200)
    p.add_argument("--test-samples", type=int, default=1000)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--models", default=",".join(NAMES), help="comma-separated vqa model names")
    p.add_argument("--tiny", action="store_true", help="a seconds-long smoke run (also env TINYMM_EXAMPLE_TINY=1)")
    args = p.parse_args(argv)
    tiny = args.tiny or os.environ.get("TINYMM_EXAMPLE_TINY") == "1"
    epochs, n_train, n_test = (1, 64, 64) if tiny else (args.epochs, args.train_samples, args.test_samples)
    config = {"channels": 8, "embed_dim": 8, "hidden": 16, "head_hidden": 16} if tiny else {}
    names = [n.strip() for n in args.models.split(",") if n.strip()]

    rec = models.recipe("vqa")
    print(f"vqa: {n_train} train / {n_test} test samples, {epochs} epochs "
          f"({epochs * -(-n_train // 64)} steps of batch 64) per model", flush=True)
    train, test = materialise("train", n_train), materialise("test", n_test)
    rows = []
    for name in names:
        tm.manual_seed(0)
        model = models.build("vqa", name, rec, **config)
        t0 = time.perf_counter()
        trainer = train_epochs(model, rec, train, epochs, args.lr, seed=0)
        rows.append((name, score(trainer, rec, test)))
        print(f"  {name:<16} test {rows[-1][1]['accuracy']:.3f}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    print()
    print(format_table(f"vqa test accuracy ({n_test} samples)", rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
