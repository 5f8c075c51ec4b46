"""kernels/recurrent/_packed_gemm: the packed-weight GEMM of the CPU time loop against NumPy on
hypothesis-drawn sizes (rows beyond one 6-row block, panels cut short, a 0-wide first part),
and the LSTM layer with batches larger than one block against the reference."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinymm.kernels import recurrent as R
from tinymm.kernels.recurrent._packed_gemm import pack_panels, packed_gemm, panel_width


def _compiled_call():
    from numba import njit

    @njit
    def call(a1, a2, wp, c, add):
        packed_gemm(a1, a2, wp, c, add)

    return call


_call = _compiled_call()


@settings(max_examples=40, deadline=None)
@given(M=st.integers(1, 40), K1=st.integers(0, 40), K2=st.integers(1, 70), N=st.integers(1, 70),
       dtype=st.sampled_from([np.float32, np.float64]), add=st.booleans(), transposed=st.booleans(),
       seed=st.integers(0, 2**16))
def test_packed_gemm_matches_numpy(M, K1, K2, N, dtype, add, transposed, seed):
    rng = np.random.default_rng(seed)
    # a1 and a2 are column ranges of one array (row stride wider than either), c a window of
    # a wider array (whose other columns must stay as they were)
    a = rng.uniform(-1, 1, (M, K1 + K2 + 3)).astype(dtype)
    a1, a2 = a[:, :K1], a[:, K1 + 3:]
    w = rng.uniform(-1, 1, (K1 + K2, N)).astype(dtype)
    # the weights as given, or as transposed views (how the LSTM forward packs W_ih^T, W_hh^T)
    blocks = (np.ascontiguousarray(w[:K1].T).T, np.ascontiguousarray(w[K1:].T).T) if transposed else (w[:K1], w[K1:])
    wp = pack_panels(*blocks)
    nr = panel_width(dtype)
    assert wp.shape == (-(-N // nr), K1 + K2, nr)
    wide = rng.uniform(-1, 1, (M, N + 5)).astype(dtype)
    before = wide.copy()
    c = wide[:, 2:2 + N]
    _call(a1, a2, wp, c, add)
    want = (before[:, 2:2 + N] if add else 0) + a1 @ w[:K1] + a2 @ w[K1:]
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, want, rtol=tol, atol=tol * (K1 + K2))
    np.testing.assert_array_equal(wide[:, :2], before[:, :2])
    np.testing.assert_array_equal(wide[:, 2 + N:], before[:, 2 + N:])


def test_packed_gemm_plain_python_matches_compiled():
    """The NumPy version (what NUMBA_DISABLE_JIT=1 runs) computes the same product."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((9, 12)).astype(np.float32)
    w = rng.standard_normal((12, 21)).astype(np.float32)
    wp = pack_panels(w[:5], w[5:])
    got, want = np.zeros((9, 21), np.float32), np.zeros((9, 21), np.float32)
    packed_gemm(a[:, :5], a[:, 5:], wp, got, False)
    _call(a[:, :5], a[:, 5:], wp, want, False)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("helper", ["inline", "thread"])
@pytest.mark.parametrize("B, proj, reverse, ragged", [(13, 0, False, False), (32, 0, True, True), (7, 5, False, True)])
def test_lstm_batches_over_one_block_match_reference(dtype, helper, B, proj, reverse, ragged):
    """Batches of more than 6 rows (several row blocks of the step GEMM, 13 = 5 + 4 + 4), hidden
    sizes whose gate width is no multiple of a panel, one thread (the input projection and dx in
    the loop) and a helper thread: forward and every gradient as the reference's."""
    from tinymm.kernels.recurrent import cpu

    rng = np.random.default_rng(B * 10 + proj)
    T, I, H = 6, 7, 19
    G = 4 * H
    P = proj or H
    u = lambda *s: rng.uniform(-0.8, 0.8, size=s).astype(dtype)
    lengths = np.sort(rng.integers(1, T + 1, size=B))[::-1].astype(np.int64) if ragged else None
    args = [u(T, B, I), u(B, P), u(B, H), u(G, I), u(G, P), u(G), u(G), u(P, H) if proj else None, lengths]
    run = cpu._INLINE if helper == "inline" else cpu._workers("helper")
    want = R.reference_forward("LSTM", *args, reverse)
    got = cpu.cpu_forward("LSTM", *args, reverse, helper=run)
    tol = {"rtol": 2e-5, "atol": 2e-6} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}
    for g, w in zip(got[:3], want[:3]):
        np.testing.assert_allclose(g, w, **tol)
    dy, dh, dc = u(*want[0].shape), u(*want[1].shape), u(*want[2].shape)
    g_want = R.reference_backward("LSTM", *args, reverse, want[3], dy, dh, dc)
    g_got = cpu.cpu_backward("LSTM", *args, reverse, got[3], dy, dh, dc, helper=run)
    for name, g, w in zip(("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "w_hr"), g_got, g_want):
        assert (g is None) == (w is None), name
        if w is not None:
            scale = max(1.0, float(np.abs(w).max()))
            np.testing.assert_allclose(g, w, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10 * scale, err_msg=name)


def test_panels_of_another_width_are_refused():
    """Panels packed for another vector width (what a kernel cached before VECTOR_BYTES changed
    would be handed) raise instead of being misread."""
    from tinymm.kernels.recurrent import _packed_gemm as G

    other = 2 * panel_width(np.float32) if G.VECTOR_BYTES == 32 else panel_width(np.float32) // 2
    wp = np.zeros((1, 3, other), np.float32)
    with pytest.raises(ValueError, match="different width"):
        _call(np.zeros((2, 0), np.float32), np.zeros((2, 3), np.float32), wp, np.zeros((2, 5), np.float32), False)


@pytest.mark.parametrize("features, name, want", [
    ("+avx2,+fma,+avx512f,+avx512vl", None, 64),
    ("+avx2,+fma,-avx512f", None, 32),
    (None, "generic", 32),
])
def test_vector_width_follows_numbas_target(monkeypatch, features, name, want):
    """NUMBA_CPU_FEATURES / NUMBA_CPU_NAME, when set, decide the width instead of the host."""
    from numba.core import config

    from tinymm.kernels.recurrent import _packed_gemm as G

    monkeypatch.setattr(config, "CPU_FEATURES", features)
    monkeypatch.setattr(config, "CPU_NAME", name)
    assert G._host_vector_bytes() == want


def test_vector_width_of_the_host():
    import llvmlite.binding
    from numba.core import config

    from tinymm.kernels.recurrent import _packed_gemm as G

    if config.CPU_FEATURES is not None or config.CPU_NAME is not None:
        pytest.skip("NUMBA_CPU_FEATURES/NUMBA_CPU_NAME set: the target is not the host")
    avx512 = bool(llvmlite.binding.get_host_cpu_features().get("avx512f"))
    assert G.VECTOR_BYTES == (64 if avx512 else 32)
    assert panel_width(np.float32) == G.VECTOR_BYTES // 2
