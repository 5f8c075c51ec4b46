"""Wrong inputs thrown at the surface a user touches most, each run in PyTorch and in tinymm:
tensor factories, indexing, view/reshape, cat/stack, matmul, the common layers
(Linear, Conv2d, LSTM, MultiheadAttention, Embedding, LayerNorm, BatchNorm), cross_entropy and
nll_loss with wrong targets, BCE with wrong target dtypes, optimizers with bad arguments,
DataLoader and samplers with bad sizes, load_state_dict with missing/unexpected/mis-shaped
keys, integer tensors in float-only ops, NaN/inf, empty tensors and 0-size dims, and
non-contiguous / negative-stride NumPy arrays.

``raises_like``: PyTorch raises; tinymm raises an instance of PyTorch's class whose message
names the problem (``match``). ``same_result``: PyTorch accepts; tinymm gives the same shape,
dtype and values. Every case runs PyTorch first, so a case PyTorch stops refusing fails
here instead of passing on a stale assumption."""
import re

import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

nan, inf = float("nan"), float("inf")


def raises_like(fn, match):
    with pytest.raises(Exception) as want:
        fn(torch)
    with pytest.raises(want.type) as got:
        fn(tm)
    assert re.search(match, str(got.value)), f"tinymm's message {str(got.value)!r} does not name {match!r}"


def _values(out):
    if isinstance(out, (tuple, list)):
        return [_values(o) for o in out]
    if hasattr(out, "detach"):
        return out.detach().numpy()
    return out


def same_result(fn):
    want, got = _values(fn(torch)), _values(fn(tm))
    _compare(want, got)


def _compare(want, got):
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want)
        for w, g in zip(want, got):
            _compare(w, g)
    elif isinstance(want, np.ndarray):
        assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)
    else:
        assert got == want


def _nn(L):
    return L.nn


def _F(L):
    return L.nn.functional


LOGITS = [[1.0, 2.0, 0.5], [0.1, 0.2, 0.3]]


# ----------------------------------------------------------------------------- factories

@pytest.mark.parametrize("fn, match", [
    (lambda L: L.zeros(-1, 3), "negative dimension"),
    (lambda L: L.zeros(2.5), "size must be a tuple of ints"),
    (lambda L: L.arange(0, 5, 0), "step must be nonzero"),
    (lambda L: L.arange(5, 0, 1), "inconsistent with step sign"),
    (lambda L: L.arange(0, nan), "unsupported range"),
    (lambda L: L.arange(0, inf), "unsupported range"),
    (lambda L: L.full((2,), "a"), "fill_value.*must be Number, not str"),
    (lambda L: L.full((2,), None), "fill_value.*must be Number, not NoneType"),
    (lambda L: L.randint(5), "size"),
    (lambda L: L.randint(0, 5), "size"),
    (lambda L: L.randint(5, 5, (3,)), "less than"),
    (lambda L: L.tensor(None), "infer dtype of NoneType"),
    (lambda L: L.tensor([1.0, None]), "infer dtype of NoneType"),
    (lambda L: L.tensor({"a": 1}), "infer dtype of dict"),
    (lambda L: L.tensor("a"), "str"),
    (lambda L: L.tensor(["a", "b"]), "str"),
    (lambda L: L.tensor([1.0, "a"]), "str"),
    (lambda L: L.tensor([2 ** 63]), "Overflow"),
    (lambda L: L.tensor(2 ** 64), "Overflow"),
    (lambda L: L.tensor([[1, 2], [3]]), "sequence|shape"),
    (lambda L: L.tensor(np.array(["a"])), "numpy.str_"),
    (lambda L: L.from_numpy(np.array([1, None], dtype=object)), "numpy.object_"),
    (lambda L: L.from_numpy([1, 2]), "numpy.ndarray"),
    (lambda L: L.eye(-1), "negative"),
    (lambda L: L.ones(2).to("tpu"), "tpu"),
    (lambda L: L.ones(2).to("float17"), "float17"),
    (lambda L: L.tensor([1, 2], requires_grad=True), "floating point"),
])
def test_factory_errors(fn, match):
    raises_like(fn, match)


@pytest.mark.parametrize("make", [
    lambda L, a: L.from_numpy(a), lambda L, a: L.as_tensor(a), lambda L, a: L.tensor(a)])
@pytest.mark.parametrize("array", [
    lambda: np.arange(5.0)[::-1], lambda: np.flip(np.arange(6.0).reshape(2, 3), 1), lambda: np.arange(12.0).reshape(3, 4)[::-2]])
def test_negative_stride_numpy_is_refused_with_the_copy_hint(make, array):
    raises_like(lambda L: make(L, array()), r"negative.*copy\(\)")
    # the hint works: the copy converts, in both libraries alike
    same_result(lambda L: make(L, array().copy()))


@pytest.mark.parametrize("array", [
    lambda: np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2],  # positive strides, not contiguous
    lambda: np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)),
    lambda: np.arange(12, dtype=np.float32).reshape(3, 4).T,
    lambda: np.float32(2.5), lambda: np.array(2.5), lambda: np.ones(2, np.float16), lambda: np.ones(2, np.int8)])
def test_non_contiguous_numpy_is_accepted_like_torch(array):
    same_result(lambda L: L.from_numpy(array()) if isinstance(array(), np.ndarray) else L.tensor(array()))
    same_result(lambda L: L.tensor(array()) * 2)
    same_result(lambda L: L.as_tensor(array()) + 1)


def test_from_numpy_of_a_strided_array_shares_its_memory():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]
    t = tm.from_numpy(a)
    a[0, 0] = 100.0
    assert t[0, 0].item() == 100.0 and t.shape == (3, 2)


def test_a_strided_tensor_gets_gradients():
    for L in (torch, tm):
        t = L.tensor(np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2], requires_grad=True)
        (t * L.tensor([1.0, 2.0])).sum().backward()
        assert t.grad.tolist() == [[1.0, 2.0]] * 3


