"""The PyTorch op surface (issue 9): every op compared with PyTorch by ``check_op`` (values,
dtype, shape, gradients, float64 gradcheck), on ordinary, broadcast, 0-d and empty inputs."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, check_op, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

# (id, input shapes, function applied to tinymm and torch alike, check_op keywords)
UNARY = {
    "sin": ({}, lambda x: x.sin()),
    "cos": ({}, lambda x: x.cos()),
    "tan": (dict(low=-1.2, high=1.2), lambda x: x.tan()),
    "asin": (dict(low=-0.9, high=0.9), lambda x: x.asin()),
    "acos": (dict(low=-0.9, high=0.9), lambda x: x.acos()),
    "atan": ({}, lambda x: x.atan()),
    "sinh": ({}, lambda x: x.sinh()),
    "cosh": ({}, lambda x: x.cosh()),
    "tanh": ({}, lambda x: x.tanh()),
    "asinh": ({}, lambda x: x.asinh()),
    "acosh": (dict(low=1.2, high=3.0), lambda x: x.acosh()),
    "atanh": (dict(low=-0.9, high=0.9), lambda x: x.atanh()),
    "rsqrt": (dict(positive=True), lambda x: x.rsqrt()),
    "reciprocal": (dict(positive=True), lambda x: x.reciprocal()),
    "square": ({}, lambda x: x.square()),
    "exp2": ({}, lambda x: x.exp2()),
    "log2": (dict(positive=True), lambda x: x.log2()),
    "log10": (dict(positive=True), lambda x: x.log10()),
    "log1p": (dict(low=-0.5, high=2.0), lambda x: x.log1p()),
    "expm1": ({}, lambda x: x.expm1()),
    "erf": ({}, lambda x: x.erf()),
    "floor": ({}, lambda x: x.floor()),
    "ceil": ({}, lambda x: x.ceil()),
    "trunc": ({}, lambda x: x.trunc()),
    "round": ({}, lambda x: x.round()),
    "round_decimals": ({}, lambda x: x.round(decimals=1)),
    "sign": ({}, lambda x: x.sign()),
    "neg": ({}, lambda x: x.neg()),
    "norm": ({}, lambda x: x.norm()),
    "norm_p1_dim": ({}, lambda x: x.norm(p=1, dim=-1)),
    "norm_p3_keep": ({}, lambda x: x.norm(p=3, dim=0, keepdim=True)),
    "norm_inf": ({}, lambda x: x.norm(p=float("inf"), dim=1)),
    "t": ({}, lambda x: x.t()),
}


@pytest.mark.parametrize("shape", [(3, 4), (), (0, 4)], ids=["2d", "0d", "empty"])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_ops_match_torch(name, shape):
    kw, fn = UNARY[name]
    if name.startswith("norm_") and len(shape) < 2:
        pytest.skip("dim-wise norms need a 2-D input")
    if name == "round_decimals" or name == "t" and shape == (0, 4):
        kw = dict(kw, gradcheck=False) if name == "round_decimals" else kw
    check_op([shape], fn, **kw)


@pytest.mark.parametrize("name", ["floor", "ceil", "trunc", "round", "sign", "neg", "square"])
def test_unary_ops_on_integers_keep_integers(name):
    check_op([], UNARY[name][1], inputs=[np.array([[-3, 0, 5], [7, -1, 2]], dtype=np.int64)])


BINARY = {
    "add_alpha": (lambda a, b: a.add(b, alpha=2.5), {}),
    "sub_alpha": (lambda a, b: a.sub(b, alpha=0.5), {}),
    "mul": (lambda a, b: a.mul(b), {}),
    "div": (lambda a, b: a.div(b), dict(positive=True)),
    "div_trunc": (lambda a, b: a.div(b, rounding_mode="trunc"), dict(positive=True, gradcheck=False)),
    "div_floor": (lambda a, b: a.div(b, rounding_mode="floor"), dict(gradcheck=False)),
    "remainder": (lambda a, b: a % b, dict(gradcheck=False)),
    "fmod": (lambda a, b: a.fmod(b), dict(gradcheck=False)),
    "floordiv": (lambda a, b: a // b, dict(grad=False)),
    "copysign": (lambda a, b: a.copysign(b), {}),
    "logaddexp": (lambda a, b: a.logaddexp(b), {}),
    "pow": (lambda a, b: a**b, dict(positive=True)),
    "maximum": (lambda a, b: a.maximum(b), {}),
    "lerp": (lambda a, b: a.lerp(b, 0.3), {}),
}


@pytest.mark.parametrize("shapes", [[(3, 4), (3, 4)], [(2, 1, 4), (3, 1)], [(), (2, 3)], [(0, 3), (3,)]],
                         ids=["same", "broadcast", "0d", "empty"])
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_ops_match_torch(name, shapes):
    fn, kw = BINARY[name]
    check_op(shapes, fn, **kw)


def test_lerp_with_tensor_weight_and_remainder_on_integers():
    check_op([(3, 4), (3, 4), (4,)], lambda a, b, w: a.lerp(b, w))
    ints = [np.array([-7, -3, 0, 4, 9]), np.array([2, -2, 3, 3, -4])]
    for fn in (lambda a, b: a % b, lambda a, b: a // b, lambda a, b: a.fmod(b),
               lambda a, b: a.div(b, rounding_mode="trunc"), lambda a, b: a.div(b, rounding_mode="floor"),
               lambda a, b: a / b, lambda a, b: a & b, lambda a, b: a | b, lambda a, b: a ^ b,
               lambda a, b: a.abs() << 1, lambda a, b: a >> 1, lambda a, b: ~a, lambda a, b: 3 & a,
               lambda a, b: 5 ^ b, lambda a, b: 7 % b, lambda a, b: 7 // b, lambda a, b: a * True):
        check_op([], fn, inputs=ints)


def test_bool_operators_and_logical_ops():
    bools = [np.array([True, False, True, False]), np.array([True, True, False, False])]
    for fn in (lambda a, b: a & b, lambda a, b: a | b, lambda a, b: a ^ b, lambda a, b: ~a,
               lambda a, b: a.logical_and(b), lambda a, b: a.logical_or(b), lambda a, b: a.logical_xor(b),
               lambda a, b: a.logical_not(), lambda a, b: a.bitwise_not(), lambda a, b: a + b, lambda a, b: a * 3,
               lambda a, b: True ^ a):
        check_op([], fn, inputs=bools)
    check_op([], lambda a: (~a, a.logical_not()), lambda a: (~a, a.logical_not()), inputs=[np.array([0, 3, -1])]) \
        if False else check_op([], lambda a: a.logical_not(), inputs=[np.array([0, 3, -1])])


def test_value_tests_isnan_isinf_isfinite_isclose():
    a = np.array([1.0, np.nan, np.inf, -np.inf, 0.0], np.float32)
    b = np.array([1.0 + 1e-7, np.nan, np.inf, 1.0, 1e-9], np.float32)
    for fn in (lambda a, b: a.isnan(), lambda a, b: a.isinf(), lambda a, b: a.isfinite(),
               lambda a, b: a.isclose(b), lambda a, b: a.isclose(b, equal_nan=True),
               lambda a, b: a.isclose(b, rtol=0.0, atol=1e-8)):
        check_op([], fn, inputs=[a, b], grad=False)
    assert tm.allclose(tm.tensor([1.0, 2.0]), tm.tensor([1.0, 2.0 + 1e-6])) is True
    assert tm.tensor([1, 2]).isfinite().detach().numpy().all()


REDUCTIONS = {
    "prod": lambda x: x.prod(),
    "prod_dim": lambda x: x.prod(dim=-1),
    "prod_keep": lambda x: x.prod(0, keepdim=True),
    "cumsum": lambda x: x.cumsum(0),
    "cumsum_neg": lambda x: x.cumsum(-1),
    "cumprod": lambda x: x.cumprod(-1),
    "cummax": lambda x: x.cummax(-1).values,
    "cummin": lambda x: x.cummin(0)[0],
    "logcumsumexp": lambda x: x.logcumsumexp(-1),
    "sort": lambda x: x.sort().values,
    "sort_desc": lambda x: x.sort(dim=0, descending=True)[0],
    "topk": lambda x: x.topk(2).values,
    "topk_small": lambda x: x.topk(1, dim=0, largest=False).values,
    "amax": lambda x: x.amax(dim=-1),
    "amin": lambda x: x.amin(),
    "std": lambda x: x.std(dim=0),
    "var_mean": lambda x: both(torch_or_tm(x).var_mean(x, dim=-1)),
    "std_mean": lambda x: both(torch_or_tm(x).std_mean(x, dim=0, keepdim=True)),
    "sum_dtype": lambda x: x.sum(dim=1, dtype=tm.float64 if isinstance(x, tm.Tensor) else torch.float64),
    "norm": lambda x: x.norm(dim=(0, 1)),
    "median": lambda x: x.median(dim=-1).values,
    "kthvalue": lambda x: x.kthvalue(2, dim=-1).values,
}


def both(pair):
    return pair[0] * 2 + pair[1]


def torch_or_tm(x):
    return tm if isinstance(x, tm.Tensor) else torch


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions_scans_and_sorting_match_torch(name):
    check_op([(3, 4)], REDUCTIONS[name])


@pytest.mark.parametrize("name", ["prod", "cumsum", "cumprod", "logcumsumexp", "cummax", "sort", "amax", "norm"])
def test_reductions_on_0d_tensors_with_dim_0_and_minus_1(name):
    fns = {
        "prod": lambda x: x.prod(0) + x.prod(-1),
        "cumsum": lambda x: x.cumsum(0),
        "cumprod": lambda x: x.cumprod(-1),
        "logcumsumexp": lambda x: x.logcumsumexp(0),
        "cummax": lambda x: x.cummax(0).values,
        "sort": lambda x: x.sort(-1).values,
        "amax": lambda x: x.amax(0),
        "norm": lambda x: x.norm(dim=0),
    }
    check_op([()], fns[name])
    check_op([()], lambda x: x.sum(0) + x.mean(-1) + x.max(0).values + x.logsumexp(0))


def test_indices_of_sort_topk_cummax_argsort_match_torch(rng):
    a = rng.standard_normal((4, 6)).astype(np.float32)
    x, t = tm.tensor(a), torch.tensor(a)
    np.testing.assert_array_equal(x.sort(-1).indices.detach().numpy(), t.sort(-1).indices.detach().numpy())
    np.testing.assert_array_equal(x.argsort(0, descending=True).detach().numpy(), t.argsort(0, descending=True).detach().numpy())
    np.testing.assert_array_equal(x.topk(3, 1).indices.detach().numpy(), t.topk(3, 1).indices.detach().numpy())
    np.testing.assert_array_equal(x.cummax(1).indices.detach().numpy(), t.cummax(1).indices.detach().numpy())
    np.testing.assert_array_equal(x.cummin(0).indices.detach().numpy(), t.cummin(0).indices.detach().numpy())
    ties = np.array([1.0, 3.0, 3.0, 2.0, 3.0, np.nan, 1.0], np.float32)
    np.testing.assert_array_equal(tm.tensor(ties).cummax(0).indices.detach().numpy(), torch.tensor(ties).cummax(0).indices.detach().numpy())
    np.testing.assert_array_equal(tm.tensor(ties).sort(descending=True).indices.detach().numpy(),
                                  torch.tensor(ties).sort(descending=True, stable=True).indices.detach().numpy())


def test_cumprod_and_prod_gradients_with_zeros():
    a = np.array([[2.0, 0.0, 3.0, 0.5], [1.5, -1.0, 0.0, 0.0]], np.float32)
    check_op([], lambda x: x.cumprod(1), inputs=[a])
    check_op([], lambda x: x.prod(1), inputs=[a])
    check_op([], lambda x: x.prod(), inputs=[a])
    # zeros first, last, repeated and in every lane, along a middle axis (the O(n) backward's cases)
    rng = np.random.default_rng(3)
    b = rng.standard_normal((3, 7, 2))
    b[:, 0, 0] = 0.0
    b[1, 3:5, :] = 0.0
    b[2, 6, 1] = 0.0
    check_op([], lambda x: x.cumprod(1), inputs=[b])


def test_any_all_and_integer_sums_and_cumsums():
    b = np.array([[True, False, True], [False, False, True]])
    for fn in (lambda x: x.any(), lambda x: x.all(dim=1), lambda x: x.any(0, keepdim=True), lambda x: x.sum(),
               lambda x: x.cumsum(1), lambda x: x.prod(1), lambda x: x.count_nonzero()):
        check_op([], fn, inputs=[b])
    i = np.array([[3, -1, 0], [2, 5, 1]], np.int32)
    for fn in (lambda x: x.sum(), lambda x: x.sum(0), lambda x: x.cumsum(1), lambda x: x.prod(),
               lambda x: x.any(), lambda x: x.all(1), lambda x: x.sort(1).values, lambda x: x.topk(2).values):
        check_op([], fn, inputs=[i])


SHAPE_INDEX = {
    "flip": ([(2, 3, 4)], lambda x: x.flip(0, 2)),
    "roll": ([(3, 4)], lambda x: x.roll(1, 1)),
    "roll_flat": ([(3, 4)], lambda x: x.roll(5)),
    "roll_two": ([(3, 4)], lambda x: x.roll((1, -2), (0, 1))),
    "repeat": ([(2, 3)], lambda x: x.repeat(2, 1, 3)),
    "repeat_interleave": ([(2, 3)], lambda x: x.repeat_interleave(2, dim=1)),
    "repeat_interleave_flat": ([(2, 3)], lambda x: x.repeat_interleave(3)),
    "tril": ([(4, 5)], lambda x: x.tril()),
    "tril_k": ([(2, 4, 5)], lambda x: x.tril(-1)),
    "triu_k": ([(4, 5)], lambda x: x.triu(2)),
    "diag_vec": ([(4,)], lambda x: x.diag(1)),
    "diag_mat": ([(4, 5)], lambda x: x.diag(-1)),
    "diagonal": ([(2, 3, 4)], lambda x: x.diagonal(1, 1, 2)),
    "diagonal_neg": ([(3, 4, 2)], lambda x: x.diagonal(-1, 0, -1)),
    "unfold": ([(2, 7)], lambda x: x.unfold(1, 3, 2)),
    "unflatten": ([(2, 12)], lambda x: x.unflatten(1, (3, -1))),
    "movedim": ([(2, 3, 4)], lambda x: x.movedim(0, -1)),
    "narrow": ([(4, 5)], lambda x: x.narrow(1, 1, 3)),
    "gather": ([(3, 4)], lambda x: x.gather(1, idx([[0, 0, 3], [1, 2, 1], [3, 3, 3]], x))),
    "gather0": ([(3, 4)], lambda x: x.gather(0, idx([[0, 2], [2, 2]], x))),
    "index_select": ([(3, 4)], lambda x: x.index_select(1, idx([3, 0, 3], x))),
    "masked_select": ([(3, 4)], lambda x: x.masked_select(x > 0)),
    "masked_select_bcast": ([(3, 4)], lambda x: x.masked_select(idx([True, False, True, True], x))),
    "masked_fill": ([(3, 4)], lambda x: x.masked_fill(x < 0, 2.0)),
    "scatter": ([(3, 4), (2, 4)], lambda x, s: x.scatter(0, idx([[0, 1, 2, 0], [2, 0, 1, 1]], x), s)),
    "scatter_value": ([(3, 4)], lambda x: x.scatter(1, idx([[0], [2], [3]], x), 1.5)),
    "scatter_add": ([(3, 4), (3, 2)], lambda x, s: x.scatter_add(1, idx([[0, 0], [1, 3], [2, 2]], x), s)),
    "scatter_reduce_sum": ([(5,), (6,)], lambda x, s: x.scatter_reduce(0, idx([0, 1, 0, 1, 2, 1], x), s, "sum")),
    "scatter_reduce_mean": ([(5,), (6,)], lambda x, s: x.scatter_reduce(0, idx([0, 1, 0, 1, 2, 1], x), s, "mean")),
    "scatter_reduce_amax": ([(5,), (6,)], lambda x, s: x.scatter_reduce(0, idx([0, 1, 0, 1, 2, 1], x), s, "amax")),
    "scatter_reduce_amin_noself": ([(5,), (6,)],
                                   lambda x, s: x.scatter_reduce(0, idx([0, 1, 0, 1, 2, 1], x), s, "amin", include_self=False)),
    "scatter_reduce_prod": ([(5,), (6,)], lambda x, s: x.scatter_reduce(0, idx([0, 1, 0, 1, 2, 1], x), s, "prod")),
    "where_scalar": ([(3, 4)], lambda x: x * lib(x).where(x > 0, 1.0, -2.0).to(x.dtype)),
    "where_method": ([(3, 4), (4,)], lambda x, y: x.where(x > 0, y)),
    "einsum_mm": ([(3, 4), (4, 5)], lambda a, b: lib(a).einsum("ij,jk->ik", a, b)),
    "einsum_batch": ([(2, 3, 4), (2, 4, 5)], lambda a, b: lib(a).einsum("bij,bjk->bik", a, b)),
    "einsum_trace": ([(4, 4)], lambda a: lib(a).einsum("ii", a)),
    "einsum_diag": ([(4, 4)], lambda a: lib(a).einsum("ii->i", a)),
    "einsum_outer_implicit": ([(3,), (4,)], lambda a, b: lib(a).einsum("i,j", a, b)),
    "einsum_ellipsis": ([(2, 3, 4), (4,)], lambda a, b: lib(a).einsum("...j,j->...", a, b)),
    "einsum_sum_only": ([(3, 4)], lambda a: lib(a).einsum("ij->", a)),
    "einsum_three": ([(2, 3), (3, 4), (4,)], lambda a, b, c: lib(a).einsum("ij,jk,k->i", a, b, c)),
    "meshgrid": ([(3,), (4,)], lambda a, b: sum_all(lib(a).meshgrid(a, b, indexing="ij"))),
    "meshgrid_xy": ([(3,), (4,)], lambda a, b: lib(a).meshgrid(a, b, indexing="xy")[0] * 2 + lib(a).meshgrid(a, b, indexing="xy")[1]),
    "tile": ([(2, 3)], lambda x: x.tile((2,))),
    "getitem_int_then_array": ([(2, 3, 4)], lambda x: x[0, :, idx([1, 3], x)]),
    "getitem_array_int_array": ([(2, 3, 4)], lambda x: x[idx([1, 0], x), 1, idx([3, 2], x)]),
    "getitem_int_slice_array": ([(2, 3, 4)], lambda x: x[1, 1:, idx([0, 0, 2], x)]),
    "swapaxes": ([(2, 3, 4)], lambda x: x.swapaxes(0, 2)),
    "mT": ([(2, 3, 4)], lambda x: x.mT),
}


def lib(x):
    return tm if isinstance(x, tm.Tensor) else torch


def idx(values, like):
    return (tm.tensor if isinstance(like, tm.Tensor) else torch.tensor)(values)


def sum_all(ts):
    return ts[0] * 2 + ts[1]


@pytest.mark.parametrize("name", sorted(SHAPE_INDEX))
def test_shape_and_index_ops_match_torch(name):
    shapes, fn = SHAPE_INDEX[name]
    check_op(shapes, fn)


def test_nonzero_argwhere_and_where_with_one_argument():
    a = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]], np.float32)
    check_op([], lambda x: x.nonzero(), inputs=[a], grad=False)
    check_op([], lambda x: lib(x).where(x > 0)[1], inputs=[a], grad=False)
    check_op([], lambda x: x.argwhere(), inputs=[a], grad=False)
    check_op([], lambda x: lib(x).where(x > 0, 1, 0), inputs=[a], grad=False)
    check_op([], lambda x: lib(x).where(x > 0, True, False), inputs=[a], grad=False)


def test_shape_ops_on_integer_and_empty_tensors():
    i = np.arange(12).reshape(3, 4)
    for fn in (lambda x: x.flip(1), lambda x: x.roll(2, 0), lambda x: x.tril(), lambda x: x.triu(1),
               lambda x: x.repeat(2, 2), lambda x: x.repeat_interleave(2, 0), lambda x: x.diag(),
               lambda x: x.gather(1, idx([[0], [1], [3]], x)), lambda x: x.unfold(1, 2, 1), lambda x: x.t(),
               lambda x: x.scatter_add(0, idx([[2, 0, 1, 0]], x), idx([[1, 2, 3, 4]], x))):
        check_op([], fn, inputs=[i])
    check_op([(0, 3)], lambda x: x.flip(0).tril().roll(1, 1).repeat(2, 1))
    check_op([(0, 3)], lambda x: x.sort(1).values.cumsum(0))


def test_repeat_interleave_with_tensor_counts():
    check_op([(3, 2)], lambda x: x.repeat_interleave(idx([1, 0, 3], x), dim=0))


def test_t_and_reshape_refuse_bad_input_with_the_shapes_in_the_message():
    with pytest.raises(RuntimeError, match=r"\(2, 3, 4\)"):
        tm.zeros(2, 3, 4).t()
    with pytest.raises(RuntimeError, match="only one dimension can be inferred"):
        tm.zeros(2, 3).reshape(-1, -1)
    with pytest.raises(RuntimeError, match=r"\(2, 3\).*\(4, 4\)"):
        tm.zeros(2, 3) @ tm.zeros(4, 4)
    with pytest.raises(RuntimeError, match="permutation"):
        tm.zeros(2, 3).permute(0, 0)
    with pytest.raises(RuntimeError, match=r"\(2, 3\).*\(4,\)"):
        tm.zeros(2, 3) + tm.zeros(4)
    with pytest.raises(RuntimeError, match="k=5"):
        tm.zeros(2, 3).topk(5)
    with pytest.raises(TypeError):
        tm.zeros(2, 6).reshape(2.9, 6)
    with pytest.raises(TypeError):
        tm.zeros(2.5)
    with pytest.raises(RuntimeError):
        tm.linspace(0, 1, 5, dtype=tm.bool)
    with pytest.raises(RuntimeError):
        tm.tensor([1.0]) & tm.tensor([1.0])


def test_linspace_truncates_toward_zero_for_integer_dtypes():
    for dtype, tdtype in ((tm.int32, torch.int32), (tm.int64, torch.int64)):
        np.testing.assert_array_equal(tm.linspace(-3.5, 2.7, 7, dtype=dtype).detach().numpy(),
                                      torch.linspace(-3.5, 2.7, 7, dtype=tdtype).detach().numpy())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_arange_is_pytorchs_to_the_last_bit(dtype):
    """Random float ranges, short and past one 32768-value chunk per thread, both directions:
    PyTorch's values exactly (its kernel counts on from each vector's base; see
    ``tinymm.fused_rounding``), with tinymm's thread count given to PyTorch too."""
    rng = np.random.default_rng(3)
    before = torch.get_num_threads()
    torch.set_num_threads(tm.get_num_threads())
    try:
        for trial in range(40):
            start, step = float(rng.uniform(-50, 50)), float(rng.uniform(0.001, 3)) * (1 if trial % 3 else -1)
            n = int(rng.integers(1, 3000) if trial % 2 else rng.integers(30000, 90000))
            end = start + step * (n - 0.5)
            got = tm.arange(start, end, step, dtype=getattr(tm, dtype)).numpy()
            np.testing.assert_array_equal(got, torch.arange(start, end, step, dtype=getattr(torch, dtype)).numpy())
    finally:
        torch.set_num_threads(before)


