"""probe13's fixes to training infrastructure, each compared with PyTorch: what
``torch.compile(module)`` returns (an OptimizedModule around the module), random_split's
Subset indices (a list of ints), clip_grad_norm_'s non-finite error, and the script harness
letting ``torch.jit.script`` read a script's source."""
import copy
import pickle

import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


class _Net:
    """The same small module in either library (built inside, so each gets its own nn)."""

    @staticmethod
    def make(L):
        class Net(L.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = L.nn.Linear(3, 2)
                self.bn = L.nn.BatchNorm1d(2)
                self.flag = False

            def forward(self, x, scale=1.0):
                return self.bn(self.fc(x)) * scale

        return Net()


# ----------------------------------------------------------------------------- torch.compile(module)

@needs_torch
def test_compiled_module_has_torchs_shape():
    out = {}
    for L in (torch, tm):
        L.manual_seed(0)
        model = _Net.make(L)
        compiled = L.compile(model, backend="eager") if L is torch else L.compile(model)
        out[L.__name__] = dict(
            name=type(compiled).__name__, orig=compiled._orig_mod is model, keys=list(compiled.state_dict()),
            children=[n for n, _ in compiled.named_children()], modules=[n for n, _ in compiled.named_modules()],
            params=[p is q for p, q in zip(compiled.parameters(), model.parameters())],
            isinstance_module=isinstance(compiled, L.nn.Module))
    assert out["torch"] == out["tinymm"]
    assert out["tinymm"]["keys"][0] == "_orig_mod.fc.weight"


@needs_torch
def test_compiled_module_forwards_attributes_and_training_both_ways():
    for L in (torch, tm):
        model = _Net.make(L)
        compiled = L.compile(model, backend="eager") if L is torch else L.compile(model)
        compiled.flag = True  # written to the original
        assert model.flag is True and compiled.flag is True and "flag" not in compiled.__dict__
        compiled.eval()
        assert model.training is False and compiled.training is False
        model.train()
        assert compiled.training is True
        del compiled.flag
        assert not hasattr(model, "flag")
        with pytest.raises(AttributeError):
            compiled.no_such_attribute


def test_compiled_module_computes_what_the_module_does_with_its_hooks_and_kwargs():
    tm.manual_seed(0)
    model = _Net.make(tm)
    seen = []
    model.register_forward_hook(lambda m, a, o: seen.append(o.shape))
    compiled = tm.compile(model, mode="max-autotune", fullgraph=True, dynamic=False)
    x = tm.randn(4, 3)
    np.testing.assert_array_equal(compiled(x, scale=2.0).detach().numpy(), model(x, scale=2.0).detach().numpy())
    assert seen == [(4, 2), (4, 2)]
    assert compiled.compile_options["mode"] == "max-autotune"


def test_compiled_checkpoint_round_trip_and_the_nanogpt_prefix_strip():
    tm.manual_seed(0)
    a = tm.compile(_Net.make(tm))
    b = tm.compile(_Net.make(tm))
    assert str(b.load_state_dict(a.state_dict())) == "<All keys matched successfully>"
    sd = {k.removeprefix("_orig_mod."): v for k, v in a.state_dict().items()}
    plain = _Net.make(tm)
    plain.load_state_dict(sd)
    np.testing.assert_array_equal(plain.fc.weight.detach().numpy(), a._orig_mod.fc.weight.detach().numpy())


def test_compiled_module_copies_and_pickles():
    model = tm.compile(_Net.make(tm))
    clone = copy.deepcopy(model)
    assert type(clone).__name__ == "OptimizedModule" and clone._orig_mod is not model._orig_mod
    assert clone.state_dict().keys() == model.state_dict().keys()
    seq = tm.compile(tm.nn.Sequential(tm.nn.Linear(2, 2)))  # a class pickle can find by name
    again = pickle.loads(pickle.dumps(seq))
    assert type(again).__name__ == "OptimizedModule" and list(again.state_dict()) == list(seq.state_dict())
    np.testing.assert_array_equal(again._orig_mod[0].weight.detach().numpy(), seq._orig_mod[0].weight.detach().numpy())


def test_compile_of_a_function_or_disabled_is_the_thing_itself():
    def f(x):
        return x * 2

    model = _Net.make(tm)
    assert tm.compile(f) is f
    assert tm.compile(model, disable=True) is model
    assert model.compile() is None  # in place, as PyTorch's Module.compile
    assert tm.compile()(f) is f  # the decorator form
    with pytest.raises(RuntimeError, match="callable"):
        tm.compile(3)


def test_compiled_module_len_follows_the_original():
    seq = tm.compile(tm.nn.Sequential(tm.nn.Linear(2, 2), tm.nn.ReLU()))
    assert len(seq) == 2
    with pytest.raises(TypeError, match="does not support len"):
        len(tm.compile(tm.nn.Linear(2, 2)))


@needs_torch
def test_dynamo_names_scripts_touch():
    import tinymm._dynamo  # noqa: F401  (as "import torch._dynamo" in a script)

    for L in (torch, tm):
        old = L._dynamo.config.cache_size_limit
        L._dynamo.config.cache_size_limit = 64
        assert L._dynamo.config.cache_size_limit == 64
        L._dynamo.config.cache_size_limit = old
        compiled = L.compile(L.nn.Linear(2, 2), backend="eager") if L is torch else L.compile(L.nn.Linear(2, 2))
        assert isinstance(compiled, L._dynamo.eval_frame.OptimizedModule)
        assert not isinstance(compiled._orig_mod, L._dynamo.eval_frame.OptimizedModule)
        assert L._dynamo.is_compiling() is False and L._dynamo.reset() is None


# ----------------------------------------------------------------------------- random_split / Subset

@needs_torch
def test_random_split_hands_out_lists_of_ints_like_torch():
    for L in (torch, tm):
        a, b = L.utils.data.random_split(range(10), [7, 3], generator=L.Generator().manual_seed(0))
        assert type(a.indices) is list and all(type(i) is int for i in a.indices)
        assert sorted(a.indices + b.indices) == list(range(10))


def test_subset_keeps_the_indices_it_was_given_and_reads_through_them():
    from tinymm.utils.data import Subset

    data = list(range(100, 110))
    for given in ([3, 1, 4], (3, 1, 4), np.array([3, 1, 4]), range(3, 6)):
        s = Subset(data, given)
        assert s.indices is given and len(s) == 3 and s[0] == 100 + list(given)[0]
    s = Subset(data, [0, 1])
    s.indices = [9, 8, 7]  # reassigning the indices, as PyTorch code does, re-points the subset
    assert len(s) == 3 and [s[i] for i in range(3)] == [109, 108, 107]
    with pytest.raises(IndexError, match=r"\[0, 10\)"):
        Subset(data, [10])


# ----------------------------------------------------------------------------- clip_grad_norm_

@needs_torch
def test_clip_grad_norm_names_a_non_finite_norm_like_torch():
    for L in (torch, tm):
        p = L.nn.Parameter(L.ones(3))
        p.grad = L.tensor([1.0, float("nan"), 2.0])
        with pytest.raises(RuntimeError, match="non-finite"):
            L.nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


# ----------------------------------------------------------------------------- the script harness

def test_scripts_source_is_readable_by_inspect(tmp_path):
    """torch.jit.script reads a function's source through inspect (linecache); the harness
    registers each exec'd script so scripted functions compile."""
    from pathlib import Path

    from test_pytorch_scripts import _run

    script = tmp_path / "s.py"
    script.write_text("import inspect\n\ndef f(x):\n    return x + 1\n\nreport(inspect.getsource(f))\n")
    reports = _run(Path(script), "tinymm", tmp_path)
    assert reports == [("def f(x):\n    return x + 1\n",)]
