"""Annotation: labels derived from the scene graph, class-name maps and label noise (floor 6).

The generated world is annotated by construction (the scene graph *is* the annotation); this
module turns it into the integer targets a classifier trains on, names the classes, and can make
the labels imperfect on purpose, as real annotation is, while recording exactly what it changed.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tinymm.data.world import COLOURS, DIRECTIONS, SHAPES, SIZES, Scenes, check_rate

__all__ = [
    "LABEL_KINDS",
    "ClassMap",
    "labels_from_scenes",
    "LabelNoise",
    "apply_label_noise",
]

#: what a classification label can be derived from -> its class names, in index order
LABEL_KINDS: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "colour": COLOURS,
    "size": SIZES,
    "count": ("1", "2", "3"),
    "motion": DIRECTIONS,
}


@dataclasses.dataclass(frozen=True)
class ClassMap:
    """Class names <-> indices: ``cm.index("red") == 1``, ``cm.name(1) == "red"``, ``len(cm)``."""

    names: tuple[str, ...]

    def __post_init__(self):
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"ClassMap: duplicate class names in {self.names}")

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown class {name!r}; classes: {', '.join(self.names)}") from None

    def name(self, i: int) -> str:
        if not 0 <= int(i) < len(self.names):
            raise IndexError(f"class index {i} out of range [0, {len(self.names)})")
        return self.names[int(i)]

    def to_dict(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}


def labels_from_scenes(scenes: Scenes, by: str) -> np.ndarray:
    """Integer labels (N,) int64 read off the scene graph.

    ``by`` is ``"shape"``, ``"colour"``, ``"size"``, ``"motion"`` (of the first object: use
    one-object scenes, or shared motion, for these to be the scene's label) or ``"count"`` (number
    of objects, label ``count - 1``).
    """
    if by not in LABEL_KINDS:
        raise ValueError(f"labels_from_scenes: unknown label kind {by!r}; known: {', '.join(LABEL_KINDS)}")
    if by == "count":
        return (scenes.count - 1).astype(np.int64)
    return getattr(scenes, by)[:, 0].astype(np.int64)


@dataclasses.dataclass
class LabelNoise:
    """The record of injected label noise: which samples got which wrong label."""

    rate: float
    indices: np.ndarray  # (F,) int64 positions whose label was changed
    original: np.ndarray  # (F,) int64 the true labels there
    noisy: np.ndarray  # (F,) int64 the labels now stored

    def __len__(self) -> int:
        return int(self.indices.size)


def apply_label_noise(
    labels: np.ndarray,
    num_classes: int,
    rate: float,
    rng: np.random.Generator,
    *,
    allowed: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, LabelNoise]:
    """Flip ``round(rate * N)`` labels, chosen at random, each to a *different* class.

    ``allowed`` optionally gives, per sample, the classes a flip may pick (e.g. only the colour
    answers for a colour question); by default any class. Returns the new labels (a copy) and
    the :class:`LabelNoise` record.
    """
    rate = check_rate("label_noise", rate)
    labels = np.asarray(labels, dtype=np.int64)
    n = labels.shape[0]
    k = int(round(rate * n))
    idx = np.sort(rng.choice(n, size=k, replace=False)) if k else np.zeros(0, np.int64)
    out = labels.copy()
    for j in idx:
        pool = np.arange(num_classes) if allowed is None else np.asarray(allowed[j])
        pool = pool[pool != labels[j]]
        if pool.size:
            out[j] = pool[rng.integers(0, pool.size)]
    changed = idx[out[idx] != labels[idx]]
    return out, LabelNoise(rate, changed.astype(np.int64), labels[changed], out[changed])
