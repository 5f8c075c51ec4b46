"""Audio features from scratch with NumPy's FFT (floor 6: NumPy only).

Waveform → frames → windowed FFT (STFT) → power → mel filterbank → log → DCT-II (MFCC).
Every function takes a real signal of shape ``(L,)`` or a batch ``(..., L)`` (e.g. ``(B, L)``)
and keeps the leading axes.  float32 in gives float32/complex64 out; float64 gives
float64/complex128; integer PCM is converted to float32 first (no rescaling).

Shapes and conventions (those of ``torch.stft(..., return_complex=True)``)::

    frame(x, n, hop)        (..., L)  -> (..., n_frames, n)        frames along the last-but-one axis
    stft(x, n_fft, ...)     (..., L)  -> (..., n_fft//2 + 1, n_frames)   complex
    power_spectrogram       (..., L)  -> (..., n_fft//2 + 1, n_frames)   |X|**power
    mel_filterbank          -> (n_mels, n_fft//2 + 1)                     mel = fb @ power
    mel/log_mel_spectrogram (..., L)  -> (..., n_mels, n_frames)
    mfcc                    (..., L)  -> (..., n_mfcc, n_frames)

- ``center=True`` pads ``n_fft // 2`` samples on both sides (reflection by default), so frame
  ``t`` is centred on sample ``t * hop_length``; ``n_frames = 1 + (L_padded - n_fft) // hop``.
- A window shorter than ``n_fft`` (``win_length < n_fft``) is zero-padded on both sides to
  ``n_fft``, left pad ``(n_fft - win_length) // 2``, exactly as ``torch.stft`` does.
- The STFT is ``X[k, t] = Σ_n w[n] x[t·hop + n] e^{-2πi k n / n_fft}``, unnormalised
  (``normalized=True`` multiplies by ``n_fft ** -0.5``).
- **Default window: periodic Hann** (``window="hann"``).  ``torch.stft``'s default is a
  rectangular window (``window=None``); pass ``window=None`` here for the same thing.

**Mel scale.**  Default: **HTK**, ``mel(f) = 2595 · log10(1 + f / 700)`` (as
``torchaudio.transforms.MelSpectrogram``'s default ``mel_scale="htk"``).  ``htk=False`` selects
**Slaney**'s scale (librosa's default): linear below 1 kHz, ``mel(f) = 3 f / 200``, and
logarithmic above, ``mel(f) = 15 + 27 · ln(f / 1000) / ln(6.4)``.  The filters are triangles
whose ``n_mels + 2`` corner frequencies are equally spaced in mel between ``fmin`` and ``fmax``;
filter ``m`` rises from corner ``m`` to 1 at corner ``m + 1`` and falls to 0 at corner ``m + 2``
(so between the first and last centre the filters sum to exactly 1).  ``norm="slaney"`` divides
each by half its width in Hz (constant area) instead of peak 1.

**Log-mel** is the natural log, ``ln(max(mel, amin))``.  **MFCC** is the orthonormal DCT-II of
the log-mel along the mel axis, keeping the first ``n_mfcc`` coefficients:
``C[k] = s_k Σ_n x[n] cos(π (n + ½) k / N)``, ``s_0 = √(1/N)``, ``s_k = √(2/N)`` (``scipy.fft.dct(
x, type=2, norm="ortho")``).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = [
    "frame",
    "hann_window",
    "stft",
    "power_spectrogram",
    "hz_to_mel",
    "mel_to_hz",
    "mel_frequencies",
    "mel_filterbank",
    "mel_spectrogram",
    "log_mel_spectrogram",
    "dct_matrix",
    "dct",
    "mfcc",
]

# numpy.pad's names for torch's pad modes (torch names and numpy names are both accepted).
_PAD_MODES = {
    "reflect": "reflect",
    "constant": "constant",
    "replicate": "edge",
    "edge": "edge",
    "circular": "wrap",
    "wrap": "wrap",
}


# ----------------------------------------------------------------------------- checks


#: longest FFT/window/filter count accepted (2**24 samples is half an hour at 8 kHz): a larger
#: value is a typo, and would first try to allocate a window that size
_MAX_LENGTH = 2**24


def _pos_int(fn: str, name: str, v, high: int = _MAX_LENGTH) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{fn}: {name} must be a positive int, got {v!r}")
    if v > high:
        raise ValueError(f"{fn}: {name}={v} is too large (at most {high})")
    return int(v)


def _real(fn: str, name: str, v, positive: bool = False) -> float:
    """A finite real number (``> 0`` with ``positive``), or ValueError naming what came."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v) \
            or (positive and v <= 0):
        raise ValueError(f"{fn}: {name} must be a finite{' positive' if positive else ''} number, got {v!r}")
    return float(v)


