"""Floor 9: the ``tinymm`` command. Each subcommand parses arguments and calls into the
library; the logic lives below.

    tinymm info                      versions, which backends work here (and why not), threads
    tinymm bench NAME [ARGS...]      run a benchmark shipped with tinymm (``tinymm bench --list``)
    tinymm data summary --task vqa   sizes, class balance, single-modality baselines
    tinymm train [--task vqa]        train a model end to end (progress, checkpoints, plots, report)
    tinymm eval RUN_DIR              metrics of a trained run (recall for a pretrain run)
    tinymm predict RUN_DIR --index I one sample's answer beside the truth
    tinymm encode TEXT...            cosine similarities under all-MiniLM-L6-v2 (--model NAME|DIR)
    tinymm pretrain                  contrastive (CLIP) pretraining; recall@1/5/10 on held-out pairs
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
    from tinymm.kernels._common import HEAP_KEEP_BYTES

    # both set by tinymm unless the environment already did (kernels/_common.py says why)
    rows.append(("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "(unset)")))
    rows.append(("freed heap kept (TINYMM_HEAP_KEEP)", f"{HEAP_KEEP_BYTES >> 20} MiB" if HEAP_KEEP_BYTES else "off"))
    from tinymm.kernels.attention import _amx

    rows.append(("attention on AMX tiles (TINYMM_AMX)", "yes" if _amx.available() else "no"))
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            rows.append((f"{info.get('internal_api')} ({os.path.basename(info.get('filepath', ''))})", f"{info.get('num_threads')} threads"))
    except ImportError:
        rows.append(("BLAS pools", "install threadpoolctl to list them"))
    return rows


def cmd_info(args) -> int:
    from tinymm.torch_version import TINYMM_RELEASE, TORCH_API_VERSION

    print(f"tinymm {TINYMM_RELEASE}, PyTorch API {TORCH_API_VERSION}  (Python {platform.python_version()}, "
          f"{platform.system()} {platform.machine()})")
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

# Modules of the benchmarks package that are not benchmarks to run by name.
_NOT_BENCHMARKS = {"harness", "gpu_suite"}
# Short names that run a benchmark module of another name.
_BENCH_ALIASES = {"train": "train_step"}


def _benchmarks_package():
    """The ``tinymm.benchmarks`` package installed with this tinymm (``benchmarks/`` in the
    source tree). Only it is searched: never the current directory, so running ``tinymm bench``
    inside someone else's checkout cannot execute their code."""
    try:
        return importlib.import_module("tinymm.benchmarks")
    except ImportError:
        return _checkout_benchmarks()


def _checkout_benchmarks():
    """``benchmarks/`` of the tinymm source checkout this tinymm was imported from, for an
    editable install made before benchmarks were packaged; found next to the package itself
    (never in the current directory), and only in a checkout whose pyproject names tinymm."""
    import tinymm

    root = os.path.dirname(os.path.dirname(os.path.abspath(tinymm.__file__)))
    src = os.path.join(root, "benchmarks")
    try:
        with open(os.path.join(root, "pyproject.toml"), encoding="utf-8") as f:
            ours = 'name = "tinymm"' in f.read()
    except OSError:
        return None
    if not (ours and os.path.isfile(os.path.join(src, "__init__.py")) and os.path.isfile(os.path.join(src, "harness.py"))):
        return None
    spec = importlib.util.spec_from_file_location("tinymm.benchmarks", os.path.join(src, "__init__.py"),
                                                  submodule_search_locations=[src])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["tinymm.benchmarks"] = mod
    spec.loader.exec_module(mod)
    return mod


def benchmark_names() -> list[str]:
    import pkgutil

    pkg = _benchmarks_package()
    if pkg is None:
        return []
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)
                  if not m.name.startswith("_") and not m.ispkg and m.name not in _NOT_BENCHMARKS)


