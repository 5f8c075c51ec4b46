"""kernels/recurrent: the reference BPTT against finite differences (float64), and the fast CPU
kernel against the reference on hypothesis-drawn sizes (ragged lengths, both directions)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numeric import numeric_grad
from tinymm.kernels import recurrent as R

MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")


def make_case(rng, mode, T, B, I, H, dtype=np.float64, proj=0, bias=True, ragged=False):
    """Inputs of one layer-direction call: a dict of the kernel's keyword arguments."""
    G = R.GATES[mode] * H
    P = proj or H
    u = lambda *s: rng.uniform(-0.8, 0.8, size=s).astype(dtype)  # noqa: E731
    lengths = None
    if ragged:
        lengths = rng.integers(1, T + 1, size=B).astype(np.int64)
    return dict(
        x=u(T, B, I), h0=u(B, P), c0=u(B, H) if mode == "LSTM" else None,
        w_ih=u(G, I), w_hh=u(G, P), b_ih=u(G) if bias else None, b_hh=u(G) if bias else None,
        w_hr=u(P, H) if proj else None, lengths=lengths,
    )


def run_forward(mode, case, reverse, impl):
    return R.forward(mode, case["x"], case["h0"], case["c0"], case["w_ih"], case["w_hh"],
                     case["b_ih"], case["b_hh"], case["w_hr"], case["lengths"], reverse, impl=impl)


def run_backward(mode, case, reverse, saved, dy, dh_n, dc_n, impl):
    return R.backward(mode, case["x"], case["h0"], case["c0"], case["w_ih"], case["w_hh"],
                      case["b_ih"], case["b_hh"], case["w_hr"], case["lengths"], reverse, saved,
                      dy, dh_n, dc_n, impl=impl)


GRAD_NAMES = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "w_hr")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("ragged", [False, True])
def test_reference_bptt_matches_finite_differences(mode, reverse, ragged):
    rng = np.random.default_rng(hash((mode, reverse, ragged)) % 2**32)
    proj = 2 if mode == "LSTM" and ragged else 0
    case = make_case(rng, mode, T=4, B=3, I=2, H=3, proj=proj, ragged=ragged)
    if ragged:
        case["lengths"] = np.array([4, 1, 3])
    y, h_n, c_n, saved = run_forward(mode, case, reverse, "reference")
    ry, rh, rc = rng.standard_normal(y.shape), rng.standard_normal(h_n.shape), None
    if c_n is not None:
        rc = rng.standard_normal(c_n.shape)

    def loss():
        y, h_n, c_n, _ = run_forward(mode, case, reverse, "reference")
        return (y * ry).sum() + (h_n * rh).sum() + (0.0 if c_n is None else (c_n * rc).sum())

    grads = run_backward(mode, case, reverse, saved, ry, rh, rc, "reference")
    for name, g in zip(GRAD_NAMES, grads):
        if case[name] is None:
            assert g is None, name
            continue
        want = numeric_grad(loss, case[name])
        np.testing.assert_allclose(g, want, atol=1e-7, rtol=1e-6, err_msg=f"{mode} d{name}")
    if ragged:  # padded steps: zero output, no gradient into the padded inputs
        perm, active = R.step_order(case["lengths"], 4, 3, reverse)
        for b, n in enumerate(case["lengths"]):
            assert np.all(y[n:, b] == 0)
            assert np.all(grads[0][n:, b] == 0)


def test_step_order_reverse_starts_at_each_rows_last_step():
    perm, active = R.step_order(np.array([3, 1, 2]), 3, 3, reverse=True)
    np.testing.assert_array_equal(perm, [[2, 0, 1], [1, 1, 0], [0, 2, 2]])
    np.testing.assert_array_equal(active, [[1, 1, 1], [1, 0, 1], [1, 0, 0]])


def test_gru_reset_gate_multiplies_the_hidden_projection():
    """h' with W_hh = 0 but b_hh != 0 depends on r only through r * b_hn (PyTorch's placement)."""
    rng = np.random.default_rng(3)
    case = make_case(rng, "GRU", T=1, B=1, I=1, H=1)
    case["w_hh"][:] = 0
    x, b_ih, b_hh, h0 = case["x"][0, 0, 0], case["b_ih"], case["b_hh"], case["h0"][0, 0]
    w = case["w_ih"][:, 0]
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    r, z = sig(w[0] * x + b_ih[0] + b_hh[0]), sig(w[1] * x + b_ih[1] + b_hh[1])
    n = np.tanh(w[2] * x + b_ih[2] + r * b_hh[2])
    _, h_n, _, _ = run_forward("GRU", case, False, "reference")
    np.testing.assert_allclose(h_n[0, 0], (1 - z) * n + z * h0, rtol=1e-12)


