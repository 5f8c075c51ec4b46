"""Property tests: hypothesis draws shapes for broadcasting binary ops, reductions over any
axes with keepdim, and indexing; each is compared with PyTorch (forward and backward) when
installed, else with NumPy (forward) and float64 gradcheck."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinymm as tm
from helpers import check_op, torch


@st.composite
def broadcastable_pair(draw):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=1, max_side=4))
    return list(shapes.input_shapes)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}


@given(shapes=broadcastable_pair(), op=st.sampled_from(sorted(BINARY)), seed=st.integers(0, 2**16))
def test_binary_ops_on_any_broadcastable_shapes_match_torch_and_numpy(shapes, op, seed):
    check_op(shapes, BINARY[op], np_fn=BINARY[op], low=0.5, high=2.0, seed=seed)


@st.composite
def shape_and_axes(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5))
    axes = draw(st.lists(st.integers(0, len(shape) - 1), unique=True, max_size=len(shape)))
    neg = draw(st.booleans())
    axes = tuple(a - len(shape) if neg else a for a in axes)
    return shape, axes


@given(sa=shape_and_axes(), keep=st.booleans(), op=st.sampled_from(["sum", "mean", "logsumexp", "amax"]))
def test_reductions_over_any_axes_with_keepdim_match_torch(sa, keep, op):
    shape, axes = sa
    if not axes:
        axes = None
    tdim = axes if axes is not None else tuple(range(len(shape)))
    if op == "amax":
        tmf = lambda x: x.max(axis=axes, keepdims=keep)  # noqa: E731  NumPy spelling: values only
        tf = lambda x: torch.amax(x, dim=tdim, keepdim=keep)  # noqa: E731
        npf = lambda x: x.max(axis=axes, keepdims=keep)  # noqa: E731
    else:
        tmf = lambda x: getattr(x, op)(dim=axes, keepdim=keep)  # noqa: E731
        tf = lambda x: getattr(x, op)(dim=tdim, keepdim=keep)  # noqa: E731
        npf = None if op == "logsumexp" else (lambda x: getattr(x, op)(axis=axes, keepdims=keep))  # noqa: E731
    check_op([shape], tmf, tf, npf, atol=1e-5)


@st.composite
def index_case(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    kind = draw(st.sampled_from(["slice", "int_array", "two_arrays", "mixed", "bool"]))
    if kind == "slice":
        idx = tuple(
            slice(draw(st.integers(0, s)), draw(st.integers(0, s)) or None, draw(st.integers(1, 2))) for s in shape
        )
    elif kind == "int_array":
        idx = (np.array(draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=6))),)
    elif kind == "two_arrays" and len(shape) >= 2:
        n = draw(st.integers(1, 5))
        idx = (
            np.array(draw(st.lists(st.integers(0, shape[0] - 1), min_size=n, max_size=n))),
            np.array(draw(st.lists(st.integers(0, shape[1] - 1), min_size=n, max_size=n))),
        )
    elif kind == "mixed" and len(shape) >= 2:
        idx = (slice(None), np.array(draw(st.lists(st.integers(0, shape[1] - 1), min_size=1, max_size=4))))
    else:
        mask = np.array(draw(st.lists(st.booleans(), min_size=shape[0], max_size=shape[0])))
        idx = (mask,)
    return shape, idx


@given(case=index_case())
def test_indexing_forward_and_scatter_add_backward_match_torch(case):
    shape, idx = case
    tidx = tuple(torch.as_tensor(i) if isinstance(i, np.ndarray) else i for i in idx) if torch is not None else idx
    check_op([shape], lambda x: x[idx], lambda x: x[tidx], lambda x: x[idx])
