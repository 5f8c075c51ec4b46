"""A small Transformer text encoder, in one file: config dataclass, the module, shape comments.

    ids (B, T) ──token embedding + learned position embedding──► h (B, T, C)
    h ──depth × pre-norm TransformerEncoderLayer (self-attention, key padding mask, GELU MLP)──► h
    h ──final LayerNorm──► states (B, T, C)
    states ──pool──► (B, C)   "mean": average over the real tokens only; "cls": states[:, 0]

``forward(ids, mask)`` takes token ids and a mask that is True (or 1) on real tokens — the
``<key>_ids`` / ``<key>_mask`` pair a task's collate yields — and returns ``(pooled (B, C),
states (B, T, C))``, the same pair :class:`~tinymm.models.text.GRUTextEncoder` returns, so either
can sit under a classification or fusion head. Padding never influences a real token: padded
keys get no attention weight, and mean pooling divides by the number of real tokens. (Padded
query rows are computed and ignored.)

Pre-norm layers (``norm_first=True``) train stably from scratch at small sizes without warm-up;
embeddings start at N(0, 0.02²) as BERT's do, the ``[PAD]`` row at zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinymm import nn
from tinymm.nn import init
from tinymm.models.pretrained import PretrainedMixin, register
from tinymm.tensor import Tensor

POOLINGS = ("mean", "cls")


@dataclass
class TextTransformerConfig:
    vocab_size: int
    dim: int = 64
    depth: int = 2
    heads: int = 4
    ff_dim: int = 256
    max_len: int = 64
    dropout: float = 0.1
    pooling: str = "mean"
    pad_id: int = 0


def mask_array(mask) -> np.ndarray:
    """A (B, T) mask (Tensor or array, bool or 0/1) as a NumPy/CuPy bool array, True on real tokens."""
    data = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    return data.astype(bool)


def masked_mean(states: Tensor, mask) -> Tensor:
    """Mean of ``states`` (B, T, C) over the positions where ``mask`` (B, T) is True → (B, C).

    A row with no real token gives zeros (its count is clamped to 1), never NaN."""
    keep = mask_array(mask)
    m = Tensor._of(keep.astype(states.dtype)[:, :, None], device=states.device)  # (B, T, 1)
    counts = m.sum(1).clamp(min=1.0)                                          # (B, 1)
    return (states * m).sum(1) / counts                                       # (B, C)


@register
class TextTransformer(nn.Module, PretrainedMixin):
    """Token ids (B, T) + mask (B, T) → (pooled (B, C), per-token states (B, T, C)); see the module docstring."""

    def __init__(self, vocab_size: int, dim: int = 64, depth: int = 2, heads: int = 4, ff_dim: int = 256,
                 max_len: int = 64, dropout: float = 0.1, pooling: str = "mean", pad_id: int = 0):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"TextTransformer: pooling must be one of {POOLINGS}, got {pooling!r}")
        if vocab_size < 1 or dim < 1 or depth < 1 or max_len < 1:
            raise ValueError(f"TextTransformer: vocab_size, dim, depth and max_len must be positive, got "
                             f"{vocab_size}, {dim}, {depth}, {max_len}")
        if dim % heads:
            raise ValueError(f"TextTransformer: dim {dim} is not a multiple of heads {heads}")
        self.config = TextTransformerConfig(vocab_size, dim, depth, heads, ff_dim, max_len, dropout, pooling, pad_id)
        self.token = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.position = nn.Embedding(max_len, dim)
        init.normal_(self.token.weight, 0.0, 0.02)
        self.token.weight._data[pad_id] = 0.0
        init.normal_(self.position.weight, 0.0, 0.02)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(dim, heads, ff_dim, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth)
        self.norm = nn.LayerNorm(dim)

    @property
    def dim(self) -> int:
        return self.config.dim

    def encode(self, ids, mask) -> Tensor:
        """Per-token states (B, T, C) after the final LayerNorm."""
        b, t = ids.shape
        if t > self.config.max_len:
            raise ValueError(f"TextTransformer: {t} tokens, the model has {self.config.max_len} positions (max_len)")
        keep = mask_array(mask)
        if keep.shape != (b, t):
            raise ValueError(f"TextTransformer: mask has shape {tuple(keep.shape)}, ids {(b, t)}")
        device = self.token.weight.device
        positions = Tensor._of(np.arange(t, dtype=np.int64), device=device)
        h = self.token(ids) + self.position(positions)                        # (B, T, C)
        h = self.dropout(h)
        padding = None if keep.all() else Tensor._of(~keep, device=device)       # (B, T), True = ignore
        h = self.encoder(h, src_key_padding_mask=padding)                     # (B, T, C)
        return self.norm(h)                                                   # (B, T, C)

    def pool(self, states: Tensor, mask) -> Tensor:
        if self.config.pooling == "cls":
            return states[:, 0]                                               # (B, C)
        return masked_mean(states, mask)                                      # (B, C)

    def forward(self, ids, mask):
        states = self.encode(ids, mask)                                       # (B, T, C)
        return self.pool(states, mask), states                                # (B, C), (B, T, C)
