"""One prepared run for a machine with a GPU: the CUDA tests on CuPy arrays, then benchmarks
beside PyTorch CUDA, in one process that fits a time budget.

    python benchmarks/gpu_suite.py --out "$OUT"            # on the GPU machine (about 7 minutes)
    python benchmarks/gpu_suite.py --out /tmp/x --dry-run  # anywhere: the same plumbing on the CPU

Sections, in order; each runs inside try/except, so one that fails is recorded in the JSON
(with its traceback) and the next one still runs; one that would not fit in what is left of
``--budget-s`` is recorded as skipped:

1. ``environment``: versions, and the GPU's name, compute capability and memory (from CuPy).
2. ``tests``: pytest on every test that runs a CUDA kernel (``-k cuda`` over ``tests/kernels``:
   softmax/CE, norm, optim, attention, conv, pool, batchnorm, recurrent) and the whole stack on
   device "cuda" (``tests/test_cuda_device.py``). With a GPU present, tests/conftest.py leaves
   the simulator off, so they run on CuPy arrays. Log: ``pytest.log``.
3. ``attention``: fused SDPA B8 H8 N1024 D64, forward and forward+backward, causal and not,
   against ``torch.nn.functional.scaled_dot_product_attention``; peak memory of each.
4. ``conv``: the seed CNN (conv 3->16, ReLU, max-pool, conv 16->32, ReLU, max-pool, linear) at
   batch 256, loss forward+backward; and one 64->64 3x3 layer (B64, 32x32) forward+backward;
   against cuDNN with TF32 off and on.
5. ``lstm``: LSTM 256->256, B64 T128, forward+backward, against cuDNN (TF32 off and on).
6. ``mlp``: one AdamW training step of an MLP, against torch.

Before any timing, each workload runs once on device "cuda" and once on "cpu" from the same
inputs (never all zeros) and weights; outputs and gradients must agree (float32 tolerance),
else the row records the failure and is not timed. PyTorch's result is checked the same way
and its error recorded. Timing: CUDA events on the current stream around each call, after
warm-up; the median of ``--repeat`` calls. TF32 is off in tinymm (CuPy's default) and for the
torch "tf32 off" column; the "tf32 on" column enables it for cuBLAS and cuDNN.

Writes ``gpu_suite.json`` (rewritten after every section, so a run cut short keeps what it
measured), ``table.txt`` (the table also printed at the end) and ``pytest.log`` under ``--out``.
Exit status 0 when the tests passed and every section ran without error.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as a script from a checkout: import this tinymm
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

TEST_PATHS = ["tests/kernels", "tests/test_cuda_device.py"]
TEST_SELECT = "cuda or Cuda or CUDA"
TOLERANCE = 2e-3  # max |a - b| / max(1, max |b|), float32 against float32 on the CPU


class CheckFailed(AssertionError):
    pass


# ============================================================================ the run


class Suite:
    """The report, the output folder and the clock. ``section`` runs one part under try/except."""

    def __init__(self, out, budget_s, dry):
        self.out, self.budget_s, self.dry = out, budget_s, dry
        self.t0 = time.perf_counter()
        self.report = {"started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "dry_run": dry,
                       "budget_s": budget_s, "sections": {}, "rows": []}

    def elapsed(self):
        return time.perf_counter() - self.t0

    def remaining(self):
        return self.budget_s - self.elapsed()

    def log(self, msg):
        print(f"[{self.elapsed():6.1f}s] {msg}", flush=True)

    def write(self):
        self.report["elapsed_s"] = round(self.elapsed(), 1)
        path = os.path.join(self.out, "gpu_suite.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.report, f, indent=1, default=_jsonable)
        os.replace(tmp, path)

    def section(self, name, needs_s, fn):
        """Run ``fn()`` (which returns a dict, or a list of rows) unless fewer than ``needs_s``
        seconds of the budget are left; record its outcome either way."""
        entry = self.report["sections"][name] = {}
        if self.remaining() < needs_s:
            entry["status"] = f"skipped: {self.remaining():.0f}s of the budget left, needs ~{needs_s}s"
            self.log(f"{name}: {entry['status']}")
            self.write()
            return
        self.log(f"{name}: start")
        t = time.perf_counter()
        try:
            result = fn()
            if isinstance(result, list):
                self.report["rows"] += result
                entry["rows"] = len(result)
                failed = [r["workload"] for r in result if r.get("check") not in (None, "ok")]
                entry["status"] = f"check failed: {', '.join(failed)}" if failed else "ok"
            else:
                entry.update(result or {})
                entry.setdefault("status", "ok")
        except Exception as e:  # noqa: BLE001 - record it and go on to the next section
            entry["status"] = f"error: {type(e).__name__}: {e}"
            entry["traceback"] = traceback.format_exc()
            print(entry["traceback"], flush=True)
        entry["seconds"] = round(time.perf_counter() - t, 1)
        self.log(f"{name}: {entry['status']} ({entry['seconds']}s)")
        self.write()

    def ok(self):
        return all(s.get("status") == "ok" or s.get("status", "").startswith("skipped")
                   for s in self.report["sections"].values())


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return str(x)


# ============================================================================ environment


def environment():
    env = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    for mod in ("numpy", "numba", "numba_cuda", "cupy", "torch", "pytest", "hypothesis"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001
            env[mod] = f"not importable: {type(e).__name__}"
    from tinymm.backend import cuda_status, gpu_properties

    env["cuda_status"] = cuda_status()[1]
    env["gpu"] = gpu_properties()  # name, compute capability, memory
    env["NUMBA_ENABLE_CUDASIM"] = os.environ.get("NUMBA_ENABLE_CUDASIM", "(unset)")
    env["CUPY_TF32"] = os.environ.get("CUPY_TF32", "(unset: off)")
    return env


# ============================================================================ tests


def run_tests(suite, paths, timeout_s):
    """pytest over the CUDA tests in a child process (collection only in a dry run)."""
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *paths, "-k", TEST_SELECT]
    if suite.dry:
        args.append("--co")
    try:
        proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
        log, code = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        log = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        log += f"\n[gpu_suite] pytest stopped after its {timeout_s:.0f}s share of the budget\n"
        code = "timeout"
    with open(os.path.join(suite.out, "pytest.log"), "w") as f:
        f.write(log)
    lines = log.strip().splitlines()
    # pytest's closing line ("3 passed in 2.1s", "12 tests collected in 0.4s"); plugins may
    # print warnings after it (pytest-benchmark does when the parent runs under xdist)
    summary = next((ln for ln in reversed(lines) if re.search(r"\b(passed|failed|collected|no tests ran|errors?)\b", ln)),
                   lines[-1] if lines else "")
    failed = [ln for ln in lines if ln.startswith(("FAILED", "ERROR"))]
    status = "ok" if code == 0 else f"error: pytest exit {code}: {summary}"
    return {"status": status, "command": " ".join(args[1:]), "returncode": code, "summary": summary,
            "failed": failed[:50], "timeout_s": round(timeout_s)}


# ============================================================================ devices and timing


class Bench:
    """Where tinymm and torch run, and how calls are timed.

    On a GPU: tinymm on device "cuda" (CuPy), torch on "cuda", CUDA events. In a dry run:
    both on the CPU with wall-clock timing, tiny shapes: the same code paths, minus the GPU.
    """

    def __init__(self, dry, repeat, warmup, torch):
        self.dry, self.repeat, self.warmup, self.torch = dry, repeat, warmup, torch
        self.device = "cpu" if dry else "cuda"
        self.torch_device = "cpu" if dry else "cuda"
        if dry:
            self.xp = np
        else:
            import cupy

            self.xp = cupy

    def sync(self):
        if not self.dry:
            self.xp.cuda.get_current_stream().synchronize()

    def time_tinymm(self, fn):
        """Median milliseconds of ``fn()``; CuPy events on CuPy's current stream (tinymm's
        kernels and cuBLAS calls all go there)."""
        for _ in range(self.warmup):
            fn()
        times = []
        if self.dry:
            for _ in range(self.repeat):
                t = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t) * 1e3)
            return statistics.median(times)
        cp = self.xp
        start, end = cp.cuda.Event(), cp.cuda.Event()
        self.sync()
        for _ in range(self.repeat):
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(cp.cuda.get_elapsed_time(start, end))
        return statistics.median(times)

    def time_torch(self, fn):
        torch = self.torch
        for _ in range(self.warmup):
            fn()
        times = []
        if self.dry:
            for _ in range(self.repeat):
                t = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t) * 1e3)
            return statistics.median(times)
        torch.cuda.synchronize()
        for _ in range(self.repeat):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            e.synchronize()
            times.append(s.elapsed_time(e))
        return statistics.median(times)

    def tinymm_peak_mib(self, fn):
        """Peak bytes CuPy's pool handed out during ``fn()`` beyond what was in use before
        (a CuPy memory hook counts mallocs and frees); None in a dry run."""
        if self.dry:
            return None
        from cupy.cuda import memory_hook

        class Peak(memory_hook.MemoryHook):
            name = "tinymm_gpu_suite_peak"

            def __init__(self):
                self.now = self.peak = 0

            def malloc_postprocess(self, **kw):
                self.now += kw["mem_size"]
                self.peak = max(self.peak, self.now)

            def free_postprocess(self, **kw):
                self.now -= kw["mem_size"]

        hook = Peak()
        self.sync()
        try:
            with hook:
                fn()
                self.sync()
        except Exception as e:  # noqa: BLE001 - a memory figure is not worth losing the row
            print(f"  (peak memory not measured: {type(e).__name__}: {e})", flush=True)
            return None
        return hook.peak / 2**20

    def torch_peak_mib(self, fn):
        if self.dry:
            return None
        torch = self.torch
        try:
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            fn()
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated() - base) / 2**20
        except Exception as e:  # noqa: BLE001
            print(f"  (torch peak memory not measured: {type(e).__name__}: {e})", flush=True)
            return None

    @contextlib.contextmanager
    def tf32(self, on):
        """TF32 for torch's cuBLAS and cuDNN calls, restored afterwards."""
        torch = self.torch
        old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def max_error(got, want):
    """max |got - want| / max(1, max |want|) over matching arrays."""
    worst = 0.0
    for g, w in zip(got, want):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        if g.shape != w.shape:
            raise CheckFailed(f"shape {g.shape} against {w.shape}")
        if not np.all(np.isfinite(g)):
            return float("inf")
        worst = max(worst, float(np.max(np.abs(g - w))) / max(1.0, float(np.max(np.abs(w)))))
    return worst


