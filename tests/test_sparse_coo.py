"""Sparse COO tensors (tinymm.sparse) against torch.sparse: construction and its errors,
coalesce, to_dense, products in both orders and their gradients, sums, arithmetic, moves."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)
IDX = [[0, 1, 1, 0, 2], [2, 0, 2, 2, 1]]   # (0, 2) twice: uncoalesced
VAL = [3.0, 4.0, 5.0, -1.0, 2.5]


def _pair(dtype="float64", requires_grad=False):
    out = []
    for lib in (tm, torch):
        v = lib.tensor(VAL, dtype=getattr(lib, dtype), requires_grad=requires_grad)
        out.append((lib.sparse_coo_tensor(lib.tensor(IDX), v, (3, 4)), v))
    return out


@needs_torch
def test_construction_coalesce_and_dense_match_torch():
    (s, _), (t, _) = _pair()
    assert s.is_sparse and str(s.layout).endswith("sparse_coo") and not s.is_coalesced()
    assert (s._nnz(), s.sparse_dim(), s.dense_dim(), tuple(s.shape), s.dim()) == \
        (t._nnz(), t.sparse_dim(), t.dense_dim(), tuple(t.shape), t.dim())
    c, tc = s.coalesce(), t.coalesce()
    assert c.is_coalesced() and c._nnz() == tc._nnz() == 4
    np.testing.assert_array_equal(c.indices().numpy(), tc.indices().numpy())
    np.testing.assert_allclose(c.values().numpy(), tc.values().numpy())
    np.testing.assert_allclose(s.to_dense().numpy(), t.to_dense().numpy())
    np.testing.assert_allclose(s.t().to_dense().numpy(), t.t().to_dense().numpy())
    inferred = tm.sparse_coo_tensor(tm.tensor(IDX), tm.tensor(VAL))
    assert tuple(inferred.shape) == tuple(torch.sparse_coo_tensor(torch.tensor(IDX), torch.tensor(VAL)).shape)


@needs_torch
@pytest.mark.parametrize("order", ["sparse @ dense", "dense @ sparse", "sparse @ vector", "mm", "spmm", "sparse.mm"])
def test_products_and_gradients_match_torch(order):
    rng = np.random.default_rng(1)
    d_left, d_right, vec = rng.standard_normal((5, 3)), rng.standard_normal((4, 2)), rng.standard_normal(4)
    weights = rng.standard_normal(64)
    results = []
    for (s, v), lib in zip(_pair(requires_grad=True), (tm, torch)):
        if order == "dense @ sparse":
            d = lib.tensor(d_left, requires_grad=True)
            out = d @ s
        elif order == "sparse @ vector":
            d = lib.tensor(vec, requires_grad=True)
            out = s @ d
        else:
            d = lib.tensor(d_right, requires_grad=True)
            fn = {"sparse @ dense": lambda a, b: a @ b, "mm": lib.mm, "spmm": lib.spmm, "sparse.mm": lib.sparse.mm}[order]
            out = fn(s, d)
        w = lib.tensor(weights[: out.numel()].reshape(tuple(out.shape)))
        (out * w).sum().backward()
        results.append((out.detach().numpy(), v.grad.numpy(), d.grad.numpy()))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@needs_torch
def test_sums_arithmetic_and_to_sparse_match_torch():
    (s, _), (t, _) = _pair()
    assert tm.sparse.sum(s).item() == pytest.approx(torch.sparse.sum(t).item())
    for dim in (0, 1):
        np.testing.assert_allclose(tm.sparse.sum(s, dim).to_dense().numpy(), torch.sparse.sum(t, dim).to_dense().numpy())
    np.testing.assert_allclose((s * 2).to_dense().numpy(), (t * 2).to_dense().numpy())
    np.testing.assert_allclose((s + s).to_dense().numpy(), (t + t).to_dense().numpy())
    np.testing.assert_allclose((s - s * 0.5).to_dense().numpy(), (t - t * 0.5).to_dense().numpy())
    dense = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -3.0]])
    ours, ref = tm.tensor(dense).to_sparse(), torch.tensor(dense).to_sparse()
    np.testing.assert_array_equal(ours.indices().numpy(), ref.indices().numpy())
    np.testing.assert_allclose(ours.values().numpy(), ref.values().numpy())


def test_to_dense_and_to_sparse_are_differentiable():
    x = tm.tensor([[0.0, 1.5], [2.0, -3.0]], dtype=tm.float64, requires_grad=True)
    (x.to_sparse().to_dense() * tm.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=tm.float64)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0.0, 2.0], [3.0, 4.0]])  # the zero entry is not stored
    v = tm.tensor(VAL, dtype=tm.float64, requires_grad=True)
    s = tm.sparse_coo_tensor(tm.tensor(IDX), v, (3, 4))
    s.coalesce().to_dense().sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), np.ones(5))
    assert s.grad is not None and s.grad._nnz() == 5


@pytest.mark.parametrize("lib_name", ["tinymm", "torch"])
def test_errors_as_torch(lib_name):
    lib = tm if lib_name == "tinymm" else torch
    if lib is None:
        pytest.skip(TORCH_REASON)
    s = lib.sparse_coo_tensor(lib.tensor(IDX), lib.tensor(VAL), (3, 4))
    with pytest.raises(RuntimeError, match="uncoalesced"):
        s.indices()
    with pytest.raises(RuntimeError, match="size is inconsistent with indices"):
        # (PyTorch checks only when asked; tinymm always does)
        lib.sparse_coo_tensor(lib.tensor(IDX), lib.tensor(VAL), (2, 4), check_invariants=True)
    with pytest.raises(RuntimeError):
        lib.sparse_coo_tensor(lib.tensor(IDX), lib.tensor(VAL[:3]), (3, 4))  # nnz mismatch
    with pytest.raises(RuntimeError):
        lib.sparse.mm(s, lib.ones(5, 2))  # inner sizes differ


def test_moves_and_dtype():
    s = tm.sparse_coo_tensor(tm.tensor(IDX), tm.tensor(VAL), (3, 4))
    assert s.dtype == tm.float32 and s.double().dtype == tm.float64 and s.to(tm.float64).dtype == tm.float64
    assert s.cpu().device.type == "cpu" and s.requires_grad is False
    assert s.requires_grad_().requires_grad
    assert "layout=tinymm.sparse_coo" in repr(s) and "nnz=5" in repr(s)
    with pytest.raises(TypeError):
        tm.exp(s)  # a dense op refuses a sparse tensor by name


@needs_torch
def test_edge_cases_match_torch():
    for lib_a, lib_b in ((tm, torch),):
        pairs = [
            lambda m: m.sparse_coo_tensor(m.zeros(2, 0, dtype=m.int64), m.zeros(0), (3, 3)).to_dense(),
            lambda m: m.sparse.mm(m.sparse_coo_tensor(m.zeros(2, 0, dtype=m.int64), m.zeros(0), (3, 3)), m.ones(3, 2)),
            lambda m: m.sparse_coo_tensor(m.tensor([[0.0, 1.0]]), m.tensor([1.0, 2.0]), (3,)).to_dense(),  # float indices
            lambda m: m.tensor(5.0).to_sparse().to_dense(),
            lambda m: m.zeros(2, 3).to_sparse().to_dense(),
            lambda m: (m.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 2.0], (2, 2)) * m.tensor([[1.0, 2.0], [3.0, 4.0]])).to_dense(),
            lambda m: m.sparse_coo_tensor([[0, 1, 2], [1, 0, 1], [0, 0, 1]], [1.0, 2.0, 3.0], (3, 2, 2)).to_dense(),
            lambda m: m.sparse.sum(m.sparse_coo_tensor([[0, 1, 2], [1, 0, 1], [0, 0, 1]], [1.0, 2.0, 3.0], (3, 2, 2)), (0, 2)).to_dense(),
        ]
        for f in pairs:
            np.testing.assert_allclose(f(lib_a).numpy(), f(lib_b).numpy())
