"""``torch.profiler``: where the time of a training step goes, with PyTorch's API.

    from tinymm.profiler import profile, record_function, ProfilerActivity, schedule
    with profile(activities=[ProfilerActivity.CPU], schedule=schedule(wait=1, warmup=1, active=2)) as prof:
        for batch in loader:
            with record_function("train_step"):
                ...
            prof.step()
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=10))
    prof.export_chrome_trace("trace.json")      # chrome://tracing or ui.perfetto.dev

What is timed (wall-clock on the host, ``time.perf_counter_ns``):

- every ``record_function(name)`` range (a context manager or a decorator);
- every op's forward while a profile records: each ``autograd.Function`` applied is one range
  named ``tinymm::<Op>`` (``tinymm::Matmul``, ``tinymm::ConvFn``; PyTorch's are ``aten::...``),
  and a user's ``autograd.Function`` is a range named for its class. The hook is installed on
  ``Function.apply`` only while a profile is recording and removed after, so code run without
  a profiler pays nothing for it;
- ``ProfilerStep#N`` around each step when a ``schedule`` is given, as PyTorch.

Backward passes are not split per op (they show inside the ranges that contain them). A range's
*self* time is its total minus the total of the ranges directly inside it on the same thread.

``profile(activities, schedule, on_trace_ready, record_shapes, profile_memory, with_stack,
...)``: ``schedule`` and ``on_trace_ready`` follow PyTorch (a trace starts at the first
recording step, is handed to ``on_trace_ready(prof)`` at each ``RECORD_AND_SAVE`` step and at
``stop()``, and ``key_averages()`` then shows the last one). ``record_shapes`` records the
shapes of each op's tensor inputs (``key_averages(group_by_input_shape=True)``).
``ProfilerActivity.CUDA`` is accepted but adds nothing: tinymm's GPU work is timed on the host as
it is launched (there are no device-side timings and no ``cuda_time`` columns).
``profile_memory`` and ``with_stack`` are accepted and record nothing.
``tensorboard_trace_handler(dir_name)`` as ``on_trace_ready`` writes each trace to
``dir_name/<worker>.<time_ns>.pt.trace.json[.gz]``; ``export_chrome_trace`` gzips a path
ending in ``.gz``, as PyTorch.
"""
from __future__ import annotations

import contextlib
import enum
import gzip
import json
import os
import threading
import time
import warnings

from tinymm.autograd import Function
from tinymm.tensor import Tensor

__all__ = ["ProfilerActivity", "ProfilerAction", "schedule", "profile", "record_function", "supported_activities",
           "tensorboard_trace_handler"]  # tboard: tensorboard_trace_handler


class ProfilerActivity(enum.Enum):
    CPU = 0
    CUDA = 2


class ProfilerAction(enum.Enum):
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def supported_activities() -> set:
    return {ProfilerActivity.CPU, ProfilerActivity.CUDA}


def schedule(*, wait: int, warmup: int, active: int, repeat: int = 0, skip_first: int = 0, skip_first_wait: int = 0):
    """PyTorch's step schedule: skip ``skip_first`` steps, then cycles of ``wait`` idle steps,
    ``warmup`` steps, and ``active`` recorded steps (the last one ``RECORD_AND_SAVE``), ``repeat``
    cycles (0: until the profile stops); ``skip_first_wait`` drops the first cycle's wait."""
    if wait < 0 or warmup < 0 or active <= 0 or repeat < 0 or skip_first < 0:
        raise AssertionError(
            f"Invalid profiler schedule arguments. Got wait={wait} (need >= 0), warmup={warmup} (need >= 0), "
            f"active={active} (need > 0), repeat={repeat} (need >= 0), skip_first={skip_first} (need >= 0).")
    if warmup == 0:
        warnings.warn("Profiler won't be using warmup, this can skew profiler results", stacklevel=2)
    cycle = wait + warmup + active

    def action(step: int) -> ProfilerAction:
        if step < 0:
            raise AssertionError(f"Step must be non-negative. Got {step}.")
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        if skip_first_wait:
            step += wait
        if repeat > 0 and step >= repeat * cycle:
            return ProfilerAction.NONE
        pos = step % cycle
        if pos < wait:
            return ProfilerAction.NONE
        if pos < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if pos < cycle - 1 else ProfilerAction.RECORD_AND_SAVE

    return action


def _always_record(step: int) -> ProfilerAction:
    return ProfilerAction.RECORD


