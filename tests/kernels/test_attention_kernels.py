"""kernels/attention: reference vs finite differences and PyTorch; fused CPU vs reference.

  1. the NumPy reference's backward matches central finite differences in float64, every mask kind;
  2. the reference matches torch's scaled_dot_product_attention, forward and backward (skipped
     without torch), including is_causal with Nq != Nk (top-left alignment);
  3. the fused CPU kernels (backward recomputing P, or reading the P that forward kept, and
     the size switch between the two) match the reference on hypothesis-drawn shapes (Nq, Nk in 1..130,
     D in {1, 7, 16, 59, 64}, Dv different from D), every mask kind, causal, fully-masked rows,
     float32 by FlashAttention's rule (error <= 3x the naive float32 error) and float64 tightly;
  4. memory: fused forward + backward at B1 H4 N4096 D64 stays under 64 MiB (tracemalloc), also
     when the caller asks to keep P;
  5. bad input raises errors naming the shapes; dispatch and import behave.
The CUDA kernels are tested in test_attention_cuda.py with the helpers below.
"""
import functools
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numeric import numeric_grad
from tinymm.kernels import attention as A
from tinymm.kernels.attention import reference_backward, reference_forward

cpu_forward = functools.partial(A.forward, impl="cpu")
cpu_backward = functools.partial(A.backward, impl="cpu")


FACTOR = 3.0
FLOOR = 1e-6

MASK_KINDS = ["none", "bool", "key_padding", "bool_2d", "additive", "additive_rows"]


def make_mask(rng, kind, B, H, Nq, Nk, fully_masked_row=False):
    """A mask of the given kind; with fully_masked_row, query row 0 sees no key at all."""
    if kind == "none":
        return None
    if kind == "bool":  # full shape, True = attend
        mask = rng.random((B, H, Nq, Nk)) > 0.3
    elif kind == "key_padding":  # (B, 1, 1, Nk): the last keys of each sequence are padding
        lengths = rng.integers(1, Nk + 1, size=B)
        mask = (np.arange(Nk)[None, :] < lengths[:, None])[:, None, None, :]
    elif kind == "bool_2d":  # (Nq, Nk), broadcast over batch and heads
        mask = rng.random((Nq, Nk)) > 0.3
    elif kind == "additive":  # floating, (1, H, Nq, Nk), some -inf
        mask = rng.standard_normal((1, H, Nq, Nk))
        mask[rng.random(mask.shape) < 0.2] = -np.inf
    elif kind == "additive_rows":  # floating, (B, 1, Nq, 1): one bias per query row
        mask = rng.standard_normal((B, 1, Nq, 1))
    else:
        raise ValueError(kind)
    if fully_masked_row:
        mask = np.array(np.broadcast_to(mask, np.broadcast_shapes(mask.shape, (1, 1, Nq, Nk))))
        mask[..., 0, :] = False if mask.dtype == bool else -np.inf
    return mask


def make_inputs(rng, B, H, Nq, Nk, D, Dv, dtype=np.float64):
    q = rng.standard_normal((B, H, Nq, D))
    k = rng.standard_normal((B, H, Nk, D))
    v = rng.standard_normal((B, H, Nk, Dv))
    do = rng.standard_normal((B, H, Nq, Dv))
    return [a.astype(dtype) for a in (q, k, v, do)]