# ----------------------------------------------------------------------------- indexing, views, cat/stack

@pytest.mark.parametrize("fn, match", [
    (lambda L: L.arange(5)[5], "out of (bounds|range)"),
    (lambda L: L.arange(5)[-6], "out of (bounds|range)"),
    (lambda L: L.zeros(2, 3)[0, 0, 0], "too many indices"),
    (lambda L: L.arange(5)[L.tensor([0, 7])], "out of (bounds|range)"),
    (lambda L: L.arange(5)[L.tensor([1.0])], "integer or bool|long, int, byte or bool"),
    (lambda L: L.arange(5)[L.tensor([True, False])], "boolean index|shape"),
    (lambda L: L.arange(5)["a"], "str"),
    (lambda L: L.arange(5)[::0], "step"),
    (lambda L: L.arange(5)[::-1], "step must be greater than zero"),
    (lambda L: L.zeros(3).__setitem__(slice(None), L.ones(2)), r"\(2,\)|size \(2\)"),
    (lambda L: L.zeros(2, 3).view(4, 2), r"\(4, 2\)|\[4, 2\]"),
    (lambda L: L.zeros(2, 3).view(-1, -1), "only one dimension can be inferred"),
    (lambda L: L.zeros(2, 3).t().view(6), "view size is not compatible"),
    (lambda L: L.zeros(2, 3).reshape(-1, 4), r"-1, 4"),
    (lambda L: L.zeros(0, 3).reshape(-1, 0), r"0 elements|\(-1, 0\)"),
    (lambda L: L.zeros(2, 3).permute(0, 0), "permutation|duplicate"),
    (lambda L: L.zeros(2, 3).transpose(0, 2), "out of range"),
    (lambda L: L.zeros(2, 3).expand(4, 3), "expand"),
    (lambda L: L.cat([]), "non-empty"),
    (lambda L: L.cat([L.zeros(2, 3), L.zeros(2, 4)]), r"\(2, 4\)|size 4"),
    (lambda L: L.cat([L.zeros(2, 3), L.zeros(3)]), "dim"),
    (lambda L: L.cat([L.zeros(2, 3), L.zeros(2, 3)], dim=2), "out of range"),
    (lambda L: L.cat(L.zeros(2, 3)), "must be tuple of Tensors, not Tensor"),
    (lambda L: L.stack(L.zeros(2, 3)), "must be tuple of Tensors, not Tensor"),
    (lambda L: L.stack([L.zeros(2), L.zeros(3)]), r"\(3,\)|\[3\]"),
    (lambda L: L.stack([]), "non-empty"),
    (lambda L: L.ones(4).split([1, 2]), "sum"),
    (lambda L: L.ones(4).chunk(0), "greater than 0"),
])
def test_indexing_and_shape_errors(fn, match):
    raises_like(fn, match)


@pytest.mark.parametrize("fn", [
    lambda L: L.zeros(2, 3)[None, ..., 1],
    lambda L: L.ones(3, 2)[L.zeros(0, dtype=L.int64)],
    lambda L: L.ones(3, 2)[L.zeros(3, dtype=L.bool)],
    lambda L: L.ones(3, 2)[[]],
    lambda L: L.cat([L.zeros(2, 3), L.zeros(0)]),  # the legacy empty 1-D piece is skipped
    lambda L: L.cat([L.zeros(2, dtype=L.int64), L.zeros(2)]),
    lambda L: L.cat([L.zeros(0, 3), L.zeros(0, 3)]),
    lambda L: L.ones(2, 0).repeat(2, 3),
    lambda L: L.zeros(0, 3).min(1),
    lambda L: L.zeros(0).sort(),
])
def test_index_and_shape_edges_accepted_like_torch(fn):
    same_result(fn)


# ----------------------------------------------------------------------------- matmul and float-only ops

@pytest.mark.parametrize("fn, match", [
    (lambda L: L.zeros(2, 3) @ L.zeros(4, 5), r"2x3 and 4x5|\(2, 3\) and \(4, 5\)"),
    (lambda L: L.matmul(L.tensor(1.0), L.zeros(3)), "1D|1 dimension"),
    (lambda L: L.zeros(2, 2, 3) @ L.zeros(3, 3, 4), "broadcast|must match"),
    (lambda L: L.ones(2, 3, dtype=L.int64) @ L.ones(3, 2), "same dtype"),
    (lambda L: L.mm(L.zeros(2, 2, 3), L.zeros(3, 4)), "matrix"),
    (lambda L: L.bmm(L.zeros(2, 3), L.zeros(3, 4)), "3D|3-D"),
    (lambda L: L.dot(L.zeros(3), L.zeros(4)), "3 and 4"),
    (lambda L: L.ones(2, 2, dtype=L.bool) @ L.ones(2, 2, dtype=L.bool), "not implemented for 'Bool'"),
    (lambda L: L.mm(L.ones(2, 2, dtype=L.bool), L.ones(2, 2, dtype=L.bool)), "not implemented for 'Bool'"),
    (lambda L: L.bmm(L.ones(1, 2, 2, dtype=L.bool), L.ones(1, 2, 2, dtype=L.bool)), "not implemented for 'Bool'"),
    (lambda L: L.dot(L.ones(2, dtype=L.bool), L.ones(2, dtype=L.bool)), "not implemented for 'Bool'"),
    (lambda L: L.mv(L.ones(2, 2, dtype=L.bool), L.ones(2, dtype=L.bool)), "not implemented for 'Bool'"),
    (lambda L: L.einsum("ij,jk->ik", L.ones(2, 2, dtype=L.bool), L.ones(2, 2, dtype=L.bool)), "not implemented for 'Bool'"),
    (lambda L: L.arange(4).mean(), "floating point"),
    (lambda L: L.arange(4).std(), "floating point"),
    (lambda L: _F(L).softmax(L.arange(4), 0), "not implemented for 'Long'"),
    (lambda L: L.tensor([True, False]).abs(), "not implemented for 'Bool'"),
    (lambda L: L.tensor([True, False]).argmax(), "does not support bool"),
    (lambda L: L.tensor([True, False]).argmin(), "does not support bool"),
    (lambda L: L.tensor([True, False]).median(), "not implemented for 'Bool'"),
    (lambda L: _F(L).normalize(L.tensor([[1, 2]])), "floating point"),
    (lambda L: _F(L).cosine_similarity(L.ones(2, 4, dtype=L.int64), L.ones(2, 4, dtype=L.int64)), "floating point"),
    (lambda L: _F(L).interpolate(L.ones(1, 1, 4, dtype=L.int64), scale_factor=2), "floating|not implemented"),
    (lambda L: _F(L).mse_loss(L.ones(2, dtype=L.int64), L.ones(2, dtype=L.int64)), "not implemented for 'Long'"),
])
def test_matmul_and_dtype_errors(fn, match):
    raises_like(fn, match)