# --------------------------------------------------------------------------- fast CPU vs reference

@st.composite
def sizes(draw):
    mode = draw(st.sampled_from(MODES))
    T, B = draw(st.integers(1, 17)), draw(st.integers(1, 5))
    I, H = draw(st.integers(1, 9)), draw(st.integers(1, 13))
    proj = draw(st.integers(0, H - 1)) if mode == "LSTM" and H > 1 and draw(st.booleans()) else 0
    return mode, T, B, I, H, proj, draw(st.booleans()), draw(st.booleans()), draw(st.booleans()), draw(st.integers(0, 2**31))


def compare_with_reference(impl, mode, T, B, I, H, proj, reverse, ragged, bias, seed, dtype,
                           to_device=lambda a: a, to_host=lambda a: a):
    rng = np.random.default_rng(seed)
    case = make_case(rng, mode, T, B, I, H, dtype=dtype, proj=proj, bias=bias, ragged=ragged)
    want = run_forward(mode, case, reverse, "reference")
    dev = {k: (v if k == "lengths" else to_device(v)) for k, v in case.items()}
    got = run_forward(mode, dev, reverse, impl)
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)
    for name, g, w in zip(("y", "h_n", "c_n"), got[:3], want[:3]):
        assert (g is None) == (w is None), name
        if w is not None:
            np.testing.assert_allclose(to_host(g), w, err_msg=f"{impl} {name}", **tol)
    dy = rng.standard_normal(want[0].shape).astype(dtype)
    dh = rng.standard_normal(want[1].shape).astype(dtype)
    dc = None if want[2] is None else rng.standard_normal(want[2].shape).astype(dtype)
    g_want = run_backward(mode, case, reverse, want[3], dy, dh, dc, "reference")
    g_got = run_backward(mode, dev, reverse, got[3], to_device(dy), to_device(dh), to_device(dc), impl)
    for name, g, w in zip(GRAD_NAMES, g_got, g_want):
        assert (g is None) == (w is None), name
        if w is not None:
            scale = max(1.0, float(np.abs(w).max()))
            np.testing.assert_allclose(to_host(g), w, rtol=tol["rtol"], atol=tol["atol"] * scale,
                                       err_msg=f"{impl} d{name} ({mode})")


@settings(max_examples=30)
@given(sizes())
def test_cpu_float32_matches_reference(s):
    compare_with_reference("cpu", *s, dtype=np.float32)


@settings(max_examples=15)
@given(sizes())
def test_cpu_float64_matches_reference(s):
    compare_with_reference("cpu", *s, dtype=np.float64)


def test_dispatch_numpy_goes_to_cpu(monkeypatch):
    from tinymm.kernels.recurrent import cpu

    calls = []
    monkeypatch.setattr(cpu, "cpu_forward", lambda *a, **k: calls.append(a) or "cpu")
    assert R.forward("GRU", np.zeros((1, 1, 1)), None, None, None, None) == "cpu"
    with pytest.raises(ValueError, match="impl must be"):
        R.forward("GRU", np.zeros((1, 1, 1)), None, None, None, None, impl="gpu")


@settings(max_examples=10)
@given(sizes())
def test_cpu_bidirectional_pair_matches_reference(s):
    """Both directions at once on two threads give each direction's reference results."""
    mode, T, B, I, H, proj, _, ragged, bias, seed = s
    rng = np.random.default_rng(seed)
    cases = [make_case(rng, mode, T, B, I, H, np.float32, proj, bias, ragged) for _ in range(2)]
    x, lengths = cases[0]["x"], cases[0]["lengths"]
    states = [(c["h0"], c["c0"]) for c in cases]
    weights = [tuple(c[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh", "w_hr")) for c in cases]
    got = R.forward_bidirectional(mode, x, states, weights, lengths, impl="cpu")
    dys = [rng.standard_normal(g[0].shape).astype(np.float32) for g in got]
    dhs = [rng.standard_normal(g[1].shape).astype(np.float32) for g in got]
    dcs = [None if g[2] is None else np.ones_like(g[2]) for g in got]
    grads = R.backward_bidirectional(mode, x, states, weights, lengths, [g[3] for g in got], dys, dhs, dcs, impl="cpu")
    for d in range(2):
        want = R.reference_forward(mode, x, *states[d], *weights[d], lengths, bool(d))
        for g, w in zip(got[d][:3], want[:3]):
            if w is not None:
                np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-5)
        g_want = R.reference_backward(mode, x, *states[d], *weights[d], lengths, bool(d), want[3], dys[d], dhs[d], dcs[d])
        for name, g, w in zip(GRAD_NAMES, grads[d], g_want):
            assert (g is None) == (w is None), name
            if w is not None:
                np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-5 * max(1.0, float(np.abs(w).max())), err_msg=name)


# --------------------------------------------------------------------------- step ranges, helper thread

def test_step_ranges_cover_every_step_once():
    from tinymm.kernels.recurrent.cpu import _chunks

    for T in range(1, 70):
        ranges = _chunks(T)
        assert ranges[0][0] == 0 and ranges[-1][1] == T
        assert all(s0 < s1 for s0, s1 in ranges)
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))


