"""``tinymm.linalg`` and the linear-algebra Tensor methods / ``tinymm.*`` functions against
PyTorch: values and dtypes in float32 and float64, gradients against ``torch.autograd`` and a
float64 finite-difference ``gradcheck``, batched and empty-batch inputs, non-contiguous
inputs, and the exception class (and for LAPACK failures the message) on bad input.

Every case is one function ``fn(lib, *tensors)`` run with lib = tinymm and lib = torch on the
same arrays. Decompositions whose factors are unique only up to signs are compared through
sign-invariant quantities (u_i v_iᵀ for the SVD, v_i v_iᵀ for eigh)."""
import math

import numpy as np
import pytest

import tinymm as tm
from both_libs import compare, randn, same_error
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def wellcond(*shape, seed=0):
    """Random square matrices near the identity (condition number a few units)."""
    n = shape[-1]
    return 0.4 * randn(*shape, seed=seed) / math.sqrt(n) + np.eye(n)


def spd(*shape, seed=0):
    x = randn(*shape, seed=seed)
    return x @ np.swapaxes(x, -1, -2) / shape[-1] + np.eye(shape[-1])


def svd_invariant(m, A, full=False):
    U, S, Vh = m.linalg.svd(A, full_matrices=full)
    k = S.shape[-1]
    w = (m.arange(k) + 1.0).to(A.dtype)
    return S, (U[..., :, :k] * w) @ Vh[..., :k, :]


def eigh_invariant(m, A, uplo="L"):
    L, V = m.linalg.eigh(A, UPLO=uplo)
    w = (m.arange(L.shape[-1]) + 1.0).to(A.dtype)
    return L, (V * w) @ V.mT


def sym(m, a):
    return a + a.mT


# ----------------------------------------------------------------------------- cases

