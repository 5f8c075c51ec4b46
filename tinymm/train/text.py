"""Text runs: masked-token pretraining of a text encoder, then fine-tuning on ``text_cls`` with
a fraction of the labels (what ``examples/text_classifier.py`` and
``examples/pretrained_minilm.py`` compose). Every run is bounded by steps or epochs, never by
wall time, and seeded, so its numbers do not depend on the machine's load.
"""
from __future__ import annotations

import tinymm as tm
from tinymm import models, optim
from tinymm.data import DataLoader, Tokenizer, load_task
from tinymm.models import MaskedLanguageModel, MLMCollate, mlm_loss, world_corpus
from tinymm.models.mlm import IGNORE
from tinymm.train.runs import evaluate_model
from tinymm.train.trainer import Trainer, to_tensors

#: the small Transformer encoder the text examples pretrain (about 0.1 M parameters)
SMALL_TEXT_ENCODER = dict(dim=64, depth=2, heads=4, ff_dim=256, max_len=64, dropout=0.1)
#: (labelled train samples, fine-tuning epochs) of the text examples' columns: 0.2 %, 1 % and
#: 10 % of text_cls's 5,000 training labels; every model gets the same epochs (batch 16)
LABEL_BUDGETS = ((10, 30), (50, 15), (500, 5))
MLM_STEPS, MLM_TEXTS = 1500, 10000


def corpus_dataset(texts) -> list[dict]:
    """Sentences as samples ``{"text": str, "index": i}`` (what :class:`MLMCollate` reads)."""
    return [{"text": t, "index": i} for i, t in enumerate(texts)]


def pretrain_mlm(steps: int, num_texts: int = 10000, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                 log=print, **model_config) -> MaskedLanguageModel:
    """A :class:`MaskedLanguageModel` trained ``steps`` steps on the toy world's captions and
    questions (``num_texts`` of them, half each, from the train split); its word tokenizer, built
    on the same corpus, is ``model.tokenizer``."""
    corpus = world_corpus(num_texts // 2, num_texts - num_texts // 2)
    tok = Tokenizer.build(corpus)
    tm.manual_seed(seed)
    model = MaskedLanguageModel(len(tok), **model_config)
    model.tokenizer = tok
    loader = DataLoader(corpus_dataset(corpus), batch_size=batch_size, shuffle=True, seed=seed,
                        collate_fn=MLMCollate(tok, seed=seed))
    epochs = -(-steps // len(loader))
    opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    Trainer(model, opt, mlm_loss, loader, epochs=epochs, max_steps=steps, progress=False, log=log).fit()
    return model.eval()


def masked_token_accuracy(model: MaskedLanguageModel, num_texts: int = 1000, seed: int = 1) -> float:
    """Accuracy of the original token at the masked positions of held-out (val split) text."""
    corpus = world_corpus(num_texts // 2, num_texts - num_texts // 2, split="val")
    collate = MLMCollate(model.tokenizer, seed=seed)
    hits = total = 0
    model.eval()
    with tm.no_grad():
        for start in range(0, len(corpus), 256):
            batch = collate(corpus_dataset(corpus[start:start + 256]))
            pred = model(to_tensors(batch, "cpu")).numpy(force=True).argmax(-1)
            chosen = batch["labels"] != IGNORE
            hits += int((pred[chosen] == batch["labels"][chosen]).sum())
            total += int(chosen.sum())
    return hits / max(total, 1)


def fine_tune_text_cls(model, num_labelled: int, epochs: int, lr: float, batch_size: int = 16, seed: int = 0,
                       test_samples: int = 1000, weight_decay: float = 0.01, log=None) -> dict:
    """Fine-tune ``model`` (a :class:`~tinymm.models.TextClassifier` carrying its tokenizer) on the
    first ``num_labelled`` samples of ``text_cls``'s train split; return the test-split report of
    :func:`~tinymm.train.runs.evaluate_model` plus ``steps``."""
    rec = models.recipe("text_cls", tokenizer=model.tokenizer)
    train = load_task("text_cls", "train", num_samples=num_labelled)
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, seed=seed, collate_fn=rec.collate)
    opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    trainer = Trainer(model, opt, rec.loss, loader, epochs=epochs, progress=False, target_key=rec.target_key,
                      log=log or (lambda m: None))
    trainer.fit()
    res = evaluate_model(model, rec, "test", test_samples, batch_size=128)
    res["steps"] = int(trainer.step)
    return res


def text_cls_accuracy_table(rows: list[tuple[str, list[float]]], fractions: list[str]) -> str:
    """A plain-text table: one row per model, one column per label fraction (accuracy in %)."""
    width = max(len(name) for name, _ in rows) + 2
    lines = ["model".ljust(width) + "".join(f"{f:>12}" for f in fractions)]
    lines.append("-" * len(lines[0]))
    for name, accs in rows:
        lines.append(name.ljust(width) + "".join(f"{100 * a:>11.1f}%" for a in accs))
    return "\n".join(lines)

