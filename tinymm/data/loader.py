"""Datasets, batching and collation (floor 6: NumPy only).

A **dataset** is any object with ``__len__`` and ``__getitem__(i) -> dict`` (the
:class:`Dataset` protocol; no base class needed).  A :class:`DataLoader` cuts the indices into
batches, fetches the samples and hands the list to a *collate function* that turns a list of
dicts into one dict of NumPy arrays::

    loader = DataLoader(dataset, batch_size=32, shuffle=True, seed=0,
                        collate_fn=make_collate(tokenizer))
    for epoch in range(3):
        for batch in loader:          # epoch 0, 1, 2: a fresh permutation each time
            batch["image"]            # float32 (B, 3, H, W)
            batch["audio"]            # float32 (B, Lmax), zero-padded
            batch["audio_mask"]       # bool    (B, Lmax), True on real samples
            batch["caption_ids"]      # int64   (B, T), [PAD]-padded token ids

**Deterministic shuffling.**  Epoch ``e`` visits ``numpy.random.default_rng([seed, e]).permutation(n)``:
the order depends on nothing but ``(seed, e)``.  Each ``iter(loader)`` uses the loader's current
epoch and then advances it, so looping twice gives epochs 0 then 1; ``set_epoch(e)`` picks the
epoch of the next loop (to resume a run).  ``epoch_size=k`` makes an epoch a window of k
consecutive samples of a long dataset, the next epoch the next window (fresh generated samples
each epoch; see :meth:`DataLoader.window`).  ``seed=None`` draws one seed from the OS at
construction and keeps it in ``loader.seed``, so even that run can be repeated.

**Prefetch.**  With ``prefetch=N > 0`` one background thread builds up to ``N`` batches ahead
(NumPy releases the GIL in most of its copying, so fetching overlaps the training step).  An
exception raised in that thread is raised again in the loop, with its original traceback; leaving
the loop early (``break``, an exception, or ``close()`` on the iterator) stops and joins the thread.
"""
from __future__ import annotations

import math
import numbers
import queue
import threading
import warnings
from typing import Any, Callable, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from tinymm.backend import is_warn_always_enabled

__all__ = [
    "Dataset",
    "ArrayDataset",
    "Subset",
    "random_split",
    "default_collate",
    "TextCollate",
    "make_collate",
    "DataLoader",
    "batch_iterator",
]


@runtime_checkable
class Dataset(Protocol):
    """Anything with ``__len__`` and ``__getitem__(i) -> dict`` (sample keys: see DESIGN/the world)."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> dict: ...


def _check_dataset(fn: str, dataset) -> None:
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise TypeError(f"{fn}: dataset must have __len__ and __getitem__, got {type(dataset).__name__}")


def _index(fn: str, i, n: int) -> int:
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
        raise TypeError(f"{fn}: index must be an int, got {type(i).__name__}")
    i = int(i)
    if not -n <= i < n:
        raise IndexError(f"{fn}: index {i} is out of range for a dataset of {n} samples")
    return i + n if i < 0 else i


# ----------------------------------------------------------------------------- small datasets


class ArrayDataset:
    """A dataset over aligned arrays: ``ArrayDataset(image=X, label=y)[i] == {"image": X[i], "label": y[i]}``.

    Every array must have the same length along axis 0.  A 1-D array gives NumPy scalars.
    """

    def __init__(self, **arrays):
        if not arrays:
            raise ValueError("ArrayDataset: give at least one array, e.g. ArrayDataset(image=X, label=y)")
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        lengths = {k: (v.shape[0] if v.ndim else None) for k, v in self.arrays.items()}
        if any(n is None for n in lengths.values()) or len(set(lengths.values())) != 1:
            raise ValueError(f"ArrayDataset: arrays must share their first dimension, got lengths {lengths}")
        self._n = next(iter(lengths.values()))

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i) -> dict:
        i = _index("ArrayDataset", i, self._n)
        return {k: v[i] for k, v in self.arrays.items()}


class Subset:
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices: Sequence[int]):
        _check_dataset("Subset", dataset)
        self.dataset = dataset
        self.indices = indices

    @property
    def indices(self):
        """The indices as given (PyTorch keeps the object: random_split's are a list of ints)."""
        return self._given

    @indices.setter
    def indices(self, indices) -> None:
        idx = np.asarray(indices)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise TypeError(f"Subset: indices must be a 1-D sequence of ints, got shape {tuple(idx.shape)} dtype {idx.dtype}")
        n = len(self.dataset)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"Subset: indices must lie in [0, {n}), got min {idx.min()} max {idx.max()}")
        self._given, self._positions = indices, idx.astype(np.int64)

    def __len__(self) -> int:
        return int(self._positions.shape[0])

    def __getitem__(self, i) -> dict:
        i = _index("Subset", i, len(self))
        return self.dataset[int(self._positions[i])]

    def fit_cache(self, num_samples: int | None = None) -> bool:
        # a random subset reads anywhere in its parent: the parent's whole span must stay cached
        fit = getattr(self.dataset, "fit_cache", None)
        return True if fit is None else fit(None)