FLOAT_ONLY = ["elu", "selu", "celu", "gelu", "silu", "mish", "softplus", "hardswish", "hardsigmoid", "leaky_relu",
              "logsigmoid", "softshrink", "hardshrink", "glu", "rrelu"]


@pytest.mark.parametrize("name", FLOAT_ONLY)
@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_integer_tensors_into_float_only_activations_raise(name, dtype):
    data = np.array([[-1, 2], [3, 4]]).astype(dtype)
    raises_like(lambda L: getattr(_F(L), name)(L.tensor(data)), r"not implemented for '(Long|Int|Bool)'")


@pytest.mark.parametrize("name", ["relu", "relu6", "hardtanh", "softsign", "tanhshrink", "sigmoid", "tanh"])
def test_integer_tensors_where_torch_takes_them(name):
    fn = getattr(torch, name) if name in ("sigmoid", "tanh") else None
    same_result(lambda L: (getattr(L, name) if fn is not None else getattr(_F(L), name))(L.tensor([[-1, 2], [7, 4]])))


@pytest.mark.parametrize("name", ["relu6", "hardtanh", "softsign", "tanhshrink"])
def test_bool_tensors_into_activations_raise(name):
    raises_like(lambda L: getattr(_F(L), name)(L.tensor([True, False])), "Bool|bool")


def test_float_activations_keep_working_and_their_gradients():
    for name in FLOAT_ONLY:
        def run(L):
            x = L.tensor([[-1.5, 0.3], [2.0, -0.2]], requires_grad=True)
            y = getattr(_F(L), name)(x)
            y.sum().backward()
            return [y, x.grad]
        if name == "rrelu":
            continue  # random slopes in training mode
        same_result(run)


# ----------------------------------------------------------------------------- layers

@pytest.mark.parametrize("fn, match", [
    (lambda L: _nn(L).Linear(3, 4)(L.ones(2, 5)), r"5|3"),
    (lambda L: _nn(L).Linear(3, 4)(L.ones(2, 3, dtype=L.int64)), "dtype|Long"),
    (lambda L: _nn(L).Linear(3, 4)(L.ones(2, 3, dtype=L.float64)), "dtype|Double"),
    (lambda L: _nn(L).Linear(-1, 4), "negative|non-negative"),
    (lambda L: _nn(L).Conv2d(3, 4, 3)(L.ones(1, 2, 5, 5)), "channels"),
    (lambda L: _nn(L).Conv2d(3, 4, 3)(L.ones(1, 1, 3, 5, 5)), "4D|4-D|3D|3-D"),
    (lambda L: _nn(L).Conv2d(3, 4, 3)(L.ones(1, 3, 2, 2)), "kernel size|larger than the padded input"),
    (lambda L: _nn(L).Conv2d(3, 4, 3, groups=2), "divisible by groups"),
    (lambda L: _nn(L).Conv2d(3, 4, 3, padding="same", stride=2), "padding='same'"),
    (lambda L: _nn(L).Conv2d(3, 4, 3, padding_mode="wrap"), "padding_mode"),
    (lambda L: _nn(L).LSTM(4, 5, batch_first=True)(L.ones(2, 3, 6)), "input.size\\(-1\\)|4"),
    (lambda L: _nn(L).LSTM(4, 5)(L.ones(2, 3, 4, 1)), "2D|3D|3 dims"),
    (lambda L: _nn(L).LSTM(4, 5)(L.ones(3, 2, 4), (L.zeros(1, 2, 6), L.zeros(1, 2, 5))), r"hidden|\(1, 2, 5\)"),
    (lambda L: _nn(L).LSTM(4, 5, dropout=1.5), "dropout"),
    (lambda L: _nn(L).LSTM(4, 5, proj_size=5), "proj_size"),
    (lambda L: _nn(L).GRU(4, 5)(L.ones(3, 2, 6)), "input.size\\(-1\\)|4"),
    (lambda L: _nn(L).LSTMCell(4, 5)(L.ones(2, 6)), "4|6"),
    (lambda L: _nn(L).MultiheadAttention(10, 3), "divisible|divide"),
    (lambda L: _nn(L).MultiheadAttention(8, 2)(L.ones(3, 2, 6), L.ones(3, 2, 6), L.ones(3, 2, 6)), "8"),
    (lambda L: _nn(L).MultiheadAttention(8, 2)(L.ones(3, 2, 8), L.ones(4, 2, 8), L.ones(5, 2, 8)), "key|value"),
    (lambda L: _nn(L).MultiheadAttention(8, 2)(L.ones(3, 2, 8), L.ones(3, 2, 8), L.ones(3, 2, 8),
                                               key_padding_mask=L.zeros(2, 4, dtype=L.bool)), "key_padd(ing|ed)_mask"),
    (lambda L: _nn(L).MultiheadAttention(8, 2)(L.ones(3, 2, 8), L.ones(3, 2, 8), L.ones(3, 2, 8),
                                               attn_mask=L.zeros(3, 3, dtype=L.int64)), "bool and floating|bool or floating"),
    (lambda L: _nn(L).MultiheadAttention(8, 2)(L.ones(1, 3, 2, 8), L.ones(1, 3, 2, 8), L.ones(1, 3, 2, 8)), "3D|3-D|\\(B, N, 8\\)"),
    (lambda L: _nn(L).Embedding(5, 3)(L.tensor([5])), "out of range"),
    (lambda L: _nn(L).Embedding(5, 3)(L.tensor([-1])), "out of range"),
    (lambda L: _nn(L).Embedding(5, 3)(L.tensor([1.0])), "Long|Int|integer"),
    (lambda L: _nn(L).Embedding(5, 3, padding_idx=5), "padding_idx"),
    (lambda L: _nn(L).LayerNorm(4)(L.ones(2, 5)), r"\[\*, 4\]|4"),
    (lambda L: _nn(L).LayerNorm(4)(L.ones(2, 4, dtype=L.int64)), "Long|float"),
    (lambda L: _nn(L).BatchNorm2d(3)(L.ones(2, 4, 5, 5)), "3|4"),
    (lambda L: _nn(L).BatchNorm2d(3)(L.ones(3, 5, 5)), "4D|4-D"),
    (lambda L: _nn(L).BatchNorm1d(3)(L.ones(1, 3)), "more than 1 value per channel"),
    (lambda L: _nn(L).GroupNorm(3, 4), "divisible"),
    (lambda L: _nn(L).MaxPool2d(3)(L.ones(1, 1, 2, 2)), "too small|does not fit"),
    (lambda L: _nn(L).Dropout(1.5), r"dropout probability|p must be in \[0, 1\]"),
    (lambda L: _F(L).softmax(L.ones(3, 3), dim=2), "out of range"),
    (lambda L: _F(L).one_hot(L.tensor([-1, 0])), "non-negative|\\[0"),
    (lambda L: _F(L).one_hot(L.tensor([3]), 3), "smaller than num_classes|\\[0, 3\\)"),
    (lambda L: _F(L).pad(L.ones(2, 3), (1,)), "divisible by 2|even"),
    (lambda L: _nn(L).Sequential(_nn(L).Linear(2, 2), "relu"), "Module"),
    (lambda L: _nn(L).Module().add_module("a.b", _nn(L).Linear(2, 2)), r"\."),
    (lambda L: setattr(_nn(L).Linear(2, 2), "weight", L.ones(2, 2)), "Parameter"),
    (lambda L: _nn(L).Parameter(L.ones(2, dtype=L.int64)), "floating point"),
])
def test_layer_errors(fn, match):
    raises_like(fn, match)


