"""kernels/attention CUDA kernels vs the reference: through Numba's CUDA simulator on tiny
shapes and tiles (NumPy arrays), or on CuPy arrays with the default tiles on a GPU.

Accuracy as for the CPU kernels (test_attention_kernels.py): float32 within 3x the naive
float32 error against float64, float64 tightly; every mask kind, causal with Nq != Nk,
fully-masked rows, shapes that are not multiples of any tile.
"""
import functools

import numpy as np
import pytest
from hypothesis import given, settings

from cuda_helpers import SIMULATED, to_cuda, to_host
from test_attention_kernels import (
    MASK_KINDS,
    attention_case,
    check_fused,
    check_fused_float64,
    make_inputs,
    make_mask,
)
from tinymm.kernels import attention as A

# Tiny test grids leave most of a GPU idle; Numba says so for every launch.
pytestmark = pytest.mark.filterwarnings("ignore:Grid size")

# Under the simulator every CUDA thread is a Python thread: tiny tiles and shapes keep it quick.
TILES = (4, 4, 16) if SIMULATED else None
MAX_N = 13 if SIMULATED else 130
HEAD_DIMS = (1, 7, 16) if SIMULATED else (1, 7, 16, 59, 64)
EXAMPLES = 8 if SIMULATED else 25

forward = functools.partial(A.forward, impl="cuda")
backward = functools.partial(A.backward, impl="cuda")


@pytest.fixture(autouse=True, scope="module")
def simulator_tiles():
    """Tiny tiles under the simulator (each CUDA thread is a Python thread); the defaults on a
    GPU. Module-scoped, as hypothesis refuses function-scoped fixtures."""
    if TILES is None:
        yield
        return
    from tinymm.kernels.attention import cuda

    block_m, block_n, d_max = TILES
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cuda, "TILES", {np.dtype(np.float32): (block_m, block_n), np.dtype(np.float64): (block_m, block_n)})
        mp.setattr(cuda, "D_MAX", d_max)
        yield
device = dict(to_device=to_cuda, to_host=to_host)


def small_case():
    return attention_case(max_n=MAX_N, head_dims=HEAD_DIMS).filter(lambda c: c[0] * c[1] <= 2)


@settings(max_examples=EXAMPLES)
@given(small_case())
def test_cuda_float32_matches_reference(case):
    B, H, Nq, Nk, D, Dv, kind, causal, dead_row, seed = case
    rng = np.random.default_rng(seed)
    mask = make_mask(rng, kind, B, H, Nq, Nk, dead_row)
    check_fused(forward, backward, rng, B, H, Nq, Nk, D, Dv, mask, causal, **device)


@settings(max_examples=max(3, EXAMPLES // 3))
@given(small_case())
def test_cuda_float64_matches_reference(case):
    B, H, Nq, Nk, D, Dv, kind, causal, dead_row, seed = case
    rng = np.random.default_rng(seed)
    mask = make_mask(rng, kind, B, H, Nq, Nk, dead_row)
    check_fused_float64(forward, backward, rng, B, H, Nq, Nk, D, Dv, mask, causal, **device)


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_cuda_every_mask_kind_causal_nq_ne_nk(kind):
    rng = np.random.default_rng(11)
    Nq, Nk = (9, 6) if SIMULATED else (70, 45)
    mask = make_mask(rng, kind, 1, 2, Nq, Nk, fully_masked_row=kind != "none")
    check_fused(forward, backward, rng, 1, 2, Nq, Nk, 5, 3, mask, True, scale=0.6, **device)


def test_cuda_head_dim_limit():
    q = np.zeros((1, 1, 2, 200), np.float32)
    with pytest.raises(ValueError, match="head dims up to"):
        forward(to_cuda(q), to_cuda(q), to_cuda(q))


@pytest.mark.skipif(SIMULATED, reason="needs a GPU: dispatch sends CuPy arrays to the CUDA kernels")
def test_dispatch_cupy_goes_to_cuda():
    rng = np.random.default_rng(12)
    q, k, v, do = (to_cuda(a) for a in make_inputs(rng, 2, 2, 33, 40, 16, 16, np.float32))
    o, lse = A.forward(q, k, v, is_causal=True)
    assert type(o).__module__.startswith("cupy")
    o_ref, _ = A.reference_forward(*(to_host(a) for a in (q, k, v)), is_causal=True)
    np.testing.assert_allclose(to_host(o), o_ref, rtol=1e-4, atol=1e-5)
    dq, dk, dv = A.backward(q, k, v, o, lse, do, is_causal=True)
    assert type(dq).__module__.startswith("cupy")
