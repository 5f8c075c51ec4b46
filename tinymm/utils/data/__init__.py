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

Samplers (:mod:`tinymm.utils.data.sampler`), ``batch_sampler``, ``batch_size=None`` and
iterable-style datasets (:class:`IterableDataset`) work as in PyTorch.

Differences from PyTorch: ``num_workers > 0`` prefetches ``num_workers * prefetch_factor``
batches on one background thread instead of starting processes (``worker_init_fn`` is never
called, ``get_worker_info()`` is None, ``multiprocessing_context`` is checked and kept but starts
nothing, and batches always come in order); ``pin_memory`` does nothing. Random streams are
tinymm's (NumPy PCG64), so a shuffle or split differs from PyTorch's for the same seed.
"""
from __future__ import annotations

import bisect
import math
import numbers

import numpy as np

from tinymm import factories
from tinymm.data.loader import Subset, batch_iterator
from tinymm.utils.data.sampler import (BatchSampler, DistributedSampler, RandomSampler, Sampler, SequentialSampler,
                                       SubsetRandomSampler, WeightedRandomSampler)
from tinymm.ops.shape import stack
from tinymm.tensor import Tensor

__all__ = ["BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset", "DistributedSampler",
           "IterableDataset", "RandomSampler", "Sampler", "SequentialSampler", "Subset", "SubsetRandomSampler",
           "TensorDataset", "WeightedRandomSampler", "default_collate", "default_convert", "get_worker_info",
           "random_split"]
from tinymm.utils.data.stack_dataset import StackDataset  # noqa: E402  (probe4: torch.utils.data.StackDataset)

__all__ += ["StackDataset"]


class SizeMismatchError(AssertionError, ValueError):
    """Tensors of a TensorDataset whose first dims differ (PyTorch asserts; ValueError too)."""


class Dataset:
    """Base class of map-style datasets: subclasses define ``__getitem__`` and ``__len__``;
    ``a + b`` concatenates two datasets."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """Base class of iterable-style datasets: subclasses define ``__iter__`` (the samples, in
    order); a DataLoader batches them as they come. ``a + b`` chains two of them."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __add__(self, other):
        return ChainDataset([self, other])


class ChainDataset(IterableDataset):
    """Several iterable datasets, one after the other."""

    def __init__(self, datasets):
        self.datasets = list(datasets)

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


def get_worker_info():
    """None: tinymm's loader never starts worker processes (as PyTorch in the main process)."""
    return None


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


class ConcatDatasetError(ValueError, TypeError, AssertionError):
    """What ConcatDataset cannot hold (PyTorch asserts: AssertionError; ValueError as tinymm
    raised for an empty list)."""


class ConcatDataset(Dataset):
    """The samples of several datasets, one after the other."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ConcatDatasetError("ConcatDataset: datasets should not be an empty iterable")
        for i, d in enumerate(self.datasets):
            if isinstance(d, IterableDataset):
                raise ConcatDatasetError(f"ConcatDataset does not support IterableDataset (dataset {i} is a "
                                         f"{type(d).__name__}; use ChainDataset to chain iterable datasets)")
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
        out.append(Subset(dataset, perm[start:start + s].tolist()))  # a list of ints, as PyTorch's
        start += s
    return out


def default_collate(batch):
    """PyTorch's default collate: a list of samples becomes one batch of the same structure.

    Tensors are stacked (a new first dim); NumPy arrays become stacked tensors; Python floats
    a float64 tensor, ints a tensor of what the whole batch holds (int64, or the default float
    dtype when a float follows the first int), bools a bool tensor (as PyTorch); tuples and lists
    are collated position by position (giving a list; a namedtuple stays one), dicts key by key; strings stay the sequence they came in.
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
        # the whole batch decides, as torch.tensor(batch): [1, 2.5] is a float batch, not [1, 2]
        return factories.tensor(list(batch))
    if isinstance(elem, (str, bytes)):
        return batch  # probe3: as PyTorch, as it came (a tuple for a field of tuple samples)
    if isinstance(elem, dict):
        return {k: default_collate([b[k] for b in batch]) for k in elem}
    if isinstance(elem, (tuple, list)):
        if any(len(b) != len(elem) for b in batch):
            raise RuntimeError("default_collate: each element in list of batch should be of equal size")
        cols = [default_collate(col) for col in zip(*batch)]
        return type(elem)(*cols) if hasattr(elem, "_fields") else cols  # a namedtuple keeps its type
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                    f"found {type(elem).__name__}")