@pytest.mark.parametrize("fn", [
    lambda L: _nn(L).Linear(3, 4)(L.ones(0, 3)).shape,
    lambda L: _nn(L).Linear(0, 4)(L.ones(2, 0)).shape,
    lambda L: _nn(L).Conv2d(3, 4, 3)(L.ones(0, 3, 5, 5)).shape,
    lambda L: _nn(L).LSTM(4, 5)(L.ones(3, 0, 4))[0].shape,
    lambda L: _nn(L).LayerNorm(4)(L.ones(0, 4)).shape,
    lambda L: _nn(L).BatchNorm1d(3).eval()(L.ones(1, 3)),
    lambda L: _nn(L).Embedding(5, 3)(L.zeros(0, dtype=L.int64)).shape,
    lambda L: _nn(L).Embedding(5, 3)(L.tensor([1], dtype=L.int32)).shape,
    lambda L: _nn(L).MaxPool2d(2)(L.zeros(0, 2, 4, 4)).shape,
    lambda L: _nn(L).MultiheadAttention(4, 2, batch_first=True)(L.zeros(0, 3, 4), L.zeros(0, 3, 4), L.zeros(0, 3, 4))[0].shape,
    lambda L: _F(L).softmax(L.zeros(0, 3), -1),
    lambda L: _F(L).softmax(L.tensor([-inf, -inf]), 0),
    lambda L: _F(L).log_softmax(L.tensor([-inf, -inf]), 0),
    lambda L: _F(L).softmax(L.tensor([inf, 1.0]), 0),
])
def test_layer_edges_accepted_like_torch(fn):
    torch.manual_seed(0)
    same_result(fn)


def test_empty_batches_backpropagate_like_torch():
    def run(L):
        L.manual_seed(0)
        x = L.zeros(0, 3, requires_grad=True)
        lin = _nn(L).Linear(3, 4)
        y = _F(L).cross_entropy(lin(x), L.zeros(0, dtype=L.int64), reduction="sum")
        y.backward()
        return [y, x.grad.shape, lin.weight.grad]
    same_result(run)


def test_nan_inputs_propagate_like_torch():
    same_result(lambda L: [L.tensor([1.0, nan]).sum(), L.tensor([1.0, nan]).max(), L.tensor([1.0, nan, 3.0]).argmax(),
                           L.tensor([3.0, nan, 1.0]).sort().values, L.tensor([nan]).clamp(0, 1),
                           L.nan_to_num(L.tensor([nan, inf, -inf])), L.isfinite(L.tensor([nan, inf, 1.0]))])
    same_result(lambda L: _nn(L).LayerNorm(4)(L.full((2, 4), nan)))
    same_result(lambda L: _F(L).cross_entropy(L.tensor([[inf, 0.0, 0.0]]), L.tensor([0])))
    same_result(lambda L: _F(L).cross_entropy(L.full((2, 3), nan), L.tensor([0, 1])))


# ----------------------------------------------------------------------------- losses

