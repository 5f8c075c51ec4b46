"""Second derivatives (create_graph=True) of ops that had only a first-order backward: mish,
atan2, hypot, logaddexp(2), cumsum, cumprod and prod (through zeros too), cummax,
logcumsumexp, diagonal/trace, nanmean, lerp, copysign, remainder/fmod, nan_to_num, fmax/fmin,
and index/view writes; against PyTorch's."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

BASE = [[0.5, -1.2, 2.0, 0.3], [1.5, 0.7, -0.4, -2.2], [0.9, 0.0, 1.1, -0.6]]
NAN = [[0.5, float("nan"), 2.0, 0.3], [1.5, 0.7, -0.4, -2.2], [0.9, 0.1, 1.1, -0.6]]

CASES = {
    "mish": lambda m, x: m.nn.functional.mish(x),
    "atan2": lambda m, x: m.atan2(x, x * x + 0.5),
    "atan2_number": lambda m, x: m.atan2(x, m.tensor(2.0, dtype=x.dtype)),
    "hypot": lambda m, x: m.hypot(x, x * 0.5 + 1),
    "logaddexp": lambda m, x: m.logaddexp(x, x * x),
    "cumsum": lambda m, x: (x * x).cumsum(1),
    "cumprod": lambda m, x: (x + 3).cumprod(1),
    "cumprod_zero": lambda m, x: x.cumprod(1),          # row 2 holds a 0
    "prod_dim": lambda m, x: (x + 3).prod(1),
    "prod_dim_zero": lambda m, x: x.prod(0, keepdim=True),
    "prod_all": lambda m, x: (x * 0.5 + 1).prod(),
    "prod_all_zero": lambda m, x: (x[:, :3] * 0.5).prod(),
    "cummax": lambda m, x: (x * x).cummax(1)[0],
    "logcumsumexp": lambda m, x: x.logcumsumexp(1),
    "trace": lambda m, x: (x[:, :3] * x[:, :3]).trace(),
    "diagonal_offset": lambda m, x: (x * x).diagonal(1),
    "nanmean": lambda m, x: (x * x).nanmean(1),
    "tensor_unfold": lambda m, x: (x * x).unfold(1, 2, 1),
    "tensor_unfold_step": lambda m, x: x.unfold(1, 3, 1).exp(),
    "diag_embed": lambda m, x: m.diag_embed(x * x, offset=1),
    "diag_embed_dims": lambda m, x: m.diag_embed(x.sin(), offset=-1, dim1=0, dim2=2),
    "diag_of_vector": lambda m, x: m.diag(x[0] * x[1], 1),
    "lerp": lambda m, x: m.lerp(x * x, x.sin(), x * 0.3),
    "copysign": lambda m, x: m.copysign(x * x + 0.1, x - 0.2),  # (at a = 0 PyTorch's second derivative is 0/0)
    "remainder": lambda m, x: m.remainder(x * x + 3, x * 0.5 + 2),
    "fmod": lambda m, x: m.fmod(x * x - 3, x * 0.5 + 2),
    "nan_to_num": lambda m, x: m.nan_to_num(x * x),
    "fmax": lambda m, x: m.fmax(x * x, x.sin()),
    "fmin": lambda m, x: m.fmin(x * x, x.sin()),
    "logaddexp2": lambda m, x: m.logaddexp2(x, x * x),
}


def _second(lib, fn, values):
    x = lib.tensor(values, dtype=lib.float64, requires_grad=True)
    y = fn(lib, x)
    (g,) = lib.autograd.grad((y * y).sum(), x, create_graph=True)
    (gg,) = lib.autograd.grad((g * g.sin()).sum(), x)
    return g.detach().numpy(), gg.numpy()


@pytest.mark.parametrize("name", sorted(CASES))
def test_second_derivative_matches_torch(name):
    if torch is None:
        pytest.skip(TORCH_REASON)
    values = NAN if name == "nanmean" else BASE
    ours, ref = _second(tm, CASES[name], values), _second(torch, CASES[name], values)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=name)


@pytest.mark.parametrize("name", ["cumprod_zero", "prod_dim_zero", "prod_all_zero", "logcumsumexp", "diagonal_offset", "atan2"])
def test_gradgradcheck(name):
    x = tm.tensor(BASE, dtype=tm.float64, requires_grad=True)
    assert tm.autograd.gradgradcheck(lambda t: CASES[name](tm, t), (x,))


def _written(lib, kind):
    x = lib.tensor([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]], dtype=lib.float64, requires_grad=True)
    v = lib.tensor([0.2, 0.4, 0.9], dtype=lib.float64, requires_grad=True)
    y = x * x
    if kind == "row":
        y[0] = v * v
    elif kind == "mask":
        y[y > 1] = 3 * x[y > 1] * v[0]
    elif kind == "diagonal_view":
        y.diagonal()[:] = v[:2] * v[:2]
    elif kind == "transposed_view":
        y.t()[1] = v[:2] ** 3
    elif kind == "flat_view":
        y.view(-1)[2:5] = v * v
    elif kind == "unfold_view":
        y.view(-1).unfold(0, 2, 2)[1] = v[:2] ** 2
    elif kind == "inf_gradient":  # the written entry's gradient is 0, not inf · 0
        y[0, 0] = v[0] * 2
        y = y * lib.tensor([[float("inf"), 1.0, 1.0], [1.0, 1.0, 1.0]], dtype=lib.float64)
        (g,) = lib.autograd.grad(y.sum(), x, create_graph=True)
        return [g.detach().numpy()]
    g = lib.autograd.grad((y * y).sum(), (x, v), create_graph=True)
    gg = lib.autograd.grad((g[0] * g[0]).sum() + (g[1] ** 3).sum(), (x, v))
    return [t.detach().numpy() for t in g + gg]


@pytest.mark.parametrize("kind", ["row", "mask", "diagonal_view", "transposed_view", "flat_view", "unfold_view",
                                  "inf_gradient"])
def test_index_and_view_writes_are_twice_differentiable_as_torch(kind):
    if torch is None:
        pytest.skip(TORCH_REASON)
    for a, b in zip(_written(tm, kind), _written(torch, kind)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


LINALG = {
    "cholesky": lambda m, a: m.linalg.cholesky(a @ a.mT + 3 * m.eye(3, dtype=a.dtype)),
    "cholesky_upper": lambda m, a: m.linalg.cholesky(a @ a.mT + 3 * m.eye(3, dtype=a.dtype), upper=True),
    "cholesky_ex": lambda m, a: m.linalg.cholesky_ex(a @ a.mT + 3 * m.eye(3, dtype=a.dtype)).L,
    "solve_triangular_lower": lambda m, a: m.linalg.solve_triangular(a + 3 * m.eye(3, dtype=a.dtype), a[:, :2] * a[:, :2], upper=False),
    "solve_triangular_upper_unit": lambda m, a: m.linalg.solve_triangular(a, a[:, :2].exp(), upper=True, unitriangular=True),
    "solve_triangular_right": lambda m, a: m.linalg.solve_triangular(a + 3 * m.eye(3, dtype=a.dtype), a[:2].sin(), upper=False, left=False),
    "cholesky_solve": lambda m, a: m.cholesky_solve(a[:, :2], m.linalg.cholesky(a @ a.mT + 3 * m.eye(3, dtype=a.dtype))),
    "eigvalsh": lambda m, a: m.linalg.eigvalsh(a + a.mT),
    "eigh_pairs": lambda m, a: (lambda r: r[0].unsqueeze(0) * r[1] ** 2)(m.linalg.eigh(a @ a.mT)),
    "eigvalsh_batched": lambda m, a: m.linalg.eigvalsh(m.stack([a + a.mT, a @ a.mT])),
    "svdvals": lambda m, a: m.linalg.svdvals(a[:, :2]),
    "nuclear_norm": lambda m, a: m.linalg.matrix_norm(a, "nuc"),
    "spectral_norm": lambda m, a: m.linalg.matrix_norm(a.mT @ a + m.eye(3, dtype=a.dtype), 2),
    "mvn_log_prob": lambda m, a: m.distributions.MultivariateNormal(
        a[0], scale_tril=a.tril().abs() + m.eye(3, dtype=a.dtype)).log_prob(a[1:] * 2),
}


@pytest.mark.parametrize("name", sorted(LINALG))
def test_linalg_second_derivatives_match_torch(name):
    if torch is None:
        pytest.skip(TORCH_REASON)
    m = np.random.default_rng(0).standard_normal((3, 3))
    res = []
    for lib in (tm, torch):
        a = lib.tensor(m, requires_grad=True)
        y = LINALG[name](lib, a)
        (g,) = lib.autograd.grad((y * y).sum(), a, create_graph=True)
        (gg,) = lib.autograd.grad((g * g.sin()).sum(), a)
        res.append((g.detach().numpy(), gg.numpy()))
    for ours, ref in zip(*res):
        np.testing.assert_allclose(ours, ref, rtol=1e-7, atol=1e-9, err_msg=name)
