"""PyTorch's ``out=`` keyword on top-level functions, compared with PyTorch: the result written
into ``out`` (and returned), resizing an empty or a differently shaped ``out``, casting to its
dtype, tuples for (values, indices) results, and the errors (a floating result into an integer
``out``; ``out=`` with autograd; ``out=`` on a view op)."""
import warnings

import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

A = np.array([[1.0, 3.0], [4.0, 2.0]], np.float32)

CALLS = {
    "add": (lambda m, a, o: m.add(a, a, out=o), (2, 2), "float32"),
    "add into empty": (lambda m, a, o: m.add(a, 1, alpha=2, out=o), (0,), "float32"),
    "mul into float64": (lambda m, a, o: m.mul(a, 2, out=o), (2, 2), "float64"),
    "sum dim": (lambda m, a, o: m.sum(a, 0, out=o), (2,), "float32"),
    "matmul": (lambda m, a, o: m.matmul(a, a, out=o), (2, 2), "float32"),
    "cat": (lambda m, a, o: m.cat([a, a], 1, out=o), (0,), "float32"),
    "exp": (lambda m, a, o: m.exp(a, out=o), (2, 2), "float32"),
    "argmax into int": (lambda m, a, o: m.argmax(a, 1, out=o), (2,), "int64"),
    "eq into bool": (lambda m, a, o: m.eq(a, 3.0, out=o), (2, 2), "bool"),
    "clamp": (lambda m, a, o: m.clamp(a, 1.5, 3.5, out=o), (2, 2), "float32"),
    "where": (lambda m, a, o: m.where(a > 2, a, m.zeros(2, 2), out=o), (2, 2), "float32"),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_written_into_out_and_returned(name):
    call, shape, dtype = CALLS[name]
    results = []
    for m in (torch, tm):
        out = m.zeros(shape, dtype=getattr(m, dtype))
        got = call(m, m.tensor(A), out)
        assert got is out
        results.append((tuple(out.shape), str(out.dtype).split(".")[-1], out.detach().numpy()))
    (shape_t, dtype_t, want), (shape_m, dtype_m, got) = results
    assert shape_t == shape_m and dtype_t == dtype_m
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_view_as_out_writes_into_its_base():
    for m in (torch, tm):
        buf = m.zeros(2, 3)
        m.mul(m.ones(3), 2, out=buf[0])
        assert buf.tolist() == [[2.0, 2.0, 2.0], [0.0, 0.0, 0.0]]


def test_tuple_out_for_values_and_indices():
    for m in (torch, tm):
        values, indices = m.empty(0), m.empty(0, dtype=m.int64)
        r = m.max(m.tensor(A), 1, out=(values, indices))
        assert r[0] is values and r[1] is indices and r.values is values
        assert values.tolist() == [3.0, 4.0] and indices.tolist() == [1, 0]


def test_a_non_empty_out_of_another_shape_is_resized_with_a_warning():
    for m in (torch, tm):
        out = m.zeros(3)
        with pytest.warns(UserWarning, match="resized"):
            m.add(m.ones(2), 1, out=out)
        assert out.tolist() == [2.0, 2.0]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            m.add(m.ones(2), 1, out=m.empty(0))  # an empty out is resized silently


@pytest.mark.parametrize("call, error", [
    (lambda m: m.add(m.ones(2), 1, out=m.zeros(2, dtype=m.int64)), RuntimeError),
    (lambda m: m.mul(m.ones(2, requires_grad=True), 2, out=m.zeros(2)), RuntimeError),
    (lambda m: m.reshape(m.ones(2), (2,), out=m.zeros(2)), TypeError),
])
def test_refused_as_torch(call, error):
    for m in (torch, tm):
        with pytest.raises(error):
            call(m)


def test_out_with_autograd_off_is_fine():
    for m in (torch, tm):
        x = m.ones(2, requires_grad=True)
        with m.no_grad():
            out = m.mul(x, 2, out=m.zeros(2))
        assert out.tolist() == [2.0, 2.0] and not out.requires_grad