def test_pow_gradients_at_zero_base_and_for_negative_scalar_bases():
    a = np.array([0.0, 0.0, 1.5, 2.0], np.float32)
    b = np.array([0.0, 2.0, 0.0, -1.0], np.float32)
    check_op([], lambda x, y: x**y, inputs=[a, b], gradcheck=False)
    check_op([], lambda y: (-5.5) ** y, inputs=[np.array([1.0, 2.0, 0.5], np.float32)], gradcheck=False)
    check_op([], lambda y: 0.0 ** y, inputs=[np.array([1.0, 2.0, 0.5], np.float32)], gradcheck=False)


def test_max_with_nan_routes_the_gradient_to_the_nan():
    check_op([], lambda x: x.max(), inputs=[np.array([1.0, np.nan, 3.0], np.float32)], gradcheck=False)
    check_op([], lambda x: x.amin(dim=1), inputs=[np.array([[1.0, np.nan], [3.0, 2.0]], np.float32)], gradcheck=False)


def test_float16_mean_and_var_over_more_than_65504_elements():
    a = np.random.default_rng(0).uniform(0, 1, 70000).astype(np.float16)
    check_op([], lambda x: x.mean(), inputs=[a], gradcheck=False, atol=1e-3, rtol=1e-2)
    check_op([], lambda x: x.var(), inputs=[a], gradcheck=False, atol=1e-3, rtol=1e-2)


