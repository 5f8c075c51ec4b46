"""The shared benchmark harness.

A benchmark is a list of ``Workload``s. Each workload has up to three implementations of the
same computation, keyed by name: ``"tinymm"``, ``"numpy"`` (the plain NumPy reference) and
``"torch"`` (PyTorch, when installed). ``run`` times each one (warm-up, then repeated runs;
median and interquartile spread; the implementations' runs interleaved unless
``--sequential``), measures the peak of traced memory in a separate run
(tracemalloc sees Python and NumPy allocations; PyTorch's allocator is invisible to it, so its
column reads n/a), prints one table with ratios and GFLOP/s, and writes the rows as JSON.

Timings on a shared machine are noisy: compare ratios taken within one run, and quote medians.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from typing import Callable

IMPLS = ("tinymm", "numpy", "torch")


@dataclasses.dataclass
class Workload:
    name: str
    impls: dict  # impl name -> zero-argument callable (None when unavailable)
    flops: float | None = None  # floating-point operations of one call, for GFLOP/s
    note: str = ""


@dataclasses.dataclass
class Timing:
    median: float
    q25: float
    q75: float
    runs: int

    @property
    def spread(self) -> float:
        return self.q75 - self.q25


def time_fn(fn: Callable[[], object], warmup: int = 2, repeat: int = 10, min_time: float = 0.0,
            clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Median and quartiles of ``repeat`` timed calls after ``warmup`` untimed ones.

    When a single call is shorter than ``min_time`` seconds, each timed sample runs the
    function enough times to last about that long and reports the time per call. ``clock``:
    wall time by default; ``time.process_time`` measures single-threaded work on a shared
    machine without the time the OS gave to other processes.
    """
    for _ in range(warmup):
        fn()
    inner = 1
    if min_time > 0:
        t0 = clock()
        fn()
        once = max(clock() - t0, 1e-9)
        inner = max(1, int(min_time / once))
    samples = []
    for _ in range(repeat):
        t0 = clock()
        for _ in range(inner):
            fn()
        samples.append((clock() - t0) / inner)
    qs = statistics.quantiles(samples, n=4) if len(samples) > 1 else [samples[0]] * 3
    return Timing(statistics.median(samples), qs[0], qs[2], len(samples))


def time_interleaved(fns: dict, warmup: int = 2, repeat: int = 10, min_time: float = 0.0,
                     clock: Callable[[], float] = time.perf_counter) -> dict:
    """``time_fn`` for several implementations at once: {name: Timing}. Their timed samples
    alternate (A B C, then C B A, ...), so a slow or fast stretch of a shared machine falls on
    all of them alike instead of on whichever ran then; a ratio of two medians then compares
    like with like. Each sample of an implementation runs it ``inner`` times as ``time_fn`` does."""
    names = list(fns)
    inner = {}
    for n in names:
        for _ in range(warmup):
            fns[n]()
        inner[n] = 1
        if min_time > 0:
            t0 = clock()
            fns[n]()
            inner[n] = max(1, int(min_time / max(clock() - t0, 1e-9)))
    samples = {n: [] for n in names}
    for r in range(repeat):
        for n in (names if r % 2 == 0 else names[::-1]):
            t0 = clock()
            for _ in range(inner[n]):
                fns[n]()
            samples[n].append((clock() - t0) / inner[n])
    out = {}
    for n, xs in samples.items():
        qs = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
        out[n] = Timing(statistics.median(xs), qs[0], qs[2], len(xs))
    return out


