"""A word-level tokenizer, written from scratch (floor 6: NumPy only).

Text → tokens → ids, in three small steps:

1. **normalise**: Unicode NFC (so "café" typed as one code point or as "e" plus a combining
   accent is the same word, as documented tokenizers do), then lower-case (optional; on by
   default);
2. **split**: a token is a run of letters/digits/underscores (``\\w+``) or a single punctuation
   character (anything that is neither a word character nor white space).  The five special
   tokens written literally in a text (``"a [MASK] cat"``) are kept whole and never lower-cased,
   so a masked sentence can be written by hand;
3. **look up**: each token's id in the vocabulary; a token that is not there becomes ``[UNK]``.

The vocabulary always starts with the special tokens, in this order and with these ids::

    [PAD]=0  [UNK]=1  [CLS]=2  [SEP]=3  [MASK]=4

followed by the corpus words, most frequent first and alphabetical among equal counts, so the
same corpus always gives the same ids.  ``encode`` wraps a text as ``[CLS] … [SEP]`` (BERT's
convention); ``batch_encode`` truncates, pads with ``[PAD]`` and returns an attention mask
(``True`` on real tokens).  ``save``/``load`` use a small JSON file, written atomically.

The *normalised form* of a text is ``" ".join(tokenizer.tokenize(text))``; for a text whose
words are all in the vocabulary, ``decode(encode(text)) == normalised form``.
"""
from __future__ import annotations

import json
import os
import re
import unicodedata
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

from tinymm._atomic import atomic_write

__all__ = [
    "PAD",
    "UNK",
    "CLS",
    "SEP",
    "MASK",
    "SPECIAL_TOKENS",
    "Tokenizer",
    "TokenizerFileError",
]

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, CLS, SEP, MASK)

_FORMAT = "tinymm.tokenizer"
_VERSION = 1

# Special tokens first (so "[MASK]" is not split into "[", "mask", "]"), then words, then any
# single character that is neither a word character nor white space (punctuation, symbols).
_TOKEN_RE = re.compile(
    "|".join(re.escape(t) for t in SPECIAL_TOKENS) + r"|\w+|[^\w\s]", flags=re.UNICODE
)

_PADDING_CHOICES = ("longest", "max_length", False)


class TokenizerFileError(ValueError):
    """A tokenizer file that is not valid JSON, or not a tinymm tokenizer, or damaged."""


def _check_text(name: str, text) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{name}: expected a str, got {type(text).__name__}")
    return text