@pytest.mark.parametrize("fn, match", [
    (lambda L: _F(L).cross_entropy(L.tensor(LOGITS), L.tensor([0, 3])), "out of bounds|out of range"),
    (lambda L: _F(L).cross_entropy(L.tensor(LOGITS), L.tensor([0, -1])), "out of bounds|out of range"),
    (lambda L: _F(L).cross_entropy(L.tensor(LOGITS), L.tensor([0, 1, 2])), "batch_size|batch size|3"),
    (lambda L: _F(L).cross_entropy(L.tensor(LOGITS), L.tensor([0.0, 1.0])), "probabilit|shape|Float"),
    (lambda L: _F(L).cross_entropy(L.tensor(LOGITS), L.tensor([True, False])), "Bool|bool"),
    (lambda L: _F(L).cross_entropy(L.tensor(LOGITS), L.tensor([[0], [1]])), "1D|multi-target|shape"),
    (lambda L: _F(L).cross_entropy(L.tensor(LOGITS), L.ones(2, 4) / 4), "shape|size"),
    (lambda L: _F(L).cross_entropy(L.tensor([[1, 2]]), L.tensor([0])), "Long|int64"),
    (lambda L: _F(L).cross_entropy(L.tensor(1.0), L.tensor(0)), r"dimension|\(N, C, \.\.\.\)"),
    (lambda L: _F(L).cross_entropy(L.tensor(LOGITS), L.tensor([0, 1]), weight=L.ones(2)), "weight"),
    (lambda L: _F(L).cross_entropy(L.tensor(LOGITS), L.tensor([0, 1]), reduction="avg"), "reduction|avg"),
    (lambda L: _F(L).cross_entropy(L.ones(2, 3, 4), L.zeros(2, 5, dtype=L.int64)), "shape|size"),
    (lambda L: _nn(L).CrossEntropyLoss()(L.tensor(LOGITS), L.tensor([0, 3])), "out of bounds|out of range"),
    (lambda L: _F(L).nll_loss(L.tensor(LOGITS).log_softmax(1), L.tensor([0, 3])), r"out of bounds|in \[0, 3\)"),
    (lambda L: _F(L).cross_entropy(L.tensor(LOGITS), L.tensor([0, 1], dtype=L.int32)), "Long or Byte"),
    (lambda L: _F(L).nll_loss(L.tensor(LOGITS), L.tensor([0, 1], dtype=L.int16)), "Long or Byte"),
    (lambda L: _F(L).nll_loss(L.tensor(LOGITS).log_softmax(1), L.tensor([0.0, 1.0])), "Long|Float|integer"),
    (lambda L: _F(L).nll_loss(L.tensor(LOGITS).log_softmax(1), L.tensor([0])), "batch|size|1"),
    (lambda L: _F(L).binary_cross_entropy(L.full((2,), 0.5), L.tensor([0, 1])), "Found dtype Long but expected Float"),
    (lambda L: _F(L).binary_cross_entropy(L.full((2,), 0.5), L.tensor([0.0, 1.0], dtype=L.float64)),
     "Found dtype Double but expected Float"),
    (lambda L: _F(L).binary_cross_entropy(L.full((2,), 0.5), L.tensor([True, False])), "Found dtype Bool but expected Float"),
    (lambda L: _nn(L).BCELoss()(L.full((2,), 0.5), L.tensor([0, 1])), "Found dtype Long"),
    (lambda L: _F(L).binary_cross_entropy(L.tensor([1.5, 0.5]), L.tensor([0.0, 1.0])), "between 0 and 1"),
    (lambda L: _F(L).binary_cross_entropy_with_logits(L.zeros(2), L.tensor([0, 1])), "can't be cast.*Long"),
    (lambda L: _nn(L).BCEWithLogitsLoss()(L.zeros(2), L.tensor([0, 1])), "can't be cast.*Long"),
    (lambda L: _F(L).binary_cross_entropy_with_logits(L.zeros(2), L.tensor([True, False])), "Bool|bool"),
    (lambda L: _F(L).binary_cross_entropy_with_logits(L.zeros(2, 1), L.tensor([0.0, 1.0])), "size|shape"),
    (lambda L: _F(L).kl_div(L.zeros(2), L.ones(2, dtype=L.int64)), "Integral inputs not supported"),
    (lambda L: _F(L).mse_loss(L.ones(2, 3), L.ones(4, 3)), "size|broadcast"),
])
def test_loss_target_errors(fn, match):
    raises_like(fn, match)


@pytest.mark.parametrize("fn", [
    lambda L: _F(L).cross_entropy(L.tensor(LOGITS), L.tensor([0, -100])),
    lambda L: _F(L).cross_entropy(L.tensor(LOGITS), L.tensor([-100, -100])),
    lambda L: _F(L).cross_entropy(L.tensor(LOGITS), L.tensor([0, 1], dtype=L.uint8)),
    lambda L: _F(L).cross_entropy(L.tensor(LOGITS), L.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])),
    lambda L: _F(L).cross_entropy(L.ones(0, 3), L.zeros(0, dtype=L.int64)),
    lambda L: _F(L).nll_loss(L.tensor(LOGITS), L.tensor([0, 5]), ignore_index=5),
    lambda L: _F(L).binary_cross_entropy_with_logits(L.zeros(2), L.tensor([0.0, 1.0], dtype=L.float64)),
    lambda L: _F(L).mse_loss(L.ones(3), L.ones(3, dtype=L.int64)),
])
def test_losses_accept_what_torch_accepts(fn):
    same_result(fn)


# ----------------------------------------------------------------------------- optimizers

def _p(L):
    return [_nn(L).Parameter(L.ones(2))]