def test_device_compares_equal_to_its_string_and_has_type():
    x = tm.zeros(2)
    assert x.device == "cpu" and x.device.type == "cpu" and str(x.device) == "cpu"
    assert tm.device("cuda:0").type == "cuda" and tm.device("cuda:0").index == 0
    assert tm.zeros(2, device=x.device).device == "cpu"


def test_inplace_operators_write_into_the_tensor():
    x = tm.zeros(3)
    y = x
    y += 1
    y *= 3
    assert y is x and x.detach().numpy().tolist() == [3.0, 3.0, 3.0]


def test_setitem_with_integers_and_index_arrays_follows_torch_placement():
    a = np.zeros((2, 3, 4), np.float32)
    v = np.arange(6, dtype=np.float32).reshape(3, 2)
    x, t = tm.tensor(a), torch.tensor(a)
    x[0, :, tm.tensor([1, 3])] = tm.tensor(v)
    t[0, :, torch.tensor([1, 3])] = torch.tensor(v)
    np.testing.assert_array_equal(x.detach().numpy(), t.detach().numpy())
    # recorded in the graph: the value gets its gradient at the torch positions
    check_op([(2, 3, 4), (3, 2)], lambda base, val: _set(base, val))


def _set(base, val):
    y = base * 1
    y[1, :, idx([0, 2], base)] = val * 2
    return y


def test_copy_into_a_clone_routes_the_gradient_to_the_source():
    check_op([(3, 4), (4,)], lambda x, y: x.clone().copy_(y) * x)


def test_inplace_masked_fill_scatter_and_pow_record_gradients():
    check_op([(3, 4)], lambda x: _inplace_chain(x))


def _inplace_chain(x):
    y = x * 2
    y.masked_fill_(y > 0, 0.5)
    y.scatter_add_(1, idx([[0, 0], [1, 3], [2, 2]], x), x[:, :2] * 3)
    y.pow_(2)
    return y


def test_pytorch_positional_spellings():
    check_op([(3, 5)], lambda x: x.var(1, False) + x.std(0, True, True).sum())
    check_op([(3,), (2,)], lambda a, b: lib(a).meshgrid(a, b, indexing=None)[1] if lib(a) is tm else torch.meshgrid(a, b, indexing="ij")[1])
    x = tm.zeros(2, dtype=tm.float64)
    assert tm.ones(3).to(x).dtype == np.float64
