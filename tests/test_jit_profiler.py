"""torch.jit (accepted with what it means here: no TorchScript) and torch.profiler
(record_function ranges and per-op forward ranges; PyTorch's schedule and on_trace_ready),
compared with PyTorch where the two can be compared: values computed, schedules, which ranges
are counted how often, and the exception classes."""
import json
import typing
import warnings

import numpy as np
import pytest

import tinymm as tm
from tinymm import nn

from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _twins():
    ours = nn.Linear(3, 2)
    theirs = torch.nn.Linear(3, 2)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.detach().numpy()))
        theirs.bias.copy_(torch.tensor(ours.bias.detach().numpy()))
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    return ours, theirs, x


# ----------------------------------------------------------------------------- jit


@needs_torch
def test_script_and_trace_return_the_model_computing_what_torchs_traced_one_does():
    ours, theirs, x = _twins()
    assert tm.jit.script(ours) is ours
    traced = tm.jit.trace(ours, tm.tensor(x))
    assert traced is ours
    want = torch.jit.trace(theirs, torch.tensor(x))(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(traced(tm.tensor(x)).detach().numpy(), want, rtol=1e-6, atol=1e-6)

    def f(a, b):
        return a * b + 1

    assert tm.jit.trace(f, (tm.ones(2), tm.ones(2))) is f and tm.jit.trace(f, [tm.ones(2), tm.ones(2)]) is f
    assert tm.jit.script(f) is f and tm.jit.trace_module(ours, {"forward": tm.tensor(x)}) is ours
    assert not isinstance(ours, tm.jit.ScriptModule) and not isinstance(f, tm.jit.ScriptFunction)


@needs_torch
def test_trace_runs_the_example_inputs_and_fails_as_torch_does():
    ours, theirs, _ = _twins()
    for lib, model in ((tm, ours), (torch, theirs)):
        with pytest.raises(TypeError):
            lib.jit.trace(lambda a: a * 2)  # no example inputs
        with pytest.raises(TypeError):
            lib.jit.trace(lambda a, b: a * b, lib.ones(2))  # one argument missing
        with pytest.raises(RuntimeError):
            lib.jit.trace(model, lib.ones(1, 5))  # the wrong width, found by running it
    with pytest.raises(TypeError):
        tm.jit.script(3)
    with pytest.raises(TypeError):
        torch.jit.script(3)


@needs_torch
def test_decorators_flags_and_annotations_behave_as_torchs_outside_scripting():
    for lib in (tm, torch):
        assert lib.jit.is_scripting() is False and lib.jit.is_tracing() is False
        assert lib.jit.Final is typing.Final
        assert lib.jit.annotate(typing.List[int], [1, 2]) == [1, 2]

        class M(lib.nn.Module):
            scale: lib.jit.Final[int] = 2

            def forward(self, x):
                return self.helper(x) + self.dropped(x) + self.unused_one(x)

            @lib.jit.ignore
            def helper(self, x):
                return x * self.scale

            @lib.jit.ignore(drop=True)
            def dropped(self, x):
                return x

            @lib.jit.unused
            def unused_one(self, x):
                return x

            @lib.jit.export
            def extra(self, x):
                return x - 1

        m = M()
        assert m(lib.ones(2)).tolist() == [4.0, 4.0] and m.extra(lib.ones(1)).tolist() == [0.0]
    with pytest.raises(RuntimeError, match="must be a bool or a function"):
        tm.jit.ignore(drop=3)


def test_jit_save_and_load_refuse_and_point_to_tinymm_save(tmp_path):
    for call in (lambda: tm.jit.save(nn.Linear(2, 2), str(tmp_path / "m.pt")),
                 lambda: tm.jit.load(str(tmp_path / "m.pt"))):
        with pytest.raises(NotImplementedError, match="no TorchScript") as err:
            call()
        assert "tinymm.save(model.state_dict()" in str(err.value)


# ----------------------------------------------------------------------------- profiler


@needs_torch
def test_schedule_actions_are_torchs():
    grid = [dict(wait=1, warmup=1, active=2), dict(wait=1, warmup=1, active=2, repeat=2, skip_first=1),
            dict(wait=0, warmup=2, active=1, repeat=3), dict(wait=2, warmup=1, active=3, skip_first=3, skip_first_wait=1),
            dict(wait=0, warmup=0, active=1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kw in grid:
            ours, theirs = tm.profiler.schedule(**kw), torch.profiler.schedule(**kw)
            assert [ours(i).name for i in range(20)] == [theirs(i).name for i in range(20)], kw
        for bad in (dict(wait=0, warmup=0, active=0), dict(wait=-1, warmup=0, active=1)):
            for lib in (tm, torch):
                with pytest.raises(AssertionError, match="Invalid profiler schedule arguments"):
                    lib.profiler.schedule(**bad)
    with pytest.warns(UserWarning, match="won't be using warmup"):
        tm.profiler.schedule(wait=1, warmup=0, active=1)


def _scheduled_run(lib, n_steps, **sched):
    """A training-like loop under a schedule: which user ranges each saved trace holds."""
    traces = []

    def ready(prof):
        rows = {r.key: r.count for r in prof.key_averages() if not r.key.startswith(("aten::", "tinymm::"))}
        traces.append(rows)

    x = lib.ones(3, 3)
    with lib.profiler.profile(activities=[lib.profiler.ProfilerActivity.CPU],
                              schedule=lib.profiler.schedule(**sched), on_trace_ready=ready) as prof:
        for _ in range(n_steps):
            with lib.profiler.record_function("step_body"):
                for _ in range(2):
                    with lib.profiler.record_function("inner"):
                        x = x * 1.0
            prof.step()
    return traces


@needs_torch
def test_scheduled_profile_saves_the_same_traces_with_the_same_counts_as_torch():
    for n, sched in ((7, dict(wait=1, warmup=1, active=2, skip_first=1)), (7, dict(wait=0, warmup=1, active=1, repeat=2))):
        ours, theirs = _scheduled_run(tm, n, **sched), _scheduled_run(torch, n, **sched)
        assert ours == theirs, (sched, ours, theirs)
        assert ours  # something was recorded


@needs_torch
def test_key_averages_rows_and_times_are_consistent_and_keys_match_torch():
    for lib in (tm, torch):
        @lib.profiler.record_function("decorated")
        def work(t):
            return t + 1

        with lib.profiler.profile() as prof:
            with lib.profiler.record_function("outer"):
                for _ in range(3):
                    with lib.profiler.record_function("inner"):
                        work(lib.ones(4))
        rows = {r.key: r for r in prof.key_averages()}
        assert rows["outer"].count == 1 and rows["inner"].count == 3 and rows["decorated"].count == 3
        outer, inner = rows["outer"], rows["inner"]
        assert inner.cpu_time == pytest.approx(inner.cpu_time_total / 3)
        assert outer.cpu_time_total >= inner.cpu_time_total >= rows["decorated"].cpu_time_total
        assert 0 <= outer.self_cpu_time_total <= outer.cpu_time_total - inner.cpu_time_total + 1e-6
        table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=2)
        lines = [ln for ln in table.splitlines() if ln.strip() and not ln.startswith("-")]
        assert "CPU total" in lines[0] and lines[1].split()[0] == "outer" and len(lines) == 4  # header, 2 rows, footer


def test_ops_are_timed_only_while_a_profile_records(tmp_path):
    plain = tm.autograd.Function.__dict__["apply"]
    x = tm.randn(3, 3, requires_grad=True)
    with tm.profiler.profile(record_shapes=True) as prof:
        assert tm.autograd.Function.__dict__["apply"] is not plain
        with tm.profiler.record_function("fwd"):
            (x @ x).relu().sum().backward()
    assert tm.autograd.Function.__dict__["apply"] is plain  # nothing left installed
    keys = {r.key for r in prof.key_averages()}
    assert {"fwd", "tinymm::MatMul", "tinymm::Relu", "tinymm::Sum"} <= keys
    shaped = {r.key: r.input_shapes for r in prof.key_averages(group_by_input_shape=True)}
    assert shaped["tinymm::MatMul"] == [[3, 3], [3, 3]]

    class Double(tm.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return t * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    with tm.profiler.profile() as prof:
        Double.apply(x)
    assert "Double" in {r.key for r in prof.key_averages()}
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    events = json.loads(path.read_text())["traceEvents"]
    assert events and all(e["ph"] == "X" and e["dur"] >= 0 and "ts" in e for e in events)
    assert "Double" in {e["name"] for e in events}
    with tm.profiler.record_function("nobody listening"):
        pass  # no profile: nothing recorded, nothing raised


@needs_torch
def test_autograd_profiler_spelling_and_bad_arguments():
    import tinymm.autograd.profiler as ap

    for mod in (ap, torch.autograd.profiler):
        with mod.profile() as prof:
            with mod.record_function("legacy"):
                pass
        assert [r.count for r in prof.key_averages() if r.key == "legacy"] == [1]
        assert "legacy" in prof.table() and prof.self_cpu_time_total >= 0
    with ap.profile(enabled=False) as prof:
        with ap.record_function("off"):
            pass
    assert len(prof.key_averages()) == 0
    assert tm.autograd.profiler is ap
    assert {tm.profiler.ProfilerActivity.CPU, tm.profiler.ProfilerActivity.CUDA} == tm.profiler.supported_activities()
    for lib in (tm, torch):
        with pytest.raises(RuntimeError):
            with lib.profiler.record_function(3):
                pass
