"""RMSprop, Adagrad, Adadelta, Adamax, NAdam and RAdam with PyTorch's exact updates.

Each step updates a parameter's array in place with plain array arithmetic (NumPy on the
CPU, CuPy on the GPU: the same expressions run on both), in the order PyTorch's single-tensor
implementation uses, so that float32 trajectories agree to rounding. ``g`` below is the
gradient after ``maximize`` (negated) and L2 weight decay (``g + wd·p``).

    RMSprop   v = α·v + (1 − α)·g²;  centered: m = α·m + (1 − α)·g, denom = √(v − m²) + ε
              else denom = √v + ε;  momentum: b = μ·b + g/denom, p −= lr·b;  else p −= lr·g/denom
    Adagrad   s += g²;  p −= lr/(1 + (t − 1)·lr_decay) · g/(√s + ε)
    Adadelta  v = ρ·v + (1 − ρ)·g²;  δ = √(u + ε)/√(v + ε)·g;  u = ρ·u + (1 − ρ)·δ²;  p −= lr·δ
    Adamax    m = β1·m + (1 − β1)·g;  u = max(β2·u, |g| + ε);  p −= lr/(1 − β1^t) · m/u
    NAdam     μ_t = β1·(1 − ½·0.96^(t·ψ)), Π μ;  m, v as Adam;  d = √(v/(1 − β2^t)) + ε;
              p −= lr·(1 − μ_t)/(1 − Πμ) · g/d + lr·μ_{t+1}/(1 − Πμ·μ_{t+1}) · m/d
    RAdam     m, v as Adam; ρ_∞ = 2/(1 − β2) − 1, ρ_t = ρ_∞ − 2t·β2^t/(1 − β2^t);
              ρ_t > 5: p −= lr·r_t·m̂·√(1 − β2^t)/(√v + ε)  else p −= lr·m̂

NAdam and RAdam take ``decoupled_weight_decay`` (p ← p·(1 − lr·wd), as AdamW) like PyTorch.
"""
from __future__ import annotations

import math

import numpy as np

from tinymm.optim.optimizer import (
    Optimizer, advance_step, check_number, hyper, implementation_options, scalar_tensor, state_array, state_scalar,
    state_step, state_tensor, real_view,
)


def _check_betas(name, group):
    betas = group["betas"]
    if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
        raise TypeError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
    checked = [check_number(name, f"betas[{i}]", b, f"beta parameter at index {i}", high=1.0, high_open=True)
               for i, b in enumerate(betas)]
    # a list stays a list, as PyTorch keeps these optimizers' betas (print(opt) shows it)
    group["betas"] = checked if isinstance(betas, list) else tuple(checked)


class ElementwiseOptimizer(Optimizer):
    """The shared step loop: per parameter, the gradient after maximize and L2 decay, the
    state (created on first use by ``_init_state``) and one in-place ``_update``.

    The state holds Tensors, as PyTorch's: the step count (and ASGD's eta and mu, NAdam's
    mu_product, listed in ``_scalar_keys``) in 0-dim CPU Tensors of ``_scalar_dtype``, the
    buffers shaped like the parameter. ``_update`` gets their arrays, with the step as a Python
    float; it updates the arrays in place (0-dim ones too, so that they keep their dtype)."""

    _state_keys: tuple = ()
    _scalar_keys: tuple = ()  # 0-dim state besides "step"
    _decoupled_key = None  # name of the group flag that makes weight decay decoupled, if any

    def _check_state(self, p, state, group, where):
        state["step"] = state_step(where, state)
        for key in self._scalar_keys:
            state_scalar(where, state, key)
        for key in self._needed_state(group):
            if key not in state:
                raise ValueError(f"{where} lacks {key!r} (found {sorted(state)})")

    def _needed_state(self, group):
        return self._state_keys

    def _init_state(self, d, group) -> dict:
        return {k: np.zeros_like(d) for k in self._needed_state(group)}

    def _new_state(self, d, group) -> dict:
        step = scalar_tensor(0.0, np.float32 if group.get("fused") else None)  # fused (Adagrad): float32 always
        return {"step": step, **{k: state_tensor(v) for k, v in self._init_state(d, group).items()}}

    def _step_group(self, group):
        wd, lr = group.get("weight_decay", 0.0), hyper(group["lr"])
        if lr is not group["lr"]:  # a Tensor lr: _update reads a float
            group = {**group, "lr": lr}
        decoupled = self._decoupled_key is not None and group[self._decoupled_key]
        for p, d, g in self._with_grads(group):
            state = self.state.get(p)
            if not state:
                state = self.state[p] = self._new_state(d, group)
            elif any(k not in state for k in self._needed_state(group)):  # e.g. momentum turned on later
                for k, v in self._init_state(d, group).items():
                    state.setdefault(k, state_tensor(v))
            step = advance_step(state)
            if group["maximize"]:
                g = -g
            if wd != 0:
                if decoupled:
                    d *= 1 - lr * wd
                else:
                    g = g + wd * d
            arrays = {k: state_array(v) for k, v in state.items()}
            arrays["step"] = step
            self._update(d, g, arrays, group)
            for k, v in arrays.items():
                if k != "step" and state_array(state[k]) is not v:
                    state[k] = state_tensor(v)

    def _update(self, d, g, state, group):
        raise NotImplementedError


