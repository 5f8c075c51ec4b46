"""The PyTorch surface, second pass: Tensor methods and ``tinymm.*`` functions that code
written for PyTorch uses, each compared with PyTorch by ``check_op`` (values, dtype, shape,
gradients, float64 gradcheck) or directly, plus ``tinymm.cuda``, ``Generator``, ``finfo``,
``register_hook``, ``inference_mode``, ``tinymm.utils.data`` and one training script that runs
unchanged under ``import tinymm as torch``."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, check_op, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def both(shapes, fn, **kw):
    """check_op with ``fn(lib, *tensors)`` applied to lib = tinymm and lib = torch."""
    return check_op(shapes, lambda *x: fn(tm, *x), lambda *x: fn(torch, *x), **kw)


def same_error(fn):
    """``fn(lib)`` raises in PyTorch, and tinymm raises an instance of the same class."""
    with pytest.raises(Exception) as want:
        fn(torch)
    with pytest.raises(want.type):
        fn(tm)


# ----------------------------------------------------------------------------- products

PRODUCTS = {
    "mm": ([(3, 4), (4, 5)], lambda m, a, b: a.mm(b)),
    "torch.mm": ([(3, 4), (4, 2)], lambda m, a, b: m.mm(a, b)),
    "bmm": ([(2, 3, 4), (2, 4, 5)], lambda m, a, b: m.bmm(a, b)),
    "dot": ([(4,), (4,)], lambda m, a, b: a.dot(b)),
    "mv": ([(3, 4), (4,)], lambda m, a, b: a.mv(b)),
    "outer": ([(3,), (4,)], lambda m, a, b: m.outer(a, b)),
    "outer_int_float": ([(3,)], lambda m, a: m.outer(m.tensor([1, 2]), a)),
    "addmm": ([(5,), (3, 4), (4, 5)], lambda m, c, a, b: m.addmm(c, a, b, beta=0.5, alpha=2.0)),
    "addmm_default": ([(3, 5), (3, 4), (4, 5)], lambda m, c, a, b: c.addmm(a, b)),
    "baddbmm": ([(1, 3, 5), (2, 3, 4), (2, 4, 5)], lambda m, c, a, b: m.baddbmm(c, a, b, alpha=0.3)),
    "addmv": ([(3,), (3, 4), (4,)], lambda m, c, a, b: m.addmv(c, a, b, beta=2)),
    "addcmul": ([(3, 4), (3, 1), (4,)], lambda m, c, a, b: c.addcmul(a, b, value=0.5)),
    "addcdiv": ([(3, 4), (3, 4), (4,)], lambda m, c, a, b: m.addcdiv(c, a, b.abs() + 1, value=-2)),
    "kron": ([(2, 3), (3, 2)], lambda m, a, b: m.kron(a, b)),
    "kron_ranks": ([(2,), (2, 3)], lambda m, a, b: a.kron(b)),
    "tensordot": ([(2, 3, 4), (3, 4, 5)], lambda m, a, b: m.tensordot(a, b)),
    "tensordot_lists": ([(2, 3, 4), (4, 3, 5)], lambda m, a, b: m.tensordot(a, b, dims=([1, 2], [1, 0]))),
    "tensordot_0": ([(2, 3), (4,)], lambda m, a, b: m.tensordot(a, b, dims=0)),
    "cross": ([(4, 3), (4, 3)], lambda m, a, b: m.cross(a, b, dim=1)),
    "cross_broadcast": ([(3, 2), (3, 1)], lambda m, a, b: a.cross(b, dim=0)),
    "trace": ([(4, 4)], lambda m, a: a.trace()),
    "trace_rect": ([(3, 5)], lambda m, a: m.trace(a)),
    "cdist": ([(5, 4), (6, 4)], lambda m, a, b: m.cdist(a, b)),
    "cdist_p1": ([(5, 4), (6, 4)], lambda m, a, b: m.cdist(a, b, p=1)),
    "cdist_p3": ([(5, 4), (6, 4)], lambda m, a, b: m.cdist(a, b, p=3)),
    "cdist_pinf": ([(5, 4), (6, 4)], lambda m, a, b: m.cdist(a, b, p=float("inf"))),
    "cdist_batched": ([(2, 3, 4), (2, 5, 4)], lambda m, a, b: m.cdist(a, b)),
}


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_products_match_torch(name):
    shapes, fn = PRODUCTS[name]
    both(shapes, fn)


def test_cdist_gradient_is_zero_at_zero_distance():
    for p in (1.0, 2.0, 3.0):
        a = tm.tensor([[0.0, 1.0], [2.0, 2.0]], requires_grad=True)
        ta = torch.tensor([[0.0, 1.0], [2.0, 2.0]], requires_grad=True)
        tm.cdist(a, a.detach(), p=p).sum().backward()
        torch.cdist(ta, ta.detach(), p=p).sum().backward()
        np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), atol=1e-6)
        assert np.isfinite(a.grad.numpy()).all()


def test_integer_products_keep_integers():
    ints = [np.array([[1, 2], [3, 4]]), np.array([[0, -1], [5, 2]])]
    for fn in (lambda a, b: a.mm(b), lambda a, b: a.kron(b), lambda a, b: a.trace(), lambda a, b: a[0].dot(b[1]),
               lambda a, b: a.eq(b), lambda a, b: a.ne(2), lambda a, b: a.lt(b), lambda a, b: a.le(3),
               lambda a, b: a.gt(b), lambda a, b: a.ge(b), lambda a, b: a.addcmul(a, b)):
        check_op([], fn, inputs=ints)


@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_comparison_methods_and_functions(op):
    a = np.array([[1.0, 2.0, 3.0], [4.0, 2.0, 0.0]], np.float32)
    b = np.array([2.0, 2.0, 1.0], np.float32)
    check_op([], lambda x, y: getattr(x, op)(y), inputs=[a, b], grad=False)
    check_op([], lambda x, y: getattr(x, op)(2.0), inputs=[a, b], grad=False)
    both([], lambda m, x, y: getattr(m, op)(x, y), inputs=[a, b], grad=False)


def test_product_errors_match_torch():
    same_error(lambda m: m.mm(m.ones(2, 3), m.ones(4, 5)))
    same_error(lambda m: m.mm(m.ones(2, 3, 1), m.ones(1, 5)))
    same_error(lambda m: m.bmm(m.ones(2, 3, 4), m.ones(3, 4, 5)))
    same_error(lambda m: m.dot(m.ones(3), m.ones(4)))
    same_error(lambda m: m.dot(m.ones(3), m.ones(3, dtype=m.float64)))
    same_error(lambda m: m.mv(m.ones(3, 4), m.ones(5)))
    same_error(lambda m: m.cross(m.ones(4, 2), m.ones(4, 2), dim=1))
    same_error(lambda m: m.cdist(m.ones(3), m.ones(3)))
    same_error(lambda m: m.cdist(m.ones(3, 2), m.ones(3, 4)))
    same_error(lambda m: m.trace(m.ones(3)))
    same_error(lambda m: m.tensordot(m.ones(2, 3), m.ones(4, 5), dims=1))
    with pytest.raises(RuntimeError, match="mat1 and mat2 shapes cannot be multiplied"):
        tm.mm(tm.ones(2, 3), tm.ones(4, 5))


# ----------------------------------------------------------------------------- maths and special functions

MATHS = {
    "atan2": ([(3, 4), (4,)], {}, lambda m, a, b: a.atan2(b)),
    "atan2_fn": ([(3, 4), (3, 4)], {}, lambda m, a, b: m.atan2(a, b)),
    "hypot": ([(3, 4), (3, 1)], {}, lambda m, a, b: a.hypot(b)),
    "frac": ([(3, 4)], dict(low=-3, high=3), lambda m, a: a.frac()),
    "logit": ([(3, 4)], dict(low=0.05, high=0.95), lambda m, a: a.logit()),
    "logit_eps": ([(3, 4)], dict(low=0.0, high=1.0), lambda m, a: m.logit(a, eps=0.2)),
    "erfinv": ([(3, 4)], dict(low=-0.9, high=0.9), lambda m, a: a.erfinv()),
    "lgamma": ([(3, 4)], dict(low=0.2, high=4.0), lambda m, a: a.lgamma()),
    "digamma": ([(3, 4)], dict(low=0.2, high=4.0), lambda m, a: m.digamma(a)),
    "nan_to_num": ([(3, 4)], {}, lambda m, a: (a / (a > 0)).nan_to_num(posinf=5.0)),
}


@pytest.mark.parametrize("name", sorted(MATHS))
def test_maths_match_torch(name):
    shapes, kw, fn = MATHS[name]
    grad = name not in ("nan_to_num",)
    both(shapes, fn, grad=grad, **kw)


def test_nan_to_num_values_and_gradient():
    a = np.array([1.0, np.nan, np.inf, -np.inf, -2.0], np.float32)
    for kw in ({}, dict(nan=1.5, posinf=9.0, neginf=-9.0)):
        both([], lambda m, x: m.nan_to_num(x, **kw), inputs=[a], gradcheck=False)
    check_op([], lambda x: x.nan_to_num(), inputs=[np.array([1, 2])])


def test_special_functions_at_their_edges():
    edge = np.array([0.0, -0.0, -1.0, 1.0, 1e-3], np.float64)
    for fn in (lambda x: x.lgamma(), lambda x: x.digamma()):
        check_op([], fn, inputs=[edge], grad=False)
    check_op([], lambda x: x.erfinv(), inputs=[np.array([-1.0, 1.0, 0.0, 0.5], np.float32)], grad=False)
    check_op([], lambda x: x.erfinv(), inputs=[np.array([0, 1])])  # integers promote to float
    same_error(lambda m: m.tensor([1, 2]).frac())
    same_error(lambda m: m.hypot(m.ones(2), m.ones(3)))


# ----------------------------------------------------------------------------- statistics

NAN = np.array([[1.0, np.nan, 3.0, -1.0], [np.nan, np.nan, np.nan, np.nan], [0.5, 2.0, -2.0, 4.0]], np.float64)


@pytest.mark.parametrize("kw", [{}, dict(dim=1), dict(dim=0, keepdim=True), dict(dim=(0, 1))])
def test_nansum_and_nanmean(kw):
    both([], lambda m, x: x.nansum(**kw), inputs=[NAN])
    both([], lambda m, x: m.nanmean(x, **kw), inputs=[NAN])
    check_op([], lambda x: x.nansum(**kw), inputs=[np.array([[1, 2], [3, 4]])])


def test_nan_reduction_errors():
    same_error(lambda m: m.tensor([1, 2]).nanmean())


QUANTILE = {
    "all": lambda m, x: x.quantile(0.3),
    "dim": lambda m, x: x.quantile(0.75, dim=1),
    "dim_keep": lambda m, x: m.quantile(x, 0.5, dim=0, keepdim=True),
    "q_tensor": lambda m, x: x.quantile(m.tensor([0.0, 0.25, 1.0], dtype=x.dtype), dim=-1),
    "q_tensor_keep_all": lambda m, x: x.quantile(m.tensor([0.1, 0.9], dtype=x.dtype), keepdim=True),
    "lower": lambda m, x: x.quantile(0.4, dim=1, interpolation="lower"),
    "higher": lambda m, x: x.quantile(0.4, dim=1, interpolation="higher"),
    "midpoint": lambda m, x: x.quantile(0.4, dim=1, interpolation="midpoint"),
    "nearest": lambda m, x: x.quantile(0.4, dim=1, interpolation="nearest"),
}


@pytest.mark.parametrize("name", sorted(QUANTILE))
def test_quantile(name):
    both([(3, 5)], QUANTILE[name])


def test_quantile_with_nan_and_nanquantile():
    both([], lambda m, x: x.quantile(0.5, dim=1), inputs=[NAN], gradcheck=False)
    both([], lambda m, x: x.nanquantile(0.5, dim=1), inputs=[NAN], gradcheck=False)
    both([], lambda m, x: m.nanquantile(x, m.tensor([0.2, 0.7], dtype=x.dtype), dim=1), inputs=[NAN], gradcheck=False)
    same_error(lambda m: m.tensor([1, 2]).quantile(0.5))
    same_error(lambda m: m.tensor([1.0, 2.0]).quantile(1.5))


def test_mode_values_indices_and_gradient():
    x = np.array([[1.0, 2.0, 2.0, 3.0, 1.0], [4.0, 4.0, 1.0, 1.0, 0.0], [5.0, 6.0, 7.0, 8.0, 9.0]], np.float64)
    for kw in ({}, dict(dim=0), dict(dim=1, keepdim=True)):
        both([], lambda m, t: t.mode(**kw).values, inputs=[x], gradcheck=False)  # ties: not differentiable
        assert np.array_equal(tm.tensor(x).mode(**kw).indices.detach().numpy(), torch.tensor(x).mode(**kw).indices.detach().numpy())
    ints = torch.tensor([3, 1, 1, 3, 2])
    assert tuple(v.item() for v in tm.mode(tm.tensor(ints.detach().numpy()))) == tuple(v.item() for v in torch.mode(ints))


@pytest.mark.parametrize("kw", [{}, dict(return_inverse=True), dict(return_counts=True),
                                dict(return_inverse=True, return_counts=True), dict(dim=0, return_counts=True),
                                dict(dim=1, return_inverse=True)])
def test_unique_and_unique_consecutive(kw):
    x = np.array([[3, 1, 3], [1, 1, 2], [3, 1, 3]])
    got, want = tm.tensor(x).unique(**kw), torch.tensor(x).unique(**kw)
    got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
    for g, w in zip(got, want):
        assert g.shape == tuple(w.shape) and np.array_equal(g.detach().numpy(), w.detach().numpy()) and str(g.dtype) == str(w.dtype).replace("torch.", "tinymm.")
    y = np.array([1, 1, 2, 2, 3, 1, 1, 2])
    if "dim" not in kw:
        got, want = tm.unique_consecutive(tm.tensor(y), **kw), torch.unique_consecutive(torch.tensor(y), **kw)
    else:
        got, want = tm.unique_consecutive(tm.tensor(x), **kw), torch.unique_consecutive(torch.tensor(x), **kw)
    got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
    for g, w in zip(got, want):
        assert g.shape == tuple(w.shape) and np.array_equal(g.detach().numpy(), w.detach().numpy())


def test_bincount_histc():
    x = np.array([0, 1, 1, 3, 1])
    w32 = np.array([0.5, 1.0, 2.0, -1.0, 3.0], np.float32)
    check_op([], lambda a: a.bincount(), inputs=[x])
    check_op([], lambda a: a.bincount(minlength=7), inputs=[x])
    both([], lambda m, a, w: m.bincount(a, weights=w), inputs=[x, w32], grad=False)
    v = np.array([0.1, 1.0, 1.2, 2.9, 3.0, -1.0, 5.0], np.float32)
    for kw in ({}, dict(bins=4), dict(bins=3, min=0, max=3), dict(bins=5, min=1, max=1)):
        both([], lambda m, a: m.histc(a, **kw), inputs=[v], grad=False)
    same_error(lambda m: m.tensor([-1, 2]).bincount())
    same_error(lambda m: m.tensor([[1, 2]]).bincount())
    same_error(lambda m: m.histc(m.tensor([1, 2]), bins=2))


# ----------------------------------------------------------------------------- index ops


def test_index_add_and_index_add_():
    both([(4, 3), (3, 3)], lambda m, x, s: x.index_add(0, m.tensor([0, 2, 0]), s))
    both([(4, 3), (4, 2)], lambda m, x, s: m.index_add(x, 1, m.tensor([2, 2]), s, alpha=-1.5))
    both([(4, 3), (4, 2)], lambda m, x, s: x.clone().index_add_(1, m.tensor([0, 2]), s, alpha=2.0) * 1)
    check_op([], lambda x, s: x.index_add(0, tm.tensor([1, 1]) if isinstance(x, tm.Tensor) else torch.tensor([1, 1]), s),
             inputs=[np.arange(6).reshape(3, 2), np.ones((2, 2), np.int64)])
    same_error(lambda m: m.zeros(3, 2).index_add(0, m.tensor([0]), m.ones(2, 2)))
    same_error(lambda m: m.zeros(3, 2).index_add(0, m.tensor([0]), m.ones(1, 2, dtype=m.float64)))
    same_error(lambda m: m.zeros(3, 2).index_add(0, m.tensor([-1]), m.ones(1, 2)))
    same_error(lambda m: m.zeros(3, 2).index_add(0, m.tensor([3]), m.ones(1, 2)))
    leaf = tm.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        leaf.index_add_(0, tm.tensor([0]), tm.ones(1))


def test_take_searchsorted_bucketize():
    both([(3, 4)], lambda m, x: m.take(x, m.tensor([[0, 11], [5, 5]])))
    both([(3, 4)], lambda m, x: x.take(m.tensor([-1, 2])))
    same_error(lambda m: m.take(m.ones(2, 2), m.tensor([4])))
    seq = np.array([1.0, 3.0, 5.0, 7.0], np.float32)
    vals = np.array([[0.0, 3.0, 6.0], [7.0, 8.0, 5.0]], np.float32)
    for kw in ({}, dict(right=True), dict(side="right"), dict(out_int32=True)):
        both([], lambda m, s, v: m.searchsorted(s, v, **kw), inputs=[seq, vals], grad=False)
        both([], lambda m, s, v: m.bucketize(v, s, **{k: a for k, a in kw.items() if k != "side"}),
             inputs=[seq, vals], grad=False)
    rows = np.array([[1.0, 2.0, 3.0], [0.0, 5.0, 6.0]], np.float32)
    both([], lambda m, s, v: m.searchsorted(s, v), inputs=[rows, vals], grad=False)
    both([], lambda m, s: m.searchsorted(s, 4.0), inputs=[seq], grad=False)
    same_error(lambda m: m.searchsorted(m.ones(2, 3), m.ones(3, 3)))


# ----------------------------------------------------------------------------- shape and layout

SHAPE = {
    "unbind": ([(3, 4)], lambda m, x: x.unbind(1)[2] * 2 + m.unbind(x)[0].sum()),
    "broadcast_to": ([(3, 1)], lambda m, x: x.broadcast_to((2, 3, 4))),
    "broadcast_tensors": ([(3, 1), (4,)], lambda m, a, b: sum(t * (i + 1) for i, t in enumerate(m.broadcast_tensors(a, b)))),
    "sum_to_size": ([(2, 3, 4)], lambda m, x: x.sum_to_size(3, 1)),
    "sum_to_size_same": ([(2, 3)], lambda m, x: x.sum_to_size((2, 3)) * 1),
    "atleast_1d": ([()], lambda m, x: m.atleast_1d(x)),
    "atleast_2d": ([(3,)], lambda m, x: m.atleast_2d(x)),
    "atleast_3d_1d": ([(3,)], lambda m, x: m.atleast_3d(x)),
    "atleast_3d_2d": ([(2, 3)], lambda m, x: m.atleast_3d(x)),
    "hstack": ([(2, 3), (2, 1)], lambda m, a, b: m.hstack([a, b])),
    "hstack_1d": ([(3,), (2,)], lambda m, a, b: m.hstack((a, b))),
    "vstack": ([(3,), (2, 3)], lambda m, a, b: m.vstack([a, b])),
    "dstack": ([(2, 3), (2, 3)], lambda m, a, b: m.dstack([a, b])),
    "column_stack": ([(3,), (3, 2)], lambda m, a, b: m.column_stack([a, b])),
    "concatenate": ([(3,), (2,)], lambda m, a, b: m.concatenate([a, b])),
    "rot90": ([(2, 3)], lambda m, x: x.rot90()),
    "rot90_k2": ([(2, 3, 4)], lambda m, x: m.rot90(x, 2, (1, 2))),
    "rot90_k3": ([(2, 3)], lambda m, x: m.rot90(x, 3)),
    "rot90_neg": ([(2, 3, 4)], lambda m, x: x.rot90(-1, [2, 0])),
    "diag_embed": ([(2, 3)], lambda m, x: m.diag_embed(x)),
    "diag_embed_offset": ([(2, 3)], lambda m, x: x.diag_embed(offset=-1)),
    "diag_embed_dims": ([(2, 3)], lambda m, x: m.diag_embed(x, 1, 0, 2)),
    "diag_embed_swapped": ([(2, 3)], lambda m, x: m.diag_embed(x, 0, 2, 0)),
    "block_diag": ([(2, 2), (3,), ()], lambda m, a, b, c: m.block_diag(a, b, c)),
    "cartesian_prod": ([(2,), (3,)], lambda m, a, b: m.cartesian_prod(a, b)),
    "combinations": ([(4,)], lambda m, x: m.combinations(x)),
    "combinations_r3_repl": ([(3,)], lambda m, x: m.combinations(x, r=3, with_replacement=True)),
    "diff": ([(3, 5)], lambda m, x: x.diff()),
    "diff_n2_dim0": ([(4, 3)], lambda m, x: m.diff(x, n=2, dim=0)),
    "diff_pend": ([(3, 4), (3, 1), (3, 2)], lambda m, x, p, a: x.diff(dim=1, prepend=p, append=a)),
}


@pytest.mark.parametrize("name", sorted(SHAPE))
def test_shape_ops_match_torch(name):
    shapes, fn = SHAPE[name]
    both(shapes, fn)


def test_layout_ops_on_integers_and_bools():
    ints = [np.array([[1, 5, 2], [0, 3, 3]])]
    for fn in (lambda m, x: x.diff(), lambda m, x: m.rot90(x), lambda m, x: m.block_diag(x, x[0]),
               lambda m, x: m.diag_embed(x), lambda m, x: m.hstack([x, x]), lambda m, x: x.sum_to_size(1, 3),
               lambda m, x: m.combinations(x[0]), lambda m, x: (x > 2).diff(dim=0)):
        both([], fn, inputs=ints)


@pytest.mark.parametrize("args", [(3, 3), (4, 3, 1), (3, 5, -1), (2, 4, 2), (0, 3)])
def test_tril_triu_indices(args):
    for name in ("tril_indices", "triu_indices"):
        got, want = getattr(tm, name)(*args), getattr(torch, name)(*args)
        assert got.dtype == np.int64 and np.array_equal(got.detach().numpy(), want.detach().numpy()), name


def test_shape_errors_match_torch():
    same_error(lambda m: m.broadcast_tensors(m.ones(2, 3), m.ones(4)))
    same_error(lambda m: m.ones(2, 3).sum_to_size(4))
    same_error(lambda m: m.ones(3).rot90())
    same_error(lambda m: m.ones(2, 2).rot90(1, (0, 0)))
    same_error(lambda m: m.block_diag(m.ones(2, 2, 2)))
    same_error(lambda m: m.cartesian_prod(m.ones(2, 2)))
    same_error(lambda m: m.diff(m.tensor(1.0)))
    same_error(lambda m: m.tensor(1.0).unbind())
    same_error(lambda m: m.ones(2, 3).unbind(2))


# ----------------------------------------------------------------------------- Tensor attributes


def test_type_stride_nbytes_storage_offset_size():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x, t = tm.tensor(a), torch.tensor(a)
    assert x.type() == t.type() == "torch.FloatTensor"
    assert tm.tensor([1, 2]).type() == "torch.LongTensor" and tm.tensor([True]).type() == "torch.BoolTensor"
    assert x.type(tm.float64).dtype == np.float64 and x.type("torch.IntTensor").dtype == np.int32
    assert x.stride() == t.stride() and x.stride(1) == t.stride(1) and x.stride(-1) == t.stride(-1)
    assert x.transpose(0, 2).stride() == t.transpose(0, 2).stride()
    assert x.expand(5, 2, 3, 4).stride() == t.expand(5, 2, 3, 4).stride()
    assert x.nbytes == t.nbytes and x.element_size() == t.element_size()
    for index in ((1,), (slice(None), 1), (1, slice(1, None), slice(2, None))):
        assert x[index].storage_offset() == t[index].storage_offset(), index
    assert x.storage_offset() == 0
    assert x[1].data_ptr() - x.data_ptr() == 12 * 4 and x.detach().data_ptr() == x.data_ptr()
    assert isinstance(x.shape, tm.Size) and x.shape == (2, 3, 4) == t.shape and x.size() == t.size()
    assert x.shape.numel() == t.shape.numel() == 24 and isinstance(x.shape[1:], tm.Size)
    assert x.shape[1:] == (3, 4) and x.shape + (5,) == (2, 3, 4, 5) and x.shape[-1] == 4
    a2 = tm.randn(3, 4)
    assert a2.H.shape == (4, 3) and np.array_equal(a2.H.detach().numpy(), a2.detach().numpy().T)
    with pytest.raises(IndexError):
        x.stride(3)


def test_legacy_tensor_types():
    for name in ("FloatTensor", "DoubleTensor", "LongTensor", "IntTensor", "ByteTensor", "BoolTensor"):
        got, want = getattr(tm, name)([1, 0, 2]), getattr(torch, name)([1, 0, 2])
        assert str(got.dtype) == str(want.dtype).replace("torch.", "tinymm.") and got.tolist() == want.tolist(), name
        assert isinstance(got, getattr(tm, name)) and isinstance(got, tm.Tensor)
        assert getattr(tm, name)(2, 3).shape == (2, 3) and getattr(tm, name)().shape == (0,)
    assert not isinstance(tm.ones(2), tm.LongTensor) and isinstance(tm.ones(2), tm.FloatTensor)
    assert tm.ones(2).type(tm.LongTensor).dtype == np.int64 and tm.ones(2).type() == tm.ones(2).type(tm.FloatTensor).type()


def test_to_accepts_pytorchs_keywords():
    x = tm.ones(2, requires_grad=True)
    assert x.to("cpu", non_blocking=True) is x and x.cpu() is x
    y = x.to(copy=True)
    assert y is not x and y._data is not x._data and y.requires_grad
    assert x.to(tm.float64, non_blocking=True, memory_format=None).dtype == np.float64
    with pytest.raises(TypeError):
        x.to("cpu", blocking=True)


def test_as_tensor_shares_memory_when_it_can():
    arr = np.arange(4, dtype=np.float32)
    x = tm.as_tensor(arr)
    arr[0] = 7.0
    assert x[0].item() == 7.0  # shared, as torch.as_tensor(ndarray) shares
    assert tm.as_tensor(arr, dtype=tm.float64).dtype == np.float64
    assert tm.as_tensor(x) is x and tm.as_tensor([1, 2]).dtype == np.int64 and tm.as_tensor([1.5]).dtype == np.float32
    assert tm.asarray(arr).shape == (4,)


def test_finfo_iinfo_match_torch():
    for d in ("float16", "float32", "float64"):
        got, want = tm.finfo(getattr(tm, d)), torch.finfo(getattr(torch, d))
        for attr in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
            assert getattr(got, attr) == getattr(want, attr), (d, attr)
    assert tm.finfo().eps == torch.finfo().eps
    for d in ("int8", "int16", "int32", "int64", "uint8"):
        got, want = tm.iinfo(getattr(tm, d)), torch.iinfo(getattr(torch, d))
        assert (got.bits, got.max, got.min) == (want.bits, want.max, want.min), d
    same_error(lambda m: m.finfo(m.int64))
    same_error(lambda m: m.iinfo(m.float32))


# ----------------------------------------------------------------------------- hooks and grad modes


def _hooked_run(m):
    x = m.tensor([1.0, -2.0, 3.0], requires_grad=True)
    w = m.tensor([0.5, 0.25, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.clone()))  # observes, returns None
    handle = w.register_hook(lambda g: g * 10)  # replaces
    y = x * w
    y.retain_grad()
    y.register_hook(lambda g: g + 1)
    z = (y * y).sum() + (x * 3).sum()  # x reaches z twice: its hook sees the sum once
    z.backward(retain_graph=True)
    first = (x.grad.clone(), w.grad.clone(), y.grad.clone(), len(seen), seen[0])
    handle.remove()
    x.grad = w.grad = None
    z.backward()
    return first + (w.grad,)


def test_register_hook_matches_torch():
    for got, want in zip(_hooked_run(tm), _hooked_run(torch)):
        if isinstance(want, int):
            assert got == want
        else:
            np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-6)


def test_register_hook_on_root_and_leaf_root_and_errors():
    for m in (tm, torch):
        x = m.tensor([2.0], requires_grad=True)
        x.register_hook(lambda g: g * 3)
        x.sum().backward()
        assert x.grad.item() == 3.0
        y = x * 2
        y.register_hook(lambda g: g * 5)
        x.grad = None
        y.sum().backward()
        assert x.grad.item() == 30.0
    same_error(lambda m: m.ones(2).register_hook(lambda g: g))


def _autograd_grad_run(m):
    x = m.tensor([1.0, -2.0, 3.0], requires_grad=True)
    w = m.tensor([0.5, 0.25, 2.0], requires_grad=True)
    other = m.tensor([1.0, 1.0, 1.0], requires_grad=True)
    h = x * w
    y = (h * h).sum() + (other * x).sum()
    gx, gh = m.autograd.grad(y, [x, h], retain_graph=True)
    (gw,) = m.autograd.grad([y, (w * 2).sum()], w, retain_graph=True)
    gv = m.autograd.grad(h, x, grad_outputs=m.tensor([1.0, 2.0, 3.0]), retain_graph=True)[0]
    unused = m.autograd.grad(y, [x, m.ones(2, requires_grad=True)], allow_unused=True, retain_graph=True)[1]
    zeros = m.autograd.grad(y, [m.ones(2, requires_grad=True)], allow_unused=True, materialize_grads=True)[0]
    assert x.grad is None and w.grad is None and other.grad is None  # nothing written into .grad
    return gx, gh, gw, gv, unused, zeros


def test_autograd_grad_matches_torch():
    got, want = _autograd_grad_run(tm), _autograd_grad_run(torch)
    for g, w in zip(got, want):
        if w is None:
            assert g is None
        else:
            np.testing.assert_allclose(g.detach().numpy(), w.detach().numpy(), rtol=1e-6)
    same_error(lambda m: m.autograd.grad((m.ones(2, requires_grad=True) * 2).sum(), [m.ones(2, requires_grad=True)]))
    # create_graph=True gives a differentiable gradient (tests/test_create_graph.py has the rest)
    x = tm.ones(2, requires_grad=True)
    (g,) = tm.autograd.grad((x * x).sum(), x, create_graph=True)
    assert g.grad_fn is not None


def test_inference_mode_as_context_and_decorator():
    x = tm.ones(2, requires_grad=True)
    with tm.inference_mode():
        assert not (x * 2).requires_grad
    with tm.inference_mode(False):
        assert (x * 2).requires_grad

    @tm.inference_mode()
    def f():
        return (x * 2).requires_grad

    @tm.inference_mode
    def g():
        return (x * 2).requires_grad

    assert f() is False and g() is False and tm.is_grad_enabled()


# ----------------------------------------------------------------------------- cuda, generators, RNG state


def test_cuda_namespace_answers_honestly_without_a_gpu():
    assert tm.cuda.is_available() == tm.cuda_available()
    if tm.cuda.is_available():
        pytest.skip("a GPU is present: the no-GPU answers are not what this machine gives")
    assert tm.cuda.device_count() == 0
    tm.cuda.manual_seed(3)
    tm.cuda.manual_seed_all(3)
    tm.cuda.synchronize()
    tm.cuda.empty_cache()
    assert tm.cuda.memory_allocated() == tm.cuda.memory_reserved() == 0 and not tm.cuda.is_bf16_supported()
    for fn in (tm.cuda.current_device, tm.cuda.get_device_name):
        with pytest.raises(RuntimeError, match="no CUDA device"):
            fn()
    device = "cuda" if tm.cuda.is_available() else "cpu"
    assert tm.ones(2, device=device).device == "cpu" and tm.device(device).type == "cpu"
    tm.backends.cudnn.benchmark = True  # accepted, as scripts set it
    assert tm.backends.mps.is_available() is False


def test_generator_and_rng_state():
    g = tm.Generator().manual_seed(5)
    assert isinstance(g, tm.Generator) and g.initial_seed() == 5
    a = tm.randn(3, generator=g)
    b = tm.rand(2, generator=g)
    c = tm.randint(0, 10, (4,), generator=g)
    p = tm.randperm(6, generator=g)
    g.manual_seed(5)
    assert np.array_equal(tm.randn(3, generator=g).detach().numpy(), a.detach().numpy())
    assert np.array_equal(tm.rand(2, generator=g).detach().numpy(), b.detach().numpy())
    assert np.array_equal(tm.randint(0, 10, (4,), generator=g).detach().numpy(), c.detach().numpy())
    assert sorted(tm.randperm(6, generator=g).tolist()) == sorted(p.tolist()) == list(range(6))
    state = g.get_state()
    u = tm.rand(3, generator=g)
    g.set_state(state)
    assert np.array_equal(tm.rand(3, generator=g).detach().numpy(), u.detach().numpy())
    def draws(gen):
        probs = tm.tensor([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
        return [probs.multinomial(2, generator=gen), tm.bernoulli(probs, generator=gen),
                tm.poisson(probs * 3, generator=gen), tm.empty(3).normal_(generator=gen),
                tm.empty(3).uniform_(-1, 1, generator=gen), tm.empty(3).exponential_(generator=gen),
                tm.empty(3).bernoulli_(0.5, generator=gen)]

    first = draws(tm.Generator().manual_seed(9))
    tm.randn(5)  # the default generator moves; the seeded one repeats regardless
    for x, y in zip(first, draws(tm.Generator().manual_seed(9))):
        assert np.array_equal(x.detach().numpy(), y.detach().numpy())
    tm.manual_seed(11)
    assert tm.initial_seed() == 11
    s = tm.get_rng_state()
    assert s.dtype == np.uint8 and s.ndim == 1
    first = tm.randn(4)
    tm.set_rng_state(s)
    assert np.array_equal(tm.randn(4).detach().numpy(), first.detach().numpy())
    assert tm.manual_seed(2) is tm.default_generator
    n = tm.seed()
    assert tm.initial_seed() == n
    with pytest.raises(TypeError):
        tm.set_rng_state(tm.ones(3))


# ----------------------------------------------------------------------------- tinymm.utils.data


def test_tensor_dataset_random_split_default_collate():
    from torch.utils import data as td

    from tinymm.utils import data as md

    X = np.arange(30, dtype=np.float32).reshape(10, 3)
    y = np.arange(10)
    ds, tds = md.TensorDataset(tm.tensor(X), tm.tensor(y)), td.TensorDataset(torch.tensor(X), torch.tensor(y))
    assert len(ds) == len(tds) and [v.tolist() for v in ds[3]] == [v.tolist() for v in tds[3]]
    for lengths in ([0.7, 0.3], [0.34, 0.33, 0.33], [3, 7], [0.5, 0.5]):
        parts = md.random_split(ds, lengths, generator=tm.Generator().manual_seed(0))
        tparts = td.random_split(tds, lengths, generator=torch.Generator().manual_seed(0))
        assert [len(p) for p in parts] == [len(p) for p in tparts]
        seen = sorted(int(i) for p in parts for i in p.indices)
        assert seen == list(range(10))
    again = md.random_split(ds, [0.7, 0.3], generator=tm.Generator().manual_seed(0))
    assert list(again[0].indices) == list(md.random_split(ds, [0.7, 0.3], generator=tm.Generator().manual_seed(0))[0].indices)
    for bad in ([0.5, 0.6], [3, 3]):
        same_error(lambda m: (md if m is tm else td).random_split(ds if m is tm else tds, bad))
    same_error(lambda m: (md if m is tm else td).TensorDataset(m.ones(3), m.ones(4)))
    samples = [(np.ones(2, np.float32) * i, i, 0.5 * i, {"k": i, "s": "a"}) for i in range(3)]
    tsamples = samples
    got, want = md.default_collate(samples), td.default_collate(tsamples)
    for g, w in zip(got[:3], want[:3]):
        assert np.array_equal(g.detach().numpy(), w.detach().numpy()) and str(g.dtype) == str(w.dtype).replace("torch.", "tinymm.")
    assert np.array_equal(got[3]["k"].detach().numpy(), want[3]["k"].detach().numpy()) and got[3]["s"] == want[3]["s"]


def test_dataloader_batches_like_torch():
    from torch.utils import data as td

    from tinymm.utils import data as md

    X = np.arange(21, dtype=np.float32).reshape(7, 3)
    y = np.arange(7)
    for kw in (dict(batch_size=3), dict(batch_size=3, drop_last=True), dict(batch_size=10)):
        got = list(md.DataLoader(md.TensorDataset(tm.tensor(X), tm.tensor(y)), **kw))
        want = list(td.DataLoader(td.TensorDataset(torch.tensor(X), torch.tensor(y)), **kw))
        assert len(got) == len(want)
        for (gx, gy), (wx, wy) in zip(got, want):
            assert np.array_equal(gx.detach().numpy(), wx.detach().numpy()) and np.array_equal(gy.detach().numpy(), wy.detach().numpy())
    loader = md.DataLoader(md.TensorDataset(tm.tensor(y)), batch_size=2, shuffle=True, generator=tm.Generator().manual_seed(1))
    e1 = [v for (b,) in loader for v in b.tolist()]
    e2 = [v for (b,) in loader for v in b.tolist()]
    assert sorted(e1) == sorted(e2) == list(range(7)) and e1 != e2  # a fresh permutation per epoch
    tm.manual_seed(4)
    a = [v for (b,) in md.DataLoader(md.TensorDataset(tm.tensor(y)), batch_size=7, shuffle=True) for v in b.tolist()]
    tm.manual_seed(4)
    b = [v for (b,) in md.DataLoader(md.TensorDataset(tm.tensor(y)), batch_size=7, shuffle=True) for v in b.tolist()]
    assert a == b  # manual_seed makes the default-generator shuffle repeat
    got = list(md.DataLoader(md.TensorDataset(tm.tensor(X)), batch_size=4, num_workers=2, pin_memory=True))
    assert [g[0].shape for g in got] == [(4, 3), (3, 3)]
    got = list(md.DataLoader(md.TensorDataset(tm.tensor(X)), sampler=[5, 1]))  # any iterable of indices is a sampler
    assert [g[0].tolist() for g in got] == [[X[5].tolist()], [X[1].tolist()]]
    assert tm.utils.data.DataLoader is md.DataLoader


# ----------------------------------------------------------------------------- a PyTorch script, unchanged


SCRIPT = """
import numpy as np


