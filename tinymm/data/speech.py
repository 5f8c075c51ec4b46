"""Synthetic speech: words as voice-like sounds, spoken by varied speakers (floor 6: NumPy only).

Each word of any vocabulary maps to a fixed *recipe* (seeded by the CRC-32 of its spelling, so it
is the same everywhere): 1–4 segments, each either

- *voiced*: harmonics of the speaker's pitch ``f0`` shaped by three formant peaks ``F1 F2 F3``
  (Gaussian bumps in frequency, like a vowel), with a rising or falling pitch contour; or
- *fricative*: white noise band-passed around a high centre frequency (like "s" or "f").

A word's identity lives in its segments' formant pattern, durations and fricatives; a *speaker*
(:func:`sample_speaker`) changes the pitch (90–240 Hz), the speaking rate (0.8–1.25x), the
formant scale (0.9–1.12x, a shorter or longer vocal tract), the loudness, the pauses and the
background noise (white noise at 15–30 dB SNR). So the same word by two speakers differs in
pitch, length and spectral position but keeps its shape, as real speech does.

A sentence is ``pad, word, gap, word, ..., pad``: the leading and trailing pads (0.1–0.2 s) hold
only background noise and the peak stays under 0.9, which the cleaning step relies on (silent,
clipped and truncated clips are then told apart from normal ones by the data alone).

Cost: voiced segments sum only the harmonics within reach of a formant (about 10 at 8 kHz), so a
ten-word question of ~3 s takes a few milliseconds; audio is therefore synthesised lazily, per
item, and never stored by the datasets.
"""
from __future__ import annotations

import functools
import zlib

import numpy as np

from tinymm.data.world import check_sample_rate

__all__ = ["word_recipe", "sample_speaker", "speak", "DEFAULT_SAMPLE_RATE"]

DEFAULT_SAMPLE_RATE = 8000
_BANDWIDTHS = np.array([90.0, 120.0, 170.0])
_GAINS = np.array([1.0, 0.7, 0.35])


