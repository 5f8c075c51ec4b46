"""The data side of a training script: a map-style Dataset returning (tensor, int, str) tuples
and dicts, random_split with a seeded torch.Generator (lengths as ints and as fractions),
Subset and ConcatDataset, DataLoader with batch_size / shuffle / drop_last and a generator, a
custom collate_fn padding variable-length sequences (pad_sequence) with lengths, default
collation of nested dicts/tuples/numpy arrays, samplers (SequentialSampler, RandomSampler with
num_samples and replacement, SubsetRandomSampler for a train/valid split by indices,
WeightedRandomSampler with class-balancing weights, BatchSampler over any of them, passed as
batch_sampler=), DistributedSampler with num_replicas/rank given (padding, drop_last,
set_epoch reshuffling, the union of shards), an IterableDataset sharded by get_worker_info,
and the determinism contract: the same seed gives the same order, torch.manual_seed replays
it, a fresh generator seed gives another one. Random orders are library-specific, so what is
reported is what they must satisfy (sizes, coverage, disjointness, sortedness, replay)."""
import math

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, DistributedSampler, IterableDataset,
                              RandomSampler, SequentialSampler, Subset, SubsetRandomSampler, TensorDataset,
                              WeightedRandomSampler, get_worker_info, random_split)


class ToySeq(Dataset):
    """Sequence i has length 2 + i % 4 and label i % 3 (imbalanced: fewer label 2 items below)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, idx):
        length = 2 + idx % 4
        seq = torch.arange(length, dtype=torch.long) + idx
        return seq, idx % 3, f"item{idx}"


def pad_collate(batch):
    seqs, labels, names = zip(*batch)
    lengths = torch.tensor([len(s) for s in seqs])
    padded = pad_sequence(seqs, batch_first=True, padding_value=-1)
    return padded, torch.tensor(labels), lengths, list(names)


def flat(loader):
    out = []
    for b in loader:
        out.extend(b[0].tolist() if isinstance(b, (list, tuple)) else b.tolist())
    return out


ds = ToySeq(22)

# --- splits
g = torch.Generator().manual_seed(42)
train_ds, val_ds = random_split(ds, [18, 4], generator=g)
a, b, c = random_split(range(10), [0.5, 0.3, 0.2], generator=torch.Generator().manual_seed(0))
again = random_split(ds, [18, 4], generator=torch.Generator().manual_seed(42))
report("split", len(train_ds), len(val_ds), type(train_ds).__name__, sorted(train_ds.indices + val_ds.indices) == list(range(22)),
       [len(a), len(b), len(c)], sorted(list(a) + list(b) + list(c)), list(again[0].indices) == list(train_ds.indices))
sub = Subset(ds, [3, 1, 4])
cat = ConcatDataset([sub, ToySeq(2)])
report("subset_concat", len(cat), [cat[i][2] for i in range(len(cat))], cat.cumulative_sizes)

# --- a padded batch through a custom collate_fn
loader = DataLoader(sub, batch_size=3, collate_fn=pad_collate)
padded, labels, lengths, names = next(iter(loader))
report("pad_collate", padded.tolist(), labels.tolist(), lengths.tolist(), names)

# --- default collation of dicts, tuples, numpy arrays and floats
dicts = [{"x": np.full((2,), i, dtype=np.float32), "meta": {"id": i, "w": 0.5 * i}, "pair": (i, str(i))} for i in range(3)]
batch = next(iter(DataLoader(dicts, batch_size=3)))
report("default_collate", batch["x"].tolist(), batch["x"].dtype == torch.float32, batch["meta"]["id"].tolist(),
       batch["meta"]["w"].dtype == torch.float64, batch["pair"][0].tolist(), batch["pair"][1])

# --- drop_last and len
for bs, drop in [(5, False), (5, True), (22, True), (30, False)]:
    dl = DataLoader(ds, batch_size=bs, drop_last=drop, collate_fn=pad_collate)
    report("drop_last", bs, drop, len(dl), [len(b[1]) for b in dl])

# --- shuffling with a generator: same seed same order, reseeding replays, another seed differs
def order(seed):
    dl = DataLoader(TensorDataset(torch.arange(12)), batch_size=4, shuffle=True,
                    generator=torch.Generator().manual_seed(seed))
    return flat(dl)


o1, o2, o3 = order(7), order(7), order(8)
torch.manual_seed(3)
p1 = flat(DataLoader(TensorDataset(torch.arange(12)), batch_size=5, shuffle=True))
torch.manual_seed(3)
p2 = flat(DataLoader(TensorDataset(torch.arange(12)), batch_size=5, shuffle=True))
dl = DataLoader(TensorDataset(torch.arange(12)), batch_size=12, shuffle=True, generator=torch.Generator().manual_seed(1))
e1, e2 = flat(dl), flat(dl)
report("shuffle", o1 == o2, o1 != o3, sorted(o1) == list(range(12)), p1 == p2, sorted(p1), e1 != e2, sorted(e2) == list(range(12)))

# --- samplers
report("sequential", list(SequentialSampler(range(5))))
rs = RandomSampler(range(10), generator=torch.Generator().manual_seed(0))
report("random", len(rs), sorted(rs) == list(range(10)))
rs = RandomSampler(range(4), replacement=True, num_samples=9, generator=torch.Generator().manual_seed(0))
drawn = list(rs)
report("random_replacement", len(rs), len(drawn), all(0 <= i < 4 for i in drawn))
rs = RandomSampler(range(4), num_samples=10, generator=torch.Generator().manual_seed(0))
drawn = list(rs)
report("random_num_samples", len(drawn), sorted(drawn[:4]) == list(range(4)), sorted(drawn[4:8]) == list(range(4)))

n_valid = 6
indices = list(range(len(ds)))
train_idx, valid_idx = indices[n_valid:], indices[:n_valid]
train_loader = DataLoader(ds, batch_size=4, sampler=SubsetRandomSampler(train_idx, generator=torch.Generator().manual_seed(0)),
                          collate_fn=pad_collate)
valid_loader = DataLoader(ds, batch_size=4, sampler=SubsetRandomSampler(valid_idx), collate_fn=pad_collate)
seen_train = sorted(int(n[4:]) for b in train_loader for n in b[3])
seen_valid = sorted(int(n[4:]) for b in valid_loader for n in b[3])
report("subset_random", len(train_loader), seen_train == train_idx, seen_valid == valid_idx)

# class-balanced sampling: weight = 1 / class count; a zero weight is never drawn
targets = torch.tensor([i % 3 for i in range(len(ds))])
targets[targets == 2] = 0  # two classes, 15 vs 7
class_count = torch.bincount(targets)
weights = 1.0 / class_count[targets].double()
weights[0] = 0.0
sampler = WeightedRandomSampler(weights, num_samples=400, replacement=True, generator=torch.Generator().manual_seed(0))
drawn = torch.tensor(list(sampler))
frac = (targets[drawn] == 1).float().mean().item()
report("weighted", len(sampler), 0 not in drawn.tolist(), 0.4 < frac < 0.6, class_count.tolist())
sampler = WeightedRandomSampler([0.1, 0.0, 5.0, 1.0], num_samples=3, replacement=False)
report("weighted_noreplace", sorted(sampler) == [0, 2, 3])

bs = BatchSampler(SequentialSampler(range(10)), batch_size=4, drop_last=False)
report("batch_sampler", list(bs), len(bs), list(BatchSampler(range(10), 4, True)), len(BatchSampler(range(10), 4, True)))
dl = DataLoader(ds, batch_sampler=BatchSampler(RandomSampler(ds, generator=torch.Generator().manual_seed(0)), 6, drop_last=True),
                collate_fn=pad_collate)
sizes = [len(b[1]) for b in dl]
report("batch_sampler_loader", len(dl), sizes, dl.batch_size is None)

# --- DistributedSampler with explicit replicas, as a single-process launcher passes them
shards = []
for rank in range(3):
    s = DistributedSampler(ds, num_replicas=3, rank=rank, shuffle=False)
    shards.append(list(s))
report("dist_noshuffle", shards, [len(DistributedSampler(ds, num_replicas=3, rank=r, shuffle=False)) for r in range(3)])
shards = [list(DistributedSampler(ds, num_replicas=4, rank=r, shuffle=True, seed=5, drop_last=True)) for r in range(4)]
union = sorted(sum(shards, []))
report("dist_drop_last", [len(s) for s in shards], len(set(union)) == len(union), all(0 <= i < 22 for i in union))
s0 = DistributedSampler(ds, num_replicas=2, rank=0, shuffle=True, seed=0)
s1 = DistributedSampler(ds, num_replicas=2, rank=1, shuffle=True, seed=0)
s0.set_epoch(0)
s1.set_epoch(0)
ep0 = (list(s0), list(s1))
s0.set_epoch(1)
ep1 = list(s0)
s0.set_epoch(0)
report("dist_epochs", sorted(ep0[0] + ep0[1]) == list(range(22)), ep0[0] != ep1, list(s0) == ep0[0], len(s0))
loader = DataLoader(ds, batch_size=4, sampler=DistributedSampler(ds, num_replicas=2, rank=1, shuffle=False),
                    collate_fn=pad_collate)
report("dist_loader", len(loader), [b[3] for b in loader][0])


# --- an iterable dataset, sharded by the worker info it sees (none in the main process)
class Stream(IterableDataset):
    def __init__(self, start, end):
        self.start, self.end = start, end

    def __iter__(self):
        info = get_worker_info()
        if info is None:
            lo, hi = self.start, self.end
        else:
            per = int(math.ceil((self.end - self.start) / float(info.num_workers)))
            lo = self.start + info.id * per
            hi = min(lo + per, self.end)
        return iter(range(lo, hi))


report("iterable", [b.tolist() for b in DataLoader(Stream(3, 10), batch_size=3)],
       [b.tolist() for b in DataLoader(Stream(3, 10), batch_size=3, drop_last=True)])