def _flag(fn: str, name: str, v) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{fn}: {name} must be True or False, got {v!r}")
    return bool(v)


def _signal(fn: str, x) -> np.ndarray:
    """A real floating array with at least one axis (the last one is time)."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"{fn}: expected a signal of shape (L,) or (..., L), got a scalar")
    if np.iscomplexobj(x):
        raise TypeError(f"{fn}: expected a real signal, got dtype {x.dtype}")
    if x.dtype.kind in "biu":
        x = x.astype(np.float32)
    elif x.dtype.kind != "f":
        raise TypeError(f"{fn}: expected a real numeric signal, got dtype {x.dtype}")
    elif x.dtype == np.float16:
        x = x.astype(np.float32)
    if x.shape[-1] == 0:
        raise ValueError(f"{fn}: the signal is empty (shape {tuple(x.shape)})")
    finite = np.isfinite(x)
    if not finite.all():
        # as librosa does: NaN/inf would spread through every frame's FFT into the features
        at = np.unravel_index(int(np.argmin(finite)), x.shape)
        raise ValueError(f"{fn}: the signal holds non-finite values (first {x[at]} at index {tuple(map(int, at))}); "
                         "drop or repair it first (tinymm.data.clean drops such audio)")
    return x


def _pad(fn: str, x: np.ndarray, n_fft: int, center: bool, pad_mode: str) -> np.ndarray:
    if not _flag(fn, "center", center):
        return x
    if not isinstance(pad_mode, str) or pad_mode not in _PAD_MODES:
        raise ValueError(f"{fn}: pad_mode must be one of {sorted(_PAD_MODES)}, got {pad_mode!r}")
    p = n_fft // 2
    if pad_mode == "reflect" and p >= x.shape[-1]:
        # torch refuses this too: a reflection cannot be longer than the signal it mirrors.
        raise ValueError(
            f"{fn}: reflect padding of {p} samples needs a signal longer than {p}, got length {x.shape[-1]}; "
            "use pad_mode='constant' or a smaller n_fft"
        )
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(p, p)], mode=_PAD_MODES[pad_mode])


def _frames_view(fn: str, x: np.ndarray, frame_length: int, hop_length: int, what: str) -> np.ndarray:
    """Read-only strided view (..., n_frames, frame_length) of an already padded signal."""
    if frame_length > x.shape[-1]:
        raise ValueError(f"{fn}: {what}={frame_length} is larger than the padded signal length {x.shape[-1]}")
    windows = np.lib.stride_tricks.sliding_window_view(x, frame_length, axis=-1)
    return windows[..., ::hop_length, :]


# ----------------------------------------------------------------------------- framing and windows


def frame(x, frame_length: int, hop_length: int, center: bool = True, pad_mode: str = "reflect") -> np.ndarray:
    """Cut ``x`` (..., L) into overlapping frames (..., n_frames, frame_length) (a copy).

    ``center=True`` first pads ``frame_length // 2`` samples on both sides with ``pad_mode``.
    """
    fn = "frame"
    frame_length = _pos_int(fn, "frame_length", frame_length)
    hop_length = _pos_int(fn, "hop_length", hop_length)
    x = _signal(fn, x)
    x = _pad(fn, x, frame_length, center, pad_mode)
    return np.ascontiguousarray(_frames_view(fn, x, frame_length, hop_length, "frame_length"))


def hann_window(n: int, periodic: bool = True, dtype=np.float64) -> np.ndarray:
    """Hann window ``w[k] = 0.5 - 0.5 cos(2π k / M)``, ``k = 0 … n-1``.

    ``M = n`` for the periodic window (the STFT one: it tiles exactly at 75 % or 50 % overlap;
    ``torch.hann_window``'s default) and ``M = n - 1`` for the symmetric one (filter design).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= _MAX_LENGTH:
        raise ValueError(f"hann_window: n must be an int in [0, {_MAX_LENGTH}], got {n!r}")
    if n == 0:
        return np.zeros(0, dtype=dtype)
    if n == 1:
        return np.ones(1, dtype=dtype)
    m = n if periodic else n - 1
    k = np.arange(n, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * k / m)).astype(dtype)


