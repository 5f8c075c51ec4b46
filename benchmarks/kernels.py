"""CPU kernels: softmax / log-softmax / cross-entropy, LayerNorm, SGD / AdamW.

For each kernel and size, three kinds of row in the main table:

- ``api``: the dispatch of ``tinymm.kernels`` (output allocation, the serial/parallel
  choice, the Numba loop; kernels trust their inputs, so no checks), against the plain NumPy reference ("numpy") and
  PyTorch on CPU float32 ("torch": ``torch.softmax``, ``F.cross_entropy``, ``F.layer_norm``,
  the aten backward ops, ``torch.optim._functional`` with ``fused=True``);
- ``serial`` and ``parallel``: the Numba loop alone, each compiled version, on preallocated
  arrays; the "tinymm" column is the loop, the others n/a.

Back-to-back calls keep the parallel loop's thread pool spinning, which flatters it: between
the kernels of a training step the pool goes back to sleep and each parallel call must wake
it (tens of microseconds on an idle machine, milliseconds on a busy one). So a first table,
printed before the main one, times the serial and the parallel loop with an untimed ``--gap``
sleep before every call (median and mean: the mean counts the calls that wait for a busy
core) and reports where the parallel loop starts to pay: the families'
``CPU_PARALLEL_MIN_ELEMENTS``. ``--crossover-only`` prints just that table.

Numba's parallel loops and PyTorch each run an OpenMP thread pool whose idle threads spin by
default; on a 2-core machine the two pools in one process starve each other (measured: calls
of either library taking ~8 ms at any size). So this process sets ``OMP_WAIT_POLICY=PASSIVE``
unless the environment sets it (``--omp-wait-policy keep`` leaves it alone).

Run: ``python -m benchmarks.kernels`` (``--quick`` for fewer sizes and repeats, ``--filter
softmax`` for one kernel, ``--impls tinymm`` without the references). Quote ratios from one
run; the absolute times are machine-bound.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

import numpy as np

from .harness import Workload, parse_args, run, torch_or_none

ROW_SHAPES = [(4, 8), (400, 2), (64, 64), (128, 256), (256, 512), (512, 512), (512, 1024), (1024, 1024),
              (2048, 1024)]
FLAT_SIZES = [64, 4096, 16384, 65536, 131072, 262144, 524288, 1048576, 4194304]
QUICK_ROW_SHAPES = [(4, 8), (400, 2), (128, 256), (512, 512), (1024, 1024)]
QUICK_FLAT_SIZES = [64, 4096, 65536, 262144, 1048576]


@dataclasses.dataclass
class Case:
    """One kernel at one size: the loops (serial and parallel take the same arguments), the
    public call and its references. ``size`` is the work the dispatch thresholds count."""

    kernel: str
    shape: tuple
    size: int
    serial: object
    parallel: object
    api: object
    numpy: object
    torch: object


def _label(case):
    return f"{case.kernel} {'x'.join(map(str, case.shape))}"


# ----------------------------------------------------------------------------- cases


# One function call per shape (or size), so that each case's lambdas close over its own arrays.


def softmax_cases(shapes, torch):
    return [c for m, n in shapes for c in _softmax_cases(m, n, torch)]


def _softmax_cases(m, n, torch):
    from tinymm.kernels import softmax as S
    from tinymm.kernels.softmax import cpu as S_cpu, reference as S_ref

    rng = np.random.default_rng(m * n)
    x = (rng.standard_normal((m, n)) * 3).astype(np.float32)
    gy = rng.standard_normal((m, n)).astype(np.float32)
    y = S.softmax_forward(x)
    ly = S.log_softmax_forward(x)
    buf = np.empty_like(x)
    t = rng.integers(0, n, m)
    w = np.ones(n, np.float32)
    g = rng.standard_normal(m).astype(np.float32)
    loss, lse = S.cross_entropy_forward(x, t)
    one, zero, w_sum = np.float32(1), np.float32(0), np.float32(n)
    tx = tgy = tt = tg = ty = tly = None
    if torch is not None:
        tx, tgy, tt, tg = torch.tensor(x), torch.tensor(gy), torch.tensor(t), torch.tensor(g)
        ty, tly = torch.softmax(tx, 1), torch.log_softmax(tx, 1)

    def loops(name, *args):
        k = getattr(S_cpu, name)
        return (lambda: k.serial(*args)), (lambda: k.parallel(*args))

    def torch_or(fn):
        return fn if torch is not None else None

    def ce_torch():
        xr = tx.detach().requires_grad_()
        torch.nn.functional.cross_entropy(xr, tt, reduction="none").backward(tg)

    def ce_numpy():
        loss, lse = S_ref.cross_entropy_forward(x, t, None, -100, 0.0)
        return S_ref.cross_entropy_backward(x, t, lse, g, None, -100, 0.0)

    specs = [
        ("softmax fwd", loops("_softmax_forward_cpu", x, buf, False),
         lambda: S.softmax_forward(x), lambda: S_ref.softmax_forward(x),
         torch_or(lambda: torch.softmax(tx, 1))),
        ("softmax bwd", loops("_softmax_backward_cpu", y, gy, buf, False),
         lambda: S.softmax_backward(y, gy), lambda: S_ref.softmax_backward(y, gy),
         torch_or(lambda: torch.ops.aten._softmax_backward_data(tgy, ty, 1, torch.float32))),
        ("log_softmax fwd", loops("_softmax_forward_cpu", x, buf, True),
         lambda: S.log_softmax_forward(x), lambda: S_ref.log_softmax_forward(x),
         torch_or(lambda: torch.log_softmax(tx, 1))),
        ("log_softmax bwd", loops("_softmax_backward_cpu", ly, gy, buf, True),
         lambda: S.log_softmax_backward(ly, gy), lambda: S_ref.log_softmax_backward(ly, gy),
         torch_or(lambda: torch.ops.aten._log_softmax_backward_data(tgy, tly, 1, torch.float32))),
        ("cross_entropy fwd", loops("_cross_entropy_index_forward_cpu", x, t, w, -100, one, zero, g.copy(),
                                    g.copy()),
         lambda: S.cross_entropy_forward(x, t), lambda: S_ref.cross_entropy_forward(x, t, None, -100, 0.0),
         torch_or(lambda: torch.nn.functional.cross_entropy(tx, tt, reduction="none"))),
        ("cross_entropy fwd+bwd", _pair(loops("_cross_entropy_index_forward_cpu", x, t, w, -100, one, zero,
                                              g.copy(), g.copy()),
                                        loops("_cross_entropy_index_backward_cpu", x, t, lse, g, w, w_sum,
                                              -100, one, zero, buf)),
         lambda: S.cross_entropy_backward(x, t, *S.cross_entropy_forward(x, t)[1:], g),
         ce_numpy, torch_or(ce_torch)),
    ]
    return [Case(kernel, (m, n), m * n, ser, par, api, ref, tor) for kernel, (ser, par), api, ref, tor in specs]


def _pair(first, second):
    """(serial, parallel) of two loops run one after the other."""
    return tuple((lambda a=a, b=b: (a(), b())) for a, b in zip(first, second))


def norm_cases(shapes, torch):
    return [c for m, n in shapes for c in _norm_cases(m, n, torch)]


def _norm_cases(m, n, torch):
    from tinymm.kernels import norm as L

    out = []
    rng = np.random.default_rng(m + n)
    x = (rng.standard_normal((m, n)) * 2 + 1).astype(np.float32)
    w, b = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    gy = rng.standard_normal((m, n)).astype(np.float32)
    y, mean, rstd = L.forward(x, w, b)
    buf, mean_out, rstd_out = np.empty_like(x), np.empty_like(mean), np.empty_like(rstd)
    eps = np.float32(1e-5)
    fwd = L._layer_norm_forward_cpu
    bwd = L._layer_norm_backward_cpu
    chunks = max(1, min(m, 4 * _num_threads()))

    def bwd_call(loop, n_chunks):
        # the partial sums accumulate, so each call starts from zeros (as the dispatch does)
        return lambda: loop(gy, x, mean, rstd, w, True, n_chunks, buf, np.zeros((n_chunks, n)),
                            np.zeros((n_chunks, n)))

    t_fwd = t_bwd = None
    if torch is not None:
        tx, tw, tb, tgy = (torch.tensor(a) for a in (x, w, b, gy))
        _, tmean, trstd = torch.ops.aten.native_layer_norm(tx, [n], tw, tb, 1e-5)

        def t_fwd():
            return torch.nn.functional.layer_norm(tx, (n,), tw, tb, 1e-5)

        def t_bwd():
            return torch.ops.aten.native_layer_norm_backward(tgy, tx, [n], tmean, trstd, tw, tb,
                                                             [True, True, True])

    out.append(Case("layer_norm fwd", (m, n), m * n,
                    lambda: fwd.serial(x, w, b, True, True, eps, buf, mean_out, rstd_out),
                    lambda: fwd.parallel(x, w, b, True, True, eps, buf, mean_out, rstd_out),
                    lambda: L.forward(x, w, b), lambda: L.reference_forward(x, w, b, 1e-5),
                    t_fwd))
    out.append(Case("layer_norm bwd", (m, n), m * n, bwd_call(bwd.serial, 1), bwd_call(bwd.parallel, chunks),
                    lambda: L.backward(gy, x, mean, rstd, w, True),
                    lambda: L.reference_backward(gy, x, mean, rstd, w, True), t_bwd))
    return out


def optim_cases(sizes, torch):
    return [c for size in sizes for c in _optim_cases(size, torch)]


def _optim_cases(size, torch):
    from tinymm.kernels import optim as O

    out = []
    hp = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01)
    rng = np.random.default_rng(size)
    p = rng.standard_normal(size).astype(np.float32)
    g = rng.standard_normal(size).astype(np.float32)
    m, v, buf = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    f = np.float32
    adam_args = (p, g, m, v, v[:0], f(-1e-3 / 0.1), f(np.sqrt(1 - 0.999)), f(1e-8), f(0.1), f(0.999), f(0.001),
                 f(0.01), f(1 - 1e-5), True, False, False)
    sgd_args = (p, g, buf, f(0.01), f(0.9), f(1.0), f(0.0), False, False, False, True)
    t_adam = t_sgd = None
    if torch is not None:
        import torch.optim._functional as TF

        tp, tg, tm, tv, tbuf = (torch.tensor(a) for a in (p, g, m, v, buf))
        step = torch.tensor(1.0)

        def t_adam():
            TF.adamw([tp], [tg], [tm], [tv], [], [step], fused=True, amsgrad=False, beta1=hp["beta1"],
                     beta2=hp["beta2"], lr=hp["lr"], weight_decay=hp["weight_decay"], eps=hp["eps"],
                     maximize=False)

        def t_sgd():
            TF.sgd([tp], [tg], [tbuf], fused=True, weight_decay=0.0, momentum=0.9, lr=0.01, dampening=0.0,
                   nesterov=False, maximize=False)

    out.append(Case("adamw step", (size,), size,
                    lambda: O._adam_cpu.serial(*adam_args), lambda: O._adam_cpu.parallel(*adam_args),
                    lambda: O.adam_step(p, g, m, v, step=10, decoupled_weight_decay=True, **hp),
                    lambda: O.reference_adam_step(p, g, m, v, step=10, decoupled_weight_decay=True, **hp),
                    t_adam))
    out.append(Case("sgd momentum step", (size,), size,
                    lambda: O._sgd_cpu.serial(*sgd_args), lambda: O._sgd_cpu.parallel(*sgd_args),
                    lambda: O.sgd_step(p, g, buf, lr=0.01, momentum=0.9),
                    lambda: O.reference_sgd_step(p, g, buf, lr=0.01, momentum=0.9), t_sgd))
    return out


def _num_threads():
    import numba

    return numba.get_num_threads()


# ----------------------------------------------------------------------------- the serial/parallel crossover


def time_after_idle(fn, gap, repeat):
    """Median and mean seconds of one call of ``fn``, each timed call after an untimed
    ``gap``-second sleep (so that a thread pool has gone idle, as between the kernels of a
    training step). The mean counts the occasional call that waits for a busy core."""
    fn()
    fn()
    samples = []
    for _ in range(repeat):
        time.sleep(gap)
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), statistics.fmean(samples)


def crossover(cases, gap, repeat):
    """Print serial vs parallel after idle for every case; return {kernel: smallest size from
    which the parallel loop's mean time is at most 1/1.2 of the serial one's, at that size and
    every larger one measured (None: nowhere)}."""
    print(f"# serial vs parallel Numba loop, each call after {gap * 1e3:.0f} ms idle ({repeat} calls; "
          f"{_num_threads()} threads; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')})")
    print(f"{'workload':32s} {'elements':>9s} {'serial ms':>21s} {'parallel ms':>21s} {'par/ser':>15s}")
    print(f"{'':32s} {'':>9s} {'median':>10s} {'mean':>10s} {'median':>10s} {'mean':>10s} {'median':>7s} {'mean':>7s}")
    by_kernel = {}
    for c in cases:
        sm, sa = time_after_idle(c.serial, gap, repeat)
        pm, pa = time_after_idle(c.parallel, gap, repeat)
        print(f"{_label(c):32s} {c.size:9d} {sm * 1e3:10.4f} {sa * 1e3:10.4f} {pm * 1e3:10.4f} {pa * 1e3:10.4f} "
              f"{pm / sm:7.2f} {pa / sa:7.2f}")
        by_kernel.setdefault(c.kernel, []).append((c.size, pa / sa))
    result = {}
    for kernel, rows in by_kernel.items():
        rows.sort()
        pays = None
        for size, ratio in reversed(rows):
            if ratio > 1 / 1.2:
                break
            pays = size
        result[kernel] = pays
    print("\nthe parallel loop pays (mean time 1.2x lower, here and at every larger size measured) from:")
    for kernel, size in result.items():
        print(f"  {kernel:24s} {'nowhere up to the largest size' if size is None else f'{size} elements'}")
    return result


def main(argv=None):
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--gap", type=float, default=0.005, help="idle seconds before each crossover call")
    extra.add_argument("--no-crossover", action="store_true", help="skip the serial/parallel after-idle table")
    extra.add_argument("--crossover-only", action="store_true", help="only the serial/parallel after-idle table")
    extra.add_argument("--omp-wait-policy", default="PASSIVE",
                       help="OMP_WAIT_POLICY for this process unless already set ('keep': leave it unset)")
    known, rest = extra.parse_known_args(argv)
    args = parse_args(rest, description="tinymm benchmark: CPU kernels (softmax, LayerNorm, optimisers)")
    if known.omp_wait_policy != "keep":
        # Numba's parallel loops and PyTorch each run their own OpenMP thread pool, whose idle
        # threads spin by default. On a 2-core machine one pool's spinning threads starve the
        # other's: a call then waits out a scheduler slice (measured: about 8 ms for any size,
        # for both libraries). Sleeping idle threads make the two comparable. Set before either
        # pool starts.
        os.environ.setdefault("OMP_WAIT_POLICY", known.omp_wait_policy)
    torch = torch_or_none() if "torch" in args.impls.split(",") else None
    if torch is not None:
        torch.set_num_threads(os.cpu_count() or 1)
    shapes = QUICK_ROW_SHAPES if args.quick else ROW_SHAPES
    sizes = QUICK_FLAT_SIZES if args.quick else FLAT_SIZES
    cases = softmax_cases(shapes, torch) + norm_cases(shapes, torch) + optim_cases(sizes, torch)
    cases = [c for c in cases if args.filter in _label(c)]
    cases.sort(key=lambda c: (c.kernel, c.size))
    workloads = []
    for c in cases:
        label = _label(c)
        workloads.append(Workload(f"{label} api", {"tinymm": c.api, "numpy": c.numpy, "torch": c.torch}))
        workloads.append(Workload(f"{label} serial", {"tinymm": c.serial}))
        workloads.append(Workload(f"{label} parallel", {"tinymm": c.parallel}))
    if not known.no_crossover:  # first, before PyTorch has started its thread pool
        crossover(cases, known.gap, max(5, args.repeat // 3) if args.quick else 2 * args.repeat + 1)
        print()
    if known.crossover_only:
        return []
    args.filter = ""  # already applied, to the cases
    return run("kernels", workloads, args=args)


if __name__ == "__main__":
    main()
