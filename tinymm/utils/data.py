"""``torch.utils.data`` with PyTorch's semantics: datasets of tuples of Tensors, and a
``DataLoader`` whose default collate stacks them into batched Tensors.

    from tinymm.utils.data import DataLoader, TensorDataset, random_split
    train, val = random_split(TensorDataset(X, y), [0.8, 0.2], generator=Generator().manual_seed(0))
    for xb, yb in DataLoader(train, batch_size=32, shuffle=True):
        ...

The loader is ``tinymm.data.DataLoader`` (batching, ``drop_last``, a prefetch thread) with
two PyTorch rules on top: ``collate_fn`` defaults to :func:`default_collate` here (Tensors,
numbers, NumPy arrays, tuples and dicts, nested), and a shuffled epoch draws its permutation
from ``generator`` or tinymm's default generator, so ``tinymm.manual_seed`` makes it repeat.
``tinymm.data`` keeps its own dict-of-arrays collate for its multimodal tasks.

Differences from PyTorch: ``num_workers > 0`` prefetches ``num_workers * prefetch_factor``
batches on one background thread instead of starting processes (``worker_init_fn`` is never
called); ``pin_memory`` does nothing; ``sampler``, ``batch_sampler`` and iterable-style
datasets are not implemented (a clear error says so). Random streams are tinymm's (NumPy
PCG64), so a shuffle or split differs from PyTorch's for the same seed.
"""
from __future__ import annotations

import bisect
import math
import numbers

import numpy as np

from tinymm import backend, factories
from tinymm.data.loader import DataLoader as _ArrayLoader
from tinymm.data.loader import Subset
from tinymm.ops.shape import stack
from tinymm.tensor import Tensor

__all__ = ["ConcatDataset", "DataLoader", "Dataset", "Subset", "TensorDataset", "default_collate", "random_split"]


class SizeMismatchError(AssertionError, ValueError):
    """Tensors of a TensorDataset whose first dims differ (PyTorch asserts; ValueError too)."""


class Dataset:
    """Base class of map-style datasets: subclasses define ``__getitem__`` and ``__len__``;
    ``a + b`` concatenates two datasets."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Sample ``i`` is ``tuple(t[i] for t in tensors)``; every tensor has the same first dim."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor")
        for t in tensors:
            if not isinstance(t, Tensor) or t.ndim == 0:
                raise TypeError(f"TensorDataset: expected tensors with at least 1 dim, got {type(t).__name__}")
        if any(t.shape[0] != tensors[0].shape[0] for t in tensors):
            raise SizeMismatchError(f"Size mismatch between tensors: first dims {[t.shape[0] for t in tensors]}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class ConcatDataset(Dataset):
    """The samples of several datasets, one after the other."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]).tolist())

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"ConcatDataset: index {index} is out of range for {n} samples")
        index = index + n if index < 0 else index
        k = bisect.bisect_right(self.cumulative_sizes, index)
        return self.datasets[k][index - (self.cumulative_sizes[k - 1] if k else 0)]


