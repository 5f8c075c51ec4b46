"""Floor 9: the ``tinymm`` command. Each subcommand parses arguments and calls into the
library; the logic lives below.

    tinymm info                      versions, which backends work here (and why not), threads
    tinymm bench NAME [ARGS...]      run benchmarks/NAME.py (``tinymm bench --list``)
    tinymm data summary --task vqa   sizes, class balance, single-modality baselines
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import platform
import sys


# ----------------------------------------------------------------------------- info


def _version(mod: str) -> str:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:
        return "not installed"


def backend_rows() -> list[tuple[str, str, str]]:
    """(backend, status, detail) for NumPy, Numba CPU, Numba CUDA and CuPy."""
    import numpy as np

    rows = [("NumPy (reference, CPU)", "yes", f"numpy {np.__version__}")]
    try:
        import numba

        layer = "?"
        try:
            layer = numba.config.THREADING_LAYER
        except AttributeError:
            pass
        rows.append(("Numba CPU kernels", "yes", f"numba {numba.__version__}, {numba.config.NUMBA_NUM_THREADS} threads, threading layer setting '{layer}'"))
    except Exception as e:
        rows.append(("Numba CPU kernels", "no", f"numba not importable: {e}"))
    from tinymm.backend import cuda_status

    ok, why = cuda_status()
    rows.append(("CuPy arrays (device 'cuda')", "yes" if ok else "no", why))
    if ok:
        from tinymm.backend import gpu_properties

        g = gpu_properties()
        rows.append((f"GPU {g['id']}", "yes", f"{g['name']}, compute capability {g['compute_capability']}, "
                     f"{g['memory_total_gib']:.1f} GiB ({g['memory_free_gib']:.1f} GiB free)"))
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        rows.append(("Numba CUDA kernels", "simulator", "NUMBA_ENABLE_CUDASIM=1: CUDA kernels run in Numba's simulator (slow, for tests)"))
    elif importlib.util.find_spec("numba_cuda") is None and importlib.util.find_spec("numba") is not None:
        rows.append(("Numba CUDA kernels", "no", "numba-cuda is not installed; install tinymm[gpu]"))
    else:
        try:
            from tinymm.kernels._common import numba_cuda

            avail = numba_cuda().is_available()
            rows.append(("Numba CUDA kernels", "yes" if avail else "no", "a CUDA GPU and driver found" if avail else "no CUDA driver/GPU found"))
        except Exception as e:
            rows.append(("Numba CUDA kernels", "no", f"{type(e).__name__}: {e}"))
    return rows


def thread_rows() -> list[tuple[str, str]]:
    rows = [("CPU cores", str(os.cpu_count()))]
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        rows.append((var, os.environ.get(var, "(unset)")))
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            rows.append((f"{info.get('internal_api')} ({os.path.basename(info.get('filepath', ''))})", f"{info.get('num_threads')} threads"))
    except ImportError:
        rows.append(("BLAS pools", "install threadpoolctl to list them"))
    return rows


def cmd_info(args) -> int:
    import tinymm

    print(f"tinymm {tinymm.__version__}  (Python {platform.python_version()}, {platform.system()} {platform.machine()})")
    for mod in ("numpy", "numba", "scipy", "safetensors", "tqdm", "matplotlib", "numba-cuda", "cupy-cuda12x", "cupy-cuda13x"):
        print(f"  {mod:14s} {_version(mod)}")
    print(f"  {'torch':14s} {_version('torch')}  (optional test/benchmark oracle; tinymm never imports it)")
    print("\nbackends")
    rows = backend_rows()
    w = max(len(r[0]) for r in rows)
    for name, status, detail in rows:
        print(f"  {name:{w}s}  {status:9s}  {detail}")
    print("\nthreads")
    for k, v in thread_rows():
        print(f"  {k:40s} {v}")
    return 0


# ----------------------------------------------------------------------------- bench


def _benchmarks_root() -> str | None:
    """The folder holding ``benchmarks/``: the current directory or the source checkout."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for root in (os.getcwd(), here):
        if os.path.isfile(os.path.join(root, "benchmarks", "harness.py")):
            return root
    return None


def cmd_bench(args) -> int:
    root = _benchmarks_root()
    if root is None:
        print("tinymm bench: no benchmarks/ folder found; run from a tinymm source checkout", file=sys.stderr)
        return 2
    names = sorted(
        f[:-3] for f in os.listdir(os.path.join(root, "benchmarks"))
        if f.endswith(".py") and not f.startswith("_") and f not in ("harness.py", "gpu_suite.py")
    )
    if args.list or not args.name:
        print("benchmarks: " + ", ".join(names))
        return 0
    if args.name not in names:
        print(f"tinymm bench: unknown benchmark {args.name!r}; known: {', '.join(names)}", file=sys.stderr)
        return 2
    if root not in sys.path:
        sys.path.insert(0, root)
    mod = importlib.import_module(f"benchmarks.{args.name}")
    result = mod.main(args.rest)
    return result if isinstance(result, int) else 0


# ----------------------------------------------------------------------------- data


def cmd_data(args) -> int:
    from tinymm.data.summary import summarize

    print(summarize(args.task, split=args.split, num_samples=args.num_samples, seed=args.seed))
    return 0


# ----------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinymm", description="tinymm: a small deep-learning library for multimodal models")
    sub = p.add_subparsers(dest="command")

    s = sub.add_parser("info", help="versions, backends and threads")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("bench", help="run a benchmark from benchmarks/ (extra arguments go to it)")
    s.add_argument("name", nargs="?", help="benchmark name, e.g. overhead, attention, data")
    s.add_argument("--list", action="store_true", help="list the benchmarks")
    s.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for the benchmark (try --help)")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("data", help="inspect the built-in datasets")
    dsub = s.add_subparsers(dest="data_command", required=True)
    d = dsub.add_parser("summary", help="sizes, class balance and single-modality baselines of a task")
    d.add_argument("--task", default="vqa")
    d.add_argument("--split", default="train")
    d.add_argument("--num-samples", type=int, default=None, help="samples generated for the task (default: the task's)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_data)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"tinymm {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