@pytest.mark.parametrize("fn, match", [
    (lambda L: L.optim.SGD(_p(L), lr=-0.1), "Invalid learning rate"),
    (lambda L: L.optim.SGD([], lr=0.1), "empty parameter list"),
    (lambda L: L.optim.SGD(_nn(L).Parameter(L.ones(2)), lr=0.1), "iterable|Tensor"),
    (lambda L: L.optim.SGD(_p(L), lr=0.1, nesterov=True), "Nesterov"),
    (lambda L: L.optim.SGD(_p(L), lr=0.1, momentum=-1), "momentum"),
    (lambda L: L.optim.SGD(_p(L), lr=0.1, weight_decay=-1), "weight_decay"),
    (lambda L: L.optim.SGD([L.ones(2, requires_grad=True) * 2], lr=0.1), "leaf"),
    (lambda L: L.optim.Adam(_p(L), betas=(1.0, 0.999)), "beta"),
    (lambda L: L.optim.Adam(_p(L), eps=-1e-8), "epsilon"),
    (lambda L: L.optim.AdamW(_p(L), weight_decay=-0.1), "weight_decay"),
    (lambda L: L.optim.Adam([{"lr": 0.1}]), "params"),
    (lambda L: L.optim.RMSprop(_p(L), alpha=-1), "alpha"),
    (lambda L: L.optim.Adam(_p(L)).load_state_dict({"state": {}, "param_groups": []}), "parameter groups"),
    (lambda L: L.optim.Adam(_p(L)).load_state_dict(L.optim.Adam(_p(L) + _p(L)).state_dict()), "size|length|doesn't match"),
    (lambda L: setattr(_nn(L).Parameter(L.ones(2)), "grad", L.ones(3)), "size|shape"),
])
def test_optimizer_errors(fn, match):
    raises_like(fn, match)


def test_add_param_group_with_a_parameter_already_in_the_optimizer():
    def run(L):
        p = _nn(L).Parameter(L.ones(2))
        L.optim.SGD([p], lr=0.1).add_param_group({"params": [p]})
    raises_like(run, "more than one parameter group")


def test_duplicate_parameters_warn_like_torch():
    for L in (torch, tm):
        with pytest.warns(UserWarning, match="duplicate parameters"):
            L.optim.SGD(_p(L) * 2, lr=0.1)


def test_a_nan_gradient_steps_like_torch():
    def run(L):
        p = _nn(L).Parameter(L.ones(2))
        p.grad = L.tensor([nan, 1.0])
        L.optim.SGD([p], lr=0.1, momentum=0.9).step()
        return p
    same_result(run)


# ----------------------------------------------------------------------------- data loading

def _data(L):
    return L.utils.data


@pytest.mark.parametrize("fn, match", [
    (lambda L: _data(L).DataLoader(list(range(5)), batch_size=0), "batch_size"),
    (lambda L: _data(L).DataLoader(list(range(5)), batch_size=-1), "batch_size"),
    (lambda L: _data(L).DataLoader(list(range(5)), batch_size=2.0), "batch_size"),
    (lambda L: _data(L).DataLoader(list(range(5)), shuffle=True, sampler=[0, 1]), "sampler.*shuffle|shuffle.*sampler"),
    (lambda L: _data(L).DataLoader(list(range(5)), batch_size=2, batch_sampler=[[0, 1]]), "batch_sampler"),
    (lambda L: _data(L).DataLoader(list(range(5)), num_workers=-1), "num_workers"),
    (lambda L: _data(L).DataLoader(list(range(5)), batch_size=None, drop_last=True), "drop_last"),
    (lambda L: _data(L).DataLoader(list(range(5)), prefetch_factor=2), "prefetch_factor"),
    (lambda L: _data(L).DataLoader(list(range(5)), persistent_workers=True), "persistent_workers"),
    (lambda L: list(_data(L).DataLoader([L.ones(2), L.ones(3)], batch_size=2)), "equal size|same size|shape"),
    (lambda L: list(_data(L).DataLoader([None, None], batch_size=2)), "NoneType|None"),
    (lambda L: list(_data(L).DataLoader([{"a": 1}, {"b": 2}], batch_size=2)), "'a'|'b'|key"),
    (lambda L: _data(L).TensorDataset(L.ones(3), L.ones(4)), "[Ss]ize mismatch"),
    (lambda L: _data(L).random_split(range(5), [2, 2]), "Sum of input lengths"),
    (lambda L: list(_data(L).WeightedRandomSampler([-1.0, 1.0], 2)), "negative|non-negative|invalid"),
    (lambda L: _data(L).WeightedRandomSampler([1.0, 1.0], 0), "num_samples"),
    (lambda L: list(_data(L).WeightedRandomSampler([1.0, 1.0], 3, replacement=False)), "cannot sample|not enough|more"),
    (lambda L: list(_data(L).WeightedRandomSampler([0.0, 0.0], 1)), "sum|zero|invalid"),
    (lambda L: _data(L).BatchSampler(range(3), 0, False), "batch_size"),
    (lambda L: _data(L).BatchSampler(range(3), 2, "no"), "drop_last"),
    (lambda L: _data(L).DistributedSampler(range(5), num_replicas=2, rank=2), "rank"),
    (lambda L: _data(L).RandomSampler(range(3), num_samples=0), "num_samples"),
    (lambda L: _data(L).RandomSampler(range(3), replacement=1), "replacement"),
])
def test_data_loading_errors(fn, match):
    raises_like(fn, match)


def test_loader_sizes_with_drop_last_like_torch():
    same_result(lambda L: [[b.tolist() for b in _data(L).DataLoader(L.arange(7), batch_size=bs, drop_last=d)]
                           for bs in (1, 3, 7, 9) for d in (False, True)])


# ----------------------------------------------------------------------------- load_state_dict

def _load(L, make, strict=True):
    L.manual_seed(0)
    return _nn(L).Linear(2, 3).load_state_dict(make(L), strict=strict)


@pytest.mark.parametrize("make, match", [
    (lambda L: {"weight": L.ones(3, 2)}, r"Missing key\(s\) in state_dict: \"bias\""),
    (lambda L: {"weight": L.ones(3, 2), "bias": L.ones(3), "extra": L.ones(1)}, r"Unexpected key\(s\) in state_dict: \"extra\""),
    (lambda L: {"weight": L.ones(2, 3), "bias": L.ones(3)}, r"size mismatch for weight.*\[2, 3\].*\[3, 2\]"),
    (lambda L: {"weight": L.ones(3, 2), "bias": L.tensor(1.0)}, "size mismatch for bias"),
    (lambda L: [L.ones(3, 2)], "Expected state_dict to be dict-like"),
])
def test_load_state_dict_errors(make, match):
    raises_like(lambda L: _load(L, make), match)


