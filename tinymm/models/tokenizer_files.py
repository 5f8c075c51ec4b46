"""A model's tokenizer as files beside its weights (``save_pretrained`` folders).

A word :class:`~tinymm.data.Tokenizer` is ``tokenizer.json``; a
:class:`~tinymm.data.wordpiece.WordPieceTokenizer` is ``vocab.txt`` + ``tokenizer_config.json``,
the Hugging Face layout, so such a folder also loads with ``WordPieceTokenizer.from_pretrained``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from tinymm._atomic import atomic_write
from tinymm.data import Tokenizer
from tinymm.data.wordpiece import WordPieceTokenizer
from tinymm.models.pretrained import PretrainedMixin, from_pretrained, save_pretrained

_WORDPIECE_OPTIONS = ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "model_max_length",
                      "unk_token", "cls_token", "sep_token", "pad_token", "mask_token")


def save_tokenizer(tokenizer, folder) -> None:
    """Write ``tokenizer`` into ``folder`` in the form :func:`load_tokenizer` reads (nothing for None)."""
    folder = Path(os.fspath(folder))
    if tokenizer is None:
        return
    if isinstance(tokenizer, Tokenizer):
        tokenizer.save(folder / "tokenizer.json")
    elif isinstance(tokenizer, WordPieceTokenizer):
        vocab = "".join(t + "\n" for t in tokenizer.vocab).encode("utf-8")
        atomic_write(folder / "vocab.txt", lambda f: f.write(vocab))
        opts = {k: getattr(tokenizer, k) for k in _WORDPIECE_OPTIONS}
        atomic_write(folder / "tokenizer_config.json", lambda f: f.write(json.dumps(opts, indent=1).encode()))
    else:
        raise TypeError(f"save_pretrained: cannot save a tokenizer of type {type(tokenizer).__name__}")


def load_tokenizer(folder):
    """The tokenizer saved in ``folder``: ``tokenizer.json`` (word) or ``vocab.txt`` (WordPiece); None if neither."""
    folder = Path(os.fspath(folder))
    if (folder / "tokenizer.json").is_file():
        return Tokenizer.load(folder / "tokenizer.json")
    if (folder / "vocab.txt").is_file():
        return WordPieceTokenizer.from_pretrained(folder)
    return None


class SavesTokenizer(PretrainedMixin):
    """``save_pretrained(folder)`` / ``from_pretrained(folder)`` that also write / read ``model.tokenizer``."""

    tokenizer = None

    def save_pretrained(self, folder) -> Path:
        folder = save_pretrained(self, folder)
        save_tokenizer(self.tokenizer, folder)
        return folder

    @classmethod
    def from_pretrained(cls, folder, device: str = "cpu"):
        model = from_pretrained(folder, device=device, expected=cls)
        model.tokenizer = load_tokenizer(folder)
        return model