def random_split(dataset, lengths, generator=None) -> list:
    """Disjoint random :class:`Subset` s with the given ``lengths``: integer sizes summing to
    ``len(dataset)``, or fractions summing to 1 (sizes floored, the remainder handed out one
    each to the first subsets, as PyTorch). The permutation comes from ``generator`` (a
    ``tinymm.Generator``) or the default generator."""
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(f, numbers.Real) and not isinstance(f, numbers.Integral) for f in lengths):
        if not math.isclose(sum(lengths), 1.0) or sum(lengths) > 1 + 1e-9:
            raise ValueError(f"random_split: fractions must sum to 1, got {lengths} (sum {sum(lengths)})")
        bad = [i for i, f in enumerate(lengths) if not 0 <= f <= 1]
        if bad:
            raise ValueError(f"random_split: fraction at index {bad[0]} is not between 0 and 1")
        sizes = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        lengths = sizes
    if any(not isinstance(s, numbers.Integral) or s < 0 for s in lengths):
        raise ValueError(f"random_split: lengths must be non-negative ints or fractions, got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"Sum of input lengths ({sum(lengths)}) does not equal the length of the input dataset ({n})!")
    perm = factories.randperm(n, generator=generator).numpy()
    out, start = [], 0
    for s in lengths:
        out.append(Subset(dataset, perm[start:start + s]))
        start += s
    return out


def default_collate(batch):
    """PyTorch's default collate: a list of samples becomes one batch of the same structure.

    Tensors are stacked (a new first dim); NumPy arrays become stacked tensors; Python floats
    a float64 tensor, ints an int64 tensor, bools a bool tensor (as PyTorch); tuples and lists
    are collated position by position (giving a list; a namedtuple stays one), dicts key by key; strings stay a list.
    """
    if not isinstance(batch, (list, tuple)) or not batch:
        raise TypeError(f"default_collate: expected a non-empty list of samples, got {type(batch).__name__}")
    elem = batch[0]
    if isinstance(elem, Tensor):
        if any(not isinstance(b, Tensor) or b.shape != elem.shape for b in batch):
            raise RuntimeError(f"default_collate: stack expects each tensor to be equal size, got "
                               f"{sorted({tuple(getattr(b, 'shape', ())) for b in batch})}")
        return stack(list(batch))
    if isinstance(elem, np.ndarray) and elem.dtype.kind in "fiub":
        return Tensor._wrap(np.stack(batch))
    if isinstance(elem, (bool, np.bool_)):
        return factories.tensor(list(batch), dtype=np.bool_)
    if isinstance(elem, np.number):
        return Tensor._wrap(np.asarray(batch))
    if isinstance(elem, float):
        return factories.tensor(list(batch), dtype=np.float64)
    if isinstance(elem, int):
        return factories.tensor(list(batch), dtype=np.int64)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, dict):
        return {k: default_collate([b[k] for b in batch]) for k in elem}
    if isinstance(elem, (tuple, list)):
        if any(len(b) != len(elem) for b in batch):
            raise RuntimeError("default_collate: each element in list of batch should be of equal size")
        cols = [default_collate(list(col)) for col in zip(*batch)]
        return type(elem)(*cols) if hasattr(elem, "_fields") else cols  # a namedtuple keeps its type
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                    f"found {type(elem).__name__}")


class DataLoader(_ArrayLoader):
    """``DataLoader(dataset, batch_size=1, shuffle=False, ..., collate_fn=None, drop_last=False,
    generator=None)`` with PyTorch's defaults (see the module docstring)."""

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 generator=None, *, prefetch_factor=None, persistent_workers=False, pin_memory_device=""):
        if sampler is not None or batch_sampler is not None:
            raise NotImplementedError("DataLoader: sampler and batch_sampler are not implemented in tinymm; "
                                      "use shuffle=True, or a Subset of the indices you want")
        if batch_size is None:
            raise NotImplementedError("DataLoader: batch_size=None (no batching) is not implemented in tinymm")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers option should be non-negative; got {num_workers!r}")
        prefetch = num_workers * (2 if prefetch_factor is None else int(prefetch_factor))
        super().__init__(dataset, batch_size=batch_size, shuffle=bool(shuffle), drop_last=drop_last,
                         collate_fn=default_collate if collate_fn is None else collate_fn, seed=0, prefetch=prefetch)
        self.generator = generator
        self.num_workers = num_workers
        self.pin_memory = pin_memory

    def indices(self, epoch: int) -> np.ndarray:
        """The order of one epoch: a fresh permutation from the generator when shuffling."""
        if not self.shuffle:
            return super().indices(epoch)
        self._check_shuffle(len(self.dataset))
        return backend.rng("cpu", self.generator).permutation(len(self.dataset)).astype(np.int64)
