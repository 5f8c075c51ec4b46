"""Gaps the probe6 scripts (tests/pytorch_scripts: convnext_swin, sd_unet, mae, ...) and their
idioms found, each compared with torch."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


# ---------------------------------------------------------------- PyTorch's keyword names
_KEYWORD_CALLS = {
    "reshape(shape=)": lambda L, x: x.reshape(shape=(2, 3)),
    "reshape(shape=[-1, 2])": lambda L, x: x.reshape(shape=[-1, 2]),
    "torch.reshape(input=, shape=)": lambda L, x: L.reshape(input=x, shape=(3, 2)),
    "view(size=)": lambda L, x: x.view(size=(2, 3)),
    "expand(size=)": lambda L, x: x.view(1, 6).expand(size=(2, 6)),
    "permute(dims=)": lambda L, x: x.view(2, 3).permute(dims=(1, 0)),
    "torch.permute(dims=)": lambda L, x: L.permute(x.view(2, 3), dims=(1, 0)),
    "repeat(repeats=)": lambda L, x: x.repeat(repeats=(2,)),
    "tile(dims=)": lambda L, x: x.tile(dims=(2,)),
    "split(split_size=)": lambda L, x: L.stack(x.split(split_size=2, dim=0)),
    "torch.split(tensor=)": lambda L, x: L.stack(L.split(tensor=x, split_size_or_sections=3)),
    "torch.gather(input=)": lambda L, x: L.gather(input=x, dim=0, index=L.tensor([4, 1])),
    "torch.where(input=, other=)": lambda L, x: L.where(condition=x > 2, input=x, other=L.zeros(6)),
    "torch.argsort(input=)": lambda L, x: L.argsort(input=x, dim=0, descending=True),
    "torch.matmul(input=, other=)": lambda L, x: L.matmul(input=x, other=x),
    "torch.add(input=, other=, alpha=)": lambda L, x: L.add(input=x, other=x, alpha=2),
    "add(other=)": lambda L, x: x.add(other=x, alpha=3),
    "torch.pow(input=, exponent=)": lambda L, x: L.pow(input=x, exponent=2),
    "pow(exponent=)": lambda L, x: x.pow(exponent=3),
    "torch.std(input=)": lambda L, x: L.std(input=x, dim=0),
    "torch.flatten(input=)": lambda L, x: L.flatten(input=x.view(2, 3), start_dim=0),
    "torch.transpose(input=)": lambda L, x: L.transpose(input=x.view(2, 3), dim0=0, dim1=1),
    "torch.broadcast_to(input=, size=)": lambda L, x: L.broadcast_to(input=x, size=(2, 6)),
    "torch.zeros_like(input=)": lambda L, x: L.zeros_like(input=x) + x,
    "torch.full_like(input=)": lambda L, x: L.full_like(input=x, fill_value=2.0) * x,
    "F.gelu(input=)": lambda L, x: L.nn.functional.gelu(input=x, approximate="tanh"),
    "F.one_hot(input=)": lambda L, x: L.nn.functional.one_hot(input=x.long().detach(), num_classes=6),
}


@needs_torch
@pytest.mark.parametrize("call", list(_KEYWORD_CALLS), ids=list(_KEYWORD_CALLS))
def test_ops_take_pytorchs_keyword_names(call):
    f = _KEYWORD_CALLS[call]
    want = f(torch, torch.arange(6.0, requires_grad=True))
    x = tm.arange(6.0, requires_grad=True)
    got = f(tm, x)
    np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
    if got.requires_grad:  # the keyword route keeps the graph
        got.float().sum().backward()
        assert x.grad is not None


@needs_torch
@pytest.mark.parametrize("call", [
    lambda L: L.arange(6.0).reshape((2, 3), shape=(2, 3)),  # given twice
    lambda L: L.reshape(L.arange(6.0), input=L.arange(6.0), shape=(6,)),
    lambda L: L.add(L.ones(2), input=L.ones(2)),
    lambda L: L.arange(6.0).reshape(bogus=(6,)),
])
def test_keyword_misuse_raises_typeerror_as_torch(call):
    with pytest.raises(TypeError):
        call(torch)
    with pytest.raises(TypeError):
        call(tm)


# ---------------------------------------------------------------- CTC: PyTorch's log_probs gradient
@needs_torch
@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_ctc_loss_gradient_at_log_probs_is_pytorchs(zero_infinity, reduction):
    # a leaf log_probs (wav2vec2 scoring from saved emissions): PyTorch's gradient is
    # exp(lp) - occupancy on the first input_length frames, nan for an impossible sample
    lp = np.log(np.random.default_rng(3).dirichlet(np.ones(5), size=(4, 3))).astype(np.float32)
    targets, in_len, tg_len = np.array([[1, 2, 3], [1, 1, 0], [4, 0, 0]]), np.array([4, 2, 3]), np.array([3, 2, 1])
    want_x = torch.tensor(lp, requires_grad=True)
    want = torch.nn.functional.ctc_loss(want_x, torch.tensor(targets), torch.tensor(in_len), torch.tensor(tg_len),
                                        reduction=reduction, zero_infinity=zero_infinity)
    want.sum().backward()
    x = tm.tensor(lp, requires_grad=True)
    got = tm.nn.functional.ctc_loss(x, tm.tensor(targets), in_len, tg_len, reduction=reduction,
                                    zero_infinity=zero_infinity)
    got.sum().backward()
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), want_x.grad.numpy(), rtol=1e-4, atol=1e-6)  # nan where torch's is


# ---------------------------------------------------------------- torch.backends.cudnn.flags
@needs_torch
def test_cudnn_flags_sets_the_switches_for_a_block_and_restores_them():
    for lib in (torch, tm):
        cudnn = lib.backends.cudnn
        before = (cudnn.enabled, cudnn.benchmark, cudnn.deterministic)
        with cudnn.flags(enabled=False, deterministic=True):
            inside = (cudnn.enabled, cudnn.benchmark, cudnn.deterministic)
        assert inside == (False, False, True), lib
        assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic) == before
        with pytest.raises(RuntimeError):  # restored on the way out of an error too
            with cudnn.flags():
                raise RuntimeError("in the block")
        assert cudnn.enabled == before[0]
    assert tm.backends.cudnn.version() == torch.backends.cudnn.version()  # None: no cuDNN on CPU torch


# ---------------------------------------------------------------- writes into a Linear output
@needs_torch
def test_two_masked_writes_into_a_linear_output_keep_the_graph():
    # wav2vec2: hidden_states[mask_time_indices] = masked_spec_embed, then, in the encoder,
    # hidden_states[~attention_mask] = 0; a 3-D Linear output is a view of the GEMM's buffer
    rng = np.random.default_rng(0)
    x, w, b, e = (rng.standard_normal(s).astype(np.float32) for s in ((2, 5, 3), (4, 3), (4,), (4,)))
    mask = np.zeros((2, 5), bool)
    mask[0, 1] = mask[1, 3] = True
    pad = np.ones((2, 5), bool)
    pad[1, 4] = False
    grads = []
    for lib in (torch, tm):
        ws, bs, es = (lib.tensor(a, requires_grad=True) for a in (w, b, e))
        h = lib.nn.functional.linear(lib.tensor(x), ws, bs)
        h[lib.tensor(mask)] = es
        h[~lib.tensor(pad).unsqueeze(-1).repeat(1, 1, 4)] = 0
        (h * h).sum().backward()
        grads.append([h.detach().numpy()] + [t.grad.numpy() for t in (ws, bs, es)])
    for want, got in zip(*grads):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- autocast("cuda") without a GPU
@needs_torch
@pytest.mark.skipif(tm.cuda.is_available(), reason="PyTorch disables CUDA autocast only where there is no GPU")
def test_cuda_autocast_without_a_gpu_warns_and_runs_in_full_precision_as_torch():
    # MAE's main_pretrain: with torch.cuda.amp.autocast(): loss = model(...), under a GradScaler
    if torch.cuda.is_available():
        pytest.skip("torch has a GPU here")
    for lib in (torch, tm):
        lin = lib.nn.Linear(3, 2)
        with pytest.warns(UserWarning, match="CUDA is not available"):
            ctx = lib.amp.autocast("cuda")
        with ctx:
            y = lin(lib.ones(4, 3))
            assert lib.is_autocast_enabled() is False and lib.is_autocast_enabled("cuda") is False
        assert y.dtype == lib.float32
        with pytest.warns(UserWarning, match="CUDA is not available"):
            with lib.cuda.amp.autocast():
                assert not lib.is_autocast_enabled()
    with pytest.raises(TypeError):
        torch.is_autocast_enabled(3)
    with pytest.raises(TypeError):
        tm.is_autocast_enabled(3)


# ---------------------------------------------------------------- torch._assert
@needs_torch
def test_traceable_assert_raises_as_torchs():
    for lib in (torch, tm):
        assert lib._assert(True, "fine") is None
        lib._assert(lib.tensor(True), "fine")
        with pytest.raises(AssertionError, match="Input height"):
            lib._assert(3 == 4, "Input height (3) doesn't match model (4).")
        with pytest.raises(AssertionError, match="zero"):
            lib._assert(lib.tensor(0), "zero")
        with pytest.raises(RuntimeError):  # ambiguous truth value
            lib._assert(lib.tensor([True, True]), "two")


# ---------------------------------------------------------------- take_along_dim broadcasts
@needs_torch
@pytest.mark.parametrize("x_shape,i_shape,dim", [((2, 3, 4), (1, 3, 2), 2), ((2, 3, 4), (2, 1, 1), 1),
                                                 ((1, 3, 4), (2, 2, 4), 1), ((2, 3, 4), (5,), None)])
def test_take_along_dim_broadcasts_outside_dim_as_torch(x_shape, i_shape, dim):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape)
    n = int(np.prod(x_shape)) if dim is None else x_shape[dim]
    idx = rng.integers(0, n, i_shape)
    want_x = torch.tensor(x, requires_grad=True)
    want = torch.take_along_dim(want_x, torch.tensor(idx), dim)
    (want * want).sum().backward()
    got_x = tm.tensor(x, requires_grad=True)
    got = tm.take_along_dim(got_x, tm.tensor(idx), dim)
    (got * got).sum().backward()
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy())
    np.testing.assert_allclose(got_x.grad.numpy(), want_x.grad.numpy())


@needs_torch
def test_take_along_dim_refuses_what_torch_refuses():
    for lib in (torch, tm):
        with pytest.raises(RuntimeError):  # ndim mismatch
            lib.take_along_dim(lib.ones(2, 3), lib.tensor([0]), dim=1)
        with pytest.raises(RuntimeError):  # no broadcast outside dim
            lib.take_along_dim(lib.ones(2, 3), lib.zeros(3, 1, dtype=lib.long), dim=1)
