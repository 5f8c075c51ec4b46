"""``torch.utils.data`` samplers, batch samplers, ``batch_size=None`` and iterable-style
datasets, against PyTorch: the same batches where the order is deterministic, the same
distribution where it is random, and PyTorch's errors for conflicting options."""
import collections

import numpy as np
import pytest

import tinymm as tm
from tinymm.utils import data as md

from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _datasets(lib):
    """A map-style and an iterable-style dataset on ``lib``'s base classes (tinymm's or torch's)."""
    class Squares(lib.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return np.float32(i * i), i

    class Counter(lib.IterableDataset):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter({"x": np.arange(2) + i, "i": i} for i in range(self.n))

        def __len__(self):
            return self.n

    return Squares, Counter


Squares, Counter = _datasets(md)


def _as_lists(batches):
    out = []
    for b in batches:
        if isinstance(b, dict):
            out.append({k: v.tolist() if hasattr(v, "tolist") else v for k, v in b.items()})
        elif isinstance(b, (list, tuple)):
            out.append([v.tolist() if hasattr(v, "tolist") else v for v in b])
        else:
            out.append(b.tolist() if hasattr(b, "tolist") else b)
    return out


@needs_torch
def test_deterministic_loaders_give_torchs_batches():
    from torch.utils import data as td

    TSquares, TCounter = _datasets(td)

    cases = [
        (lambda m: m.DataLoader(Squares(), batch_size=4), lambda t: t.DataLoader(TSquares(), batch_size=4)),
        (lambda m: m.DataLoader(Squares(), batch_size=None), lambda t: t.DataLoader(TSquares(), batch_size=None)),
        (lambda m: m.DataLoader(Squares(), sampler=[9, 3, 3], batch_size=2),
         lambda t: t.DataLoader(TSquares(), sampler=[9, 3, 3], batch_size=2)),
        (lambda m: m.DataLoader(Squares(), batch_sampler=md.BatchSampler(md.SequentialSampler(range(7)), 3, True)),
         lambda t: t.DataLoader(TSquares(), batch_sampler=td.BatchSampler(td.SequentialSampler(range(7)), 3, True))),
        (lambda m: m.DataLoader(Counter(5), batch_size=2), lambda t: t.DataLoader(TCounter(5), batch_size=2)),
        (lambda m: m.DataLoader(Counter(5), batch_size=2, drop_last=True),
         lambda t: t.DataLoader(TCounter(5), batch_size=2, drop_last=True)),
        (lambda m: m.DataLoader(Counter(3), batch_size=None), lambda t: t.DataLoader(TCounter(3), batch_size=None)),
        (lambda m: m.DataLoader(Counter(2) + Counter(3), batch_size=4),
         lambda t: t.DataLoader(TCounter(2) + TCounter(3), batch_size=4)),
    ]
    for ours, theirs in cases:
        a, b = ours(md), theirs(td)
        assert len(a) == len(b)
        assert _as_lists(a) == _as_lists(b)
    sampler = md.DistributedSampler(Squares(), num_replicas=3, rank=1, shuffle=False)
    want = td.DistributedSampler(TSquares(), num_replicas=3, rank=1, shuffle=False)
    assert list(sampler) == list(want) and len(sampler) == len(want)
    d2 = md.DistributedSampler(Squares(), num_replicas=3, rank=2, shuffle=False, drop_last=True)
    assert list(d2) == list(td.DistributedSampler(TSquares(), num_replicas=3, rank=2, shuffle=False, drop_last=True))


def test_random_samplers_draw_the_right_distributions_and_repeat_with_a_seed():
    g = tm.Generator().manual_seed(0)
    counts = collections.Counter(md.WeightedRandomSampler([1.0, 0.0, 3.0], 8000, generator=g))
    assert set(counts) == {0, 2} and abs(counts[2] / 8000 - 0.75) < 0.02
    once = list(md.WeightedRandomSampler(tm.tensor([1.0, 2.0, 3.0, 4.0]), 4, replacement=False, generator=g))
    assert sorted(once) == [0, 1, 2, 3]
    r = md.RandomSampler(range(5), num_samples=12, generator=g)
    drawn = list(r)
    assert len(drawn) == len(r) == 12 and sorted(drawn[:5]) == sorted(drawn[5:10]) == list(range(5))
    assert len(set(md.RandomSampler(range(4), replacement=True, num_samples=50, generator=g))) <= 4
    assert sorted(md.SubsetRandomSampler([7, 8, 9], generator=g)) == [7, 8, 9]
    tm.manual_seed(3)
    a = [b[1].tolist() for b in md.DataLoader(Squares(), batch_size=3, shuffle=True)]
    tm.manual_seed(3)
    b = [b[1].tolist() for b in md.DataLoader(Squares(), batch_size=3, shuffle=True)]
    assert a == b and sorted(sum(a, [])) == list(range(10))
    d = md.DistributedSampler(Squares(), num_replicas=2, rank=0, seed=5)
    e0 = list(d)
    d.set_epoch(1)
    assert sorted(e0 + list(md.DistributedSampler(Squares(), num_replicas=2, rank=1, seed=5))) == list(range(10))
    assert list(d) != e0  # a new epoch, a new order
    assert md.get_worker_info() is None


def test_conflicting_options_raise_torchs_errors():
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        md.DataLoader(Squares(), sampler=[0], shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last"):
        md.DataLoader(Squares(), batch_sampler=[[0, 1]], batch_size=2)
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        md.DataLoader(Counter(3), shuffle=True)
    with pytest.raises(ValueError, match="expected unspecified sampler option"):
        md.DataLoader(Counter(3), sampler=[0])
    with pytest.raises(ValueError, match="batch_size=None option disables auto-batching and is mutually exclusive with drop_last"):
        md.DataLoader(Squares(), batch_size=None, drop_last=True)
    with pytest.raises(ValueError, match="batch_size should be a positive integer value, but got batch_size=0"):
        md.BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="num_samples should be a positive integer value"):
        md.WeightedRandomSampler([1.0], 0)
    with pytest.raises(RuntimeError, match="invalid multinomial distribution"):
        md.WeightedRandomSampler([-1.0, 2.0], 3)
    with pytest.raises(RuntimeError, match="cannot sample n_sample > prob_dist.size"):
        md.WeightedRandomSampler([1.0, 0.0], 2, replacement=False)
    with pytest.raises(RuntimeError, match="pass num_replicas= and rank="):
        md.DistributedSampler(Squares())
    with pytest.raises(ValueError, match="prefetch_factor option could only be specified in multiprocessing"):
        md.DataLoader(Squares(), prefetch_factor=2)

    class NoLen(md.IterableDataset):
        def __iter__(self):
            return iter(range(3))

    loader = md.DataLoader(NoLen(), batch_size=2)
    assert [b.tolist() for b in loader] == [[0, 1], [2]]
    with pytest.raises(TypeError):
        len(loader)
