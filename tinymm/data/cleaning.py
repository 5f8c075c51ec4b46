"""Cleaning: inject realistic faults on purpose, then find and drop them from the data alone.

:func:`inject_faults` corrupts a fraction of the samples, each with one fault kind, and records
what it did; :func:`clean` looks only at the samples (never at that record) and drops every
sample that shows a fault, returning a :class:`CleanReport` with counts per kind. The tests
check that cleaning a faulty copy gives back exactly the samples that were not corrupted.

=====================  ===============================================  =========================
kind                   injected as                                      detected by
=====================  ===============================================  =========================
nan_pixels             1-5 % of image/video values set to NaN or ±inf   any non-finite value
blank_text             caption/question replaced by "" or whitespace    ``text.strip() == ""``
nan_audio              1-5 % of audio samples set to NaN or ±inf        any non-finite value
silent_audio           waveform set to zeros                            peak below 1e-6
clipped_audio          gain until >= 10 % of samples hit ±1, clipped    >0.2 % of samples at ±1
truncated_audio        cut at the end of a loud 10 ms frame             last 10 ms loud: RMS over
                                                                        2x the clip's noise floor
duplicate              an exact copy inserted after its source          same content hash as an
                                                                        earlier sample (the copy
                                                                        goes, the first stays)
label_out_of_range     label/answer set outside [0, num_classes)        ``not 0 <= y < C``
=====================  ===============================================  =========================

The detectors rely on properties every clean sample of the generated world has: pixels are
finite, text is non-empty, speech has background noise throughout, peaks stay under 0.9 and
every clip ends with at least 0.1 s of background noise only (see :mod:`tinymm.data.speech`).
On other data the same checks are a reasonable first pass, not a guarantee.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

from tinymm.data.world import check_rate

__all__ = ["FAULT_KINDS", "SampleList", "FaultRecord", "CleanReport", "inject_faults", "clean", "find_fault"]

FAULT_KINDS = (
    "nan_pixels",
    "blank_text",
    "silent_audio",
    "clipped_audio",
    "truncated_audio",
    "duplicate",
    "label_out_of_range",
    "nan_audio",
)
_FRAME_S = 0.01
_CLIP_LEVEL = 0.999


class SampleList(list):
    """A list of sample dicts that keeps its dataset's ``num_classes``/``class_names``/``task``."""

    def __init__(self, samples=(), *, num_classes=None, class_names=None, task=None):
        super().__init__(samples)
        self.num_classes, self.class_names, self.task = num_classes, class_names, task

    def like(self, samples) -> "SampleList":
        return SampleList(samples, num_classes=self.num_classes, class_names=self.class_names, task=self.task)


@dataclasses.dataclass
class FaultRecord:
    """What :func:`inject_faults` did. Positions refer to the faulty list it returned."""

    kinds: dict  # kind -> list of positions of faulty samples
    original: list  # position in the faulty list -> index of the source sample in the input
    corrupted: list  # input indices whose sample was corrupted in place (not in a clean result)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.kinds.values())


