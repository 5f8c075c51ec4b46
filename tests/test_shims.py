"""Names PyTorch code imports beyond the public API, each compared with PyTorch: torch.nn.modules'
internal paths (base classes that isinstance checks see), type promotion, the default device,
torch.multiprocessing, DistributedSampler's index arithmetic, default_collate's path, and the
Tensor flags that are always False here."""
import numpy as np
import pytest

import tinymm as tm
from tinymm import nn

from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

# ----------------------------------------------------------------------------- nn.modules


@needs_torch
def test_modules_utils_tuples_are_torchs():
    from torch.nn.modules import utils as theirs

    from tinymm.nn.modules import utils as ours

    for name in ("_single", "_pair", "_triple", "_quadruple"):
        for value in (3, (1, 2), [4, 5, 6], 2.5, "ab", range(3)):
            assert getattr(ours, name)(value) == getattr(theirs, name)(value), (name, value)
        assert getattr(ours, name).__name__ == name
    assert ours._ntuple(5, "five")(1) == theirs._ntuple(5, "five")(1)
    assert ours._reverse_repeat_tuple((1, 2, 3), 2) == theirs._reverse_repeat_tuple((1, 2, 3), 2)


@needs_torch
def test_base_classes_are_the_real_bases_of_tinymms_layers():
    from torch.nn.modules import batchnorm as tb, conv as tc, loss as tl
    from torch.nn.modules.module import Module as TModule

    from tinymm.nn.modules import batchnorm as mb, conv as mc, loss as ml
    from tinymm.nn.modules.module import Module

    assert Module is nn.Module and TModule is torch.nn.Module
    pairs = [(mb._NormBase, tb._NormBase), (mb._BatchNorm, tb._BatchNorm), (ml._Loss, tl._Loss),
             (ml._WeightedLoss, tl._WeightedLoss), (mc._ConvNd, tc._ConvNd)]
    checked = 0
    for name in sorted(set(dir(nn)) & set(dir(torch.nn))):
        ours, theirs = getattr(nn, name), getattr(torch.nn, name)
        if not (isinstance(ours, type) and isinstance(theirs, type) and issubclass(theirs, TModule)):
            continue
        for our_base, their_base in pairs:
            assert issubclass(ours, our_base) == issubclass(theirs, their_base), (name, their_base.__name__)
        checked += 1
    assert checked > 100
    assert isinstance(nn.LazyBatchNorm2d(), mb._BatchNorm) and isinstance(nn.LazyConv2d(4, 3), mc._ConvNd)


@needs_torch
def test_weight_decay_filter_and_user_losses_written_against_torchs_bases():
    from torch.nn.modules.batchnorm import _BatchNorm as TBN
    from torch.nn.modules.loss import _Loss as TLoss

    from tinymm.nn.modules.batchnorm import _BatchNorm
    from tinymm.nn.modules.loss import _Loss

    def split(model, bn_base, lib):
        decay, no_decay = [], []
        for m in model.modules():
            for p in m.parameters(recurse=False):
                (no_decay if isinstance(m, (bn_base, lib.nn.LayerNorm)) or p.ndim == 1 else decay).append(p)
        return len(decay), len(no_decay)

    def net(lib):
        return lib.nn.Sequential(lib.nn.Conv2d(3, 4, 3), lib.nn.BatchNorm2d(4), lib.nn.ReLU(), lib.nn.Flatten(),
                                 lib.nn.Linear(4, 5), lib.nn.BatchNorm1d(5), lib.nn.LayerNorm(5))

    assert split(net(tm), _BatchNorm, tm) == split(net(torch), TBN, torch)
    for base, lib in ((_Loss, tm), (TLoss, torch)):
        class Scaled(base):
            def __init__(self, size_average=None, reduce=None, reduction="mean"):
                super().__init__(size_average, reduce, reduction)

            def forward(self, a, b):
                return lib.nn.functional.l1_loss(a, b, reduction=self.reduction)

        assert Scaled().reduction == "mean" and Scaled(reduce=False).reduction == "none"
        assert Scaled(size_average=False).reduction == "sum"
    w = [1.0, 2.0, 3.0]
    assert list(nn.CrossEntropyLoss(weight=tm.tensor(w)).state_dict()) == \
        list(torch.nn.CrossEntropyLoss(weight=torch.tensor(w)).state_dict()) == ["weight"]
    assert nn.MSELoss(None, False).reduction == torch.nn.MSELoss(None, False).reduction == "none"