class Blobs(Dataset):
    def __init__(self, X, y):
        self.X = torch.as_tensor(X)
        self.y = torch.as_tensor(y)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def make_loaders(X, y, generator):
    full = TensorDataset(torch.tensor(X), torch.tensor(y))
    train_set, val_set = random_split(full, [0.75, 0.25], generator=generator)
    train_loader = DataLoader(train_set, batch_size=8, shuffle=False)
    val_loader = DataLoader(val_set, batch_size=16)
    return train_loader, val_loader, DataLoader(Blobs(X, y), batch_size=32)


def train(model, train_loader, val_loader, epochs=3):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses, accs = [], []
    for epoch in range(epochs):
        model.train()
        for xb, yb in train_loader:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        correct, total = 0, 0
        with torch.no_grad():
            for xb, yb in val_loader:
                pred = model(xb.to(device)).argmax(dim=1)
                correct += pred.eq(yb.to(device)).sum().item()
                total += yb.size(0)
        accs.append(correct / total)
    return losses, accs
"""


def _run_script(header):
    ns = {}
    exec(header + SCRIPT, ns)  # noqa: S102  (the test's own script text)
    return ns


def test_pytorch_training_script_runs_unchanged_and_matches_torch():
    ours = _run_script("import tinymm as torch\nimport tinymm.nn as nn\nimport tinymm.nn.functional as F\n"
                       "from tinymm.utils.data import DataLoader, Dataset, TensorDataset, random_split\n")
    theirs = _run_script("import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
                         "from torch.utils.data import DataLoader, Dataset, TensorDataset, random_split\n")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((48, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    train_l, val_l, all_l = ours["make_loaders"](X, y, tm.Generator().manual_seed(0))
    t_train, t_val, t_all = theirs["make_loaders"](X, y, torch.Generator().manual_seed(0))
    # The split is the one thing drawn at random; the streams differ (NumPy's vs PyTorch's), so
    # PyTorch's run uses the indices tinymm drew. Everything else runs as written.
    for ours_set, theirs_set in zip((train_l.dataset, val_l.dataset), (t_train.dataset, t_val.dataset)):
        theirs_set.indices = [int(i) for i in ours_set.indices]
    assert [len(b[0]) for b in all_l] == [len(b[0]) for b in t_all] == [32, 16]
    torch.manual_seed(0)
    t_model = theirs["Net"]()
    model = ours["Net"]()
    model.load_state_dict({k: tm.tensor(v.detach().numpy()) for k, v in t_model.state_dict().items()})
    losses, accs = ours["train"](model, train_l, val_l)
    t_losses, t_accs = theirs["train"](t_model, t_train, t_val)
    np.testing.assert_allclose(losses, t_losses, rtol=1e-4, atol=1e-5)
    assert accs == t_accs and len(losses) == 3 * 5
    assert losses[-1] < losses[0]


# ----------------------------------------------------------------------------- review regressions
# Edge cases a differential fuzz against PyTorch found (values, dtypes, shapes, gradients, errors).

NAN_, INF_ = float("nan"), float("inf")
EDGES = {
    "unique_keeps_each_nan": lambda m: m.unique(m.tensor([NAN_, 1.0, NAN_, 1.0]), return_counts=True),
    "nanmean_0d_dim0": lambda m: m.nanmean(m.tensor(2.0), 0),
    "nanmean_negative_dim": lambda m: m.nanmean(m.tensor([[1.0, NAN_], [3.0, 4.0]]), -1, keepdim=True),
    "combinations_r_above_n": lambda m: m.combinations(m.tensor([1.0, 2.0]), 3),
    "row_stack": lambda m: m.row_stack([m.tensor([1, 2]), m.tensor([3, 4])]),
    "broadcast_to_varargs": lambda m: m.tensor([1.0, 2.0]).broadcast_to(3, 2),
    "lgamma_neg_inf": lambda m: m.lgamma(m.tensor([-INF_, INF_, -2.5])),
    "quantile_0d_q": lambda m: m.quantile(m.tensor([3.0, 1.0, 2.0]), m.tensor(0.5)),
    "unique_consecutive_empty_rows": lambda m: m.unique_consecutive(m.zeros(2, 0), dim=1, return_counts=True),
    "dim_as_0d_tensor": lambda m: m.nansum(m.arange(6.0).reshape(2, 3), dim=m.tensor(1)),
    "logit_eps_above_half": lambda m: m.logit(m.tensor([0.5, 0.1, 0.9]), eps=0.7),
    "tensordot_zero_size": lambda m: m.tensordot(m.ones(2, 0, 1), m.ones(0, 3, 2), dims=([1, 0], [0, 2])),
}


@pytest.mark.parametrize("name", sorted(EDGES))
def test_edge_values_match_torch(name):
    got, want = EDGES[name](tm), EDGES[name](torch)
    for g, w in zip(*[r if isinstance(r, tuple) else (r,) for r in (got, want)]):
        assert str(g.dtype).split(".")[-1] == str(w.dtype).split(".")[-1] and tuple(g.shape) == tuple(w.shape), name
        np.testing.assert_allclose(g.detach().numpy(), w.detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("name, fn, x", [
    ("logit_outside_unit", lambda m, t: m.logit(t), [-0.5, 0.25, 1.5]),
    ("atan2_at_origin", lambda m, t: m.atan2(t, t * 0), [0.0, 1.0]),
    ("atan2_other_at_origin", lambda m, t: m.atan2(t * 0, t), [0.0, 2.0]),
    ("addmm_beta0_input", lambda m, t: m.addmm(t, m.ones(2, 3, dtype=m.float64), m.ones(3, 2, dtype=m.float64), beta=0),
     [NAN_, 1.0]),
])
def test_edge_gradients_match_torch(name, fn, x):
    grads = []
    for m in (tm, torch):
        t = m.tensor(x, dtype=m.float64, requires_grad=True)
        fn(m, t).sum().backward()
        grads.append(t.grad.numpy())
    np.testing.assert_allclose(*grads, equal_nan=True)


def test_edge_errors_match_torch():
    same_error(lambda m: m.diff(m.ones(3), -1))
    same_error(lambda m: m.tril_indices(-1, 3))
    same_error(lambda m: m.triu_indices(3, -2))
    same_error(lambda m: m.ones(3).addcmul_(m.ones(2, 3), m.ones(3)))
    same_error(lambda m: m.tensor([1, 2]).atan2_(m.tensor([1.0, 2.0])))
    same_error(lambda m: m.searchsorted(m.tensor(1.0), m.tensor([2.0])))
    same_error(lambda m: m.searchsorted(m.tensor([1.0, 2.0]), m.tensor([1.5]), sorter=m.tensor([0])))
    same_error(lambda m: tuple(m.tensor(1.0)))  # iterating a 0-d tensor, not an empty loop


def test_default_collate_keeps_namedtuples():
    from collections import namedtuple

    from tinymm.utils.data import default_collate
    Pair = namedtuple("Pair", "x y")
    got = default_collate([Pair(1, tm.tensor([1.0])), Pair(2, tm.tensor([2.0]))])
    assert type(got) is Pair and got.x.tolist() == [1, 2] and got.y.shape == (2, 1)


INPLACE = {
    "atan2_": lambda m, x: x.atan2_(m.tensor([1.0, -2.0, 0.5], dtype=m.float64)),
    "hypot_": lambda m, x: x.hypot_(m.tensor([1.0, -2.0, 0.5], dtype=m.float64)),
    "lt_": lambda m, x: x.lt_(0.3),
    "eq_": lambda m, x: x.eq_(m.tensor([0.2, 0.0, 0.0], dtype=m.float64)),
    "addcmul_": lambda m, x: x.addcmul_(m.tensor([1.0, 2.0, 3.0], dtype=m.float64), x.detach(), value=0.5),
    "addcdiv_": lambda m, x: x.addcdiv_(m.ones(3, dtype=m.float64), m.tensor([2.0, 4.0, 8.0], dtype=m.float64)),
    "addmv_": lambda m, x: x.addmv_(m.ones(3, 2, dtype=m.float64), m.tensor([1.0, 2.0], dtype=m.float64)),
    "frac_": lambda m, x: x.frac_(),
    "nan_to_num_": lambda m, x: x.nan_to_num_(nan=2.0),
    "erfinv_": lambda m, x: x.erfinv_(),
    "lgamma_": lambda m, x: x.lgamma_(),
    "digamma_": lambda m, x: x.digamma_(),
    "logit_": lambda m, x: x.logit_(eps=0.1),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_variants_match_torch_and_bump_the_version(name):
    out = []
    for m in (tm, torch):
        leaf = m.tensor([0.2, 0.5, 0.7], dtype=m.float64, requires_grad=True)
        x = leaf * 1
        assert INPLACE[name](m, x) is x
        x.sum().backward()
        out.append((x.detach().numpy(), leaf.grad.numpy()))
        stale = (leaf * 1)
        saved = stale.exp()  # exp saves its output
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            INPLACE[name](m, saved)
            saved.sum().backward()
    np.testing.assert_allclose(out[0][0], out[1][0])
    np.testing.assert_allclose(out[0][1], out[1][1])


def test_fork_rng_itemsize_ndimension():
    tm.manual_seed(0)
    with tm.random.fork_rng():
        inside = tm.rand(3)
    after = tm.rand(3)
    assert np.array_equal(inside.detach().numpy(), after.detach().numpy())  # the block's draws were undone
    x = tm.ones(2, 3, dtype=tm.float64)
    assert (x.itemsize, x.ndimension()) == (8, 2)


def _backward_keywords_run(m):
    x = m.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).backward(gradient=m.tensor([3.0, 1.0]))
    h = x * 1
    (h * h).sum().backward(inputs=[h])  # only h.grad is written, x's stays as it was
    m.autograd.backward([(x * x).sum(), x.sum()], retain_graph=False)
    return x.grad.numpy(), h.grad.numpy()


def test_backward_takes_pytorchs_keywords():
    for got, want in zip(_backward_keywords_run(tm), _backward_keywords_run(torch)):
        np.testing.assert_allclose(got, want)


def test_repr_names_what_pytorch_names():
    for make in (lambda m: m.zeros(0, 2, dtype=m.long), lambda m: m.zeros(2, 0), lambda m: m.zeros(0, dtype=m.bool),
                 lambda m: m.tensor([1], dtype=m.int32), lambda m: m.tensor([3])):
        assert repr(make(tm)) == repr(make(torch)).replace("torch.", "tinymm.")
    assert "dtype" not in repr(tm.tensor([True]))