def default_convert(data):
    """What a DataLoader with ``batch_size=None`` does to each sample: NumPy arrays (of numbers)
    become Tensors, inside tuples, lists and dicts too; everything else is left as it is."""
    if isinstance(data, np.ndarray) and data.dtype.kind in "fiub":
        return Tensor._wrap(data)
    if isinstance(data, dict):
        return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (list, tuple)):
        return type(data)(default_convert(d) for d in data)
    return data


def _check_multiprocessing_context(context, num_workers):
    """PyTorch's rules: None, or with ``num_workers > 0`` a start-method name (turned into its
    context) or a ``multiprocessing`` context object."""
    if context is None:
        return None
    import multiprocessing

    if num_workers == 0:
        raise ValueError("multiprocessing_context can only be used with multi-process loading (num_workers > 0), "
                         f"but got num_workers={num_workers}")
    if isinstance(context, str):
        methods = multiprocessing.get_all_start_methods()
        if context not in methods:
            raise ValueError(f"multiprocessing_context option should specify a valid start method in {methods!r}, "
                             f"but got multiprocessing_context={context!r}")
        return multiprocessing.get_context(context)
    if not isinstance(context, multiprocessing.context.BaseContext):
        raise TypeError("multiprocessing_context option should be a valid context object or a string specifying "
                        f"the start method, but got multiprocessing_context={context}")
    return context


class DataLoader:
    """``DataLoader(dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
    num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
    worker_init_fn=None, multiprocessing_context=None, generator=None, *, prefetch_factor=None,
    persistent_workers=False, pin_memory_device="", in_order=True)`` with PyTorch's semantics (see the module docstring).

    Map-style datasets go through ``batch_sampler`` (by default ``BatchSampler`` over
    ``RandomSampler`` when ``shuffle``, else ``SequentialSampler``); iterable-style ones are
    batched in the order they yield. ``len(loader)`` is the number of batches.
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True):
        # probe4: multiprocessing_context (checked as PyTorch checks it; the prefetch thread starts no
        # processes, so it changes nothing) and in_order (batches always come in order here).
        multiprocessing_context = _check_multiprocessing_context(multiprocessing_context, num_workers)
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers option should be non-negative; got {num_workers!r}")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing."
                             "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None.")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        iterable = isinstance(dataset, IterableDataset) or (hasattr(dataset, "__iter__") and not hasattr(dataset, "__getitem__"))
        if iterable:
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified batch_sampler option, but got "
                                 f"batch_sampler={batch_sampler}")
        elif not (hasattr(dataset, "__len__") or sampler is not None or batch_sampler is not None) or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: dataset must be a map-style dataset (__getitem__ and __len__) or an "
                            f"IterableDataset, got {type(dataset).__name__}")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")
        if not iterable and sampler is None:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if not iterable and batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.sampler, self.batch_sampler, self._iterable = sampler, batch_sampler, iterable
        self.num_workers, self.pin_memory, self.timeout = num_workers, pin_memory, timeout
        self.worker_init_fn, self.generator, self.persistent_workers = worker_init_fn, generator, persistent_workers
        self.prefetch_factor = prefetch_factor
        self.multiprocessing_context, self.in_order = multiprocessing_context, in_order
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_convert if (batch_size is None and batch_sampler is None) else default_collate)
        self._prefetch = num_workers * (2 if prefetch_factor is None else int(prefetch_factor))

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None or (self._iterable and self.batch_size is not None)

    def _batches(self):
        if self._iterable:
            if self.batch_size is None:
                for sample in self.dataset:
                    yield self.collate_fn(sample)
                return
            batch = []
            for sample in self.dataset:
                batch.append(sample)
                if len(batch) == self.batch_size:
                    yield self.collate_fn(batch)
                    batch = []
            if batch and not self.drop_last:
                yield self.collate_fn(batch)
        elif self.batch_sampler is not None:
            # probe4: a dataset with __getitems__ is asked for the whole batch at once, as PyTorch asks
            get_batch = getattr(self.dataset, "__getitems__", None)
            for idx in self.batch_sampler:
                yield self.collate_fn(get_batch(idx) if callable(get_batch) else [self.dataset[i] for i in idx])
        else:
            for i in self.sampler:
                yield self.collate_fn(self.dataset[i])

    def __iter__(self):
        return batch_iterator(self._batches(), self._prefetch)

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)  # TypeError, as in PyTorch, when the dataset has no length
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self.batch_sampler) if self.batch_sampler is not None else len(self.sampler)

    def __repr__(self) -> str:
        return (f"DataLoader(dataset={type(self.dataset).__name__}, batch_size={self.batch_size}, "
                f"sampler={type(self.sampler).__name__}, num_workers={self.num_workers})")
