"""A video encoder: a CNN on every frame → GRU, LSTM or temporal attention → pooled embedding.

    video (B, T, 3, S, S)
      → frames (B·T, 3, S, S) → 3 × [conv 3×3 stride 2 → BN → ReLU] (B·T, 2c, S/8, S/8)
      → flatten → linear → ReLU: one embedding per frame (B, T, E). Flattening (rather than
        pooling) keeps *where* things are in the frame, which is what motion is made of.
      → ``temporal="gru"`` / ``"lstm"``: recurrent states (B, T, H), pooled = the state at the
        last real frame; ``temporal="attention"``: linear to H + learned positions + one pre-norm
        Transformer encoder layer (B, T, H), pooled = mean over real frames
      → pooled (B, H) → linear (B, num_classes) when ``num_classes > 0``.

Clips of different lengths arrive zero-padded with ``video_lengths`` (what
:func:`tinymm.data.default_collate` adds when the frame counts differ); padded frames are never
read by the pooling, and attention masks them out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import tinymm.nn.functional as F
from tinymm import nn
from tinymm.models._inputs import ShapeError, expect_shape, from_batch
from tinymm.models.audio import length_mask
from tinymm.models.pretrained import PretrainedMixin, register

TEMPORAL = ("gru", "lstm", "attention")


@dataclass
class VideoEncoderConfig:
    num_classes: int = 0  # 0: no classifier, forward returns the pooled embedding
    image_size: int = 32  # frame side; a multiple of 8
    channels: int = 16  # frame CNN widths: c, 2c, 2c
    embed_dim: int = 64  # per-frame embedding
    hidden: int = 64  # temporal model width
    temporal: str = "gru"  # "gru", "lstm" or "attention"
    num_heads: int = 4
    max_frames: int = 64  # longest clip the attention's learned positions cover


def conv_bn_relu(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


@register
class VideoEncoder(nn.Module, PretrainedMixin):
    """Video (B, T, 3, S, S) — or a ``video_cls``/``video_qa`` batch (``video``, optional
    ``video_lengths``) — → logits (B, num_classes), or the pooled embedding (B, hidden) when
    ``num_classes=0``. :meth:`encode` also gives the per-frame states."""

    def __init__(self, num_classes: int = 0, image_size: int = 32, channels: int = 16, embed_dim: int = 64,
                 hidden: int = 64, temporal: str = "gru", num_heads: int = 4, max_frames: int = 64):
        super().__init__()
        if temporal not in TEMPORAL:
            raise ValueError(f"VideoEncoder: temporal must be one of {TEMPORAL}, got {temporal!r}")
        if image_size % 8 or image_size < 8:
            raise ValueError(f"VideoEncoder: image_size must be a multiple of 8 (three stride-2 convs), got {image_size}")
        if temporal == "attention" and hidden % num_heads:
            raise ValueError(f"VideoEncoder: num_heads={num_heads} does not divide hidden={hidden}")
        self.config = VideoEncoderConfig(num_classes, image_size, channels, embed_dim, hidden, temporal, num_heads,
                                         max_frames)
        self.frame_cnn = nn.Sequential(conv_bn_relu(3, channels), conv_bn_relu(channels, 2 * channels),
                                       conv_bn_relu(2 * channels, 2 * channels))
        self.frame_fc = nn.Linear(2 * channels * (image_size // 8) ** 2, embed_dim)
        if temporal == "gru":
            self.rnn = nn.GRU(embed_dim, hidden, batch_first=True)
        elif temporal == "lstm":
            self.rnn = nn.LSTM(embed_dim, hidden, batch_first=True)
        else:
            self.proj = nn.Linear(embed_dim, hidden)
            self.pos = nn.LearnedPositionalEmbedding(max_frames, hidden)
            self.attn = nn.TransformerEncoderLayer(hidden, num_heads, 2 * hidden, dropout=0.0, batch_first=True,
                                                   norm_first=True)
        self.out_dim = hidden
        self.fc = nn.Linear(hidden, num_classes) if num_classes else None

    def frame_embeddings(self, video):
        """(B, T, 3, S, S) → (B, T, E)."""
        s = self.config.image_size
        expect_shape("VideoEncoder", "video", video, ("B", "T", 3, s, s))
        b, t = video.shape[:2]
        x = self.frame_cnn(video.reshape(b * t, 3, s, s))  # (B·T, 2c, S/8, S/8)
        return F.relu(self.frame_fc(x.flatten(1))).reshape(b, t, -1)  # (B, T, E)

    def encode(self, video, lengths=None):
        """(B, T, 3, S, S) (+ lengths (B,)) → (pooled (B, H), states (B, T, H), mask (B, T) bool)."""
        e = self.frame_embeddings(video)  # (B, T, E)
        b, t = e.shape[:2]
        lens = np.full(b, t, dtype=np.int64)
        if lengths is not None:
            expect_shape("VideoEncoder", "video_lengths", lengths, (b,))
            lens = np.asarray(lengths.numpy(force=True) if hasattr(lengths, "numpy") else lengths, dtype=np.int64)
            if lens.min() < 1 or lens.max() > t:
                raise ShapeError(f"VideoEncoder: video_lengths must be in [1, {t}] for video of shape "
                                 f"{tuple(video.shape)}, got {lens.min()}..{lens.max()}")
        mask = length_mask(lens, t, e)  # (B, T)
        if self.config.temporal == "attention":
            if t > self.config.max_frames:
                raise ShapeError(f"VideoEncoder: {t} frames exceed max_frames={self.config.max_frames}")
            states = self.attn(self.pos(self.proj(e)), src_key_padding_mask=~mask)  # (B, T, H)
            m = mask.to(states.dtype).unsqueeze(-1)  # (B, T, 1)
            pooled = (states * m).sum(dim=1) / m.sum(dim=1)  # (B, H)
        else:
            states, _ = self.rnn(e)  # (B, T, H)
            pooled = states[np.arange(b), lens - 1]  # (B, H)
        return pooled, states, mask

    def forward(self, batch, lengths=None):
        video = from_batch("VideoEncoder", batch, "video")
        if isinstance(batch, dict):
            lengths = batch.get("video_lengths")
        pooled, _, _ = self.encode(video, lengths)
        return pooled if self.fc is None else self.fc(pooled)  # (B, num_classes)
