"""ASGD (averaged stochastic gradient descent) with PyTorch's exact update.

    p ← p·(1 − λ·η) − η·g;   ax ← p (until t0 steps), then ax += μ·(p − ax)
    η ← lr / (1 + λ·lr·t)^α;  μ ← 1 / max(1, t − t0)

``ax`` (the running average of the iterates, Polyak averaging) is kept in the state. η and μ
are kept as PyTorch keeps them, in 0-dim Tensors (float32 unless the default dtype is float64),
so float64 parameters follow torch's to the last bit.
"""
from __future__ import annotations

from tinymm.optim.adaptive import ElementwiseOptimizer
from tinymm.optim.optimizer import check_number, hyper, implementation_options, scalar_tensor


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

    _scalar_keys = ("eta", "mu")

    def _init_state(self, d, group):
        return {"eta": scalar_tensor(hyper(group["lr"])), "mu": scalar_tensor(1.0), **super()._init_state(d, group)}

    def _update(self, d, g, state, group):
        eta_t, mu_t, ax, t = state["eta"], state["mu"], state["ax"], state["step"]
        eta, mu = float(eta_t), float(mu_t)
        d *= 1 - group["lambd"] * eta
        d -= eta * g
        if mu != 1:
            ax += (d - ax) * mu
        else:
            ax[...] = d
        lr = group["lr"]
        # written into the 0-dim arrays, so rounded to their dtype as PyTorch's copy_
        eta_t[()] = lr / ((1 + group["lambd"] * lr * t) ** group["alpha"])
        mu_t[()] = 1 / max(1, t - group["t0"])
