"""Comparing one function on tinymm and on PyTorch: ``compare(fn, arrays)`` runs
``fn(lib, *tensors)`` with lib = tinymm and lib = torch on the same arrays and checks every
output's shape, dtype and values, the gradients of a random projection of the outputs against
``torch.autograd``, and a float64 finite-difference ``gradcheck``; ``same_error(fn)`` checks
that tinymm raises the class PyTorch raises. Used where ``helpers.check_op`` (one output, one
lambda per library) does not fit: functions returning several tensors, integer outputs, and
the ``torch.linalg`` / ``torch.special`` / ``torch.testing`` namespaces."""
import numpy as np
import pytest

import tinymm as tm
from helpers import torch


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _name(dtype):
    return str(dtype).replace("torch.", "tinymm.")


def compare(fn, arrays, *, dtype=np.float64, atol=1e-8, rtol=1e-6, grad=True, gradcheck=True, gradcheck_fn=None,
            torch_grad=True):
    """fn(tm, *xs) vs fn(torch, *xs): each output's shape, dtype and values; with ``grad`` the
    gradients of Σ outputs·r against torch's; with ``gradcheck`` a float64 finite-difference
    check (of ``gradcheck_fn`` when given, for functions that read part of their input);
    ``torch_grad=False`` where PyTorch's own backward fails (torch.vander)."""
    arrays = [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]
    floats = [a.dtype.kind == "f" for a in arrays]
    xs = [tm.tensor(a, requires_grad=grad and f) for a, f in zip(arrays, floats)]
    ts = [torch.tensor(a, requires_grad=grad and f) for a, f in zip(arrays, floats)]
    outs, touts = _outputs(fn(tm, *xs)), _outputs(fn(torch, *ts))
    assert len(outs) == len(touts)
    for i, (o, t) in enumerate(zip(outs, touts)):
        assert tuple(o.shape) == tuple(t.shape), f"output {i}: shape {tuple(o.shape)}, torch {tuple(t.shape)}"
        assert _name(o.dtype) == _name(t.dtype), f"output {i}: dtype {o.dtype}, torch {t.dtype}"
        np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), atol=atol, rtol=rtol, err_msg=f"output {i}")
    if grad and torch_grad and any(floats):
        loss_tm, loss_t = None, None
        for i, (o, t) in enumerate(zip(outs, touts)):
            if not (t.requires_grad and o.requires_grad):
                continue  # (torch marks some outputs with zero gradient, e.g. slogdet's sign, as requiring grad)
            r = randn(*o.shape, seed=i + 7).astype(o.dtype) if o.ndim else np.asarray(1.3, o.dtype)
            lt, lo = (t * torch.tensor(r)).sum(), (o * tm.tensor(r)).sum()
            loss_t, loss_tm = (lt, lo) if loss_t is None else (loss_t + lt, loss_tm + lo)
        if loss_t is not None:
            loss_t.backward()
            loss_tm.backward()
            for i, (x, t) in enumerate(zip(xs, ts)):
                if t.grad is None:
                    continue
                assert x.grad is not None, f"input {i}: no gradient, torch has one"
                np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), atol=atol * 10, rtol=rtol * 10,
                                           err_msg=f"grad of input {i}")
    if grad and gradcheck and dtype == np.float64 and any(floats):
        x64 = [tm.tensor(a, requires_grad=f) for a, f in zip(arrays, floats)]
        g = gradcheck_fn or fn
        tm.gradcheck(lambda *x: g(tm, *x), x64, atol=1e-5, rtol=1e-4)


def same_error(fn, match_message=False):
    """``fn(lib)`` raises in PyTorch; tinymm raises an instance of the same class (of
    tinymm.linalg.LinAlgError for torch.linalg.LinAlgError), with the same message if asked."""
    with pytest.raises(Exception) as want:
        fn(torch)
    cls = tm.linalg.LinAlgError if isinstance(want.value, torch.linalg.LinAlgError) else want.type
    with pytest.raises(cls) as got:
        fn(tm)
    if match_message:
        assert str(got.value) == str(want.value)
    return got.value