def max_error(a, b):
    """max |a - b| over entries, treating equal infinities as equal."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b)
    diff[np.isinf(a) & (a == b)] = 0.0
    return float(np.max(diff, initial=0.0))


def magnitude(a):
    """max |a| over the finite entries (at least 1)."""
    a = np.asarray(a, np.float64)
    return max(1.0, float(np.max(np.abs(a[np.isfinite(a)]), initial=0.0)))


def assert_close_flash(name, got, naive32, exact64):
    """got (fused float32) vs exact64 within FACTOR x the naive float32 error, per array."""
    got = np.asarray(got)
    assert got.shape == exact64.shape, (name, got.shape, exact64.shape)
    assert np.array_equal(np.isneginf(got), np.isneginf(exact64)), f"{name}: -inf pattern differs"
    assert not np.isnan(got).any(), f"{name}: NaN"
    err = max_error(got, exact64)
    naive = max_error(naive32, exact64)
    bound = FACTOR * naive + FLOOR * magnitude(exact64)
    assert err <= bound, f"{name}: error {err:.3g} > {FACTOR} x naive {naive:.3g} (+ floor)"


def check_fused(forward, backward, rng, B, H, Nq, Nk, D, Dv, mask, causal, scale=None,
                to_device=lambda a: a, to_host=lambda a: a):
    """Run a fused float32 forward + backward and compare with the reference (float64 exact,
    float32 naive) by FlashAttention's rule."""
    q, k, v, do = make_inputs(rng, B, H, Nq, Nk, D, Dv)
    o64, lse64 = reference_forward(q, k, v, mask, causal, scale)
    grads64 = reference_backward(q, k, v, o64, lse64, do, mask, causal, scale)

    q32, k32, v32, do32 = (a.astype(np.float32) for a in (q, k, v, do))
    o_naive, lse_naive = reference_forward(q32, k32, v32, mask, causal, scale)
    grads_naive = reference_backward(q32, k32, v32, o_naive, lse_naive, do32, mask, causal, scale)

    dev = [to_device(a) for a in (q32, k32, v32, do32)]
    dmask = to_device(mask)
    o, lse = forward(dev[0], dev[1], dev[2], dmask, causal, scale)
    assert o.dtype == np.float32 and lse.dtype == np.float32
    grads = backward(dev[0], dev[1], dev[2], o, lse, dev[3], dmask, causal, scale)
    assert_close_flash("o", to_host(o), o_naive, o64)
    assert_close_flash("lse", to_host(lse), lse_naive, lse64)
    for name, g, gn, g64 in zip(("dq", "dk", "dv"), grads, grads_naive, grads64):
        assert_close_flash(name, to_host(g), gn, g64)
    # Rows that see no key: output 0 and no gradient through them.
    dead = np.isneginf(lse64)
    assert np.all(to_host(o)[dead] == 0)
    assert np.all(to_host(grads[0])[dead] == 0)


def check_fused_float64(forward, backward, rng, B, H, Nq, Nk, D, Dv, mask, causal,
                        to_device=lambda a: a, to_host=lambda a: a, rtol=1e-10):
    q, k, v, do = make_inputs(rng, B, H, Nq, Nk, D, Dv)
    o64, lse64 = reference_forward(q, k, v, mask, causal)
    grads64 = reference_backward(q, k, v, o64, lse64, do, mask, causal)
    dev = [to_device(a) for a in (q, k, v, do)]
    dmask = to_device(mask)
    o, lse = forward(dev[0], dev[1], dev[2], dmask, causal)
    grads = backward(dev[0], dev[1], dev[2], o, lse, dev[3], dmask, causal)
    for name, got, want in zip(("o", "lse", "dq", "dk", "dv"), (o, lse, *grads), (o64, lse64, *grads64)):
        got = to_host(got)
        assert got.dtype == np.float64, name
        assert max_error(got, want) <= rtol * magnitude(want), name


# -------------------------------------------------------------------------------------------
# 1. Reference backward vs finite differences (float64)
# -------------------------------------------------------------------------------------------



FD_CASES = [  # (mask kind, is_causal, Nq, Nk, fully_masked_row)
    ("none", False, 3, 4, False),
    ("bool", False, 4, 3, True),
    ("key_padding", False, 3, 5, False),
    ("additive", False, 3, 4, True),
    ("additive_rows", True, 4, 4, False),
    ("none", True, 3, 5, False),  # causal, Nq < Nk
    ("bool_2d", True, 5, 3, False),  # causal, Nq > Nk, combined with a mask
]


@pytest.mark.parametrize("kind, causal, Nq, Nk, dead_row", FD_CASES)
def test_reference_backward_matches_finite_differences(kind, causal, Nq, Nk, dead_row):
    rng = np.random.default_rng(0)
    B, H, D, Dv = 2, 2, 3, 2
    q, k, v, do = make_inputs(rng, B, H, Nq, Nk, D, Dv)
    mask = make_mask(rng, kind, B, H, Nq, Nk, dead_row)
    scale = 0.7

    def loss():
        o, _ = A.reference_forward(q, k, v, mask, causal, scale)
        return float(np.sum(o * do))

    o, lse = A.reference_forward(q, k, v, mask, causal, scale)
    dq, dk, dv = A.reference_backward(q, k, v, o, lse, do, mask, causal, scale)
    for name, x, g in (("dq", q, dq), ("dk", k, dk), ("dv", v, dv)):
        np.testing.assert_allclose(g, numeric_grad(loss, x), rtol=1e-6, atol=1e-8, err_msg=name)
    if dead_row:
        assert np.all(np.isneginf(lse[..., 0])) and np.all(o[..., 0, :] == 0) and np.all(dq[..., 0, :] == 0)