def check_row(row, got, want, torch_got=None):
    """Record tinymm's (and torch's) error against the CPU result; a tinymm error above the
    tolerance marks the row failed (it is then not timed)."""
    row["max_error"] = max_error(got, want)
    if torch_got is not None:
        row["torch_max_error"] = max_error(torch_got, want)
    row["check"] = "ok" if row["max_error"] <= TOLERANCE else f"FAILED: error {row['max_error']:.3g} > {TOLERANCE}"
    return row["check"] == "ok"


def finish(row, flops=None):
    """Ratios (tinymm time over torch time: below 1 = tinymm faster) and TFLOP/s."""
    tm = row.get("tinymm_ms")
    for key in ("torch_ms", "torch_tf32_ms"):
        if tm and row.get(key):
            row["ratio" + key[len("torch"):-3]] = tm / row[key]
    if flops and tm:
        row["flops"] = flops
        row["tinymm_tflops"] = flops / (tm * 1e-3) / 1e12
    print("  " + format_row(row), flush=True)
    return row


def _host(t):
    return None if t is None else t.detach().numpy()


def _torch_host(t):
    return None if t is None else t.detach().cpu().numpy()


def _torch_params_from(torch, tm_module, torch_module, device):
    """Load tinymm's weights into the PyTorch twin (same state-dict keys and layouts)."""
    state = {k: torch.tensor(v.numpy()) for k, v in tm_module.state_dict().items()}
    torch_module.load_state_dict(state)
    return torch_module.to(device)


