"""A tiny Vision Transformer (Dosovitskiy et al. 2020): patches → tokens → Transformer encoder.

    image (B, C, S, S) → PatchEmbedding (B, N, D), N = (S/p)²
      → prepend a learned [CLS] token (B, N+1, D) (pool="cls" only) + learned positions
      → ``depth`` pre-norm Transformer encoder layers (B, N+1, D) → LayerNorm
      → pool: the [CLS] token, or the mean of the patch tokens (B, D) → linear (B, num_classes)

Pre-norm layers (``norm_first=True``) with GELU, as ViT; no dropout (the toy data is small and
clean). ``num_classes=0`` makes it an encoder returning the pooled (B, D) features;
:meth:`ViT.tokens` gives the per-token outputs for fusion models.
"""
from __future__ import annotations

from dataclasses import dataclass

import tinymm as tm
from tinymm import nn
from tinymm.models._inputs import expect_shape, from_batch
from tinymm.models.pretrained import PretrainedMixin, register

POOLS = ("cls", "mean")


@dataclass
class ViTConfig:
    num_classes: int = 0  # 0: no classifier, forward returns the pooled features
    image_size: int = 32
    in_channels: int = 3
    patch_size: int = 4
    embed_dim: int = 64
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 2.0
    pool: str = "cls"  # "cls" or "mean"


@register
class ViT(nn.Module, PretrainedMixin):
    """Image (B, C, S, S) — or a task batch with key ``"image"`` — → logits (B, num_classes),
    or pooled features (B, embed_dim) when ``num_classes=0``."""

    def __init__(self, num_classes: int = 0, image_size: int = 32, in_channels: int = 3, patch_size: int = 4,
                 embed_dim: int = 64, depth: int = 2, num_heads: int = 4, mlp_ratio: float = 2.0, pool: str = "cls"):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"ViT: pool must be one of {POOLS}, got {pool!r}")
        if embed_dim % num_heads:
            raise ValueError(f"ViT: num_heads={num_heads} does not divide embed_dim={embed_dim}")
        self.config = ViTConfig(num_classes, image_size, in_channels, patch_size, embed_dim, depth, num_heads,
                                float(mlp_ratio), pool)
        self.patch_embed = nn.PatchEmbedding(image_size, patch_size, in_channels, embed_dim)
        n = self.patch_embed.num_patches + (pool == "cls")
        if pool == "cls":
            self.cls_token = nn.Parameter(tm.zeros(1, 1, embed_dim))
        self.pos_embed = nn.LearnedPositionalEmbedding(n, embed_dim)
        layer = nn.TransformerEncoderLayer(embed_dim, num_heads, int(embed_dim * mlp_ratio), dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth)
        self.norm = nn.LayerNorm(embed_dim)
        self.out_dim = embed_dim
        self.head = nn.Linear(embed_dim, num_classes) if num_classes else None

    def tokens(self, x):
        """(B, C, S, S) → the encoder's output tokens (B, N(+1), D), [CLS] first when pool="cls"."""
        c, s = self.config.in_channels, self.config.image_size
        expect_shape("ViT", "image", x, ("B", c, s, s))
        t = self.patch_embed(x)  # (B, N, D)
        if self.config.pool == "cls":
            t = tm.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1)  # (B, N+1, D)
        return self.norm(self.encoder(self.pos_embed(t)))  # (B, N(+1), D)

    def forward(self, batch):
        t = self.tokens(from_batch("ViT", batch, "image"))  # (B, N(+1), D)
        pooled = t[:, 0] if self.config.pool == "cls" else t.mean(dim=1)  # (B, D)
        return pooled if self.head is None else self.head(pooled)  # (B, num_classes)
