"""BERT's WordPiece tokenizer, written from scratch (floor 6: NumPy only).

It reads a BERT ``vocab.txt`` (one token a line, the line number is the id) and turns text into
the ids a pretrained BERT expects, in two stages.

**Basic tokenisation** (the same for every BERT vocabulary):

1. *clean*: drop NUL, U+FFFD and control/format characters (Unicode category C*, except tab,
   newline and carriage return); every white-space character becomes a space;
2. *CJK*: put spaces around every CJK ideograph, so each one becomes its own token;
3. *split* on white space; then, word by word, lower-case (character by character, as the Rust
   tokenizers do) and strip accents (NFD, then drop the combining marks, category Mn) when the
   tokenizer config says so;
4. *punctuation*: every punctuation character is its own token. "Punctuation" is BERT's
   definition: Unicode category P*, plus every non-letter, non-digit printable ASCII character
   (``$ + < = > ^ ` | ~`` are symbols to Unicode, punctuation to BERT).

**Word pieces**: each word is cut greedily, longest match first: the longest prefix found in the
vocabulary, then the longest following piece found as ``##piece``, and so on. A word that cannot
be covered that way, or that is longer than ``max_input_chars_per_word`` characters, becomes one
``[UNK]``.

Special tokens written literally in a text (``"a [MASK] b"``) are kept whole (case-sensitive).
``encode`` wraps ids as ``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]`` (token types 0 then 1);
calling the tokenizer on a list of texts truncates, pads with ``[PAD]`` and returns NumPy arrays
``input_ids``, ``token_type_ids`` and ``attention_mask`` (int64, 1 on real tokens), as the
Hugging Face tokenizers do.
"""
from __future__ import annotations

import json
import os
import re
import unicodedata
from typing import Sequence

import numpy as np

__all__ = ["WordPieceTokenizer", "is_punctuation", "is_cjk"]

# Code-point ranges of the CJK Unified Ideographs blocks (BERT's definition of a "Chinese
# character"). Hangul, Hiragana and Katakana are not in them: they are split by white space only.
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


