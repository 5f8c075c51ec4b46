"""Recurrent layers: tinymm's LSTM and GRU against a plain NumPy reference and PyTorch.

Workloads: LSTM and GRU, input 64 -> hidden 128, batch 32, 64 time steps, float32; one layer,
two layers, one bidirectional layer; forward alone and forward + backward. "tinymm" is
``tinymm.nn.LSTM`` / ``GRU`` on Tensors (autograd included); "numpy" runs the plain reference
of ``tinymm.kernels.recurrent.reference`` layer by layer (a NumPy step loop: the baseline the
fused kernels replace); "torch" is ``torch.nn.LSTM`` / ``GRU`` on the CPU.

FLOPs counted: the GEMMs only, 2·T·B·G·(I + H) per layer and direction forward (G = 4H or
3H), three times that forward + backward.

Times: with ``--threads 1`` the process's CPU time per call (``--clock cpu``; on a shared
machine it leaves out the time other processes held the core), else wall time (several
threads' CPU time would add up). A header line gives the sgemm rate and the load.
"""
from __future__ import annotations

import os
import time

import numpy as np

from .harness import Workload, parse_args, run, sgemm_gflops, torch_or_none

I, H, B, T = 64, 128, 32, 64
CONFIGS = [("1 layer", 1, False), ("2 layers", 2, False), ("bidirectional", 1, True)]


def _numpy_stack(mode, weights, x, layers, directions, backward):
    """The reference kernels composed as the layer composes the fast ones."""
    from tinymm.kernels.recurrent import reference_backward, reference_forward

    inp = x
    records = []
    for layer in range(layers):
        outs = []
        for d in range(directions):
            w_ih, w_hh, b_ih, b_hh = weights[(layer, d)]
            n = inp.shape[1]
            h0 = np.zeros((n, H), np.float32)
            c0 = h0 if mode == "LSTM" else None
            y, h_n, c_n, saved = reference_forward(mode, inp, h0, c0, w_ih, w_hh, b_ih, b_hh, None, None, bool(d))
            outs.append(y)
            records.append((inp, h0, c0, (layer, d), saved, y, h_n, c_n))
        inp = outs[0] if directions == 1 else np.concatenate(outs, axis=2)
    if backward:
        for inp, h0, c0, key, saved, y, h_n, c_n in reversed(records):
            w_ih, w_hh, b_ih, b_hh = weights[key]
            reference_backward(mode, inp, h0, c0, w_ih, w_hh, b_ih, b_hh, None, None, bool(key[1]), saved,
                               np.ones_like(y), np.zeros_like(h_n), None if c_n is None else np.zeros_like(c_n))
    return inp


def make_workloads(torch, configs):
    import tinymm as tm
    import tinymm.nn as nn

    out = []
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    for mode, cls in (("LSTM", nn.LSTM), ("GRU", nn.GRU)):
        G = (4 if mode == "LSTM" else 3) * H
        for label, layers, bidir in configs:
            directions = 2 if bidir else 1
            mod = cls(I, H, num_layers=layers, bidirectional=bidir)
            tag = f"{mode} {label}"
            flops = sum(2.0 * T * B * G * ((I if k == 0 else H * directions) + H)
                        for k in range(layers)) * directions
            tx = tm.tensor(x, requires_grad=True)

            def tm_fwd(mod=mod, tx=tx):
                with tm.no_grad():
                    return mod(tx)[0]

            def tm_fb(mod=mod, tx=tx):
                mod.zero_grad()
                tx.grad = None
                mod(tx)[0].sum().backward()

            weights = {(k, d): tuple(getattr(mod, f"{n}_l{k}{'_reverse' if d else ''}").detach().numpy()
                                     for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                       for k in range(layers) for d in range(directions)}

            def np_fwd(mode=mode, weights=weights, layers=layers, directions=directions):
                return _numpy_stack(mode, weights, x, layers, directions, False)

            def np_fb(mode=mode, weights=weights, layers=layers, directions=directions):
                return _numpy_stack(mode, weights, x, layers, directions, True)

            t_fwd = t_fb = None
            if torch is not None:
                tmod = getattr(torch.nn, mode)(I, H, num_layers=layers, bidirectional=bidir)
                tmod.load_state_dict({k: torch.tensor(v.numpy()) for k, v in mod.state_dict().items()})
                xt = torch.tensor(x, requires_grad=True)

                def t_fwd(tmod=tmod, xt=xt):
                    with torch.no_grad():
                        return tmod(xt)[0]

                def t_fb(tmod=tmod, xt=xt):
                    tmod.zero_grad()
                    xt.grad = None
                    tmod(xt)[0].sum().backward()

            out.append(Workload(f"fwd     {tag}", {"tinymm": tm_fwd, "numpy": np_fwd, "torch": t_fwd}, flops=flops))
            out.append(Workload(f"fwd+bwd {tag}", {"tinymm": tm_fb, "numpy": np_fb, "torch": t_fb}, flops=3 * flops))
    return out


def main(argv=None):
    import argparse

    import numba

    from tinymm.kernels._common import blas_controller

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    extra.add_argument("--clock", choices=("cpu", "wall"), default=None,
                       help="cpu: the process's CPU time (default with --threads 1); wall: elapsed time "
                            "(default otherwise)")
    known, rest = extra.parse_known_args(argv)
    args = parse_args(rest, description=f"tinymm benchmark: LSTM and GRU {I}->{H}, B{B}, T{T} "
                                        "(also: --threads N, --clock cpu|wall)")
    # --threads 1 compares the two implementations' work on a machine that other jobs share
    threads = max(1, known.threads)
    torch = torch_or_none()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    controller = blas_controller()   # every BLAS the kernels may call (NumPy's, SciPy's)
    if controller is not None:
        controller.limit(limits=threads, user_api="blas")
    if torch is not None:
        torch.set_num_threads(threads)
    clock = known.clock or ("cpu" if threads == 1 else "wall")
    info = {"threads": threads, "clock": clock, f"sgemm_gflops_{threads}_threads": sgemm_gflops(threads),
            "load_average": os.getloadavg()}
    print(f"# --threads {threads}; sgemm 1024^3 float32 on {threads} thread(s): "
          f"{info[f'sgemm_gflops_{threads}_threads']:.0f} GF/s; load average "
          f"{' '.join(f'{v:.2f}' for v in info['load_average'])}; times: "
          f"{'the process CPU time' if clock == 'cpu' else 'wall time'} per call")
    configs = CONFIGS[:1] if args.quick else CONFIGS
    return run("recurrent", make_workloads(torch, configs), args=args, info=info,
               clock=time.process_time if clock == "cpu" else time.perf_counter)


if __name__ == "__main__":
    main()