def _tinymm_pair(build):
    """The same tinymm module on "cpu" and on the benchmark device."""
    cpu, dev = build(), build()
    dev.load_state_dict(cpu.state_dict())
    return cpu, dev


# ============================================================================ benchmarks


def bench_attention(b, shape):
    import tinymm as tm
    import tinymm.nn.functional as F

    torch = b.torch
    B, H, N, D = shape
    rng = np.random.default_rng(1)
    host = [rng.standard_normal((B, H, N, D)).astype(np.float32) for _ in range(4)]
    rows = []
    for causal in (False, True):
        name = f"attention B{B} H{H} N{N} D{D}{' causal' if causal else ''}"
        flops = 4.0 * B * H * N * N * D * (0.5 if causal else 1.0)

        def make(device):
            q, k, v = (tm.tensor(a, device=device, requires_grad=True) for a in host[:3])
            do = tm.tensor(host[3], device=device)

            def fwd():
                with tm.no_grad():
                    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

            def fwd_bwd():
                for t in (q, k, v):
                    t.grad = None
                o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                o.backward(do)
                return o

            def results():
                o = fwd_bwd()
                return [_host(o), _host(q.grad), _host(k.grad), _host(v.grad)]

            return fwd, fwd_bwd, results

        fwd, fwd_bwd, results = make(b.device)
        want = make("cpu")[2]()
        got = results()
        t_fwd = t_fb = None
        t_got = None
        if torch is not None:
            tq, tk, tv = (torch.tensor(a, device=b.torch_device, requires_grad=True) for a in host[:3])
            tdo = torch.tensor(host[3], device=b.torch_device)
            sdpa = torch.nn.functional.scaled_dot_product_attention

            def t_fwd():
                with torch.no_grad():
                    return sdpa(tq, tk, tv, is_causal=causal)

            def t_fb():
                for t in (tq, tk, tv):
                    t.grad = None
                o = sdpa(tq, tk, tv, is_causal=causal)
                o.backward(tdo)
                return o

            with b.tf32(False):
                t_got = [_torch_host(t_fb()), *(_torch_host(t.grad) for t in (tq, tk, tv))]
        for label, mine, theirs, fl in (("fwd", fwd, t_fwd, flops), ("fwd+bwd", fwd_bwd, t_fb, 3.5 * flops)):
            row = {"section": "attention", "workload": f"{name} {label}"}
            if check_row(row, got, want, t_got):
                row["tinymm_ms"] = b.time_tinymm(mine)
                row["tinymm_peak_mib"] = b.tinymm_peak_mib(mine)
                if theirs is not None:
                    with b.tf32(False):
                        row["torch_ms"] = b.time_torch(theirs)
                        row["torch_peak_mib"] = b.torch_peak_mib(theirs)
            rows.append(finish(row, fl))
    return rows