CASES = {
    # name: (fn(lib, *x), list of input arrays, options)
    "det": (lambda m, a: m.linalg.det(a), [wellcond(2, 3, 3)], {}),
    "det_4x4": (lambda m, a: m.linalg.det(a), [randn(4, 4)], {}),
    "slogdet": (lambda m, a: m.linalg.slogdet(a), [randn(3, 4, 4)], {}),
    "inv": (lambda m, a: m.linalg.inv(a), [wellcond(2, 3, 3)], {}),
    "inv_ex": (lambda m, a: m.linalg.inv_ex(a), [wellcond(3, 3)], {}),
    "solve": (lambda m, a, b: m.linalg.solve(a, b), [wellcond(2, 3, 3), randn(2, 3, 2)], {}),
    "solve_vector": (lambda m, a, b: m.linalg.solve(a, b), [wellcond(3, 3), randn(3)], {}),
    "solve_batched_vector": (lambda m, a, b: m.linalg.solve(a, b), [wellcond(2, 3, 3), randn(2, 3)], {}),
    "solve_broadcast": (lambda m, a, b: m.linalg.solve(a, b), [wellcond(2, 1, 3, 3), randn(4, 3, 2)], {}),
    "solve_right": (lambda m, a, b: m.linalg.solve(a, b, left=False), [wellcond(2, 3, 3), randn(2, 4, 3)], {}),
    "solve_ex": (lambda m, a, b: m.linalg.solve_ex(a, b), [wellcond(3, 3), randn(3, 2)], {}),
    "solve_triangular_upper": (lambda m, a, b: m.linalg.solve_triangular(a, b, upper=True),
                               [wellcond(2, 3, 3), randn(2, 3, 4)], {}),
    "solve_triangular_lower_unit": (lambda m, a, b: m.linalg.solve_triangular(a, b, upper=False, unitriangular=True),
                                    [wellcond(3, 3), randn(3, 2)], {}),
    "solve_triangular_right": (lambda m, a, b: m.linalg.solve_triangular(a, b, upper=True, left=False),
                               [wellcond(3, 3), randn(1, 4, 3)], {}),
    "cholesky": (lambda m, a: m.linalg.cholesky(a), [spd(2, 3, 3)],
                 {"gradcheck_fn": lambda m, a: m.linalg.cholesky(sym(m, a) + 3 * m.eye(3, dtype=a.dtype))}),
    "cholesky_upper": (lambda m, a: m.linalg.cholesky(a, upper=True), [spd(3, 3)],
                       {"gradcheck_fn": lambda m, a: m.linalg.cholesky(sym(m, a) + 3 * m.eye(3, dtype=a.dtype), upper=True)}),
    "cholesky_ex": (lambda m, a: m.linalg.cholesky_ex(a), [spd(2, 3, 3)], {"gradcheck": False}),
    "qr_square": (lambda m, a: m.linalg.qr(a), [randn(2, 3, 3)], {}),
    "qr_tall": (lambda m, a: m.linalg.qr(a), [randn(4, 3)], {}),
    "qr_wide": (lambda m, a: m.linalg.qr(a), [randn(2, 3, 5)], {}),
    "qr_complete_wide": (lambda m, a: m.linalg.qr(a, mode="complete"), [randn(3, 4)], {}),
    "qr_complete_tall": (lambda m, a: m.linalg.qr(a, mode="complete"), [randn(4, 3)], {"grad": False}),
    "qr_r": (lambda m, a: m.linalg.qr(a, mode="r")[1], [randn(4, 3)], {"grad": False}),
    "svd_reduced_tall": (lambda m, a: svd_invariant(m, a), [randn(2, 4, 3)], {}),
    "svd_reduced_wide": (lambda m, a: svd_invariant(m, a), [randn(3, 5)], {}),
    "svd_full": (lambda m, a: svd_invariant(m, a, full=True), [randn(4, 2)], {}),
    "svd_square": (lambda m, a: svd_invariant(m, a), [randn(3, 3)], {}),
    "svdvals": (lambda m, a: m.linalg.svdvals(a), [randn(2, 3, 5)], {}),
    "eigh": (lambda m, a: eigh_invariant(m, a), [spd(2, 3, 3)],
             {"gradcheck_fn": lambda m, a: eigh_invariant(m, sym(m, a))}),
    "eigh_upper": (lambda m, a: eigh_invariant(m, a, "U"), [spd(3, 3)],
                   {"gradcheck_fn": lambda m, a: eigh_invariant(m, sym(m, a), "U")}),
    "eigvalsh": (lambda m, a: m.linalg.eigvalsh(a), [spd(2, 4, 4)],
                 {"gradcheck_fn": lambda m, a: m.linalg.eigvalsh(sym(m, a))}),
    "pinv_tall": (lambda m, a: m.linalg.pinv(a), [randn(2, 4, 3)], {}),
    "pinv_wide": (lambda m, a: m.linalg.pinv(a), [randn(3, 5)], {}),
    "pinv_hermitian": (lambda m, a: m.linalg.pinv(a, hermitian=True), [spd(3, 3)],
                       {"gradcheck_fn": lambda m, a: m.linalg.pinv(sym(m, a), hermitian=True)}),
    "pinv_atol": (lambda m, a: m.linalg.pinv(a, atol=1.5), [randn(4, 4)], {"grad": False}),
    "matrix_rank": (lambda m, a: m.linalg.matrix_rank(a @ a.mT[..., :2, :]), [randn(2, 4, 2)], {"grad": False}),
    "matrix_rank_tol": (lambda m, a: m.linalg.matrix_rank(a, atol=1.0, rtol=0.0), [randn(3, 5, 5)], {"grad": False}),
    "matrix_rank_hermitian": (lambda m, a: m.linalg.matrix_rank(a, hermitian=True), [spd(4, 4)], {"grad": False}),
    "matrix_power_3": (lambda m, a: m.linalg.matrix_power(a, 3), [randn(2, 3, 3)], {}),
    "matrix_power_0": (lambda m, a: m.linalg.matrix_power(a, 0), [randn(3, 3)], {"grad": False}),
    "matrix_power_neg": (lambda m, a: m.linalg.matrix_power(a, -2), [wellcond(3, 3)], {}),
    "matrix_exp": (lambda m, a: m.linalg.matrix_exp(a), [randn(2, 3, 3)], {}),
    "matrix_exp_large": (lambda m, a: m.linalg.matrix_exp(3 * a), [randn(4, 4)], {"rtol": 1e-5}),
    "multi_dot": (lambda m, a, b, c: m.linalg.multi_dot([a, b, c]), [randn(3), randn(3, 4), randn(4, 2)], {}),
    "multi_dot_mats": (lambda m, a, b, c, d: m.linalg.multi_dot([a, b, c, d]),
                       [randn(2, 3), randn(3, 4), randn(4, 2), randn(2)], {}),
    "cross": (lambda m, a, b: m.linalg.cross(a, b), [randn(2, 4, 3), randn(1, 4, 3)], {}),
    "cross_dim": (lambda m, a, b: m.linalg.cross(a, b, dim=0), [randn(3, 2), randn(3, 2)], {}),
    "vecdot": (lambda m, a, b: m.linalg.vecdot(a, b), [randn(2, 4), randn(3, 1, 4)], {}),
    "vecdot_dim": (lambda m, a, b: m.linalg.vecdot(a, b, dim=0), [randn(4, 2), randn(4, 2)], {}),
    "diagonal": (lambda m, a: m.linalg.diagonal(a, offset=1), [randn(2, 3, 4)], {}),
    "matmul": (lambda m, a, b: m.linalg.matmul(a, b), [randn(2, 3, 4), randn(4, 2)], {}),
    "vander": (lambda m, x: m.linalg.vander(x), [randn(2, 4)], {}),
    "vander_N": (lambda m, x: m.linalg.vander(x, N=3), [randn(5)], {}),
    "tensorinv": (lambda m, a: m.linalg.tensorinv(a.reshape(2, 3, 6), ind=2), [wellcond(6, 6)], {}),
    "tensorsolve": (lambda m, a, b: m.linalg.tensorsolve(a.reshape(2, 3, 6), b), [wellcond(6, 6), randn(2, 3)], {}),
    "tensorsolve_dims": (lambda m, a, b: m.linalg.tensorsolve(a.reshape(6, 2, 3), b, dims=(0,)),
                         [wellcond(6, 6), randn(2, 3)], {}),
    "lu_factor": (lambda m, a: m.linalg.lu_factor(a), [randn(2, 4, 4)], {}),
    "lu_factor_ex": (lambda m, a: m.linalg.lu_factor_ex(a), [randn(3, 3)], {}),
    "lu_square": (lambda m, a: m.linalg.lu(a), [randn(2, 3, 3)], {}),
    "lu_tall": (lambda m, a: m.linalg.lu(a), [randn(5, 3)], {}),
    "lu_wide": (lambda m, a: m.linalg.lu(a), [randn(2, 3, 5)], {}),
    "lu_solve": (lambda m, a, b: m.linalg.lu_solve(*m.linalg.lu_factor(a), b), [wellcond(2, 3, 3), randn(2, 3, 2)], {}),
    "lu_solve_adjoint": (lambda m, a, b: m.linalg.lu_solve(*m.linalg.lu_factor(a), b, adjoint=True),
                         [wellcond(3, 3), randn(3, 2)], {}),
    "lu_solve_right": (lambda m, a, b: m.linalg.lu_solve(*m.linalg.lu_factor(a), b, left=False),
                       [wellcond(3, 3), randn(4, 3)], {}),
    "lu_solve_right_adjoint": (lambda m, a, b: m.linalg.lu_solve(*m.linalg.lu_factor(a), b, left=False, adjoint=True),
                               [wellcond(3, 3), randn(4, 3)], {}),
    "lstsq": (lambda m, a, b: m.linalg.lstsq(a, b), [randn(5, 3), randn(5, 2)], {}),
    "lstsq_gelsd": (lambda m, a, b: m.linalg.lstsq(a, b, driver="gelsd"), [randn(2, 5, 3), randn(2, 5, 2)], {}),
    "lstsq_gels": (lambda m, a, b: m.linalg.lstsq(a, b, driver="gels"), [randn(5, 3), randn(5, 2)], {}),
    "lstsq_gelss_vector": (lambda m, a, b: m.linalg.lstsq(a, b, driver="gelss"), [randn(5, 3), randn(5)], {}),
    "cond": (lambda m, a: m.linalg.cond(a), [wellcond(2, 3, 3)], {}),
    # PyTorch's own backward of cond with these norms fails (it writes into inv_ex's output)
    "cond_fro": (lambda m, a: m.linalg.cond(a, "fro"), [wellcond(3, 3)], {"torch_grad": False}),
    "cond_1": (lambda m, a: m.linalg.cond(a, 1), [wellcond(3, 3)], {"torch_grad": False}),
    "cond_-2": (lambda m, a: m.linalg.cond(a, -2), [randn(3, 4)], {}),
    "householder_product": (lambda m, a, tau: m.linalg.householder_product(a, tau), [randn(2, 4, 3), randn(2, 2)], {}),
}

