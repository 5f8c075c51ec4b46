"""Hostile inputs compared with PyTorch: empty tensors and zero-size dims, NaN and inf,
ties, out-of-range arguments. Each test runs one expression in both libraries and checks
that both raise (tinymm's error catchable as PyTorch's class, its message naming the
problem) or both give the same shapes, dtypes, values (NaN where NaN) and gradients."""
import re

import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

nan, inf = float("nan"), float("inf")


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _run(lib, fn, arrays, grad):
    xs = [lib.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    outs = _outputs(fn(lib, *xs))
    if grad:
        loss = sum(o.sum() * (i + 1.5) for i, o in enumerate(outs) if o.requires_grad)
        loss.backward()
    return outs, [x.grad for x in xs]


def same(fn, *arrays, grad=True):
    """fn(lib, *tensors) gives the same outputs in both libraries, and (``grad``) the same
    gradients of Σ (i + 1.5)·Σ output_i."""
    arrays = [np.asarray(a, np.float32) if isinstance(a, list) else a for a in arrays]
    (got, ggot), (want, gwant) = _run(tm, fn, arrays, grad), _run(torch, fn, arrays, grad)
    assert len(got) == len(want)
    for i, (o, t) in enumerate(zip(got, want)):
        assert tuple(o.shape) == tuple(t.shape), f"output {i}: shape {tuple(o.shape)}, torch {tuple(t.shape)}"
        assert str(o.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], f"output {i}: {o.dtype}, torch {t.dtype}"
        np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=f"output {i}")
    for i, (g, t) in enumerate(zip(ggot, gwant)):
        assert (g is None) == (t is None), f"input {i}: gradient {g}, torch {t}"
        if t is not None:
            np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-5, atol=1e-6, err_msg=f"grad of input {i}")


def same_error(fn, *arrays, match=None):
    """fn raises in PyTorch; tinymm raises an instance of that class (message matching ``match``)."""
    arrays = [np.asarray(a, np.float32) if isinstance(a, list) else a for a in arrays]
    with pytest.raises(Exception) as want:
        fn(torch, *[torch.tensor(a) for a in arrays])
    with pytest.raises(want.type) as got:
        fn(tm, *[tm.tensor(a) for a in arrays])
    if match is not None:
        assert re.search(match, str(got.value)), f"message {str(got.value)!r} does not match {match!r}"


# ---------------------------------------------------------------- empty tensors
@pytest.mark.parametrize("shape", [(0,), (3, 0)])
def test_median_of_empty(shape):
    same(lambda L, x: x.median(), np.zeros(shape, np.float32))
    same(lambda L, x: x.nanmedian(), np.zeros(shape, np.float32))
    same_error(lambda L, x: x.median(-1), np.zeros(shape, np.float32), match="non-zero size")


def test_median_of_empty_integers_is_refused():
    # PyTorch returns INT64_MIN, a value no element had: tinymm refuses instead
    with pytest.raises(RuntimeError, match="empty"):
        tm.tensor(np.zeros(0, np.int64)).median()


def test_kthvalue_empty_and_k_out_of_range():
    same_error(lambda L, x: x.kthvalue(1, 1), np.zeros((3, 0), np.float32), match="non-zero size")
    same_error(lambda L, x: x.kthvalue(4), [1.0, 2.0, 3.0], match="kthvalue.*k=4 out of range")
    same_error(lambda L, x: x.kthvalue(0), [1.0, 2.0, 3.0], match="kthvalue.*k=0 out of range")


def test_logcumsumexp_of_empty_backward():
    same(lambda L, x: L.logcumsumexp(x, 0), np.zeros((0, 4), np.float32))


# ---------------------------------------------------------------- NaN, inf, ties
def test_median_propagates_nan():
    rows = [[1.0, nan, 3.0], [2.0, 0.0, -1.0], [nan, nan, 1.0], [inf, 4.0, -inf]]
    same(lambda L, x: x.median(1), rows)
    same(lambda L, x: x.median(1, keepdim=True), rows)
    same(lambda L, x: x.median(), rows)


def test_median_all_shares_the_gradient_among_ties():
    same(lambda L, x: x.median(), [2.0, 1.0, 2.0, 2.0, 3.0])


def test_std_of_a_constant_row_has_zero_gradient():
    same(lambda L, x: x.std(1), [[1.0, 1.0, 1.0], [2.0, 2.0, 1.0]])
    same(lambda L, x: x.std(), [3.0, 3.0])


