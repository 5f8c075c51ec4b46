"""An audio encoder: log-mel features → 1-D conv stack → GRU or Transformer → pooled embedding.

    audio (B, L) waveforms, zero-padded, with lengths (B,)
      → per clip, its own samples only: log-mel (n_mels, F_i), F_i = 1 + L_i // hop_length,
        normalised per clip (zero mean, unit variance); padded to (B, n_mels, F)
      → ``conv_layers`` × [Conv1d(k=5, stride 2) → BatchNorm1d → ReLU → zero the padded frames]
        (B, C, T), T = F / 2^conv_layers (rounded up, frame by frame)
      → ``sequence="gru"``: a GRU (B, T, H), pooled = the state at each clip's last real frame;
        ``sequence="transformer"``: linear to H + sinusoidal positions + pre-norm encoder layers
        with the padding as ``src_key_padding_mask`` (B, T, H), pooled = mean over real frames
      → pooled (B, H) → linear (B, num_classes) when ``num_classes > 0``.

Padding is honoured end to end: features are computed from each clip's own samples, padded
frames are zeroed after every conv block (a zero-padded conv then sees exactly what it sees at
the end of an unpadded clip), the GRU is causal and read at the last real frame, and attention
never attends to padding. So in ``eval()`` mode a clip's embedding does not depend on the
batch it is padded into. (In training mode BatchNorm's batch statistics include the zeroed
frames: a small, harmless dependence.)

The log-mel features are fixed NumPy preprocessing (:mod:`tinymm.data.audio_features`), not
learned; they run on the host whatever the model's device.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import tinymm as tm
import tinymm.nn.functional as F
from tinymm import nn
from tinymm.data.audio_features import log_mel_spectrogram
from tinymm.models._inputs import ShapeError, expect_shape, from_batch
from tinymm.models.pretrained import PretrainedMixin, register

SEQUENCES = ("gru", "transformer")


@dataclass
class AudioEncoderConfig:
    num_classes: int = 0  # 0: no classifier, forward returns the pooled embedding
    sample_rate: int = 8000
    n_mels: int = 40
    n_fft: int = 256  # 32 ms at 8 kHz
    hop_length: int = 80  # 10 ms at 8 kHz
    channels: int = 64
    conv_layers: int = 2
    hidden: int = 128
    sequence: str = "gru"  # "gru" or "transformer"
    num_layers: int = 1
    num_heads: int = 4


def log_mel_batch(audio: np.ndarray, lengths: np.ndarray, cfg: AudioEncoderConfig) -> tuple[np.ndarray, np.ndarray]:
    """(B, L) zero-padded waveforms + lengths → (features (B, n_mels, F) float32, frames (B,) int64).

    Each clip's features come from its own samples (so padding never leaks in), normalised
    to zero mean and unit variance over the clip; frames beyond a clip's own are zero.
    """
    frames = 1 + lengths // cfg.hop_length
    out = np.zeros((audio.shape[0], cfg.n_mels, int(frames.max())), dtype=np.float32)
    for i, n in enumerate(lengths):
        lm = log_mel_spectrogram(audio[i, :n].astype(np.float32), cfg.sample_rate, n_fft=cfg.n_fft,
                                 hop_length=cfg.hop_length, n_mels=cfg.n_mels)  # (n_mels, F_i)
        out[i, :, : lm.shape[1]] = (lm - lm.mean()) / (lm.std() + 1e-5)
    return out, frames.astype(np.int64)


class ConvBlock1d(nn.Module):
    """Conv1d(k=5, stride 2, pad 2) → BatchNorm1d → ReLU: halves the frames (rounding up)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, 5, stride=2, padding=2, bias=False)
        self.bn = nn.BatchNorm1d(c_out)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))  # (B, C_out, ceil(T/2))


def length_mask(lengths: np.ndarray, t: int, like) -> tm.Tensor:
    """(B, t) bool Tensor on ``like``'s device: True on each row's first ``lengths[b]`` steps."""
    return tm.tensor(np.arange(t)[None, :] < lengths[:, None], device=like.device)