for _ord in (2, 1, math.inf, -math.inf, 3, 0.5, -1, 0):
    CASES[f"vector_norm_{_ord}"] = (lambda m, x, o=_ord: m.linalg.vector_norm(x, o), [randn(2, 3, 4)],
                                    {"grad": _ord != 0})
CASES["vector_norm_dim"] = (lambda m, x: m.linalg.vector_norm(x, 3, dim=(0, 2), keepdim=True), [randn(2, 3, 4)], {})
for _ord in ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf):
    CASES[f"matrix_norm_{_ord}"] = (lambda m, x, o=_ord: m.linalg.matrix_norm(x, o), [randn(2, 3, 4)], {})
CASES["matrix_norm_dim_keepdim"] = (lambda m, x: m.linalg.matrix_norm(x, 1, dim=(2, 0), keepdim=True),
                                    [randn(3, 2, 4)], {})
CASES["matrix_norm_nuc_keepdim"] = (lambda m, x: m.linalg.matrix_norm(x, "nuc", dim=(0, 2), keepdim=True),
                                    [randn(3, 2, 4)], {})
CASES["norm_default"] = (lambda m, x: m.linalg.norm(x), [randn(2, 3, 4)], {})
CASES["norm_vector_ord"] = (lambda m, x: m.linalg.norm(x, 3), [randn(5)], {})
CASES["norm_matrix_ord"] = (lambda m, x: m.linalg.norm(x, -math.inf), [randn(3, 4)], {})
CASES["norm_dim_int"] = (lambda m, x: m.linalg.norm(x, 1, dim=1), [randn(3, 4)], {})
CASES["norm_dim_pair"] = (lambda m, x: m.linalg.norm(x, "nuc", dim=(1, 2)), [randn(2, 3, 4)], {})

