"""layer_norm's boundary: everything is checked once, in the public function; the kernels trust it."""
import numpy as np
import pytest

import tinymm as tm
import tinymm.nn.functional as F


def test_layer_norm_bad_arguments_are_named():
    x = tm.randn(3, 7)
    with pytest.raises(ValueError, match=r"layer_norm: weight has shape \(5,\), expected \(7,\)"):
        F.layer_norm(x, 7, weight=tm.ones(5))
    with pytest.raises(ValueError, match=r"layer_norm: bias has shape \(7, 1\), expected \(7,\)"):
        F.layer_norm(x, 7, bias=tm.ones(7, 1))
    with pytest.raises(TypeError, match="layer_norm: dtype mismatch: input is tinymm.float32, weight is tinymm.float64"):
        F.layer_norm(x, 7, weight=tm.ones(7, dtype=tm.float64))
    with pytest.raises(ValueError, match=r"input shape \(3, 7\) does not end with normalized_shape \(3,\)"):
        F.layer_norm(x, 3)
    with pytest.raises(TypeError, match="layer_norm: input has dtype tinymm.int64, expected float32 or float64"):
        F.layer_norm(tm.tensor(np.zeros((3, 7), np.int64)), 7)  # (float16 runs in float32: revd)
    with pytest.raises(ValueError, match="layer_norm: eps must be a number >= 0, got -1"):
        F.layer_norm(x, 7, eps=-1)
    with pytest.raises(ValueError, match="eps must be a number >= 0, got nan"):
        F.layer_norm(x, 7, eps=float("nan"))
    with pytest.raises(ValueError, match=r"normalized_shape \(0,\) has no elements"):
        F.layer_norm(tm.zeros(3, 0), 0)


def test_layer_norm_of_a_non_contiguous_input_matches_the_contiguous_one():
    x = tm.randn(7, 3)
    np.testing.assert_allclose(F.layer_norm(x.T, 7).detach().numpy(), F.layer_norm(tm.tensor(x.detach().numpy().T.copy()), 7).detach().numpy(),
                               rtol=1e-6, atol=1e-6)
