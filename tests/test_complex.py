"""Complex dtypes against PyTorch: dtype objects, creation, promotion, printing, refusals, the
elementwise/reduction ops with gradients (PyTorch's conjugate-Wirtinger convention), and the
LLaMA rotary embedding end to end."""
from __future__ import annotations

import math

import numpy as np
import pytest
from complex_helpers import compare, rand
from helpers import TORCH_REASON, torch

import tinymm as tm

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _name(d) -> str:
    return str(d).split(".")[-1]


# ----------------------------------------------------------------------------- 1. dtypes, creation, promotion


def test_dtype_objects():
    assert tm.cfloat is tm.complex64 and tm.cdouble is tm.complex128
    for ours, theirs in ((tm.complex64, torch.complex64), (tm.complex128, torch.complex128)):
        assert ours.is_complex and not ours.is_floating_point and ours.is_signed
        assert ours.itemsize == theirs.itemsize
        assert _name(ours.to_real()) == _name(theirs.to_real())
        assert str(ours).replace("tinymm", "torch") == str(theirs)
    assert tm.float32.to_complex() is tm.complex64
    assert tm.finfo(tm.complex64).eps == torch.finfo(torch.complex64).eps
    assert tm.finfo(tm.complex128).bits == torch.finfo(torch.complex128).bits


def test_creation():
    z = tm.tensor([1 + 2j, 3.5])
    assert z.dtype is tm.complex64 and z.is_complex() and tm.is_complex(z)
    assert tm.tensor(1j).dtype is tm.complex64
    assert tm.tensor([1j], dtype=tm.complex128).dtype is tm.complex128
    assert not tm.is_complex(tm.ones(2))
    for fn in ("zeros", "ones", "empty"):
        assert getattr(tm, fn)(2, 3, dtype=tm.complex64).dtype is tm.complex64
    assert tm.full((2,), 1j).dtype is tm.complex64
    assert tm.zeros(2, dtype=tm.complex64).requires_grad_().requires_grad
    with pytest.raises(RuntimeError, match="floating point and complex"):
        tm.ones(2, dtype=tm.int64).requires_grad_()
    np.testing.assert_allclose(tm.complex(tm.tensor([1.0]), tm.tensor([2.0])).numpy(), [1 + 2j])
    assert tm.isreal(tm.tensor([1 + 0j, 1j])).tolist() == [True, False]


def test_randn_complex_draws_like_torch():
    """PyTorch draws real and imaginary parts each N(0, 1/2) (so E|z|² = 1); tinymm's generator
    is not PyTorch's, so the distribution is what is compared."""
    tm.manual_seed(0)
    z = tm.randn(20000, dtype=tm.complex64)
    assert z.dtype is tm.complex64
    a = z.numpy()
    assert abs(np.var(a.real) - 0.5) < 0.03 and abs(np.var(a.imag) - 0.5) < 0.03
    assert abs(np.mean(np.abs(a) ** 2) - 1) < 0.05


@pytest.mark.parametrize("a_dt, b_dt", [("float32", "complex64"), ("float64", "complex64"), ("complex64", "complex128"),
                                         ("int64", "complex64"), ("float64", "complex128")])
def test_promotion_tensors(a_dt, b_dt):
    a = np.ones(2, a_dt)
    b = np.ones(2, b_dt)
    got = tm.tensor(a) + tm.tensor(b)
    want = torch.tensor(a) + torch.tensor(b)
    assert _name(got.dtype) == _name(want.dtype)
    assert _name(tm.promote_types(getattr(tm, a_dt), getattr(tm, b_dt))) == _name(
        torch.promote_types(getattr(torch, a_dt), getattr(torch, b_dt)))


@pytest.mark.parametrize("dt", ["float32", "float64", "int64", "int32"])
@pytest.mark.parametrize("scalar", [2j, 1 + 1j])
def test_promotion_python_complex(dt, scalar):
    x = np.arange(3).astype(dt)
    got, want = tm.tensor(x) * scalar, torch.tensor(x) * scalar
    assert _name(got.dtype) == _name(want.dtype)
    np.testing.assert_allclose(got.numpy(), want.numpy())
    assert _name(tm.result_type(tm.tensor(x), scalar)) == _name(torch.result_type(torch.tensor(x), scalar))