def test_reference_dropout_backward_matches_finite_differences():
    rng = np.random.default_rng(1)
    q, k, v, do = make_inputs(rng, 1, 2, 3, 4, 3, 2)
    keep = rng.random((1, 2, 3, 4)) > 0.3

    def loss():
        o, _ = A.reference_forward(q, k, v, dropout_p=0.3, dropout_mask=keep)
        return float(np.sum(o * do))

    o, lse = A.reference_forward(q, k, v, dropout_p=0.3, dropout_mask=keep)
    grads = A.reference_backward(q, k, v, o, lse, do, dropout_p=0.3, dropout_mask=keep)
    for x, g in zip((q, k, v), grads):
        np.testing.assert_allclose(g, numeric_grad(loss, x), rtol=1e-6, atol=1e-8)
    # The dispatching entry points hand dropout to the reference.
    o2, _ = A.forward(q, k, v, dropout_p=0.3, dropout_mask=keep)
    np.testing.assert_array_equal(o, o2)


# -------------------------------------------------------------------------------------------
# 2. Reference vs PyTorch
# -------------------------------------------------------------------------------------------

TORCH_CASES = [  # (mask kind, is_causal, Nq, Nk); PyTorch refuses mask + is_causal together
    ("none", False, 5, 7),
    ("bool", False, 6, 6),
    ("key_padding", False, 4, 9),
    ("bool_2d", False, 7, 5),
    ("additive", False, 5, 6),
    ("additive_rows", False, 5, 6),
    ("none", True, 4, 9),  # Nq < Nk: top-left aligned, as PyTorch
    ("none", True, 9, 4),  # Nq > Nk
]


@pytest.mark.parametrize("kind, causal, Nq, Nk", TORCH_CASES)
@pytest.mark.parametrize("scale", [None, 0.3])
def test_reference_matches_torch(kind, causal, Nq, Nk, scale):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for SDPA; pip install -e '.[dev]'")
    rng = np.random.default_rng(2)
    B, H, D, Dv = 2, 3, 8, 5
    q, k, v, do = make_inputs(rng, B, H, Nq, Nk, D, Dv)
    mask = make_mask(rng, kind, B, H, Nq, Nk)
    o, lse = A.reference_forward(q, k, v, mask, causal, scale)
    dq, dk, dv = A.reference_backward(q, k, v, o, lse, do, mask, causal, scale)

    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    tmask = None if mask is None else torch.tensor(mask)
    to = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=tmask, is_causal=causal, scale=scale)
    to.backward(torch.tensor(do))
    np.testing.assert_allclose(o, to.detach().numpy(), rtol=1e-10, atol=1e-12)
    for g, t in ((dq, tq), (dk, tk), (dv, tv)):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-9, atol=1e-11)
    # lse is the log-sum-exp of the scaled, masked scores
    s = (tq @ tk.transpose(-1, -2)) * (1 / np.sqrt(D) if scale is None else scale)
    if mask is not None:
        s = s + (torch.where(tmask, 0.0, -torch.inf) if mask.dtype == bool else tmask)
    if causal:
        s = s.masked_fill(~torch.ones(Nq, Nk, dtype=torch.bool).tril(), -torch.inf)
    np.testing.assert_allclose(lse, torch.logsumexp(s, -1).detach().numpy(), rtol=1e-10, atol=1e-12)


# -------------------------------------------------------------------------------------------
# 3. Fused CPU kernels vs reference
# -------------------------------------------------------------------------------------------