# PyTorch's torch.* spellings and Tensor methods
CASES.update({
    "torch.det": (lambda m, a: m.det(a), [wellcond(3, 3)], {}),
    "Tensor.det": (lambda m, a: a.det(), [wellcond(2, 3, 3)], {}),
    "logdet": (lambda m, a: m.logdet(a), [spd(2, 3, 3)], {}),
    "Tensor.logdet_negative": (lambda m, a: a.logdet(), [np.diag([1.0, -2.0, 3.0])], {"grad": False}),
    "Tensor.slogdet": (lambda m, a: a.slogdet(), [randn(3, 3)], {}),
    "inverse": (lambda m, a: m.inverse(a), [wellcond(3, 3)], {}),
    "Tensor.inverse": (lambda m, a: a.inverse(), [wellcond(2, 3, 3)], {}),
    "pinverse": (lambda m, a: a.pinverse(), [randn(4, 3)], {}),
    "pinverse_rcond": (lambda m, a: m.pinverse(a, rcond=0.5), [randn(4, 3)], {"grad": False}),
    "torch.cholesky": (lambda m, a: m.cholesky(a), [spd(3, 3)], {"gradcheck": False}),
    "Tensor.cholesky_upper": (lambda m, a: a.cholesky(upper=True), [spd(3, 3)], {"gradcheck": False}),
    "cholesky_solve": (lambda m, b, a: m.cholesky_solve(b, m.linalg.cholesky(a)), [randn(2, 3, 2), spd(2, 3, 3)],
                       {"gradcheck": False}),
    "Tensor.cholesky_solve_upper": (lambda m, b, u: b.cholesky_solve(u.triu() + 2 * m.eye(3, dtype=u.dtype), upper=True),
                                    [randn(3, 2), randn(3, 3)], {}),
    "cholesky_inverse": (lambda m, l: m.cholesky_inverse(l.tril() + 2 * m.eye(3, dtype=l.dtype)), [randn(3, 3)], {}),
    "Tensor.cholesky_inverse_upper": (lambda m, u: (u.triu() + 2 * m.eye(3, dtype=u.dtype)).cholesky_inverse(upper=True),
                                      [randn(2, 3, 3)], {}),
    "torch.qr": (lambda m, a: m.qr(a), [randn(4, 3)], {}),
    "Tensor.qr_some_false": (lambda m, a: a.qr(some=False), [randn(3, 4)], {}),
    "torch.svd": (lambda m, a: (lambda U, S, V: (S, (U * (m.arange(3) + 1.0).to(a.dtype)) @ V.mT))(*m.svd(a)),
                  [randn(4, 3)], {}),
    "Tensor.svd_some_false": (lambda m, a: (lambda U, S, V: (S, U.shape[-1] + V.shape[-1] + 0 * S.sum()))(*a.svd(some=False)),
                              [randn(2, 4, 3)], {"grad": False}),
    "torch.svd_no_uv": (lambda m, a: m.svd(a, compute_uv=False), [randn(4, 3)], {"grad": False}),
    "torch.lu_solve": (lambda m, a, b: m.lu_solve(b, *m.linalg.lu_factor(a)), [wellcond(3, 3), randn(3, 2)], {}),
    "Tensor.lu_solve": (lambda m, a, b: b.lu_solve(*m.linalg.lu_factor(a)), [wellcond(2, 3, 3), randn(2, 3, 1)], {}),
    "torch.lu": (lambda m, a: m.lu(a), [randn(3, 3)], {}),
    "Tensor.lu_infos": (lambda m, a: a.lu(get_infos=True), [randn(2, 3, 3)], {}),
    "lu_unpack": (lambda m, a: m.lu_unpack(*m.linalg.lu_factor(a)), [randn(2, 4, 4)], {}),
    "triangular_solve": (lambda m, b, a: m.triangular_solve(b, a), [randn(3, 2), wellcond(3, 3)], {}),
    "Tensor.triangular_solve_T": (lambda m, b, a: b.triangular_solve(a, upper=False, transpose=True, unitriangular=True),
                                  [randn(2, 3, 2), wellcond(2, 3, 3)], {}),
    "Tensor.matrix_power": (lambda m, a: a.matrix_power(2), [randn(3, 3)], {}),
    "Tensor.matrix_exp": (lambda m, a: a.matrix_exp(), [randn(3, 3)], {}),
    "torch.matrix_exp": (lambda m, a: m.matrix_exp(a), [randn(2, 2, 2)], {}),
    "inner": (lambda m, a, b: m.inner(a, b), [randn(2, 3), randn(4, 3)], {}),
    "Tensor.inner_scalar": (lambda m, a, b: a.inner(b.sum()), [randn(3), randn(2)], {}),
    "dist": (lambda m, a, b: m.dist(a, b), [randn(3, 4), randn(4)], {}),
    "Tensor.dist_p": (lambda m, a, b: a.dist(b, 3), [randn(3, 4), randn(3, 4)], {}),
    "Tensor.dist_inf": (lambda m, a, b: a.dist(b, math.inf), [randn(5), randn(5)], {}),
    "renorm": (lambda m, a: m.renorm(a, 2, 0, 1.5), [randn(4, 3)], {}),
    "Tensor.renorm_p1": (lambda m, a: a.renorm(1, 1, 2.0), [randn(2, 3, 4)], {}),
    "addr": (lambda m, c, a, b: m.addr(c, a, b, beta=0.5, alpha=2), [randn(3, 4), randn(3), randn(4)], {}),
    "Tensor.addr": (lambda m, c, a, b: c.addr(a, b), [randn(4), randn(3), randn(4)], {}),
    "addbmm": (lambda m, c, a, b: m.addbmm(c, a, b, alpha=0.5), [randn(3, 2), randn(4, 3, 5), randn(4, 5, 2)], {}),
    "Tensor.addbmm_beta0": (lambda m, c, a, b: c.addbmm(a, b, beta=0), [randn(3, 2), randn(2, 3, 5), randn(2, 5, 2)], {}),
    "cov": (lambda m, x: m.cov(x), [randn(3, 6)], {}),
    "cov_1d": (lambda m, x: m.cov(x), [randn(6)], {}),
    "cov_one_row": (lambda m, x: m.cov(x, correction=0), [randn(1, 6)], {}),
    "Tensor.cov_weights": (lambda m, x, a: x.cov(correction=0, fweights=m.tensor([1, 2, 1, 3, 1]), aweights=a.abs() + 0.1),
                           [randn(2, 5), randn(5)], {}),
    "cov_int": (lambda m, x: m.cov(x), [np.arange(12).reshape(3, 4) % 5], {"grad": False}),
    "corrcoef": (lambda m, x: m.corrcoef(x), [randn(3, 6)], {}),
    "Tensor.corrcoef": (lambda m, x: x.corrcoef(), [randn(2, 5)], {}),
    "chain_matmul": (lambda m, a, b, c: m.chain_matmul(a, b, c), [randn(2, 3), randn(3, 4), randn(4, 2)], {}),
    "vander": (lambda m, x: m.vander(x), [randn(4)], {"torch_grad": False}),
    "vander_increasing": (lambda m, x: m.vander(x, N=3, increasing=True), [randn(4)], {"torch_grad": False}),
})