def test_load_state_dict_strict_false_reports_the_difference():
    same_result(lambda L: [sorted(_load(L, lambda L: {"weight": L.ones(3, 2), "extra": L.ones(1)}, strict=False).missing_keys),
                           sorted(_load(L, lambda L: {"weight": L.ones(3, 2), "extra": L.ones(1)}, strict=False).unexpected_keys)])
    # a mis-shaped entry is an error even when strict=False
    raises_like(lambda L: _load(L, lambda L: {"weight": L.ones(2, 3), "bias": L.ones(3)}, strict=False), "size mismatch")


def test_load_state_dict_casts_dtypes_like_torch():
    def run(L):
        m = _nn(L).Linear(2, 3)
        m.load_state_dict({"weight": L.ones(3, 2, dtype=L.int64), "bias": L.ones(3, dtype=L.float64)})
        return [m.weight, m.bias]
    same_result(run)


# ----------------------------------------------------------------------------- randomness, schedulers, amp, parametrizations

def _sgd(L, **kw):
    return L.optim.SGD([_nn(L).Parameter(L.ones(2))], lr=0.1, **kw)


def _scaler_unscale_twice(L):
    p = _nn(L).Parameter(L.ones(2))
    opt = L.optim.SGD([p], lr=0.1)
    scaler = L.amp.GradScaler("cpu")
    scaler.scale((p * 2).sum()).backward()
    scaler.unscale_(opt)
    scaler.unscale_(opt)


def _scaler_update_without_step(L):
    scaler = L.amp.GradScaler("cpu")
    scaler.scale(L.ones(1))
    scaler.update()


def _onecycle_past_the_end(L):
    opt = _sgd(L, momentum=0.9)
    sched = L.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=2)
    for _ in range(3):
        opt.step()
        sched.step()


class _Halves:
    """A parametrization that changes the tensor's shape (made per library)."""

    @staticmethod
    def make(L):
        class Halves(L.nn.Module):
            def forward(self, X):
                return X[:2]
        return Halves()


@pytest.mark.parametrize("fn, match", [
    (lambda L: L.rand(2, dtype=L.int64), "not implemented for 'Long'"),
    (lambda L: L.randn(2, dtype=L.int32), "not implemented for 'Int'"),
    (lambda L: L.rand(2, dtype=L.bool), "not implemented for 'Bool'"),
    (lambda L: L.randn_like(L.ones(2, dtype=L.int64)), "not implemented for 'Long'"),
    (lambda L: L.normal(0.0, -1.0, size=(2,)), "std >= 0.0"),
    (lambda L: L.normal(L.zeros(2), -1.0), "std >= 0.0"),
    (lambda L: L.empty(2).normal_(0, -1), "std >= 0.0"),
    (lambda L: L.empty(2).uniform_(1, 0), r"\[from, to\)"),
    (lambda L: L.multinomial(L.tensor([-1.0, 1.0]), 1), "negative|element < 0"),
    (lambda L: L.multinomial(L.tensor([1.0, 1.0]), 3), "cannot sample|more|without replacement"),
    (lambda L: L.Generator().manual_seed("a"), "expected a long, but got str"),
    (lambda L: L.Generator().manual_seed(1.5), "expected a long, but got float"),
    (lambda L: L.manual_seed(2 ** 70), "Overflow"),
    (lambda L: L.Generator().manual_seed(2 ** 64), "Overflow"),
    (lambda L: _data(L).random_split(range(4), [2, 2], generator=42), "[Gg]enerator|randperm"),
    (lambda L: L.randperm(4, generator="seed"), "[Gg]enerator|randperm"),
    (_onecycle_past_the_end, "Tried to step 3 times"),
    (lambda L: L.optim.lr_scheduler.StepLR([1, 2], 2), "Optimizer"),
    (lambda L: L.optim.lr_scheduler.ReduceLROnPlateau(_sgd(L), mode="avg"), "mode"),
    (lambda L: L.optim.lr_scheduler.ReduceLROnPlateau(_sgd(L), factor=1.0), "Factor should be < 1.0"),
    (lambda L: L.optim.lr_scheduler.ReduceLROnPlateau(_sgd(L), min_lr=[0.1, 0.2]), "min_lr"),
    (lambda L: L.optim.lr_scheduler.CosineAnnealingWarmRestarts(_sgd(L), T_0=0), "T_0"),
    (lambda L: L.optim.lr_scheduler.CosineAnnealingWarmRestarts(_sgd(L), T_0=2, T_mult=1.5), "T_mult"),
    (lambda L: L.optim.lr_scheduler.LambdaLR(_sgd(L), [lambda e: 1.0, lambda e: 1.0]), "lr_lambdas|lambda"),
    (lambda L: L.optim.lr_scheduler.LinearLR(_sgd(L), start_factor=1.5), "[Ss]tart(ing)? multiplicative factor"),
    (lambda L: L.optim.lr_scheduler.OneCycleLR(_sgd(L), max_lr=1.0), "total_steps|epochs"),
    (lambda L: L.optim.lr_scheduler.OneCycleLR(_sgd(L), max_lr=1.0, total_steps=10, pct_start=1.5), "pct_start"),
    (lambda L: L.optim.lr_scheduler.CyclicLR(_sgd(L, momentum=0.9), 0.01, 0.1, mode="tri"), "mode"),
    (lambda L: L.optim.lr_scheduler.StepLR(_sgd(L), 2, last_epoch=3), "initial_lr"),
    (lambda L: L.optim.swa_utils.SWALR(_sgd(L), swa_lr=0.1, anneal_strategy="exp"), "anneal_strategy"),
    (lambda L: L.optim.swa_utils.SWALR(_sgd(L), swa_lr=0.1, anneal_epochs=-1), "anneal_epochs"),
    (_scaler_unscale_twice, "unscale_\\(\\) has already been called"),
    (_scaler_update_without_step, "No inf checks were recorded"),
    (lambda L: L.amp.GradScaler("cpu").step(_sgd(L)), "did not use scaler.scale"),
    (lambda L: L.amp.GradScaler("cpu").update(), "did not use scaler.scale"),
    (lambda L: L.amp.GradScaler("cpu", growth_factor=0.5), "growth"),
    (lambda L: L.nn.utils.parametrizations.weight_norm(_nn(L).Linear(2, 3), dim=5).weight, "Dimension out of range"),
    (lambda L: L.nn.utils.parametrizations.weight_norm(_nn(L).Linear(2, 3), name="w"), "with name 'w'"),
    (lambda L: L.nn.utils.parametrizations.spectral_norm(_nn(L).Linear(2, 3), name="x"), "with name 'x'"),
    (lambda L: L.nn.utils.parametrizations.orthogonal(_nn(L).BatchNorm1d(3)), "at least 2 dimensions|2-D|matri"),
    (lambda L: L.nn.utils.parametrize.register_parametrization(_nn(L).Linear(2, 3), "weight", _Halves.make(L)),
     "may not change the shape"),
    (lambda L: L.nn.utils.parametrize.register_parametrization(_nn(L).Linear(2, 3), "nope", _nn(L).Identity()),
     "with name 'nope'"),
    (lambda L: L.nn.utils.parametrize.remove_parametrizations(_nn(L).Linear(2, 3), "weight"), "parametrization"),
    (lambda L: L.utils.checkpoint.checkpoint(lambda x, s=1: x * s, L.ones(2, requires_grad=True), use_reentrant=True, s=2),
     "Unexpected keyword arguments: s"),
    (lambda L: L.utils.checkpoint.checkpoint(lambda x, s=1: x * s, L.ones(2, requires_grad=True), s=2),
     "Unexpected keyword arguments: s"),
    (lambda L: _data(L).ConcatDataset([]), "empty"),
    (lambda L: _data(L).ConcatDataset([type("S", (_data(L).IterableDataset,), {"__iter__": lambda s: iter(range(3))})()]),
     "IterableDataset"),
])
def test_training_infrastructure_errors(fn, match):
    raises_like(fn, match)


