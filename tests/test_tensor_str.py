"""Tensors print exactly as PyTorch's do: ``repr(tinymm tensor) == repr(torch tensor)`` on drawn
shapes, values, dtypes and print options, with the dtype suffix naming ``tinymm.`` where PyTorch
names ``torch.``.

PyTorch's line wrapping counts the characters of the dtype suffix, and ``tinymm.float64`` is one
character longer than ``torch.float64``; so the comparisons switch tinymm's suffix to PyTorch's
spelling (``dtype_objects.REPR_PREFIX``, which dtypes' repr begins with) and compare whole strings, and separate tests pin the
``tinymm.`` spelling and its wrapping."""
from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinymm as tm
from helpers import TORCH_REASON, torch
from tinymm import dtype_objects, tensor_str
from tinymm.backend import cuda_status

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)
NAN, INF = float("nan"), float("inf")


def _default_options():
    tm.set_printoptions(profile="default")
    if torch is not None:
        torch.set_printoptions(profile="default")


@pytest.fixture(autouse=True)
def _restore_print_options():
    """Every test leaves both libraries' print options (and default dtype) as it found them."""
    yield
    _default_options()
    tm.set_default_dtype(tm.float32)
    if torch is not None:
        torch.set_default_dtype(torch.float32)


@contextlib.contextmanager
def _torch_dtype_names():
    saved = dtype_objects.REPR_PREFIX
    dtype_objects.REPR_PREFIX = "torch."
    try:
        yield
    finally:
        dtype_objects.REPR_PREFIX = saved


def _assert_same(ours, theirs):
    with _torch_dtype_names():
        got = repr(ours)
    want = repr(theirs)
    assert got == want, f"\ntinymm:\n{got}\ntorch:\n{want}"


def _both(arr: np.ndarray, grad: str = "none"):
    """The same values as a tinymm and a torch tensor; ``grad``: "none", "leaf"
    (requires_grad) or "node" (the output of a multiplication)."""
    ours, theirs = tm.tensor(arr), torch.tensor(arr)
    if grad != "none":
        ours.requires_grad_(True)
        theirs.requires_grad_(True)
    if grad == "node":
        ours, theirs = ours * 1, theirs * 1
    return ours, theirs


# ----------------------------------------------------------------------------- drawn inputs

FLOAT_KINDS = ("integral", "fixed", "mixed", "tiny", "huge", "special")
DTYPES = {"integral": ("float32", "float64", "float16"), "fixed": ("float32", "float64", "float16"),
          "mixed": ("float32", "float64"), "tiny": ("float32", "float64"), "huge": ("float32", "float64"),
          "special": ("float32", "float64", "float16"), "int": ("int64", "int32", "int16", "int8", "uint8"),
          "bool": ("bool",)}


def _values(kind: str, dtype: str, shape, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if kind == "int":
        info = np.iinfo(dtype)
        scale = min(10 ** int(rng.integers(1, 13)), int(info.max))
        out = rng.integers(max(-scale, int(info.min)), scale, size=n, endpoint=True)
    elif kind == "bool":
        out = rng.random(n) < 0.5
    elif kind == "integral":
        out = np.round(rng.normal(0, 10.0 ** rng.uniform(0, 9), n))
    elif kind == "fixed":
        out = rng.normal(0, 10.0 ** rng.uniform(-2, 3), n)
    elif kind == "mixed":
        out = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-9, 12, n)
    elif kind == "tiny":
        out = rng.normal(0, 1e-6, n)
    elif kind == "huge":
        out = rng.normal(0, 1e10, n)
    else:  # special: ordinary values with nan, inf, -inf, 0 and -0 among them
        out = rng.normal(0, 10.0 ** rng.uniform(-5, 5), n)
        if rng.random() < 0.5:
            out = np.round(out)
        picks = rng.random(n) < 0.3
        out[picks] = rng.choice([NAN, INF, -INF, 0.0, -0.0], int(picks.sum()))
    with np.errstate(over="ignore"):  # huge values in float16 become inf, on purpose
        return out.astype(dtype).reshape(shape)