# ----------------------------------------------------------------------------- recording

_recording: list = []  # the profiles now recording (usually none or one)
_threads = threading.local()


class _Frame:
    __slots__ = ("name", "start", "children", "shapes")

    def __init__(self, name, shapes):
        self.name, self.start, self.children, self.shapes = name, time.perf_counter_ns(), 0, shapes


def _stack() -> list:
    stack = getattr(_threads, "stack", None)
    if stack is None:
        stack = _threads.stack = []
    return stack


def _open(name: str, shapes=None) -> _Frame:
    frame = _Frame(name, shapes)
    _stack().append(frame)
    return frame


def _close(frame: _Frame) -> None:
    end = time.perf_counter_ns()
    stack = _stack()
    while stack and stack.pop() is not frame:  # a range left open by an exception inside it
        pass
    total = end - frame.start
    if stack:
        stack[-1].children += total
    event = FunctionEvent(frame.name, frame.start, total, total - frame.children, threading.get_ident(),
                          len(stack), frame.shapes or [])
    for prof in _recording:
        prof._events.append(event)


class RangeNameError(RuntimeError, TypeError):
    """A range name that is not a str (PyTorch raises RuntimeError when the range opens)."""


class record_function(contextlib.ContextDecorator):
    """``with record_function("name"):`` or ``@record_function("name")``: a named range in the
    profile now recording (nothing, at the cost of one list check, when none is)."""

    def __init__(self, name: str, args=None):
        if not isinstance(name, str):
            raise RangeNameError(f"record_function: name must be a str, got {type(name).__name__}")
        self.name, self.args = name, args
        self._frames = []

    def __enter__(self):
        self._frames.append(_open(self.name) if _recording else None)
        return self

    def __exit__(self, *exc):
        frame = self._frames.pop()
        if frame is not None:
            _close(frame)
        return False


_plain_apply = Function.__dict__["apply"]  # the classmethod object, restored when recording stops


def _op_name(cls) -> str:
    return cls.__name__ if cls.on_tensors else f"tinymm::{cls.__name__}"


def _profiled_apply(cls, *args, **kwargs):
    if cls.__name__.startswith("_"):  # an internal node (a user Function's array-level half)
        return _plain_apply.__func__(cls, *args, **kwargs)
    shapes = None
    if _recording and any(p.record_shapes for p in _recording):
        shapes = [list(a.shape) if isinstance(a, Tensor) else [] for a in args]
    frame = _open(_op_name(cls), shapes)
    try:
        return _plain_apply.__func__(cls, *args, **kwargs)
    finally:
        _close(frame)


def _start_recording(prof) -> None:
    if not _recording:
        Function.apply = classmethod(_profiled_apply)
    _recording.append(prof)


def _stop_recording(prof) -> None:
    if prof in _recording:
        _recording.remove(prof)
    if not _recording:
        Function.apply = _plain_apply


# ----------------------------------------------------------------------------- results


class FunctionEvent:
    """One timed range: ``name`` (``key``), start and duration in ns, its self time (duration
    minus the ranges directly inside it), thread, nesting depth and input shapes."""

    __slots__ = ("name", "start_ns", "duration_ns", "self_ns", "thread", "depth", "input_shapes")

    def __init__(self, name, start_ns, duration_ns, self_ns, thread, depth, input_shapes):
        self.name, self.start_ns, self.duration_ns, self.self_ns = name, start_ns, duration_ns, self_ns
        self.thread, self.depth, self.input_shapes = thread, depth, input_shapes

    @property
    def key(self) -> str:
        return self.name

    @property
    def count(self) -> int:
        return 1

    @property
    def cpu_time_total(self) -> float:
        return self.duration_ns / 1000.0

    @property
    def self_cpu_time_total(self) -> float:
        return self.self_ns / 1000.0

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total

    def __repr__(self) -> str:
        return f"<FunctionEvent name={self.name} cpu_time_total={self.cpu_time_total:.3f}us>"


