"""``torch.optim.SparseAdam``: Adam for sparse gradients (``Embedding(sparse=True)``), PyTorch's update.

Only the rows a step's gradient touches change: with the gradient coalesced to rows r and values g,

    m[r] ← β1·m[r] + (1 − β1)·g,   v[r] ← β2·v[r] + (1 − β2)·g²,
    p[r] ← p[r] − lr·√(1 − β2ᵗ)/(1 − β1ᵗ) · m[r] / (√v[r] + ε)

with one step count t per parameter; the other rows' moments do not decay (the "lazy" Adam that
is the point of this optimizer: dense Adam would decay and move every row). A dense gradient is
refused, as PyTorch refuses it.
"""
from __future__ import annotations

import math

import numpy as np

from tinymm.optim.optimizer import Optimizer, check_number, hyper, state_array
from tinymm.tensor import Tensor

__all__ = ["SparseAdam"]


class SparseAdam(Optimizer):
    _complex_params = False  # (PyTorch's is written for real parameters too)

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, maximize: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, maximize=maximize))

    def _check_hyperparameters(self, group):
        check_number("SparseAdam", "lr", group["lr"], "learning rate")
        check_number("SparseAdam", "eps", group["eps"], "epsilon value")
        betas = group["betas"]
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise TypeError(f"SparseAdam: betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = tuple(check_number("SparseAdam", f"betas[{i}]", b, f"beta parameter at index {i}",
                                            high=1.0, high_open=True) for i, b in enumerate(betas))

    def _check_state(self, p, state, group, where):
        for key in ("step", "exp_avg", "exp_avg_sq"):
            if key not in state:
                raise ValueError(f"{where} lacks {key!r} (found {sorted(state)})")

    def _step_group(self, group):
        lr, (beta1, beta2), eps, maximize = hyper(group["lr"]), group["betas"], group["eps"], group["maximize"]
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            if not getattr(grad, "is_sparse", False):
                raise RuntimeError("SparseAdam does not support dense gradients, please consider Adam instead")
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = Tensor._wrap(np.zeros_like(p._data))
                state["exp_avg_sq"] = Tensor._wrap(np.zeros_like(p._data))
            state["step"] = step = int(state["step"]) + 1
            g = grad.coalesce()
            if not g._nnz():
                continue
            rows = tuple(g._indices()._data)  # one index array per sparse dim
            values = g._values()._data
            if maximize:
                values = -values
            m, v, d = state_array(state["exp_avg"]), state_array(state["exp_avg_sq"]), p._data
            m_rows = m[rows] + (values - m[rows]) * (1 - beta1)
            v_rows = v[rows] + (values * values - v[rows]) * (1 - beta2)
            m[rows], v[rows] = m_rows, v_rows
            step_size = lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
            d[rows] = d[rows] - step_size * (m_rows / (np.sqrt(v_rows) + eps))
