"""Batch norm's per-call paths (eleventh session): dx written into the layer's own array, and
the device/dtype checks skipped only when every array is a NumPy array of the input's dtype."""
import numpy as np
import pytest

import tinymm as tm
import tinymm.nn.functional as F
from tinymm.kernels import batchnorm as K


@pytest.mark.parametrize("shape", [(4, 3), (4, 3, 5), (2, 3, 4, 5), (1, 2, 3, 1, 2)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_out_is_the_plain_result(shape, training, dtype):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(dtype)
    C = shape[1]
    x3 = x.reshape(shape[0], C, -1)
    w = rng.standard_normal(C).astype(dtype)
    rm, rv = np.zeros(C, dtype), np.ones(C, dtype)
    _, mean, rstd = K.forward(x3, w, None, rm, rv, training)
    gy = rng.standard_normal(x3.shape).astype(dtype)
    dx, dw, db = K.backward(gy, x3, mean, rstd, w, training)
    for impl in ("cpu", "reference"):
        out = np.full(shape, np.nan, dtype)
        dx2, dw2, db2 = K.backward(gy, x3, mean, rstd, w, training, impl=impl, out=out)
        assert dx2 is out
        if impl == "cpu":
            np.testing.assert_array_equal(dx2.reshape(x3.shape), dx)
            np.testing.assert_array_equal(dw2, dw)
            np.testing.assert_array_equal(db2, db)
        else:
            np.testing.assert_allclose(dx2.reshape(x3.shape), dx, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 6)])
def test_layer_gradient_is_adopted_not_copied(shape):
    rng = np.random.default_rng(0)
    x = tm.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
    w = tm.tensor(np.ones(3, np.float32), requires_grad=True)
    b = tm.tensor(np.zeros(3, np.float32), requires_grad=True)
    y = F.batch_norm(x, tm.zeros(3), tm.ones(3), w, b, training=True)
    y.backward(tm.tensor(rng.standard_normal(shape).astype(np.float32)))
    assert x.grad.shape == x.shape and x.grad._data.base is None
    assert w.grad.shape == (3,) and b.grad.shape == (3,)


def test_checks_still_run_for_mixed_dtypes():
    x = tm.tensor(np.ones((4, 3), np.float32))
    with pytest.raises(Exception, match="dtype"):
        F.batch_norm(x, tm.zeros(3), tm.ones(3), tm.tensor(np.ones(3, np.float64)), None, training=True)
    with pytest.raises(Exception, match="dtype"):
        F.batch_norm(x, tm.tensor(np.zeros(3, np.float64)), tm.tensor(np.ones(3, np.float64)), training=False)
    with pytest.raises(Exception, match="shape"):
        F.batch_norm(x, tm.zeros(4), tm.ones(4), training=False)