class FunctionEventAvg:
    """The ranges of one key summed: ``count``, ``cpu_time_total`` and ``self_cpu_time_total``
    (microseconds, summed over calls), ``cpu_time`` and ``self_cpu_time`` (per call)."""

    def __init__(self, key: str, input_shapes=None):
        self.key, self.input_shapes = key, input_shapes
        self.count, self.cpu_time_total, self.self_cpu_time_total = 0, 0.0, 0.0

    def add(self, event) -> "FunctionEventAvg":
        self.count += event.count
        self.cpu_time_total += event.cpu_time_total
        self.self_cpu_time_total += event.self_cpu_time_total
        return self

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / self.count if self.count else 0.0

    @property
    def self_cpu_time(self) -> float:
        return self.self_cpu_time_total / self.count if self.count else 0.0

    def __repr__(self) -> str:
        return (f"<FunctionEventAvg key={self.key} self_cpu_time={_us(self.self_cpu_time)} "
                f"cpu_time={_us(self.cpu_time)} count={self.count}>")


def _us(t: float) -> str:
    if t >= 1e6:
        return f"{t / 1e6:.3f}s"
    if t >= 1e3:
        return f"{t / 1e3:.3f}ms"
    return f"{t:.3f}us"


class EventList(list):
    """A list of events (or of per-key averages) with PyTorch's ``table``, ``total_average``,
    ``self_cpu_time_total`` and ``export_chrome_trace``."""

    @property
    def self_cpu_time_total(self) -> float:
        return sum(e.self_cpu_time_total for e in self)

    def total_average(self) -> FunctionEventAvg:
        total = FunctionEventAvg("Total")
        for e in self:
            total.add(e)
        return total

    def key_averages(self, group_by_input_shape: bool = False) -> "EventList":
        """One row per key; the ``ProfilerStep#N`` ranges share one row, ``ProfilerStep*``, as in PyTorch."""
        rows = {}
        for e in self:
            shapes = str(e.input_shapes) if group_by_input_shape else None
            key = "ProfilerStep*" if e.key.startswith("ProfilerStep#") else e.key
            row = rows.get((key, shapes))
            if row is None:
                row = rows[(key, shapes)] = FunctionEventAvg(key, e.input_shapes if group_by_input_shape else None)
            row.add(e)
        return EventList(rows.values())

    def table(self, sort_by=None, row_limit: int = 100, max_src_column_width: int = 75,
              max_name_column_width: int = 55, max_shapes_column_width: int = 80, header=None,
              top_level_events_only: bool = False) -> str:
        """The rows as a text table, sorted by ``sort_by`` (an attribute: ``cpu_time_total``,
        ``self_cpu_time_total``, ``cpu_time``, ``count``; largest first), at most ``row_limit``."""
        rows = list(self)
        if sort_by is not None:
            rows.sort(key=lambda r: getattr(r, sort_by), reverse=True)
        if row_limit is not None and row_limit >= 0:
            rows = rows[:row_limit]
        self_total = self.self_cpu_time_total or 1.0
        shapes = any(getattr(r, "input_shapes", None) for r in rows)
        width = min(max([len(r.key) for r in rows] + [4]), max_name_column_width)
        heads = ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg", "# of Calls"]
        widths = [width] + [12] * 6
        if shapes:
            heads.append("Input Shapes")
            widths.append(min(max(len(str(r.input_shapes)) for r in rows), max_shapes_column_width))
        line = "  ".join("-" * w for w in widths)

        def fmt(cells):
            return "  ".join(str(c)[:w].rjust(w) for c, w in zip(cells, widths))

        out = [line, fmt(heads), line] if header is None else [header, line, fmt(heads), line]
        for r in rows:
            name = r.key if len(r.key) <= width else r.key[: width - 3] + "..."
            cells = [name, f"{100 * r.self_cpu_time_total / self_total:.2f}%", _us(r.self_cpu_time_total),
                     f"{100 * r.cpu_time_total / self_total:.2f}%", _us(r.cpu_time_total), _us(r.cpu_time), r.count]
            if shapes:
                cells.append(str(r.input_shapes))
            out.append(fmt(cells))
        out += [line, f"Self CPU time total: {_us(self.self_cpu_time_total)}", ""]
        return "\n".join(out)

    def export_chrome_trace(self, path: str) -> None:
        _write_chrome_trace(path, self)


def _write_chrome_trace(path: str, events) -> None:
    pid = os.getpid()
    trace = [{"ph": "X", "cat": "cpu_op", "name": e.name, "pid": pid, "tid": e.thread,
              "ts": e.start_ns / 1000.0, "dur": e.duration_ns / 1000.0,
              "args": {"Input Dims": e.input_shapes} if e.input_shapes else {}}
             for e in events if isinstance(e, FunctionEvent)]
    opener = gzip.open if str(path).endswith(".gz") else open  # tboard: gzip as PyTorch
    with opener(path, "wt") as f:
        json.dump({"traceEvents": trace, "displayTimeUnit": "ms"}, f)


