"""Convolution: tinymm's conv1d/conv2d against the plain NumPy reference and PyTorch, CPU float32.

Workloads (forward alone, and forward + backward):

- 64 -> 64, 3x3, padding 1, 32x32, B16            a mid-network ResNet-style layer
- depthwise 3x3 (64 channels, groups 64), 32x32, B16
- conv1d for audio: 40 -> 64 channels, k5, padding 2, T400, B16
- the seed CNN's layers at B32: 3 -> 16 3x3 at 32x32 (its input needs no gradient, as an
  image batch does not) and 16 -> 32 3x3 at 16x16
- the whole seed CNN (``tinymm.models.ImageClassifier``: conv 3->16, ReLU, max-pool, conv
  16->32, ReLU, max-pool, linear) at B32 3x32x32, forward and a training step's forward +
  backward through cross-entropy, beside the same torch.nn model with the same weights

"tinymm" is ``tinymm.nn.functional.conv1d/conv2d`` on Tensors (autograd's overhead included);
"numpy" the reference in ``tinymm.kernels.conv.reference`` (a loop over kernel taps, an einsum
each); "torch" ``torch.nn.functional.conv1d/conv2d``. FLOPs: forward 2 * B * O * Ho * Wo * Cg * kh
* kw; backward twice that (dx and dw), once when the input needs no gradient.

``--threads N`` runs tinymm's Numba loops and PyTorch on N threads (default: every core). On a
machine that other jobs share, ``--threads 1`` compares the two implementations' work without
the noise of waiting for a second core.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from .harness import Workload, parse_args, run, torch_or_none

# name, B, C, O, spatial (H, W) or (L,), kernel, padding, groups, input needs a gradient
CASES = [
    ("64->64 3x3 32x32 B16", 16, 64, 64, (32, 32), 3, 1, 1, True),
    ("depthwise 64 3x3 32x32 B16", 16, 64, 64, (32, 32), 3, 1, 64, True),
    ("conv1d 40->64 k5 T400 B16", 16, 40, 64, (400,), 5, 2, 1, True),
    ("seed 3->16 3x3 32x32 B32", 32, 3, 16, (32, 32), 3, 1, 1, False),
    ("seed 16->32 3x3 16x16 B32", 32, 16, 32, (16, 16), 3, 1, 1, True),
]


def make_workloads(torch, cases, with_numpy=True):
    import tinymm as tm
    import tinymm.nn.functional as F
    from tinymm.kernels.conv import reference_backward, reference_forward

    out = []
    for name, B, C, O, spatial, k, pad, groups, input_grad in cases:
        rng = np.random.default_rng(B * C * O)
        n = len(spatial)
        x = rng.standard_normal((B, C) + spatial).astype(np.float32)
        w = (rng.standard_normal((O, C // groups) + (k,) * n) * 0.1).astype(np.float32)
        b = rng.standard_normal(O).astype(np.float32)
        out_spatial = tuple(s + 2 * pad - k + 1 for s in spatial)
        dy = rng.standard_normal((B, O) + out_spatial).astype(np.float32)
        flops = 2.0 * B * O * np.prod(out_spatial) * (C // groups) * k**n
        tm_conv = F.conv1d if n == 1 else F.conv2d
        tx = tm.tensor(x, requires_grad=input_grad)
        tw, tb = tm.tensor(w, requires_grad=True), tm.tensor(b, requires_grad=True)
        tdy = tm.tensor(dy)

        def tm_fwd(tx=tx, tw=tw, tb=tb, conv=tm_conv, pad=pad, groups=groups):
            with tm.no_grad():
                return conv(tx, tw, tb, padding=pad, groups=groups)

        def tm_fb(tx=tx, tw=tw, tb=tb, tdy=tdy, conv=tm_conv, pad=pad, groups=groups):
            for t in (tx, tw, tb):
                t.grad = None
            conv(tx, tw, tb, padding=pad, groups=groups).backward(tdy)

        np_fwd = np_fb = None
        if with_numpy:  # the reference is 2-D: a 1-D case runs with H = 1
            x4, w4, dy4 = (a if n == 2 else a[:, :, None, :] for a in (x, w, dy))
            geometry = dict(padding=((pad, pad), (pad, pad)) if n == 2 else ((0, 0), (pad, pad)), groups=groups)

            def np_fwd(x4=x4, w4=w4, b=b, geometry=geometry):
                return reference_forward(x4, w4, b, **geometry)

            def np_fb(x4=x4, w4=w4, b=b, dy4=dy4, geometry=geometry):
                reference_forward(x4, w4, b, **geometry)
                return reference_backward(x4, w4, dy4, **geometry)

        t_fwd = t_fb = None
        if torch is not None:
            xx = torch.tensor(x, requires_grad=input_grad)
            xw, xb = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
            xdy = torch.tensor(dy)
            t_conv = torch.nn.functional.conv1d if n == 1 else torch.nn.functional.conv2d

            def t_fwd(xx=xx, xw=xw, xb=xb, conv=t_conv, pad=pad, groups=groups):
                with torch.no_grad():
                    return conv(xx, xw, xb, padding=pad, groups=groups)

            def t_fb(xx=xx, xw=xw, xb=xb, xdy=xdy, conv=t_conv, pad=pad, groups=groups):
                for t in (xx, xw, xb):
                    t.grad = None
                conv(xx, xw, xb, padding=pad, groups=groups).backward(xdy)

        note = "" if input_grad else "(no input grad)"
        out.append(Workload(f"fwd     {name}", {"tinymm": tm_fwd, "numpy": np_fwd, "torch": t_fwd}, flops=flops))
        out.append(Workload(f"fwd+bwd {name}", {"tinymm": tm_fb, "numpy": np_fb, "torch": t_fb},
                            flops=flops * (3 if input_grad else 2), note=note))
    return out


def seed_cnn_workloads(torch, batch=32, size=32, classes=10):
    """The seed's whole CNN, tinymm against a torch.nn twin holding the same weights."""
    import tinymm as tm
    import tinymm.nn.functional as F
    from tinymm.models import ImageClassifier

    rng = np.random.default_rng(7)
    x = rng.random((batch, 3, size, size), dtype=np.float32)
    y = rng.integers(0, classes, batch)
    model = ImageClassifier(classes, image_size=size)
    tx, ty = tm.tensor(x), tm.tensor(y)

    def tm_fwd():
        with tm.no_grad():
            return model(tx)

    def tm_fb():
        model.zero_grad()
        F.cross_entropy(model(tx), ty).backward()

    t_fwd = t_fb = None
    if torch is not None:
        nn = torch.nn
        twin = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(32 * (size // 4) ** 2, classes))
        state = {k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()}
        twin.load_state_dict({"0.weight": state["conv1.weight"], "0.bias": state["conv1.bias"],
                              "3.weight": state["conv2.weight"], "3.bias": state["conv2.bias"],
                              "7.weight": state["fc.weight"], "7.bias": state["fc.bias"]})
        xx, yy = torch.tensor(x), torch.tensor(y)

        def t_fwd():
            with torch.no_grad():
                return twin(xx)

        def t_fb():
            twin.zero_grad()
            torch.nn.functional.cross_entropy(twin(xx), yy).backward()

    s2 = size // 2
    flops = 2.0 * batch * (16 * size * size * 27 + 32 * s2 * s2 * 16 * 9)
    name = f"seed CNN B{batch} 3x{size}x{size}"
    return [Workload(f"fwd     {name}", {"tinymm": tm_fwd, "numpy": None, "torch": t_fwd}, flops=flops),
            Workload(f"fwd+bwd {name}", {"tinymm": tm_fb, "numpy": None, "torch": t_fb}, flops=3 * flops,
                     note="(training step without the optimizer)")]


def main(argv=None):
    threads_arg = argparse.ArgumentParser(add_help=False)
    threads_arg.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    known, rest = threads_arg.parse_known_args(argv)
    args = parse_args(rest, description="tinymm benchmark: conv1d / conv2d (also: --threads N)")
    import numba

    torch = torch_or_none()
    numba.set_num_threads(min(known.threads, numba.config.NUMBA_NUM_THREADS))
    if torch is not None:
        torch.set_num_threads(known.threads)
    return run("conv", seed_cnn_workloads(torch) + make_workloads(torch, CASES), args=args)


if __name__ == "__main__":
    main()
