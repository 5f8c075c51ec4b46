"""tinymm.bfloat16: a dtype that can be named, compared, hashed, pickled and asked for its
limits (as torch.bfloat16), with no tensors behind it (NumPy has no bfloat16): making one
raises a TypeError that says so."""
import copy
import pickle

import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch


def test_properties_match_torch():
    if torch is None:
        pytest.skip(TORCH_REASON)
    ours, ref = tm.bfloat16, torch.bfloat16
    assert (ours.is_floating_point, ours.is_complex, ours.is_signed, ours.itemsize) == \
        (ref.is_floating_point, ref.is_complex, ref.is_signed, ref.itemsize)
    assert repr(ours) == "tinymm.bfloat16" and str(ours.to_complex()).split(".")[-1] == str(ref.to_complex()).split(".")[-1]
    a, b = tm.finfo(tm.bfloat16), torch.finfo(torch.bfloat16)
    assert (a.bits, a.eps, a.max, a.min, a.tiny, a.smallest_normal, a.resolution, a.dtype) == \
        (b.bits, b.eps, b.max, b.min, b.tiny, b.smallest_normal, b.resolution, b.dtype)


def test_named_in_tables_compared_and_pickled():
    table = {"float32": tm.float32, "bfloat16": tm.bfloat16, "float16": tm.float16}  # nanoGPT's
    assert table["bfloat16"] is tm.bfloat16 and isinstance(tm.bfloat16, tm.dtype)
    assert tm.ones(2).dtype != tm.bfloat16 and tm.bfloat16 != tm.float16 and tm.bfloat16 == tm.bfloat16
    assert pickle.loads(pickle.dumps(tm.bfloat16)) is tm.bfloat16 and copy.deepcopy(tm.bfloat16) is tm.bfloat16
    assert {tm.bfloat16: 1}[tm.bfloat16] == 1


@pytest.mark.parametrize("make", [
    lambda: tm.zeros(2, dtype=tm.bfloat16),
    lambda: tm.tensor([1.0], dtype=tm.bfloat16),
    lambda: tm.ones(2).to(tm.bfloat16),
    lambda: tm.ones(2).bfloat16(),
    lambda: tm.ones(2).type(tm.bfloat16),
    lambda: tm.nn.Linear(2, 2).to(tm.bfloat16),
])
def test_making_a_tensor_says_why_not(make):
    with pytest.raises(TypeError, match="no bfloat16"):
        make()
