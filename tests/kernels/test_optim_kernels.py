"""kernels/optim.py (every version through the dispatch's ``impl=``): SGD and Adam/AdamW updates vs torch.optim over several steps; CPU and CUDA vs reference."""
import functools
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cuda_helpers import to_cuda, to_host
from tinymm.kernels import optim as O

DTYPES = [np.float32, np.float64]
REF_SGD = functools.partial(O.sgd_step, impl="reference")
REF_ADAM = functools.partial(O.adam_step, impl="reference")
CUDA_SGD = functools.partial(O.sgd_step, impl="cuda")
CUDA_ADAM = functools.partial(O.adam_step, impl="cuda")
SHAPE = (4, 3, 11)  # 132 elements, 3-D: the kernels work on the raveled view
STEPS = 5


def tol(dtype):
    return dict(rtol=2e-6, atol=2e-7) if np.dtype(dtype) == np.float32 else dict(rtol=1e-12, atol=1e-14)


def grads(seed, dtype, shape=SHAPE, steps=STEPS):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(dtype), [rng.standard_normal(shape).astype(dtype) for _ in range(steps)]


SGD_CASES = [
    dict(momentum=0.0),
    dict(momentum=0.0, weight_decay=0.1, maximize=True),
    dict(momentum=0.9),
    dict(momentum=0.9, dampening=0.3, weight_decay=0.05),
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.8, nesterov=True, weight_decay=0.1, maximize=True),
]

ADAM_CASES = [
    dict(weight_decay=wd, decoupled_weight_decay=dec, amsgrad=ams, maximize=mx)
    for wd, dec, ams, mx in itertools.product([0.0, 0.1], [False, True], [False, True], [False, True])
    if not (wd == 0.0 and dec)  # decoupling without weight decay is plain Adam
]


def run_sgd(step_fn, param, grad_list, case, lr=0.1, xp_in=lambda a: a):
    p = xp_in(param.copy())
    buf = xp_in(np.zeros_like(param)) if case.get("momentum", 0) != 0 else None
    for i, g in enumerate(grad_list):
        step_fn(p, xp_in(g), buf, lr=lr, first_step=(i == 0), **case)
    return to_host(p), to_host(buf)


def run_adam(step_fn, param, grad_list, case, lr=0.01, betas=(0.9, 0.99), eps=1e-8, xp_in=lambda a: a):
    p = xp_in(param.copy())
    m, v = xp_in(np.zeros_like(param)), xp_in(np.zeros_like(param))
    vmax = xp_in(np.zeros_like(param)) if case["amsgrad"] else None
    for i, g in enumerate(grad_list):
        step_fn(p, xp_in(g), m, v, step=i + 1, lr=lr, beta1=betas[0], beta2=betas[1], eps=eps,
                max_exp_avg_sq=vmax, **case)
    return to_host(p), to_host(m), to_host(v), to_host(vmax)


# ----------------------------------------------------------------------------- vs torch.optim


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SGD_CASES, ids=str)
@pytest.mark.parametrize("impl", ["reference", "cpu"])
def test_sgd_matches_torch(dtype, case, impl):
    torch = pytest.importorskip("torch", reason="PyTorch (dev extra) is not installed")
    param, grad_list = grads(1, dtype)
    pt = torch.nn.Parameter(torch.tensor(param))
    opt = torch.optim.SGD([pt], lr=0.1, **case)
    for g in grad_list:
        pt.grad = torch.tensor(g)
        opt.step()
    fn = functools.partial(O.sgd_step, impl=impl)
    p, buf = run_sgd(fn, param, grad_list, case)
    np.testing.assert_allclose(p, pt.detach().numpy(), **tol(dtype))
    assert p.dtype == np.dtype(dtype)
    if buf is not None:
        np.testing.assert_allclose(buf, opt.state[pt]["momentum_buffer"].detach().numpy(), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ADAM_CASES, ids=str)
@pytest.mark.parametrize("impl", ["reference", "cpu"])
def test_adam_and_adamw_match_torch(dtype, case, impl):
    torch = pytest.importorskip("torch", reason="PyTorch (dev extra) is not installed")
    param, grad_list = grads(2, dtype)
    pt = torch.nn.Parameter(torch.tensor(param))
    cls = torch.optim.AdamW if case["decoupled_weight_decay"] else torch.optim.Adam
    opt = cls([pt], lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=case["weight_decay"],
              amsgrad=case["amsgrad"], maximize=case["maximize"], foreach=False)
    for g in grad_list:
        pt.grad = torch.tensor(g)
        opt.step()
    fn = functools.partial(O.adam_step, impl=impl)
    p, m, v, vmax = run_adam(fn, param, grad_list, case)
    state = opt.state[pt]
    np.testing.assert_allclose(p, pt.detach().numpy(), **tol(dtype))
    np.testing.assert_allclose(m, state["exp_avg"].detach().numpy(), **tol(dtype))
    np.testing.assert_allclose(v, state["exp_avg_sq"].detach().numpy(), **tol(dtype))
    if case["amsgrad"]:
        np.testing.assert_allclose(vmax, state["max_exp_avg_sq"].detach().numpy(), **tol(dtype))
    assert p.dtype == np.dtype(dtype)


