"""Scaled dot-product attention: tinymm's fused kernels against plain NumPy and PyTorch SDPA.

Workloads: B8 H4 N256 D64, B4 H4 N1024 D64, B1 H4 N4096 D64; causal and not; forward alone and
forward + backward. "tinymm" is ``tinymm.nn.functional.scaled_dot_product_attention`` on
Tensors (so autograd's overhead is included); "numpy" is the plain reference in
``tinymm.kernels.attention.reference`` (it materialises the N×N matrix); "torch" is
``torch.nn.functional.scaled_dot_product_attention`` on CPU float32.

FLOPs counted: forward 4·B·H·N²·D (two GEMMs); backward 10·B·H·N²·D (the score GEMM is
recomputed, then dV, dP, dQ, dK); causal halves both. (When the CPU kernels keep the attention
matrix, backward skips the score GEMM, and GFLOP/s counts work not done: read it as a rate of
the same work as torch's.)

``--threads N`` runs tinymm's Numba workers and PyTorch on N threads each (default: every
core); on a shared machine ``--threads 1`` compares the two without waiting for a second core.
As ``benchmarks/kernels.py`` does, the process sets ``OMP_WAIT_POLICY=PASSIVE`` unless the
environment sets it: Numba's and PyTorch's OpenMP pools would otherwise spin while idle and
starve each other on a 2-core machine.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import time

import numpy as np

from .harness import Workload, parse_args, run, sgemm_gflops, torch_or_none

SHAPES = [(8, 4, 256, 64), (4, 4, 1024, 64), (1, 4, 4096, 64)]


def make_workloads(torch, shapes, with_numpy=True):
    import tinymm as tm
    import tinymm.nn.functional as F
    from tinymm.kernels.attention import reference_backward, reference_forward

    out = []
    for B, H, N, D in shapes:
        rng = np.random.default_rng(N)
        q, k, v, do = (rng.standard_normal((B, H, N, D)).astype(np.float32) for _ in range(4))
        for causal in (False, True):
            tag = f"B{B} H{H} N{N} D{D}{' causal' if causal else ''}"
            base = 4.0 * B * H * N * N * D * (0.5 if causal else 1.0)
            tq, tk, tv = (tm.tensor(a, requires_grad=True) for a in (q, k, v))
            tdo = tm.tensor(do)

            def tm_fwd(tq=tq, tk=tk, tv=tv, causal=causal):
                with tm.no_grad():
                    return F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)

            def tm_fb(tq=tq, tk=tk, tv=tv, tdo=tdo, causal=causal):
                for t in (tq, tk, tv):
                    t.grad = None
                F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal).backward(tdo)

            np_fwd = np_fb = None
            if with_numpy:
                def np_fwd(q=q, k=k, v=v, causal=causal):
                    return reference_forward(q, k, v, is_causal=causal)

                def np_fb(q=q, k=k, v=v, do=do, causal=causal):
                    o, lse = reference_forward(q, k, v, is_causal=causal)
                    return reference_backward(q, k, v, o, lse, do, is_causal=causal)

            t_fwd = t_fb = None
            if torch is not None:
                xq, xk, xv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
                xdo = torch.tensor(do)
                sdpa = torch.nn.functional.scaled_dot_product_attention

                def t_fwd(xq=xq, xk=xk, xv=xv, causal=causal):
                    with torch.no_grad():
                        return sdpa(xq, xk, xv, is_causal=causal)

                def t_fb(xq=xq, xk=xk, xv=xv, xdo=xdo, causal=causal):
                    for t in (xq, xk, xv):
                        t.grad = None
                    sdpa(xq, xk, xv, is_causal=causal).backward(xdo)

            out.append(Workload(f"fwd     {tag}", {"tinymm": tm_fwd, "numpy": np_fwd, "torch": t_fwd}, flops=base))
            out.append(Workload(f"fwd+bwd {tag}", {"tinymm": tm_fb, "numpy": np_fb, "torch": t_fb}, flops=base * 3.5))
    return out


def block_gemm_gflops(torch=None, m=256, n=256, k=64, calls=200, repeat=5):
    """GF/s of one thread's (m, k) @ (k, n) float32 products, hot operands, best of ``repeat``
    timings of ``calls`` products each: NumPy's BLAS, or torch's given ``torch`` (its threads
    held to 1 meanwhile). Timed by the thread's CPU time, as ``sgemm_gflops(1)``."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
    c = np.empty((m, n), np.float32)
    if torch is None:
        product, held = (lambda: np.matmul(a, b, out=c)), threadpool_limits(1, user_api="blas")
    else:
        ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
        product, held, before = (lambda: torch.mm(ta, tb, out=tc)), contextlib.nullcontext(), torch.get_num_threads()
        torch.set_num_threads(1)
    try:
        with held:
            for _ in range(10):
                product()
            best = float("inf")
            for _ in range(repeat):
                t0 = time.thread_time()
                for _ in range(calls):
                    product()
                best = min(best, time.thread_time() - t0)
    finally:
        if torch is not None:
            torch.set_num_threads(before)
    return 2.0 * m * n * k * calls / best / 1e9


def main(argv=None):
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    threads_given, rest = extra.parse_known_args(argv)
    threads = max(1, threads_given.threads)
    args = parse_args(rest, description="tinymm benchmark: fused scaled dot-product attention (also: --threads N)")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before either OpenMP pool starts
    import numba

    torch = torch_or_none()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    if torch is not None:
        torch.set_num_threads(threads)
    shapes = SHAPES[:2] if args.quick else SHAPES
    # The hardware's yardstick, printed beside the table: block GEMMs are ~90% of the work.
    sgemm = {"sgemm_gflops_1_thread": sgemm_gflops(1), f"sgemm_gflops_{threads}_threads": sgemm_gflops(threads)}
    print(f"# sgemm 1024^3 float32 (NumPy's BLAS, best of 5): {sgemm['sgemm_gflops_1_thread']:.0f} GF/s "
          f"on 1 thread (its CPU time), {sgemm[f'sgemm_gflops_{threads}_threads']:.0f} GF/s on {threads} (wall time)")
    # The kernels' block products go through NumPy's BLAS; torch's SDPA through its own (MKL on
    # x86). Where the two differ at these K = 64 shapes, the ratios below carry that gap.
    sgemm["block_gemm_gflops_numpy"] = block_gemm_gflops(None)
    line = f"# block GEMM 256x256x64, 1 thread: NumPy's BLAS {sgemm['block_gemm_gflops_numpy']:.0f} GF/s"
    if torch is not None:
        sgemm["block_gemm_gflops_torch"] = block_gemm_gflops(torch)
        line += f", torch's {sgemm['block_gemm_gflops_torch']:.0f} GF/s"
    print(line)
    return run("attention", make_workloads(torch, shapes), args=args, info=sgemm)


if __name__ == "__main__":
    main()