def test_floor_divide_is_python_floor_division():
    a = [1.0, -1.0, inf, -inf, nan, 7.0, 1.0, 0.3]
    b = [inf, inf, 2.0, 2.0, 2.0, 0.0, 0.1, 0.1]
    same(lambda L, x, y: x // y, a, b, grad=False)
    same(lambda L, x, y: L.div(x, y, rounding_mode="floor"), np.array(a), np.array(b), grad=False)


@pytest.mark.parametrize("loss", ["smooth_l1_loss", "huber_loss"])
def test_robust_losses_keep_a_finite_gradient_at_inf(loss):
    same(lambda L, x, t: getattr(L.nn.functional, loss)(x, t), [inf, 1.0, -inf, 0.5], [0.0, 0.0, 0.0, 0.0])


def test_clamp_with_tensor_bounds_gives_ties_to_the_input():
    same(lambda L, x, lo, hi: L.clamp(x, lo, hi), [1.0, 1.0, 2.0, 0.0], [0.0, 1.0, 1.0, 1.0], [3.0, 3.0, 2.0, 2.0])
    same(lambda L, x, hi: x.clamp(max=hi), [1.0, 5.0], [1.0, 2.0])


# ---------------------------------------------------------------- dtypes and in-place writes
I64, U8, B = np.array([1, -2, 3]), np.array([1, 2, 3], np.uint8), np.array([True, False, True])


@pytest.mark.parametrize("call", [
    lambda L, x: x.clone().pow_(0.5),
    lambda L, x: x.clone().clamp_(min=0.5),
    lambda L, x: x.clone().masked_fill_(x > 0, L.ones(3)),
])
def test_inplace_refuses_a_result_it_cannot_hold(call):
    same_error(call, np.array([1, 2, 3]), match="can't be cast|0-dimensional value")


def test_inplace_refuses_to_broadcast_the_tensor_itself():
    same_error(lambda L, x, y: x.clone().add_(y), np.array(2.0, np.float32), [1.0, 2.0, 3.0],
               match=r"output with shape \[\] doesn't match the broadcast shape \[3\]")
    same_error(lambda L, x, y: x.clone().pow_(y), [2.0], [1.0, 2.0, 3.0], match="broadcast shape")


def test_bool_tensor_floor_divided_in_place_by_an_integer():
    same_error(lambda L, x: x.clone().floor_divide_(2), B, match="can't be cast")


def test_bitwise_ops_on_floats_raise_not_implemented():
    same_error(lambda L, x: x & x, [1.0, 2.0], match="not implemented for 'Float'")
    same_error(lambda L, x: ~x, [1.0, 2.0], match="not implemented for 'Float'")
    same_error(lambda L, x: L.bincount(x), [1.0, 2.0], match="not implemented")


def test_unsigned_integer_with_a_negative_python_int_wraps():
    same(lambda L, x: (x + -3, x - -3, x * -3, -3 + x), U8, grad=False)


def test_unary_plus():
    same(lambda L, x: +x, [1.0, -2.0])
    same(lambda L, x: +x, I64, grad=False)
    same_error(lambda L, x: +x, B, match="bool")
    x = tm.ones(2)
    assert +x is x  # PyTorch's positive is the tensor itself


def test_bool_powers():
    same(lambda L, x: x ** 2, B, grad=False)
    same_error(lambda L, x: x ** -1, B, match="negative integer powers")


def test_masked_fill_and_one_hot_error_classes():
    same_error(lambda L, x: x.masked_fill(x, 0.0), [1.0, 2.0], match="mask must be bool")
    same_error(lambda L, x: x.masked_fill(L.ones(3, dtype=L.bool), 0.0), [1.0, 2.0], match="does not broadcast")
    same_error(lambda L, x: L.nn.functional.one_hot(x, 3), np.array([0, 3]), match=r"\[0, 3\)")
    same_error(lambda L, x: L.nn.functional.one_hot(x, 3), np.array([0, -1]), match=r"\[0, 3\)")
    same_error(lambda L, x: L.nn.functional.one_hot(x), [1.0], match="integer index tensor")


# ---------------------------------------------------------------- indices, shapes, layers
X23 = np.arange(6, dtype=np.float32).reshape(2, 3) / 7


@pytest.mark.parametrize("call", [
    lambda L, x: L.gather(x, 1, L.tensor([[0, -1], [1, 0]])),
    lambda L, x: L.gather(x, 1, L.tensor([[0, 3], [1, 0]])),
    lambda L, x: L.zeros(2, 3).scatter(1, L.tensor([[0, -1]]), x),
    lambda L, x: L.zeros(2, 3).scatter_add(1, L.tensor([[5, 0]]), x),
    lambda L, x: L.index_select(x, 1, L.tensor([0, -1])),
    lambda L, x: L.index_select(x, 1, L.tensor([0, 3])),
])
def test_gather_scatter_index_select_refuse_negative_and_large_indices(call):
    # RuntimeError in PyTorch (tinymm's is an IndexError too); a negative index never wraps
    same_error(call, X23, match="out of (bounds|range) for dimension 1")


def test_index_dtype_and_rank_errors():
    same_error(lambda L, x: L.gather(x, 1, L.tensor([[0.0, 1.0]])), X23, match="integer")
    same_error(lambda L, x: L.index_select(x, 1, L.tensor([0.0])), X23, match="integer")
    same_error(lambda L, x: L.index_select(x, 1, L.tensor([[0]])), X23, match="vector")
    same_error(lambda L, x: L.where(x, x, x), X23, match="bool")


def test_view_refuses_what_would_need_a_copy():
    same_error(lambda L, x: x.t().view(6), X23, match="view size is not compatible.*reshape")
    same(lambda L, x: x.t().reshape(6), X23)
    same(lambda L, x: x.view(3, 2).t().contiguous().view(6), X23)


def test_empty_pieces():
    empty = np.zeros((2, 0), np.float32)
    same(lambda L, x: x.chunk(2, 1), empty)
    same(lambda L, x: x.split(2, 1), empty)
    same(lambda L, x: x.split(0, 1), empty)
    same(lambda L, x: x[[]], X23)
    same(lambda L, x, w, b: L.nn.functional.linear(x, w, b), empty, np.zeros((4, 0), np.float32), [1.0, 2.0, 3.0, 4.0])


@pytest.mark.parametrize("call, match", [
    (lambda L, x: x.split(0, 1), "split_size"),
    (lambda L, x: x.split(-1, 1), "split_size"),
    (lambda L, x: x.chunk(0, 1), "greater than 0"),
    (lambda L, x: L.stack([]), "non-empty"),
    (lambda L, x: L.cat([x[0, 0], x[0, 1]]), "zero-dimensional"),
    (lambda L, x: x.flip(0, 0), "multiple times"),
    (lambda L, x: x.sum((0, 0)), "multiple times"),
    (lambda L, x: x.movedim((0, 1), (0, 0)), "repeated dim"),
    (lambda L, x: x.clone().__setitem__(0, L.ones(4)), "broadcast"),
    (lambda L, x: x.clamp(), "min.*max"),
    (lambda L, x: L.einsum("ij,jk->ik", x), "operands"),
    (lambda L, x: L.einsum("ij->k", x), "output subscript k"),
    (lambda L, x: x @ x.t().double(), "same dtype"),
    (lambda L, x: L.einsum("ij,kj->ik", x, x.double()), "one dtype"),
    (lambda L, x: L.arange(0, 5, 0), "nonzero"),
    (lambda L, x: L.arange(5, 0, 1), "inconsistent with step sign"),
    (lambda L, x: L.linspace(0, 1, -1), "non-negative"),
    (lambda L, x: L.randint(5, 2, (3,)), "less than"),
    (lambda L, x: L.randperm(-1), "negative dimension"),
    (lambda L, x: L.nn.functional.one_hot(L.zeros(0, dtype=L.int64)), "empty"),
    (lambda L, x: L.nn.functional.binary_cross_entropy(x, L.ones(2, 3) * 2), "target should be between 0 and 1"),
    (lambda L, x: L.nn.functional.embedding(L.tensor([0, 1]), x, padding_idx=5), "padding_idx"),
    (lambda L, x: x[0, 0].flatten(1), "out of range"),
])
def test_argument_errors_raise_pytorchs_class(call, match):
    same_error(call, X23, match=match)


@pytest.mark.parametrize("call, match", [
    (lambda L, q: L.nn.functional.scaled_dot_product_attention(q[0, 0], q[0, 0], q[0, 0]), "at least 2-D"),
    (lambda L, q: L.nn.functional.scaled_dot_product_attention(q, q.double(), q), "one floating dtype"),
    (lambda L, q: L.nn.functional.scaled_dot_product_attention(*(q.long(),) * 3), "one floating dtype"),
    (lambda L, q: L.nn.functional.conv1d(q.long(), L.ones(2, 3, 1)), "floating"),
    (lambda L, q: L.nn.functional.layer_norm(q.long(), (3,)), "float32 or float64"),
    (lambda L, q: L.nn.functional.group_norm(q.long(), 1), "float32 or float64"),
    (lambda L, q: L.nn.MultiheadAttention(3, 1, batch_first=True)(q, q, q, attn_mask=L.zeros(3, 3, dtype=L.bool)), "attn_mask"),
])
def test_layer_input_errors_raise_runtime_errors(call, match):
    same_error(call, np.ones((2, 4, 3), np.float32), match=match)


def test_autograd_misuse_raises_runtime_errors():
    same_error(lambda L, x: (x.requires_grad_() * 2).backward(L.ones(2)), [1.0, 2.0, 3.0], match="shape")
    same_error(lambda L, x: x.retain_grad(), [1.0, 2.0], match="requires_grad=False")
    same_error(lambda L, x: x.item(), [1.0, 2.0], match="2 elements")


@pytest.mark.parametrize("call, match", [
    (lambda L, x: L.nn.GRU(3, 2)(x, L.zeros(1, 4, 2, dtype=L.float64)), "dtype"),
    (lambda L, x: L.nn.functional.nll_loss(x[0], L.tensor([0, 1, 2, 0]), weight=L.ones(2)), r"shape \(2,\)"),
    (lambda L, x: L.nn.functional.embedding(L.tensor([0]), x[0, 0]), "2-D"),
    (lambda L, x: L.nn.functional.layer_norm(x, (3,), weight=L.ones(2)), "shape"),
    (lambda L, x: L.nn.functional.cosine_similarity(x, L.ones(2, 4, 4)), "broadcast"),
    (lambda L, x: L.nn.functional.avg_pool2d(x[None], 2, divisor_override=0), "divisor"),
    (lambda L, x: L.nn.functional.scaled_dot_product_attention(x, x, x, attn_mask=L.zeros(4, 4, dtype=L.int64)), "attn_mask"),
    (lambda L, x: L.nn.functional.binary_cross_entropy_with_logits(x, x, pos_weight=L.ones(2)), "pos_weight"),
])
def test_layer_argument_errors_raise_pytorchs_class(call, match):
    same_error(call, np.ones((2, 4, 3), np.float32), match=match)


def test_sdpa_dropout_p_one_gives_zeros():
    q = tm.ones(1, 2, 3)
    assert np.all(tm.nn.functional.scaled_dot_product_attention(q, q, q, dropout_p=1.0).numpy() == 0)


def test_assigning_a_gradient_of_another_shape_or_dtype_is_refused():
    same_error(lambda L, x: setattr(x.requires_grad_(), "grad", L.ones(2)), [1.0, 2.0, 3.0], match="size")
    same_error(lambda L, x: setattr(x.requires_grad_(), "grad", L.ones(3, dtype=L.float64)), [1.0, 2.0, 3.0], match="dtype")
    same_error(lambda L, x: setattr(x, "grad", [1.0, 2.0, 3.0]), [1.0, 2.0, 3.0], match="Tensor or None")
    x = tm.ones(3, requires_grad=True)
    x.grad = tm.full((3,), 2.0)
    (x * 3).sum().backward()  # accumulates into the assigned gradient
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 5.0, 5.0])
    x.grad = None
    assert x.grad is None


