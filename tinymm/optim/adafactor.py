"""Adafactor (Shazeer & Stern, 2018) with PyTorch's exact update (``torch.optim.Adafactor``).

Adam's second moment, factored: for a parameter of two or more dimensions only a row and a
column running mean of g² are kept (``row_var``: the last dimension reduced to 1, ``col_var``:
the one before it), and their outer product, divided by the mean of the row means, estimates
the full matrix; a vector keeps the full ``variance``. There is no first moment. With step t:

    β2ᵗ decay  w = t^beta2_decay              (the weight of the new g², 1 at t = 1)
    rows, cols  row_var ← lerp(row_var, mean_j g², w);  col_var ← lerp(col_var, mean_i g², w)
    estimate   v = row_var·col_var / max(mean(row_var), ε1)        (a vector: lerp of g²)
    update     u = g / √max(v, ε1²);   u ← u / max(1, RMS(u)/d)    (clipped at RMS d)
    step size  α = max(ε2, RMS(p))·min(lr, 1/√t)   (relative to the parameter's scale)
    p ← p·(1 − lr·wd) − α·u

ε1 defaults to the machine epsilon of the parameter's dtype. The step count is a 0-dim Tensor,
as every PyTorch optimizer keeps it.
"""
from __future__ import annotations

import math

import numpy as np

from tinymm.optim.optimizer import (
    Optimizer, advance_step, check_number, hyper, scalar_tensor, state_array, state_step,
)
from tinymm.tensor import Tensor


def _lerp_(a, b, w: float) -> None:
    """a ← lerp(a, b, w) in place, as PyTorch evaluates it (from the nearer end, the weight in
    the arrays' dtype)."""
    w = a.dtype.type(w)
    if abs(w) < 0.5:
        a += w * (b - a)
    else:
        a[...] = b - (b - a) * (a.dtype.type(1) - w)


def _norm(x) -> float:
    """‖x‖₂ in x's dtype, as a Python float (PyTorch's ``x.norm(2).item()``)."""
    return float(np.sqrt(np.sum(x * x)))


class Adafactor(Optimizer):
    _complex_params = False  # its factored second moments need real rows and columns

    def __init__(self, params, lr: float = 1e-2, beta2_decay: float = -0.8, eps=(None, 1e-3), d: float = 1.0,
                 weight_decay: float = 0.0, *, foreach=None, maximize: bool = False):
        super().__init__(params, dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay,
                                      foreach=foreach, maximize=maximize))

    # Row and column statistics are not shaped like the parameter (_check_state checks them).
    _state_shaped_like_params = False

    def _check_hyperparameters(self, group):
        name = "Adafactor"
        check_number(name, "lr", group["lr"], "learning rate")  # (a 1-element Tensor too)
        if not check_number(name, "beta2_decay", group["beta2_decay"], "beta2_decay", low=-math.inf) <= 0.0:
            raise ValueError(f"{name}: beta2_decay should be <= 0 but is: {group['beta2_decay']}")
        eps = group["eps"]
        if isinstance(eps, (str, bytes)) or not hasattr(eps, "__len__") or len(eps) != 2:
            raise TypeError(f"{name}: eps must be a pair (eps1 or None, eps2), got {eps!r}")
        if eps[0] is not None:
            check_number(name, "eps[0]", eps[0], "epsilon1 value")
        check_number(name, "eps[1]", eps[1], "epsilon2 value")
        if not check_number(name, "d", group["d"], "clipping threshold d", low=-math.inf) >= 1.0:
            raise ValueError(f"{name}: Clipping threshold d should be >= 1 but is: {group['d']}")
        check_number(name, "weight_decay", group["weight_decay"], "weight_decay value")

    def _check_state(self, p, state, group, where):
        state["step"] = state_step(where, state)
        if p.ndim > 1:
            shapes = {"row_var": p.shape[:-1] + (1,), "col_var": p.shape[:-2] + (1,) + p.shape[-1:]}
        else:
            shapes = {"variance": tuple(p.shape)}
        for key, shape in shapes.items():
            if key not in state:
                raise ValueError(f"{where} lacks {key!r} (found {sorted(state)})")
            if tuple(state[key].shape) != tuple(shape):
                raise ValueError(f"{where}: {key!r} has shape {tuple(state[key].shape)}, expected {tuple(shape)}")

    def _step_group(self, group):
        lr, d_clip, wd = hyper(group["lr"]), group["d"], group["weight_decay"]
        beta2_decay, (eps1, eps2) = group["beta2_decay"], group["eps"]
        for p, d, g in self._with_grads(group):
            state = self.state.get(p)
            if not state:
                state = self.state[p] = {"step": scalar_tensor(0.0)}
                if g.ndim > 1:
                    state["row_var"] = Tensor._wrap(np.zeros(g.shape[:-1] + (1,), g.dtype))
                    state["col_var"] = Tensor._wrap(np.zeros(g.shape[:-2] + (1,) + g.shape[-1:], g.dtype))
                else:
                    state["variance"] = Tensor._wrap(np.zeros_like(g))
            if group["maximize"]:
                g = -g
            if eps1 is None:  # (as PyTorch: from the first parameter on, for the rest of the group)
                eps1 = float(np.finfo(d.dtype).eps)
            t = advance_step(state)
            w = t ** beta2_decay
            alpha = max(eps2, _norm(d) / (d.size ** 0.5)) * min(lr, 1 / (t ** 0.5))
            if wd != 0:
                d *= 1 - lr * wd
            if g.ndim > 1:
                row_var, col_var = state_array(state["row_var"]), state_array(state["col_var"])
                row_norm = np.sqrt(np.sum(g * g, axis=-1, keepdims=True))  # PyTorch squares the norm
                _lerp_(row_var, row_norm * row_norm / g.shape[-1], w)
                col_norm = np.sqrt(np.sum(g * g, axis=-2, keepdims=True))
                _lerp_(col_var, col_norm * col_norm / g.shape[-2], w)
                estimate = row_var @ col_var
                estimate /= np.maximum(row_var.mean(axis=-2, keepdims=True), d.dtype.type(eps1))
            else:
                variance = state_array(state["variance"])
                _lerp_(variance, g * g, w)
                estimate = variance.copy()
            update = 1 / np.sqrt(np.maximum(estimate, d.dtype.type(eps1 * eps1)))
            update *= g
            denom = max(1.0, _norm(update) / ((update.size ** 0.5) * d_clip))
            d += d.dtype.type(-alpha / denom) * update
