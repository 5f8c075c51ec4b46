"""Augmentations that keep a sample's modalities consistent (floor 6: NumPy only).

Every transform is a callable ``t(sample, rng=None) -> sample``: it returns a new dict and never
writes into the arrays of the one it was given. ``rng`` is a ``numpy.random.Generator`` (or an
int seed); without one, the transform draws from its own generator, seeded by its ``seed``
argument, so a loader may call ``t(sample)`` or pass a per-sample generator such as
``default_rng([seed, epoch, index])`` for reproducible epochs. :class:`Compose` chains
transforms, threading one generator through them.

Consistency rules:

- :class:`HorizontalFlip` mirrors image and video and rewrites "left" <-> "right" in the caption,
  the question, the answer (``answer_vocab``), the label (``class_names``, e.g. ``video_cls``
  motion) and the scene graph (``x -> W - x``, motion left <-> right), so every answer stays true.
- :class:`RandomTranslate` shifts image/video by whole pixels, only as far as keeps every object
  (in every frame) fully in view, and moves the scene graph with it; relations are unchanged.
- :class:`ColorJitter` is bounded so that no object's colour changes name (see
  :data:`~tinymm.data.world.PALETTE`).
- Text transforms (:class:`TokenDropout`, :class:`SynonymSubstitution`) keep the words that carry
  meaning by default; when a sample has a spoken question (``audio`` + ``speaker``), any change
  to the question's text is spoken again with the same speaker, so the audio says the new text.
  Put text transforms before audio transforms in a :class:`Compose`.
"""
from __future__ import annotations

import re

import numpy as np

from tinymm.data.language import PLURAL, SURFACE, swap_left_right
from tinymm.data.questions import ANSWER_VOCAB
from tinymm.data.speech import speak
from tinymm.data.world import BACKGROUND, ConfigError, check_rate, scenes_from_dicts, video_positions

__all__ = [
    "Transform",
    "Compose",
    "HorizontalFlip",
    "RandomTranslate",
    "GaussianNoise",
    "ColorJitter",
    "AudioTimeShift",
    "AudioGain",
    "AudioNoise",
    "SpecAugment",
    "TokenDropout",
    "SynonymSubstitution",
    "MAX_COLOR_JITTER",
    "CONTENT_WORDS",
    "Augmented",
]

#: brightness + channel shift must stay under this: then any colour moves at most
#: sqrt(3) * 0.14 = 0.24 in RGB, under half the distance of the closest palette pair (0.52).
MAX_COLOR_JITTER = 0.14


