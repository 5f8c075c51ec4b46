"""Text encoders: a GRU over word embeddings (the question encoder of the fusion models)."""
from __future__ import annotations

import numpy as np

from tinymm import nn


class GRUTextEncoder(nn.Module):
    """Token ids (B, T) + mask (B, T) → (final state (B, H), per-token states (B, T, H)).

    The final state is the GRU's output at each sequence's last real token, so padding never
    reaches it (padding comes after the real tokens, and a GRU is causal).
    """

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden: int = 128):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.gru = nn.GRU(embed_dim, hidden, batch_first=True)

    def forward(self, ids, mask):
        states, _ = self.gru(self.embed(ids))  # (B, T, H)
        last = np.maximum(mask.numpy(force=True).sum(axis=1) - 1, 0)
        rows = np.arange(ids.shape[0])
        final = states[rows, last]  # (B, H)
        return final, states
