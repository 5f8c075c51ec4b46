"""Comparing tinymm and PyTorch on complex inputs: values and gradients (PyTorch's convention,
``z.grad`` = ∂L/∂Re z + i ∂L/∂Im z), through a real loss that weighs every output element."""
from __future__ import annotations

import numpy as np
from helpers import torch

import tinymm as tm


def rand(shape, dtype="complex128", seed=0):
    r = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "c":
        return (r.standard_normal(shape) + 1j * r.standard_normal(shape)).astype(dtype)
    return r.standard_normal(shape).astype(dtype)


def _loss(out, lib, seed=1):
    r = np.random.default_rng(seed)
    wr = r.standard_normal(tuple(out.shape))
    wi = r.standard_normal(tuple(out.shape))
    as_t = (lambda a: lib.tensor(a, dtype=out.real.dtype)) if lib is torch else (lambda a: tm.tensor(a, dtype=out.real.dtype))
    if out.is_complex():
        return (out.real * as_t(wr)).sum() + (out.imag * as_t(wi)).sum()
    return (out * as_t(wr)).sum()


def compare(fn_tm, fn_torch, *arrays, grad=True, atol=1e-5, rtol=1e-5):
    """Run both on the same arrays; check dtype, values and (``grad``) every input's gradient."""
    xs = [tm.tensor(a, requires_grad=grad and a.dtype.kind in "fc") for a in arrays]
    ts = [torch.tensor(a, requires_grad=grad and a.dtype.kind in "fc") for a in arrays]
    out, want = fn_tm(*xs), fn_torch(*ts)
    assert str(out.dtype).split(".")[-1] == str(want.dtype).split(".")[-1], (out.dtype, want.dtype)
    assert tuple(out.shape) == tuple(want.shape)
    np.testing.assert_allclose(out.detach().numpy(), want.detach().resolve_conj().numpy(), atol=atol, rtol=rtol)
    if grad:
        _loss(out, tm).backward()
        _loss(want, torch).backward()
        for x, t in zip(xs, ts):
            if t.grad is None:
                assert x.grad is None or not np.any(x.grad.numpy())
                continue
            assert x.grad.dtype == x.dtype
            np.testing.assert_allclose(x.grad.numpy(), t.grad.resolve_conj().numpy(), atol=atol, rtol=rtol)
    return out