def _conv_model(tm_nn, conv_layers):
    (c0, c1), (c1_, c2) = conv_layers
    return tm_nn.Sequential(tm_nn.Conv2d(c0, c1, 3, padding=1), tm_nn.ReLU(), tm_nn.MaxPool2d(2),
                            tm_nn.Conv2d(c1_, c2, 3, padding=1), tm_nn.ReLU(), tm_nn.MaxPool2d(2),
                            tm_nn.Flatten(), tm_nn.Linear(c2 * 8 * 8, 10))


def _torch_both(b, row, fn):
    """torch's time with TF32 off (``torch_ms``) and on (``torch_tf32_ms``)."""
    if b.torch is None:
        return
    for on, key in ((False, "torch_ms"), (True, "torch_tf32_ms")):
        with b.tf32(on):
            row[key] = b.time_torch(fn)


def bench_seed_cnn(b, batch):
    """The seed CNN at ``batch``: cross-entropy loss forward + backward (the image needs no grad)."""
    import tinymm as tm
    import tinymm.nn.functional as F
    from tinymm import nn

    torch = b.torch
    tm.manual_seed(0)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    cpu, dev = _tinymm_pair(lambda: _conv_model(nn, ((3, 16), (16, 32))))
    dev.to(b.device)

    def make(model, device):
        xt, yt = tm.tensor(x, device=device), tm.tensor(y, device=device)

        def step():
            model.zero_grad()
            loss = F.cross_entropy(model(xt), yt)
            loss.backward()
            return loss

        def results():
            loss = step()
            return [_host(loss)] + [_host(p.grad) for p in model.parameters()]

        return step, results

    step, results = make(dev, b.device)
    want, got = make(cpu, "cpu")[1](), results()
    row = {"section": "conv", "workload": f"seed CNN b{batch} loss fwd+bwd"}
    t_got, t_step = None, None
    if torch is not None:
        tmodel = _torch_params_from(torch, cpu, _conv_model(torch.nn, ((3, 16), (16, 32))), b.torch_device)
        tx, ty = torch.tensor(x, device=b.torch_device), torch.tensor(y, device=b.torch_device)

        def t_step():
            tmodel.zero_grad()
            loss = torch.nn.functional.cross_entropy(tmodel(tx), ty)
            loss.backward()
            return loss

        with b.tf32(False):
            t_got = [_torch_host(t_step())] + [_torch_host(p.grad) for p in tmodel.parameters()]
    if check_row(row, got, want, t_got):
        row["tinymm_ms"] = b.time_tinymm(step)
        _torch_both(b, row, t_step)
    # forward FLOPs of the two convolutions, times 3 for forward + backward (less the first
    # layer's input gradient, which is not needed)
    f1, f2 = 2.0 * batch * 16 * 32 * 32 * 3 * 9, 2.0 * batch * 32 * 16 * 16 * 16 * 9
    return [finish(row, 2 * f1 + 3 * f2)]


