"""Learning-rate schedules with PyTorch's semantics, each written in closed form.

A scheduler sets ``group["lr"] = base_lr · factor(epoch)`` for every parameter group;
``step()`` advances the epoch (one call per epoch or per iteration, as you choose).
Creating a scheduler applies epoch 0 at once, as PyTorch does.
"""
from __future__ import annotations

import math


class LRScheduler:
    def __init__(self, optimizer, last_epoch: int = -1):
        self.optimizer = optimizer
        if last_epoch == -1:
            for g in optimizer.param_groups:
                g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] if "initial_lr" in g else g["lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, epoch: int, base_lr: float, group: int = 0) -> float:
        """The learning rate of parameter group ``group`` at ``epoch`` given its base rate."""
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        for i, (g, base) in enumerate(zip(self.optimizer.param_groups, self.base_lrs)):
            g["lr"] = self.lr_at(self.last_epoch, base, i)
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self) -> list:
        return list(self._last_lr)

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas", "schedulers")}

    def load_state_dict(self, state: dict) -> None:
        self.__dict__.update(state)


class StepLR(LRScheduler):
    """lr = base · gamma^⌊epoch / step_size⌋."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if step_size <= 0:
            raise ValueError(f"StepLR: step_size must be positive, got {step_size}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base, group=0):
        return base * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base − eta_min)·(1 + cos(π·epoch/T_max))/2."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base, group=0):
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LinearLR(LRScheduler):
    """Factor moves linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` epochs."""

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5,
                 last_epoch: int = -1):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: factors must be in (0, 1], got start={start_factor}, end={end_factor}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base, group=0):
        t = min(epoch, self.total_iters) / self.total_iters if self.total_iters else 1.0
        return base * (self.start_factor + (self.end_factor - self.start_factor) * t)


class LambdaLR(LRScheduler):
    """lr = base · lr_lambda(epoch) (one function, or one per parameter group)."""

    def __init__(self, optimizer, lr_lambda, last_epoch: int = -1):
        n = len(optimizer.param_groups)
        self.lr_lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(self.lr_lambdas) != n:
            raise ValueError(f"LambdaLR: {len(self.lr_lambdas)} lambdas for {n} parameter groups")
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base, group=0):
        return base * self.lr_lambdas[group](epoch)


class SequentialLR(LRScheduler):
    """Run ``schedulers[i]`` from ``milestones[i-1]`` on, each restarted at its own epoch 0:
    the way to chain a warm-up and a decay."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch: int = -1):
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: {len(schedulers)} schedulers need {len(schedulers) - 1} milestones, got {len(milestones)}")
        if list(milestones) != sorted(milestones):
            raise ValueError(f"SequentialLR: milestones must increase, got {milestones}")
        for s in schedulers:
            if s.optimizer is not optimizer:
                raise ValueError("SequentialLR: every scheduler must drive the same optimizer")
        self.schedulers, self.milestones = list(schedulers), list(milestones)
        for g, base in zip(optimizer.param_groups, schedulers[0].base_lrs):
            g["lr"] = base
        super().__init__(optimizer, last_epoch)

    def _active(self, epoch):
        i = sum(epoch >= m for m in self.milestones)
        start = self.milestones[i - 1] if i else 0
        return self.schedulers[i], epoch - start

    def lr_at(self, epoch, base, group=0):
        sched, local = self._active(epoch)
        return sched.lr_at(local, sched.base_lrs[group], group)


def warmup_cosine(optimizer, warmup_steps: int, total_steps: int, eta_min: float = 0.0, start_factor: float = 1e-3):
    """Linear warm-up from ``start_factor``·lr to lr over ``warmup_steps``, then cosine decay to
    ``eta_min`` at ``total_steps``: a SequentialLR of LinearLR and CosineAnnealingLR."""
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_cosine: need 0 <= warmup_steps < total_steps, got {warmup_steps}, {total_steps}")
    if warmup_steps == 0:
        return CosineAnnealingLR(optimizer, total_steps, eta_min)
    warm = LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup_steps)
    cos = CosineAnnealingLR(optimizer, total_steps - warmup_steps, eta_min)
    return SequentialLR(optimizer, [warm, cos], milestones=[warmup_steps])