def cmd_bench(args) -> int:
    if _benchmarks_package() is None:
        print("tinymm bench: the benchmarks are not installed with this tinymm (tinymm.benchmarks is "
              "missing); reinstall tinymm (pip install -e . in a checkout)", file=sys.stderr)
        return 1
    names = benchmark_names()
    if args.list or not args.name:
        print("benchmarks: " + ", ".join(names))
        return 0
    args.name = _BENCH_ALIASES.get(args.name, args.name)
    if args.name not in names:
        print(f"tinymm bench: unknown benchmark {args.name!r}; known: {', '.join(names)}", file=sys.stderr)
        return 2
    mod = importlib.import_module(f"tinymm.benchmarks.{args.name}")
    sys.argv[0] = f"tinymm bench {args.name}"  # the program name argparse prints in usage lines
    result = mod.main(args.rest)
    return result if isinstance(result, int) else 0


# ----------------------------------------------------------------------------- data


def cmd_data(args) -> int:
    from tinymm.data.summary import summarize

    print(summarize(args.task, split=args.split, num_samples=args.num_samples, seed=args.seed,
                    max_samples=args.max_samples))
    return 0


# ----------------------------------------------------------------------------- encode


def cmd_encode(args) -> int:
    """Embed the given sentences with a pretrained sentence encoder; print their cosine similarities."""
    from tinymm.models import PretrainedNotFoundError, SentenceEncoder

    try:
        enc = SentenceEncoder.from_pretrained(args.model)
    except PretrainedNotFoundError as e:
        print(f"tinymm encode: {e}", file=sys.stderr)
        return 2
    emb = enc.encode(args.text, batch_size=args.batch_size)
    sim = emb @ emb.T  # rows are unit vectors: dot products are cosines
    for i, text in enumerate(args.text):
        print(f"{i:3d}  {text}")
    print()
    print("     " + "".join(f"{j:>7d}" for j in range(len(args.text))))
    for i, row in enumerate(sim):
        print(f"{i:3d}  " + "".join(f"{v:7.3f}" for v in row))
    return 0


def _add_encode_parser(sub) -> None:
    s = sub.add_parser("encode", help="cosine similarities of sentences under a pretrained sentence encoder")
    s.add_argument("text", nargs="+", metavar="TEXT", help="the sentences (quote each one)")
    s.add_argument("--model", default="all-MiniLM-L6-v2", help="a known model name or a model folder (default all-MiniLM-L6-v2)")
    s.add_argument("--batch-size", type=int, default=32)
    s.set_defaults(func=cmd_encode)


# ----------------------------------------------------------------------------- train / eval / predict


def _run_errors(command, fn, args) -> int:
    """A user's mistake in a run (missing or corrupt run folder, wrong device) is one line, exit 2."""
    from tinymm.serialization import CheckpointError
    from tinymm.train import TrainingDiverged

    try:
        return fn(args)
    except TrainingDiverged as e:
        return _error(command, str(e), 1)
    except (FileNotFoundError, NotADirectoryError, CheckpointError) as e:
        return _error(command, _text(e), 2)
    except RuntimeError as e:
        if "cuda" in str(e).lower():
            return _error(command, _text(e), 2)
        raise


def _cpu_threads(n: int) -> None:
    """Hold Numba's kernels and the BLAS library to ``n`` threads for the rest of the process."""
    import numba
    from threadpoolctl import threadpool_limits

    if n < 1:
        raise ValueError(f"--threads must be at least 1, got {n}")
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(n, user_api="blas")


def _train(args) -> int:
    from tinymm.models import BASELINES
    from tinymm.train.runs import RunSettings, format_report, total_steps, train_run

    try:
        _cpu_threads(args.threads)
    except ValueError as e:
        return _error("train", str(e), 2)

    out = args.out or os.path.join("runs", f"{args.task}-{args.model or 'default'}")
    settings = RunSettings(task=args.task, model=args.model, preset=args.preset, epochs=args.epochs,
                           minutes=args.minutes, batch_size=args.batch_size, lr=args.lr, device=args.device,
                           seed=args.seed, train_samples=args.train_samples)
    p = settings.resolved()
    steps = total_steps(p)
    print(f"tinymm train: task {args.task}, model {p['model']}, preset {args.preset} ({p['epochs']} epochs × "
          f"{p['train_samples']} samples = {steps} steps, at most {p['minutes']:g} min), device {args.device}, "
          f"{args.threads} CPU thread{'s' if args.threads > 1 else ''}; "
          f"files in {out}", flush=True)
    res = train_run(settings, out, resume=args.resume, progress=not args.no_progress)
    print(format_report(res, f"{res['model']} on {res['task']}"))
    rows = [(res["model"], res)]
    if args.baselines:
        for name in BASELINES.get(args.task, ()):
            base = RunSettings(**{**settings.__dict__, "model": name})
            print(f"\nbaseline {name} under the same budget", flush=True)
            rows.append((name, train_run(base, f"{out}-{name}", progress=not args.no_progress)))
        print("\nmodel                 accuracy   " + "  ".join(f"{t:>9}" for t in res.get("per_type", {})))
        for name, r in rows:
            print(f"{name:<20}  {r['accuracy']:8.4f}   " +
                  "  ".join(f"{r['per_type'].get(t, float('nan')):9.4f}" for t in res.get("per_type", {})))
    print(f"\nfiles: {out}/ (checkpoints/, model/, history.json/.csv, loss.png, metrics.png, "
          f"confusion_matrix.png, report.json)")
    return 0


