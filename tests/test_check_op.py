"""The comparison helper itself: what it checks, and that it skips (never silently passes)
when the PyTorch oracle it was asked for is missing."""
import numpy as np
import pytest

import helpers
from helpers import TORCH_REASON, check_op


def test_without_torch_a_check_that_wants_it_skips_with_the_reason(monkeypatch):
    monkeypatch.setattr(helpers, "torch", None)
    with pytest.raises(pytest.skip.Exception, match="PyTorch is not installed"):
        check_op([(3,)], lambda x: x.exp(), np_fn=np.exp)
    assert "PyTorch is not installed" in TORCH_REASON


def test_without_torch_the_numpy_and_gradcheck_parts_still_run_first(monkeypatch):
    monkeypatch.setattr(helpers, "torch", None)
    with pytest.raises(AssertionError, match="forward vs numpy"):
        check_op([(3,)], lambda x: x.exp(), np_fn=np.sin)


def test_torch_fn_false_means_no_twin_and_never_skips(monkeypatch):
    monkeypatch.setattr(helpers, "torch", None)
    out = check_op([(2, 3)], lambda x: x.tanh(), False, np.tanh)
    assert out.shape == (2, 3)


@pytest.mark.skipif(helpers.torch is None, reason=TORCH_REASON)
def test_default_torch_fn_is_the_same_lambda_on_torch_tensors():
    seen = []

    def f(x):
        seen.append(type(x).__module__.split(".")[0])
        return x * 2

    check_op([(2,)], f, gradcheck=False)
    assert seen[:2] == ["tinymm", "torch"]


@pytest.mark.skipif(helpers.torch is None, reason=TORCH_REASON)
def test_a_wrong_gradient_against_torch_fails():
    import tinymm as tm

    class WrongExp(tm.Function):
        on_tensors = False  # an array-level op, as tinymm's own

        @staticmethod
        def forward(ctx, x):
            out = np.exp(x)
            ctx.save_for_backward(out)
            return out

        @staticmethod
        def backward(ctx, g):
            (out,) = ctx.saved_arrays
            return 2 * g * out

    with pytest.raises(AssertionError, match="grad of input 0 vs torch"):
        check_op([(3,)], WrongExp.apply, lambda x: x.exp(), gradcheck=False)