def peak_memory(fn: Callable[[], object]) -> int:
    """Peak bytes traced by tracemalloc during one call (after one warm-up call)."""
    fn()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def torch_or_none():
    """The torch module if installed, else None (benchmarks then print n/a).

    Its OpenMP thread pool is started here, before Numba's: when Numba's OpenMP pool (the
    system libgomp) started first, PyTorch's SDPA fwd+bwd at B4 H4 N1024 on 2 threads ran at
    half speed for the rest of the process (300 ms against 140-170 ms alone), which flattered
    every tinymm/torch ratio. So a benchmark calls this before ``numba.set_num_threads`` and
    before any tinymm kernel runs."""
    try:
        import torch
    except ImportError:
        return None
    torch.exp(torch.ones(1 << 20))  # a parallel op: PyTorch's pool starts now
    return torch


def machine_info() -> dict:
    info = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }
    try:
        import numpy

        info["numpy"] = numpy.__version__
    except ImportError:
        pass
    torch = torch_or_none()
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def sgemm_gflops(threads: int | None = None, n: int = 1024, repeat: int = 5) -> float:
    """The machine's float32 GEMM rate through NumPy's BLAS: GFLOP/s of the best of ``repeat``
    (n x n) @ (n x n) products on ``threads`` BLAS threads (None: as many as BLAS uses by
    default). Printed beside a table, it lets ratios be read against the hardware.

    On one thread the product runs in the calling thread and is timed by that thread's CPU
    time, so time the OS gave to other processes on a shared machine does not count: it is
    what one core does. With several threads only wall time can say it: what they did here."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    clock = time.thread_time if threads == 1 else time.perf_counter
    limit = contextlib.nullcontext()
    if threads is not None:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(threads, user_api="blas")
    with limit:
        a @ a  # warm-up: BLAS threads started, pages touched
        best = float("inf")
        for _ in range(repeat):
            t0 = clock()
            a @ a
            best = min(best, clock() - t0)
    return 2.0 * n**3 / best / 1e9


def _fmt_ms(t: Timing | None) -> str:
    if t is None:
        return "n/a"
    return f"{t.median * 1e3:9.3f} ±{t.spread * 1e3:.3f}"


def _fmt_ratio(a: Timing | None, b: Timing | None) -> str:
    if a is None or b is None or b.median == 0:
        return "n/a"
    return f"{a.median / b.median:.2f}x"


def _fmt_mib(b) -> str:
    return "n/a" if b is None else f"{b / 2**20:.1f}"


def _bounded(kind, low: float, what: str):
    """An argparse type: ``kind`` (int or float), finite and at least ``low``."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    parse.__name__ = kind.__name__
    return parse