def cmd_train(args) -> int:
    return _run_errors("train", _train, args)


def _eval(args) -> int:
    from tinymm.train.runs import evaluate_model, format_report, is_contrastive, load_run

    model, rec, doc = load_run(args.run_dir, device=args.device)
    name = doc.get("model") or doc.get("resolved", {}).get("model")
    if is_contrastive(model):  # a `tinymm pretrain` run: its measure is retrieval, not accuracy
        from tinymm.train.pretrain import format_retrieval, retrieval_report

        res = retrieval_report(model, rec, args.split, args.num_samples, device=args.device)
        print(format_retrieval(res, f"{name} on {doc['task']} ({args.run_dir})"))
        return 0
    res = evaluate_model(model, rec, args.split, args.num_samples, device=args.device)
    print(format_report(res, f"{name} on {doc['task']} ({args.run_dir})"))
    return 0


def cmd_eval(args) -> int:
    return _run_errors("eval", _eval, args)


def _predict(args) -> int:
    from tinymm.train.runs import predict_one

    r = predict_one(args.run_dir, args.index, args.split, device=args.device)
    for key in ("question_type", "question", "caption"):
        if key in r:
            print(f"{key:<14}{r[key]}")
    for obj in r.get("scene", []):
        print(f"{'object':<14}{obj}")
    print(f"{'answer':<14}{r['answer']}   (truth: {r['truth']})")
    print(f"{'top 3':<14}" + ", ".join(f"{a} {p:.2f}" for a, p in r["top"]))
    return 0


def cmd_predict(args) -> int:
    return _run_errors("predict", _predict, args)


def _add_run_parsers(sub) -> None:
    s = sub.add_parser("train", help="train a model on a built-in task (default: the fusion model on vqa)")
    s.add_argument("--task", default="vqa")
    s.add_argument("--model", default=None, help="model name (default: the task's default)")
    s.add_argument("--preset", default="quick", choices=("quick", "full", "tiny"),
                   help="quick: about 5 minutes on 2 CPU cores; full: at most 30 minutes; tiny: seconds")
    s.add_argument("--epochs", type=int, default=None)
    s.add_argument("--minutes", type=float, default=None, help="training-time budget")
    s.add_argument("--batch-size", type=int, default=None)
    s.add_argument("--lr", type=float, default=None)
    s.add_argument("--train-samples", type=int, default=None, help="size of the generated training set")
    s.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    s.add_argument("--out", default=None, help="run folder (default runs/TASK-MODEL)")
    s.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.safetensors")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--baselines", action="store_true", help="also train the unimodal baselines, one table")
    s.add_argument("--threads", type=int, default=1,
                   help="CPU threads for the kernels and BLAS (default 1: at batch 64 a step ran twice as "
                        "fast on one thread as on two on a 2-core machine, for PyTorch too; the data "
                        "loader's thread uses the other core)")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("eval", help="metrics of a trained run on a split")
    s.add_argument("run_dir")
    s.add_argument("--split", default="test", choices=("train", "val", "test"))
    s.add_argument("--num-samples", type=int, default=1000)
    s.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("predict", help="one sample's inputs, the model's answer and the truth")
    s.add_argument("run_dir")
    s.add_argument("--index", type=int, default=0)
    s.add_argument("--split", default="test", choices=("train", "val", "test"))
    s.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    s.set_defaults(func=cmd_predict)


# ----------------------------------------------------------------------------- pretrain