# ----------------------------------------------------------------------------- promotion

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]


@needs_torch
def test_promote_types_and_can_cast_are_torchs_for_every_pair():
    for a in DTYPES:
        for b in DTYPES:
            want = torch.promote_types(getattr(torch, a), getattr(torch, b))
            assert str(tm.promote_types(getattr(tm, a if a != "bool" else "bool_"), getattr(tm, b if b != "bool" else "bool_"))) \
                == str(want).replace("torch.", "tinymm."), (a, b)
            assert tm.can_cast(getattr(tm, a if a != "bool" else "bool_"), getattr(tm, b if b != "bool" else "bool_")) \
                == torch.can_cast(getattr(torch, a), getattr(torch, b)), (a, b)
    for lib in (tm, torch):
        with pytest.raises(TypeError):
            lib.promote_types(lib.float32, 3)
        with pytest.raises(TypeError):
            lib.result_type(lib.ones(2), "x")


def _operand(lib, kind, dtype):
    if kind == "dim":
        return lib.ones(2, dtype=getattr(lib, dtype))
    if kind == "zero":
        return lib.tensor(1, dtype=getattr(lib, dtype))
    return {"bool": True, "int64": 2, "float32": 2.5}[dtype]


@needs_torch
def test_result_type_follows_torchs_three_tiers_and_tinymms_float_ops_agree():
    kinds = [("dim", d) for d in ("bool", "uint8", "int32", "int64", "float16", "float32", "float64")]
    kinds += [("zero", d) for d in ("bool", "int32", "int64", "float32", "float64")]
    kinds += [("scalar", d) for d in ("bool", "int64", "float32")]
    for ka in kinds:
        for kb in kinds:
            a, b = _operand(tm, *ka), _operand(tm, *kb)
            want = torch.result_type(_operand(torch, *ka), _operand(torch, *kb))
            got = tm.result_type(a, b)
            assert str(got) == str(want).replace("torch.", "tinymm."), (ka, kb, got, want)
            if "float" in str(got) and isinstance(a, tm.Tensor) and isinstance(b, tm.Tensor):
                assert (a + b).dtype == got, (ka, kb)  # tinymm's own ops agree where floats are involved


# ----------------------------------------------------------------------------- default device


def test_default_device_round_trips_and_factories_and_layers_follow_it():
    assert tm.get_default_device() == "cpu" and tm.get_default_device().type == "cpu"
    with pytest.raises(RuntimeError, match="device type at start of device string"):
        tm.set_default_device("foo")
    try:
        tm.set_default_device("cuda")
        assert repr(tm.get_default_device()) == "device(type='cuda', index=0)"
        makers = [lambda: tm.zeros(2), lambda: tm.randn(2), lambda: tm.arange(3), lambda: tm.tensor([1.0]),
                  lambda: nn.Linear(2, 2).weight, lambda: nn.BatchNorm1d(2).running_mean]
        for make in makers:
            if tm.cuda.is_available():
                assert make().device.type == "cuda"
            else:  # the factory looked at the default device, and says why it cannot use it
                with pytest.raises(RuntimeError, match="device 'cuda' is not available"):
                    make()
        assert tm.zeros(2, device="cpu").device == "cpu"  # an explicit device still wins
    finally:
        tm.set_default_device(None)
    assert tm.get_default_device() == "cpu" and tm.zeros(2).device == "cpu" and nn.Linear(2, 2).weight.device == "cpu"
    tm.set_default_device(tm.device("cpu"))
    assert tm.ones(1).device == "cpu"


@needs_torch
def test_default_device_errors_and_cpu_answers_match_torch():
    for lib in (tm, torch):
        with pytest.raises(RuntimeError):
            lib.set_default_device("foo")
        lib.set_default_device("cpu")
        assert repr(lib.get_default_device()) == "device(type='cpu')"
        lib.set_default_device(None)


# ----------------------------------------------------------------------------- multiprocessing