class Tokenizer:
    """Word-level tokenizer with ``[PAD] [UNK] [CLS] [SEP] [MASK]``.

    Build one from a corpus with :meth:`Tokenizer.build`, or pass a vocabulary list whose first
    five entries are the special tokens in order (``SPECIAL_TOKENS``).
    """

    def __init__(self, vocab: Sequence[str], lowercase: bool = True):
        if isinstance(vocab, (str, bytes, dict)) or not hasattr(vocab, "__iter__") or (
                isinstance(vocab, np.ndarray) and vocab.ndim != 1):
            raise TypeError(f"Tokenizer: vocab must be a list of token strings, got {type(vocab).__name__}")
        # entries in NFC, as tokenize() produces them (a duplicate after that is refused below)
        vocab = [unicodedata.normalize("NFC", t) if isinstance(t, str) else t for t in vocab]
        if tuple(vocab[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(
                f"Tokenizer: the vocabulary must start with {list(SPECIAL_TOKENS)}, "
                f"got {vocab[: len(SPECIAL_TOKENS)]}"
            )
        for i, tok in enumerate(vocab):
            if not isinstance(tok, str) or not tok:
                raise ValueError(f"Tokenizer: vocabulary entry {i} is {tok!r}, expected a non-empty str")
        index = {}
        for i, tok in enumerate(vocab):
            if tok in index:
                raise ValueError(f"Tokenizer: token {tok!r} appears twice (ids {index[tok]} and {i})")
            index[tok] = i
        if not isinstance(lowercase, bool):
            raise TypeError(f"Tokenizer: lowercase must be a bool, got {type(lowercase).__name__}")
        self._vocab: list[str] = vocab
        self._index: dict[str, int] = index
        self.lowercase = lowercase

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls,
        corpus: Iterable[str],
        min_freq: int = 1,
        max_size: int | None = None,
        lowercase: bool = True,
    ) -> "Tokenizer":
        """Build a vocabulary from ``corpus`` (an iterable of strings).

        Words seen fewer than ``min_freq`` times are left out (they will encode as ``[UNK]``).
        ``max_size`` caps the whole vocabulary, special tokens included (so it must be at least
        5); the least frequent words are dropped first.  Order: frequency descending, then
        alphabetical, so the result does not depend on the order of the corpus.
        """
        if isinstance(corpus, str):
            raise TypeError("Tokenizer.build: corpus must be an iterable of strings, got a single str")
        if not hasattr(corpus, "__iter__") or (isinstance(corpus, np.ndarray) and corpus.ndim == 0):
            raise TypeError(f"Tokenizer.build: corpus must be an iterable of strings, got {type(corpus).__name__}")
        if isinstance(min_freq, bool) or not isinstance(min_freq, (int, np.integer)) or min_freq < 1:
            raise ValueError(f"Tokenizer.build: min_freq must be an int >= 1, got {min_freq!r}")
        if max_size is not None and (
            isinstance(max_size, bool)
            or not isinstance(max_size, (int, np.integer))
            or max_size < len(SPECIAL_TOKENS)
        ):
            raise ValueError(
                f"Tokenizer.build: max_size must be None or an int >= {len(SPECIAL_TOKENS)} "
                f"(the special tokens count), got {max_size!r}"
            )
        probe = cls(list(SPECIAL_TOKENS), lowercase=lowercase)
        counts: Counter[str] = Counter()
        for i, text in enumerate(corpus):
            if not isinstance(text, str):
                raise TypeError(f"Tokenizer.build: corpus item {i} is {type(text).__name__}, expected str")
            counts.update(t for t in probe.tokenize(text) if t not in probe._index)
        words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max_size - len(SPECIAL_TOKENS)]
        return cls(list(SPECIAL_TOKENS) + words, lowercase=lowercase)

    # ------------------------------------------------------------------ vocabulary

    @property
    def vocab(self) -> list[str]:
        """The tokens, in id order (a copy)."""
        return list(self._vocab)

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    def __len__(self) -> int:
        return len(self._vocab)

    def __contains__(self, token: str) -> bool:
        return token in self._index

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    @property
    def cls_id(self) -> int:
        return 2

    @property
    def sep_id(self) -> int:
        return 3

    @property
    def mask_id(self) -> int:
        return 4

    @property
    def special_ids(self) -> tuple[int, ...]:
        return tuple(range(len(SPECIAL_TOKENS)))

    def token_to_id(self, token: str) -> int:
        """The id of ``token``, or ``unk_id`` when it is not in the vocabulary."""
        return self._index.get(token, self.unk_id)

    def id_to_token(self, i: int) -> str:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"Tokenizer.id_to_token: expected an int id, got {type(i).__name__}")
        if not 0 <= i < len(self._vocab):
            raise IndexError(f"Tokenizer: id {int(i)} is outside the vocabulary [0, {len(self._vocab)})")
        return self._vocab[int(i)]

    # ------------------------------------------------------------------ text <-> ids

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into tokens (lower-cased unless ``lowercase=False``)."""
        _check_text("Tokenizer.tokenize", text)
        tokens = _TOKEN_RE.findall(unicodedata.normalize("NFC", text))
        if self.lowercase:
            # lower() can leave a decomposed form ("İ" -> "i" + dot above): normalise again
            tokens = [t if t in SPECIAL_TOKENS else unicodedata.normalize("NFC", t.lower()) for t in tokens]
        return tokens

    def normalize(self, text: str) -> str:
        """The normalised form of ``text``: its tokens joined by single spaces."""
        return " ".join(self.tokenize(text))

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text``; ``[CLS] … [SEP]`` around them when ``add_special_tokens``."""
        _check_text("Tokenizer.encode", text)
        ids = [self._index.get(t, 1) for t in self.tokenize(text)]
        if add_special_tokens:
            ids = [self.cls_id] + ids + [self.sep_id]
        return ids

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        """Tokens of ``ids`` joined by spaces.

        ``skip_special_tokens`` drops ``[PAD] [CLS] [SEP]`` (the framing); ``[UNK]`` and
        ``[MASK]`` stand for a word and are always kept.
        """
        try:
            arr = np.asarray(ids)
        except (ValueError, TypeError):
            raise ValueError("Tokenizer.decode: expected a 1-D sequence of int ids, got a ragged or mixed sequence") from None
        if arr.ndim != 1:
            raise ValueError(f"Tokenizer.decode: expected a 1-D sequence of ids, got shape {tuple(arr.shape)}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"Tokenizer.decode: ids must be integers, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= len(self._vocab)):
            bad = int(arr[(arr < 0) | (arr >= len(self._vocab))][0])
            raise IndexError(f"Tokenizer.decode: id {bad} is outside the vocabulary [0, {len(self._vocab)})")
        skip = {self.pad_id, self.cls_id, self.sep_id} if skip_special_tokens else set()
        return " ".join(self._vocab[i] for i in arr.tolist() if i not in skip)

    def batch_encode(
        self,
        texts: Sequence[str],
        max_length: int | None = None,
        padding="longest",
        truncation: bool = True,
        add_special_tokens: bool = True,
    ) -> dict:
        """Encode a batch of texts into padded arrays.

        Returns ``{"input_ids": int64 (B, L), "attention_mask": bool (B, L), "lengths": int64 (B,)}``
        where ``attention_mask`` is ``True`` on real tokens and ``lengths`` counts them.

        - ``truncation=True`` with ``max_length``: longer sequences are cut to ``max_length``,
          keeping ``[CLS]`` first and ``[SEP]`` last.  With ``truncation=False`` a longer sequence
          is an error.
        - ``padding="longest"`` pads to the longest sequence of the batch; ``"max_length"`` pads to
          ``max_length`` (which is then required); ``False`` pads nothing, so all sequences must
          already have the same length.
        """
        if isinstance(texts, str):
            raise TypeError("Tokenizer.batch_encode: expected a list of strings, got a single str")
        if not hasattr(texts, "__iter__") or (isinstance(texts, np.ndarray) and texts.ndim == 0):
            raise TypeError(f"Tokenizer.batch_encode: expected a list of strings, got {type(texts).__name__}")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"Tokenizer.batch_encode: text {i} is {type(t).__name__}, expected str")
        if padding is True:
            padding = "longest"
        if not (padding is False or (isinstance(padding, str) and padding in ("longest", "max_length"))):
            raise ValueError(f"Tokenizer.batch_encode: padding must be one of {_PADDING_CHOICES}, got {padding!r}")
        n_special = 2 if add_special_tokens else 0
        if max_length is not None:
            if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < max(
                n_special, 1
            ):
                raise ValueError(
                    f"Tokenizer.batch_encode: max_length must be an int >= {max(n_special, 1)}, got {max_length!r}"
                )
            max_length = int(max_length)
        if padding == "max_length" and max_length is None:
            raise ValueError("Tokenizer.batch_encode: padding='max_length' needs max_length")

        seqs = [self.encode(t, add_special_tokens=add_special_tokens) for t in texts]
        if max_length is not None:
            for i, s in enumerate(seqs):
                if len(s) <= max_length:
                    continue
                if not truncation:
                    raise ValueError(
                        f"Tokenizer.batch_encode: text {i} has {len(s)} tokens > max_length={max_length} "
                        "and truncation=False"
                    )
                seqs[i] = s[: max_length - 1] + [s[-1]] if add_special_tokens else s[:max_length]

        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        if padding == "max_length":
            width = max_length
        else:
            width = int(lengths.max()) if len(seqs) else 0
            if padding is False and len(set(lengths.tolist())) > 1:
                raise ValueError(
                    "Tokenizer.batch_encode: padding=False but the sequences have different lengths "
                    f"({sorted(set(lengths.tolist()))}); use padding='longest' or 'max_length'"
                )
        input_ids = np.full((len(seqs), width), self.pad_id, dtype=np.int64)
        for i, s in enumerate(seqs):
            input_ids[i, : len(s)] = s
        attention_mask = np.arange(width)[None, :] < lengths[:, None]
        return {"input_ids": input_ids, "attention_mask": attention_mask, "lengths": lengths}

    def __call__(self, texts, **kwargs) -> dict:
        """Shorthand for :meth:`batch_encode`."""
        return self.batch_encode(texts, **kwargs)

    # ------------------------------------------------------------------ files

    def to_dict(self) -> dict:
        return {"format": _FORMAT, "version": _VERSION, "lowercase": self.lowercase, "vocab": list(self._vocab)}

    @classmethod
    def from_dict(cls, d, source: str = "dict") -> "Tokenizer":
        if not isinstance(d, dict) or d.get("format") != _FORMAT:
            raise TokenizerFileError(f"{source} is not a tinymm tokenizer file (no \"format\": \"{_FORMAT}\")")
        if d.get("version") != _VERSION:
            raise TokenizerFileError(f"{source}: unsupported tokenizer version {d.get('version')!r}, expected {_VERSION}")
        vocab, lowercase = d.get("vocab"), d.get("lowercase")
        if not isinstance(vocab, list) or not isinstance(lowercase, bool):
            raise TokenizerFileError(f"{source}: damaged tokenizer file (\"vocab\" must be a list, \"lowercase\" a bool)")
        try:
            return cls(vocab, lowercase=lowercase)
        except (TypeError, ValueError) as e:
            raise TokenizerFileError(f"{source}: damaged tokenizer file: {e}") from None

    def save(self, path) -> None:
        """Write the tokenizer as JSON, atomically (a temporary file, then a rename)."""
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=1)
        atomic_write(path, lambda f: f.write(text.encode("utf-8")))

    @classmethod
    def load(cls, path) -> "Tokenizer":
        """Read a file written by :meth:`save`; anything else raises :class:`TokenizerFileError`."""
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TokenizerFileError(f"{path} is not a valid JSON tokenizer file ({e})") from None
        return cls.from_dict(d, source=path)

    def __eq__(self, other) -> bool:
        return isinstance(other, Tokenizer) and self._vocab == other._vocab and self.lowercase == other.lowercase

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase})"