# ----------------------------------------------------------------------------- Numba CPU vs reference


@given(size=st.integers(1, 3000), dtype=st.sampled_from(DTYPES), case=st.sampled_from(SGD_CASES),
       seed=st.integers(0, 2**32 - 1))
def test_cpu_sgd_matches_reference(size, dtype, case, seed):
    param, grad_list = grads(seed, dtype, (size,), steps=3)
    for a, b in zip(run_sgd(O.sgd_step, param, grad_list, case), run_sgd(REF_SGD, param, grad_list, case)):
        if b is not None:
            np.testing.assert_allclose(a, b, **tol(dtype))


@given(size=st.integers(1, 3000), dtype=st.sampled_from(DTYPES), case=st.sampled_from(ADAM_CASES),
       seed=st.integers(0, 2**32 - 1))
def test_cpu_adam_matches_reference(size, dtype, case, seed):
    param, grad_list = grads(seed, dtype, (size,), steps=3)
    for a, b in zip(run_adam(O.adam_step, param, grad_list, case), run_adam(REF_ADAM, param, grad_list, case)):
        if b is not None:
            np.testing.assert_allclose(a, b, **tol(dtype))


@pytest.fixture(params=["serial", "parallel"])
def cpu_version(request, monkeypatch):
    """Run the public CPU functions through the serial or the parallel loops, whatever the size."""
    monkeypatch.setattr(O, "CPU_PARALLEL_MIN_ELEMENTS", 0 if request.param == "parallel" else 1 << 62)
    return request.param


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SGD_CASES, ids=str)
def test_cpu_serial_and_parallel_sgd_match_reference(cpu_version, dtype, case):
    param, grad_list = grads(5, dtype, (1001,), steps=3)
    for a, b in zip(run_sgd(O.sgd_step, param, grad_list, case), run_sgd(REF_SGD, param, grad_list, case)):
        if b is not None:
            np.testing.assert_allclose(a, b, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ADAM_CASES, ids=str)
def test_cpu_serial_and_parallel_adam_match_reference(cpu_version, dtype, case):
    param, grad_list = grads(6, dtype, (1001,), steps=3)
    for a, b in zip(run_adam(O.adam_step, param, grad_list, case),
                    run_adam(REF_ADAM, param, grad_list, case)):
        if b is not None:
            np.testing.assert_allclose(a, b, **tol(dtype))


def test_cpu_updates_in_place_and_accepts_a_strided_grad(rng):
    param = rng.standard_normal((5, 4))
    alias = param
    grad = rng.standard_normal((4, 5)).T  # not contiguous
    expected = param - 0.5 * grad
    O.sgd_step(param, grad, None, lr=0.5)
    assert param is alias
    np.testing.assert_allclose(param, expected, rtol=1e-15)
    O.sgd_step(np.zeros((0, 3)), np.zeros((0, 3)), None, lr=0.5)  # empty parameter: nothing to do


# ----------------------------------------------------------------------------- CUDA vs reference (simulator or GPU)


@pytest.fixture
def small_cuda_grid(monkeypatch):
    """2 blocks of 8 threads: the simulator runs a Python thread per CUDA thread, and 16
    threads striding over 37 elements exercise the grid-stride loop."""
    monkeypatch.setattr(O, "CUDA_BLOCK", 8)
    monkeypatch.setattr(O, "CUDA_MAX_BLOCKS", 2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [SGD_CASES[3], SGD_CASES[5]], ids=str)
def test_cuda_sgd_matches_reference(small_cuda_grid, dtype, case):
    param, grad_list = grads(3, dtype, (37,), steps=2)
    got = run_sgd(CUDA_SGD, param, grad_list, case, xp_in=to_cuda)
    want = run_sgd(REF_SGD, param, grad_list, case)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [ADAM_CASES[2], ADAM_CASES[-1]], ids=str)
def test_cuda_adam_matches_reference(small_cuda_grid, dtype, case):
    param, grad_list = grads(4, dtype, (37,), steps=2)
    got = run_adam(CUDA_ADAM, param, grad_list, case, xp_in=to_cuda)
    want = run_adam(REF_ADAM, param, grad_list, case)
    for a, b in zip(got, want):
        if b is not None:
            np.testing.assert_allclose(a, b, **tol(dtype))
