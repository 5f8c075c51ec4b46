"""tinymm.nn.functional.packing: real-token rows of a padded batch, and back (BertModel's
padding removal). Forward against plain NumPy indexing; backward against finite differences
(float64)."""
import numpy as np
import pytest

import tinymm as tm
from tinymm.nn.functional.packing import heads_to_rows, pack_rows, rows_to_heads, unpack_rows
from tests.numeric import numeric_grad

B, N, P, H, D = 3, 5, 3, 2, 4


def _rows(seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((B, N), bool)
    for i, length in enumerate(rng.integers(0, N + 1, size=B)):  # a row may be all padding
        mask[i, :length] = True
    mask[0, :] = True
    return mask, np.flatnonzero(mask)


@pytest.mark.parametrize("seed", range(4))
def test_forward_equals_numpy_indexing(seed):
    mask, rows = _rows(seed)
    rng = np.random.default_rng(10 + seed)
    t = rows.size
    full = rng.standard_normal((B * N, 7))
    np.testing.assert_array_equal(pack_rows(tm.tensor(full), rows).detach().numpy(), full[rows])
    back = unpack_rows(tm.tensor(full[rows]), rows, B * N).detach().numpy()
    np.testing.assert_array_equal(back[rows], full[rows])
    assert not back[~mask.reshape(-1)].any()

    x = rng.standard_normal((t, P, H, D))
    heads = rows_to_heads(tm.tensor(x), rows, B, N).detach().numpy()                  # (P, B, H, N, D)
    want = np.zeros((B * N, P, H, D))
    want[rows] = x
    np.testing.assert_array_equal(heads, want.reshape(B, N, P, H, D).transpose(2, 0, 3, 1, 4))

    o = rng.standard_normal((B, H, N, D))
    np.testing.assert_array_equal(heads_to_rows(tm.tensor(o), rows).detach().numpy(),
                                  o.transpose(0, 2, 1, 3).reshape(B * N, H, D)[rows])


@pytest.mark.parametrize("op", ["pack", "unpack", "to_heads", "to_rows"])
def test_backward_matches_finite_differences(op):
    mask, rows = _rows(7)
    rng = np.random.default_rng(3)
    t = rows.size
    shape, fn = {
        "pack": ((B * N, 3), lambda x: pack_rows(x, rows)),
        "unpack": ((t, 3), lambda x: unpack_rows(x, rows, B * N)),
        "to_heads": ((t, P, H, D), lambda x: rows_to_heads(x, rows, B, N)),
        "to_rows": ((B, H, N, D), lambda x: heads_to_rows(x, rows)),
    }[op]
    x0 = rng.standard_normal(shape)
    w = rng.standard_normal(fn(tm.tensor(x0)).shape)
    x = tm.tensor(x0, requires_grad=True)
    (fn(x) * tm.tensor(w)).sum().backward()
    probe = x0.copy()
    num = numeric_grad(lambda: float((fn(tm.tensor(probe)).detach().numpy() * w).sum()), probe)
    np.testing.assert_allclose(x.grad.numpy(), num, rtol=1e-7, atol=1e-8)


def test_bad_rows_and_shapes_are_refused_with_the_numbers():
    x = tm.randn(6, 2)
    with pytest.raises(TypeError, match="1-D integer"):
        pack_rows(x, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"in \[0, 6\).*\[1, 6\]"):
        pack_rows(x, np.array([1, 6]))
    with pytest.raises(ValueError, match="ascending, unique"):
        pack_rows(x, np.array([2, 1]))
    with pytest.raises(RuntimeError, match="3 rows for 6 packed tokens"):
        unpack_rows(x, np.array([0, 1, 2]), 8)
    with pytest.raises(RuntimeError, match="4-D"):
        rows_to_heads(x, np.arange(6), 2, 3)
    with pytest.raises(RuntimeError, match="4-D"):
        heads_to_rows(x, np.arange(6))
    with pytest.raises(ValueError, match=r"in \[0, 6\)"):
        heads_to_rows(tm.randn(2, 1, 3, 4), np.array([0, 7]))