def _number(owner: str, name: str, value, low=None, high=None) -> float:
    """``value`` as a finite float within [low, high], or ConfigError naming what came."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{owner}: {name} must be a number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise ConfigError(f"{owner}: {name} must be finite, got {value}")
    if (low is not None and v < low) or (high is not None and v > high):
        raise ConfigError(f"{owner}: {name} must be in [{low}, {high}], got {value}")
    return v


def _names(owner: str, name: str, names) -> list:
    if isinstance(names, (str, bytes, dict)) or not hasattr(names, "__iter__") or (
            isinstance(names, np.ndarray) and names.ndim == 0):
        raise ConfigError(f"{owner}: {name} must be a list of names, got {names!r:.80}")
    names = list(names)
    if not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{owner}: {name} must hold strings, got {names!r:.80}")
    return names


def _count(owner: str, name: str, value, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= high:
        raise ConfigError(f"{owner}: {name} must be an int in [0, {high}], got {value!r}")
    return int(value)


def _keys(owner: str, keys) -> tuple:
    if isinstance(keys, str) or not hasattr(keys, "__iter__"):
        raise ConfigError(f"{owner}: keys must be a list of sample keys, got {keys!r}")
    keys = tuple(keys)
    if not all(isinstance(k, str) for k in keys):
        raise ConfigError(f"{owner}: keys must be strings, got {keys!r}")
    return keys


# key -> (what it holds, number of axes): the arrays a transform may read
_SAMPLE_ARRAYS = {"image": ("image (C, H, W)", 3), "video": ("video (T, C, H, W)", 4), "audio": ("waveform (L,)", 1)}


def _check_sample(owner: str, s: dict) -> None:
    """The sample's media are float arrays of the documented rank (types only: no data scan)."""
    for key, (what, ndim) in _SAMPLE_ARRAYS.items():
        if key not in s:
            continue
        a = s[key]
        if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
            kind = f"array of dtype {a.dtype}" if isinstance(a, np.ndarray) else type(a).__name__
            raise TypeError(f"{owner}: sample[{key!r}] must be a float NumPy {what}, got {kind}")
        if a.ndim != ndim:
            raise ValueError(f"{owner}: sample[{key!r}] must be a {what}, got shape {tuple(a.shape)}")
    if "sample_rate" in s:
        sr = s["sample_rate"]
        if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr < 1:
            raise ValueError(f"{owner}: sample['sample_rate'] must be a positive int, got {sr!r}")
    for key in ("answer", "label"):
        if key in s and (isinstance(s[key], bool) or not isinstance(s[key], (int, np.integer))):
            raise TypeError(f"{owner}: sample[{key!r}] must be an int class index, got {s[key]!r:.60}")
    for key in ("caption", "question", "transcript"):
        if key in s and not isinstance(s[key], str):
            raise TypeError(f"{owner}: sample[{key!r}] must be a str, got {type(s[key]).__name__}")
    if "scene" in s:
        _check_scene(owner, s["scene"])


def _check_scene(owner: str, sc) -> None:
    """A scene graph as :meth:`~tinymm.data.world.Scenes.scene` makes it (the fields transforms read)."""
    if not isinstance(sc, dict) or not isinstance(sc.get("objects"), list):
        raise TypeError(f"{owner}: sample['scene'] must be a scene dict with an 'objects' list, got {sc!r:.80}")
    size = sc.get("image_size")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"{owner}: sample['scene']['image_size'] must be a positive int, got {size!r}")
    for k, o in enumerate(sc["objects"]):
        if not isinstance(o, dict):
            raise TypeError(f"{owner}: scene object {k} must be a dict, got {type(o).__name__}")
        for f in ("x", "y", "radius"):
            v = o.get(f)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
                raise ValueError(f"{owner}: scene object {k}[{f!r}] must be a finite number, got {v!r}")
        if not isinstance(o.get("motion"), str):
            raise ValueError(f"{owner}: scene object {k}['motion'] must be a direction name, got {o.get('motion')!r}")


def _check_seed(owner: str, seed):
    if seed is None or isinstance(seed, (np.random.SeedSequence, np.random.Generator)):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"{owner}: seed must be None or a non-negative int, got {seed!r}")
    return int(seed)


def _as_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(_check_seed("rng", rng))


