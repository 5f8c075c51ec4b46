"""The whole stack on device "cuda" (CuPy arrays) against the same computation on "cpu".

These run only where CuPy sees a GPU; elsewhere they are skipped with the reason. (The CUDA
kernels themselves are also tested without a GPU, through Numba's simulator, in tests/kernels.)
"""
import numpy as np
import pytest

import tinymm as tm
import tinymm.nn.functional as F
from tinymm import nn, optim
from tinymm.backend import cuda_status

ok, why = cuda_status()
pytestmark = pytest.mark.skipif(not ok, reason=f"no CUDA device here: {why}")


def _pair(shape, seed=0, dtype=np.float32):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return tm.tensor(a, requires_grad=True), tm.tensor(a, device="cuda", requires_grad=True)


def _close(a, b, tol=1e-4):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_reduce_matmul_on_cuda(dtype):
    (x, xc), (w, wc) = _pair((5, 7), 0, dtype), _pair((7, 3), 1, dtype)
    f = lambda x, w: (F.gelu(x @ w).softmax(-1) * x[:, :3].exp()).logsumexp(dim=0).sum()  # noqa: E731
    a, b = f(x, w), f(xc, wc)
    assert b.device == "cuda"
    _close(a, b)
    a.backward()
    b.backward()
    _close(x.grad, xc.grad)
    _close(w.grad, wc.grad)


def test_indexing_and_embedding_scatter_add_on_cuda():
    (x, xc) = _pair((6, 4))
    idx = np.array([0, 5, 5, 2])
    a, b = x[idx].sum(), xc[tm.tensor(idx, device="cuda")].sum()
    a.backward()
    b.backward()
    _close(x.grad, xc.grad)


def test_losses_and_layer_norm_on_cuda():
    (x, xc) = _pair((8, 5))
    t = np.random.default_rng(3).integers(0, 5, 8)
    a = F.cross_entropy(F.layer_norm(x, 5), tm.tensor(t), label_smoothing=0.1)
    b = F.cross_entropy(F.layer_norm(xc, 5), tm.tensor(t, device="cuda"), label_smoothing=0.1)
    _close(a, b)
    a.backward()
    b.backward()
    _close(x.grad, xc.grad)


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_on_cuda_matches_cpu(causal):
    (q, qc), (k, kc), (v, vc) = _pair((2, 3, 37, 16), 0), _pair((2, 3, 45, 16), 1), _pair((2, 3, 45, 16), 2)
    a = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    b = F.scaled_dot_product_attention(qc, kc, vc, is_causal=causal)
    _close(a, b)
    a.sum().backward()
    b.sum().backward()
    for c, g in ((q, qc), (k, kc), (v, vc)):
        _close(c.grad, g.grad)


def test_training_steps_on_cuda_follow_the_cpu():
    tm.manual_seed(0)
    cpu = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.LayerNorm(16), nn.Linear(16, 3))
    gpu = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.LayerNorm(16), nn.Linear(16, 3))
    gpu.load_state_dict(cpu.state_dict())
    gpu.to("cuda")
    o1, o2 = optim.AdamW(cpu.parameters(), lr=1e-2), optim.AdamW(gpu.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.standard_normal((32, 6)).astype(np.float32)
        y = rng.integers(0, 3, 32)
        for model, opt, dev in ((cpu, o1, "cpu"), (gpu, o2, "cuda")):
            loss = F.cross_entropy(model(tm.tensor(x, device=dev)), tm.tensor(y, device=dev))
            opt.zero_grad()
            loss.backward()
            opt.step()
    for (n, p), (_, g) in zip(cpu.named_parameters(), gpu.named_parameters()):
        assert g.device == "cuda"
        np.testing.assert_allclose(p.numpy(), g.numpy(), rtol=1e-4, atol=1e-5, err_msg=n)


def test_mixing_devices_is_refused_with_names():
    with pytest.raises(ValueError, match="cpu and cuda"):
        tm.ones(2) + tm.ones(2, device="cuda")
