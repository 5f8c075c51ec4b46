"""Positional encodings and the ViT patch embedding.

Sinusoidal (Vaswani et al.): PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(...);
a fixed buffer, so a model can run on sequences of any length up to ``max_len``.
Learned: one trainable vector per position.
Patch embedding: cut a (C, H, W) image into (p × p) patches and project each linearly to
``embed_dim``, exactly a Conv2d with kernel = stride = p (its weight has Conv2d's layout
(embed_dim, C, p, p), so a torch Conv2d state dict loads), done as a reshape and one matmul.
"""
from __future__ import annotations

import math

import numpy as np

from tinymm import backend
from tinymm.nn import functional as F
from tinymm.nn import init
from tinymm.nn.module import Module
from tinymm.nn.parameter import Parameter
from tinymm import ops as O
from tinymm.factories import empty
from tinymm.tensor import Tensor


def sinusoidal_table(max_len: int, d_model: int, dtype=np.float32) -> np.ndarray:
    pos = np.arange(max_len)[:, None]
    div = np.exp(np.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
    pe = np.zeros((max_len, d_model))
    pe[:, 0::2] = np.sin(pos * div)
    pe[:, 1::2] = np.cos(pos * div[: d_model // 2])
    return pe.astype(dtype)


class SinusoidalPositionalEncoding(Module):
    """Adds the fixed sinusoidal table to x (B, N, d_model) (a non-persistent buffer)."""

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0, dtype=None, device=None):
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        table = sinusoidal_table(max_len, d_model, dtype or backend.get_default_dtype())
        self.register_buffer("pe", Tensor._of(table, device=device), persistent=False)
        self.p = dropout

    def forward(self, x):
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"SinusoidalPositionalEncoding: expected (B, N, {self.d_model}), got {tuple(x.shape)}")
        if x.shape[1] > self.max_len:
            raise ValueError(f"SinusoidalPositionalEncoding: sequence of {x.shape[1]} positions exceeds max_len={self.max_len}")
        return F.dropout(x + self.pe[: x.shape[1]], self.p, self.training)

    def extra_repr(self):
        return f"d_model={self.d_model}, max_len={self.max_len}"


class LearnedPositionalEmbedding(Module):
    """Adds a trainable ``weight`` (max_len, d_model), initialised N(0, 0.02²)."""

    def __init__(self, max_len: int, d_model: int, dtype=None, device=None):
        super().__init__()
        self.max_len, self.d_model = max_len, d_model
        self.weight = Parameter(empty(max_len, d_model, dtype=dtype, device=device))
        init.normal_(self.weight, 0.0, 0.02)

    def forward(self, x):
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"LearnedPositionalEmbedding: expected (B, N, {self.d_model}), got {tuple(x.shape)}")
        if x.shape[1] > self.max_len:
            raise ValueError(f"LearnedPositionalEmbedding: sequence of {x.shape[1]} positions exceeds max_len={self.max_len}")
        return x + self.weight[: x.shape[1]]


class PatchEmbedding(Module):
    """(B, C, H, W) images → (B, N, embed_dim) patch tokens, N = (H/p)·(W/p), row-major."""

    def __init__(self, img_size: int, patch_size: int, in_chans: int = 3, embed_dim: int = 64, dtype=None, device=None):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"PatchEmbedding: patch_size={patch_size} does not divide img_size={img_size}")
        self.img_size, self.patch_size, self.in_chans, self.embed_dim = img_size, patch_size, in_chans, embed_dim
        self.num_patches = (img_size // patch_size) ** 2
        self.weight = Parameter(empty(embed_dim, in_chans, patch_size, patch_size, dtype=dtype, device=device))
        self.bias = Parameter(empty(embed_dim, dtype=dtype, device=device))
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # Conv2d's default
        bound = 1 / math.sqrt(in_chans * patch_size * patch_size)
        init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        c, s, p = self.in_chans, self.img_size, self.patch_size
        if x.ndim != 4 or x.shape[1:] != (c, s, s):
            raise ValueError(f"PatchEmbedding: expected images (B, {c}, {s}, {s}), got shape {tuple(x.shape)}")
        b, g = x.shape[0], s // p
        patches = O.reshape(x, b, c, g, p, g, p)
        patches = O.permute(patches, 0, 2, 4, 1, 3, 5)  # (B, gh, gw, C, p, p)
        patches = O.reshape(patches, b, g * g, c * p * p)
        w = O.reshape(self.weight, self.embed_dim, c * p * p)
        return F.linear(patches, w, self.bias)  # (B, N, D)

    def extra_repr(self):
        return f"img_size={self.img_size}, patch_size={self.patch_size}, in_chans={self.in_chans}, embed_dim={self.embed_dim}"
