"""One prepared run for a machine with a GPU: the CUDA tests on CuPy arrays, then GPU benchmarks.

    python benchmarks/gpu_suite.py --out "$OUT"            # on the GPU machine
    python benchmarks/gpu_suite.py --out /tmp/x --dry-run  # here: checks the script's own plumbing

Writes ``gpu_suite.json`` (environment, test outcome, benchmark rows) and ``pytest.log`` under
``--out``. Timings use CUDA events around each call (median of ``--repeat`` after warm-up);
absolute times are only meaningful here, on a GPU. Each row also records the bytes/FLOPs
counted so achieved rates can be compared with the chip's ceilings.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def environment() -> dict:
    env = {"python": platform.python_version(), "machine": platform.machine()}
    try:
        env["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.sm", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception as e:  # noqa: BLE001 - report whatever went wrong
        env["nvidia_smi"] = f"unavailable: {e}"
    for mod in ("numpy", "numba", "numba_cuda", "cupy", "torch"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001
            env[mod] = f"not importable: {e}"
    return env


def run_tests(out: str, dry: bool, paths) -> dict:
    """The CUDA kernel tests (on CuPy arrays here) and the device-level tests."""
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *paths,
            "-k", "cuda or Cuda or CUDA"]
    if dry:
        args += ["-x", "--co"]
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    with open(os.path.join(out, "pytest.log"), "w") as f:
        f.write(log)
    tail = log.strip().splitlines()[-1] if log.strip() else ""
    print(f"[tests] exit {proc.returncode} in {time.perf_counter() - t0:.1f}s: {tail}", flush=True)
    return {"returncode": proc.returncode, "summary": tail, "seconds": time.perf_counter() - t0}


class Timer:
    """Median of CUDA-event-timed calls (milliseconds), after warm-up."""

    def __init__(self, xp, repeat: int):
        self.xp, self.repeat = xp, repeat

    def __call__(self, fn, warmup: int = 3) -> float:
        xp = self.xp
        for _ in range(warmup):
            fn()
        if xp.__name__ == "numpy":
            times = []
            for _ in range(self.repeat):
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
            return statistics.median(times)
        start, end = xp.cuda.Event(), xp.cuda.Event()
        times = []
        for _ in range(self.repeat):
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(xp.cuda.get_elapsed_time(start, end))
        return statistics.median(times)


def torch_timer(torch, repeat):
    def timed(fn, warmup=3):
        for _ in range(warmup):
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(repeat):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            e.synchronize()
            times.append(s.elapsed_time(e))
        return statistics.median(times)

    return timed


def bench_attention(xp, timer, torch, shapes, dry: bool) -> list:
    import numpy as np

    import tinymm as tm
    import tinymm.nn.functional as F

    device = "cpu" if dry else "cuda"
    rows = []
    for B, H, N, D in shapes:
        rng = np.random.default_rng(N)
        host = [rng.standard_normal((B, H, N, D)).astype(np.float32) for _ in range(4)]
        for causal in (False, True):
            q, k, v = (tm.tensor(a, device=device, requires_grad=True) for a in host[:3])
            do = tm.tensor(host[3], device=device)

            def fwd():
                with tm.no_grad():
                    F.scaled_dot_product_attention(q, k, v, is_causal=causal)

            def fwd_bwd():
                for t in (q, k, v):
                    t.grad = None
                F.scaled_dot_product_attention(q, k, v, is_causal=causal).backward(do)

            flops = 4.0 * B * H * N * N * D * (0.5 if causal else 1.0)
            row = {"workload": f"attention B{B} H{H} N{N} D{D}{' causal' if causal else ''}",
                   "flops_fwd": flops, "flops_fwd_bwd": 3.5 * flops,
                   "tinymm_fwd_ms": timer(fwd), "tinymm_fwd_bwd_ms": timer(fwd_bwd)}
            if torch is not None and not dry:
                tq, tk, tv = (torch.tensor(a, device="cuda", requires_grad=True) for a in host[:3])
                tdo = torch.tensor(host[3], device="cuda")
                sdpa = torch.nn.functional.scaled_dot_product_attention
                tt = torch_timer(torch, timer.repeat)

                def tfwd():
                    with torch.no_grad():
                        sdpa(tq, tk, tv, is_causal=causal)

                def tfb():
                    for t in (tq, tk, tv):
                        t.grad = None
                    sdpa(tq, tk, tv, is_causal=causal).backward(tdo)

                row["torch_fwd_ms"], row["torch_fwd_bwd_ms"] = tt(tfwd), tt(tfb)
                # The same computation in float32 without TF32 and without the flash kernel is the
                # fair "math" baseline; flash/efficient kernels are what users get by default.
            for key in ("fwd", "fwd_bwd"):
                ms = row[f"tinymm_{key}_ms"]
                row[f"tinymm_{key}_tflops"] = row[f"flops_{key}"] / (ms * 1e-3) / 1e12
                if f"torch_{key}_ms" in row:
                    row[f"ratio_{key}_tinymm_over_torch"] = ms / row[f"torch_{key}_ms"]
            print("[bench]", {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
            rows.append(row)
    return rows


def bench_mlp_step(xp, timer, torch, dry: bool) -> list:
    import numpy as np

    import tinymm as tm
    import tinymm.nn.functional as F
    from tinymm import nn, optim

    device = "cpu" if dry else "cuda"
    sizes, batch = ((32, 64, 64, 10), 16) if dry else ((1024, 4096, 4096, 10), 256)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((batch, sizes[0])).astype(np.float32), rng.integers(0, 10, batch)
    layers = []
    for i in range(3):
        layers += [nn.Linear(sizes[i], sizes[i + 1])] + ([nn.ReLU()] if i < 2 else [])
    model = nn.Sequential(*layers).to(device)
    opt = optim.AdamW(model.parameters(), lr=1e-3)
    xt, yt = tm.tensor(x, device=device), tm.tensor(y, device=device)

    def step():
        loss = F.cross_entropy(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()

    row = {"workload": f"MLP {'-'.join(map(str, sizes))} AdamW step b{batch}", "tinymm_ms": timer(step)}
    if torch is not None and not dry:
        tl = []
        for i in range(3):
            tl += [torch.nn.Linear(sizes[i], sizes[i + 1])] + ([torch.nn.ReLU()] if i < 2 else [])
        tmodel = torch.nn.Sequential(*tl).cuda()
        topt = torch.optim.AdamW(tmodel.parameters(), lr=1e-3)
        tx, ty = torch.tensor(x, device="cuda"), torch.tensor(y, device="cuda")

        def tstep():
            loss = torch.nn.functional.cross_entropy(tmodel(tx), ty)
            topt.zero_grad()
            loss.backward()
            topt.step()

        row["torch_ms"] = torch_timer(torch, timer.repeat)(tstep)
        row["ratio_tinymm_over_torch"] = row["tinymm_ms"] / row["torch_ms"]
    print("[bench]", row, flush=True)
    return [row]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--dry-run", action="store_true", help="no GPU: tiny shapes on the CPU, tests only collected")
    p.add_argument("--skip-tests", action="store_true")
    p.add_argument("--tests", nargs="*", default=["tests/test_cuda_device.py", "tests/kernels"],
                   help="test paths to run (their CUDA tests)")
    p.add_argument("--quick", action="store_true", help="two attention shapes only")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    report = {"environment": environment(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    print("[env]", report["environment"], flush=True)
    if not args.skip_tests:
        report["tests"] = run_tests(args.out, args.dry_run, args.tests)
    if args.dry_run:
        import numpy as xp

        torch = None
        shapes = [(1, 2, 64, 16)]
    else:
        import cupy as xp

        try:
            import torch
        except ImportError:
            torch = None
        shapes = [(8, 4, 256, 64), (4, 4, 1024, 64), (1, 4, 4096, 64), (8, 16, 2048, 64)]
        if args.quick:
            shapes = [(4, 4, 1024, 64), (8, 16, 2048, 64)]
    timer = Timer(xp, args.repeat)
    report["benchmarks"] = []
    for name, fn in (("attention", lambda: bench_attention(xp, timer, torch, shapes, args.dry_run)),
                     ("mlp", lambda: bench_mlp_step(xp, timer, torch, args.dry_run))):
        try:
            report["benchmarks"] += fn()
        except Exception as e:  # noqa: BLE001 - record and go on to the next benchmark
            import traceback

            report.setdefault("errors", []).append({name: traceback.format_exc()})
            print(f"[bench] {name} failed: {e}", flush=True)
        with open(os.path.join(args.out, "gpu_suite.json"), "w") as f:
            json.dump(report, f, indent=1)
    print(f"[done] wrote {os.path.join(args.out, 'gpu_suite.json')}", flush=True)
    return 0 if report.get("tests", {}).get("returncode", 0) in (0, 5) and "errors" not in report else 1


if __name__ == "__main__":
    sys.exit(main())