def test_promotion_zero_dim():
    for big, small in (("float64", "complex64"), ("float32", "complex128"), ("complex64", "float64"), ("int32", "complex128")):
        a, b = np.ones(2, big), np.array(1, small)
        got = tm.tensor(a) * tm.tensor(b)
        want = torch.tensor(a) * torch.tensor(b)
        assert _name(got.dtype) == _name(want.dtype), (big, small)


def test_printing_like_torch():
    from tinymm import dtype_objects

    prev = dtype_objects.REPR_PREFIX
    dtype_objects.REPR_PREFIX = "torch."
    try:
        for arr in (np.array([1 + 2j, -3.25 - 1j]), np.array([[1e-5 + 1j, 2.0], [100j, 3.5]]), np.array(2j)):
            for dt in ("complex64", "complex128"):
                a = arr.astype(dt)
                assert repr(tm.tensor(a)) == repr(torch.tensor(a))
        assert repr(tm.tensor([1j, 2], requires_grad=True)) == repr(torch.tensor([1j, 2], requires_grad=True))
    finally:
        dtype_objects.REPR_PREFIX = prev


def test_refusals():
    z = tm.tensor([1 + 1j, 2j])
    zt = torch.tensor([1 + 1j, 2j])
    for op in (lambda a: a < a * 2, lambda a: a >= 1, lambda a: a.max(), lambda a: a.amax(), lambda a: a.relu(),
               lambda a: a.min(dim=0), lambda a: a.argmax(), lambda a: a.sort(), lambda a: a.clamp(0, 1),
               lambda a: a.sign(), lambda a: a.topk(1), lambda a: a.maximum(a)):
        with pytest.raises(RuntimeError):
            op(zt)
        with pytest.raises(RuntimeError):
            op(z)
    assert (z == z * 1).tolist() == [True, True]
    with pytest.raises(RuntimeError, match="real scalar"):
        tm.tensor(1j, requires_grad=True).backward()
    with pytest.raises(RuntimeError):
        torch.tensor(1j, requires_grad=True).backward()
    with pytest.raises(RuntimeError, match="non-complex"):
        _ = tm.ones(2).imag
    with pytest.raises(RuntimeError):
        tm.ones(2).add_(1j)
    with pytest.raises(RuntimeError):
        torch.ones(2).add_(1j)


# ----------------------------------------------------------------------------- 2. ops with gradients


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "matmul": lambda a, b: a @ b,
}


# PyTorch's matmul refuses mixed dtypes (tinymm promotes, its rule for real dtypes too): not compared
@pytest.mark.parametrize("op, b_dtype", [(op, dt) for op in sorted(BINARY) for dt in ("complex128", "float64")
                                         if (op, dt) != ("matmul", "float64")])
def test_binary(op, b_dtype):
    fn = BINARY[op]
    shape_b = (3, 2) if op == "matmul" else (1, 3)
    compare(fn, fn, rand((2, 3)), rand(shape_b, b_dtype, seed=3))
    compare(fn, fn, rand(shape_b, b_dtype, seed=3).T.copy() if op == "matmul" else rand(shape_b, b_dtype, seed=3),
            rand((3, 3) if op == "matmul" else (2, 3)))


