"""Autograd overhead and the cost of a small training step, against PyTorch.

Workloads:
- ``(a * 2.0).sum().backward()`` on (4, 4): pure framework overhead (the arithmetic is tiny);
- a 3-layer MLP (256-512-512-10, ReLU) training step at batch 64: forward, cross-entropy,
  backward, AdamW update;
- one Adam step over many small parameters (32 weights of 64x64 and 32 biases of 64): the
  optimizer's per-parameter overhead, against ``torch.optim.Adam`` (its default, single-tensor
  loop on CPU);
- matrix products: GFLOP/s of tinymm's matmul against NumPy's (the same BLAS underneath).

The "numpy" column is the same computation written by hand in NumPy with no autograd: the
floor any framework's overhead sits on.
"""
from __future__ import annotations

import numpy as np

from .harness import Workload, parse_args, run, torch_or_none


def elementwise_workloads(torch):
    import tinymm as tm

    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4)).astype(np.float32)
    x = tm.tensor(a, requires_grad=True)

    def tinymm_op():
        (x * 2.0).sum().backward()

    def numpy_op():
        out = (a * 2.0).sum()
        return out, np.full(a.shape, 2.0, np.float32)

    torch_op = None
    if torch is not None:
        tx = torch.tensor(a, requires_grad=True)

        def torch_op():
            (tx * 2.0).sum().backward()

    return [Workload("(a * 2.0).sum().backward() (4,4)", {"tinymm": tinymm_op, "numpy": numpy_op, "torch": torch_op})]


def mlp_workloads(torch, batch=64, sizes=(256, 512, 512, 10)):
    import tinymm as tm
    import tinymm.nn.functional as F
    from tinymm import nn, optim

    rng = np.random.default_rng(0)
    xb = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    yb = rng.integers(0, sizes[-1], batch)
    tm.manual_seed(0)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    opt = optim.AdamW(model.parameters(), lr=1e-3)
    xt, yt = tm.tensor(xb), tm.tensor(yb)

    def tinymm_step():
        loss = F.cross_entropy(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()

    # The same step by hand in NumPy: forward, softmax cross-entropy, backward, AdamW.
    Ws = [p.detach().numpy().copy() for p in model.parameters()]
    ms = [np.zeros_like(w) for w in Ws]
    vs = [np.zeros_like(w) for w in Ws]
    state = {"t": 0}

    def numpy_step():
        acts, h = [xb], xb
        for i in range(0, len(Ws), 2):
            h = h @ Ws[i].T + Ws[i + 1]
            if i < len(Ws) - 2:
                h = np.maximum(h, 0)
            acts.append(h)
        z = h - h.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        p[np.arange(batch), yb] -= 1
        g = p / batch
        grads = [None] * len(Ws)
        for i in range(len(Ws) - 2, -1, -2):
            a_in = acts[i // 2]
            grads[i] = g.T @ a_in
            grads[i + 1] = g.sum(0)
            if i > 0:
                g = (g @ Ws[i]) * (acts[i // 2] > 0)
        state["t"] += 1
        t = state["t"]
        for w, gr, m, v in zip(Ws, grads, ms, vs):
            w *= 1 - 1e-3 * 1e-2
            m[...] = 0.9 * m + 0.1 * gr
            v[...] = 0.999 * v + 0.001 * gr * gr
            w -= 1e-3 / (1 - 0.9**t) * m / (np.sqrt(v) / np.sqrt(1 - 0.999**t) + 1e-8)

    torch_step = None
    if torch is not None:
        tl = []
        for i in range(len(sizes) - 1):
            tl.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                tl.append(torch.nn.ReLU())
        tmodel = torch.nn.Sequential(*tl)
        topt = torch.optim.AdamW(tmodel.parameters(), lr=1e-3)
        tx, ty = torch.tensor(xb), torch.tensor(yb)

        def torch_step():
            loss = torch.nn.functional.cross_entropy(tmodel(tx), ty)
            topt.zero_grad()
            loss.backward()
            topt.step()

    flops = 0
    for i in range(len(sizes) - 1):
        flops += 3 * 2 * batch * sizes[i] * sizes[i + 1]  # forward + two backward GEMMs
    name = f"MLP {'-'.join(map(str, sizes))} step b{batch}"
    return [Workload(name, {"tinymm": tinymm_step, "numpy": numpy_step, "torch": torch_step}, flops=flops)]


def adam_workloads(torch, n_pairs=32, width=64):
    import tinymm as tm
    from tinymm import optim

    rng = np.random.default_rng(0)
    shapes = [(width, width), (width,)] * n_pairs
    values = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    params = [tm.tensor(v.copy(), requires_grad=True) for v in values]
    for p, g in zip(params, grads):
        p.grad = tm.tensor(g)
    opt = optim.Adam(params, lr=1e-3)

    # The same update by hand in NumPy, one parameter at a time.
    ws = [v.copy() for v in values]
    ms = [np.zeros_like(v) for v in values]
    vs = [np.zeros_like(v) for v in values]
    state = {"t": 0}

    def numpy_step():
        state["t"] += 1
        t = state["t"]
        c1, c2 = 1e-3 / (1 - 0.9**t), np.sqrt(1 - 0.999**t)
        for w, g, m, v in zip(ws, grads, ms, vs):
            m += 0.1 * (g - m)
            v *= 0.999
            v += 0.001 * g * g
            w -= c1 * m / (np.sqrt(v) / c2 + 1e-8)

    torch_step = None
    if torch is not None:
        tps = [torch.tensor(v.copy(), requires_grad=True) for v in values]
        for tp, g in zip(tps, grads):
            tp.grad = torch.tensor(g)
        topt = torch.optim.Adam(tps, lr=1e-3)
        torch_step = topt.step

    name = f"Adam step, {len(shapes)} small params"
    return [Workload(name, {"tinymm": opt.step, "numpy": numpy_step, "torch": torch_step})]


def matmul_workloads(torch, sizes=(256, 1024)):
    import tinymm as tm

    out = []
    for n in sizes:
        rng = np.random.default_rng(n)
        a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
        ta, tb = tm.tensor(a), tm.tensor(b)
        fns = {"tinymm": lambda ta=ta, tb=tb: ta @ tb, "numpy": lambda a=a, b=b: a @ b, "torch": None}
        if torch is not None:
            xa, xb = torch.tensor(a), torch.tensor(b)
            fns["torch"] = lambda xa=xa, xb=xb: xa @ xb
        out.append(Workload(f"matmul {n}x{n} f32", fns, flops=2.0 * n**3))
    return out


def main(argv=None):
    args = parse_args(argv, description="tinymm benchmark: autograd overhead, MLP step, Adam step, matmul")
    torch = torch_or_none()
    if torch is not None:
        torch.set_num_threads(max(1, __import__("os").cpu_count() or 1))
    if args.min_time == 0.0:
        args.min_time = 0.05  # loop the microsecond-scale workloads so each sample is measurable
    workloads = elementwise_workloads(torch) + mlp_workloads(torch) + adam_workloads(torch) + matmul_workloads(torch)
    return run("overhead", workloads, args=args)


if __name__ == "__main__":
    main()
