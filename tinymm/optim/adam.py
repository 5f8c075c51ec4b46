"""Adam and AdamW (PyTorch's exact updates, with bias correction and optional AMSGrad).

Adam adds weight decay to the gradient (L2); AdamW decays the weights directly
(p ← p·(1 − lr·wd)) before the Adam step, decoupled from the adaptive scaling.
"""
from __future__ import annotations

import numpy as np

from tinymm.optim.optimizer import (
    Optimizer, advance_step, check_number, hyper, implementation_options, scalar_tensor, state_array, state_step,
)
from tinymm.tensor import Tensor


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, maximize: bool = False, *,
                 foreach=None, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize,
                                      decoupled_weight_decay=bool(decoupled_weight_decay or self._decoupled),
                                      **implementation_options("Adam", foreach=foreach, capturable=capturable,
                                                               differentiable=differentiable, fused=fused)))

    def _check_hyperparameters(self, group):
        name = type(self).__name__
        if isinstance(group["lr"], Tensor) and group.get("foreach") and not group.get("capturable"):
            raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
        check_number(name, "lr", group["lr"], "learning rate")
        check_number(name, "eps", group["eps"], "epsilon value")
        check_number(name, "weight_decay", group["weight_decay"], "weight_decay value")
        betas = group["betas"]
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise TypeError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = tuple(check_number(name, f"betas[{i}]", b, f"beta parameter at index {i}", high=1.0,
                                            high_open=True) for i, b in enumerate(betas))

    def _check_state(self, p, state, group, where):
        state["step"] = state_step(where, state)
        for key in ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ()):
            if key not in state:
                raise ValueError(f"{where} lacks {key!r} (found {sorted(state)})")

    def _step_group(self, group):
        from tinymm.kernels.optim import adam_step

        lr, (beta1, beta2), eps, wd = hyper(group["lr"]), group["betas"], group["eps"], group["weight_decay"]
        amsgrad, maximize = group["amsgrad"], group["maximize"]
        decoupled = group.get("decoupled_weight_decay", self._decoupled)
        states = self.state
        for p, d, g in self._with_grads(group):
            state = states.get(p)
            if not state:  # (an empty dict: PyTorch code may have looked at optimizer.state[p] first)
                # np.zeros_like dispatches to CuPy for CuPy arrays.
                # (a fused group's step is float32 whatever the default dtype, as PyTorch's)
                state = states[p] = {"step": scalar_tensor(0.0, np.float32 if group.get("fused") else None),
                                     "exp_avg": Tensor._wrap(np.zeros_like(d)),
                                     "exp_avg_sq": Tensor._wrap(np.zeros_like(d))}
            if amsgrad and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = Tensor._wrap(np.zeros_like(d))
            step = advance_step(state)  # the 0-dim step Tensor, in place
            adam_step(d, g, state_array(state["exp_avg"]), state_array(state["exp_avg_sq"]), step=step, lr=lr,
                      beta1=beta1, beta2=beta2, eps=eps, weight_decay=wd, decoupled_weight_decay=decoupled,
                      amsgrad=amsgrad, max_exp_avg_sq=state_array(state.get("max_exp_avg_sq")), maximize=maximize)


class AdamW(Adam):
    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False, *,
                 foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize,
                         foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused)