@st.composite
def attention_case(draw, max_n=130, head_dims=(1, 7, 16, 59, 64)):
    B = draw(st.integers(1, 2))
    H = draw(st.integers(1, 3))
    Nq = draw(st.integers(1, max_n))
    Nk = draw(st.integers(1, max_n))
    D = draw(st.sampled_from(head_dims))
    Dv = draw(st.sampled_from((D, *head_dims[:2])))
    kind = draw(st.sampled_from(MASK_KINDS))
    causal = draw(st.booleans())
    dead_row = kind != "none" and draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    return B, H, Nq, Nk, D, Dv, kind, causal, dead_row, seed


def kept_probs_kernels():
    """forward/backward for check_fused that keep P (asserting that it was kept) and reuse it."""
    box = {}

    def forward(q, k, v, mask, causal, scale=None):
        o, lse, probs = A.forward(q, k, v, mask, causal, scale, impl="cpu", keep_probs=True)
        assert probs is not None, "P was not kept"
        box["probs"] = probs
        return o, lse

    def backward(q, k, v, o, lse, do, mask, causal, scale=None):
        return A.backward(q, k, v, o, lse, do, mask, causal, scale, impl="cpu", probs=box.pop("probs"))

    return forward, backward


CPU_KERNELS = {  # backward recomputing P from lse, or reading the P that forward kept
    "recompute": lambda: (cpu_forward, cpu_backward),
    "kept_probs": kept_probs_kernels,
}


@pytest.mark.parametrize("kernels", sorted(CPU_KERNELS))
@given(attention_case())
def test_cpu_float32_matches_reference(kernels, case):
    B, H, Nq, Nk, D, Dv, kind, causal, dead_row, seed = case
    rng = np.random.default_rng(seed)
    mask = make_mask(rng, kind, B, H, Nq, Nk, dead_row)
    check_fused(*CPU_KERNELS[kernels](), rng, B, H, Nq, Nk, D, Dv, mask, causal)


@pytest.mark.parametrize("kernels", sorted(CPU_KERNELS))
@settings(max_examples=10)
@given(attention_case())
def test_cpu_float64_matches_reference(kernels, case):
    B, H, Nq, Nk, D, Dv, kind, causal, dead_row, seed = case
    rng = np.random.default_rng(seed)
    mask = make_mask(rng, kind, B, H, Nq, Nk, dead_row)
    check_fused_float64(*CPU_KERNELS[kernels](), rng, B, H, Nq, Nk, D, Dv, mask, causal)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kind", ["none", "key_padding", "additive_rows"])
def test_cpu_many_blocks_and_tiles(kind, causal):
    """Several query blocks, key tiles and causal diagonal tiles; one head, so query blocks are
    split across threads and dk, dv summed from partial sums. Nq != Nk and neither a multiple
    of any tile."""
    from tinymm.kernels.attention import cpu

    B, H, Nq, Nk = 1, 1, 2 * cpu.BLOCK_Q + 37, 2 * cpu.TILE_K + 51
    rng = np.random.default_rng(3)
    mask = make_mask(rng, kind, B, H, Nq, Nk)
    check_fused(cpu_forward, cpu_backward, rng, B, H, Nq, Nk, 24, 40, mask, causal, scale=0.4)


def test_cpu_scale_and_sharp_softmax():
    rng = np.random.default_rng(4)
    check_fused(cpu_forward, cpu_backward, rng, 2, 2, 33, 70, 16, 16, None, False, scale=3.0)


def test_cpu_accepts_non_contiguous_and_readonly_inputs():
    rng = np.random.default_rng(5)
    q, k, v, do = make_inputs(rng, 2, 2, 10, 12, 8, 8, np.float32)
    qt = np.swapaxes(np.swapaxes(q, 2, 3).copy(), 2, 3)  # same values, not C-contiguous
    k.flags.writeable = False
    o, lse = cpu_forward(qt, k, v)
    o_ref, lse_ref = cpu_forward(q, k.copy(), v)
    np.testing.assert_allclose(o, o_ref, rtol=1e-6, atol=1e-6)


