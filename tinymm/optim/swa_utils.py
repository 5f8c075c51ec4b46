"""``torch.optim.swa_utils``: weight averaging (SWA, EMA) with PyTorch's semantics.

``AveragedModel(model)`` holds a deep copy of ``model`` whose parameters (and, with
``use_buffers=True``, buffers) become a running average of the model's each time
``update_parameters(model)`` is called: the first call copies, later ones average:
    SWA (default):  avg ← avg + (p − avg)/(n + 1)   (the equal-weight mean of every update)
    EMA:            avg ← decay·avg + (1 − decay)·p  (``multi_avg_fn=get_ema_multi_avg_fn(decay)``)
Both are PyTorch's ``lerp``, evaluated as it does (from the nearer end) so the float32 results
agree bit for bit. ``SWALR`` anneals each group's learning rate to ``swa_lr``; ``update_bn``
recomputes BatchNorm statistics with one pass over a loader (cumulative averages).
"""
from __future__ import annotations

import copy
import itertools
import math

import numpy as np

from tinymm.autograd import no_grad
from tinymm.nn.batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d, SyncBatchNorm
from tinymm.nn.module import Module
from tinymm.optim.lr_scheduler import LRScheduler, per_group, warn_outside_step
from tinymm.tensor import Tensor

__all__ = ["AveragedModel", "SWALR", "get_ema_avg_fn", "get_ema_multi_avg_fn", "get_swa_avg_fn",
           "get_swa_multi_avg_fn", "update_bn"]


def _lerp_into(avg: Tensor, cur: Tensor, weight) -> None:
    """avg ← lerp(avg, cur, weight) in place, with PyTorch's formula (from the nearer end)."""
    a, c = avg._data, cur._data
    w = a.dtype.type(float(weight))
    if abs(w) < 0.5:
        a[...] = a + w * (c - a)
    else:
        a[...] = c - (c - a) * (a.dtype.type(1) - w)


def get_ema_multi_avg_fn(decay: float = 0.999):
    """An exponential moving average over lists of tensors: avg ← lerp(avg, p, 1 − decay)."""
    def ema_update(ema_param_list, current_param_list, _):
        with no_grad():
            if ema_param_list and ema_param_list[0].dtype.kind == "f":
                for p_ema, p_model in zip(ema_param_list, current_param_list):
                    _lerp_into(p_ema, p_model, 1 - decay)
            else:
                for p_ema, p_model in zip(ema_param_list, current_param_list):
                    p_ema.copy_(p_ema * decay + p_model * (1 - decay))
    return ema_update


def get_swa_multi_avg_fn():
    """The running equal-weight mean over lists of tensors: avg ← lerp(avg, p, 1/(n + 1))."""
    def swa_update(averaged_param_list, current_param_list, num_averaged):
        n = float(num_averaged.item() if isinstance(num_averaged, Tensor) else num_averaged)
        with no_grad():
            if averaged_param_list and averaged_param_list[0].dtype.kind == "f":
                w = np.float32(1) / np.float32(n + 1) if isinstance(num_averaged, Tensor) else 1.0 / (n + 1)
                for p_avg, p_model in zip(averaged_param_list, current_param_list):
                    _lerp_into(p_avg, p_model, w)
            else:
                for p_avg, p_model in zip(averaged_param_list, current_param_list):
                    p_avg.copy_(p_avg + (p_model - p_avg) / (n + 1))  # copy_ casts back, as torch's
    return swa_update


def get_ema_avg_fn(decay: float = 0.999):
    """The per-tensor EMA: decay·avg + (1 − decay)·p."""
    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn():
    """The per-tensor running mean: avg + (p − avg)/(n + 1)."""
    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)
    return swa_update


class AveragedModel(Module):
    """A deep copy of ``model`` (as ``self.module``) whose parameters average the model's over
    the ``update_parameters`` calls; ``n_averaged`` (an int64 buffer) counts them. ``avg_fn``
    (per tensor) or ``multi_avg_fn`` (per list) replaces the SWA mean, not both."""

    def __init__(self, model: Module, device=None, avg_fn=None, multi_avg_fn=None, use_buffers: bool = False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", Tensor._of(np.array(0, dtype=np.int64), device=device))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def update_parameters(self, model: Module) -> None:
        """Fold ``model``'s current parameters (and buffers with ``use_buffers``) into the average."""
        if self.use_buffers:
            mine = list(itertools.chain(self.module.parameters(), self.module.buffers()))
            theirs = list(itertools.chain(model.parameters(), model.buffers()))
        else:
            mine, theirs = list(self.parameters()), list(model.parameters())
        mine = [p.detach() for p in mine]
        theirs = [p.detach().to(a.device) for a, p in zip(mine, theirs)]
        n = int(self.n_averaged.item())
        with no_grad():
            if n == 0:
                for a, p in zip(mine, theirs):
                    a.copy_(p)
            elif self.avg_fn is None:
                fn = self.multi_avg_fn or get_swa_multi_avg_fn()
                for group in _by_dtype(mine, theirs):
                    fn(*group, self.n_averaged)
            else:
                for a, p in zip(mine, theirs):
                    a.copy_(self.avg_fn(a, p, self.n_averaged))
            if not self.use_buffers:  # buffers follow the source model
                for b_avg, b_model in zip(self.module.buffers(), model.buffers()):
                    b_avg.copy_(b_model.detach().to(b_avg.device))
            self.n_averaged.add_(1)


def _by_dtype(mine, theirs):
    """(averaged list, current list) per dtype, as PyTorch groups tensors for its foreach calls."""
    groups = {}
    for a, p in zip(mine, theirs):
        pair = groups.setdefault((str(a.device), a.dtype), ([], []))
        pair[0].append(a)
        pair[1].append(p)
    return list(groups.values())


# PyTorch tests for its private _BatchNorm base: these are every public class built on it
_BATCH_NORMS = (BatchNorm1d, BatchNorm2d, BatchNorm3d, SyncBatchNorm)


def update_bn(loader, model: Module, device=None) -> None:
    """Recompute every BatchNorm's running statistics with one pass over ``loader`` in train
    mode, as cumulative averages (momentum None); a batch that is a list or tuple gives its
    first item. Models without BatchNorm are left alone."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BATCH_NORMS):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    with no_grad():
        for batch in loader:
            if isinstance(batch, (list, tuple)):
                batch = batch[0]
            if device is not None:
                batch = batch.to(device)
            model(batch)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's learning rate from where it is to ``swa_lr`` over ``anneal_epochs``
    steps ("cos": α = (1 − cos πt)/2, "linear": α = t), then hold it there (PyTorch's chainable
    form: each step undoes the previous α on the group's current rate)."""

    def __init__(self, optimizer, swa_lr, anneal_epochs: int = 10, anneal_strategy: str = "cos", last_epoch: int = -1):
        for lr, group in zip(per_group("swa_lr", optimizer, swa_lr), optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def _set_anneal_func(self, anneal_strategy: str) -> None:
        self._anneal_strategy = anneal_strategy
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else self._linear_anneal

    @staticmethod
    def _linear_anneal(t):
        return t

    @staticmethod
    def _cosine_anneal(t):
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr, swa_lr, alpha):
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self):
        warn_outside_step(self)
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        prev_lrs = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in self.optimizer.param_groups]
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(self.optimizer.param_groups, prev_lrs)]

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "anneal_func")}

    def load_state_dict(self, state: dict) -> None:
        self.__dict__.update(state)
        self._set_anneal_func(self._anneal_strategy)