@needs_torch
def test_multiprocessing_is_the_stdlib_one_with_sharing_strategies():
    import multiprocessing

    import torch.multiprocessing as tmp

    import tinymm.multiprocessing as mp

    assert mp.Process is multiprocessing.Process and mp.get_context is multiprocessing.get_context
    assert mp.Queue is multiprocessing.Queue and mp.cpu_count() == multiprocessing.cpu_count()
    assert mp.get_all_sharing_strategies() == tmp.get_all_sharing_strategies()
    assert mp.get_sharing_strategy() == tmp.get_sharing_strategy()
    before = mp.get_sharing_strategy()
    mp.set_sharing_strategy("file_system")
    assert mp.get_sharing_strategy() == "file_system"
    mp.set_sharing_strategy(before)
    for lib in (mp, tmp):
        with pytest.raises(AssertionError, match="invalid sharing strategy"):
            lib.set_sharing_strategy("bogus")
    assert tm.multiprocessing is mp


# ----------------------------------------------------------------------------- DistributedSampler


@needs_torch
def test_distributed_sampler_matches_torchs_index_arithmetic():
    from torch.utils.data.distributed import DistributedSampler as TDS

    from tinymm.utils.data.distributed import DistributedSampler as DS

    for n in (1, 7, 10, 12):
        for replicas in (1, 3, 4):
            for drop_last in (False, True):
                if drop_last and n < replicas:
                    continue
                ranks = [list(DS(range(n), num_replicas=replicas, rank=r, shuffle=False, drop_last=drop_last))
                         for r in range(replicas)]
                want = [list(TDS(range(n), num_replicas=replicas, rank=r, shuffle=False, drop_last=drop_last))
                        for r in range(replicas)]
                assert ranks == want, (n, replicas, drop_last)
                shuffled = [DS(range(n), num_replicas=replicas, rank=r, seed=3, drop_last=drop_last)
                            for r in range(replicas)]
                lists = [list(s) for s in shuffled]
                assert [len(s) for s in shuffled] == [len(x) for x in want] == [len(x) for x in lists]
                # interleave the ranks back into the padded order torch builds: perm + perm[:pad]
                order = [lists[i % replicas][i // replicas] for i in range(sum(map(len, lists)))]
                if drop_last:
                    assert len(set(order)) == len(order) and set(order) <= set(range(n))
                else:
                    assert sorted(order[:n]) == list(range(n)) and order[n:] == (order[:n] * replicas)[:len(order) - n]
    s = DS(range(10), num_replicas=2, rank=0, seed=1)
    first = list(s)
    assert list(s) == first  # same epoch, same order
    s.set_epoch(1)
    assert list(s) != first and list(DS(range(10), num_replicas=2, rank=0, seed=1)) == first


@needs_torch
def test_distributed_sampler_refuses_as_torch_does():
    from torch.utils.data.distributed import DistributedSampler as TDS

    from tinymm.utils.data.distributed import DistributedSampler as DS

    for cls in (DS, TDS):
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            cls(range(4))
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            cls(range(4), num_replicas=2)
        with pytest.raises(ValueError, match="Invalid rank 2"):
            cls(range(4), num_replicas=2, rank=2)


# ----------------------------------------------------------------------------- small paths


@needs_torch
def test_default_collate_path_and_tensor_flags():
    from torch.utils.data.dataloader import default_collate as tcollate

    from tinymm.utils.data import default_collate
    from tinymm.utils.data.dataloader import DataLoader, default_collate as collate

    assert collate is default_collate and DataLoader is tm.utils.data.DataLoader
    batch = [(np.array([1.0, 2.0], np.float32), 3), (np.array([4.0, 5.0], np.float32), 6)]
    ours, theirs = collate(batch), tcollate(batch)
    assert ours[0].tolist() == theirs[0].tolist() and ours[1].tolist() == theirs[1].tolist()
    assert str(ours[1].dtype) == str(theirs[1].dtype).replace("torch.", "tinymm.")
    for flag in ("is_sparse", "is_quantized", "is_meta", "is_mkldnn", "is_nested", "is_sparse_csr"):
        assert getattr(tm.ones(2), flag) is getattr(torch.ones(2), flag) is False, flag
