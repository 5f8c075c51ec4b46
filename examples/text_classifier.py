"""The seed's §5.2 with tinymm's own checkpoint: pretrain a text encoder with masked tokens,
``save_pretrained``, ``from_pretrained`` + a new head, fine-tune on ``text_cls``, print accuracy.

    python examples/text_classifier.py            # full settings (a few minutes on 2 cores)
    python examples/text_classifier.py --tiny     # seconds (CI; or TINYMM_EXAMPLE_TINY=1)

The §5.2 listing, in tinymm::

    model = TextClassifier.from_pretrained("runs/text_mlm", num_labels=4)   # encoder + new head
    rec = models.recipe("text_cls", tokenizer=model.tokenizer)              # the encoder's tokenizer
    Trainer(model, AdamW(model.parameters(), lr=1e-3), rec.loss, train_loader, epochs=...).fit()

``text_cls``: a caption ("we see a purple box that is large") → the shape it names (circle,
square, triangle, cross), written with synonyms (box = square, disk/disc = circle). The
pretraining corpus is the world's unlabelled captions and questions. The table compares the
pretrained encoder with the same architecture from random initialisation, both fine-tuned on
the same first N labelled samples of the train split; accuracy on the 1,000-sample test split.
Bounded by steps and epochs (never wall time), seeded: the numbers do not depend on the load.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import tinymm as tm
from tinymm.models import TextClassifier
from tinymm.train.text import (LABEL_BUDGETS, MLM_STEPS, MLM_TEXTS, SMALL_TEXT_ENCODER as ENCODER, fine_tune_text_cls, masked_token_accuracy, pretrain_mlm,
                               text_cls_accuracy_table)

FULL = dict(mlm_steps=MLM_STEPS, mlm_texts=MLM_TEXTS, labels=[n for n, _ in LABEL_BUDGETS],
            epochs=[e for _, e in LABEL_BUDGETS], test=1000)
TINY = dict(mlm_steps=20, mlm_texts=400, labels=(16,), epochs=(2,), test=64)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="seconds-long settings (also TINYMM_EXAMPLE_TINY=1)")
    ap.add_argument("--out", default=None, help="where to save the pretrained encoder (default: a temporary folder)")
    args = ap.parse_args(argv)
    cfg = TINY if args.tiny or os.environ.get("TINYMM_EXAMPLE_TINY") == "1" else FULL
    out = args.out or tempfile.mkdtemp(prefix="tinymm_text_mlm_")

    # 1. masked-token pretraining on the world's captions and questions, then save_pretrained
    mlm = pretrain_mlm(cfg["mlm_steps"], num_texts=cfg["mlm_texts"], log=lambda m: None, **ENCODER)
    acc_mlm = masked_token_accuracy(mlm, num_texts=min(1000, cfg["mlm_texts"]))
    mlm.save_pretrained(out)
    print(f"pretrained {cfg['mlm_steps']} steps on {cfg['mlm_texts']} texts; masked-token accuracy "
          f"(val) {100 * acc_mlm:.1f}%; saved to {out}")

    # 2. from_pretrained + a new head, fine-tuned; the same architecture from scratch beside it
    rows = {"MLM-pretrained encoder": [], "same encoder, random init": []}
    for n, epochs in zip(cfg["labels"], cfg["epochs"]):
        for name in rows:
            tm.manual_seed(0)
            if name.startswith("MLM"):
                model = TextClassifier.from_pretrained(out, num_labels=4)
            else:
                model = TextClassifier(4, "transformer", dict(ENCODER, vocab_size=len(mlm.tokenizer)))
                model.tokenizer = mlm.tokenizer
            res = fine_tune_text_cls(model, n, epochs, lr=1e-3, test_samples=cfg["test"])
            rows[name].append(res["accuracy"])
    labels = [f"{n} ({100 * n / 5000:g} %)" for n in cfg["labels"]]
    print(f"\ntext_cls test accuracy ({cfg['test']} samples), fine-tuned on the first N labelled train samples")
    print(text_cls_accuracy_table(list(rows.items()), labels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