def bench_conv_layer(b, batch, channels, size):
    import tinymm as tm
    import tinymm.nn.functional as F

    torch = b.torch
    rng = np.random.default_rng(3)
    x = rng.standard_normal((batch, channels, size, size)).astype(np.float32)
    w = (rng.standard_normal((channels, channels, 3, 3)) * 0.05).astype(np.float32)
    bias = rng.standard_normal(channels).astype(np.float32)
    dy = rng.standard_normal((batch, channels, size, size)).astype(np.float32)

    def make(device):
        tx = tm.tensor(x, device=device, requires_grad=True)
        tw, tb = tm.tensor(w, device=device, requires_grad=True), tm.tensor(bias, device=device, requires_grad=True)
        tdy = tm.tensor(dy, device=device)

        def fwd_bwd():
            for t in (tx, tw, tb):
                t.grad = None
            y = F.conv2d(tx, tw, tb, padding=1)
            y.backward(tdy)
            return y

        def results():
            y = fwd_bwd()
            return [_host(y), _host(tx.grad), _host(tw.grad), _host(tb.grad)]

        return fwd_bwd, results

    fwd_bwd, results = make(b.device)
    want, got = make("cpu")[1](), results()
    row = {"section": "conv", "workload": f"conv2d {channels}->{channels} 3x3 B{batch} {size}x{size} fwd+bwd"}
    t_got, t_fb = None, None
    if torch is not None:
        T = [torch.tensor(a, device=b.torch_device, requires_grad=True) for a in (x, w, bias)]
        tdy = torch.tensor(dy, device=b.torch_device)

        def t_fb():
            for t in T:
                t.grad = None
            y = torch.nn.functional.conv2d(*T, padding=1)
            y.backward(tdy)
            return y

        with b.tf32(False):
            t_got = [_torch_host(t_fb())] + [_torch_host(t.grad) for t in T]
    if check_row(row, got, want, t_got):
        row["tinymm_ms"] = b.time_tinymm(fwd_bwd)
        _torch_both(b, row, t_fb)
    return [finish(row, 3 * 2.0 * batch * channels * size * size * channels * 9)]


def bench_lstm(b, batch, steps, size):
    import tinymm as tm
    from tinymm import nn

    torch = b.torch
    tm.manual_seed(0)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((batch, steps, size)).astype(np.float32)
    dy = rng.standard_normal((batch, steps, size)).astype(np.float32)
    cpu, dev = _tinymm_pair(lambda: nn.LSTM(size, size, batch_first=True))
    dev.to(b.device)

    def make(model, device):
        tx = tm.tensor(x, device=device, requires_grad=True)
        tdy = tm.tensor(dy, device=device)

        def fwd_bwd():
            model.zero_grad()
            tx.grad = None
            out, _ = model(tx)
            out.backward(tdy)
            return out

        def results():
            out = fwd_bwd()
            return [_host(out), _host(tx.grad)] + [_host(p.grad) for p in model.parameters()]

        return fwd_bwd, results

    fwd_bwd, results = make(dev, b.device)
    want, got = make(cpu, "cpu")[1](), results()
    row = {"section": "lstm", "workload": f"LSTM {size}->{size} B{batch} T{steps} fwd+bwd"}
    t_got, t_fb = None, None
    if torch is not None:
        tl = _torch_params_from(torch, cpu, torch.nn.LSTM(size, size, batch_first=True), b.torch_device)
        tx = torch.tensor(x, device=b.torch_device, requires_grad=True)
        tdy = torch.tensor(dy, device=b.torch_device)

        def t_fb():
            tl.zero_grad()
            tx.grad = None
            out, _ = tl(tx)
            out.backward(tdy)
            return out

        with b.tf32(False):
            t_got = [_torch_host(t_fb()), _torch_host(tx.grad)] + [_torch_host(p.grad) for p in tl.parameters()]
    if check_row(row, got, want, t_got):
        row["tinymm_ms"] = b.time_tinymm(fwd_bwd)
        _torch_both(b, row, t_fb)
    # forward: two GEMMs per step (input and recurrent), 4 gates; backward twice that
    return [finish(row, 3 * 2.0 * batch * steps * 4 * size * (size + size))]


