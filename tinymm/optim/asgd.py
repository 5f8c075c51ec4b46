"""ASGD (averaged stochastic gradient descent) with PyTorch's exact update.

    p ← p·(1 − λ·η) − η·g;   ax ← p (until t0 steps), then ax += μ·(p − ax)
    η ← lr / (1 + λ·lr·t)^α;  μ ← 1 / max(1, t − t0)

``ax`` (the running average of the iterates, Polyak averaging) is kept in the state. η and μ
are rounded as PyTorch keeps them, in float32 0-dim tensors (``scalar_state``), so float64
parameters follow torch's to the last bit.
"""
from __future__ import annotations

from tinymm.optim.adaptive import ElementwiseOptimizer
from tinymm.optim.optimizer import check_number, implementation_options, scalar_state


class ASGD(ElementwiseOptimizer):
    _state_keys = ("ax",)

    def __init__(self, params, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6,
                 weight_decay: float = 0, maximize: bool = False, *,
                 foreach=None, differentiable=False, capturable=False):
        super().__init__(params, dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                                      maximize=maximize,
                                      **implementation_options(type(self).__name__, foreach=foreach,
                                                               differentiable=differentiable, capturable=capturable)))

    def _check_hyperparameters(self, group):
        check_number("ASGD", "lr", group["lr"], "learning rate")
        check_number("ASGD", "weight_decay", group["weight_decay"], "weight_decay value")

    def _init_state(self, d, group):
        return {"eta": scalar_state(group["lr"]), "mu": 1.0, **super()._init_state(d, group)}

    def _check_state(self, p, state, group, where):
        super()._check_state(p, state, group, where)
        for key in ("eta", "mu"):
            if key not in state:
                raise ValueError(f"{where} lacks {key!r} (found {sorted(state)})")
            v = state[key]
            state[key] = float(v.item() if hasattr(v, "item") else v)

    def _update(self, d, g, state, group):
        eta, mu, ax, t = state["eta"], state["mu"], state["ax"], state["step"]
        d *= 1 - group["lambd"] * eta
        d -= eta * g
        if mu != 1:
            ax += (d - ax) * mu
        else:
            ax[...] = d
        lr = group["lr"]
        state["eta"] = scalar_state(lr / ((1 + group["lambd"] * lr * t) ** group["alpha"]))
        state["mu"] = scalar_state(1 / max(1, t - group["t0"]))