def _window(fn: str, window, win_length: int | None, n_fft: int, dtype) -> np.ndarray:
    """The window, zero-padded (centred) to ``n_fft``."""
    if isinstance(window, str):
        if window != "hann":
            raise ValueError(f"{fn}: window must be 'hann', None (rectangular) or an array, got {window!r}")
        win_length = n_fft if win_length is None else _pos_int(fn, "win_length", win_length)
        w = hann_window(win_length, periodic=True)
    elif window is None:
        win_length = n_fft if win_length is None else _pos_int(fn, "win_length", win_length)
        w = np.ones(win_length)
    else:
        w = np.asarray(window)
        if w.ndim != 1 or np.iscomplexobj(w) or w.dtype.kind not in "biuf":
            raise ValueError(f"{fn}: window must be a real 1-D array, got shape {tuple(w.shape)} dtype {w.dtype}")
        if not np.isfinite(w).all():
            raise ValueError(f"{fn}: window holds NaN or inf")
        if win_length is None:
            win_length = w.shape[0]
        win_length = _pos_int(fn, "win_length", win_length)
        if w.shape[0] != win_length:
            raise ValueError(f"{fn}: window has {w.shape[0]} samples, expected win_length={win_length}")
    if win_length > n_fft:
        raise ValueError(f"{fn}: win_length={win_length} is larger than n_fft={n_fft}")
    left = (n_fft - win_length) // 2
    out = np.zeros(n_fft, dtype=dtype)
    out[left : left + win_length] = w
    return out


# ----------------------------------------------------------------------------- STFT