UNARY = {
    "neg": lambda z: -z,
    "pow2": lambda z: z ** 2,
    "pow_half": lambda z: z ** 0.5,
    "exp": lambda z: z.exp(),
    "log": lambda z: z.log(),
    "sqrt": lambda z: z.sqrt(),
    "tanh": lambda z: z.tanh(),
    "abs": lambda z: z.abs(),
    "angle": lambda z: z.angle(),
    "real": lambda z: z.real,
    "imag": lambda z: z.imag,
    "conj": lambda z: z.conj().resolve_conj(),
    "conj_physical": lambda z: z.conj_physical(),
    "sum": lambda z: z.sum(),
    "sum_dim": lambda z: z.sum(dim=0),
    "mean": lambda z: z.mean(dim=1, keepdim=True),
    "reshape_index": lambda z: z.reshape(3, 2)[1:, 1].flip(0).flatten(),
    "var": lambda z: z.var(dim=1),
    "std_all": lambda z: z.std(),
    "cat": lambda z: (torch if isinstance(z, torch.Tensor) else tm).cat([z, z * 2j], dim=1),
    "scalar_mul": lambda z: z * (0.5 - 2j) + 1.5,
    "rdiv": lambda z: 1 / z,
    "view_as_real": lambda z: (torch if isinstance(z, torch.Tensor) else tm).view_as_real(z),
}
# linear maps with real coefficients: the gradient is the transposed map, as for real tensors
UNARY.update({
    "cumsum": lambda z: z.cumsum(1),
    "masked_fill": lambda z: z.masked_fill(z.real > 0, 1 + 2j),
    "gather": lambda z: z.gather(1, (torch if isinstance(z, torch.Tensor) else tm).tensor([[0, 2], [1, 1]])),
    "tril": lambda z: z.tril(),
    "where": lambda z: (torch if isinstance(z, torch.Tensor) else tm).where(z.imag > 0, z, z * 2j),
})
# the holomorphic elementwise functions: backward g·conj(f'(z)), PyTorch's
UNARY.update({name: (lambda z, n=name: getattr(z, n)()) for name in (
    "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "rsqrt",
    "reciprocal", "exp2", "log2", "log10", "log1p", "expm1", "square", "sigmoid")})


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary(op):
    compare(UNARY[op], UNARY[op], rand((2, 3)))


@pytest.mark.parametrize("op", ["abs", "exp", "mul", "view_as_real"])
def test_complex64(op):
    fns = {**UNARY, "mul": lambda z: z * z}
    out = compare(fns[op], fns[op], rand((4,), "complex64"), atol=1e-5, rtol=1e-4)
    assert out.dtype in (tm.complex64, tm.float32)


def test_real_input_complex_output_gets_real_grad():
    """A real tensor times a complex one: its gradient is the real part (PyTorch)."""
    compare(lambda x, z: x * z, lambda x, z: x * z, rand((3,), "float64"), rand((3,)))
    compare(lambda x: x * 1j + x.to(tm.complex128), lambda x: x * 1j + x.to(torch.complex128), rand((3,), "float64"))


def test_polar_complex_view_as_complex():
    lib = lambda t: torch if isinstance(t, torch.Tensor) else tm
    r = np.abs(rand((2, 3), "float64")) + 0.1
    compare(lambda a, b: lib(a).polar(a, b), lambda a, b: lib(a).polar(a, b), r, rand((2, 3), "float64", 4))
    compare(lambda a, b: lib(a).complex(a, b), lambda a, b: lib(a).complex(a, b), rand((2, 1), "float64"), rand((3,), "float64", 5))
    compare(lambda a: lib(a).view_as_complex(a), lambda a: lib(a).view_as_complex(a), rand((3, 2), "float64"))


def test_view_errors_like_torch():
    cases = [np.ones((3, 3), np.float32), np.ones((3, 2), np.int64), np.ones((2, 4), np.float32)[:, ::2]]
    for a in cases:
        with pytest.raises(RuntimeError) as theirs:
            torch.view_as_complex(torch.from_numpy(np.ascontiguousarray(a)) if a.flags.c_contiguous else
                                  torch.ones(2, 4)[:, ::2])
        with pytest.raises(RuntimeError) as ours:
            tm.view_as_complex(tm.tensor(a) if a.flags.c_contiguous else tm.ones(2, 4)[:, ::2])
        assert str(ours.value).split(",")[0] == str(theirs.value).split(",")[0]
    with pytest.raises(RuntimeError, match="only supported for complex"):
        tm.view_as_real(tm.ones(2))
    with pytest.raises(RuntimeError, match="scalar type"):
        tm.complex(tm.ones(1), tm.ones(1, dtype=tm.float64))
    with pytest.raises(RuntimeError):
        torch.complex(torch.ones(1), torch.ones(1, dtype=torch.float64))