@pytest.mark.parametrize("helper", ["inline", "thread"])
@pytest.mark.parametrize("mode, T, B, I, H, proj, reverse, ragged", [
    ("LSTM", 17, 3, 5, 7, 0, False, False), ("LSTM", 13, 4, 3, 6, 4, True, True),
    ("GRU", 17, 5, 9, 13, 0, True, False), ("GRU", 11, 2, 4, 5, 0, False, True),
    ("RNN_TANH", 9, 3, 2, 4, 0, True, True), ("RNN_RELU", 16, 2, 3, 3, 0, False, False),
])
def test_cpu_step_ranges_inline_and_on_a_helper_thread(helper, mode, T, B, I, H, proj, reverse, ragged):
    """The time loop runs range by range; each range's input projection (forward) and weight
    GEMMs (backward) run inline or on the helper thread, with two reused buffers: same results
    as the reference either way (odd sizes, ragged lengths, both directions)."""
    from tinymm.kernels.recurrent import cpu

    run = cpu._INLINE if helper == "inline" else cpu._workers("helper")
    rng = np.random.default_rng(T * 100 + B)
    case = make_case(rng, mode, T, B, I, H, np.float64, proj, True, ragged)
    args = [case[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "w_hr", "lengths")]
    want = R.reference_forward(mode, *args, reverse)
    got = cpu.cpu_forward(mode, *args, reverse, helper=run)
    for g, w in zip(got[:3], want[:3]):
        if w is not None:
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
    dy = rng.standard_normal(want[0].shape)
    dh = rng.standard_normal(want[1].shape)
    dc = None if want[2] is None else rng.standard_normal(want[2].shape)
    g_want = R.reference_backward(mode, *args, reverse, want[3], dy, dh, dc)
    g_got = cpu.cpu_backward(mode, *args, reverse, got[3], dy, dh, dc, helper=run)
    for name, g, w in zip(GRAD_NAMES, g_got, g_want):
        assert (g is None) == (w is None), name
        if w is not None:
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-11, err_msg=f"d{name} ({mode}, {helper})")


@pytest.mark.parametrize("mode", MODES)
def test_cpu_forward_without_backward_gives_the_same_outputs(mode):
    """keep=False (no backward will follow: scratch arrays, saved None) changes nothing else,
    also when a second call reuses the scratch arrays of the first."""
    rng = np.random.default_rng(7)
    case = make_case(rng, mode, T=6, B=3, I=4, H=5, dtype=np.float32, ragged=True)
    args = [case[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "w_hr", "lengths")]
    want = R.forward(mode, *args, True, impl="cpu")
    for _ in range(2):
        got = R.forward(mode, *args, True, impl="cpu", keep=False)
        assert got[3] is None
        for g, w in zip(got[:3], want[:3]):
            if w is not None:
                np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("proj", [0, 3])
def test_cpu_lstm_backward_recomputes_tanh_c_when_saved_lacks_it(proj):
    """The CPU forward keeps tanh(c') for backward (saved's fourth slot); a saved tuple without
    it (the reference's) gives the same gradients."""
    rng = np.random.default_rng(11)
    case = make_case(rng, "LSTM", T=5, B=3, I=4, H=5, dtype=np.float64, proj=proj, ragged=True)
    args = [case[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "w_hr", "lengths")]
    y, h_n, c_n, saved = R.forward("LSTM", *args, False, impl="cpu")
    assert saved[3] is not None
    dy, dh, dc = rng.standard_normal(y.shape), rng.standard_normal(h_n.shape), rng.standard_normal(c_n.shape)
    kept = R.backward("LSTM", *args, False, saved, dy, dh, dc, impl="cpu")
    recomputed = R.backward("LSTM", *args, False, saved[:3] + (None,), dy, dh, dc, impl="cpu")
    for name, a, b in zip(GRAD_NAMES, kept, recomputed):
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=name)