def test_integer_reductions_keep_a_given_dtype():
    i32 = np.array([[1, -2], [3, 4]], np.int32)
    same(lambda L, x: (x.sum(dtype=L.int32), x.sum(0, dtype=L.int16), x.cumsum(1, dtype=L.int32),
                       x.prod(dtype=L.int32), x.prod(1, dtype=L.int32), x.cumprod(1, dtype=L.int16)), i32, grad=False)


def test_bool_and_uint8_results():
    same(lambda L, x: (x.any(), x.all(1)), np.array([[0, 2], [1, 1]], np.uint8), grad=False)
    same(lambda L, x: x.clamp(0, 3), B, grad=False)
    same_error(lambda L, x: x.clone().clamp_(0, 3), B, match="can't be cast")
    same_error(lambda L, x: x.floor(), B, match="bool")


def test_expand_that_stretches_nothing_is_a_writable_view():
    def write(L, x):
        x = x.clone()
        x[:1].expand(1, 3).add_(1)
        x[0].expand(1, 3).mul_(2)
        return x
    same(lambda L, x: write(L, x), X23)
    same_error(lambda L, x: x[:1].expand(2, 3).add_(1), X23, match="single memory location")


def test_attention_layers_with_the_wrong_width_raise_runtime_errors():
    same_error(lambda L, x, m: L.nn.TransformerDecoderLayer(4, 2, 8, batch_first=True)(x, m), np.ones((2, 5, 4), np.float32),
               np.ones((2, 3, 6), np.float32), match=r"key must be \(B, N, 4\)")


