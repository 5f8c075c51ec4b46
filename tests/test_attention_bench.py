"""benchmarks/attention.py's yardsticks: the block-GEMM rate of each side's BLAS, printed beside
the table so that a ratio can be read against the libraries each side calls."""
from __future__ import annotations

import math

import pytest

from helpers import TORCH_REASON, torch

from tinymm.benchmarks.attention import block_gemm_gflops


def test_numpys_block_gemm_rate_is_a_positive_rate():
    rate = block_gemm_gflops(None, m=32, n=48, k=16, calls=5, repeat=2)
    assert math.isfinite(rate) and rate > 0


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
def test_torchs_block_gemm_rate_leaves_torchs_threads_as_they_were():
    before = torch.get_num_threads()
    rate = block_gemm_gflops(torch, m=32, n=48, k=16, calls=5, repeat=2)
    assert math.isfinite(rate) and rate > 0
    assert torch.get_num_threads() == before