class RMSprop(ElementwiseOptimizer):
    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0,
                 momentum: float = 0, centered: bool = False, maximize: bool = False, *,
                 capturable=False, foreach=None, differentiable=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize,
                                      **implementation_options(type(self).__name__, capturable=capturable,
                                                               foreach=foreach, differentiable=differentiable)))

    def _check_hyperparameters(self, group):
        check_number("RMSprop", "lr", group["lr"], "learning rate")
        check_number("RMSprop", "eps", group["eps"], "epsilon value")
        check_number("RMSprop", "momentum", group["momentum"], "momentum value")
        check_number("RMSprop", "weight_decay", group["weight_decay"], "weight_decay value")
        check_number("RMSprop", "alpha", group["alpha"], "alpha value")

    def _needed_state(self, group):
        return (("square_avg",) + (("momentum_buffer",) if group["momentum"] > 0 else ())
                + (("grad_avg",) if group["centered"] else ()))

    def _update(self, d, g, state, group):
        alpha, eps, lr, momentum = group["alpha"], group["eps"], group["lr"], group["momentum"]
        v = state["square_avg"]
        v *= alpha
        v += (1 - alpha) * g * g
        if group["centered"]:
            m = state["grad_avg"]
            m += (g - m) * (1 - alpha)
            denom = np.sqrt(v - m * m) + eps
        else:
            denom = np.sqrt(v) + eps
        if momentum > 0:
            b = state["momentum_buffer"]
            b *= momentum
            b += g / denom
            d -= lr * b
        else:
            d -= lr * (g / denom)


class Adagrad(ElementwiseOptimizer):
    _state_keys = ("sum",)
    _sparse_grads = True  # probe8: PyTorch's sparse update is the dense one at the gradient's rows

    def _check_sparse_grad(self, group):
        if group["weight_decay"] != 0:
            raise RuntimeError("weight_decay option is not compatible with sparse gradients")

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, maximize: bool = False, *,
                 foreach=None, differentiable=False, fused=None):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
                                      initial_accumulator_value=initial_accumulator_value, maximize=maximize,
                                      **implementation_options(type(self).__name__, foreach=foreach,
                                                               differentiable=differentiable, fused=fused)))
        # PyTorch's Adagrad creates every parameter's state (step 0, the filled sum) here
        for group in self.param_groups:
            for p in group["params"]:  # (a complex parameter's state: its real view's, as in a step)
                self.state[p] = self._new_state(real_view(p._data) if p._data.dtype.kind == "c" else p._data, group)

    def _check_hyperparameters(self, group):
        check_number("Adagrad", "lr", group["lr"], "learning rate")
        check_number("Adagrad", "lr_decay", group["lr_decay"], "lr_decay value")
        check_number("Adagrad", "weight_decay", group["weight_decay"], "weight_decay value")
        check_number("Adagrad", "initial_accumulator_value", group["initial_accumulator_value"],
                     "initial_accumulator_value value")
        check_number("Adagrad", "eps", group["eps"], "epsilon value")

    def _init_state(self, d, group):
        s = np.zeros_like(d)
        s[...] = group["initial_accumulator_value"]
        return {"sum": s}

    def _update(self, d, g, state, group):
        s = state["sum"]
        s += g * g
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        d -= clr * (g / (np.sqrt(s) + group["eps"]))