def _mlp(nn_mod, sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn_mod.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn_mod.ReLU())
    return nn_mod.Sequential(*layers)


def bench_mlp_step(b, sizes, batch):
    import tinymm as tm
    import tinymm.nn.functional as F
    from tinymm import nn, optim

    torch = b.torch
    tm.manual_seed(0)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    cpu, dev = _tinymm_pair(lambda: _mlp(nn, sizes))
    if torch is not None:
        tmodel = _torch_params_from(torch, cpu, _mlp(torch.nn, sizes), b.torch_device)
    dev.to(b.device)

    def make(model, device):
        opt = optim.AdamW(model.parameters(), lr=1e-3)
        xt, yt = tm.tensor(x, device=device), tm.tensor(y, device=device)

        def step():
            loss = F.cross_entropy(model(xt), yt)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        def results():
            step()
            return [_host(p) for p in model.parameters()]

        return step, results

    step, results = make(dev, b.device)
    want, got = make(cpu, "cpu")[1](), results()
    row = {"section": "mlp", "workload": f"MLP {'-'.join(map(str, sizes))} AdamW step b{batch}"}
    t_got, t_step = None, None
    if torch is not None:
        topt = torch.optim.AdamW(tmodel.parameters(), lr=1e-3)
        tx, ty = torch.tensor(x, device=b.torch_device), torch.tensor(y, device=b.torch_device)

        def t_step():
            loss = torch.nn.functional.cross_entropy(tmodel(tx), ty)
            topt.zero_grad()
            loss.backward()
            topt.step()
            return loss

        with b.tf32(False):
            t_step()
            t_got = [_torch_host(p) for p in tmodel.parameters()]
    if check_row(row, got, want, t_got):
        row["tinymm_ms"] = b.time_tinymm(step)
        with b.tf32(False):
            row["torch_ms"] = b.time_torch(t_step) if t_step else None
    flops = 3 * 2.0 * batch * sum(a * c for a, c in zip(sizes[:-1], sizes[1:]))
    return [finish(row, flops)]


# ============================================================================ the table

COLUMNS = [("workload", 48, "s"), ("tinymm_ms", 10, ".3f"), ("torch_ms", 10, ".3f"), ("torch_tf32_ms", 10, ".3f"),
           ("ratio", 7, ".2f"), ("ratio_tf32", 7, ".2f"), ("tinymm_tflops", 7, ".2f"),
           ("tinymm_peak_mib", 8, ".1f"), ("torch_peak_mib", 8, ".1f"), ("check", 6, "s")]
HEADERS = {"workload": "workload", "tinymm_ms": "tinymm ms", "torch_ms": "torch ms", "torch_tf32_ms": "tf32 ms",
           "ratio": "tm/tch", "ratio_tf32": "tm/tf32", "tinymm_tflops": "TFLOP/s", "tinymm_peak_mib": "tm MiB",
           "torch_peak_mib": "tch MiB", "check": "check"}


def format_row(row):
    cells = []
    for key, width, fmt in COLUMNS:
        v = row.get(key)
        text = "n/a" if v is None else (format(v, fmt) if fmt != "s" else str(v))
        cells.append(text.ljust(width) if key == "workload" else text.rjust(width))
    return " ".join(cells)