@pytest.mark.parametrize("fn", [
    lambda L: L.Generator().manual_seed(-5).initial_seed(),
    lambda L: L.Generator().manual_seed(2 ** 64 - 1).initial_seed(),
    lambda L: L.utils.checkpoint.checkpoint(lambda x, s=1: x * s, L.ones(2, requires_grad=True), use_reentrant=False, s=2),
    lambda L: next(iter(_data(L).DataLoader([1, 2.5], batch_size=2))),
    lambda L: next(iter(_data(L).DataLoader([1, 2], batch_size=2))),
    lambda L: next(iter(_data(L).DataLoader([2.5, 1], batch_size=2))),
    lambda L: next(iter(_data(L).DataLoader([True, False], batch_size=2))),
    lambda L: L.normal(0.0, 0.0, size=(2,)),
    lambda L: L.amp.GradScaler("cpu", init_scale=4.0).get_scale(),
])
def test_training_infrastructure_edges_accepted_like_torch(fn):
    same_result(fn)


def test_a_negative_seed_draws_and_replays():
    tm.manual_seed(-1)
    a = tm.rand(3)
    tm.manual_seed(2 ** 64 - 1)  # the same seed, as in PyTorch
    assert tm.rand(3).tolist() == a.tolist() and tm.initial_seed() == 2 ** 64 - 1
    g = tm.Generator().manual_seed(-7)
    assert tm.randn(2, generator=g).shape == (2,)


def test_registering_a_spectral_norm_runs_its_power_iteration_once_like_torch():
    def run(L):
        L.manual_seed(0)
        m = _nn(L).Linear(4, 3)
        w = L.tensor(np.arange(12, dtype=np.float32).reshape(3, 4) / 7.0 - 0.5)
        with L.no_grad():
            m.weight.copy_(w)
        L.nn.utils.parametrizations.spectral_norm(m)
        return m.weight.detach()  # the power iteration's start differs, its fixed point does not
    same_result(run)


# ----------------------------------------------------------------------------- init, hooks, module bookkeeping

def _hook_returning(L, value):
    x = L.ones(2, requires_grad=True)
    x.register_hook(lambda g: value)
    (x * 2).sum().backward()


@pytest.mark.parametrize("fn, match", [
    (lambda L: _nn(L).init.normal_(L.empty(2, 2), std=-1.0), "std >= 0.0"),
    (lambda L: _nn(L).init.uniform_(L.empty(2, 2), 1.0, 0.0), r"\[from, to\)"),
    (lambda L: _nn(L).init.trunc_normal_(L.empty(3), a=2.0, b=-2.0), r"\[from, to\)"),
    (lambda L: _nn(L).init.kaiming_uniform_(L.empty(3)), "fewer than 2 dimensions|at least 2"),
    (lambda L: _nn(L).init.kaiming_normal_(L.empty(2, 2), mode="fan"), "mode"),
    (lambda L: _nn(L).init.calculate_gain("swish"), "swish"),
    (lambda L: _nn(L).init.orthogonal_(L.empty(3)), "2 or more dimensions"),
    (lambda L: _hook_returning(L, 3), "expected Variable, but hook returned 'int'"),
    (lambda L: _hook_returning(L, L.ones(3)), "shape|size"),
    (lambda L: L.ones(2).requires_grad_("no"), "must be bool, not str"),
    (lambda L: _nn(L).Linear(2, 2).requires_grad_("no"), "must be bool, not str"),
    (lambda L: _nn(L).ModuleDict({1: _nn(L).Linear(1, 1)}), "should be a string. Got int"),
    (lambda L: _nn(L).Sequential(_nn(L).Linear(1, 1))[3], "out of range"),
    (lambda L: _nn(L).Sequential(_nn(L).Linear(1, 1)).get_submodule("1"), "no attribute"),
    (lambda L: _nn(L).Linear(2, 2).train("no"), "boolean"),
])
def test_init_hook_and_module_errors(fn, match):
    raises_like(fn, match)