@functools.lru_cache(maxsize=4096)
def word_recipe(word: str) -> tuple:
    """The fixed segments of ``word``: a tuple of ``(kind, duration_s, params)`` where kind is
    ``"v"`` (params: F1, F2, F3, pitch slope) or ``"f"`` (params: centre Hz, bandwidth Hz)."""
    rng = np.random.default_rng(zlib.crc32(word.encode("utf-8")))
    n = int(np.clip(1 + len(word) // 3 + rng.integers(0, 2), 1, 4))
    segs = []
    for k in range(n):
        if k > 0 and rng.random() < 0.25:
            segs.append(("f", float(rng.uniform(0.05, 0.09)), (float(rng.uniform(1600, 3300)), float(rng.uniform(300, 700)))))
        else:
            f1 = float(rng.uniform(260, 850))
            f2 = float(rng.uniform(max(900.0, f1 + 300), 2300))
            f3 = float(rng.uniform(max(2300.0, f2 + 200), 3300))
            segs.append(("v", float(rng.uniform(0.07, 0.14)), (f1, f2, f3, float(rng.uniform(-0.25, 0.25)))))
    return tuple(segs)


def sample_speaker(rng: np.random.Generator) -> dict:
    """A random speaker as a JSON-able dict (``seed`` drives the background noise)."""
    return {
        "f0": float(rng.uniform(90, 240)),
        "rate": float(rng.uniform(0.8, 1.25)),
        "formant_scale": float(rng.uniform(0.9, 1.12)),
        "level": float(rng.uniform(0.3, 0.85)),
        "snr_db": float(rng.uniform(15, 30)),
        "gap_s": float(rng.uniform(0.03, 0.08)),
        "pad_s": float(rng.uniform(0.1, 0.2)),
        "seed": int(rng.integers(0, 2**31 - 1)),
    }


def _voiced(L, sr, f0, slope, formants, phase0):
    """Harmonic segment of ``L`` samples; returns (wave, end phase) so words stay continuous."""
    contour = f0 * (1.0 + slope * (np.arange(L) / max(L - 1, 1) - 0.5))
    phase = phase0 + 2 * np.pi * np.cumsum(contour) / sr
    k = np.arange(1, int((sr / 2 - 50) // (f0 * (1 + abs(slope) / 2))) + 1, dtype=np.float64)
    amp = (_GAINS[:, None] * np.exp(-0.5 * ((k[None, :] * f0 - formants[:, None]) / _BANDWIDTHS[:, None]) ** 2)).sum(0)
    amp += 0.02 / k  # a little spectral tilt fills the gaps between formants
    keep = amp > 0.03 * amp.max()
    k, amp = k[keep].astype(np.float32), amp[keep].astype(np.float32)
    # float32 sines (SIMD) of a phase already reduced mod 2*pi: errors below 1e-4 rad
    ph = (phase % (2 * np.pi)).astype(np.float32)
    wave = amp @ np.sin(k[:, None] * ph[None, :])
    return wave.astype(np.float64), float(phase[-1] % (2 * np.pi))


def _fricative(L, sr, centre, bw, rng):
    spec = np.fft.rfft(rng.standard_normal(L))
    f = np.fft.rfftfreq(L, 1.0 / sr)
    spec *= np.exp(-0.5 * ((f - min(centre, 0.45 * sr)) / bw) ** 2)
    w = np.fft.irfft(spec, n=L)
    return w / (np.abs(w).max() + 1e-9) * 0.5


def _envelope(L, sr):
    env = np.ones(L)
    a, d = min(int(0.015 * sr), L // 3), min(int(0.03 * sr), L // 3)
    if a > 0:
        env[:a] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, a))
    if d > 0:
        env[L - d :] = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, d))
    return env


def _word(word, speaker, sr, rng):
    parts, phase = [], 0.0
    for kind, dur, p in word_recipe(word):
        L = max(int(dur / speaker["rate"] * sr), 16)
        if kind == "v":
            formants = np.array(p[:3]) * speaker["formant_scale"]
            w, phase = _voiced(L, sr, speaker["f0"], p[3], formants, phase)
            w = w / (np.abs(w).max() + 1e-9)
        else:
            w = _fricative(L, sr, p[0] * speaker["formant_scale"], p[1], rng)
        parts.append(w * _envelope(L, sr) if kind == "f" else w)
    w = np.concatenate(parts)
    return w * _envelope(len(w), sr)


# speaker field -> (low, high) it may take (sample_speaker draws inside these)
_SPEAKER_RANGES = {"f0": (20.0, 1000.0), "rate": (0.25, 4.0), "formant_scale": (0.5, 2.0), "level": (0.0, 1.0),
                   "snr_db": (-20.0, 120.0), "gap_s": (0.0, 1.0), "pad_s": (0.0, 1.0)}


def check_speaker(speaker) -> dict:
    """``speaker`` is a dict like :func:`sample_speaker`'s, with every field in a sane range."""
    if not isinstance(speaker, dict):
        raise TypeError(f"speak: speaker must be a dict from sample_speaker, got {type(speaker).__name__}")
    missing = [k for k in (*_SPEAKER_RANGES, "seed") if k not in speaker]
    if missing:
        raise ValueError(f"speak: speaker is missing {', '.join(missing)} (make one with sample_speaker)")
    for k, (lo, hi) in _SPEAKER_RANGES.items():
        v = speaker[k]
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not lo <= v <= hi:
            raise ValueError(f"speak: speaker[{k!r}] must be a number in [{lo}, {hi}], got {v!r}")
    s = speaker["seed"]
    if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
        raise ValueError(f"speak: speaker['seed'] must be a non-negative int, got {s!r}")
    return speaker


def speak(words, speaker: dict, sample_rate: int = DEFAULT_SAMPLE_RATE) -> np.ndarray:
    """The waveform (float32, 1-D, peak < 0.9) of ``words`` (a list or a sentence string; case
    and punctuation are ignored) said by ``speaker``. Deterministic given its arguments."""
    sr = check_sample_rate(sample_rate)
    check_speaker(speaker)
    if not isinstance(words, str) and (not isinstance(words, (list, tuple)) or not all(isinstance(w, str) for w in words)):
        raise TypeError(f"speak: words must be a sentence (str) or a list of words, got {words!r:.80}")
    if isinstance(words, str):
        words = "".join(c if c.isalnum() else " " for c in words.lower()).split()
    if not words:
        raise ValueError("speak: no words to say")
    rng = np.random.default_rng(speaker["seed"])
    pad = np.zeros(int(speaker["pad_s"] * sr))
    gap = np.zeros(int(speaker["gap_s"] * sr))
    pieces = [pad]
    for i, w in enumerate(words):
        if i:
            pieces.append(gap)
        pieces.append(_word(w, speaker, sr, rng))
    pieces.append(pad)
    speech = np.concatenate(pieces)
    speech *= speaker["level"] / (np.abs(speech).max() + 1e-9)
    active = np.abs(speech) > 0.05 * speaker["level"]
    rms = np.sqrt(np.mean(speech[active] ** 2)) if active.any() else speaker["level"]
    noise_std = rms / 10 ** (speaker["snr_db"] / 20)
    out = speech + noise_std * rng.standard_normal(len(speech))
    peak = np.abs(out).max()
    if peak > 0.9:
        out *= 0.9 / peak
    return out.astype(np.float32)