def table(rows):
    head = " ".join(HEADERS[k].ljust(w) if k == "workload" else HEADERS[k].rjust(w) for k, w, _ in COLUMNS)
    return "\n".join([head] + [format_row(r) for r in rows])


# ============================================================================ main

# (section, seconds it needs at least, shapes for the GPU, shapes for a dry run)
GPU_SHAPES = {"attention": (8, 8, 1024, 64), "cnn_batch": 256, "conv_layer": (64, 64, 32),
              "lstm": (64, 128, 256), "mlp": ((1024, 4096, 4096, 10), 256)}
DRY_SHAPES = {"attention": (1, 2, 40, 16), "cnn_batch": 4, "conv_layer": (2, 8, 8),
              "lstm": (2, 5, 8), "mlp": ((16, 32, 32, 10), 8)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for gpu_suite.json, table.txt and pytest.log")
    p.add_argument("--dry-run", action="store_true",
                   help="no GPU needed: tiny shapes on the CPU, tests only collected")
    p.add_argument("--budget-s", type=float, default=420.0,
                   help="the whole run's time budget in seconds (default 420: 7 minutes)")
    p.add_argument("--repeat", type=int, default=10, help="timed calls per measurement (median)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls before timing")
    p.add_argument("--skip-tests", action="store_true")
    p.add_argument("--tests", nargs="*", default=TEST_PATHS, help="test paths whose CUDA tests run")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    suite = Suite(args.out, args.budget_s, args.dry_run)
    suite.log(f"gpu_suite {'DRY RUN (CPU, tiny shapes)' if args.dry_run else 'on the GPU'}; "
              f"budget {args.budget_s:.0f}s; writing {os.path.join(args.out, 'gpu_suite.json')}")

    def env():
        e = environment()
        suite.report["environment"] = e
        suite.log(f"gpu: {e['gpu']}; {e['cuda_status']}")
        if not args.dry_run and e["gpu"] is None:
            raise RuntimeError(f"no GPU here ({e['cuda_status']}); use --dry-run on a CPU machine")
        return {}

    suite.section("environment", 0, env)
    if not args.dry_run and suite.report["environment"].get("gpu") is None:
        suite.write()
        return 1
    if not args.skip_tests:
        # the benchmarks after the tests need about 150 s; pytest gets the rest, at most 240 s
        share = max(30.0, min(240.0, suite.remaining() - 150.0))
        suite.section("tests", 30, lambda: run_tests(suite, args.tests, share))

    torch = None
    if not args.no_torch:
        try:
            import torch

            if not args.dry_run and not torch.cuda.is_available():
                suite.log("torch sees no CUDA device: torch columns left out")
                torch = None
            elif torch is not None and not args.dry_run:
                torch.backends.cudnn.benchmark = True  # cuDNN picks its fastest algorithm (in warm-up)
        except ImportError:
            suite.log("torch not importable: torch columns left out")
    suite.report["torch_settings"] = None if torch is None else {
        "cudnn.benchmark": bool(torch.backends.cudnn.benchmark), "tf32 column": "cuda.matmul + cudnn allow_tf32"}
    b = Bench(args.dry_run, args.repeat, args.warmup, torch)
    s = DRY_SHAPES if args.dry_run else GPU_SHAPES
    suite.section("attention", 25, lambda: bench_attention(b, s["attention"]))
    suite.section("conv", 30, lambda: bench_seed_cnn(b, s["cnn_batch"]) + bench_conv_layer(b, *s["conv_layer"]))
    suite.section("lstm", 25, lambda: bench_lstm(b, *s["lstm"]))
    suite.section("mlp", 15, lambda: bench_mlp_step(b, *s["mlp"]))

    text = table(suite.report["rows"])
    with open(os.path.join(args.out, "table.txt"), "w") as f:
        f.write(text + "\n")
    print("\n" + text, flush=True)
    print("\nsections: " + "; ".join(f"{k}: {v.get('status')}" for k, v in suite.report["sections"].items()))
    suite.report["ok"] = suite.ok()
    suite.write()
    suite.log(f"done: {'ok' if suite.report['ok'] else 'NOT ok'}; wrote {os.path.join(args.out, 'gpu_suite.json')}")
    return 0 if suite.report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
