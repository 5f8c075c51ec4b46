"""Pooling and batch norm: tinymm against plain NumPy and PyTorch on CPU, float32.

Workloads: the seed CNN's two 2x2 max-pools (B32 16x32x32 and B32 32x16x16), a 3x3 stride-2
padded max-pool (B16 64x32x32), global adaptive average pooling (B32 64x8x8), an average pool
with padding (B16 64x32x32), and batch norm in training (forward + backward, running
statistics updated) and eval (forward) for BatchNorm2d (B32 16x32x32, B16 64x32x32) and
BatchNorm1d (256x512).

"tinymm" is ``tinymm.nn.functional`` on Tensors (autograd's overhead included); "numpy" is the
plain reference in ``tinymm.kernels.pool`` / ``tinymm.kernels.batchnorm`` (n/a for max pooling:
its reference is a per-window Python loop, seconds per call at these sizes); "torch" is
``torch.nn.functional``. No FLOP counts: these ops are memory-bound.
"""
from __future__ import annotations

import os

import numpy as np

from .harness import Workload, parse_args, run, torch_or_none

MAX_POOLS = [  # (shape, kernel, stride, padding)
    ((32, 16, 32, 32), 2, 2, 0),
    ((32, 32, 16, 16), 2, 2, 0),
    ((16, 64, 32, 32), 3, 2, 1),
]
BATCH_NORMS = [(32, 16, 32, 32), (16, 64, 32, 32), (256, 512)]


def _tm_pair(op, x, gy):
    """(forward without graph, forward + backward) closures for a tinymm op of one input."""
    import tinymm as tm

    t = tm.tensor(x, requires_grad=True)
    tgy = tm.tensor(gy)

    def fwd():
        with tm.no_grad():
            return op(t)

    def fb():
        t.grad = None
        op(t).backward(tgy)

    return fwd, fb


def _torch_pair(torch, op, x, gy):
    t = torch.tensor(x, requires_grad=True)
    tgy = torch.tensor(gy)

    def fwd():
        with torch.no_grad():
            return op(t)

    def fb():
        t.grad = None
        op(t).backward(tgy)

    return fwd, fb


def make_workloads(torch):
    import tinymm as tm
    import tinymm.nn.functional as F
    from tinymm.kernels import batchnorm as KB
    from tinymm.kernels import pool as KP

    TF = torch.nn.functional if torch is not None else None
    rng = np.random.default_rng(0)
    out = []

    def add(tag, tm_op, torch_op, x, y_shape, np_fwd=None, np_fb=None):
        gy = rng.standard_normal(y_shape).astype(np.float32)
        tf, tb = _tm_pair(tm_op, x, gy)
        pf = pb = None
        if torch is not None:
            pf, pb = _torch_pair(torch, torch_op, x, gy)
        out.append(Workload(f"fwd     {tag}", {"tinymm": tf, "numpy": np_fwd, "torch": pf}))
        out.append(Workload(f"fwd+bwd {tag}", {"tinymm": tb, "numpy": (lambda: np_fb(gy)) if np_fb else None,
                                               "torch": pb}))

    for shape, k, s, p in MAX_POOLS:
        x = rng.standard_normal(shape).astype(np.float32)
        y_shape = F.max_pool2d(tm.tensor(x[:1]), k, s, p).shape[1:]
        add(f"max_pool2d k{k} s{s} p{p} B{shape[0]} {shape[1]}x{shape[2]}x{shape[3]}",
            lambda t, k=k, s=s, p=p: F.max_pool2d(t, k, s, p),
            lambda t, k=k, s=s, p=p: TF.max_pool2d(t, k, s, p), x, (shape[0], *y_shape))

    def avg_case(tag, shape, tm_op, torch_op, hwin, wwin):
        x = rng.standard_normal(shape).astype(np.float32)
        planes = x.reshape(-1, *shape[2:])
        y_shape = (*shape[:2], len(hwin[0]), len(wwin[0]))

        def np_fb(gy, planes=planes):
            KP.reference_avg_pool_forward(planes, hwin, wwin)
            return KP.reference_avg_pool_backward(gy.reshape(-1, *y_shape[2:]), hwin, wwin, shape[2:])

        add(tag, tm_op, torch_op, x, y_shape, lambda: KP.reference_avg_pool_forward(planes, hwin, wwin), np_fb)

    avg_case("adaptive_avg_pool2d 1 B32 64x8x8", (32, 64, 8, 8), lambda t: F.adaptive_avg_pool2d(t, 1),
             lambda t: TF.adaptive_avg_pool2d(t, 1), KP.adaptive_pool_windows(8, 1), KP.adaptive_pool_windows(8, 1))
    avg_case("avg_pool2d k3 s2 p1 B16 64x32x32", (16, 64, 32, 32), lambda t: F.avg_pool2d(t, 3, 2, 1),
             lambda t: TF.avg_pool2d(t, 3, 2, 1), KP.avg_pool_windows(32, 3, 2, 1), KP.avg_pool_windows(32, 3, 2, 1))

    for shape in BATCH_NORMS:
        c = shape[1]
        x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
        w, b = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
        tag = "x".join(str(d) for d in shape[1:])
        rm, rv = tm.zeros(c), tm.ones(c)
        tw, tb = tm.tensor(w, requires_grad=True), tm.tensor(b, requires_grad=True)
        x3 = x.reshape(shape[0], c, -1)
        nrm, nrv = np.zeros(c, np.float32), np.ones(c, np.float32)

        def np_fb(gy, x3=x3, w=w, b=b, nrm=nrm, nrv=nrv):
            _, mean, rstd = KB.reference_forward(x3, w, b, nrm, nrv, True)
            return KB.reference_backward(gy.reshape(x3.shape), x3, mean, rstd, w, True)

        twb = prm = prv = None
        if torch is not None:
            twb = (torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True))
            prm, prv = torch.zeros(c), torch.ones(c)
        add(f"batch_norm train B{shape[0]} {tag}",
            lambda t, rm=rm, rv=rv, tw=tw, tb=tb: F.batch_norm(t, rm, rv, tw, tb, training=True),
            (lambda t, prm=prm, prv=prv, twb=twb: TF.batch_norm(t, prm, prv, *twb, training=True)) if torch else None,
            x, shape, lambda x3=x3, w=w, b=b, nrm=nrm, nrv=nrv: KB.reference_forward(x3, w, b, nrm, nrv, True), np_fb)
        # eval: forward only (the backward is a per-channel scale)
        te = tm.tensor(x)

        def tm_eval(te=te, rm=rm, rv=rv, tw=tw, tb=tb):
            with tm.no_grad():
                return F.batch_norm(te, rm, rv, tw, tb, training=False)

        pe = None
        if torch is not None:
            xe = torch.tensor(x)

            def pe(xe=xe, prm=prm, prv=prv, twb=twb):
                with torch.no_grad():
                    return TF.batch_norm(xe, prm, prv, *twb, training=False)

        out.append(Workload(f"fwd     batch_norm eval B{shape[0]} {tag}", {
            "tinymm": tm_eval, "torch": pe,
            "numpy": lambda x3=x3, w=w, b=b, nrm=nrm, nrv=nrv: KB.reference_forward(x3, w, b, nrm, nrv, False)}))
    return out


def main(argv=None):
    args = parse_args(argv, description="tinymm benchmark: pooling and batch norm")
    torch = torch_or_none()
    if torch is not None:
        torch.set_num_threads(os.cpu_count() or 1)
    return run("pool", make_workloads(torch), args=args)


if __name__ == "__main__":
    main()