@st.composite
def tensors(draw, max_numel=3000):
    """(array, grad mode): 0-d to 4-D, empty dimensions, and shapes above the 1000-element
    summarising threshold; every value kind and dtype."""
    dims = draw(st.lists(st.one_of(st.integers(0, 6), st.sampled_from([9, 13, 40, 170, 1100])), max_size=4))
    while np.prod(dims, dtype=np.int64) > max_numel:
        dims[dims.index(max(dims))] //= 3
    kind = draw(st.sampled_from(FLOAT_KINDS + ("int", "bool")))
    dtype = draw(st.sampled_from(DTYPES[kind]))
    arr = _values(kind, dtype, tuple(dims), draw(st.integers(0, 2 ** 32 - 1)))
    grad = draw(st.sampled_from(("none", "leaf", "node"))) if arr.dtype.kind == "f" else "none"
    return arr, grad


print_options = st.fixed_dictionaries({}, optional={
    "precision": st.integers(0, 8), "threshold": st.sampled_from([1, 6, 50, 1000, math.inf]),
    "edgeitems": st.integers(1, 4), "linewidth": st.integers(10, 140), "sci_mode": st.sampled_from([None, True, False]),
    "profile": st.sampled_from(["default", "short", "full"])})


@needs_torch
@given(tensors())
def test_repr_matches_torch_on_drawn_tensors(drawn):
    arr, grad = drawn
    ours, theirs = _both(arr, grad)
    _assert_same(ours, theirs)
    assert str(ours) == repr(ours)


@needs_torch
@given(tensors(max_numel=1500), print_options)
def test_repr_matches_torch_under_drawn_print_options(drawn, options):
    arr, grad = drawn
    ours, theirs = _both(arr, grad)
    try:
        tm.set_printoptions(**options)
        torch.set_printoptions(**options)
        _assert_same(ours, theirs)
    finally:
        _default_options()


# ----------------------------------------------------------------------------- chosen cases

CASES = [
    [1.5, 2.0, 3.25], [1e-5, 1e5], [0.0, 0.0], [NAN], [0.0, NAN, INF, -INF], [1.0, 2.0, NAN], [1e9, 1.0], [1e9],
    [1.5, INF], [-0.0], [-0.0, 1.5], [1.0, NAN, 100.0], [-0.0, 100.0], [-INF, 1.5], [1.5, -1.5], [1e-5, NAN, -INF],
    [-0.0, 1e-5], [[1, -20], [3, 4]], [-1e9, 1], [1e8], [1e8 + 8], [1e-4], [0.00009999], [999.5, 0.5], [1000.5, 1],
    [0.00015, 0.15], [True, False], [1e20], 1.5, 3.0, 1e-7, -0.0, NAN, 5, True,
]


@needs_torch
@pytest.mark.parametrize("value", CASES, ids=repr)
def test_repr_matches_torch_on_chosen_values(value):
    _assert_same(tm.tensor(value), torch.tensor(value))


MAKERS = {
    "int summarised": lambda m: m.arange(2000),
    "float summarised in sci mode": lambda m: m.arange(2000.0) / 7,
    "formatter sees only the shown elements": lambda m: m.cat([m.ones(1000) * 2, m.tensor([0.5]), m.ones(1000) * 2]),
    "3-D": lambda m: m.arange(30.0).reshape(2, 3, 5) * 1.1,
    "4-D with blank lines": lambda m: m.zeros(2, 2, 1, 2),
    "2-D summarised, rows wrapped": lambda m: m.arange(100000.0).reshape(100, 1000),
    "3-D summarised": lambda m: m.arange(2000.0).reshape(2, 2, 500),
    "wrapped at 80": lambda m: m.arange(50.0) * 1.5,
    "uint8 wrapped with dtype": lambda m: m.arange(100, dtype=m.uint8),
    "bool summarised": lambda m: m.ones(2000, dtype=m.bool),
    "float16": lambda m: m.tensor([1.0, 2.0], dtype=m.float16) / 3,
    "float16 sci": lambda m: m.tensor([1e-5, 10.0], dtype=m.float16),
    "float64 grad_fn": lambda m: m.tensor([1.0, 2.0], dtype=m.float64, requires_grad=True) * 2,
    "2-D requires_grad": lambda m: m.ones(3, 40, dtype=m.float64, requires_grad=True),
    "0-d grad_fn": lambda m: m.zeros(3, requires_grad=True).sum(),
    "empty 2-D": lambda m: m.zeros(2, 0),
    "empty 1-D int32": lambda m: m.zeros(0, dtype=m.int32),
    "empty int64": lambda m: m.zeros(0, 2, dtype=m.long),
    "empty bool": lambda m: m.zeros(0, dtype=m.bool),
    "empty float64": lambda m: m.zeros(0, 3, dtype=m.float64),
    "empty requires_grad": lambda m: m.zeros(0, 3, requires_grad=True),
    "int32": lambda m: m.tensor([1], dtype=m.int32),
}