def test_views_share_memory():
    z = tm.tensor([1 + 2j, 3 - 4j])
    z.real[0] = 10.0
    r = tm.view_as_real(z)
    r[1, 1] = 7.0
    assert z.tolist() == [10 + 2j, 3 + 7j]
    z.imag = tm.tensor([0.5, 0.5])
    assert z.tolist() == [10 + 0.5j, 3 + 0.5j]
    x = tm.zeros(2, 2)
    tm.view_as_complex(x)[0] = 1 + 2j
    assert x.tolist() == [[1, 2], [0, 0]]
    assert z.conj().is_conj() is False and z.resolve_conj() is z
    np.testing.assert_allclose(tm.tensor([[1j, 2]]).mH.numpy(), [[-1j], [2]])


def test_create_graph_refuses_complex():
    z = tm.tensor([1 + 1j], requires_grad=True)
    loss = (z * z).abs().sum()
    with pytest.raises(NotImplementedError, match="create_graph"):
        tm.autograd.grad(loss, z, create_graph=True)


def test_unsupported_gradient_refuses():
    """An op whose backward was not checked for complex tensors refuses to record one."""
    z = tm.tensor([1 + 1j, 2], requires_grad=True)
    with pytest.raises(NotImplementedError, match="complex"):
        z.cumprod(0)
    with pytest.raises(RuntimeError, match="complex"):
        z.relu()  # float-only ops refuse complex input outright
    with tm.no_grad():
        np.testing.assert_allclose(z.cumprod(0).numpy(), [1 + 1j, 2 + 2j])


# ----------------------------------------------------------------------------- LLaMA rotary embeddings


def _precompute_freqs_cis(lib, dim, end, theta=10000.0):
    freqs = 1.0 / (theta ** (lib.arange(0, dim, 2)[: dim // 2].float() / dim))
    t = lib.arange(end).float()
    freqs = lib.outer(t, freqs)
    return lib.polar(lib.ones_like(freqs), freqs)


def _apply_rotary_emb(lib, xq, xk, freqs_cis):
    xq_ = lib.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
    xk_ = lib.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
    shape = [d if i == 1 or i == xq_.ndim - 1 else 1 for i, d in enumerate(xq_.shape)]
    fc = freqs_cis.view(*shape)
    xq_out = lib.view_as_real(xq_ * fc).flatten(3)
    xk_out = lib.view_as_real(xk_ * fc).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)


def test_llama_rotary_embedding():
    B, S, H, D = 2, 5, 3, 8
    r = np.random.default_rng(0)
    q, k = r.standard_normal((B, S, H, D)).astype(np.float32), r.standard_normal((B, S, H, D)).astype(np.float32)
    outs, grads = [], []
    for lib in (tm, torch):
        xq, xk = lib.tensor(q, requires_grad=True), lib.tensor(k, requires_grad=True)
        fc = _precompute_freqs_cis(lib, D, S)
        oq, ok = _apply_rotary_emb(lib, xq, xk, fc)
        ((oq * oq.detach()).sum() + (ok * 3).sum()).backward()
        outs.append((oq.detach().numpy(), ok.detach().numpy(), fc.numpy()))
        grads.append((xq.grad.numpy(), xk.grad.numpy()))
    for a, b in zip(outs[0] + grads[0], outs[1] + grads[1]):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
    assert math.isclose(float(np.abs(outs[0][2]).mean()), 1.0, rel_tol=1e-6)


def test_inplace_on_complex_with_grad():
    a = np.array([1 + 2j, -0.5 + 1j])
    res = []
    for lib in (tm, torch):
        z = lib.tensor(a, requires_grad=True)
        y = z * 1
        y.mul_(2j)
        y += 1.5
        y[0] = y[1] * 3
        ((y.abs() ** 2).sum() + y.real.sum()).backward()
        res.append((y.detach().numpy(), z.grad.numpy()))
    for ours, theirs in zip(*res):
        np.testing.assert_allclose(ours, theirs, atol=1e-12)