def parse_args(argv=None, description: str = "") -> argparse.Namespace:
    """The options every benchmark takes. Values are checked here, before any timing, so a bad
    one is a usage error (exit 2) rather than a failure half-way through a run."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--repeat", type=_bounded(int, 1, "an integer >= 1"), default=10, help="timed runs per implementation")
    p.add_argument("--warmup", type=_bounded(int, 0, "an integer >= 0"), default=2, help="untimed runs first")
    p.add_argument("--min-time", type=_bounded(float, 0.0, "a number of seconds >= 0"), default=0.0,
                   help="seconds per timed sample (loops short calls)")
    p.add_argument("--filter", default="", help="only workloads whose name contains this text")
    p.add_argument("--impls", default=",".join(IMPLS), help=f"comma-separated implementations to run, of {', '.join(IMPLS)}")
    p.add_argument("--no-memory", action="store_true", help="skip the tracemalloc peak-memory runs")
    p.add_argument("--quick", action="store_true", help="fewer repeats and smaller shapes where offered")
    p.add_argument("--sequential", action="store_true",
                   help="time each implementation's runs in one block (default: interleave them, so "
                        "that a noisy stretch of the machine falls on all implementations alike)")
    p.add_argument("--json", default=None, help="where to write the JSON rows (default bench_out/NAME.json)")
    args = p.parse_args(argv)
    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    unknown = [i for i in impls if i not in IMPLS]
    if unknown or not impls:
        p.error(f"--impls: unknown implementation(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                f"choose from {', '.join(IMPLS)}")
    args.impls = ",".join(impls)
    if args.json is not None:
        problem = _unwritable(args.json)
        if problem:
            p.error(f"--json {args.json}: {problem}")
    return args


def _unwritable(path: str) -> str | None:
    """Why the JSON file ``path`` could not be written (checked before the timing), or None."""
    if not path:
        return "expected a file path, got an empty string"
    if os.path.isdir(path):
        return "is a folder, expected a file path"
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):  # the folders that will be created: is an existing part a file?
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        return f"{folder} is a file, not a folder"
    if not os.access(folder, os.W_OK):
        return f"the folder {folder} is not writable"
    return None


def run(title: str, workloads: list[Workload], argv=None, args: argparse.Namespace | None = None,
        info: dict | None = None, clock: Callable[[], float] = time.perf_counter) -> list[dict]:
    """Time every workload's implementations, print the table, write JSON; return the rows.
    ``info``: more facts about the machine (say, its sgemm GF/s) for the JSON's "machine";
    ``clock``: what :func:`time_fn` reads (wall time unless the benchmark says otherwise)."""
    args = args or parse_args(argv, description=f"tinymm benchmark: {title}")
    repeat = max(3, args.repeat // 3) if args.quick else args.repeat
    wanted = set(args.impls.split(","))
    path = args.json or os.path.join("bench_out", f"{title}.json")
    problem = _unwritable(path)
    if problem:  # say so now, not after minutes of timing
        raise OSError(f"cannot write the results to {path}: {problem}")
    rows = []
    print(f"# {title}  ({machine_info()})")
    header = (
        f"{'workload':38s} {'tinymm ms':>17s} {'numpy ms':>17s} {'torch ms':>17s} "
        f"{'tm/np':>6s} {'tm/torch':>8s} {'GFLOP/s':>8s} {'peak MiB tm':>11s} {'np':>7s}"
    )
    print(header)
    print("-" * len(header))
    for w in workloads:
        if args.filter and args.filter not in w.name:
            continue
        timings, peaks = {}, {}
        fns = {impl: w.impls[impl] for impl in IMPLS if w.impls.get(impl) is not None and impl in wanted}
        if getattr(args, "sequential", False):
            for impl, fn in fns.items():
                timings[impl] = time_fn(fn, warmup=args.warmup, repeat=repeat, min_time=args.min_time, clock=clock)
        else:
            timings = time_interleaved(fns, warmup=args.warmup, repeat=repeat, min_time=args.min_time, clock=clock)
        for impl, fn in fns.items():
            if not args.no_memory and impl != "torch":
                peaks[impl] = peak_memory(fn)
        tm = timings.get("tinymm")
        gflops = (w.flops / tm.median / 1e9) if (w.flops and tm) else None
        print(
            f"{w.name:38s} {_fmt_ms(tm):>17s} {_fmt_ms(timings.get('numpy')):>17s} "
            f"{_fmt_ms(timings.get('torch')):>17s} {_fmt_ratio(tm, timings.get('numpy')):>6s} "
            f"{_fmt_ratio(tm, timings.get('torch')):>8s} {'n/a' if gflops is None else f'{gflops:.1f}':>8s} "
            f"{_fmt_mib(peaks.get('tinymm')):>11s} {_fmt_mib(peaks.get('numpy')):>7s}"
            + (f"  {w.note}" if w.note else "")
        )
        rows.append(
            {
                "workload": w.name,
                "flops": w.flops,
                "note": w.note,
                **{f"{k}_median_s": v.median for k, v in timings.items()},
                **{f"{k}_iqr_s": v.spread for k, v in timings.items()},
                **{f"{k}_peak_bytes": v for k, v in peaks.items()},
                "gflops_tinymm": gflops,
            }
        )
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump({"title": title, "machine": {**machine_info(), **(info or {})}, "argv": sys.argv, "rows": rows}, f, indent=1)
    print(f"wrote {path}")
    return rows
