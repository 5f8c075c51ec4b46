"""Adam and AdamW (PyTorch's exact updates, with bias correction and optional AMSGrad).

Adam adds weight decay to the gradient (L2); AdamW decays the weights directly
(p ← p·(1 − lr·wd)) before the Adam step, decoupled from the adaptive scaling.
"""
from __future__ import annotations

import numpy as np

from tinymm.optim.optimizer import Optimizer


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False):
        name = type(self).__name__
        if lr < 0:
            raise ValueError(f"{name}: invalid learning rate {lr}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"{name}: betas must be in [0, 1), got {betas}")
        if eps < 0:
            raise ValueError(f"{name}: invalid eps {eps}")
        if weight_decay < 0:
            raise ValueError(f"{name}: invalid weight_decay {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _update(self, p, grad, state, group):
        from tinymm.kernels import optim as K

        if not state:
            # np.zeros_like dispatches to CuPy for CuPy arrays.
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        K.adam_step(p.data, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"], lr=group["lr"],
                    beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                    decoupled_weight_decay=self._decoupled, amsgrad=group["amsgrad"],
                    max_exp_avg_sq=state.get("max_exp_avg_sq"), maximize=group["maximize"])


class AdamW(Adam):
    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