def test_blas_thread_count_restored():
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl limits BLAS threads")
    before = [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
    rng = np.random.default_rng(6)
    q, k, v, do = make_inputs(rng, 1, 2, 20, 20, 8, 8, np.float32)
    o, lse = A.forward(q, k, v)
    A.backward(q, k, v, o, lse, do)
    after = [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
    assert before == after


def test_cpu_without_threadpoolctl_runs_on_one_numba_thread(monkeypatch):
    """Without a way to make BLAS single-threaded, the kernels use one Numba worker (BLAS may
    then use its own threads); the results are the same."""
    from tinymm.kernels import _common
    from tinymm.kernels.attention import cpu

    rng = np.random.default_rng(13)
    q, k, v, do = make_inputs(rng, 1, 3, 150, 90, 8, 8, np.float32)
    o, lse = cpu_forward(q, k, v, is_causal=True)
    grads = cpu_backward(q, k, v, o, lse, do, is_causal=True)
    monkeypatch.setattr(_common, "_blas_libs", False)
    with cpu._parallel_region() as n_workers:
        assert n_workers == 1
    o1, lse1 = cpu_forward(q, k, v, is_causal=True)
    np.testing.assert_allclose(o1, o, rtol=1e-6, atol=1e-6)
    for g1, g in zip(cpu_backward(q, k, v, o1, lse1, do, is_causal=True), grads):
        np.testing.assert_allclose(g1, g, rtol=1e-5, atol=1e-5)


def test_cpu_gemm_through_scipy_blas():
    """The compiled GEMMs call NumPy's OpenBLAS when NumPy bundles one, else shims over SciPy's
    cython_blas: the second path, forced in a fresh process, gives the same results."""
    code = (
        "import numpy as np\n"
        "from tinymm.kernels.attention import cpu, reference_forward, reference_backward\n"
        "assert cpu._bind_blas(prefer_numpy=False) == 'scipy.linalg.cython_blas'\n"
        "rng = np.random.default_rng(0)\n"
        "for dt in (np.float32, np.float64):\n"
        "    q, k, v, do = (rng.standard_normal((1, 2, 140, 8)).astype(dt) for _ in range(4))\n"
        "    o, lse = cpu.cpu_forward(q, k, v, None, True)\n"
        "    ro, rl = reference_forward(q, k, v, None, True)\n"
        "    grads = cpu.cpu_backward(q, k, v, o, lse, do, None, True)\n"
        "    ref = reference_backward(q, k, v, ro, rl, do, None, True)\n"
        "    tol = 1e-5 if dt == np.float32 else 1e-12\n"
        "    for a, b in zip((o, *grads), (ro, *ref)):\n"
        "        assert np.abs(a - b).max() < tol, (dt, np.abs(a - b).max())\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


def test_dispatch_numpy_goes_to_cpu():
    rng = np.random.default_rng(7)
    q, k, v, do = make_inputs(rng, 1, 1, 5, 6, 4, 4, np.float32)
    o, lse = A.forward(q, k, v, is_causal=True)
    o2, lse2 = cpu_forward(q, k, v, is_causal=True)
    np.testing.assert_array_equal(o, o2)
    np.testing.assert_array_equal(lse, lse2)
    for a, b in zip(A.backward(q, k, v, o, lse, do, is_causal=True), cpu_backward(q, k, v, o, lse, do, is_causal=True)):
        np.testing.assert_array_equal(a, b)


def test_every_key_masked_everywhere():
    rng = np.random.default_rng(8)
    q, k, v, do = make_inputs(rng, 1, 2, 4, 5, 3, 3, np.float32)
    mask = np.zeros((1, 1, 1, 5), bool)
    o, lse = cpu_forward(q, k, v, mask)
    assert np.all(o == 0) and np.all(np.isneginf(lse))
    for g in cpu_backward(q, k, v, o, lse, do, mask):
        assert np.all(g == 0)


# -------------------------------------------------------------------------------------------
# 4. Memory
# -------------------------------------------------------------------------------------------

def test_fused_memory_at_n4096():
    """Peak extra memory of forward + backward at B1 H4 N4096 D64, beyond inputs and outputs
    (the naive version's two (4, 4096, 4096) float32 matrices alone are 512 MiB)."""
    B, H, N, D = 1, 4, 4096, 64
    rng = np.random.default_rng(9)
    q, k, v, do = (rng.standard_normal((B, H, N, D), dtype=np.float32) for _ in range(4))
    o, lse = cpu_forward(q, k, v)  # compile (if needed) outside the measurement
    cpu_backward(q, k, v, o, lse, do)
    io_bytes = o.nbytes + lse.nbytes + 3 * q.nbytes  # forward outputs, then dq, dk, dv
    tracemalloc.start()
    try:
        o, lse = cpu_forward(q, k, v, is_causal=False)
        dq, dk, dv = cpu_backward(q, k, v, o, lse, do)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    extra_mib = (peak - io_bytes) / 2**20
    assert extra_mib <= 64, f"peak extra memory {extra_mib:.1f} MiB > 64 MiB"


# -------------------------------------------------------------------------------------------
# 5. Bad input, import and exports
# -------------------------------------------------------------------------------------------

def _arrays(Nq=4, Nk=5, D=3, Dv=3, dtype=np.float32):
    rng = np.random.default_rng(10)
    q, k, v, _ = make_inputs(rng, 2, 2, Nq, Nk, D, Dv, dtype)
    return q, k, v


BAD_INPUTS = [
    (lambda q, k, v: (q, k[..., :2], v, None), ValueError, r"q has head dim 3 but k has 2.*\(2, 2, 4, 3\).*\(2, 2, 5, 2\)"),
    (lambda q, k, v: (q, k[:1], v[:1], None), ValueError, r"k has batch/heads \(1, 2\), q has \(2, 2\)"),
    (lambda q, k, v: (q, k, v[:, :, :4], None), ValueError, r"v must be .*\(2, 2, 4, 3\)"),
    (lambda q, k, v: (q, k, v, np.ones((3, 5), bool)), ValueError, r"mask of shape \(3, 5\) does not broadcast to \(B, H, Nq, Nk\) = \(2, 2, 4, 5\)"),
    (lambda q, k, v: (q, k, v, np.ones((4, 5), np.int32)), TypeError, r"mask has dtype int32"),
    (lambda q, k, v: (q, k.astype(np.float64), v, None), TypeError, r"q, k, v must share one dtype"),
    (lambda q, k, v: (q.astype(np.float16), k.astype(np.float16), v.astype(np.float16), None), TypeError, r"float16"),
    (lambda q, k, v: (q[0], k[0], v[0], None), ValueError, r"q must be 4-D \(B, H, N, D\), got shape \(2, 4, 3\)"),
]


@pytest.mark.parametrize("make, error, message", BAD_INPUTS)
@pytest.mark.parametrize("fn", [A.forward, A.reference_forward, cpu_forward])
def test_bad_input_is_refused(fn, make, error, message):
    q, k, v, mask = make(*_arrays())
    with pytest.raises(error, match=message):
        fn(q, k, v, mask)


def test_bad_backward_input_is_refused():
    q, k, v = _arrays()
    o, lse = A.forward(q, k, v)
    with pytest.raises(ValueError, match=r"lse must have shape \(2, 2, 4\), got \(2, 2, 3\)"):
        A.backward(q, k, v, o, lse[..., :3], o)
    with pytest.raises(TypeError, match=r"do has dtype float64"):
        A.backward(q, k, v, o, lse, o.astype(np.float64))


def test_mixed_devices_are_refused():
    class FakeCupyArray:  # is_cuda_array() goes by the type's module name
        __module__ = "cupy"
        ndim = 4

    q, k, v = _arrays()
    with pytest.raises(ValueError, match="different devices"):
        cpu_forward(q, FakeCupyArray(), v)


def test_import_compiles_nothing_and_never_touches_cuda():
    code = (
        "import sys, tinymm.kernels.attention as A;"
        "assert 'numba.cuda' not in sys.modules, 'numba.cuda imported';"
        "assert not A.cpu._forward_kernel.signatures, 'compiled at import';"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_exports_one_dispatch_per_direction():
    assert sorted(A.__all__) == ["backward", "forward", "reference_backward", "reference_forward"]
    for name in ("cpu_forward", "cpu_backward", "cuda_forward", "cuda_backward"):
        assert not hasattr(A, name), name



# -------------------------------------------------------------------------------------------
# 6. The forward's online softmax across key tiles
# -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("causal", [False, True])
def test_cpu_online_softmax_across_key_tiles(causal):
    """Rows whose keys are all masked in the first forward key tile and visible only in a later
    one, rows that see the first tile only, and rows whose largest score arrives in a later tile
    (so the running maximum and o are rescaled): every path of the forward's online softmax,
    float32 and float64, with a single head so that query blocks are also split over threads."""
    from tinymm.kernels.attention import cpu

    tile = cpu.FORWARD_BLOCK[1]
    B, H, Nq, Nk = 1, 1, cpu.FORWARD_BLOCK[0] + 45, 2 * tile + 29
    rng = np.random.default_rng(21)
    bias = rng.standard_normal((1, 1, Nq, Nk))
    bias[..., 0::3, :tile] = -np.inf  # every third row sees nothing of the first tile
    bias[..., 1::3, tile:] = -np.inf  # the next sees the first tile only
    bias[..., 2::3, -5:] += 30.0  # and the next finds its largest scores in the last tile
    bias[..., 7, :] = -np.inf  # and one row sees no key at all
    check_fused(cpu_forward, cpu_backward, rng, B, H, Nq, Nk, 16, 24, bias, causal)
    check_fused_float64(cpu_forward, cpu_backward, rng, B, H, Nq, Nk, 16, 24, bias, causal)


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_cpu_key_padding_suffix_skipped(causal, keep):
    """A key-padding mask whose trailing keys are masked lets the CPU kernels skip those keys
    (``cpu._key_lengths``): same results as the reference, over several key tiles, with a
    masked key before the padding, a batch element whose keys are all masked, and a float
    mask; the skipped keys' dk and dv are exactly 0."""
    from tinymm.kernels.attention import cpu

    rng = np.random.default_rng(34)
    B, H, Nq, Nk = 4, 2, 45, cpu.TILE_K + 70
    lengths = np.array([Nk, cpu.TILE_K + 3, 0, 17])
    mask = (np.arange(Nk)[None, :] < lengths[:, None])[:, None, None, :]
    mask[3, 0, 0, 5] = False  # a hole before the padding: masked, not skipped
    assert list(cpu._key_lengths(cpu.mask_as_bias(mask, np.float64), True, B, Nk)) == [Nk, cpu.TILE_K + 3, 1, 17]
    for m in (mask, np.where(mask, 0.5, -np.inf)):
        q, k, v, do = make_inputs(rng, B, H, Nq, Nk, 16, 24)
        o64, lse64 = reference_forward(q, k, v, m, causal)
        expected = reference_backward(q, k, v, o64, lse64, do, m, causal)
        if keep:
            o, lse, probs = cpu_forward(q, k, v, m, causal, keep_probs=True)
            assert probs is not None
        else:
            (o, lse), probs = cpu_forward(q, k, v, m, causal), None
        grads = cpu_backward(q, k, v, o, lse, do, m, causal, probs=probs)
        for got, want in zip((o, lse) + tuple(grads), (o64, lse64) + tuple(expected)):
            assert max_error(got, want) <= 1e-10 * max(1.0, float(np.max(np.abs(want[np.isfinite(want)]))))
        for b, n in enumerate(lengths):
            assert not grads[1][b, :, n:].any() and not grads[2][b, :, n:].any()


# -------------------------------------------------------------------------------------------
# 7. The attention matrix kept by forward for backward (keep_probs / probs)
# -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kind", ["none", "bool", "additive_rows"])
def test_cpu_kept_probs_many_blocks_and_tiles(kind, causal):
    """Forward's whole-row blocks (SAVED_PROBS_BLOCK rows) differ from backward's blocks and
    key tiles, one head (query blocks split over threads), Nq != Nk, none a multiple of a tile,
    a row that sees no key: backward must not read what forward left undefined."""
    from tinymm.kernels.attention import cpu

    B, H, Nq, Nk = 1, 1, 2 * cpu.BLOCK_Q + 37, 2 * cpu.TILE_K + 51
    assert Nq > 2 * cpu.SAVED_PROBS_BLOCK
    rng = np.random.default_rng(31)
    mask = make_mask(rng, kind, B, H, Nq, Nk, fully_masked_row=kind != "none")
    check_fused(*kept_probs_kernels(), rng, B, H, Nq, Nk, 24, 40, mask, causal, scale=0.4)
    check_fused_float64(*kept_probs_kernels(), rng, 1, 2, Nk, Nq, 16, 8, None, causal)


def test_kept_probs_switch_by_size(monkeypatch):
    """P is kept only while it takes at most SAVED_PROBS_BYTES (a small limit here stands in for
    N4096): above, forward returns probs None and backward recomputes P, with the same result.
    The reference (and so CUDA's interface) returns None too."""
    from tinymm.kernels.attention import cpu

    rng = np.random.default_rng(32)
    B, H, Nq, Nk = 2, 3, 70, 50
    q, k, v, do = make_inputs(rng, B, H, Nq, Nk, 8, 8, np.float32)
    monkeypatch.setattr(cpu, "SAVED_PROBS_BYTES", B * H * Nq * Nk * 4)  # just fits
    o, lse, probs = A.forward(q, k, v, is_causal=True, keep_probs=True)
    assert probs is not None and probs.shape[:3] == (B, H, Nq) and probs.shape[3] >= Nk
    kept = A.backward(q, k, v, o, lse, do, is_causal=True, probs=probs)
    monkeypatch.setattr(cpu, "SAVED_PROBS_BYTES", B * H * Nq * Nk * 4 - 1)  # one byte short
    o2, lse2, probs2 = A.forward(q, k, v, is_causal=True, keep_probs=True)
    assert probs2 is None
    np.testing.assert_allclose(o2, o, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(lse2, lse, rtol=1e-6, atol=1e-6)
    for g, gk in zip(A.backward(q, k, v, o2, lse2, do, is_causal=True, probs=probs2), kept):
        np.testing.assert_allclose(g, gk, rtol=1e-5, atol=1e-5)
    assert A.forward(q, k, v, keep_probs=True, impl="reference")[2] is None
    assert len(A.forward(q, k, v)) == 2  # without keep_probs: (o, lse) as always


def test_kept_probs_memory_at_n4096():
    """What the layer asks for (keep_probs=True) at B1 H4 N4096 D64: P (256 MiB) is over the
    limit, so it is not kept and the 64 MiB bound on extra memory still holds."""
    from tinymm.kernels.attention import cpu

    B, H, N, D = 1, 4, 4096, 64
    assert B * H * N * N * 4 > cpu.SAVED_PROBS_BYTES
    rng = np.random.default_rng(9)
    q, k, v, do = (rng.standard_normal((B, H, N, D), dtype=np.float32) for _ in range(4))
    io_bytes = (N * D + N) * B * H * 4 + 3 * q.nbytes  # o, lse, then dq, dk, dv
    tracemalloc.start()
    try:
        o, lse, probs = A.forward(q, k, v, keep_probs=True)
        assert probs is None
        A.backward(q, k, v, o, lse, do, probs=probs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (peak - io_bytes) / 2**20 <= 64


def test_kept_probs_memory_reused_only_when_unreferenced(monkeypatch):
    """Forward hands the memory of an earlier kept P out again (no fresh pages per call), but
    never while that P, or any view or slice of it, is still alive; and the pool holds at most
    KEPT_POOL_BYTES (a larger P is a plain array)."""
    from tinymm.kernels.attention import cpu

    monkeypatch.setattr(cpu, "_kept_buffers", [])
    rng = np.random.default_rng(33)
    q, k, v, do = make_inputs(rng, 2, 3, 40, 30, 8, 8, np.float32)
    o, lse, first = A.forward(q, k, v, keep_probs=True)
    expected = A.backward(q, k, v, o, lse, do, probs=first.copy())
    row = first[1, 2, 5]  # a view still holds the memory once `first` is gone
    del first
    _, _, second = A.forward(q, k, v, keep_probs=True)
    assert not np.shares_memory(row, second)
    del row
    _, _, third = A.forward(q, k, v, keep_probs=True)  # the first P's memory is free again
    assert len(cpu._kept_buffers) == 2 and np.shares_memory(third, cpu._kept_buffers[0])
    third[...] = np.nan  # whatever a reused buffer holds, forward overwrites what backward reads
    o, lse, third = A.forward(q, k, v, keep_probs=True)
    for g, ge in zip(A.backward(q, k, v, o, lse, do, probs=third), expected):
        np.testing.assert_allclose(g, ge, rtol=1e-6, atol=1e-7)
    monkeypatch.setattr(cpu, "KEPT_POOL_BYTES", 2 * second.nbytes)
    size = second.size
    del second, third
    big = cpu._kept_probs_array((3 * size,), np.float32)  # over the pool's limit
    assert not any(np.shares_memory(big, b) for b in cpu._kept_buffers)
    assert sum(b.nbytes for b in cpu._kept_buffers) <= cpu.KEPT_POOL_BYTES