# ---------------------------------------------------------------- probe16 leftovers
def test_sign_of_nan_is_zero():
    # PyTorch's sign is (x > 0) - (x < 0): NaN gives 0 (NumPy's sign keeps NaN)
    same(lambda L, x: (x.sign(), L.sgn(x)), [nan, -0.0, 2.0, -inf])
    same(lambda L, x: x.sign(), np.array([nan, 1.0]), grad=False)


@pytest.mark.parametrize("dtype, bounds", [
    (np.uint8, (-1, None)), (np.uint8, (-5, 100)), (np.uint8, (-255, None)), (np.uint8, (None, 255)),
    (np.int8, (-128, 127)), (np.int32, (-3, 2**31 - 1)), (np.int64, (-2**63, None)),
])
def test_integer_clamp_takes_bounds_as_pytorch(dtype, bounds):
    x = np.array([0, 3, 100], dtype)
    same(lambda L, t: t.clamp(*bounds), x, grad=False)
    same(lambda L, t: t.clone().clamp_(*bounds), x, grad=False)


@pytest.mark.parametrize("dtype, bounds", [
    (np.uint8, (-256, None)), (np.uint8, (None, 256)), (np.int8, (-200, 50)), (np.int16, (None, 2**40)),
    (np.int32, (2**40, None)), (np.int64, (2**63, None)),
])
def test_integer_clamp_refuses_bounds_out_of_range(dtype, bounds):
    same_error(lambda L, t: t.clamp(*bounds), np.array([0, 3], dtype), match="cannot be converted to type .* overflow")


