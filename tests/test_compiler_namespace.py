"""``tinymm.compiler`` against ``torch.compiler`` (eager: nothing ever compiles)."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)



def test_wrap_numpy_matches_torch():
    def fn(a, b=None):
        return np.sum(a * 2), [a.T, {"x": b}], (a + 1,)

    results = []
    for lib in (tm, torch):
        out = lib.compiler.wrap_numpy(fn)(lib.arange(6.0).reshape(2, 3), b=lib.ones(2))
        results.append(out)
        assert isinstance(out[1][0], lib.Tensor) and isinstance(out[1][1]["x"], lib.Tensor)
        assert isinstance(out[2], tuple) and isinstance(out[2][0], lib.Tensor)
        with pytest.raises(RuntimeError, match="requires grad"):
            lib.compiler.wrap_numpy(fn)(lib.ones(2, requires_grad=True))
    assert type(results[0][0]) is type(results[1][0])  # a NumPy scalar stays one
    np.testing.assert_array_equal(results[0][1][0].numpy(), results[1][1][0].numpy())


def test_eager_answers_match_torch():
    for lib in (tm, torch):
        c = lib.compiler
        assert c.is_compiling() is False and c.is_dynamo_compiling() is False and c.is_exporting() is False
        assert c.disable(lambda: 3)() == 3 and c.disable()(lambda: 4)() == 4
        def f(x):
            return x

        def g(x):  # (not a builtin: torch's allow_in_graph registers it for the whole process, and
            return x  # allowing len broke dynamo's tracing of flex_attention in later tests)

        assert c.allow_in_graph(g) is g and c.assume_constant_result(f)(5) == 5
        assert c.reset() is None and c.cudagraph_mark_step_begin() is None
        with c.set_stance("force_eager"):
            pass
        model = lib.nn.Linear(2, 2)
        assert c.compile(model) is not None
    # as torch's: a module comes back wrapped (an OptimizedModule around it), a function as it is
    compiled = tm.compiler.compile(model := tm.nn.Linear(2, 2))
    assert type(compiled).__name__ == "OptimizedModule" and compiled._orig_mod is model
    assert tm.compiler.compile(f) is f
    assert tm.compiler.list_backends() == []
    with pytest.raises(RuntimeError, match="invalid stance"):
        tm.compiler.set_stance("bogus")
