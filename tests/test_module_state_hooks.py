"""``Module.state_dict``/``load_state_dict`` as PyTorch runs them: the state-dict and load
pre/post hooks (arguments, call order, what their return values do), ``_metadata`` with each
module's ``_version``, overridable ``_save_to_state_dict``/``_load_from_state_dict`` (the way
real code migrates old checkpoints), BatchNorm's version-2 migration, and the one gathered
error. Every test runs the same code on torch and tinymm and compares what happened."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)
LIBS = [pytest.param("torch", id="torch"), pytest.param("tinymm", id="tinymm")]


def _lib(name):
    if name == "torch" and torch is None:
        pytest.skip(TORCH_REASON)
    return torch if name == "torch" else tm


def _net(m):
    m.manual_seed(0)
    return m.nn.Sequential(m.nn.Linear(3, 2), m.nn.Sequential(m.nn.BatchNorm1d(2), m.nn.ReLU()))


def _plain(sd):
    """A state dict's keys and values as NumPy, to compare across the two libraries."""
    return {k: np.asarray(v.detach().numpy()) for k, v in sd.items()}


def _both(fn):
    """``fn(m)`` for torch and for tinymm."""
    return fn(torch), fn(tm)


def _msg(e):
    return str(e).replace("torch.Size", "tinymm.Size")


@needs_torch
def test_state_dict_hooks_order_arguments_and_metadata():
    def run(m):
        log = []
        net = _net(m)
        for name, mod in net.named_modules():
            mod.register_state_dict_pre_hook(lambda mod, prefix, keep_vars, n=name: log.append(("pre", n, prefix, keep_vars)))
            mod.register_state_dict_post_hook(
                lambda mod, sd, prefix, meta, n=name: log.append(("post", n, prefix, len(sd), dict(meta))))
        sd = net.state_dict(prefix="root.", keep_vars=True)
        return log, {k: dict(v) for k, v in sd._metadata.items()}, list(sd)

    theirs, ours = _both(run)
    assert ours == theirs
    assert ours[1]["root.1.0"] == {"version": 2} and ours[1]["root"] == {"version": 1}
    assert tm.nn.Module._version == 1 and tm.nn.BatchNorm1d._version == 2


@pytest.mark.parametrize("lib", LIBS)
def test_post_hook_return_values(lib):
    m = _lib(lib)
    lin = m.nn.Linear(2, 2)
    handle = lin.register_state_dict_post_hook(lambda *a: {"x": 1})
    with pytest.raises(RuntimeError, match="state_dict post-hook must return None"):
        lin.state_dict()
    handle.remove()
    assert list(lin.state_dict()) == ["weight", "bias"]

    def replace(mod, sd, prefix, meta):
        return {"only": sd[prefix + "weight"]}

    lin._register_state_dict_hook(replace)  # the old hook's dict replaces the root's result
    assert list(lin.state_dict()) == ["only"]
    seq = m.nn.Sequential(lin)  # ... but not when it runs on a child
    assert list(seq.state_dict()) == ["0.weight", "0.bias"]

    def public(mod, sd, prefix, meta):
        return None

    lin.register_state_dict_post_hook(public)
    with pytest.raises(RuntimeError, match="previously registered via register_state_dict_post_hook"):
        lin._register_state_dict_hook(public)


@needs_torch
def test_load_hooks_order_arguments_and_incompatible_keys():
    def run(m):
        log = []
        net = _net(m)
        sd = {k: m.tensor(v) for k, v in _plain(_net(m).state_dict()).items()}
        sd["1.extra"] = m.zeros(1)
        for name, mod in net.named_modules():
            mod.register_load_state_dict_pre_hook(
                lambda mod, sd, prefix, meta, strict, missing, unexpected, errors, n=name:
                log.append(("pre", n, prefix, sorted(sd), dict(meta), strict, list(missing), list(unexpected))))
            mod.register_load_state_dict_post_hook(
                lambda mod, keys, n=name: log.append(("post", n, list(keys.missing_keys), list(keys.unexpected_keys))))
        net[1][0]._register_load_state_dict_pre_hook(
            lambda sd, prefix, *rest: log.append(("pre-without-module", prefix, len(rest))))
        net[1][0]._register_load_state_dict_pre_hook(
            lambda mod, sd, prefix, *rest: log.append(("pre-with-module", type(mod).__name__, prefix)), with_module=True)
        result = net.load_state_dict(sd, strict=False)
        return log, list(result.missing_keys), list(result.unexpected_keys)

    theirs, ours = _both(run)
    assert ours == theirs
    assert ours[2] == ["1.extra"]


@pytest.mark.parametrize("lib", LIBS)
def test_a_post_hook_edits_the_keys_a_strict_load_judges(lib):
    m = _lib(lib)
    net = _net(m)
    sd = net.state_dict()
    sd.pop("0.bias")

    def forgive(mod, keys):
        keys.missing_keys.clear()

    handle = net.register_load_state_dict_post_hook(forgive)
    assert net.load_state_dict(sd).missing_keys == []
    handle.remove()
    net.register_load_state_dict_post_hook(lambda mod, keys: keys.unexpected_keys.append("made.up"))
    with pytest.raises(RuntimeError, match='Unexpected key\\(s\\) in state_dict: "made.up"'):
        net.load_state_dict(net.state_dict())
    other = m.nn.Linear(2, 2)
    other.register_load_state_dict_post_hook(lambda mod, keys: keys)
    with pytest.raises(AssertionError, match="not expected to return new values"):
        other.load_state_dict(other.state_dict())


