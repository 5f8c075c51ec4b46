"""End to end: a two-layer MLP trained with AdamW learns the two-spirals problem."""
import numpy as np

import tinymm as tm
import tinymm.nn.functional as F
from tinymm import nn, optim


def two_spirals(n_per_class=200, noise=0.15, seed=0):
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.random(n_per_class)) * 3 * np.pi
    a = np.stack([t * np.cos(t), t * np.sin(t)], 1)
    x = np.concatenate([a, -a]) / 10 + rng.normal(0, noise / 10, (2 * n_per_class, 2))
    y = np.concatenate([np.zeros(n_per_class), np.ones(n_per_class)]).astype(np.int64)
    return x.astype(np.float32), y


def test_mlp_learns_two_spirals_with_adamw():
    tm.manual_seed(0)
    x, y = two_spirals()
    model = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))
    opt = optim.AdamW(model.parameters(), lr=0.02, weight_decay=1e-4)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=600)
    xt, yt = tm.tensor(x), tm.tensor(y)
    for step in range(600):
        loss = F.cross_entropy(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with tm.no_grad():
        acc = (model(xt).argmax(dim=1).detach().numpy() == y).mean()
    assert acc >= 0.98, f"accuracy {acc:.3f} after 600 steps (final loss {loss.item():.4f})"
