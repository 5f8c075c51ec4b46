"""Rprop (resilient backpropagation) with PyTorch's exact update.

Per element, only the gradient's sign is used: where it kept its sign since the last step the
step size grows by eta+, where it flipped the step size shrinks by eta− (and that element does
not move this step), clamped to ``step_sizes``; then p −= sign(g)·step_size.
"""
from __future__ import annotations

import numpy as np

from tinymm.optim.adaptive import ElementwiseOptimizer
from tinymm.optim.optimizer import check_number, implementation_options


class Rprop(ElementwiseOptimizer):
    _state_keys = ("prev", "step_size")

    def __init__(self, params, lr: float = 1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), maximize: bool = False,
                 *, capturable=False, foreach=None, differentiable=False):
        super().__init__(params, dict(lr=lr, etas=etas, step_sizes=step_sizes, maximize=maximize,
                                      **implementation_options(type(self).__name__, capturable=capturable,
                                                               foreach=foreach, differentiable=differentiable)))

    def _check_hyperparameters(self, group):
        check_number("Rprop", "lr", group["lr"], "learning rate")
        eta_minus, eta_plus = group["etas"]
        if not 0.0 < eta_minus < 1.0 < eta_plus:
            raise ValueError(f"Rprop: Invalid eta values: {eta_minus}, {eta_plus}")

    def _init_state(self, d, group):
        step_size = np.zeros_like(d)
        step_size[...] = group["lr"]
        return {"prev": np.zeros_like(d), "step_size": step_size}

    def _update(self, d, g, state, group):
        eta_minus, eta_plus = group["etas"]
        lo, hi = group["step_sizes"]
        prev, step_size = state["prev"], state["step_size"]
        s = np.sign(g * prev)
        factor = np.where(s > 0, eta_plus, np.where(s < 0, eta_minus, 1.0)).astype(d.dtype)
        np.clip(step_size * factor, lo, hi, out=step_size)
        g = np.where(s < 0, 0, g).astype(d.dtype)  # a flipped sign: no move, and no memory of it
        d -= np.sign(g) * step_size
        prev[...] = g