def stft(
    x,
    n_fft: int,
    hop_length: int | None = None,
    win_length: int | None = None,
    window="hann",
    center: bool = True,
    pad_mode: str = "reflect",
    normalized: bool = False,
) -> np.ndarray:
    """Short-time Fourier transform, one-sided: (..., L) → complex (..., n_fft//2 + 1, n_frames).

    Follows ``torch.stft(x, n_fft, hop_length, win_length, window, center, pad_mode, normalized,
    onesided=True, return_complex=True)``; ``hop_length`` defaults to ``n_fft // 4`` and
    ``win_length`` to ``n_fft``.  ``window`` is ``"hann"`` (periodic, the default here),
    ``None`` (rectangular, torch's default) or an array of ``win_length`` samples.
    """
    fn = "stft"
    n_fft = _pos_int(fn, "n_fft", n_fft)
    hop_length = max(n_fft // 4, 1) if hop_length is None else _pos_int(fn, "hop_length", hop_length)
    x = _signal(fn, x)
    w = _window(fn, window, win_length, n_fft, x.dtype)
    x = _pad(fn, x, n_fft, center, pad_mode)
    frames = _frames_view(fn, x, n_fft, hop_length, "n_fft")  # (..., T, n_fft)
    spec = np.fft.rfft(frames * w, n=n_fft, axis=-1)  # (..., T, n_fft//2+1)
    if normalized:
        spec = spec * (1.0 / math.sqrt(n_fft))
    ctype = np.complex64 if x.dtype == np.float32 else np.complex128
    return np.swapaxes(spec, -1, -2).astype(ctype, copy=False)  # (..., F, T)


def power_spectrogram(
    x,
    n_fft: int = 400,
    hop_length: int | None = None,
    win_length: int | None = None,
    window="hann",
    center: bool = True,
    pad_mode: str = "reflect",
    power: float = 2.0,
) -> np.ndarray:
    """``|stft(x)| ** power``: (..., L) → real (..., n_fft//2 + 1, n_frames); power 2 by default."""
    power = _real("power_spectrogram", "power", power, positive=True)
    spec = stft(x, n_fft, hop_length, win_length, window, center, pad_mode)
    if power == 2:
        return spec.real**2 + spec.imag**2  # skips the square root of abs()
    return np.abs(spec) ** power


# ----------------------------------------------------------------------------- mel scale

_SLANEY_F_SP = 200.0 / 3.0  # Hz per mel in the linear part
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_MIN_LOG_MEL = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP  # = 15
_SLANEY_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(f, htk: bool = True):
    """Hz → mel.  HTK: ``2595 log10(1 + f/700)``; Slaney (``htk=False``): see the module docstring."""
    f = np.asarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    lin = f / _SLANEY_F_SP
    log = _SLANEY_MIN_LOG_MEL + np.log(np.maximum(f, _SLANEY_MIN_LOG_HZ) / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP
    return np.where(f >= _SLANEY_MIN_LOG_HZ, log, lin)


def mel_to_hz(m, htk: bool = True):
    """mel → Hz, the inverse of :func:`hz_to_mel`."""
    m = np.asarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    lin = m * _SLANEY_F_SP
    log = _SLANEY_MIN_LOG_HZ * np.exp(_SLANEY_LOGSTEP * (np.maximum(m, _SLANEY_MIN_LOG_MEL) - _SLANEY_MIN_LOG_MEL))
    return np.where(m >= _SLANEY_MIN_LOG_MEL, log, lin)


def mel_frequencies(n: int, fmin: float, fmax: float, htk: bool = True) -> np.ndarray:
    """``n`` frequencies (Hz) equally spaced on the mel scale from ``fmin`` to ``fmax``.

    The ends are exactly ``fmin`` and ``fmax``: the round trip through the mel scale is off by
    an ulp or so (it differs between NumPy builds), which would leave a filter a value like
    2e-15 instead of 0 at an FFT bin that sits on ``fmax``."""
    f = np.asarray(mel_to_hz(np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n), htk), dtype=np.float64)
    if f.size:
        f[0], f[-1] = fmin, fmax
    return f


def mel_filterbank(
    sr: int,
    n_fft: int,
    n_mels: int = 80,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = True,
    norm: str | None = None,
) -> np.ndarray:
    """Triangular mel filters as a float64 matrix (n_mels, n_fft//2 + 1); ``mel = fb @ power``.

    Corner frequencies: ``mel_frequencies(n_mels + 2, fmin, fmax, htk)``; filter ``m`` has its
    peak at corner ``m + 1`` (see the module docstring for the scales).  ``fmax`` defaults to
    ``sr / 2``.  ``norm=None`` gives peak-1 triangles (torchaudio's default), ``"slaney"``
    constant-area ones (librosa's default).  A filter too narrow to hold any FFT bin would be
    all zeros: that is refused (use fewer mels or a larger ``n_fft``).
    """
    fn = "mel_filterbank"
    sr = _pos_int(fn, "sr", sr)
    n_fft = _pos_int(fn, "n_fft", n_fft)
    n_mels = _pos_int(fn, "n_mels", n_mels)
    fmax = sr / 2.0 if fmax is None else _real(fn, "fmax", fmax)
    fmin = _real(fn, "fmin", fmin)
    htk = _flag(fn, "htk", htk)
    if n_mels > n_fft // 2 + 1:
        raise ValueError(f"{fn}: n_mels={n_mels} is more than the {n_fft // 2 + 1} FFT bins of n_fft={n_fft}, so "
                         f"some filters would hold no FFT bin; use fewer n_mels or a larger n_fft")
    if not 0.0 <= fmin < fmax <= sr / 2.0:
        raise ValueError(f"{fn}: need 0 <= fmin < fmax <= sr/2 = {sr / 2}, got fmin={fmin}, fmax={fmax}")
    if norm not in (None, "slaney"):
        raise ValueError(f"{fn}: norm must be None or 'slaney', got {norm!r}")

    bin_hz = np.arange(n_fft // 2 + 1) * (sr / n_fft)  # (F,)
    corners = mel_frequencies(n_mels + 2, fmin, fmax, htk)  # (n_mels + 2,)
    lo, mid, hi = corners[:-2, None], corners[1:-1, None], corners[2:, None]  # (n_mels, 1) each
    rising = (bin_hz - lo) / (mid - lo)
    falling = (hi - bin_hz) / (hi - mid)
    fb = np.maximum(0.0, np.minimum(rising, falling))  # (n_mels, F)
    if norm == "slaney":
        fb *= 2.0 / (hi - lo)
    empty = np.flatnonzero(fb.max(axis=1) == 0)
    if empty.size:
        raise ValueError(
            f"{fn}: {empty.size} of the {n_mels} mel filters hold no FFT bin (first: filter {empty[0]}); "
            f"use fewer n_mels or a larger n_fft (bins are {sr / n_fft:.1f} Hz apart)"
        )
    return fb


def mel_spectrogram(
    x,
    sr: int,
    n_fft: int = 400,
    hop_length: int | None = None,
    win_length: int | None = None,
    n_mels: int = 80,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = True,
    norm: str | None = None,
    window="hann",
    center: bool = True,
    pad_mode: str = "reflect",
    power: float = 2.0,
) -> np.ndarray:
    """Mel-filtered power spectrogram: (..., L) → (..., n_mels, n_frames)."""
    spec = power_spectrogram(x, n_fft, hop_length, win_length, window, center, pad_mode, power)
    fb = mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk, norm).astype(spec.dtype)
    return np.matmul(fb, spec)  # (n_mels, F) @ (..., F, T) -> (..., n_mels, T)


def log_mel_spectrogram(
    x,
    sr: int,
    n_fft: int = 400,
    hop_length: int | None = None,
    win_length: int | None = None,
    n_mels: int = 80,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = True,
    norm: str | None = None,
    window="hann",
    center: bool = True,
    pad_mode: str = "reflect",
    amin: float = 1e-10,
) -> np.ndarray:
    """``ln(max(mel_spectrogram(x), amin))``: (..., L) → (..., n_mels, n_frames)."""
    amin = _real("log_mel_spectrogram", "amin", amin, positive=True)
    mel = mel_spectrogram(x, sr, n_fft, hop_length, win_length, n_mels, fmin, fmax, htk, norm, window, center, pad_mode)
    return np.log(np.maximum(mel, mel.dtype.type(amin)))


# ----------------------------------------------------------------------------- DCT-II and MFCC


def dct_matrix(n: int, n_out: int | None = None, dtype=np.float64) -> np.ndarray:
    """Orthonormal DCT-II matrix D (n_out, n): ``D[k, i] = s_k cos(π (i + ½) k / n)``.

    ``s_0 = √(1/n)``, ``s_k = √(2/n)``; with ``n_out = n``, ``D @ D.T = I``.
    """
    n = _pos_int("dct_matrix", "n", n)
    n_out = n if n_out is None else _pos_int("dct_matrix", "n_out", n_out)
    if n_out > n:
        raise ValueError(f"dct_matrix: n_out={n_out} is larger than n={n}")
    k = np.arange(n_out, dtype=np.float64)[:, None]
    i = np.arange(n, dtype=np.float64)[None, :]
    d = np.cos(np.pi * (i + 0.5) * k / n) * math.sqrt(2.0 / n)
    d[0] *= 1.0 / math.sqrt(2.0)
    return d.astype(dtype)


def dct(x, axis: int = -1, n_out: int | None = None) -> np.ndarray:
    """Orthonormal DCT-II of ``x`` along ``axis``, keeping the first ``n_out`` coefficients."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("dct: expected an array with at least one axis, got a scalar")
    if x.dtype.kind not in "f":
        x = x.astype(np.float64)
    d = dct_matrix(x.shape[axis], n_out, dtype=x.dtype)
    moved = np.moveaxis(x, axis, -1)
    return np.moveaxis(moved @ d.T, -1, axis)


def mfcc(
    x,
    sr: int,
    n_mfcc: int = 13,
    n_fft: int = 400,
    hop_length: int | None = None,
    win_length: int | None = None,
    n_mels: int = 80,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = True,
    norm: str | None = None,
    window="hann",
    center: bool = True,
    pad_mode: str = "reflect",
    amin: float = 1e-10,
) -> np.ndarray:
    """Mel-frequency cepstral coefficients: (..., L) → (..., n_mfcc, n_frames).

    The orthonormal DCT-II (:func:`dct_matrix`) of :func:`log_mel_spectrogram` along its mel axis.
    """
    n_mfcc = _pos_int("mfcc", "n_mfcc", n_mfcc)
    n_mels = _pos_int("mfcc", "n_mels", n_mels)
    if n_mfcc > n_mels:
        raise ValueError(f"mfcc: n_mfcc={n_mfcc} is larger than n_mels={n_mels}")
    logmel = log_mel_spectrogram(
        x, sr, n_fft, hop_length, win_length, n_mels, fmin, fmax, htk, norm, window, center, pad_mode, amin
    )
    d = dct_matrix(n_mels, n_mfcc, dtype=logmel.dtype)
    return np.matmul(d, logmel)  # (n_mfcc, n_mels) @ (..., n_mels, T) -> (..., n_mfcc, T)
