"""kernels/conv/_shifted_gemm: the GEMM whose right operand's rows are shifted slices of one
flat array, against NumPy on hypothesis-drawn sizes (row counts around the register tile's MR,
several tiles of columns, shifts in any order and repeated), and its plain NumPy version."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinymm.kernels.conv._shifted_gemm import shifted_gemm
from tinymm.kernels.recurrent._packed_gemm import panel_width


def _compiled_call():
    from numba import njit

    @njit
    def call(a, taps, x, x_off, c):
        shifted_gemm(a, taps, x, x_off, c)

    return call


_call = _compiled_call()


def _operands(rng, M, K, tiles, dtype, x_off):
    nr = panel_width(dtype)
    Q = tiles * nr
    taps = rng.integers(0, 60, K).astype(np.int64)
    x = rng.uniform(-1, 1, x_off + 60 + Q).astype(dtype)
    a = rng.uniform(-1, 1, (M, K + 3)).astype(dtype)[:, 2:K + 2]  # rows wider than K, offset
    return a, taps, x, Q


@settings(max_examples=40, deadline=None)
@given(M=st.integers(1, 30), K=st.integers(1, 80), tiles=st.integers(1, 4),
       dtype=st.sampled_from([np.float32, np.float64]), x_off=st.integers(0, 9), seed=st.integers(0, 2**16))
def test_shifted_gemm_matches_numpy(M, K, tiles, dtype, x_off, seed):
    rng = np.random.default_rng(seed)
    a, taps, x, Q = _operands(rng, M, K, tiles, dtype, x_off)
    # c a window of a wider array, whose other columns must stay as they were
    wide = rng.uniform(-1, 1, (M, Q + 7)).astype(dtype)
    before = wide.copy()
    c = wide[:, 3:3 + Q]
    _call(a, taps, x, x_off, c)
    X = x.astype(np.float64)[x_off + taps[:, None] + np.arange(Q)]
    want = a.astype(np.float64) @ X
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, want, rtol=tol, atol=tol * K)
    np.testing.assert_array_equal(wide[:, :3], before[:, :3])
    np.testing.assert_array_equal(wide[:, 3 + Q:], before[:, 3 + Q:])


def test_shifted_gemm_plain_python_matches_compiled():
    """The NumPy version (what NUMBA_DISABLE_JIT=1 runs) computes the same product."""
    rng = np.random.default_rng(2)
    a, taps, x, Q = _operands(rng, 11, 30, 2, np.float32, 5)
    got, want = np.zeros((11, Q), np.float32), np.zeros((11, Q), np.float32)
    shifted_gemm(a, taps, x, 5, got)
    _call(a, taps, x, 5, want)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_shifted_gemm_refuses_a_width_off_the_tile():
    """c's width must be whole register tiles (the caller pads); otherwise an error, not garbage
    past the end of c (what a stale compiled kernel of another vector width would do)."""
    import pytest

    rng = np.random.default_rng(4)
    a, taps, x, Q = _operands(rng, 3, 4, 1, np.float32, 0)
    with pytest.raises(ValueError, match="whole number of register tiles"):
        _call(a, taps, x, 0, np.zeros((3, Q - 1), np.float32))