@pytest.mark.parametrize("name", sorted(CASES))
def test_float64_values_and_gradients(name):
    fn, arrays, opts = CASES[name]
    compare(fn, arrays, **opts)


FLOAT32 = ["det", "inv", "solve", "cholesky", "qr_tall", "svd_reduced_wide", "eigh", "pinv_tall", "matrix_exp",
           "lu_factor", "lstsq", "matrix_norm_nuc", "vector_norm_2", "cov", "logdet", "lu_solve"]


@pytest.mark.parametrize("name", FLOAT32)
def test_float32_values_and_gradients(name):
    fn, arrays, opts = CASES[name]
    opts = {k: v for k, v in opts.items() if k != "rtol"}
    compare(fn, arrays, dtype=np.float32, atol=2e-5, rtol=2e-4, gradcheck=False, **opts)


EMPTY = {
    "det": lambda m, a: m.linalg.det(a),
    "inv": lambda m, a: m.linalg.inv(a),
    "slogdet": lambda m, a: m.linalg.slogdet(a),
    "cholesky": lambda m, a: m.linalg.cholesky(a),
    "qr": lambda m, a: m.linalg.qr(a),
    "svdvals": lambda m, a: m.linalg.svdvals(a),
    "eigvalsh": lambda m, a: m.linalg.eigvalsh(a),
    "pinv": lambda m, a: m.linalg.pinv(a),
    "matrix_exp": lambda m, a: m.linalg.matrix_exp(a),
    "lu_factor": lambda m, a: m.linalg.lu_factor(a),
    "matrix_norm": lambda m, a: m.linalg.matrix_norm(a),
    "solve": lambda m, a: m.linalg.solve(a, a),
    "matrix_rank": lambda m, a: m.linalg.matrix_rank(a),
}


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_empty_batch(name):
    compare(EMPTY[name], [np.zeros((0, 3, 3))], grad=False)