@register
class AudioEncoder(nn.Module, PretrainedMixin):
    """Waveforms (B, L) + lengths (B,) — or an ``audio_cls``/``av_qa`` batch (``audio``,
    ``audio_lengths``) — → logits (B, num_classes), or the pooled embedding (B, hidden) when
    ``num_classes=0``. :meth:`encode` also gives the per-frame states and their mask."""

    def __init__(self, num_classes: int = 0, sample_rate: int = 8000, n_mels: int = 40, n_fft: int = 256,
                 hop_length: int = 80, channels: int = 64, conv_layers: int = 2, hidden: int = 128,
                 sequence: str = "gru", num_layers: int = 1, num_heads: int = 4):
        super().__init__()
        if sequence not in SEQUENCES:
            raise ValueError(f"AudioEncoder: sequence must be one of {SEQUENCES}, got {sequence!r}")
        if sequence == "transformer" and hidden % num_heads:
            raise ValueError(f"AudioEncoder: num_heads={num_heads} does not divide hidden={hidden}")
        self.config = AudioEncoderConfig(num_classes, sample_rate, n_mels, n_fft, hop_length, channels, conv_layers,
                                         hidden, sequence, num_layers, num_heads)
        self.convs = nn.Sequential(*[ConvBlock1d(n_mels if i == 0 else channels, channels) for i in range(conv_layers)])
        if sequence == "gru":
            self.rnn = nn.GRU(channels, hidden, num_layers, batch_first=True)
        else:
            self.proj = nn.Linear(channels, hidden)
            self.pos = nn.SinusoidalPositionalEncoding(hidden)
            layer = nn.TransformerEncoderLayer(hidden, num_heads, 2 * hidden, dropout=0.0, batch_first=True,
                                               norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(hidden))
        self.out_dim = hidden
        self.fc = nn.Linear(hidden, num_classes) if num_classes else None

    def encode(self, audio, lengths=None):
        """(B, L) waveforms (+ lengths (B,)) → (pooled (B, H), states (B, T, H), mask (B, T) bool)."""
        expect_shape("AudioEncoder", "audio", audio, ("B", "L"))
        wave = audio.numpy(force=True)
        if lengths is None:
            lens = np.full(wave.shape[0], wave.shape[1], dtype=np.int64)
        else:
            expect_shape("AudioEncoder", "audio_lengths", lengths, (wave.shape[0],))
            lens = np.asarray(lengths.numpy(force=True) if hasattr(lengths, "numpy") else lengths, dtype=np.int64)
            if lens.min() < 1 or lens.max() > wave.shape[1]:
                raise ShapeError(f"AudioEncoder: audio_lengths must be in [1, {wave.shape[1]}] for audio of shape "
                                 f"{tuple(audio.shape)}, got {lens.min()}..{lens.max()}")
        feats, lens = log_mel_batch(wave, lens, self.config)
        x = tm.tensor(feats, device=audio.device)  # (B, n_mels, F)
        for block in self.convs:
            lens = (lens - 1) // 2 + 1
            keep = length_mask(lens, lens.max(), x).to(x.dtype).unsqueeze(1)  # (B, 1, T)
            x = block(x)[:, :, : int(lens.max())] * keep  # (B, C, T)
        x = x.transpose(1, 2)  # (B, T, C)
        mask = length_mask(lens, x.shape[1], x)  # (B, T)
        if self.config.sequence == "gru":
            states, _ = self.rnn(x)  # (B, T, H)
            pooled = states[np.arange(x.shape[0]), lens - 1]  # (B, H)
        else:
            states = self.encoder(self.pos(self.proj(x)), src_key_padding_mask=~mask)  # (B, T, H)
            m = mask.to(states.dtype).unsqueeze(-1)  # (B, T, 1)
            pooled = (states * m).sum(dim=1) / m.sum(dim=1)  # (B, H)
        return pooled, states, mask

    def check_sample_rate(self, batch: dict) -> None:
        """Raise ValueError if the batch's ``sample_rate`` is not the one the features are built for."""
        sr = batch.get("sample_rate")
        if sr is None:
            return
        rates = set(np.ravel(sr.numpy(force=True) if hasattr(sr, "numpy") else sr).tolist())
        if rates != {self.config.sample_rate}:
            raise ValueError(f"AudioEncoder: built for {self.config.sample_rate} Hz audio, the batch has "
                             f"sample_rate {sorted(rates)}")

    def forward(self, batch, lengths=None):
        audio = from_batch("AudioEncoder", batch, "audio")
        if isinstance(batch, dict):
            self.check_sample_rate(batch)
            lengths = batch.get("audio_lengths")
        pooled, _, _ = self.encode(audio, lengths)
        return pooled if self.fc is None else self.fc(pooled)  # (B, num_classes)