def _versioned(m):
    class Scale(m.nn.Module):
        """Version 2 renamed its parameter ``w`` to ``weight``; old checkpoints still load."""

        _version = 2

        def __init__(self):
            super().__init__()
            self.weight = m.nn.Parameter(m.ones(2))

        def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                                  unexpected_keys, error_msgs):
            if local_metadata.get("version", 1) < 2 and prefix + "w" in state_dict:
                state_dict[prefix + "weight"] = state_dict.pop(prefix + "w")
            super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                          unexpected_keys, error_msgs)

        def _save_to_state_dict(self, destination, prefix, keep_vars):
            super()._save_to_state_dict(destination, prefix, keep_vars)
            destination[prefix + "doubled"] = self.weight.detach() * 2

    return m.nn.Sequential(Scale())


@needs_torch
def test_overridden_load_and_save_migrate_old_keys():
    def run(m):
        net = _versioned(m)
        old = {"0.w": m.tensor([3.0, 4.0])}
        old_metadata = {"": {"version": 1}, "0": {"version": 1}}
        sd = type(net.state_dict())(old)
        sd._metadata = old_metadata
        net.load_state_dict(sd)
        saved = net.state_dict()
        current = type(saved)({"0.w": m.tensor([5.0, 6.0])})
        current._metadata = saved._metadata  # a version-2 dict holding the old name: no rename
        with pytest.raises(RuntimeError) as err:
            net.load_state_dict(current)
        return _plain(saved), dict(saved._metadata["0"]), _msg(err.value)

    theirs, ours = _both(run)
    assert ours[1] == theirs[1] == {"version": 2}
    assert ours[0].keys() == theirs[0].keys() == {"0.weight", "0.doubled"}
    np.testing.assert_array_equal(ours[0]["0.doubled"], [6.0, 8.0])
    assert ours[2] == theirs[2]


@needs_torch
def test_batchnorm_without_num_batches_tracked_loads_by_version():
    def run(m):
        bn = m.nn.BatchNorm1d(2)
        sd = {k: v for k, v in bn.state_dict().items() if k != "num_batches_tracked"}
        no_metadata = bn.load_state_dict(sd)  # version unknown: an old checkpoint, count kept
        new = type(bn.state_dict())(sd)
        new._metadata = {"": {"version": 2}}
        with pytest.raises(RuntimeError) as err:
            bn.load_state_dict(new)
        inorm = m.nn.InstanceNorm1d(2)
        with pytest.raises(RuntimeError) as err2:  # pre-0.4 running stats on a non-tracking module
            inorm.load_state_dict({"running_mean": m.zeros(2)})
        return repr(no_metadata), _msg(err.value), _msg(err2.value)

    theirs, ours = _both(run)
    assert ours == theirs


@needs_torch
def test_errors_are_gathered_into_one_runtime_error_as_torch():
    def run(m):
        net = _net(m)
        sd = {k: m.tensor(v) for k, v in _plain(net.state_dict()).items()}
        sd["0.weight"] = m.full((3, 3), 7.0)
        sd["1.0.bias"] = m.full((2,), 5.0)
        sd.pop("1.0.running_var")
        sd["1.5.x"] = m.zeros(1)
        sd["1.0.weight"] = "not a tensor"
        fresh = _net(m)
        with pytest.raises(RuntimeError) as err:
            fresh.load_state_dict(sd)
        # what could be copied was, before the error was raised
        return _msg(err.value), fresh[1][0].bias.detach().numpy().tolist()

    theirs, ours = _both(run)
    assert ours == theirs
    assert ours[1] == [5.0, 5.0]
    assert "size mismatch for 0.weight" in ours[0] and 'Missing key(s) in state_dict: "1.0.running_var"' in ours[0]


@needs_torch
def test_error_classes_and_strict_false():
    net = _net(tm)
    sd = net.state_dict()
    sd["1.0.weight"] = tm.ones(3)
    with pytest.raises(ValueError, match="size mismatch") as err:  # also a ValueError in tinymm
        net.load_state_dict(sd, strict=False)
    assert isinstance(err.value, RuntimeError)
    sd = net.state_dict()
    sd.pop("0.weight")
    with pytest.raises(KeyError) as err:  # also a KeyError in tinymm
        net.load_state_dict(sd)
    assert isinstance(err.value, RuntimeError) and str(err.value).startswith("Error(s) in loading state_dict")
    assert repr(net.load_state_dict(sd, strict=False)) == \
        repr(_net(torch).load_state_dict({k: v for k, v in _net(torch).state_dict().items() if k != "0.weight"},
                                         strict=False))
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        net.load_state_dict([("0.weight", tm.ones(2, 3))])


@needs_torch
def test_positional_state_dict_warns_and_scalars_load_from_one_element():
    for m in (torch, tm):
        with pytest.warns(FutureWarning, match="Positional args are being deprecated"):
            out = m.nn.Linear(2, 2).state_dict({}, "p.")
        assert list(out) == ["p.weight", "p.bias"]
        mod = m.nn.Module()
        mod.register_buffer("s", m.tensor(0.0))
        mod.load_state_dict({"s": m.tensor([2.5])})  # PyTorch 0.3's 1-element "scalar"
        assert mod.s.shape == () and float(mod.s) == 2.5


@needs_torch
def test_size_prints_and_behaves_as_torch_size():
    for m in (torch, tm):
        s = m.ones(2, 3).shape
        name = m.__name__
        assert repr(s) == str(s) == f"{name}.Size([2, 3])" and repr(m.Size([])) == f"{name}.Size([])"
        assert isinstance(s, tuple) and s == (2, 3) and s.numel() == 6
        assert type(s[1:]) is m.Size and type(s + (4,)) is m.Size and type((1,) + s) is m.Size
        assert type(s * 2) is m.Size and type(s[0]) is int
        with pytest.raises(TypeError):
            s + [1]
