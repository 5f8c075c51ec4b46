"""Train a small MLP on the two-spirals problem with AdamW and a warm-up + cosine schedule,
save it as safetensors, load it back and check it gives the same predictions.

    python examples/two_spirals.py [--steps 600] [--quick]
"""
import argparse
import os
import tempfile

import numpy as np

import tinymm as tm
import tinymm.nn.functional as F
from tinymm import nn, optim
from tinymm.metrics import accuracy_score


def two_spirals(n_per_class=200, noise=0.15, seed=0):
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.random(n_per_class)) * 3 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], 1)
    x = np.concatenate([arm, -arm]) / 10 + rng.normal(0, noise / 10, (2 * n_per_class, 2))
    y = np.repeat([0, 1], n_per_class)
    return x.astype(np.float32), y


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--quick", action="store_true", help="60 steps (a smoke run)")
    args = p.parse_args(argv)
    steps = 60 if args.quick else args.steps

    tm.manual_seed(0)
    x, y = two_spirals()
    model = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))
    opt = optim.AdamW(model.parameters(), lr=0.02, weight_decay=1e-4)
    sched = optim.lr_scheduler.warmup_cosine(opt, warmup_steps=steps // 10, total_steps=steps)
    xt, yt = tm.tensor(x), tm.tensor(y)
    for step in range(steps):
        loss = F.cross_entropy(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % max(1, steps // 6) == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}  lr {sched.get_last_lr()[0]:.4f}")

    with tm.no_grad():
        pred = model(xt).argmax(dim=1).numpy()
    print(f"train accuracy {accuracy_score(y, pred):.3f}")

    path = os.path.join(tempfile.mkdtemp(), "spirals.safetensors")
    tm.save(model.state_dict(), path)
    clone = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))
    clone.load_state_dict(tm.load(path))
    with tm.no_grad():
        same = np.array_equal(clone(xt).numpy(), model(xt).numpy())
    print(f"saved to {path}; reloaded model gives identical outputs: {same}")


if __name__ == "__main__":
    main()