class Transform:
    """Base class: ``__call__(sample, rng=None)``; subclasses implement ``apply(sample, rng)``."""

    def __init__(self, seed=None):
        self._rng = np.random.default_rng(_check_seed(type(self).__name__, seed))

    def __call__(self, sample: dict, rng=None) -> dict:
        if not isinstance(sample, dict):
            raise TypeError(f"{type(self).__name__}: expected a sample dict, got {type(sample).__name__}")
        _check_sample(type(self).__name__, sample)
        return self.apply(dict(sample), self._rng if rng is None else _as_rng(rng))

    def apply(self, sample: dict, rng: np.random.Generator) -> dict:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply ``transforms`` in order with one generator."""

    def __init__(self, transforms, seed=None):
        super().__init__(seed)
        if isinstance(transforms, (str, bytes, dict)) or not hasattr(transforms, "__iter__") or (
                isinstance(transforms, np.ndarray) and transforms.ndim == 0):
            raise TypeError(f"Compose: expected a list of transforms, got {type(transforms).__name__}")
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: {t!r} is not callable")

    def apply(self, sample, rng):
        for t in self.transforms:
            sample = t(sample, rng)
        return sample


def _respeak(sample: dict, old_question: str) -> None:
    """If ``sample`` holds the spoken form of its question and the text changed, say it again."""
    if (
        sample.get("question") != old_question
        and isinstance(sample.get("audio"), np.ndarray)
        and isinstance(sample.get("speaker"), dict)
    ):
        sample["audio"] = speak(sample["question"], sample["speaker"], int(sample.get("sample_rate", 8000)))


# ----------------------------------------------------------------------------- geometry


class HorizontalFlip(Transform):
    """Mirror left-right with probability ``p``, rewriting left/right everywhere (module doc).

    ``answer_vocab`` names the ``"answer"`` indices (default: the world's QA vocabulary);
    ``class_names`` names the ``"label"`` indices (give it for labels such as motion directions;
    labels are left alone without it).
    """

    def __init__(self, p: float = 0.5, *, answer_vocab=ANSWER_VOCAB, class_names=None, seed=None):
        super().__init__(seed)
        self.p = check_rate("p", p)
        self.answer_vocab = None if answer_vocab is None else _names("HorizontalFlip", "answer_vocab", answer_vocab)
        self.class_names = None if class_names is None else _names("HorizontalFlip", "class_names", class_names)

    @staticmethod
    def _swap_index(y, names):
        if names is None or not (0 <= y < len(names)):
            return y
        w = names[y]
        if w in ("left", "right"):
            return names.index("right" if w == "left" else "left")
        return y

    def apply(self, s, rng):
        if rng.random() >= self.p:
            return s
        for key in ("image", "video"):
            if key in s:
                s[key] = np.ascontiguousarray(s[key][..., ::-1])
        for key in ("caption", "question", "transcript"):
            if isinstance(s.get(key), str):
                s[key] = swap_left_right(s[key])
        if "answer" in s:
            s["answer"] = self._swap_index(int(s["answer"]), self.answer_vocab)
        if "label" in s:
            s["label"] = self._swap_index(int(s["label"]), self.class_names)
        if isinstance(s.get("scene"), dict):
            sc = dict(s["scene"])
            W = sc["image_size"]
            flip_dir = {"left": "right", "right": "left"}
            sc["objects"] = [
                dict(o, x=W - o["x"], motion=flip_dir.get(o["motion"], o["motion"])) for o in sc["objects"]
            ]
            s["scene"] = sc
        if isinstance(s.get("audio"), np.ndarray) and isinstance(s.get("speaker"), dict) and isinstance(s.get("question"), str):
            s["audio"] = speak(s["question"], s["speaker"], int(s.get("sample_rate", 8000)))
        return s


def _object_extent(scene: dict, frames: int | None):
    """Smallest and largest x and y covered by any object, in any of ``frames`` video frames.

    Extents include the 0.5 px anti-aliased rim (as the layout does), so no drawn pixel is lost
    and, for video, the path still needs no clamping: the scene graph still describes the frames.
    """
    objs = scene["objects"]
    r = np.array([o["radius"] for o in objs]) + 0.5
    if frames:
        xs, ys = video_positions(scenes_from_dicts([scene]), frames)  # (T, 1, K)
        x, y = xs[:, 0, : len(objs)], ys[:, 0, : len(objs)]
    else:
        x = np.array([[o["x"] for o in objs]])
        y = np.array([[o["y"] for o in objs]])
    return float((x - r).min()), float((x + r).max()), float((y - r).min()), float((y + r).max())


class RandomTranslate(Transform):
    """Shift image/video by whole pixels, at most ``max_shift`` (px, or a fraction of the side
    when < 1) each way, never moving an object (in any frame) out of view; needs ``"scene"``.
    The uncovered border is filled with the background colour."""

    def __init__(self, max_shift=0.125, *, seed=None):
        super().__init__(seed)
        self.max_shift = _number("RandomTranslate", "max_shift", max_shift, 0.0)

    def apply(self, s, rng):
        sc = s.get("scene")
        if not isinstance(sc, dict):
            raise ValueError("RandomTranslate needs the sample's 'scene' to keep objects in view")
        T = s["video"].shape[0] if "video" in s else None
        x0, x1, y0, y1 = _object_extent(sc, T)
        H = sc["image_size"]
        m = self.max_shift if self.max_shift >= 1 else self.max_shift * H
        m = int(np.floor(m))
        # keep [x0 + dx, x1 + dx] inside [0, H]
        lo_x, hi_x = max(-m, int(np.ceil(-x0))), min(m, int(np.floor(H - x1)))
        lo_y, hi_y = max(-m, int(np.ceil(-y0))), min(m, int(np.floor(H - y1)))
        dx = int(rng.integers(lo_x, hi_x + 1)) if hi_x >= lo_x else 0
        dy = int(rng.integers(lo_y, hi_y + 1)) if hi_y >= lo_y else 0
        if dx == 0 and dy == 0:
            return s
        for key in ("image", "video"):
            if key in s:
                _need_rgb("RandomTranslate", key, s[key])
                s[key] = _shift(s[key], dx, dy)
        s["scene"] = dict(sc, objects=[dict(o, x=o["x"] + dx, y=o["y"] + dy) for o in sc["objects"]])
        return s


def _need_rgb(owner: str, key: str, a: np.ndarray) -> None:
    if a.shape[-3] != 3:
        raise ValueError(f"{owner}: sample[{key!r}] must have 3 colour channels, got shape {tuple(a.shape)}")


def _shift(a: np.ndarray, dx: int, dy: int) -> np.ndarray:
    out = np.empty_like(a)
    out[...] = BACKGROUND.reshape(3, 1, 1).astype(a.dtype)
    H, W = a.shape[-2:]
    src_y = slice(max(0, -dy), H - max(0, dy))
    dst_y = slice(max(0, dy), H - max(0, -dy))
    src_x = slice(max(0, -dx), W - max(0, dx))
    dst_x = slice(max(0, dx), W - max(0, -dx))
    out[..., dst_y, dst_x] = a[..., src_y, src_x]
    return out


# ----------------------------------------------------------------------------- pixels


class GaussianNoise(Transform):
    """Add N(0, ``std``^2) to image/video pixels, then clip to [0, 1]."""

    def __init__(self, std: float = 0.03, *, seed=None):
        super().__init__(seed)
        self.std = check_rate("std", std)

    def apply(self, s, rng):
        for key in ("image", "video"):
            if key in s:
                a = s[key]
                s[key] = np.clip(a + self.std * rng.standard_normal(a.shape, dtype=np.float32), 0, 1).astype(a.dtype)
        return s


class ColorJitter(Transform):
    """Scale all channels by ``1 + U(-brightness, brightness)`` and shift each channel by
    ``U(-channel, channel)``; refused when ``brightness + channel > MAX_COLOR_JITTER`` since a
    colour could then change its name."""

    def __init__(self, brightness: float = 0.05, channel: float = 0.05, *, seed=None):
        super().__init__(seed)
        self.brightness = check_rate("brightness", brightness)
        self.channel = check_rate("channel", channel)
        if brightness + channel > MAX_COLOR_JITTER + 1e-9:
            raise ConfigError(
                f"colour jitter brightness + channel = {brightness + channel:g} could change a colour's "
                f"name; keep it <= {MAX_COLOR_JITTER}"
            )

    def apply(self, s, rng):
        b = np.float32(1 + rng.uniform(-self.brightness, self.brightness))
        c = rng.uniform(-self.channel, self.channel, size=3).astype(np.float32).reshape(3, 1, 1)
        for key in ("image", "video"):
            if key in s:
                a = s[key]
                _need_rgb("ColorJitter", key, a)
                s[key] = np.clip(a * b + c, 0, 1).astype(a.dtype)
        return s


# ----------------------------------------------------------------------------- audio


def _noise_std_at_start(a: np.ndarray, n: int) -> float:
    head = a[: max(n, 8)]
    return float(np.std(head)) if head.size else 0.0


class AudioTimeShift(Transform):
    """Shift the waveform by up to ``max_shift_s`` seconds either way: later by prepending
    background-like noise (matching the clip's first samples), earlier by dropping leading
    samples (the world's clips start with >= 0.1 s of background, so no speech is lost)."""

    def __init__(self, max_shift_s: float = 0.05, *, seed=None):
        super().__init__(seed)
        self.max_shift_s = _number("AudioTimeShift", "max_shift_s", max_shift_s, 0.0, 0.1)

    def apply(self, s, rng):
        if "audio" not in s:
            return s
        a = s["audio"]
        sr = int(s.get("sample_rate", 8000))
        m = int(self.max_shift_s * sr)
        k = int(rng.integers(-m, m + 1)) if m else 0
        if k > 0:
            pad = (_noise_std_at_start(a, int(0.02 * sr)) * rng.standard_normal(k)).astype(a.dtype)
            s["audio"] = np.concatenate([pad, a])
        elif k < 0:
            s["audio"] = a[min(-k, max(len(a) - 1, 0)) :].copy()
        return s


class AudioGain(Transform):
    """Multiply by a gain of ``U(min_db, max_db)`` dB, capped so the peak stays <= 0.95."""

    def __init__(self, min_db: float = -6.0, max_db: float = 6.0, *, seed=None):
        super().__init__(seed)
        # beyond +-60 dB a clip is silence or all clipping: a typo, not an augmentation
        min_db = _number("AudioGain", "min_db", min_db, -60.0, 60.0)
        max_db = _number("AudioGain", "max_db", max_db, -60.0, 60.0)
        if not min_db <= max_db:
            raise ConfigError(f"AudioGain: min_db must be <= max_db, got {min_db} > {max_db}")
        self.min_db, self.max_db = min_db, max_db

    def apply(self, s, rng):
        if "audio" not in s:
            return s
        a = s["audio"]
        g = 10 ** (rng.uniform(self.min_db, self.max_db) / 20)
        peak = float(np.abs(a).max()) if a.size else 0.0
        if peak * g > 0.95:
            g = 0.95 / peak
        s["audio"] = (a * g).astype(a.dtype)
        return s


class AudioNoise(Transform):
    """Add white noise at an SNR drawn from ``snr_db`` (a (low, high) range in dB)."""

    def __init__(self, snr_db=(10.0, 30.0), *, seed=None):
        super().__init__(seed)
        try:
            lo, hi = snr_db
        except (TypeError, ValueError):
            raise ConfigError(f"AudioNoise: snr_db must be a (low, high) pair in dB, got {snr_db!r}") from None
        lo = _number("AudioNoise", "snr_db low", lo, -60.0, 120.0)
        hi = _number("AudioNoise", "snr_db high", hi, -60.0, 120.0)
        if not lo <= hi:
            raise ConfigError(f"AudioNoise: snr_db must be a (low, high) range, got {snr_db}")
        self.snr_db = (lo, hi)

    def apply(self, s, rng):
        if "audio" not in s:
            return s
        a = s["audio"]
        rms = float(np.sqrt(np.mean(np.square(a, dtype=np.float64)))) if a.size else 0.0
        std = rms / 10 ** (rng.uniform(*self.snr_db) / 20)
        out = a + (std * rng.standard_normal(a.shape)).astype(a.dtype)
        peak = float(np.abs(out).max()) if out.size else 0.0
        if peak > 0.99:
            out = out * (0.99 / peak)
        s["audio"] = out.astype(a.dtype)
        return s


class SpecAugment(Transform):
    """SpecAugment time and frequency masks (Park et al., 2019).

    With ``key`` naming a 2-D array of the sample shaped (frequency, time) — a spectrogram made by
    the loader — masked bands and spans are set to that array's mean. Without it, the masks
    apply to the waveform ``"audio"``: a time mask zeroes a span of samples, a frequency mask
    zeroes a band of the signal's spectrum (FFT, zero, inverse FFT). Each of ``freq_masks``
    bands is at most ``max_freq`` of the band range wide, each of ``time_masks`` spans at most
    ``max_time`` of the length.
    """

    def __init__(self, freq_masks: int = 1, max_freq: float = 0.15, time_masks: int = 1,
                 max_time: float = 0.1, *, key: str | None = None, seed=None):
        super().__init__(seed)
        self.freq_masks = _count("SpecAugment", "freq_masks", freq_masks, 100)
        self.time_masks = _count("SpecAugment", "time_masks", time_masks, 100)
        self.max_freq, self.max_time = check_rate("max_freq", max_freq), check_rate("max_time", max_time)
        if key is not None and not isinstance(key, str):
            raise ConfigError(f"SpecAugment: key must be a sample key (str) or None, got {key!r}")
        self.key = key

    def _spans(self, rng, n, count, frac):
        out = []
        for _ in range(count):
            w = int(rng.integers(0, int(frac * n) + 1))
            start = int(rng.integers(0, max(n - w, 0) + 1))
            out.append((start, start + w))
        return out

    def apply(self, s, rng):
        if self.key is not None:
            if self.key not in s:
                return s
            spec = np.array(s[self.key], copy=True)
            if spec.ndim != 2:
                raise ValueError(f"SpecAugment: {self.key!r} must be 2-D (frequency, time), got {tuple(spec.shape)}")
            fill = spec.mean()
            for a, b in self._spans(rng, spec.shape[0], self.freq_masks, self.max_freq):
                spec[a:b, :] = fill
            for a, b in self._spans(rng, spec.shape[1], self.time_masks, self.max_time):
                spec[:, a:b] = fill
            s[self.key] = spec
            return s
        if "audio" not in s:
            return s
        a = s["audio"]
        if a.size == 0:
            return s
        out = a.astype(np.float64)
        if self.freq_masks:
            spec = np.fft.rfft(out)
            for lo, hi in self._spans(rng, spec.shape[0], self.freq_masks, self.max_freq):
                spec[lo:hi] = 0
            out = np.fft.irfft(spec, n=len(out))
        for lo, hi in self._spans(rng, len(out), self.time_masks, self.max_time):
            out[lo:hi] = 0
        s["audio"] = out.astype(a.dtype)
        return s


# ----------------------------------------------------------------------------- text

_WORD_RE = re.compile(r"[A-Za-z0-9]+|[^A-Za-z0-9\s]+")
#: words that carry a caption's or question's meaning; TokenDropout keeps them by default
CONTENT_WORDS = frozenset(
    [f for forms in SURFACE.values() for f in forms]
    + list(PLURAL.values())
    + ["left", "right", "up", "down", "what", "which", "how", "many", "or", "shape", "size", "move",
       "moving", "way", "direction", "number", "there", "is", "are", "the", "a", "an", "any", "of",
       "does", "can", "contain", "have", "where", "that", "and", "with", "to"]
)
# A text after dropout may be ungrammatical (that is the point); the words that decide a
# question's answer (attributes, relations, question words) are always kept.


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text)


def _join(tokens: list[str]) -> str:
    out = ""
    for t in tokens:
        if out and t[0].isalnum():
            out += " "
        out += t
    return out


class TokenDropout(Transform):
    """Drop each word of ``keys`` with probability ``p`` unless it is in ``protect`` (default:
    :data:`CONTENT_WORDS`; pass ``protect=()`` to drop any word). At least one word remains."""

    def __init__(self, p: float = 0.1, *, keys=("caption", "question"), protect=CONTENT_WORDS, seed=None):
        super().__init__(seed)
        self.p = check_rate("p", p)
        self.keys = _keys("TokenDropout", keys)
        if isinstance(protect, str) or not hasattr(protect, "__iter__") or not all(isinstance(w, str) for w in protect):
            raise ConfigError(f"TokenDropout: protect must be a collection of words, got {protect!r:.80}")
        self.protect = frozenset(w.lower() for w in protect)

    def apply(self, s, rng):
        old_q = s.get("question")
        for key in self.keys:
            text = s.get(key)
            if not isinstance(text, str):
                continue
            toks = _words(text)
            keep = [
                t for t in toks
                if not t[0].isalnum() or t.lower() in self.protect or rng.random() >= self.p
            ]
            if not any(t[0].isalnum() for t in keep):
                keep = toks
            s[key] = _join(keep)
        _respeak(s, old_q)
        return s


_ALTERNATIVES: dict[str, tuple[str, ...]] = {}
for _forms in SURFACE.values():
    if len(_forms) > 1:
        for _f in _forms:
            _ALTERNATIVES[_f] = _forms
        plurals = tuple(PLURAL[f] for f in _forms if f in PLURAL)
        if len(plurals) > 1:
            for _p in plurals:
                _ALTERNATIVES[_p] = plurals


class SynonymSubstitution(Transform):
    """Replace each word that has synonyms (``big``/``large``, ``disc``/``circle``/``disk``, ...)
    with probability ``p`` by one of its synonyms (never changing its meaning or number)."""

    def __init__(self, p: float = 0.3, *, keys=("caption", "question"), seed=None):
        super().__init__(seed)
        self.p = check_rate("p", p)
        self.keys = _keys("SynonymSubstitution", keys)

    def apply(self, s, rng):
        old_q = s.get("question")
        for key in self.keys:
            text = s.get(key)
            if not isinstance(text, str):
                continue
            toks = _words(text)
            for i, t in enumerate(toks):
                alts = _ALTERNATIVES.get(t)
                if alts and rng.random() < self.p:
                    toks[i] = alts[int(rng.integers(0, len(alts)))]
            s[key] = _join(toks)
        _respeak(s, old_q)
        return s


# ----------------------------------------------------------------------------- in a loader


class Augmented:
    """A dataset view that applies ``transform`` to every sample it returns.

    The generator for a sample is ``default_rng([seed, epoch, index])``, so augmented data is
    reproducible and differs between epochs. The epoch is the one set by :meth:`set_epoch`;
    until it is called, it is how many times that index has been read before (so a loader that
    reads each item once per epoch sees epoch 0, 1, 2, ... without being told).
    """

    def __init__(self, dataset, transform, seed: int = 0):
        if not callable(transform):
            raise TypeError(f"Augmented: transform must be callable, got {type(transform).__name__}")
        if isinstance(dataset, (str, bytes, dict)) or not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"Augmented: dataset must have __len__ and __getitem__, got {type(dataset).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"Augmented: seed must be a non-negative int, got {seed!r}")
        self.dataset, self.transform, self.seed = dataset, transform, int(seed)
        self.epoch: int | None = None
        self._reads: dict[int, int] = {}
        for attr in ("class_names", "answer_vocab", "num_classes", "task", "split"):
            if hasattr(dataset, attr):
                setattr(self, attr, getattr(dataset, attr))

    def set_epoch(self, epoch: int) -> None:
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ConfigError(f"Augmented.set_epoch: epoch must be a non-negative int, got {epoch!r}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i) -> dict:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"Augmented: index must be an int, got {type(i).__name__}")
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"Augmented: index {i} is out of range for a dataset of {len(self)} samples")
        i %= len(self)
        if self.epoch is None:
            epoch = self._reads.get(i, 0)
            self._reads[i] = epoch + 1
        else:
            epoch = self.epoch
        rng = np.random.default_rng([self.seed, epoch, i % len(self)])
        return self.transform(self.dataset[i], rng)
