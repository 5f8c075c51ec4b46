"""The AMX attention path (``kernels/attention/_amx.py``, ``cpu_amx.py``): bfloat16 pieces, the
tile product, the 16-lane softmax passes, and the kernels against the float64 reference.

Runs only where AMX is usable (a Sapphire Rapids or later Xeon, Linux, Numba compiling for the
host); elsewhere the module is skipped with the reason. The dispatch tests at the end run
everywhere."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_attention_kernels import MASK_KINDS, check_fused, make_mask
from tinymm.kernels.attention import _amx
from tinymm.kernels.attention import cpu as cpu_amx
from tinymm.kernels.attention import reference_backward, reference_forward
from tinymm.kernels import attention as A


def cpu_forward(q, k, v, mask=None, is_causal=False, scale=None):
    return A.forward(q, k, v, mask, is_causal, scale, impl="cpu")


def cpu_backward(q, k, v, o, lse, do, mask=None, is_causal=False, scale=None):
    return A.backward(q, k, v, o, lse, do, mask, is_causal, scale, impl="cpu")

needs_amx = pytest.mark.skipif(not _amx.available(), reason="AMX not usable here (CPU, OS or Numba target)")


def pieces_value(p):
    """float64 value of bfloat16 bits (uint16)."""
    return (p.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


@pytest.fixture
def amx_everywhere(monkeypatch):
    """The AMX kernels for every key count (by default they start at MIN_KEYS)."""
    monkeypatch.setattr(cpu_amx, "AMX_MIN_KEYS", 0)
    monkeypatch.setattr(cpu_amx, "AMX_MIN_KEYS_CAUSAL", 0)


# -------------------------------------------------------------------------------------------
# Pieces and the tile product
# -------------------------------------------------------------------------------------------

@needs_amx
@pytest.mark.parametrize("d", [64, 50, 7])
def test_split_rows_reconstructs_float32(d):
    rng = np.random.default_rng(d)
    x = (rng.standard_normal((37, d)) * np.exp(rng.uniform(-20, 20, (37, d)))).astype(np.float32)
    x[0, :5] = [0.0, -0.0, 1.0, -3.0, 2.0**-60]
    out = np.full((3, 48, 96), 7, np.uint16)
    _amx.split_rows(x, out)
    total = sum(pieces_value(out[p, :37, :d]) for p in range(3))
    assert np.all(np.abs(total - x) <= 2.0**-23 * np.abs(x.astype(np.float64)))
    assert np.all(out[:, 37:] == 0) and np.all(out[:, :, d:] == 0)


@pytest.mark.parametrize("n, d", [(256, 64), (17, 33), (5, 3), (48, 16), (100, 128)])
def test_transpose_into_any_shape(n, d):
    """16 x 16 blocks in registers and element-wise edges, from rows that are not adjacent
    (no AMX needed: the BLAS kernels use it too)."""
    rng = np.random.default_rng(n * d)
    x = rng.standard_normal((n + 3, d + 5)).astype(np.float32)[:n, :d]
    out = np.full((d + 2, n + 7), np.nan, np.float32)
    _amx.transpose_into(x, out, -0.5)
    np.testing.assert_array_equal(out[:d, :n], -0.5 * x.T)
    assert np.isnan(out[d:]).all() and np.isnan(out[:, n:]).all()


@needs_amx
@pytest.mark.parametrize("n, d", [(1, 32), (7, 16), (64, 64), (101, 48)])
def test_pair_layouts(n, d):
    """out[p, k // 2, 2 c + k % 2] is piece p of B[k, c]: from B itself and from its transpose."""
    rng = np.random.default_rng(n)
    b = rng.standard_normal((n, d)).astype(np.float32)
    rows = np.zeros((3, n + 1, d), np.uint16)
    _amx.split_rows(b, rows)
    expect = np.zeros((3, (n + 1) // 2 + 2, 2 * d + 32), np.uint16)
    for k in range(n):
        expect[:, k // 2, 2 * np.arange(d) + k % 2] = rows[:, k, :d]
    out = np.full_like(expect, 9)
    _amx.split_pairs(b, out)
    np.testing.assert_array_equal(out, expect)
    if n % 2 == 0:  # B = x^T with x (d, n): K = n must pair up
        out_t = np.full((3, n // 2, 2 * d + 32), 9, np.uint16)
        _amx.split_transposed_pairs(np.ascontiguousarray(b.T), out_t, np.empty((n, d + 16), np.float32))
        np.testing.assert_array_equal(out_t, expect[:, : n // 2])


@needs_amx
@pytest.mark.parametrize("n, d", [(256, 64), (300, 64), (5, 32), (17, 16), (33, 48), (7, 20)])
def test_transposed_splits(n, d):
    """The pieces of x^T by rows and in the pair layout, from 16 x 16 blocks transposed in
    registers (d a multiple of 16; rows past n are zeros) or through a transposed copy (other d),
    each with the bits of max |x|; x's rows are not adjacent."""
    rng = np.random.default_rng(n + d)
    x = (rng.standard_normal((n + 2, d + 3)) * np.exp(rng.uniform(-10, 10, (n + 2, d + 3)))).astype(np.float32)
    x = x[:n, :d]
    rows = np.zeros((3, d + 3, n + 33), np.uint16)
    _amx.split_rows(np.ascontiguousarray(x.T), rows)  # the expected pieces of x^T
    total = sum(pieces_value(rows[p, :d, :n]) for p in range(3))
    assert np.all(np.abs(total - x.T) <= 2.0**-23 * np.abs(x.T.astype(np.float64)))
    pairs = np.zeros((3, (d + 1) // 2 + 2, 2 * n + 40), np.uint16)
    for c in range(d):
        pairs[:, c // 2, 2 * np.arange(n) + c % 2] = rows[:, c, :n]
    scratch = np.empty((d + 1, n + 5), np.float32)
    top = np.abs(x).max().view(np.int32)
    out = np.full_like(rows, 9)
    assert _amx.split_transposed_rows(x, out, scratch) == top
    np.testing.assert_array_equal(out, rows)
    out = np.full_like(pairs, 9)
    assert _amx.split_transposed_pairs(x, out, scratch) == top
    np.testing.assert_array_equal(out, pairs)


@needs_amx
@settings(max_examples=25, deadline=None)
@given(st.integers(1, 70), st.integers(1, 100), st.integers(1, 70), st.booleans(), st.integers(0, 2**31 - 1))
def test_amx_gemm_is_as_accurate_as_float32(M, K, N, accumulate, seed):
    from numba import njit

    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    mt, kc, nt = -(-M // 16), -(-K // 32), -(-N // 16)
    ap = _amx.aligned_empty((3, 16 * mt, 32 * kc), np.uint16)
    ap[:] = 0
    _amx.split_rows(a, ap)
    bp = _amx.aligned_empty((3, 16 * kc, 32 * nt + 32), np.uint16)
    _amx.split_pairs(b, bp)
    c = _amx.aligned_empty((16 * mt, 16 * nt + 16), np.float32)
    start = rng.standard_normal(c.shape).astype(np.float32)
    c[:] = start
    njit(lambda a, b, c, m, n, k, acc: _amx.amx_gemm(a, b, c, m, n, k, acc))(ap, bp, c, mt, nt, kc, accumulate)
    exact = a.astype(np.float64) @ b.astype(np.float64) + (start[:M, :N] if accumulate else 0)
    size = np.abs(a).astype(np.float64) @ np.abs(b) + (np.abs(start[:M, :N]) if accumulate else 0)
    # float32's own bound for a K-term sum: K * 2**-24 of the sum of |terms| (sgemm: ~1e-7).
    assert np.all(np.abs(c[:M, :N] - exact) <= 4e-7 * size + 1e-30)


@needs_amx
def test_exp_sum_split_matches_exp2():
    from numba import njit

    rng = np.random.default_rng(2)
    for n in (1, 15, 16, 17, 100, 512):
        row = (rng.standard_normal(n) * 30).astype(np.float32)
        row[:: 7] = -np.inf
        pieces = np.zeros((3, n), np.uint16)
        total = njit(lambda r, a, s, p: _amx.exp_sum_split(r, a, s, p[0], p[1], p[2]))(
            row, np.float32(0.5), np.float32(14.0), pieces)
        e = np.exp2(0.5 * row.astype(np.float64) - 14.0)
        back = sum(pieces_value(pieces[p]) for p in range(3))
        # float32 rounds the argument (|arg| <= ~60 here: 2**-24 * 60 * ln 2 relative) and the
        # polynomial adds 1e-7
        np.testing.assert_allclose(back, e, rtol=4e-6, atol=1e-37)
        np.testing.assert_allclose(total, e.sum(), rtol=1e-6)
        assert np.all(back[np.isneginf(row)] == 0)


# -------------------------------------------------------------------------------------------
# The kernels against the reference
# -------------------------------------------------------------------------------------------

@needs_amx
@settings(max_examples=30, deadline=None)
@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 300), st.integers(1, 300),
       st.sampled_from((32, 64, 96)), st.sampled_from((32, 64)), st.sampled_from(MASK_KINDS),
       st.booleans(), st.booleans(), st.integers(0, 2**31 - 1))
def test_amx_kernels_match_reference(B, H, Nq, Nk, D, Dv, kind, causal, dead_row, seed):
    rng = np.random.default_rng(seed)
    mask = make_mask(rng, kind, B, H, Nq, Nk, dead_row and kind != "none")
    with pytest.MonkeyPatch.context() as patch:  # (hypothesis: no function-scoped fixture)
        patch.setattr(cpu_amx, "AMX_MIN_KEYS", 0)
        patch.setattr(cpu_amx, "AMX_MIN_KEYS_CAUSAL", 0)
        check_fused(cpu_forward, cpu_backward, rng, B, H, Nq, Nk, D, Dv, mask, causal)


@needs_amx
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kind", ["none", "key_padding", "additive_rows"])
def test_amx_many_blocks_and_tiles(amx_everywhere, kind, causal):
    """Several query blocks and key tiles (forward 512 keys, backward 256), causal diagonal
    tiles, one head (query blocks split across threads), sizes off every tile."""
    B, H, Nq, Nk = 1, 1, 2 * 256 + 37, 2 * 512 + 51
    rng = np.random.default_rng(3)
    mask = make_mask(rng, kind, B, H, Nq, Nk)
    check_fused(cpu_forward, cpu_backward, rng, B, H, Nq, Nk, 64, 32, mask, causal, scale=0.4)


@needs_amx
@pytest.mark.parametrize("scale", [3.0, -0.5, 0.0])
def test_amx_scale_sharp_negative_zero(amx_everywhere, scale):
    rng = np.random.default_rng(4)
    check_fused(cpu_forward, cpu_backward, rng, 2, 2, 33, 70, 32, 32, None, True, scale=scale)


@needs_amx
def test_amx_every_key_masked(amx_everywhere):
    rng = np.random.default_rng(8)
    q, k, v, do = (rng.standard_normal((1, 2, 40, 64)).astype(np.float32) for _ in range(4))
    mask = np.zeros((1, 1, 1, 40), bool)
    o, lse = cpu_forward(q, k, v, mask)
    assert np.all(o == 0) and np.all(np.isneginf(lse))
    for g in cpu_backward(q, k, v, o, lse, do, mask):
        assert np.all(g == 0)


# -------------------------------------------------------------------------------------------
# When the AMX kernels run (everywhere)
# -------------------------------------------------------------------------------------------

def _inputs(N=600, D=64, scale=1.0):
    rng = np.random.default_rng(5)
    return [(rng.standard_normal((1, 2, N, D)) * scale).astype(np.float32) for _ in range(4)]


@pytest.mark.parametrize("why, change", [
    ("nan", lambda x: x.__setitem__((0, 0, 3, 5), np.nan)),
    ("inf", lambda x: x.__setitem__((0, 1, 0, 0), -np.inf)),
    ("tiny", lambda x: x.__imul__(np.float32(1e-30))),
    ("huge", lambda x: x.__setitem__((0, 0, 0, 0), np.float32(2.0**70))),
])
@pytest.mark.parametrize("which", range(4))
def test_inputs_amx_cannot_take_go_to_blas(why, change, which):
    """The AMX kernels see the bad value as they split the input, and give up; the public
    kernels then return BLAS's results (NaN where torch has NaN, 0-free tiny values...)."""
    inputs = _inputs()
    o, lse = A.forward(*inputs[:3], impl="cpu")
    change(inputs[which])
    q, k, v, do = inputs
    if which < 3:
        assert cpu_amx.amx_forward(q, k, v) is None
    assert cpu_amx.amx_backward(q, k, v, o, lse, do) is None
    got = cpu_backward(q, k, v, o, lse, do)
    with_blas = cpu_amx.cpu_backward(q, k, v, o, lse, do)
    for g, r in zip(got, with_blas):
        np.testing.assert_array_equal(g, r)


def test_who_runs_what():
    q, k, v, _ = _inputs()
    usable = _amx.available()
    assert cpu_amx.amx_applies(np.float32, 64, 64, k.shape[2], True) == usable
    assert (cpu_amx.amx_forward(q, k, v) is not None) == usable
    assert not cpu_amx.amx_applies(np.float32, 64, 64, 100, False)  # few keys: BLAS
    assert not cpu_amx.amx_applies(np.float32, 64, 64, 256, True)  # causal: BLAS up to 384 keys
    assert not cpu_amx.amx_applies(np.float64, 64, 64, 600, False)
    assert not cpu_amx.amx_applies(np.float32, 48, 64, 600, False)


def test_switched_off_by_environment():
    code = "from tinymm.kernels.attention import _amx; print(_amx.available())"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "TINYMM_AMX": "0"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@needs_amx
def test_amx_matches_blas_path_on_a_real_size():
    """B1 H2 N600 D64, causal and not: the AMX and BLAS kernels agree to float32 rounding."""
    q, k, v, do = _inputs()
    for causal in (False, True):
        o, lse = cpu_forward(q, k, v, is_causal=causal)
        grads = cpu_backward(q, k, v, o, lse, do, is_causal=causal)
        q64, k64, v64, do64 = (a.astype(np.float64) for a in (q, k, v, do))
        o64, lse64 = reference_forward(q64, k64, v64, None, causal)
        g64 = reference_backward(q64, k64, v64, o64, lse64, do64, None, causal)
        np.testing.assert_allclose(o, o64, rtol=0, atol=2e-6)
        for g, r in zip(grads, g64):
            np.testing.assert_allclose(g, r, rtol=0, atol=3e-5 * np.abs(r).max())