def tensorboard_trace_handler(dir_name: str, worker_name: str | None = None, use_gzip: bool = False,
                              use_python_export: bool = False):
    """An ``on_trace_ready`` that writes each trace as Chrome JSON to
    ``dir_name/<worker_name>.<time.time_ns()>.pt.trace.json`` (``.gz``: gzipped), creating the
    directory; ``worker_name`` defaults to ``<hostname>_<pid>``. The files open in
    chrome://tracing / ui.perfetto.dev; TensorBoard's profiler plugin expects PyTorch's fuller
    Kineto traces (device and memory events tinymm does not record). ``use_python_export`` is
    accepted and does nothing (there is one exporter)."""
    import socket

    def handler_fn(prof) -> None:
        nonlocal worker_name
        if not os.path.isdir(dir_name):
            try:
                os.makedirs(dir_name, exist_ok=True)
            except Exception as e:
                raise RuntimeError("Can't create directory: " + dir_name) from e
        if not worker_name:
            worker_name = f"{socket.gethostname()}_{os.getpid()}"
        file_name = f"{worker_name}.{time.time_ns()}.pt.trace.json" + (".gz" if use_gzip else "")
        prof.export_chrome_trace(os.path.join(dir_name, file_name))

    return handler_fn


# ----------------------------------------------------------------------------- profile


class profile:
    """``torch.profiler.profile`` (see the module docstring for what is timed)."""

    def __init__(self, *, activities=None, schedule=None, on_trace_ready=None, record_shapes: bool = False,
                 profile_memory: bool = False, with_stack: bool = False, with_flops: bool = False,
                 with_modules: bool = False, experimental_config=None, execution_trace_observer=None,
                 acc_events: bool = False, use_cuda=None, custom_trace_id_callback=None):
        activities = set(supported_activities() if activities is None else activities)
        bad = [a for a in activities if not isinstance(a, ProfilerActivity)]
        if bad:
            raise TypeError(f"profile: activities must be ProfilerActivity values, got {bad}")
        if use_cuda:
            activities.add(ProfilerActivity.CUDA)
        self.activities = activities
        self.schedule = schedule if schedule is not None else _always_record
        self.record_steps = schedule is not None
        self.on_trace_ready = on_trace_ready
        self.record_shapes, self.profile_memory, self.with_stack = bool(record_shapes), profile_memory, with_stack
        self.with_flops, self.with_modules = with_flops, with_modules
        self.step_num = 0
        self.current_action = None
        self._events: list = []
        self._step_range = None

    # -- lifetime -----------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self) -> None:
        self.step_num = 0
        self.current_action = self.schedule(0)
        self._enter_action(ProfilerAction.NONE, self.current_action)
        self._open_step()

    def stop(self) -> None:
        self._close_step()
        if self.current_action in (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE):
            self._save()
        self.current_action = None

    def step(self) -> None:
        """End one step and start the next: the schedule decides what the next one does."""
        self._close_step()
        previous = self.current_action
        self.step_num += 1
        self.current_action = self.schedule(self.step_num)
        if previous == ProfilerAction.RECORD_AND_SAVE:
            self._save()
            previous = ProfilerAction.NONE
        self._enter_action(previous, self.current_action)
        self._open_step()

    def _enter_action(self, previous, action) -> None:
        recording = (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE)
        if action in recording and previous not in recording:
            self._events = []
            _start_recording(self)
        elif action not in recording and previous in recording:
            _stop_recording(self)

    def _save(self) -> None:
        _stop_recording(self)
        if self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def _open_step(self) -> None:
        if self.record_steps:
            self._step_range = record_function(f"ProfilerStep#{self.step_num}")
            self._step_range.__enter__()

    def _close_step(self) -> None:
        if self._step_range is not None:
            self._step_range.__exit__(None, None, None)
            self._step_range = None

    # -- results ------------------------------------------------------------------

    def events(self) -> EventList:
        """Every range of the last trace, in the order they ended."""
        return EventList(self._events)

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0,
                     group_by_overload_name: bool = False) -> EventList:
        """One row per range name (and input shapes, if asked): see :class:`FunctionEventAvg`."""
        return self.events().key_averages(group_by_input_shape)

    def export_chrome_trace(self, path: str) -> None:
        """Write the last trace as Chrome trace-event JSON (complete ``"X"`` events, times in us)."""
        _write_chrome_trace(path, self._events)
