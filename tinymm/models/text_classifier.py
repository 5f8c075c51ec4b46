"""Text classification: a text encoder, pooling, a new linear head (the seed's §5.2).

    batch["caption_ids"] (B, T), batch["caption_mask"] (B, T)
      ──encoder──► states (B, T, C) ──pool over real tokens──► (B, C) ──dropout → Linear──► logits (B, K)

Three encoders (``encoder=``):

- ``"transformer"``: :class:`~tinymm.models.text_transformer.TextTransformer` over the word
  tokenizer's ids (tinymm's own, possibly masked-token pretrained);
- ``"bert"``: :class:`~tinymm.models.bert.BertModel` over WordPiece ids (a pretrained
  Hugging Face BERT such as all-MiniLM-L6-v2, or the same architecture from random init);
- ``"gru"``: :class:`~tinymm.models.text.GRUTextEncoder` (its last real state; a baseline).

The tokenizer belongs to the encoder, so the model carries it (``model.tokenizer``) and
``save_pretrained`` writes it beside the weights (``tokenizer.json`` for a word tokenizer,
``vocab.txt`` + ``tokenizer_config.json`` for WordPiece); build the task's collate from it:
``models.recipe("text_cls", tokenizer=model.tokenizer)``.

    clf = TextClassifier.from_pretrained("all-MiniLM-L6-v2", num_labels=4)   # BERT + new head
    clf = TextClassifier.from_pretrained("runs/mlm", num_labels=4)           # tinymm's MLM encoder
    clf.save_pretrained("runs/clf"); TextClassifier.from_pretrained("runs/clf")  # same model
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tinymm import nn
from tinymm.data.wordpiece import WordPieceTokenizer
from tinymm.models.bert import BertConfig, BertModel
from tinymm.models.pretrained import from_pretrained as _load_tinymm, read_config, register
from tinymm.models.sentence_encoder import PretrainedNotFoundError, resolve_pretrained
from tinymm.models.text import GRUTextEncoder
from tinymm.models.text_transformer import POOLINGS, TextTransformer, mask_array, masked_mean
from tinymm.models.tokenizer_files import SavesTokenizer, load_tokenizer
from tinymm.serialization import CheckpointError, load

ENCODERS = ("transformer", "bert", "gru")


@dataclass
class TextClassifierConfig:
    num_labels: int
    encoder: str = "transformer"
    encoder_config: dict = field(default_factory=dict)
    pooling: str = "mean"
    text_key: str = "caption"
    dropout: float = 0.1


def _build_encoder(kind: str, cfg: dict):
    if kind == "transformer":
        enc = TextTransformer(**cfg)
        return enc, enc.config.dim
    if kind == "bert":
        enc = BertModel(BertConfig.from_dict(cfg), add_pooling_layer=False)
        return enc, enc.config.hidden_size
    if kind == "gru":
        enc = GRUTextEncoder(**cfg)
        return enc, enc.gru.hidden_size
    raise ValueError(f"TextClassifier: encoder must be one of {ENCODERS}, got {kind!r}")


@register
class TextClassifier(SavesTokenizer, nn.Module):
    """Encoder + pooling + a linear head; ``forward(batch)`` → logits (B, num_labels).

    ``vocab_size`` is a shortcut for ``encoder_config["vocab_size"]`` (what
    :func:`tinymm.models.build` passes from the task's tokenizer).
    """

    def __init__(self, num_labels: int, encoder: str = "transformer", encoder_config: dict | None = None,
                 pooling: str = "mean", text_key: str = "caption", dropout: float = 0.1,
                 vocab_size: int | None = None):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"TextClassifier: pooling must be one of {POOLINGS}, got {pooling!r}")
        if num_labels < 1:
            raise ValueError(f"TextClassifier: num_labels must be positive, got {num_labels}")
        cfg = dict(encoder_config or {})
        if vocab_size is not None:
            cfg["vocab_size"] = vocab_size
        if encoder == "transformer":
            cfg.setdefault("pooling", pooling)
        self.config = TextClassifierConfig(num_labels, encoder, cfg, pooling, text_key, dropout)
        self.encoder, width = _build_encoder(encoder, cfg)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, num_labels)
        self.tokenizer = None  # set by from_pretrained or the caller; save_pretrained writes it too

    def features(self, ids, mask):
        """The pooled text features (B, C) the head reads."""
        kind, pooling = self.config.encoder, self.config.pooling
        if kind == "gru":
            final, _ = self.encoder(ids, mask)                                # (B, H): the last real token's state
            return final
        if kind == "transformer":
            states = self.encoder.encode(ids, mask)                           # (B, T, C)
        else:
            states, _ = self.encoder(ids, mask_array(mask))                   # (B, T, C)
        return states[:, 0] if pooling == "cls" else masked_mean(states, mask)  # (B, C)

    def forward(self, batch):
        key = self.config.text_key
        pooled = self.features(batch[f"{key}_ids"], batch[f"{key}_mask"])   # (B, C)
        return self.head(self.dropout(pooled))                                # (B, K)

    # ------------------------------------------------------------------ files
    @classmethod
    def from_pretrained(cls, name_or_path, num_labels: int | None = None, device: str = "cpu", **config):
        """A classifier from a saved one, or a pretrained encoder plus a new head of ``num_labels``.

        ``name_or_path``: a folder written by ``TextClassifier.save_pretrained`` (loaded as it
        is; ``num_labels`` may be omitted, and if given must match), by ``save_pretrained`` of a
        :class:`~tinymm.models.mlm.MaskedLanguageModel` or a :class:`TextTransformer` (its encoder
        weights; the folder's ``tokenizer.json`` is the tokenizer), a Hugging Face BERT folder
        (``config.json`` with ``model_type`` bert, ``model.safetensors``, ``vocab.txt``), or a
        known model name (``"all-MiniLM-L6-v2"``). ``config`` overrides the new model's
        ``pooling``/``dropout``/``text_key``. The new head is initialised from the global seed
        (``tinymm.manual_seed``).
        """
        folder = Path(resolve_pretrained(name_or_path))
        doc = _read_doc(folder)
        if doc is not None and doc.get("format") == "tinymm-pretrained":
            kind = doc.get("class")
            if kind == cls.__name__:
                model = _load_tinymm(folder, device="cpu", expected=cls)
                if num_labels is not None and num_labels != model.config.num_labels:
                    raise CheckpointError(f"TextClassifier.from_pretrained: {folder} has {model.config.num_labels} "
                                          f"labels, asked for {num_labels}")
                model.tokenizer = load_tokenizer(folder)
                return model.to(device)
            if kind not in ("MaskedLanguageModel", "TextTransformer"):
                raise CheckpointError(f"TextClassifier.from_pretrained: {folder} holds a {kind}, not a text encoder "
                                      "(TextClassifier, MaskedLanguageModel or TextTransformer)")
            _need_labels(num_labels, folder)
            enc_cfg = dict(doc["config"])
            if "pooling" in config:
                enc_cfg["pooling"] = config["pooling"]
            model = cls(num_labels, "transformer", enc_cfg, **{"pooling": enc_cfg.get("pooling", "mean"), **config})
            weights = load(folder / "model.safetensors")
            prefix = "encoder." if kind == "MaskedLanguageModel" else ""
            own = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
            _load_strict(model.encoder, own, folder)
            model.tokenizer = load_tokenizer(folder)
            return model.to(device)
        # a Hugging Face BERT folder
        _need_labels(num_labels, folder)
        for needed in ("config.json", "model.safetensors", "vocab.txt"):
            if not (folder / needed).is_file():
                raise PretrainedNotFoundError(f"TextClassifier.from_pretrained: {folder} has no {needed}: "
                                              "neither a tinymm model folder nor a BERT folder")
        bert_cfg = BertConfig.from_json_file(folder / "config.json")
        model = cls(num_labels, "bert", bert_cfg.to_dict(), **{"pooling": "mean", **config})
        weights = {k: v for k, v in load(folder / "model.safetensors").items()
                   if not k.startswith("pooler.") and k not in BertModel._IGNORED_KEYS}
        _load_strict(model.encoder, weights, folder)
        model.tokenizer = WordPieceTokenizer.from_pretrained(folder)
        return model.to(device)


def _read_doc(folder: Path):
    path = folder / "config.json"
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"TextClassifier.from_pretrained: {path} is not valid JSON ({e})") from None
    if isinstance(doc, dict) and doc.get("format") == "tinymm-pretrained":
        read_config(folder)  # checks the layout
    return doc if isinstance(doc, dict) else None


def _need_labels(num_labels, folder):
    if num_labels is None or isinstance(num_labels, bool) or int(num_labels) < 1:
        raise ValueError(f"TextClassifier.from_pretrained: {folder} holds an encoder only; pass num_labels=K "
                         f"(a positive int) for the new head, got {num_labels!r}")


def _load_strict(module, state: dict, folder):
    try:
        module.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"TextClassifier.from_pretrained: the weights in {folder} do not fit the encoder: {e}") from None