@needs_torch
@pytest.mark.parametrize("name", list(MAKERS))
def test_repr_matches_torch_on_chosen_tensors(name):
    _assert_same(MAKERS[name](tm), MAKERS[name](torch))


@needs_torch
@pytest.mark.parametrize("n", range(8, 14))
@pytest.mark.parametrize("grad", ["none", "leaf", "node"])
def test_suffixes_wrap_as_torchs(n, grad):
    """The dtype / grad_fn / requires_grad suffixes move to their own line exactly when PyTorch's do."""
    _assert_same(*_both(np.arange(n, dtype=np.float64) * 1.5, grad))


@needs_torch
@pytest.mark.parametrize("linewidth", range(40, 70, 3))
def test_suffix_wrapping_follows_linewidth(linewidth):
    tm.set_printoptions(linewidth=linewidth)
    torch.set_printoptions(linewidth=linewidth)
    for dtype in ("float32", "float64"):
        _assert_same(*_both(np.array([1.5, 2.5], dtype), "leaf"))


@needs_torch
@pytest.mark.parametrize("options", [dict(precision=2), dict(profile="short"), dict(profile="full"), dict(sci_mode=True),
                                     dict(sci_mode=False), dict(threshold=5, edgeitems=1), dict(linewidth=30),
                                     dict(precision=0), dict(precision=8), dict(profile="short", precision=6)], ids=repr)
def test_every_print_option_matches_torch(options):
    tm.set_printoptions(**options)
    torch.set_printoptions(**options)
    for arr in (np.array([[0.123456, -2.5], [3.0, 1e-3]], np.float32), np.arange(2000.0), np.zeros(3),
                np.array([1e-5, 1e5]), np.arange(24).reshape(2, 3, 4), np.array([1.0, 2.0]), np.array(7.25)):
        _assert_same(tm.tensor(arr), torch.tensor(arr))


def test_set_printoptions_profiles_and_sci_mode_reset():
    tm.set_printoptions(precision=2, sci_mode=True)
    assert repr(tm.tensor([1.5])) == "tensor([1.50e+00])"
    tm.set_printoptions(precision=3)  # sci_mode is set by every call: back to None
    assert repr(tm.tensor([1.5])) == "tensor([1.500])"
    tm.set_printoptions(profile="full")
    assert "..." not in repr(tm.arange(2000)) and repr(tm.tensor([1.5])) == "tensor([1.5000])"
    tm.set_printoptions(profile="short")
    assert repr(tm.arange(2000)) == "tensor([   0,    1,  ..., 1998, 1999])"
    assert repr(tm.tensor([1.5, 2.25])) == "tensor([1.50, 2.25])"
    tm.set_printoptions(profile="default")
    assert repr(tm.arange(2000)) == "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"
    with pytest.raises(ValueError, match="profile"):
        tm.set_printoptions(profile="long")


