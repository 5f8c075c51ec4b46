"""The whole stack on device "cuda" (CuPy arrays) against the same computation on "cpu".

These run only where CuPy sees a GPU; elsewhere they are skipped with the reason (all but the
last test, which checks the one-line error a machine without a GPU gives). The CUDA kernels
themselves are also tested without a GPU, through Numba's simulator, in tests/kernels, and
compiled for sm_90 in tests/test_cuda_compile.py.
"""
import numpy as np
import pytest

import tinymm as tm
import tinymm.nn.functional as F
from tinymm import nn, optim
from tinymm.backend import cuda_status

ok, why = cuda_status()
needs_gpu = pytest.mark.skipif(not ok, reason=f"no CUDA device here: {why}")


def _pair(shape, seed=0, dtype=np.float32):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return tm.tensor(a, requires_grad=True), tm.tensor(a, device="cuda", requires_grad=True)


def _close(a, b, tol=1e-4):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=tol, atol=tol)


@needs_gpu
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


@needs_gpu
def test_indexing_and_embedding_scatter_add_on_cuda():
    (x, xc) = _pair((6, 4))
    idx = np.array([0, 5, 5, 2])
    a, b = x[idx].sum(), xc[tm.tensor(idx, device="cuda")].sum()
    a.backward()
    b.backward()
    _close(x.grad, xc.grad)


@needs_gpu
def test_losses_and_layer_norm_on_cuda():
    (x, xc) = _pair((8, 5))
    t = np.random.default_rng(3).integers(0, 5, 8)
    a = F.cross_entropy(F.layer_norm(x, 5), tm.tensor(t), label_smoothing=0.1)
    b = F.cross_entropy(F.layer_norm(xc, 5), tm.tensor(t, device="cuda"), label_smoothing=0.1)
    _close(a, b)
    a.backward()
    b.backward()
    _close(x.grad, xc.grad)


@needs_gpu
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


@needs_gpu
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
        np.testing.assert_allclose(p.detach().numpy(), g.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=n)


@needs_gpu
def test_mixing_devices_is_refused_with_names():
    with pytest.raises(ValueError, match="cpu and cuda"):
        tm.ones(2) + tm.ones(2, device="cuda")


def _twin(build, device="cuda"):
    cpu, gpu = build(), build()
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu.to(device)


def _grads_match(cpu, gpu, tol=1e-4):
    for (n, p), (_, g) in zip(cpu.named_parameters(), gpu.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), g.grad.numpy(), rtol=tol, atol=tol, err_msg=n)


@needs_gpu
def test_cnn_conv_pool_batchnorm_on_cuda_follow_the_cpu():
    def build():
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 6, 3, stride=2, groups=2), nn.AvgPool2d(2, ceil_mode=True),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4))

    tm.manual_seed(0)
    cpu, gpu = _twin(build)
    x = np.random.default_rng(0).standard_normal((5, 3, 19, 17)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 4, 5)
    losses = [F.cross_entropy(m(tm.tensor(x, device=d)), tm.tensor(y, device=d)) for m, d in ((cpu, "cpu"), (gpu, "cuda"))]
    _close(*losses)
    for loss in losses:
        loss.backward()
    _grads_match(cpu, gpu)
    for (n, b), (_, g) in zip(cpu.named_buffers(), gpu.named_buffers()):  # running statistics
        np.testing.assert_allclose(b.detach().numpy(), g.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=n)


@needs_gpu
@pytest.mark.parametrize("cls", ["LSTM", "GRU", "RNN"])
def test_recurrent_layers_on_cuda_follow_the_cpu(cls):
    tm.manual_seed(0)
    cpu, gpu = _twin(lambda: getattr(nn, cls)(7, 9, num_layers=2, batch_first=True, bidirectional=True))
    x = np.random.default_rng(0).standard_normal((4, 11, 7)).astype(np.float32)
    outs = []
    for m, d in ((cpu, "cpu"), (gpu, "cuda")):
        t = tm.tensor(x, device=d, requires_grad=True)
        out, _ = m(t)
        (out * out).sum().backward()
        outs.append((out, t))
    _close(outs[0][0], outs[1][0])
    _close(outs[0][1].grad, outs[1][1].grad)
    _grads_match(cpu, gpu)


@needs_gpu
def test_numba_allocates_from_cupys_pool():
    import cupy

    from tinymm.kernels._common import cupy_memory_manager, numba_cuda

    cuda = numba_cuda()
    tm.ones(3, device="cuda").softmax(0)  # a Numba kernel: Numba's context exists from here on
    assert isinstance(cuda.current_context().memory_manager, cupy_memory_manager(cuda))
    pool = cupy.get_default_memory_pool()
    before = pool.used_bytes()
    a = cuda.device_array(1 << 20, dtype=np.float32)
    assert pool.used_bytes() >= before + 4 * (1 << 20)
    del a
    assert pool.used_bytes() == before


@needs_gpu
def test_kernels_run_on_cupys_current_stream():
    import cupy

    x = np.random.default_rng(0).standard_normal((64, 513)).astype(np.float32)
    want = F.layer_norm(tm.tensor(x).softmax(-1), 513).detach().numpy()
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        for _ in range(3):  # queued work on the side stream, read back with no explicit sync
            got = F.layer_norm(tm.tensor(x, device="cuda").softmax(-1), 513)
        host = got.detach().numpy()
    np.testing.assert_allclose(host, want, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(ok, reason="a GPU is present: device 'cuda' works here")
def test_cuda_without_a_gpu_is_one_line_naming_the_reason_and_the_fix():
    for make in (lambda: tm.tensor([1.0], device="cuda"), lambda: tm.ones(2).to("cuda"),
                 lambda: nn.Linear(2, 2).to("cuda")):
        with pytest.raises(RuntimeError) as info:
            make()
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith("device 'cuda' is not available: ")
        assert "pip install 'tinymm[gpu]'" in message or "driver" in message or "no GPU" in message
        assert "device='cpu'" in message


def test_info_reports_the_gpu_or_why_there_is_none(capsys):
    from tinymm.backend import gpu_properties
    from tinymm.cli import main

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    if ok:
        g = gpu_properties()
        assert g["name"] in out and f"compute capability {g['compute_capability']}" in out and "GiB" in out
    else:
        assert why in out and gpu_properties() is None