class Adadelta(ElementwiseOptimizer):
    _state_keys = ("square_avg", "acc_delta")

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0,
                 maximize: bool = False, *, foreach=None, capturable=False, differentiable=False):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
        **implementation_options(type(self).__name__, foreach=foreach, capturable=capturable,
                                 differentiable=differentiable)))

    def _check_hyperparameters(self, group):
        check_number("Adadelta", "lr", group["lr"], "learning rate")
        check_number("Adadelta", "rho", group["rho"], "rho value", high=1.0)
        check_number("Adadelta", "eps", group["eps"], "epsilon value")
        check_number("Adadelta", "weight_decay", group["weight_decay"], "weight_decay value")

    def _update(self, d, g, state, group):
        rho, eps = group["rho"], group["eps"]
        v, u = state["square_avg"], state["acc_delta"]
        v *= rho
        v += (1 - rho) * g * g
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u *= rho
        u += (1 - rho) * delta * delta
        d -= group["lr"] * delta


class Adamax(ElementwiseOptimizer):
    _state_keys = ("exp_avg", "exp_inf")

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 maximize: bool = False, *, foreach=None, differentiable=False, capturable=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize,
        **implementation_options(type(self).__name__, foreach=foreach, differentiable=differentiable,
                                 capturable=capturable)))

    def _check_hyperparameters(self, group):
        check_number("Adamax", "lr", group["lr"], "learning rate")
        check_number("Adamax", "eps", group["eps"], "epsilon value")
        check_number("Adamax", "weight_decay", group["weight_decay"], "weight_decay value")
        _check_betas("Adamax", group)

    def _update(self, d, g, state, group):
        beta1, beta2 = group["betas"]
        m, u = state["exp_avg"], state["exp_inf"]
        m += (g - m) * (1 - beta1)
        np.maximum(u * beta2, np.abs(g) + group["eps"], out=u)
        clr = group["lr"] / (1 - beta1 ** state["step"])
        d -= clr * (m / u)


class NAdam(ElementwiseOptimizer):
    _state_keys = ("exp_avg", "exp_avg_sq")
    _decoupled_key = "decoupled_weight_decay"

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False, maximize: bool = False, *,
                 foreach=None, capturable=False, differentiable=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
                                      **implementation_options(type(self).__name__, foreach=foreach,
                                                               capturable=capturable, differentiable=differentiable)))

    def _check_hyperparameters(self, group):
        check_number("NAdam", "lr", group["lr"], "learning rate")
        check_number("NAdam", "eps", group["eps"], "epsilon value")
        check_number("NAdam", "weight_decay", group["weight_decay"], "weight_decay value")
        check_number("NAdam", "momentum_decay", group["momentum_decay"], "momentum_decay value")
        _check_betas("NAdam", group)

    _scalar_keys = ("mu_product",)

    def _init_state(self, d, group):
        return {"mu_product": scalar_tensor(1.0), **super()._init_state(d, group)}

    def _update(self, d, g, state, group):
        (beta1, beta2), lr, eps, t = group["betas"], group["lr"], group["eps"], state["step"]
        psi = group["momentum_decay"]
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        # PyTorch multiplies mu into its 0-dim tensor (float32 unless the default dtype is float64)
        mu_product = state["mu_product"]
        mu_product[()] = mu_product * mu_product.dtype.type(mu)
        prod = float(mu_product)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (g - m) * (1 - beta1)
        v *= beta2
        v += (1 - beta2) * g * g
        denom = np.sqrt(v / (1 - beta2 ** t)) + eps
        d -= (lr * (1 - mu) / (1 - prod)) * (g / denom)
        d -= (lr * mu_next / (1 - prod * mu_next)) * (m / denom)


class RAdam(ElementwiseOptimizer):
    _state_keys = ("exp_avg", "exp_avg_sq")
    _decoupled_key = "decoupled_weight_decay"

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 decoupled_weight_decay: bool = False, maximize: bool = False, *,
                 foreach=None, capturable=False, differentiable=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
                                      **implementation_options(type(self).__name__, foreach=foreach,
                                                               capturable=capturable, differentiable=differentiable)))

    def _check_hyperparameters(self, group):
        check_number("RAdam", "lr", group["lr"], "learning rate")
        check_number("RAdam", "eps", group["eps"], "epsilon value")
        check_number("RAdam", "weight_decay", group["weight_decay"], "weight_decay value")
        _check_betas("RAdam", group)

    def _update(self, d, g, state, group):
        (beta1, beta2), lr, eps, t = group["betas"], group["lr"], group["eps"], state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (g - m) * (1 - beta1)
        v *= beta2
        v += (1 - beta2) * g * g
        bc1, bc2 = 1 - beta1 ** t, 1 - beta2 ** t
        m_hat = m / bc1
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * beta2 ** t / bc2
        if rho_t > 5.0:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            d -= m_hat * lr * (math.sqrt(bc2) / (np.sqrt(v) + eps)) * rect
        else:
            d -= m_hat * lr