def random_split(dataset, fractions: Sequence[float], seed: int = 0) -> list[Subset]:
    """Split ``dataset`` into disjoint random :class:`Subset` s.

    ``fractions`` are either fractions summing to 1 (e.g. ``(0.8, 0.1, 0.1)``; sizes are
    floored and the leftover samples go one each to the first subsets) or integer sizes summing
    to ``len(dataset)``.  The permutation is ``default_rng(seed).permutation(len(dataset))``.
    """
    _check_dataset("random_split", dataset)
    n = len(dataset)
    if isinstance(fractions, (str, bytes, dict)) or not hasattr(fractions, "__iter__") or (
            isinstance(fractions, np.ndarray) and fractions.ndim == 0):
        raise TypeError(f"random_split: fractions must be a list of fractions or sizes, got {type(fractions).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"random_split: seed must be a non-negative int, got {seed!r}")
    if n > DataLoader.max_shuffle:
        raise MemoryError(f"random_split: a permutation of {n} samples needs {n * 8 / 2**30:.1f} GiB; "
                          f"split at most {DataLoader.max_shuffle} samples")
    fr = list(fractions)
    if not fr:
        raise ValueError("random_split: fractions is empty")
    if all(isinstance(f, (int, np.integer)) and not isinstance(f, bool) for f in fr) and sum(fr) == n:
        sizes = [int(f) for f in fr]
        if any(s < 0 for s in sizes):
            raise ValueError(f"random_split: sizes must be >= 0, got {sizes}")
    else:
        if any(not isinstance(f, numbers.Real) or isinstance(f, bool) or not math.isfinite(f) or f < 0 for f in fr) \
                or not math.isclose(sum(fr), 1.0, abs_tol=1e-6):
            raise ValueError(
                f"random_split: fractions must be non-negative and sum to 1 (or be sizes summing to {n}), got {fr}"
            )
        sizes = [int(math.floor(n * f)) for f in fr]
        for j in range(n - sum(sizes)):
            sizes[j % len(sizes)] += 1
    perm = np.random.default_rng(seed).permutation(n)
    out, start = [], 0
    for s in sizes:
        out.append(Subset(dataset, perm[start : start + s]))
        start += s
    return out


# ----------------------------------------------------------------------------- collation


def _key_tuple(fn: str, name: str, keys) -> tuple:
    if isinstance(keys, (str, bytes, dict)) or not hasattr(keys, "__iter__") or (
            isinstance(keys, np.ndarray) and keys.ndim == 0):
        raise TypeError(f"{fn}: {name} must be a list of sample keys, got {keys!r:.80}")
    keys = tuple(keys)
    if not all(isinstance(k, str) for k in keys):
        raise TypeError(f"{fn}: {name} must hold strings, got {keys!r:.80}")
    return keys


def _is_number(v) -> bool:
    return isinstance(v, (numbers.Number, np.number, np.bool_)) or (isinstance(v, np.ndarray) and v.ndim == 0)


def _collate_numbers(key: str, values: list) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == np.float64 and not any(isinstance(v, (np.floating, np.ndarray)) for v in values):
        arr = arr.astype(np.float32)  # Python floats: the library's float32 default
    elif arr.dtype.kind in "iu" and all(isinstance(v, (int, bool)) for v in values):
        arr = arr.astype(np.int64)
    return arr


def _pad_stack(key: str, values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad along axis 0 and stack; returns (batch, lengths)."""
    ndims = {v.ndim for v in values}
    if len(ndims) != 1 or 0 in ndims or len({v.shape[1:] for v in values}) != 1:
        raise ValueError(
            f"default_collate: key {key!r} holds arrays that differ beyond their first axis and cannot be padded: "
            f"shapes {sorted({v.shape for v in values})}"
        )
    lengths = np.array([v.shape[0] for v in values], dtype=np.int64)
    dtype = np.result_type(*values)
    out = np.zeros((len(values), int(lengths.max()) if len(values) else 0) + values[0].shape[1:], dtype=dtype)
    for i, v in enumerate(values):
        out[i, : v.shape[0]] = v
    return out, lengths


def default_collate(samples: Sequence[dict], pad_keys: Sequence[str] = ("audio",)) -> dict:
    """Turn a list of sample dicts into one dict of batched values.

    Per key, by what the samples hold:

    - numbers (Python or NumPy scalars) → a 1-D array (Python ints → int64, floats → float32);
    - arrays of one shape → ``np.stack`` (B, ...);
    - arrays whose first axis differs (variable-length audio, video with varying T) → zero-padded
      to the longest, plus ``<key>_lengths`` int64 (B,) and ``<key>_mask`` bool (B, Lmax);
      a key in ``pad_keys`` (default ``("audio",)``) always gets lengths and mask, even when
      a batch happens to be all one length, so its batches always have the same keys;
    - strings, dicts (``"scene"``), anything else → a list.

    Every sample must have the same keys.
    """
    if isinstance(samples, dict) or not isinstance(samples, Sequence):
        raise TypeError(f"default_collate: expected a list of sample dicts, got {type(samples).__name__}")
    pad_keys = _key_tuple("default_collate", "pad_keys", (pad_keys,) if isinstance(pad_keys, str) else pad_keys)
    if len(samples) == 0:
        raise ValueError("default_collate: got an empty list of samples")
    for i, s in enumerate(samples):
        if not isinstance(s, dict):
            raise TypeError(f"default_collate: sample {i} is a {type(s).__name__}, expected a dict")
    keys = list(samples[0].keys())
    for i, s in enumerate(samples[1:], start=1):
        if s.keys() != samples[0].keys():
            missing = sorted(set(keys) ^ set(s.keys()))
            raise KeyError(f"default_collate: sample {i} has different keys from sample 0 (differing: {missing})")

    batch: dict[str, Any] = {}
    for key in keys:
        values = [s[key] for s in samples]
        if all(_is_number(v) for v in values):
            batch[key] = _collate_numbers(key, values)
        elif all(isinstance(v, np.ndarray) for v in values):
            same = len({v.shape for v in values}) == 1
            if same and key not in pad_keys:
                batch[key] = np.stack(values)
            else:
                for extra in (f"{key}_lengths", f"{key}_mask"):
                    if extra in samples[0]:
                        raise ValueError(f"default_collate: key {key!r} needs padding but {extra!r} already exists")
                padded, lengths = _pad_stack(key, values)
                batch[key] = padded
                batch[f"{key}_lengths"] = lengths
                batch[f"{key}_mask"] = np.arange(padded.shape[1])[None, :] < lengths[:, None]
        else:
            batch[key] = list(values)
    return batch


class TextCollate:
    """A collate that tokenises the text keys, then applies :func:`default_collate` to the rest.

    For each key of ``text_keys`` present in the samples it adds ``<key>_ids`` int64 (B, T) and
    ``<key>_mask`` bool (B, T) (``True`` on real tokens; ``T`` is the batch's longest sequence,
    at most ``max_length``), and keeps the raw strings as a list under ``<key>``.
    ``tokenizer`` is anything with ``batch_encode(texts, max_length=, padding=, truncation=)``
    returning ``input_ids`` and ``attention_mask`` (e.g. :class:`tinymm.data.tokenizer.Tokenizer`).
    """

    def __init__(self, tokenizer, text_keys: Sequence[str] = ("caption", "question"), max_length: int | None = None,
                 pad_keys: Sequence[str] = ("audio",)):
        if not callable(getattr(tokenizer, "batch_encode", None)):
            raise TypeError(f"TextCollate: tokenizer must have a batch_encode method, got {type(tokenizer).__name__}")
        if isinstance(text_keys, str):
            text_keys = (text_keys,)
        self.tokenizer = tokenizer
        self.text_keys = _key_tuple("TextCollate", "text_keys", text_keys)
        if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer))
                                       or max_length < 1):
            raise ValueError(f"TextCollate: max_length must be None or a positive int, got {max_length!r}")
        self.max_length = max_length
        self.pad_keys = _key_tuple("TextCollate", "pad_keys", pad_keys)

    def __call__(self, samples: Sequence[dict]) -> dict:
        batch = default_collate(samples, pad_keys=self.pad_keys)
        for key in self.text_keys:
            if key not in batch:
                continue
            texts = batch[key]
            if not all(isinstance(t, str) for t in texts):
                bad = next(type(t).__name__ for t in texts if not isinstance(t, str))
                raise TypeError(f"TextCollate: key {key!r} should hold strings, got {bad}")
            for extra in (f"{key}_ids", f"{key}_mask"):
                if extra in batch:
                    raise ValueError(f"TextCollate: key {extra!r} already exists in the samples")
            enc = self.tokenizer.batch_encode(texts, max_length=self.max_length, padding="longest", truncation=True)
            batch[f"{key}_ids"] = np.asarray(enc["input_ids"], dtype=np.int64)
            batch[f"{key}_mask"] = np.asarray(enc["attention_mask"], dtype=bool)
        return batch


def make_collate(tokenizer, text_keys: Sequence[str] = ("caption", "question"), max_length: int | None = None,
                 pad_keys: Sequence[str] = ("audio",)) -> TextCollate:
    """A :class:`TextCollate` for ``tokenizer`` (see there)."""
    return TextCollate(tokenizer, text_keys=text_keys, max_length=max_length, pad_keys=pad_keys)


# ----------------------------------------------------------------------------- the loader

_DONE = object()  # end-of-epoch sentinel on the prefetch queue


class _Raised:
    """Wraps an exception raised in the prefetch thread, to be raised again in the loop."""

    def __init__(self, exc: BaseException):
        self.exc = exc


def _prefetch_worker(batches: Iterator, q: "queue.Queue", stop: threading.Event) -> None:
    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    try:
        for b in batches:
            if not put(b):
                return
        put(_DONE)
    except BaseException as e:  # handed to the main thread, never swallowed
        put(_Raised(e))


class _PrefetchIterator:
    """Iterator over batches built by a background thread; ``close()`` stops and joins it."""

    def __init__(self, batches: Iterator, depth: int):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        # The thread holds the queue and the event, never this object, so dropping the iterator
        # lets __del__ run and stop the thread.
        self._thread = threading.Thread(
            target=_prefetch_worker, args=(batches, self._queue, self._stop), name="tinymm-prefetch", daemon=True
        )
        self._finished = False
        self._thread.start()

    def __iter__(self):
        return self

    def __next__(self):
        if self._finished:
            raise StopIteration
        item = self._queue.get()
        if item is _DONE:
            self.close()
            raise StopIteration
        if isinstance(item, _Raised):
            self.close()
            raise item.exc
        return item

    def close(self) -> None:
        """Stop the background thread and wait for it (safe to call more than once)."""
        self._finished = True
        self._stop.set()
        while self._thread.is_alive():
            try:  # unblock a put() that waits for room
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=0.05)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class _PlainIterator:
    def __init__(self, batches: Iterator):
        self._batches = batches

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._batches)

    def close(self) -> None:
        self._batches.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def batch_iterator(batches: Iterator, prefetch: int = 0):
    """An iterator over the generator ``batches``; with ``prefetch > 0`` a background thread
    builds up to that many batches ahead. Its ``close()`` stops the generator (and the thread)."""
    return _PrefetchIterator(batches, prefetch) if prefetch > 0 else _PlainIterator(batches)


class DataLoader:
    """Batches of a dataset, as dicts of NumPy arrays (see the module docstring).

    ``DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False, collate_fn=None,
    seed=None, prefetch=0, epoch_size=None)``; ``collate_fn`` defaults to :func:`default_collate`.
    ``len(loader)`` is the number of batches per epoch.
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        collate_fn: Callable[[list], Any] | None = None,
        seed: int | None = None,
        prefetch: int = 0,
        epoch_size: int | None = None,
    ):
        _check_dataset("DataLoader", dataset)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if isinstance(prefetch, bool) or not isinstance(prefetch, (int, np.integer)) or prefetch < 0:
            raise ValueError(f"DataLoader: prefetch must be a non-negative int (batches ahead), got {prefetch!r}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got {type(collate_fn).__name__}")
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))
        elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"DataLoader: seed must be a non-negative int or None, got {seed!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = default_collate if collate_fn is None else collate_fn
        self.seed = int(seed)
        self.prefetch = int(prefetch)
        if epoch_size is not None:
            if isinstance(epoch_size, bool) or not isinstance(epoch_size, (int, np.integer)) or epoch_size < 1:
                raise ValueError(f"DataLoader: epoch_size must be a positive int or None, got {epoch_size!r}")
            if epoch_size > len(dataset):
                raise ValueError(f"DataLoader: epoch_size={epoch_size} is larger than the dataset ({len(dataset)} samples)")
        self.epoch_size = None if epoch_size is None else int(epoch_size)
        self.epoch = 0  # the epoch the next iteration will use
        self._warned_cache = False

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use epoch ``epoch``'s order."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"DataLoader.set_epoch: epoch must be a non-negative int, got {epoch!r}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = self._epoch_len()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _epoch_len(self) -> int:
        return len(self.dataset) if self.epoch_size is None else self.epoch_size

    def window(self, epoch: int) -> int:
        """The first index epoch ``epoch`` visits (0 unless ``epoch_size`` is set).

        With ``epoch_size=k`` epoch ``e`` visits the k consecutive samples from ``e·k`` on
        (wrapping around the dataset's end): over a long, lazily generated dataset every epoch
        sees fresh samples, and a shuffle stays within a window whose blocks fit the cache.
        """
        return 0 if self.epoch_size is None else (int(epoch) * self.epoch_size) % len(self.dataset)

    #: a shuffled epoch holds its permutation (8 bytes per sample); beyond this many samples
    #: that is refused rather than attempted (a lazily generated dataset can be that long)
    max_shuffle = 2**28

    def indices(self, epoch: int) -> np.ndarray:
        """The order in which epoch ``epoch`` visits the dataset."""
        n, start = self._epoch_len(), self.window(epoch)
        if not self.shuffle:
            order = np.arange(n, dtype=np.int64)
        else:
            self._check_shuffle(n)
            order = np.random.default_rng([self.seed, int(epoch)]).permutation(n).astype(np.int64)
        return order if self.epoch_size is None else (order + start) % len(self.dataset)

    def _check_shuffle(self, n: int) -> None:
        if n > self.max_shuffle:
            raise MemoryError(
                f"DataLoader: shuffling {n} samples needs a permutation of {n * 8 / 2**30:.1f} GiB; "
                f"shuffle a Subset (random_split) or use shuffle=False (at most {self.max_shuffle} samples shuffled)"
            )

    def batch_indices(self, epoch: int) -> list[np.ndarray]:
        """The indices of each batch of epoch ``epoch``."""
        order = self.indices(epoch)
        stops = range(0, len(self) * self.batch_size, self.batch_size)
        return [order[s : s + self.batch_size] for s in stops]

    def _batches(self, epoch: int) -> Iterator:
        if self.shuffle or self.epoch_size is not None:
            batches = self.batch_indices(epoch)
        else:  # in order: no index array at all, so a dataset of any length streams
            batches = (range(s, min(s + self.batch_size, len(self.dataset)))
                       for s in range(0, len(self) * self.batch_size, self.batch_size))
        for idx in batches:
            yield self.collate_fn([self.dataset[int(i)] for i in idx])

    def _prepare_random_access(self) -> None:
        # A lazily generated dataset (a task over a World) caches recently used blocks; a shuffled
        # epoch reads its blocks in random order, so they must all stay cached or every batch
        # regenerates some. Datasets that can say so offer ``fit_cache(n)``.
        fit = getattr(self.dataset, "fit_cache", None)
        if fit is None or fit(self._epoch_len()):
            return
        if not self._warned_cache or is_warn_always_enabled():  # modapi: set_warn_always(True) repeats it
            self._warned_cache = True
            warnings.warn(
                f"DataLoader: shuffling {self._epoch_len()} samples of a lazily generated dataset whose "
                f"blocks do not fit its cache: each batch will regenerate evicted blocks (slow). Use "
                f"epoch_size= (each epoch a shuffled window of that many samples), fewer samples, or "
                f"shuffle=False", RuntimeWarning, stacklevel=3)

    def __iter__(self):
        if self.shuffle:
            self._check_shuffle(self._epoch_len())  # now, not in a prefetch thread
            self._prepare_random_access()
        epoch = self.epoch
        self.epoch += 1
        return batch_iterator(self._batches(epoch), self.prefetch)

    def __repr__(self) -> str:
        return (
            f"DataLoader(n={len(self.dataset)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, seed={self.seed}, prefetch={self.prefetch})"
        )