@pytest.mark.parametrize("fn", ["unique", "unique_consecutive"])
@pytest.mark.parametrize("shape, dim", [((0, 3), 1), ((2, 0, 3), 0)])
def test_unique_along_a_dim_refuses_other_empty_dims(fn, shape, dim):
    same_error(lambda L, x: getattr(L, fn)(x, dim=dim), np.zeros(shape, np.float32), match="0 sized dimensions")
    same(lambda L, x: getattr(L, fn)(x, dim=1, return_counts=True), np.zeros((3, 0), np.float32), grad=False)


@pytest.mark.parametrize("args", [(1, 5, 1), (1, -5, 1), (1, 2, -1), (1, 2, 3)])
def test_narrow_refuses_as_pytorch(args):
    same_error(lambda L, x: x.narrow(*args), np.ones((3, 4), np.float32), match="start|length")


@pytest.mark.parametrize("args", [(1, -4, 2), (1, 4, 0), (1, -1, 1), (0, 0, 3)])
def test_narrow_accepts_as_pytorch(args):
    same(lambda L, x: x.narrow(*args), np.ones((3, 4), np.float32))


@pytest.mark.parametrize("value", [5, 5.0, "0d", "one"])
def test_a_uint8_mask_cannot_take_a_fill_value(value):
    def write(L, x, m):
        v = {"0d": L.tensor(5.0), "one": L.tensor([5.0])}.get(value, value)
        x.clone()[m] = v

    same_error(write, np.zeros((2, 3), np.float32), np.array([1, 0], np.uint8), match="only supports boolean masks")


def test_a_uint8_mask_still_reads_and_takes_a_tensor_of_values():
    def write(L, x, m):
        y = x.clone()
        y[m] = L.ones(3)
        return y, x[m]

    same(write, np.zeros((2, 3), np.float32), np.array([1, 0], np.uint8), grad=False)