def test_dtype_suffix_names_tinymm():
    """The suffix spells tinymm's module, and wraps by the length of that spelling."""
    assert repr(tm.tensor([1], dtype=tm.int32)) == "tensor([1], dtype=tinymm.int32)"
    assert repr(tm.zeros(0, 3, dtype=tm.float64)) == "tensor([], size=(0, 3), dtype=tinymm.float64)"
    assert repr(tm.tensor([1.0, 2.0], dtype=tm.float16)) == "tensor([1., 2.], dtype=tinymm.float16)"
    assert repr(tm.arange(8.0, dtype=tm.float64) * 1.5) == (
        "tensor([ 0.0000,  1.5000,  3.0000,  4.5000,  6.0000,  7.5000,  9.0000, 10.5000],\n"
        "       dtype=tinymm.float64)")
    # "tensor([1.5000, 2.5000], dtype=tinymm.float64)," needs 47 columns
    tm.set_printoptions(linewidth=46)
    assert repr(tm.tensor([1.5, 2.5], dtype=tm.float64)) == "tensor([1.5000, 2.5000],\n       dtype=tinymm.float64)"
    tm.set_printoptions(linewidth=47)
    assert repr(tm.tensor([1.5, 2.5], dtype=tm.float64)) == "tensor([1.5000, 2.5000], dtype=tinymm.float64)"


@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_default_dtype_float64_moves_the_unnamed_dtype(dtype):
    tm.set_default_dtype(tm.float64)
    torch.set_default_dtype(torch.float64)
    for arr in (np.array([1.5, 2.0], dtype), np.zeros(0, dtype), np.array([1, 2])):
        _assert_same(tm.tensor(arr), torch.tensor(arr))


@needs_torch
def test_parameter_repr_matches_torch():
    for arr, grad in ((np.array([[1.0, -2.5], [3.0, 4.0]], np.float32), True), (np.ones(2, np.float64), True),
                      (np.array([1, 2]), False), (np.arange(1200.0, dtype=np.float32), True)):
        ours = tm.nn.Parameter(tm.tensor(arr), requires_grad=grad)
        theirs = torch.nn.Parameter(torch.tensor(arr), requires_grad=grad)
        _assert_same(ours, theirs)
        assert str(ours) == repr(ours) and repr(ours).startswith("Parameter containing:\ntensor(")


@needs_torch
def test_zero_dim_format_and_str():
    for value in (1.5, 2.0, -0.0, 7, True, 1e-9):
        ours, theirs = tm.tensor(value), torch.tensor(value)
        assert str(ours) == repr(ours)
        assert f"{ours}" == f"{theirs}"
        if not isinstance(value, bool):
            assert f"{ours:.3f}" == f"{theirs:.3f}"


@needs_torch
@pytest.mark.parametrize("arr", [np.array([1 + 2j, -3.5 - 1e-5j], np.complex64), np.array([1 + 2j, 3 - 1j], np.complex64),
                                 np.array(1j, np.complex64), np.array([1.5 + 2j] * 40, np.complex64),
                                 np.array([complex(NAN, 1), 1e9 + 0j, -0.0 - 0.0j], np.complex64),
                                 np.arange(2000, dtype=np.complex64) * (1 + 1j), np.array([1 + 2j], np.complex128)],
                         ids=lambda a: f"{a.dtype}{a.shape}")
def test_complex_layout_matches_torch(arr):
    """tinymm has no complex dtype; the layout is ready for one (tensor_repr on complex arrays)."""
    with _torch_dtype_names():
        got = tensor_str.tensor_repr(arr)
    assert got == repr(torch.from_numpy(arr))


def test_device_suffix_comes_first():
    """PyTorch names a CUDA tensor's device (with its index) before the other suffixes."""
    assert tensor_str.tensor_repr(np.array([1.0, 2.0], np.float32), device="cuda:0") == "tensor([1., 2.], device='cuda:0')"
    assert tensor_str.tensor_repr(np.zeros((0, 2)), device="cuda:1", requires_grad=True) == \
        "tensor([], device='cuda:1', size=(0, 2), dtype=tinymm.float64,\n       requires_grad=True)"
    assert tensor_str.tensor_repr(np.array(2.5, np.float32), device="cpu", grad_fn="SumBackward0") == \
        "tensor(2.5000, grad_fn=<SumBackward0>)"


_gpu_ok, _gpu_why = cuda_status()


@pytest.mark.skipif(not _gpu_ok, reason=f"no CUDA device here: {_gpu_why}")
def test_cuda_tensor_repr_names_cuda_0():
    x = tm.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    assert repr(x) == "tensor([1., 2.], device='cuda:0', requires_grad=True)"
    assert repr(x * 2) == "tensor([2., 4.], device='cuda:0', grad_fn=<MulBackward0>)"
