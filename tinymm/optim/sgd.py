"""SGD with momentum, dampening, Nesterov and weight decay (PyTorch's exact update)."""
from __future__ import annotations

from tinymm.optim.optimizer import Optimizer, check_number, hyper, implementation_options, state_array
from tinymm.tensor import Tensor


class SGD(Optimizer):
    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, maximize: bool = False, *,
                 foreach=None, differentiable=False, fused=None):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                                      **implementation_options(type(self).__name__, foreach=foreach,
                                                               differentiable=differentiable, fused=fused)))

    def _check_hyperparameters(self, group):
        check_number("SGD", "lr", group["lr"], "learning rate")
        check_number("SGD", "momentum", group["momentum"], "momentum value")
        check_number("SGD", "weight_decay", group["weight_decay"], "weight_decay value")
        # PyTorch accepts any dampening; a non-finite one is still refused here.
        check_number("SGD", "dampening", group["dampening"], "dampening value", low=-float("inf"))
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")

    _sparse_grads = True  # probe8: its sparse update is the dense one at the gradient's rows

    def _check_sparse_grad(self, group):
        if group["weight_decay"] != 0:  # PyTorch: grad.add(param) of a sparse grad
            raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) instead.")

    def _step_group(self, group):
        from tinymm.kernels.optim import sgd_step

        lr, momentum, dampening, wd = hyper(group["lr"]), group["momentum"], group["dampening"], group["weight_decay"]
        nesterov, maximize = group["nesterov"], group["maximize"]
        states = self.state
        for p, d, g in self._with_grads(group):
            buf, first = None, False
            if momentum != 0:
                state = states[p]
                buf = state_array(state.get("momentum_buffer"))
                if buf is None:
                    buf = g.copy(order="C")
                    state["momentum_buffer"] = Tensor._wrap(buf)
                    first = True
            sgd_step(d, g, buf, lr=lr, momentum=momentum, dampening=dampening, weight_decay=wd,
                     nesterov=nesterov, maximize=maximize, first_step=first)