def is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def is_punctuation(ch: str) -> bool:
    """BERT's punctuation: Unicode P*, or any printable ASCII that is not a letter or digit."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_dropped(ch: str) -> bool:
    """NUL, the replacement character and control/format characters (tab, newline, CR are white space)."""
    if ch in "\t\n\r":
        return False
    return ch == "\x00" or ch == "\ufffd" or unicodedata.category(ch).startswith("C")


def _lower(word: str) -> str:
    """Lower-case character by character. ``str.lower`` alone would turn a word-final capital
    sigma into the final form ς; the Rust tokenizer behind ``transformers.BertTokenizer`` (and
    sentence-transformers) lower-cases each character on its own and gives σ, which is what the
    pretrained models see."""
    if "\u03a3" not in word:
        return word.lower()
    return "".join(ch.lower() for ch in word)


def _strip_accents(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")


class WordPieceTokenizer:
    """A BERT tokenizer over a fixed vocabulary (see the module docstring).

    ``vocab``: the tokens in id order. ``do_lower_case`` lower-cases; ``strip_accents`` None
    follows ``do_lower_case`` (BERT's rule), True/False forces it. ``model_max_length`` is the
    default truncation length (the model's position-embedding count).
    """

    def __init__(
        self,
        vocab: Sequence[str],
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        max_input_chars_per_word: int = 100,
        model_max_length: int = 512,
        unk_token: str = "[UNK]",
        cls_token: str = "[CLS]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        mask_token: str = "[MASK]",
    ):
        self.vocab = list(vocab)
        self.token_to_id = {}
        for i, tok in enumerate(self.vocab):
            self.token_to_id.setdefault(tok, i)  # a duplicated line keeps its first id
        self.do_lower_case = bool(do_lower_case)
        self.strip_accents = self.do_lower_case if strip_accents is None else bool(strip_accents)
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        self.max_input_chars_per_word = int(max_input_chars_per_word)
        self.model_max_length = int(model_max_length)
        self.unk_token, self.cls_token, self.sep_token = unk_token, cls_token, sep_token
        self.pad_token, self.mask_token = pad_token, mask_token
        for name in ("unk_token", "cls_token", "sep_token", "pad_token"):
            if getattr(self, name) not in self.token_to_id:
                raise ValueError(f"WordPieceTokenizer: {name} {getattr(self, name)!r} is not in the vocabulary")
        self.unk_id = self.token_to_id[unk_token]
        self.cls_id = self.token_to_id[cls_token]
        self.sep_id = self.token_to_id[sep_token]
        self.pad_id = self.token_to_id[pad_token]
        specials = [t for t in (unk_token, cls_token, sep_token, pad_token, mask_token) if t in self.token_to_id]
        # Longest first, so that one special token that is a prefix of another never wins.
        self._special_re = re.compile("(" + "|".join(re.escape(t) for t in sorted(specials, key=len, reverse=True)) + ")")
        self._specials = frozenset(specials)
        self._piece_cache: dict[str, tuple[int, ...]] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_vocab(cls, path, **options) -> "WordPieceTokenizer":
        """Read a ``vocab.txt`` (UTF-8, one token a line); ``options`` go to the constructor."""
        path = os.fspath(path)
        with open(path, encoding="utf-8") as f:
            vocab = [line.rstrip("\n") for line in f]
        if vocab and vocab[-1] == "":
            vocab.pop()  # a trailing newline is not a token
        if not vocab:
            raise ValueError(f"WordPieceTokenizer.from_vocab: {path} holds no tokens")
        return cls(vocab, **options)

    @classmethod
    def from_pretrained(cls, directory, **overrides) -> "WordPieceTokenizer":
        """``vocab.txt`` plus the options that ``tokenizer_config.json`` sets, when present
        (``do_lower_case``, ``strip_accents``, ``tokenize_chinese_chars``, ``model_max_length``
        and the special tokens); ``overrides`` win over the file."""
        directory = os.fspath(directory)
        options = {}
        cfg_path = os.path.join(directory, "tokenizer_config.json")
        if os.path.isfile(cfg_path):
            with open(cfg_path, encoding="utf-8") as f:
                cfg = json.load(f)
            for key in ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "model_max_length",
                        "unk_token", "cls_token", "sep_token", "pad_token", "mask_token"):
                value = cfg.get(key)
                if isinstance(value, dict):  # an AddedToken written out as a dict
                    value = value.get("content")
                if value is not None:
                    options[key] = value
            if options.get("model_max_length", 0) > 10**6:  # "no limit" is written as a huge number
                del options["model_max_length"]
        options.update(overrides)
        return cls.from_vocab(os.path.join(directory, "vocab.txt"), **options)

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return (f"WordPieceTokenizer(vocab_size={len(self.vocab)}, do_lower_case={self.do_lower_case}, "
                f"strip_accents={self.strip_accents}, model_max_length={self.model_max_length})")

    # ------------------------------------------------------------------ text -> tokens
    def basic_tokenize(self, text: str) -> list[str]:
        """Clean, split on white space and punctuation, isolate CJK characters, normalise case
        and accents: the words before word pieces."""
        chars = []
        for ch in text:
            if _is_dropped(ch):
                continue
            if _is_whitespace(ch):
                chars.append(" ")
            elif self.tokenize_chinese_chars and is_cjk(ch):
                chars.extend((" ", ch, " "))
            else:
                chars.append(ch)
        words = []
        for word in "".join(chars).split():
            if self.do_lower_case:
                word = _lower(word)
            if self.strip_accents:
                word = _strip_accents(word)
            start = 0
            for i, ch in enumerate(word):
                if is_punctuation(ch):
                    if i > start:
                        words.append(word[start:i])
                    words.append(ch)
                    start = i + 1
            if start < len(word):
                words.append(word[start:])
        return words

    def _word_piece_ids(self, word: str) -> tuple[int, ...]:
        """Greedy longest-match-first pieces of one word, as ids; ``(unk_id,)`` when impossible."""
        cached = self._piece_cache.get(word)
        if cached is not None:
            return cached
        ids = []
        if len(word) > self.max_input_chars_per_word:
            ids = [self.unk_id]
        else:
            start, n = 0, len(word)
            while start < n:
                for end in range(n, start, -1):
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    tid = self.token_to_id.get(piece)
                    if tid is not None:
                        ids.append(tid)
                        start = end
                        break
                else:  # no piece starting here: the whole word is unknown
                    ids = [self.unk_id]
                    break
        out = tuple(ids)
        if len(self._piece_cache) < 200_000:
            self._piece_cache[word] = out
        return out

    def _text_ids(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"WordPieceTokenizer: expected a str, got {type(text).__name__}")
        ids: list[int] = []
        for chunk in self._special_re.split(text):
            if chunk in self._specials:
                ids.append(self.token_to_id[chunk])
            elif chunk:
                for word in self.basic_tokenize(chunk):
                    ids.extend(self._word_piece_ids(word))
        return ids

    def tokenize(self, text: str) -> list[str]:
        """The word pieces of ``text`` (no special tokens added)."""
        return [self.vocab[i] for i in self._text_ids(text)]

    def convert_tokens_to_ids(self, tokens):
        if isinstance(tokens, str):
            return self.token_to_id.get(tokens, self.unk_id)
        return [self.token_to_id.get(t, self.unk_id) for t in tokens]

    def convert_ids_to_tokens(self, ids):
        if isinstance(ids, (int, np.integer)):
            return self.vocab[int(ids)]
        return [self.vocab[int(i)] for i in ids]

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        """Pieces joined back into words (``##`` pieces glued on); lossy by design (case, accents,
        spacing around punctuation are gone)."""
        words: list[str] = []
        for tok in self.convert_ids_to_tokens(ids):
            if skip_special_tokens and tok in self._specials and tok != self.unk_token:
                continue
            if tok.startswith("##") and words:
                words[-1] += tok[2:]
            else:
                words.append(tok)
        return " ".join(words)

    # ------------------------------------------------------------------ ids with special tokens
    @staticmethod
    def _truncate_pair(a: list[int], b: list[int], budget: int) -> tuple[list[int], list[int]]:
        """Longest-first truncation, as the Hugging Face tokenizers do it: the shorter text keeps
        up to half the budget (the first text on a tie), the longer one takes what remains."""
        if len(a) + len(b) <= budget:
            return a, b
        if len(a) <= len(b):
            keep_a = min(len(a), budget // 2)
            return a[:keep_a], b[: budget - keep_a]
        keep_b = min(len(b), budget // 2)
        return a[: budget - keep_b], b[:keep_b]

    def encode(self, text: str, text_pair: str | None = None, add_special_tokens: bool = True,
               max_length: int | None = None, truncation: bool = True) -> list[int]:
        """Ids of one text (or a pair): ``[CLS] a [SEP] (b [SEP])``, truncated to ``max_length``
        (default ``model_max_length``) when ``truncation``."""
        return self._encode_one(text, text_pair, add_special_tokens, max_length, truncation)[0]

    def _encode_one(self, text, text_pair, add_special_tokens, max_length, truncation):
        a = self._text_ids(text)
        b = None if text_pair is None else self._text_ids(text_pair)
        if truncation:
            limit = self.model_max_length if max_length is None else int(max_length)
            extra = (2 if b is None else 3) if add_special_tokens else 0
            if limit < extra + 1:
                raise ValueError(f"WordPieceTokenizer: max_length {limit} leaves no room for text next to {extra} special tokens")
            if b is None:
                a = a[: limit - extra]
            else:
                a, b = self._truncate_pair(a, b, limit - extra)
        if not add_special_tokens:
            ids = a + (b or [])
            return ids, [0] * len(a) + [1] * len(b or [])
        ids = [self.cls_id] + a + [self.sep_id]
        types = [0] * len(ids)
        if b is not None:
            ids += b + [self.sep_id]
            types += [1] * (len(b) + 1)
        return ids, types

    def __call__(self, texts, text_pairs=None, padding: str = "longest", truncation: bool = True,
                 max_length: int | None = None, add_special_tokens: bool = True) -> dict:
        """Tokenise a batch (a str is a batch of one) into NumPy arrays (B, L), int64:
        ``input_ids`` (``[PAD]`` after each text), ``token_type_ids`` and ``attention_mask``
        (1 on real tokens, 0 on padding). ``padding`` "longest" pads to the longest text,
        "max_length" to ``max_length`` (default ``model_max_length``)."""
        if isinstance(texts, str):
            texts = [texts]
            if isinstance(text_pairs, str):
                text_pairs = [text_pairs]
        texts = list(texts)
        if text_pairs is not None:
            text_pairs = list(text_pairs)
            if len(text_pairs) != len(texts):
                raise ValueError(f"WordPieceTokenizer: {len(texts)} texts but {len(text_pairs)} text pairs")
        if padding not in ("longest", "max_length"):
            raise ValueError(f"WordPieceTokenizer: padding must be 'longest' or 'max_length', got {padding!r}")
        rows = [self._encode_one(t, None if text_pairs is None else text_pairs[i], add_special_tokens, max_length, truncation)
                for i, t in enumerate(texts)]
        if padding == "max_length":
            width = self.model_max_length if max_length is None else int(max_length)
            too_long = [len(ids) for ids, _ in rows if len(ids) > width]
            if too_long:
                raise ValueError(f"WordPieceTokenizer: a text has {too_long[0]} tokens, more than max_length {width} (truncation is off)")
        else:
            width = max((len(ids) for ids, _ in rows), default=0)
        input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        token_type_ids = np.zeros((len(rows), width), dtype=np.int64)
        attention_mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, (ids, types) in enumerate(rows):
            input_ids[r, : len(ids)] = ids
            token_type_ids[r, : len(types)] = types
            attention_mask[r, : len(ids)] = 1
        return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}

    def batch_encode(self, texts, max_length: int | None = None, padding: str = "longest",
                     truncation: bool = True, add_special_tokens: bool = True) -> dict:
        """The word :class:`~tinymm.data.Tokenizer`'s batch interface (what ``TextCollate`` calls):
        the same arrays as calling the tokenizer (``input_ids``, ``token_type_ids``,
        ``attention_mask``), so a task's collate can yield WordPiece ids."""
        return self(texts, padding=padding, truncation=truncation, max_length=max_length,
                    add_special_tokens=add_special_tokens)