@pytest.mark.parametrize("name", ["det", "inv", "matrix_exp", "pinv", "svdvals", "solve"])
def test_non_contiguous_input(name):
    a = np.swapaxes(wellcond(2, 4, 4, seed=3), -1, -2).copy()

    def fn(m, x):
        return EMPTY[name](m, x.mT)  # a transposed view

    compare(fn, [a])


def test_det_gradient_of_a_singular_matrix_matches_torch():
    a = randn(3, 2) @ randn(2, 3)  # rank 2
    compare(lambda m, x: m.linalg.det(x), [a], gradcheck=False)


def test_inv_ex_and_cholesky_ex_report_failures_as_torch():
    a = np.stack([np.eye(3), np.diag([1.0, 0.0, 2.0])])
    want = torch.linalg.inv_ex(torch.tensor(a))
    got = tm.linalg.inv_ex(tm.tensor(a))
    assert got.info.dtype == np.int32 and got.info.tolist() == want.info.tolist()
    np.testing.assert_allclose(got.inverse.detach().numpy()[0], np.eye(3))
    b = np.stack([np.eye(3), np.diag([1.0, -1.0, 2.0])])
    want = torch.linalg.cholesky_ex(torch.tensor(b))
    got = tm.linalg.cholesky_ex(tm.tensor(b))
    assert got.info.tolist() == want.info.tolist() == [0, 2]
    want = torch.linalg.lu_factor_ex(torch.tensor(a))
    got = tm.linalg.lu_factor_ex(tm.tensor(a))
    assert got.info.tolist() == want.info.tolist()
    np.testing.assert_allclose(got.LU.detach().numpy(), want.LU.detach().numpy())