@dataclasses.dataclass
class CleanReport:
    """What :func:`clean` dropped: ``counts[kind]``, ``dropped[kind]`` (input positions), ``kept``."""

    counts: dict
    dropped: dict
    kept: list
    total_in: int

    @property
    def total_dropped(self) -> int:
        return sum(self.counts.values())

    def __str__(self) -> str:
        lines = [f"clean: {self.total_in} samples in, {len(self.kept)} kept, {self.total_dropped} dropped"]
        for k in FAULT_KINDS:
            lines.append(f"  {k:20s} {self.counts.get(k, 0):6d}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- helpers


def _copy_sample(s: dict) -> dict:
    out = {}
    for k, v in s.items():
        if isinstance(v, np.ndarray):
            out[k] = v.copy()
        elif isinstance(v, (dict, list)):
            out[k] = json.loads(json.dumps(v))
        else:
            out[k] = v
    return out


def _check_data(fn: str, data):
    if isinstance(data, (str, bytes, dict)) or not (hasattr(data, "__len__") and hasattr(data, "__getitem__")) or (
            isinstance(data, np.ndarray) and data.ndim == 0):
        raise TypeError(f"{fn}: expected a dataset or a list of sample dicts, got {type(data).__name__}")
    return data


def _check_samples(fn: str, samples) -> None:
    for pos, s in enumerate(samples):
        if not isinstance(s, dict):
            raise TypeError(f"{fn}: sample {pos} is a {type(s).__name__}, expected a dict")


def _check_num_classes(fn: str, C):
    if C is not None and (isinstance(C, bool) or not isinstance(C, (int, np.integer)) or C < 1):
        raise ValueError(f"{fn}: num_classes must be a positive int, got {C!r}")
    return C


#: clean/inject_faults copy every sample into memory; a longer (lazily generated) dataset is
#: refused with its length rather than copied for hours
MAX_SAMPLES = 1_000_000


def _materialise(data, fn: str = "clean") -> SampleList:
    meta = dict(
        num_classes=getattr(data, "num_classes", None),
        class_names=getattr(data, "class_names", None),
        task=getattr(data, "task", None),
    )
    if len(data) > MAX_SAMPLES:
        raise MemoryError(f"{fn}: {len(data)} samples would all be copied into memory (at most {MAX_SAMPLES}); "
                          f"work on a Subset or a shorter split")
    samples = []
    for i in range(len(data)):
        s = data[i]
        if not isinstance(s, dict):
            raise TypeError(f"{fn}: sample {i} is a {type(s).__name__}, expected a dict")
        samples.append(_copy_sample(s))
    return SampleList(samples, **meta)


def _text_key(s):
    for k in ("caption", "question"):
        if isinstance(s.get(k), str):
            return k
    return None


def _target_key(s):
    for k in ("label", "answer"):
        if k in s:
            return k
    return None


def _frame_rms(a: np.ndarray, sr: int) -> np.ndarray:
    f = max(int(_FRAME_S * sr), 1)
    n = len(a) // f
    if n == 0:
        return np.sqrt(np.mean(np.square(a, dtype=np.float64), keepdims=True))
    return np.sqrt(np.mean(np.square(a[: n * f].reshape(n, f), dtype=np.float64), axis=1))


def _applicable(s: dict, kind: str, num_classes) -> bool:
    if kind == "nan_pixels":
        return "image" in s or "video" in s
    if kind == "blank_text":
        return _text_key(s) is not None
    if kind in ("silent_audio", "clipped_audio", "truncated_audio", "nan_audio"):
        return isinstance(s.get("audio"), np.ndarray) and s["audio"].size > 0
    if kind == "label_out_of_range":
        return _target_key(s) is not None and num_classes is not None
    return True  # duplicate


# ----------------------------------------------------------------------------- injection


def _corrupt(s: dict, kind: str, rng: np.random.Generator, num_classes) -> None:
    if kind in ("nan_pixels", "nan_audio"):
        key = "audio" if kind == "nan_audio" else ("image" if "image" in s else "video")
        a = s[key]
        flat = a.reshape(-1)
        k = max(1, int(rng.uniform(0.01, 0.05) * flat.size))
        at = rng.choice(flat.size, size=k, replace=False)
        flat[at] = rng.choice(np.array([np.nan, np.inf, -np.inf], dtype=a.dtype), size=k)
    elif kind == "blank_text":
        s[_text_key(s)] = ("", " ", "   ", "\t", " \n ")[int(rng.integers(0, 5))]
    elif kind == "silent_audio":
        s["audio"] = np.zeros_like(s["audio"])
    elif kind == "clipped_audio":
        a = s["audio"]
        q = float(np.quantile(np.abs(a), 0.9))
        gain = max(1.0 / max(q, 1e-6), 2.0 / max(float(np.abs(a).max()), 1e-6)) * rng.uniform(1.0, 2.0)
        s["audio"] = np.clip(a * gain, -1.0, 1.0).astype(a.dtype)
    elif kind == "truncated_audio":
        a = s["audio"]
        sr = int(s.get("sample_rate", 8000))
        f = max(int(_FRAME_S * sr), 1)
        rms = _frame_rms(a, sr)
        loud = np.nonzero(rms >= 0.7 * rms.max())[0]
        loud = loud[loud >= 3] if (loud >= 3).any() else loud
        cut = (int(rng.choice(loud)) + 1) * f  # end of a loud frame
        s["audio"] = a[:cut].copy()
    elif kind == "label_out_of_range":
        k = _target_key(s)
        s[k] = int(num_classes + rng.integers(0, 5)) if rng.random() < 0.5 else int(-1 - rng.integers(0, 5))
    else:  # pragma: no cover
        raise ValueError(kind)


def inject_faults(data, rate: float, kinds=None, seed: int = 0) -> tuple[SampleList, FaultRecord]:
    """A faulty copy of ``data`` (a dataset or a list of sample dicts) and the record of faults.

    ``round(rate * len(data))`` distinct samples are picked; each gets one fault, the kinds taken
    in turn from ``kinds`` (default: every kind that applies to these samples) in random order.
    A ``"duplicate"`` fault leaves its sample intact and inserts an exact copy at a random later
    position, so the returned list is longer by the number of duplicates. ``data`` itself is not
    modified.
    """
    rate = check_rate("rate", rate)
    samples = _materialise(_check_data("inject_faults", data), "inject_faults")
    _check_samples("inject_faults", samples)
    if kinds is not None and (isinstance(kinds, (str, bytes, dict)) or not hasattr(kinds, "__iter__")
                              or (isinstance(kinds, np.ndarray) and kinds.ndim == 0)):
        raise TypeError(f"inject_faults: kinds must be a list of fault kinds, got {kinds!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"inject_faults: seed must be a non-negative int, got {seed!r}")
    n = len(samples)
    C = samples.num_classes
    if kinds is None:
        kinds = [k for k in FAULT_KINDS if n and any(_applicable(s, k, C) for s in samples[:1])]
    else:
        kinds = list(kinds)
        unknown = [k for k in kinds if k not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"inject_faults: unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
        for k in kinds:
            if n and not any(_applicable(s, k, C) for s in samples):
                raise ValueError(f"inject_faults: fault {k!r} does not apply to these samples")
    if not kinds:
        raise ValueError("inject_faults: no fault kind applies to these samples")
    rng = np.random.default_rng(seed)
    n_faults = int(round(rate * n))
    victims = rng.choice(n, size=n_faults, replace=False) if n_faults else np.zeros(0, np.int64)
    order = rng.permutation(len(kinds))
    placed = [(float(i), i, samples[i], None) for i in range(n)]  # (sort key, source, sample, kind)
    corrupted = []
    for j, v in enumerate(victims.tolist()):
        kind = kinds[order[j % len(kinds)]]
        if not _applicable(samples[v], kind, C):
            ok = [k for k in kinds if _applicable(samples[v], k, C)]
            if not ok:
                continue
            kind = ok[int(rng.integers(0, len(ok)))]
        if kind == "duplicate":
            placed.append((v + rng.uniform(0.5, n - v), v, _copy_sample(samples[v]), "duplicate"))
        else:
            _corrupt(samples[v], kind, rng, C)
            placed[v] = (float(v), v, samples[v], kind)
            corrupted.append(v)
    placed.sort(key=lambda t: t[0])
    out = samples.like(p[2] for p in placed)
    record = FaultRecord({k: [] for k in kinds}, [p[1] for p in placed], sorted(corrupted))
    for pos, p in enumerate(placed):
        if p[3] is not None:
            record.kinds[p[3]].append(pos)
    return out, record


# ----------------------------------------------------------------------------- detection


def _content_hash(s: dict) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for k in sorted(s):
        if k == "index":
            continue
        v = s[k]
        h.update(k.encode())
        if isinstance(v, np.ndarray):
            h.update(str(v.dtype).encode() + str(v.shape).encode())
            h.update(np.ascontiguousarray(v).tobytes())
        elif isinstance(v, (dict, list)):
            h.update(json.dumps(v, sort_keys=True).encode())
        else:
            h.update(repr(v).encode())
    return h.digest()


def find_fault(s: dict, num_classes=None) -> str | None:
    """The first fault kind (other than ``duplicate``) that sample ``s`` shows, or None."""
    for key in ("image", "video"):
        v = s.get(key)
        if isinstance(v, np.ndarray) and not np.isfinite(v).all():
            return "nan_pixels"
    for key in ("caption", "question", "transcript"):
        v = s.get(key)
        if isinstance(v, str) and not v.strip():
            return "blank_text"
    a = s.get("audio")
    if isinstance(a, np.ndarray):
        if not np.isfinite(a).all():  # before the level checks, which NaN would fool
            return "nan_audio"
        if a.size == 0 or float(np.abs(a).max()) < 1e-6:
            return "silent_audio"
        clipped = int(np.count_nonzero(np.abs(a) >= _CLIP_LEVEL))
        if clipped >= 3 and clipped > 0.002 * a.size:
            return "clipped_audio"
        sr = s.get("sample_rate", 8000)
        if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr < 1:
            raise ValueError(f"find_fault: sample_rate must be a positive int, got {sr!r}")
        sr = int(sr)
        rms = _frame_rms(a, sr)
        floor = float(np.quantile(rms, 0.1))
        f = max(int(_FRAME_S * sr), 1)
        tail = float(np.sqrt(np.mean(np.square(a[-f:], dtype=np.float64))))
        if rms.size >= 4 and tail > 2.0 * floor + 1e-6:
            return "truncated_audio"
    k = _target_key(s)
    if k is not None:
        y = s[k]
        if not isinstance(y, (int, np.integer)) or y < 0 or (num_classes is not None and y >= num_classes):
            return "label_out_of_range"
    return None


def clean(data, num_classes: int | None = None) -> tuple[SampleList, CleanReport]:
    """Drop every sample that shows a fault; return ``(cleaned, report)``.

    ``data`` is a dataset or a list of sample dicts (a :class:`SampleList` from
    :func:`inject_faults` carries ``num_classes``). Samples with labels need ``num_classes`` (from
    the argument or ``data.num_classes``) to check the label range. Of exact duplicates (same
    content, ``"index"`` aside) the first is kept.
    """
    samples = data if isinstance(data, SampleList) else _materialise(_check_data("clean", data), "clean")
    _check_samples("clean", samples)
    C = _check_num_classes("clean", num_classes if num_classes is not None else samples.num_classes)
    if C is None and any(_target_key(s) is not None for s in samples[:1]):
        raise ValueError("clean: these samples have labels; pass num_classes to check their range")
    counts = {k: 0 for k in FAULT_KINDS}
    dropped = {k: [] for k in FAULT_KINDS}
    kept = []
    seen = set()
    for pos, s in enumerate(samples):
        kind = find_fault(s, C)
        if kind is None:
            h = _content_hash(s)
            if h in seen:
                kind = "duplicate"
            else:
                seen.add(h)
        if kind is None:
            kept.append(pos)
        else:
            counts[kind] += 1
            dropped[kind].append(pos)
    return samples.like(samples[p] for p in kept), CleanReport(counts, dropped, kept, len(samples))
