"""Masked-token pretraining (BERT's objective) for :class:`~tinymm.models.text_transformer.TextTransformer`.

    text ──tokenise──► ids (B, T) ──mask_tokens──► inputs (B, T), labels (B, T)
    inputs ──TextTransformer──► states (B, T, C) ──LM head: dense → GELU → LayerNorm → decoder──► logits (B, T, V)
    loss = cross-entropy over the chosen positions only (labels = -100 elsewhere: ignored)

BERT's masking: each real, non-special token is chosen with probability 15 %; a chosen token is
replaced by ``[MASK]`` 80 % of the time, by a random word 10 % of the time and left as it is 10 %
of the time, and the model must predict the original at every chosen position. The unchanged
10 % keep the model from learning that only ``[MASK]`` positions matter; the random 10 % make
it check every token against its context.

After pretraining, ``model.encoder`` is a text encoder whose weights a downstream model loads
(:meth:`TextClassifier.from_pretrained` reads a saved ``MaskedLanguageModel`` folder directly).
The corpus for the toy world: :func:`world_corpus` (captions and questions, no labels).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinymm import nn
from tinymm.nn import functional as F
from tinymm.models.pretrained import register
from tinymm.models.text_transformer import TextTransformer, TextTransformerConfig
from tinymm.models.tokenizer_files import SavesTokenizer

IGNORE = -100  #: the label of positions that are not predicted (``cross_entropy``'s ignore_index)


def mask_tokens(ids: np.ndarray, real: np.ndarray, rng: np.random.Generator, *, mask_id: int,
                special_ids, vocab_size: int, prob: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """BERT's masking of a batch: ``(inputs, labels)``, both int64 (B, T).

    ``ids`` (B, T) token ids, ``real`` (B, T) True on real tokens. Candidates are real tokens
    that are not in ``special_ids``; each is chosen with probability ``prob``. A chosen position
    gets ``labels`` = its original id and, in ``inputs``, ``mask_id`` (80 %), a random non-special
    id (10 %) or itself (10 %). Every other position has label :data:`IGNORE`. If no position of
    the whole batch is chosen (possible for tiny batches), one random candidate is, so the loss is
    always defined.
    """
    ids = np.asarray(ids, dtype=np.int64)
    special = np.asarray(sorted(special_ids), dtype=np.int64)
    candidates = np.asarray(real, dtype=bool) & ~np.isin(ids, special)
    chosen = candidates & (rng.random(ids.shape) < prob)
    if not chosen.any() and candidates.any():
        flat = np.flatnonzero(candidates)
        chosen.flat[flat[rng.integers(len(flat))]] = True
    labels = np.where(chosen, ids, IGNORE)
    how = rng.random(ids.shape)
    inputs = ids.copy()
    inputs[chosen & (how < 0.8)] = mask_id
    words = np.setdiff1d(np.arange(vocab_size), special)
    swap = chosen & (how >= 0.8) & (how < 0.9)
    inputs[swap] = rng.choice(words, size=int(swap.sum()))
    return inputs, labels


@dataclass
class MLMCollate:
    """Collate for masked-token pretraining: samples ``{"text": str, ...}`` → ``text_ids`` (masked
    inputs), ``text_mask`` (True on real tokens) and ``labels`` (:func:`mask_tokens`).

    ``tokenizer`` is a word :class:`~tinymm.data.Tokenizer` (``[MASK]`` is id 4). The masks come
    from one generator seeded with ``seed``, so a run that draws the same batches in the same
    order masks them the same way.
    """

    tokenizer: object
    seed: int = 0
    prob: float = 0.15
    max_length: int | None = None
    rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self):
        self.rng = np.random.default_rng(self.seed)

    def __call__(self, samples) -> dict:
        tok = self.tokenizer
        enc = tok.batch_encode([s["text"] for s in samples], max_length=self.max_length)
        inputs, labels = mask_tokens(enc["input_ids"], enc["attention_mask"], self.rng, mask_id=tok.mask_id,
                                     special_ids=tok.special_ids, vocab_size=len(tok), prob=self.prob)
        return {"text_ids": inputs, "text_mask": np.asarray(enc["attention_mask"], dtype=bool), "labels": labels,
                "index": np.array([s.get("index", i) for i, s in enumerate(samples)], dtype=np.int64)}


class LMHead(nn.Module):
    """BERT's prediction head: states (B, T, C) → dense → GELU → LayerNorm → logits (B, T, V)."""

    def __init__(self, dim: int, vocab_size: int):
        super().__init__()
        self.dense = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.decoder = nn.Linear(dim, vocab_size)

    def forward(self, h):
        return self.decoder(self.norm(F.gelu(self.dense(h))))                # (B, T, V)


@register
class MaskedLanguageModel(SavesTokenizer, nn.Module):
    """A :class:`TextTransformer` (``self.encoder``) plus an :class:`LMHead`; takes the same
    arguments as the encoder. ``forward(batch)`` reads ``text_ids``/``text_mask`` (the
    :class:`MLMCollate` keys) and returns logits (B, T, V); :func:`mlm_loss` is its loss.
    ``save_pretrained`` writes ``model.tokenizer`` (when set) beside the weights."""

    def __init__(self, vocab_size: int, dim: int = 64, depth: int = 2, heads: int = 4, ff_dim: int = 256,
                 max_len: int = 64, dropout: float = 0.1, pooling: str = "mean", pad_id: int = 0):
        super().__init__()
        self.config = TextTransformerConfig(vocab_size, dim, depth, heads, ff_dim, max_len, dropout, pooling, pad_id)
        self.encoder = TextTransformer(vocab_size, dim, depth, heads, ff_dim, max_len, dropout, pooling, pad_id)
        self.head = LMHead(dim, vocab_size)
        self.tokenizer = None  # the word tokenizer of its corpus; save_pretrained writes it too

    def forward(self, batch):
        states = self.encoder.encode(batch["text_ids"], batch["text_mask"])  # (B, T, C)
        return self.head(states)                                              # (B, T, V)


def mlm_loss(logits, batch):
    """Mean cross-entropy over the chosen positions (labels != :data:`IGNORE`) only."""
    v = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, v), batch["labels"].reshape(-1), ignore_index=IGNORE)


def world_corpus(num_captions: int = 5000, num_questions: int = 5000, split: str = "train") -> list[str]:
    """Unlabelled text of the toy world: ``retrieval`` captions (1-3 objects) and ``vqa`` questions."""
    from tinymm.data import load_task

    caps = load_task("retrieval", split, num_samples=num_captions)
    qs = load_task("vqa", split, num_samples=num_questions)
    return [caps.world.caption(i) for i in range(len(caps))] + [qs.world.question(i)[0] for i in range(len(qs))]