def test_lu_of_a_singular_matrix_matches_torch():
    a = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
    compare(lambda m, x: m.linalg.lu(x)[1:], [a], grad=False)


def test_qr_gradient_refusals_match_torch():
    def backward(mode):
        def fn(m):
            x = m.tensor(randn(4, 3), requires_grad=True)
            out = m.linalg.qr(x, mode=mode)
            (out[0].sum() if mode == "complete" else out[1].sum()).backward()
        return fn

    same_error(backward("complete"))
    same_error(backward("r"))


def test_linalg_error_is_a_runtime_error():
    assert issubclass(tm.linalg.LinAlgError, RuntimeError)


ERRORS = {
    "inv_singular": (lambda m: m.linalg.inv(m.zeros(2, 2, dtype=m.float64)), True),
    "inv_singular_batch": (lambda m: m.linalg.inv(m.stack([m.eye(2), m.tensor([[1.0, 2.0], [2.0, 4.0]])])), True),
    "cholesky_not_pd": (lambda m: m.linalg.cholesky(-m.eye(3)), True),
    "cholesky_not_pd_batch": (lambda m: m.linalg.cholesky(m.stack([m.eye(3), m.diag(m.tensor([1.0, 1.0, -1.0]))])), True),
    "solve_singular": (lambda m: m.linalg.solve(m.zeros(2, 2), m.ones(2)), True),
    "lu_factor_singular": (lambda m: m.linalg.lu_factor(m.zeros(3, 3)), True),
    "inv_non_square": (lambda m: m.linalg.inv(m.zeros(2, 3)), True),
    "inv_int": (lambda m: m.linalg.inv(m.zeros(2, 2, dtype=m.int64)), True),
    "det_1d": (lambda m: m.linalg.det(m.zeros(3)), True),
    "det_half": (lambda m: m.linalg.det(m.zeros(2, 2, dtype=m.float16)), True),
    "inv_half": (lambda m: m.linalg.inv(m.zeros(2, 2, dtype=m.float16)), True),
    "svd_half": (lambda m: m.linalg.svd(m.zeros(2, 2, dtype=m.float16)), True),
    "solve_singular_batch": (lambda m: m.linalg.solve(m.zeros(2, 2, 2), m.ones(2, 2)), True),
    "slogdet_non_square": (lambda m: m.linalg.slogdet(m.zeros(3, 2)), True),
    "cholesky_int": (lambda m: m.linalg.cholesky(m.eye(2, dtype=m.int64)), True),
    "solve_shapes": (lambda m: m.linalg.solve(m.eye(3), m.ones(4, 2)), True),
    "solve_right_vector": (lambda m: m.linalg.solve(m.eye(3), m.ones(3), left=False), True),
    "solve_dtypes": (lambda m: m.linalg.solve(m.eye(3), m.ones(3, 2, dtype=m.float64)), False),
    "solve_triangular_vector": (lambda m: m.linalg.solve_triangular(m.eye(3), m.ones(3), upper=True), False),
    "qr_mode": (lambda m: m.linalg.qr(m.eye(3), mode="full"), False),
    "svd_int": (lambda m: m.linalg.svd(m.eye(3, dtype=m.int64)), False),
    "eigh_non_square": (lambda m: m.linalg.eigh(m.zeros(2, 3)), False),
    "eigh_uplo": (lambda m: m.linalg.eigh(m.eye(3), UPLO="X"), False),
    "pinv_int": (lambda m: m.linalg.pinv(m.eye(3, dtype=m.int64)), False),
    "matrix_power_non_square": (lambda m: m.linalg.matrix_power(m.zeros(2, 3), 2), False),
    "matrix_power_1d": (lambda m: m.linalg.matrix_power(m.zeros(3), 2), False),
    "matrix_exp_non_square": (lambda m: m.linalg.matrix_exp(m.zeros(2, 3)), False),
    "vector_norm_int": (lambda m: m.linalg.vector_norm(m.arange(3)), True),
    "matrix_norm_bad_ord": (lambda m: m.linalg.matrix_norm(m.eye(3), 3), False),
    "matrix_norm_1d": (lambda m: m.linalg.matrix_norm(m.ones(3)), False),
    "norm_3d_ord": (lambda m: m.linalg.norm(m.ones(2, 2, 2), 2), False),
    "multi_dot_one": (lambda m: m.linalg.multi_dot([m.eye(2)]), False),
    "multi_dot_shapes": (lambda m: m.linalg.multi_dot([m.eye(2), m.eye(3)]), False),
    "multi_dot_3d": (lambda m: m.linalg.multi_dot([m.eye(2), m.ones(2, 2, 2), m.eye(2)]), False),
    "cross_size": (lambda m: m.linalg.cross(m.ones(4), m.ones(4)), False),
    "cross_ndim": (lambda m: m.linalg.cross(m.ones(2, 3), m.ones(3)), True),
    "vecdot_dtypes": (lambda m: m.linalg.vecdot(m.ones(3), m.ones(3, dtype=m.float64)), False),
    "tensorinv_shape": (lambda m: m.linalg.tensorinv(m.ones(2, 3, 4), ind=1), False),
    "tensorinv_ind": (lambda m: m.linalg.tensorinv(m.ones(2, 2), ind=0), False),
    "lstsq_rows": (lambda m: m.linalg.lstsq(m.ones(4, 3), m.ones(5, 2)), False),
    "lstsq_driver": (lambda m: m.linalg.lstsq(m.ones(4, 3), m.ones(4, 2), driver="nope"), False),
    "lu_no_pivot": (lambda m: m.linalg.lu_factor(m.eye(3), pivot=False), False),
    "householder_wide": (lambda m: m.linalg.householder_product(m.ones(2, 3), m.ones(2)), False),
    "inner_shapes": (lambda m: m.inner(m.ones(2, 3), m.ones(4)), False),
    "cov_3d": (lambda m: m.cov(m.ones(2, 2, 2)), False),
    "cov_float_fweights": (lambda m: m.cov(m.ones(2, 3), fweights=m.ones(3)), False),
    "renorm_1d": (lambda m: m.renorm(m.ones(3), 2, 0, 1.0), False),
    "addr_2d": (lambda m: m.addr(m.ones(2, 2), m.ones(2, 1), m.ones(2)), False),
    "chain_matmul_empty": (lambda m: m.chain_matmul(), False),
    "vander_2d": (lambda m: m.vander(m.ones(2, 2)), False),
    "lu_unpack_pivots_dtype": (lambda m: m.lu_unpack(m.eye(3), m.ones(3, dtype=m.int64)), False),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_bad_input_raises_torch_class(name):
    fn, message = ERRORS[name]
    same_error(fn, match_message=message)


def test_linalg_namespace_has_torch_names():
    left_out = {"eig", "eigvals", "ldl_factor", "ldl_factor_ex", "ldl_solve"}  # complex results; LDL
    names = [n for n in dir(torch.linalg) if not n.startswith("_") and callable(getattr(torch.linalg, n))]
    missing = [n for n in names if not hasattr(tm.linalg, n) and n not in left_out]
    assert not missing, missing
