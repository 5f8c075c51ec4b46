"""The process-wide settings scripts set at the top (threads, matmul precision, determinism,
compile, print options, memory formats), DataParallel / distributed guards, Module.half."""
import numpy as np
import pytest

import tinymm as tm
from tinymm import nn

from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def test_settings_round_trip_and_refuse_bad_values():
    before = tm.get_num_threads()
    tm.set_num_threads(1)
    assert tm.get_num_threads() == 1
    tm.set_num_threads(before)
    with pytest.raises(RuntimeError, match="positive int number of threads"):
        tm.set_num_threads(0)
    tm.set_float32_matmul_precision("high")
    assert tm.get_float32_matmul_precision() == "high"
    tm.set_float32_matmul_precision("highest")
    with pytest.raises(RuntimeError, match="expected 'highest', 'high' or 'medium'"):
        tm.set_float32_matmul_precision("low")
    tm.use_deterministic_algorithms(True, warn_only=True)
    assert tm.are_deterministic_algorithms_enabled() and tm.is_deterministic_algorithms_warn_only_enabled()
    tm.use_deterministic_algorithms(False)
    m = nn.Linear(2, 2)
    assert tm.compile(m)._orig_mod is m and tm.compile()(len) is len  # a module comes back wrapped, as torch's
    with pytest.raises(RuntimeError, match="Either mode or options"):
        tm.compile(m, mode="max-autotune", options={})


@needs_torch
def test_print_options_follow_torchs_precision_and_profiles():
    x = np.array([[0.123456, -2.5], [3.0, 1e-3]], np.float32)
    try:
        for kw in (dict(precision=2), dict(profile="short"), dict(profile="default")):
            tm.set_printoptions(**kw)
            torch.set_printoptions(**kw)
            ours, theirs = repr(tm.tensor(x)), repr(torch.tensor(x))
            assert [float(v) for v in ours[7:-1].replace("[", "").replace("]", "").split(",")] == \
                   [float(v) for v in theirs[7:-1].replace("[", "").replace("]", "").split(",")]
        tm.set_printoptions(threshold=5, edgeitems=1)
        assert "..." in repr(tm.arange(100))
    finally:
        tm.set_printoptions(profile="default")
        torch.set_printoptions(profile="default")


def test_memory_formats_keep_values_and_is_contiguous_reads_strides():
    x = tm.randn(2, 3, 4, 5)
    assert x.is_contiguous() and not x.is_contiguous(memory_format=tm.channels_last)
    y = x.to(memory_format=tm.channels_last)
    np.testing.assert_array_equal(y.detach().numpy(), x.detach().numpy())
    nhwc = tm.tensor(np.ascontiguousarray(x.detach().numpy().transpose(0, 2, 3, 1))).permute(0, 3, 1, 2)
    assert nhwc.is_contiguous(memory_format=tm.channels_last) and not nhwc.is_contiguous()
    assert x.contiguous(memory_format=tm.contiguous_format) is x
    assert repr(tm.channels_last) == "torch.channels_last"


def test_data_parallel_wraps_and_distributed_guards_take_the_single_process_path():
    inner = nn.Linear(3, 2)
    dp = nn.DataParallel(inner)
    x = tm.randn(4, 3)
    np.testing.assert_array_equal(dp(x).detach().numpy(), inner(x).detach().numpy())
    assert dp.module is inner and list(dp.state_dict()) == ["module.weight", "module.bias"]
    assert not tm.distributed.is_available() and not tm.distributed.is_initialized()
    with pytest.raises(RuntimeError, match="Default process group has not been initialized"):
        tm.distributed.get_rank()
    with pytest.raises(RuntimeError, match="Default process group has not been initialized"):
        nn.parallel.DistributedDataParallel(inner)


def test_module_half_casts_float_parameters_and_bfloat16_refuses_by_name():
    m = nn.Linear(2, 2).half()
    assert m.weight.dtype == tm.float16 and m.bias.dtype == tm.float16
    with pytest.raises(TypeError, match="no bfloat16"):
        nn.Linear(2, 2).bfloat16()