def _pretrain(args) -> int:
    from tinymm.train.pretrain import PretrainSettings, format_retrieval, pretrain_run

    out = args.out or os.path.join("runs", f"{args.task}-{args.model or 'default'}")
    settings = PretrainSettings(task=args.task, model=args.model, preset=args.preset, epochs=args.epochs,
                                batch_size=args.batch_size, lr=args.lr, train_samples=args.train_samples,
                                gallery=args.gallery, device=args.device, seed=args.seed)
    p = settings.resolved()
    print(f"tinymm pretrain: task {args.task}, model {p['model']}, preset {args.preset} ({p['epochs']} epochs "
          f"over {p['train_samples']} pairs, batch {p['batch_size']}), device {args.device}; files in {out}",
          flush=True)
    res = pretrain_run(settings, out, progress=not args.no_progress)
    print(format_retrieval(res, f"{res['model']} on {res['task']}"))
    print(f"\nfiles: {out}/ (model/ [save_pretrained], tokenizer.json, run.json, report.json, checkpoints/, "
          f"history.json/.csv, loss.png)")
    return 0


def cmd_pretrain(args) -> int:
    return _run_errors("pretrain", _pretrain, args)


def _add_pretrain_parser(sub) -> None:
    s = sub.add_parser("pretrain", help="contrastive (CLIP) pretraining on image-caption pairs, then "
                                        "recall@1/5/10 both ways on held-out pairs")
    s.add_argument("--task", default="retrieval", help="a task of image-caption pairs (retrieval)")
    s.add_argument("--model", default=None, help="model name (default: the task's default, clip)")
    s.add_argument("--preset", default="quick", choices=("quick", "tiny"),
                   help="quick: the settings the README measured; tiny: seconds")
    s.add_argument("--epochs", type=int, default=None)
    s.add_argument("--batch-size", type=int, default=None)
    s.add_argument("--lr", type=float, default=None)
    s.add_argument("--train-samples", type=int, default=None, help="generated training pairs")
    s.add_argument("--gallery", type=int, default=None, help="held-out test pairs to rank (default 1000)")
    s.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    s.add_argument("--out", default=None, help="run folder (default runs/TASK-MODEL)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_pretrain)


# ----------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinymm", description="tinymm: a small deep-learning library for multimodal models")
    sub = p.add_subparsers(dest="command")

    s = sub.add_parser("info", help="versions, backends and threads")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("bench", help="run a benchmark shipped with tinymm (extra arguments go to it)")
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
    d.add_argument("--max-samples", type=int, default=100_000,
                   help="statistics read at most this many samples of the split (default 100000)")
    d.set_defaults(func=cmd_data)

    _add_encode_parser(sub)
    _add_run_parsers(sub)
    _add_pretrain_parser(sub)
    return p


def _error(command, message: str, code: int) -> int:
    print(f"tinymm{' ' + command if command else ''}: {message}", file=sys.stderr)
    return code


def main(argv=None) -> int:
    """Run the command; return its exit status.

    A user's mistake or an environment problem ends with one line on stderr and no traceback:
    bad arguments or values exit 2, a file-system or memory problem 1, Ctrl-C 130 (as shells
    do). An unexpected error also prints one line, plus a hint to see the traceback with
    ``TINYMM_TRACEBACK=1``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    command = args.command
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return _error(command, "interrupted", 130)
    except BrokenPipeError:
        # the reader went away (``tinymm bench --list | head``): stop quietly
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 1
    except MemoryError as e:
        return _error(command, f"out of memory{': ' + str(e) if str(e) else ''}; try a smaller size", 1)
    except (ValueError, TypeError, LookupError) as e:
        return _error(command, _text(e), 2)
    except OSError as e:
        return _error(command, _text(e), 1)
    except Exception as e:  # noqa: BLE001 - a bug, but still one line unless asked for more
        if os.environ.get("TINYMM_TRACEBACK") == "1":
            raise
        return _error(command, f"unexpected {type(e).__name__}: {_text(e)} (set TINYMM_TRACEBACK=1 to see where)", 1)


def _text(e: BaseException) -> str:
    # KeyError quotes its message; show it as written
    return str(e.args[0]) if isinstance(e, KeyError) and e.args else (str(e) or type(e).__name__)


if __name__ == "__main__":
    sys.exit(main())
