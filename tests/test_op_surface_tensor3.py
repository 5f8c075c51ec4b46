"""The PyTorch surface, third pass (Tensor methods and ``tinymm.*`` functions): the remaining
in-place methods, the indexing/scatter family, ``as_strided``, the splits, misc Tensor methods,
windows and trapezoid, and the ``torch.*`` layer forms, each compared with PyTorch: values,
gradients (``check_op``: against torch and a float64 gradcheck), views and version counters
of in-place ops, and the exception class on bad input."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, check_op, torch
from test_op_surface_tensor2 import both, same_error  # noqa: F401  (the pass-two helpers: check_op/raises on both libs)

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def same_values(fn, atol=1e-6):
    """``fn(lib)`` gives the same array (or tuple of arrays) for both libraries."""
    got, want = fn(tm), fn(torch)
    if isinstance(want, torch.Size):
        assert tuple(got) == tuple(want)
    elif isinstance(want, (tuple, list)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(np.asarray(g.detach().numpy(), dtype=float), w.detach().numpy().astype(float), atol=atol)
    elif isinstance(want, torch.Tensor):
        assert tuple(got.shape) == tuple(want.shape)
        assert str(got.dtype) == str(want.dtype).replace("torch.", "tinymm.")
        np.testing.assert_allclose(np.asarray(got.detach().numpy(), dtype=float), want.detach().numpy().astype(float), atol=atol)
    else:
        assert got == want


# ----------------------------------------------------------------------------- in-place methods

UNARY_INPLACE = ["abs_", "neg_", "negative_", "exp_", "sigmoid_", "tanh_", "relu_", "sin_", "cos_", "tan_",
                 "atan_", "arctan_", "sinh_", "cosh_", "asinh_", "arcsinh_", "floor_", "ceil_", "trunc_", "fix_",
                 "round_", "sign_", "sgn_", "square_", "erf_", "exp2_", "expm1_", "absolute_"]
POSITIVE_INPLACE = ["log_", "log1p_", "log2_", "log10_", "sqrt_", "rsqrt_", "reciprocal_", "acosh_", "arccosh_"]
UNIT_INPLACE = ["asin_", "acos_", "atanh_", "arcsin_", "arccos_", "arctanh_"]


@pytest.mark.parametrize("name", UNARY_INPLACE + POSITIVE_INPLACE + UNIT_INPLACE)
def test_unary_inplace_method(name):
    low, high = (1.1, 3.0) if name in POSITIVE_INPLACE else (-0.9, 0.9) if name in UNIT_INPLACE else (-2.0, 2.0)
    # on a non-leaf (x * 1), so the write is recorded and the gradient flows through it; PyTorch
    # has no derivative for the in-place inverse hyperbolics (tinymm has: values only compared)
    grad = name not in ("asinh_", "arcsinh_", "acosh_", "arccosh_", "atanh_", "arctanh_", "sgn_")
    both([(3, 4)], lambda m, x: getattr(x * 1, name)(), low=low, high=high, grad=grad,
         gradcheck=name in ("exp_", "sin_"))


@pytest.mark.parametrize("name", ["exp_", "sqrt_", "relu_", "sigmoid_", "round_", "clamp_min_", "neg_"])
def test_torch_function_inplace_forms(name):
    args = (0.2,) if name == "clamp_min_" else ()
    both([(2, 5)], lambda m, x: getattr(m, name)(x * 1, *args), low=0.1)


BINARY_INPLACE = {
    "multiply_": lambda x, y: x.multiply_(y),
    "divide_": lambda x, y: x.divide_(y.abs() + 1),
    "divide_floor": lambda x, y: x.divide_(y.abs() + 1, rounding_mode="floor"),
    "true_divide_": lambda x, y: x.true_divide_(y.abs() + 1),
    "subtract_": lambda x, y: x.subtract_(y, alpha=2),
    "fmod_": lambda x, y: x.fmod_(y.abs() + 1),
    "remainder_": lambda x, y: x.remainder_(y.abs() + 1),
    "lerp_": lambda x, y: x.lerp_(y, 0.3),
    "arctan2_": lambda x, y: x.arctan2_(y),
    "clip_": lambda x, y: x.clip_(-0.5, 0.5),
    "clamp_max_": lambda x, y: x.clamp_max_(0.3),
    "clamp_min_tensor": lambda x, y: x.clamp_min_(y),
    "cumsum_": lambda x, y: x.cumsum_(1),
    "cumprod_": lambda x, y: x.cumprod_(0),
    "tril_": lambda x, y: x.tril_(1),
    "triu_": lambda x, y: x.triu_(-1),
}


@pytest.mark.parametrize("name", sorted(BINARY_INPLACE))
def test_binary_inplace_method(name):
    fn = BINARY_INPLACE[name]
    both([(3, 4), (3, 4)], lambda m, x, y: fn(x * 1, y), gradcheck=name in ("lerp_", "cumprod_", "subtract_"))


def test_clamp_min_max_out_of_place():
    both([(3, 4)], lambda m, x: m.clamp_min(x, -0.5))
    both([(3, 4), (4,)], lambda m, x, y: x.clamp_max(y))


@pytest.mark.parametrize("name,other", [("greater_", 0.5), ("less_equal_", 0.0), ("not_equal_", 1.0),
                                         ("greater_equal_", -0.5), ("less_", 0.2)])
def test_comparison_inplace_writes_zero_one(name, other):
    same_values(lambda m: getattr(m.tensor([[-1.0, 0.0, 0.5], [1.0, 2.0, -0.5]]), name)(other))


@pytest.mark.parametrize("name", ["logical_and_", "logical_or_", "logical_xor_"])
def test_logical_inplace(name):
    same_values(lambda m: getattr(m.tensor([0.0, 1.0, 2.0, 0.0]), name)(m.tensor([1.0, 0.0, 3.0, 0.0])))
    same_values(lambda m: m.tensor([True, False]).logical_not_())


@pytest.mark.parametrize("name,arg", [("bitwise_and_", 6), ("bitwise_or_", 6), ("bitwise_xor_", 6),
                                      ("bitwise_left_shift_", 2), ("bitwise_right_shift_", 1)])
def test_bitwise_inplace(name, arg):
    same_values(lambda m: getattr(m.tensor([1, 5, 12, -3]), name)(arg))
    same_values(lambda m: m.tensor([1, 5, 12, -3]).bitwise_not_())


def test_float_result_into_integer_tensor_is_refused():
    same_error(lambda m: m.tensor([1, 2]).exp_())
    same_error(lambda m: m.tensor([1, 2]).divide_(m.tensor([2, 2])))


def test_inplace_on_a_view_updates_the_base():
    for m in (tm, torch):
        base = m.arange(12.0).reshape(3, 4)
        base.t().exp_()                  # a transposed (non-contiguous) view
        base[:, 1].mul_(2)               # a strided column
        base[0].clamp_max_(5.0)
        base[1:, ::2].fill_(-1)
        if m is tm:
            got = base.detach().numpy().copy()
        else:
            want = base.detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_inplace_bumps_version_and_breaks_saved_tensors():
    for m in (tm, torch):
        a = m.randn(3, requires_grad=True)
        b = a * 2
        c = b.sin()                      # saves b
        v = b._version
        b.exp_()
        assert b._version == v + 1
        with pytest.raises(RuntimeError):
            c.sum().backward()


def test_inplace_on_leaf_requiring_grad_raises():
    for m in (tm, torch):
        with pytest.raises(RuntimeError):
            m.ones(2, requires_grad=True).exp_()
        with pytest.raises(RuntimeError):
            m.ones(2, 3, requires_grad=True).t_()


def test_metadata_inplace_ops():
    for name, args in (("t_", ()), ("transpose_", (0, 2)), ("swapaxes_", (1, 2)), ("swapdims_", (0, 1)),
                       ("unsqueeze_", (1,)), ("squeeze_", (1,))):
        shape = (2, 1, 3) if name != "t_" else (2, 3)

        def fn(m, x, name=name, args=args):
            y = x * 1
            v = y._version
            out = getattr(y, name)(*args)
            assert out is y and y._version == v + 1
            return y

        both([shape], fn)


def test_detach_():
    for m in (tm, torch):
        a = m.ones(2, requires_grad=True)
        b = a * 2
        assert b.detach_() is b and not b.requires_grad and b.grad_fn is None
    same_values(lambda m: m.detach(m.ones(2, requires_grad=True) * 3))


@pytest.mark.parametrize("shape,wrap", [((3, 4), False), ((7, 3), True), ((7, 3), False), ((3, 3, 3), False)])
def test_fill_diagonal_(shape, wrap):
    same_values(lambda m: m.zeros(*shape).fill_diagonal_(5.0, wrap=wrap))
    both([(4, 4)], lambda m, x: (x * 1).fill_diagonal_(0.5))
    same_error(lambda m: m.zeros(2, 3, 4).fill_diagonal_(1))


def test_f_inplace_activations():
    import torch.nn.functional as TF

    import tinymm.nn.functional as F

    for name, args in (("relu_", ()), ("elu_", (0.5,)), ("celu_", (2.0,)), ("selu_", ()), ("leaky_relu_", (0.2,)),
                       ("hardtanh_", (-0.5, 0.5)), ("threshold_", (0.1, -3.0)), ("rrelu_", (0.1, 0.3, False))):
        check_op([(3, 5)], lambda x, n=name, a=args: getattr(F, n)(x * 1, *a),
                 lambda x, n=name, a=args: getattr(TF, n)(x * 1, *a), gradcheck=False)
        x = tm.ones(2, requires_grad=True)
        with pytest.raises(RuntimeError):
            getattr(F, name)(x, *args)


def test_torch_inplace_layer_forms():
    for name, args in (("celu_", (1.5,)), ("selu_", ()), ("threshold_", (0.0, 2.0)), ("dropout_", (0.0, True)),
                       ("alpha_dropout_", (0.5, False))):
        both([(2, 6)], lambda m, x, n=name, a=args: getattr(m, n)(x * 1, *a), gradcheck=False)


# ----------------------------------------------------------------------------- indexing family

IDX = np.array([2, 0])


INDEXING = {
    "index_copy": ([(4, 3), (2, 3)], lambda m, x, s: x.index_copy(0, m.tensor(IDX), s)),
    "index_copy_dim1": ([(3, 4), (3, 2)], lambda m, x, s: m.index_copy(x, 1, m.tensor(IDX), s)),
    "index_copy_": ([(4, 3), (2, 3)], lambda m, x, s: (x * 1).index_copy_(0, m.tensor(IDX), s)),
    "index_fill": ([(3, 4)], lambda m, x: x.index_fill(1, m.tensor([3, -1, 0]), -2.0)),
    "index_fill_": ([(3, 4)], lambda m, x: (x * 1).index_fill_(0, m.tensor([1]), 7.0)),
    "index_put": ([(4, 3), (2,)], lambda m, x, v: x.index_put((m.tensor([0, 3]), m.tensor([1, 2])), v)),
    "index_put_acc": ([(4, 3), (3, 3)], lambda m, x, v: m.index_put(x, (m.tensor([1, 1, 2]),), v, accumulate=True)),
    "index_put_bcast": ([(4, 3), (3,)], lambda m, x, v: x.index_put((m.tensor([0, 2]),), v)),
    "index_put_": ([(4, 3), (1,)], lambda m, x, v: (x * 1).index_put_((m.tensor([0, 2]), m.tensor([1, 1])), v)),
    "index_reduce_prod": ([(4, 3), (3, 3)], lambda m, x, s: x.index_reduce(0, m.tensor([0, 2, 0]), s, "prod")),
    "index_reduce_mean": ([(4, 3), (3, 3)], lambda m, x, s: x.index_reduce(0, m.tensor([0, 2, 0]), s, "mean",
                                                                          include_self=False)),
    "index_reduce_amax": ([(3, 4), (3, 2)], lambda m, x, s: x.index_reduce(1, m.tensor([3, 1]), s, "amax")),
    "masked_scatter": ([(3, 4), (12,)], lambda m, x, s: x.masked_scatter(x.detach() > 0, s)),
    "masked_scatter_bcast": ([(3, 4), (4, 3)], lambda m, x, s: x.masked_scatter(m.tensor([True, False, True, False]), s)),
    "masked_scatter_": ([(3, 4), (12,)], lambda m, x, s: (x * 1).masked_scatter_(x.detach() < 0, s)),
    "put": ([(3, 4), (3,)], lambda m, x, s: x.put(m.tensor([0, -1, 5]), s)),
    "put_acc": ([(3, 4), (3,)], lambda m, x, s: x.put(m.tensor([1, 1, 5]), s, accumulate=True)),
    "put_": ([(3, 4), (2, 1)], lambda m, x, s: (x * 1).put_(m.tensor([[0], [7]]), s)),
    "select": ([(3, 4, 2)], lambda m, x: x.select(1, -1)),
    "select_scatter": ([(3, 4), (4,)], lambda m, x, s: m.select_scatter(x, s, 0, 1)),
    "slice_scatter": ([(5, 4), (2, 4)], lambda m, x, s: m.slice_scatter(x, s, 0, 1, 5, 2)),
    "slice_scatter_dim1": ([(3, 6), (3, 2)], lambda m, x, s: x.slice_scatter(s, dim=1, start=-2)),
    "diagonal_scatter": ([(4, 4), (3,)], lambda m, x, s: m.diagonal_scatter(x, s, 1)),
    "diagonal_scatter_3d": ([(3, 4, 5), (4, 3)], lambda m, x, s: x.diagonal_scatter(s, 0, 0, 2)),
    "diagonal_scatter_adj": ([(2, 3, 4), (2, 2)], lambda m, x, s: x.diagonal_scatter(s, -1, 1, 2)),
    "scatter_reduce_": ([(3, 4), (3, 4)], lambda m, x, s: (x * 1).scatter_reduce_(
        1, m.tensor([[0, 1, 0, 3]] * 3), s, "amax")),
    "as_strided": ([(3, 4)], lambda m, x: x.as_strided((2, 3), (1, 2), 1)),
    "as_strided_overlap": ([(3, 4)], lambda m, x: m.as_strided(x, (3, 3), (1, 1))),
    "as_strided_of_view": ([(4, 5)], lambda m, x: x[1:].as_strided((2, 2), (5, 1))),
    "narrow_copy": ([(4, 3)], lambda m, x: x.narrow_copy(0, 1, 2)),
    "ravel": ([(3, 4)], lambda m, x: x.t().ravel()),
}


@pytest.mark.parametrize("name", sorted(INDEXING))
def test_indexing_family(name):
    shapes, fn = INDEXING[name]
    both(shapes, fn)


def test_as_strided_scatter():
    # PyTorch 2.x's backward gives the input's gradient on the overwritten positions (and zero
    # elsewhere), the opposite of d(out)/d(input); tinymm's is the true derivative: values and
    # src's gradient are compared with PyTorch, the input's by finite differences.
    fn = lambda m, x, s: m.as_strided_scatter(x, s, (2, 2), (1, 3), 2)  # noqa: E731
    check_op([(3, 4), (2, 2)], lambda x, s: fn(tm, x.detach(), s), lambda x, s: fn(torch, x.detach(), s),
             gradcheck=False)
    check_op([(3, 4), (2, 2)], lambda x, s: fn(tm, x, s), torch_fn=False)
    x = tm.ones(3, 4, requires_grad=True)
    fn(tm, x, tm.zeros(2, 2)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 1, 0, 0], [1, 0, 0, 1], [1, 1, 1, 1]])


def test_index_family_on_integers():
    same_values(lambda m: m.arange(6).reshape(2, 3).index_fill(1, m.tensor([0]), -1))
    same_values(lambda m: m.arange(6).put(m.tensor([0, 5]), m.tensor([9, 8])))
    same_values(lambda m: m.zeros(3, dtype=m.int64).index_put_((m.tensor([0, 0]),), m.tensor(1), accumulate=True))


def test_index_family_errors():
    same_error(lambda m: m.zeros(3, 4).index_copy(0, m.tensor([0, 5]), m.ones(2, 4)))
    same_error(lambda m: m.zeros(3, 4).index_copy(0, m.tensor([0, 1]), m.ones(2, 3)))
    same_error(lambda m: m.zeros(3, 4).index_fill(0, m.tensor([0, 5]), 1.0))
    same_error(lambda m: m.zeros(3, 4).index_put((m.tensor([0, 5]),), m.tensor(1.0)))
    same_error(lambda m: m.zeros(3, 4).index_put_((m.tensor([0, 1]),), m.ones(3, 4)))
    same_error(lambda m: m.zeros(3, 4).index_reduce(0, m.tensor([0, 1]), m.ones(2, 4), "sum"))
    same_error(lambda m: m.zeros(3, 4).masked_scatter(m.ones(3, 4, dtype=m.bool), m.ones(5)))
    same_error(lambda m: m.zeros(3, 4).masked_scatter(m.ones(3, 4), m.ones(15)))
    same_error(lambda m: m.zeros(3, 4).put(m.tensor([12]), m.ones(1)))
    same_error(lambda m: m.zeros(3, 4).put(m.tensor([1, 2]), m.ones(3)))
    same_error(lambda m: m.zeros(3, 4).select(0, 3))
    same_error(lambda m: m.select_scatter(m.zeros(3, 4), m.ones(3), 0, 0))
    same_error(lambda m: m.slice_scatter(m.zeros(3, 4), m.ones(2, 4), 0, 0, 1))
    same_error(lambda m: m.diagonal_scatter(m.zeros(3, 4), m.ones(2)))
    same_error(lambda m: m.zeros(3, 4).as_strided((2, 2), (1, 1), 20))
    same_error(lambda m: m.as_strided_scatter(m.zeros(3, 4), m.ones(2, 2), (2, 2), (1, 1), 20))
    same_error(lambda m: m.zeros(3, 4).narrow_copy(0, 2, 3))


def test_as_strided_is_a_view():
    for m in (tm, torch):
        x = m.zeros(3, 4)
        v = x.as_strided((2, 2), (4, 1), 5)
        v.add_(1)
        assert x[1, 1].item() == 1 and x[2, 2].item() == 1 and x[1, 3].item() == 0
        assert v.storage_offset() == 5 and v.stride() == (4, 1)
    same_values(lambda m: m.arange(6.0).as_strided_((2, 2), (1, 2)))


SPLITS = {
    "tensor_split_int": lambda m, x: x.tensor_split(3, dim=1),
    "tensor_split_idx": lambda m, x: m.tensor_split(x, [1, -1, 2], dim=1),
    "tensor_split_tensor": lambda m, x: x.tensor_split(m.tensor([1, 4])),
    "tensor_split_0d": lambda m, x: x.tensor_split(m.tensor(2)),
    "split_with_sizes": lambda m, x: x.split_with_sizes([1, 3, 1], dim=1),
    "hsplit": lambda m, x: m.hsplit(x, [1, 3]),
    "hsplit_int": lambda m, x: x.hsplit(5),
    "vsplit": lambda m, x: m.vsplit(x, 2),
    "dsplit": lambda m, x: m.dsplit(x.reshape(2, 1, 10), [3]),
}


@pytest.mark.parametrize("name", sorted(SPLITS))
def test_splits(name):
    both([(4, 5)], lambda m, x: m.cat([t.reshape(-1) for t in SPLITS[name](m, x)]))
    got, want = SPLITS[name](tm, tm.zeros(4, 5)), SPLITS[name](torch, torch.zeros(4, 5))
    assert [tuple(t.shape) for t in got] == [tuple(t.shape) for t in want]


def test_split_errors():
    same_error(lambda m: m.zeros(3, 4).split_with_sizes([2, 2]))
    same_error(lambda m: m.hsplit(m.zeros(3, 4), 3))
    same_error(lambda m: m.vsplit(m.zeros(3), 3))
    same_error(lambda m: m.dsplit(m.zeros(3, 4), 2))
    same_error(lambda m: m.zeros(3, 4).tensor_split(0))


# ----------------------------------------------------------------------------- misc Tensor methods


def test_aminmax_and_nanmedian():
    both([(3, 4)], lambda m, x: m.stack(list(x.aminmax())))
    both([(3, 4)], lambda m, x: m.aminmax(x, dim=1, keepdim=True).max)
    both([(3, 4)], lambda m, x: x.aminmax(dim=0).min)
    same_error(lambda m: m.zeros(0).aminmax())
    data = np.array([[np.nan, np.nan, 1.0], [1.0, np.nan, 3.0], [4.0, 2.0, 0.5], [np.nan, 5.0, 6.0]], np.float32)
    same_values(lambda m: m.tensor(data).nanmedian(1))
    same_values(lambda m: m.tensor(data).nanmedian(0, keepdim=True))
    same_values(lambda m: m.nanmedian(m.tensor(data)))
    check_op([(4, 3)], lambda x: x.nanmedian(dim=1).values, inputs=[np.where(data.T > 2, np.nan, data.T).T.copy()
                                                                    .reshape(4, 3)], gradcheck=False)


def test_histogram():
    data = [1.0, 2.0, 2.0, 5.0, -1.0]
    same_values(lambda m: m.tensor(data).histogram(3, range=(0.0, 6.0), weight=m.tensor([1.0, 2, 1, 1, 3]),
                                                   density=True))
    same_values(lambda m: m.histogram(m.tensor(data), m.tensor([0.0, 1.5, 5.0])))
    same_values(lambda m: m.tensor(data).histogram(4))
    same_error(lambda m: m.tensor([1, 2]).histogram(3))


def test_predicates_and_conversions():
    for fn in (lambda m: m.positive(m.tensor([1.0, -2.0])), lambda m: m.isreal(m.ones(2, 3)),
               lambda m: m.tensor([1, 2]).is_signed(), lambda m: m.tensor([1], dtype=m.uint8).is_signed(),
               lambda m: m.tensor([True]).is_signed(), lambda m: m.ones(2).is_complex(), lambda m: m.ones(2).is_cpu,
               lambda m: m.ones(2).get_device(), lambda m: m.ones(2, 3).is_same_size(m.zeros(2, 3)),
               lambda m: m.is_same_size(m.ones(2), m.ones(3)), lambda m: m.tensor([0.5]).is_nonzero(),
               lambda m: m.tensor([[0]]).is_nonzero(), lambda m: m.tensor([1.7, -2.2]).byte(),
               lambda m: m.tensor([1.7, -2.2]).char(), lambda m: m.tensor([300.0, -2.2]).short(),
               lambda m: m.fill(m.ones(2, 2), 3.0), lambda m: m.zero_(m.ones(3)),
               lambda m: m.ones(2, 3).new(2, 1).shape, lambda m: m.ones(2, dtype=m.int32).new([1, 2]),
               lambda m: m.ones(2).new((3, 4)), lambda m: m.ones(2).new(m.Size([2, 3])).shape,
               lambda m: m.ones(2).new().shape):
        same_values(fn)
    x = tm.ones(2)
    assert tm.positive(x) is x
    same_error(lambda m: m.positive(m.tensor([True])))
    same_error(lambda m: m.tensor([1.0, 2.0]).is_nonzero())
    same_error(lambda m: m.tensor([]).is_nonzero())
    same_error(lambda m: m.ones(2).new(m.ones(2, dtype=m.int64)))


def test_retains_grad_and_post_accumulate_hook():
    for m in (tm, torch):
        a = m.ones(3, requires_grad=True)
        b = a * 2
        assert not a.retains_grad and not b.retains_grad
        b.retain_grad()
        assert b.retains_grad
        seen = []
        handle = a.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.numpy().copy()))
        (b * 3).sum().backward()
        assert len(seen) == 1 and np.allclose(seen[0], 6)
        handle.remove()
        (a * 1).sum().backward()
        assert len(seen) == 1
        with pytest.raises(RuntimeError):
            b.register_post_accumulate_grad_hook(lambda p: None)


def test_prelu_and_hardshrink():
    both([(2, 3, 4), (3,)], lambda m, x, w: x.prelu(w))
    both([(5, 4), (1,)], lambda m, x, w: m.prelu(x, w))
    both([(3, 4)], lambda m, x: x.hardshrink(0.7))
    both([(3, 4)], lambda m, x: m.hardshrink(x))
    same_error(lambda m: m.prelu(m.ones(2, 3), m.ones(2)))


def test_apply_map_and_random_fills():
    same_values(lambda m: m.arange(6.0).reshape(2, 3).apply_(lambda v: v * v + 1))
    same_values(lambda m: m.arange(6.0).reshape(2, 3).map_(m.tensor([1.0, 2.0, 3.0]), lambda a, b: a - b))
    same_error(lambda m: m.zeros(2, requires_grad=True).apply_(lambda v: v))
    tm.manual_seed(0)
    r = tm.zeros(1000).random_(-2, 3)
    assert set(np.unique(r.detach().numpy())) == {-2, 1, 0, -1, 2} and r.dtype == np.float32
    assert set(np.unique(tm.zeros(500).random_(4).detach().numpy())) == {0, 1, 2, 3}
    u = tm.zeros(200, dtype=tm.uint8).random_()
    assert u.detach().numpy().max() > 100
    g = tm.zeros(2000).geometric_(0.5)
    assert g.detach().numpy().min() >= 1 and abs(g.detach().numpy().mean() - 2) < 0.2
    ln = tm.zeros(2000, dtype=tm.float64).log_normal_(0.0, 0.5)
    assert (ln.detach().numpy() > 0).all() and abs(np.log(ln.detach().numpy()).std() - 0.5) < 0.05
    c = tm.zeros(2000).cauchy_(1.0, 2.0)
    assert abs(np.median(c.detach().numpy()) - 1.0) < 0.3
    same_error(lambda m: m.zeros(5).geometric_(0))
    same_error(lambda m: m.zeros(5, dtype=m.int64).cauchy_())
    same_error(lambda m: m.zeros(5).random_(3, 2))


def test_resize_():
    # grows: the old values first (the rest is uninitialised in PyTorch, zero here)
    same_values(lambda m: m.arange(6.0).resize_(2, 5).reshape(-1)[:6])
    assert tm.arange(6.0).resize_(2, 5).shape == (2, 5)
    for fn in (lambda m: m.arange(6.0).resize_(2, 2),            # shrinks: a view of the storage
               lambda m: m.arange(6.0)[1:].resize_(2, 2),        # from the storage offset
               lambda m: m.arange(6.0).reshape(2, 3)[:, :2].resize_(4),
               lambda m: m.arange(6.0).resize_as_(m.zeros(3, 2))):
        same_values(fn)
    for m in (tm, torch):
        x = m.arange(6.0)
        y = x[:4]
        y.resize_(2, 2)
        y[0, 0] = 100
        assert x[0].item() == 100  # still the same memory
    same_error(lambda m: m.zeros(2, requires_grad=True).resize_(3))


def test_pin_and_share_memory():
    x = tm.ones(2)
    assert x.share_memory_() is x
    if not tm.cuda.is_available():
        same_error(lambda m: m.zeros(2).pin_memory())


# ----------------------------------------------------------------------------- torch.* functions


@pytest.mark.parametrize("name", ["hann_window", "hamming_window", "blackman_window", "bartlett_window",
                                  "kaiser_window"])
@pytest.mark.parametrize("n,periodic", [(0, True), (1, True), (6, True), (7, False)])
def test_windows(name, n, periodic):
    same_values(lambda m: getattr(m, name)(n, periodic), atol=1e-6)
    same_values(lambda m: getattr(m, name)(5, dtype=m.float64), atol=1e-12)
    same_error(lambda m: getattr(m, name)(-1))


def test_trapezoid_family():
    both([(3, 5)], lambda m, y: m.trapezoid(y))
    both([(3, 5), (5,)], lambda m, y, x: m.trapezoid(y, x.cumsum(0)))
    both([(3, 5), (3, 5)], lambda m, y, x: m.trapezoid(y, x, dim=1))
    both([(4, 3)], lambda m, y: m.trapezoid(y, dx=0.5, dim=0))
    both([(3, 5), (5,)], lambda m, y, x: m.trapz(y, x))
    both([(3, 5)], lambda m, y: m.cumulative_trapezoid(y, dx=2.0))
    both([(3, 5), (5,)], lambda m, y, x: m.cumulative_trapezoid(y, x))
    same_values(lambda m: m.trapezoid(m.tensor([1, 2, 3])))
    same_values(lambda m: m.trapezoid(m.ones(2, 0)))
    same_error(lambda m: m.trapezoid(m.ones(3), m.ones(2)))


def test_broadcast_shapes_and_can_cast():
    same_values(lambda m: m.broadcast_shapes((2, 1), (3,), (1, 1, 1)))
    same_values(lambda m: m.broadcast_shapes(5, (1,)))
    same_error(lambda m: m.broadcast_shapes((2,), (3,)))
    names = ["bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64"]
    for a in names:
        for b in names:
            assert tm.can_cast(getattr(tm, a if a != "bool" else "bool_"), getattr(tm, b if b != "bool" else "bool_")) \
                == torch.can_cast(getattr(torch, a), getattr(torch, b)), (a, b)


LAYER_FORMS = {
    "conv2d": ([(2, 3, 6, 6), (4, 3, 3, 3), (4,)], lambda m, x, w, b: m.conv2d(x, w, b, 1, 1)),
    "conv1d": ([(2, 3, 7), (4, 3, 3)], lambda m, x, w: m.conv1d(x, w, stride=2)),
    "conv_transpose2d": ([(1, 2, 4, 4), (2, 3, 3, 3)], lambda m, x, w: m.conv_transpose2d(x, w, stride=2)),
    "batch_norm": ([(4, 3, 2), (3,), (3,)], lambda m, x, w, b: m.batch_norm(
        x, w, b, x.new_zeros(3), x.new_ones(3), True, 0.1, 1e-5, False)),
    "instance_norm": ([(2, 3, 5), (3,), (3,)], lambda m, x, w, b: m.instance_norm(
        x, w, b, None, None, True, 0.1, 1e-5, False)),
    "layer_norm": ([(2, 3, 4), (4,), (4,)], lambda m, x, w, b: m.layer_norm(x, [4], w, b, 1e-5, True)),
    "group_norm": ([(2, 4, 3)], lambda m, x: m.group_norm(x, 2)),
    "cosine_similarity": ([(3, 4), (3, 4)], lambda m, a, b: m.cosine_similarity(a, b)),
    "pairwise_distance": ([(3, 4), (3, 4)], lambda m, a, b: m.pairwise_distance(a, b)),
    "bce_logits": ([(3, 4), (3, 4)], lambda m, x, t: m.binary_cross_entropy_with_logits(x, t.sigmoid(), None, None, 2)),
    "kl_div": ([(3, 4), (3, 4)], lambda m, x, t: m.kl_div(x, t.softmax(-1), 0)),
    "margin_ranking": ([(5,), (5,)], lambda m, a, b: m.margin_ranking_loss(a, b, m.tensor([1., -1, 1, 1, -1]), 0.1, 1)),
    "bilinear": ([(2, 3), (2, 4), (5, 3, 4)], lambda m, a, b, w: m.bilinear(a, b, w)),
    "celu": ([(3, 4)], lambda m, x: m.celu(x, 0.7)),
    "selu": ([(3, 4)], lambda m, x: m.selu(x)),
    "threshold": ([(3, 4)], lambda m, x: m.threshold(x, 0.2, -1.0)),
    "rrelu_eval": ([(3, 4)], lambda m, x: m.rrelu(x)),
    "dropout_eval": ([(3, 4)], lambda m, x: m.dropout(x, 0.5, False)),
    "alpha_dropout_eval": ([(3, 4)], lambda m, x: m.alpha_dropout(x, 0.5, False)),
    "avg_pool1d": ([(2, 3, 7)], lambda m, x: m.avg_pool1d(x, 3, 2, 1)),
    "adaptive_avg_pool1d": ([(2, 3, 7)], lambda m, x: m.adaptive_avg_pool1d(x, 3)),
    "adaptive_max_pool1d": ([(2, 3, 7)], lambda m, x: m.adaptive_max_pool1d(x, 3)[0]),
    "max_pool2d": ([(1, 2, 5, 5)], lambda m, x: m.max_pool2d(x, 2)),
    "max_pool1d_with_indices": ([(1, 2, 7)], lambda m, x: m.max_pool1d_with_indices(x, 3, 2)[0]),
    "pixel_shuffle": ([(1, 8, 2, 3)], lambda m, x: m.pixel_shuffle(x, 2)),
    "constant_pad_nd": ([(2, 3)], lambda m, x: m.constant_pad_nd(x, [1, 2, 0, 1], 0.5)),
    "embedding": ([(5, 3)], lambda m, w: m.embedding(w, m.tensor([[0, 4], [2, 2]]))),
    "embedding_pad": ([(5, 3)], lambda m, w: m.embedding(w, m.tensor([[0, 4], [2, 2]]), 2)),
}


@pytest.mark.parametrize("name", sorted(LAYER_FORMS))
def test_torch_layer_forms(name):
    shapes, fn = LAYER_FORMS[name]
    both(shapes, fn, atol=1e-4, gradcheck=name in ("batch_norm", "embedding", "kl_div"))
    assert name.split("_eval")[0].replace("bce_logits", "binary_cross_entropy_with_logits").replace(
        "margin_ranking", "margin_ranking_loss").replace("embedding_pad", "embedding") in dir(tm)


def test_lazy_layer_form_names_match_their_table():
    from tinymm.nn.functional.torch_forms import TORCH_FUNCTIONS

    assert set(tm._LAZY_LAYER_FUNCTIONS) == set(TORCH_FUNCTIONS)
    for name in TORCH_FUNCTIONS:
        assert hasattr(torch, name), name
    with pytest.raises(AttributeError):
        tm.no_such_function  # noqa: B018


# ----------------------------------------------------------------------------- autograd: anomaly mode, Variable


def test_detect_anomaly_names_the_function():
    for m in (tm, torch):
        x = m.tensor([-1.0, 1.0], requires_grad=True)
        with pytest.raises(RuntimeError, match="Sqrt.*returned nan values in its 0th output"):
            with pytest.warns(UserWarning) if m is torch else _nullcontext():
                with m.autograd.detect_anomaly():
                    x.sqrt().sum().backward()
        assert not m.is_anomaly_enabled()
        x.grad = None
        x.sqrt().sum().backward()  # outside: NaN gradients pass silently
        assert np.isnan(x.grad.numpy()[0])
        m.autograd.set_detect_anomaly(True)
        assert m.is_anomaly_enabled()
        m.autograd.set_detect_anomaly(False)
        with m.autograd.set_detect_anomaly(True):
            assert m.is_anomaly_enabled()
        assert not m.is_anomaly_enabled()


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_variable_legacy_alias():
    from tinymm.autograd import Variable

    t = tm.ones(2)
    v = Variable(t, requires_grad=True)
    assert isinstance(t, Variable) and v.requires_grad and not t.requires_grad
    assert v.data_ptr() == t.data_ptr()
    with pytest.raises(TypeError):
        Variable([1, 2])
