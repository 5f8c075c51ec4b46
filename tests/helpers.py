"""One comparison helper for every op test (the idea of tinygrad's ``helper_test_op``).

``check_op(shapes, tm_fn, torch_fn=None, np_fn=None)`` draws the same seeded inputs for
tinymm, PyTorch and a NumPy reference, then checks shape, dtype, values and gradients, with
tolerances as arguments, and finally runs a float64 finite-difference ``gradcheck``. Most op
tests become one line: ``check_op([(3, 4)], lambda x: x.exp())`` applies the same lambda to
torch tensors. ``torch_fn`` is given only when PyTorch spells the op differently, and is
``False`` when there is no PyTorch twin. Without PyTorch installed, a check that wants it runs
what it can (NumPy, gradcheck) and then skips the test with ``TORCH_REASON``: never a silent
pass that checked less.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinymm as tm

try:
    import torch

    torch.set_default_dtype(torch.float32)
except ImportError:  # torch is an optional test oracle
    torch = None

TORCH_REASON = "PyTorch is not installed (pip install -e '.[dev]' installs the CPU build used as oracle)"


def make_inputs(shapes, dtype="float32", low=-2.0, high=2.0, seed=0, positive=False):
    rng = np.random.default_rng(seed)
    arrays = []
    for s in shapes:
        a = rng.uniform(low, high, size=s)
        if positive:
            a = np.abs(a) + 0.1
        arrays.append(a.astype(dtype))
    return arrays


def _assert_close(name, got, want, atol, rtol):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
    np.testing.assert_allclose(got, want, atol=atol, rtol=rtol, err_msg=name)


def check_op(
    shapes,
    tm_fn,
    torch_fn=None,
    np_fn=None,
    *,
    inputs=None,
    dtype="float32",
    low=-2.0,
    high=2.0,
    positive=False,
    atol=1e-5,
    rtol=1e-4,
    grad_atol=None,
    grad_rtol=None,
    grad=True,
    gradcheck=True,
    seed=0,
):
    """Compare ``tm_fn(*tensors)`` with ``torch_fn(*torch_tensors)`` and ``np_fn(*arrays)``.

    ``torch_fn=None`` means ``tm_fn`` itself applied to torch tensors; ``False``: no PyTorch
    twin. Checks the forward values and dtype; with ``grad`` the gradient of ``sum(out * r)``
    for a fixed random ``r`` against PyTorch; with ``gradcheck`` a float64 finite-difference
    check. Returns the tinymm output.
    """
    if torch_fn is None:
        torch_fn = tm_fn
    arrays = [np.asarray(a) for a in inputs] if inputs is not None else make_inputs(
        shapes, dtype, low, high, seed, positive
    )
    floats = [a.dtype.kind == "f" for a in arrays]
    xs = [tm.tensor(a, requires_grad=grad and f) for a, f in zip(arrays, floats)]
    out = tm_fn(*xs)
    if np_fn is not None:
        want = np_fn(*[a.copy() for a in arrays])
        _assert_close("forward vs numpy", out.detach().numpy(), want, atol, rtol)
        assert out.dtype == np.asarray(want).dtype, f"dtype {out.dtype}, numpy gives {np.asarray(want).dtype}"
    if torch_fn is not False and torch is not None:
        ts = [torch.tensor(a, requires_grad=grad and f) for a, f in zip(arrays, floats)]
        tout = torch_fn(*ts)
        _assert_close("forward vs torch", out.detach().numpy(), tout.detach().numpy(), atol, rtol)
        assert str(out.dtype) == str(tout.dtype).replace("torch.", "tinymm."), f"dtype {out.dtype} vs torch {tout.dtype}"
        if grad and out.requires_grad:
            r = np.random.default_rng(seed + 1).standard_normal(out.shape).astype(out.dtype)
            (out * tm.tensor(r)).sum().backward()
            (tout * torch.tensor(r)).sum().backward()
            for i, (x, t) in enumerate(zip(xs, ts)):
                if not x.requires_grad:
                    continue
                tg = t.grad.numpy() if t.grad is not None else np.zeros(t.shape, arrays[i].dtype)
                xg = x.grad.numpy() if x.grad is not None else np.zeros(x.shape, arrays[i].dtype)
                _assert_close(f"grad of input {i} vs torch", xg, tg, grad_atol or atol * 10, grad_rtol or rtol * 10)
    if grad and gradcheck and any(floats):
        xs64 = [
            tm.tensor(a.astype(np.float64), requires_grad=True) if f else tm.tensor(a)
            for a, f in zip(arrays, floats)
        ]
        tm.gradcheck(tm_fn, xs64, atol=1e-6, rtol=1e-4)  # stricter than PyTorch's defaults
    if torch_fn is not False and torch is None:
        pytest.skip(TORCH_REASON)  # NumPy and gradcheck passed; the PyTorch comparison could not run
    return out
