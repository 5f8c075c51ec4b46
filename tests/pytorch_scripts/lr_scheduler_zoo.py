"""Every common learning-rate schedule, driven the way training scripts drive them: timm/fairseq
style warmup built from LinearLR + CosineAnnealingLR inside SequentialLR, detectron2's
MultiStepLR with warmup through ChainedScheduler, OneCycleLR per batch with cycle_momentum on
SGD and on Adam's betas (three_phase), CosineAnnealingWarmRestarts stepped with a fractional
epoch (epoch + i / iters, as its docstring shows), LambdaLR with one lambda per param group
(HF's get_linear_schedule_with_warmup and an inverse-sqrt Noam schedule), PolynomialLR,
ExponentialLR, ConstantLR, MultiplicativeLR, CyclicLR (triangular2 and exp_range),
ReduceLROnPlateau on a validation loss (mode min and max, cooldown, min_lr, threshold_mode abs),
a param group added to the optimizer mid-run (add_param_group, then a fresh scheduler), and
scheduler state_dict save/load in the middle of a schedule resumed into new objects."""
import math

import torch
import torch.nn as nn
from torch.optim.lr_scheduler import (ChainedScheduler, ConstantLR, CosineAnnealingLR, CosineAnnealingWarmRestarts,
                                      CyclicLR, ExponentialLR, LambdaLR, LinearLR, MultiplicativeLR, MultiStepLR,
                                      OneCycleLR, PolynomialLR, ReduceLROnPlateau, SequentialLR, StepLR)


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def param_groups(model, base_lr):
    # a backbone at a tenth of the head's rate, as fine-tuning scripts set it up
    return [{"params": model[0].parameters(), "lr": base_lr * 0.1},
            {"params": model[2].parameters()}]


def lrs(opt):
    return [round(g["lr"], 12) for g in opt.param_groups]


def run(name, opt, sched, steps, per_step=None):
    traj = []
    for i in range(steps):
        opt.step()
        if per_step is None:
            sched.step()
        else:
            per_step(sched, i)
        traj.append(lrs(opt))
    report(name, traj, [round(v, 12) for v in sched.get_last_lr()])


def get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, last_epoch=-1):
    def lr_lambda(current_step: int):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        return max(0.0, float(num_training_steps - current_step) / float(max(1, num_training_steps - num_warmup_steps)))
    return LambdaLR(optimizer, lr_lambda, last_epoch)


def noam(d_model, warmup):
    return lambda step: d_model ** -0.5 * min(max(step, 1) ** -0.5, max(step, 1) * warmup ** -1.5)


model = make_model()

# --- warmup + cosine, the timm/fairseq recipe
opt = torch.optim.AdamW(param_groups(model, 1e-3), lr=1e-3, weight_decay=0.05)
warm = LinearLR(opt, start_factor=0.01, end_factor=1.0, total_iters=3)
cos = CosineAnnealingLR(opt, T_max=7, eta_min=1e-5)
sched = SequentialLR(opt, schedulers=[warm, cos], milestones=[3])
report("sequential_start", lrs(opt))
run("sequential", opt, sched, 12)

# --- detectron2-ish: warmup chained with multi-step decay
opt = torch.optim.SGD(param_groups(model, 0.1), lr=0.1, momentum=0.9)
sched = ChainedScheduler([LinearLR(opt, start_factor=0.1, total_iters=4), MultiStepLR(opt, milestones=[5, 8], gamma=0.1)])
run("chained", opt, sched, 10)

# --- one-cycle per batch, SGD momentum and Adam betas (three_phase, linear)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
sched = OneCycleLR(opt, max_lr=0.5, epochs=2, steps_per_epoch=5)
traj = []
for _ in range(10):
    opt.step()
    sched.step()
    traj.append((round(opt.param_groups[0]["lr"], 12), round(opt.param_groups[0]["momentum"], 12)))
report("onecycle_sgd", traj)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
sched = OneCycleLR(opt, max_lr=[3e-3], total_steps=12, pct_start=0.25, anneal_strategy="linear", three_phase=True)
traj = []
for _ in range(12):
    opt.step()
    sched.step()
    traj.append((round(opt.param_groups[0]["lr"], 12), round(opt.param_groups[0]["betas"][0], 12)))
report("onecycle_adam", traj)

# --- warm restarts stepped with a fractional epoch inside the batch loop
opt = torch.optim.SGD(model.parameters(), lr=0.05)
sched = CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2, eta_min=1e-4)
iters = 4
traj = []
for epoch in range(7):
    for i in range(iters):
        opt.step()
        sched.step(epoch + i / iters)
        traj.append(round(opt.param_groups[0]["lr"], 12))
report("warm_restarts", traj, sched.T_cur, sched.T_i)

# --- LambdaLR: HF linear warmup, and one lambda per group (noam for the head)
opt = torch.optim.AdamW(param_groups(model, 5e-4), lr=5e-4)
run("hf_linear", opt, get_linear_schedule_with_warmup(opt, 3, 10), 11)
opt = torch.optim.Adam(param_groups(model, 1.0), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
run("lambda_per_group", opt, LambdaLR(opt, lr_lambda=[lambda e: 0.95 ** e, noam(16, 4)]), 9)

# --- the simple decays
for name, factory in [
    ("polynomial", lambda o: PolynomialLR(o, total_iters=6, power=2.0)),
    ("exponential", lambda o: ExponentialLR(o, gamma=0.8)),
    ("constant", lambda o: ConstantLR(o, factor=0.25, total_iters=3)),
    ("multiplicative", lambda o: MultiplicativeLR(o, lr_lambda=lambda e: 0.9)),
    ("step", lambda o: StepLR(o, step_size=3, gamma=0.5)),
    ("multistep", lambda o: MultiStepLR(o, milestones=[2, 2, 5], gamma=0.3)),
]:
    opt = torch.optim.SGD(param_groups(model, 0.2), lr=0.2)
    run(name, opt, factory(opt), 8)

# --- cyclic lr on SGD with momentum cycling
for mode, extra in [("triangular2", {}), ("exp_range", {"gamma": 0.9})]:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    sched = CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=2, step_size_down=3, mode=mode, **extra)
    traj = []
    for _ in range(12):
        opt.step()
        sched.step()
        traj.append((round(opt.param_groups[0]["lr"], 12), round(opt.param_groups[0]["momentum"], 12)))
    report("cyclic_" + mode, traj)

# --- plateau: validation loss that stalls, then an accuracy that stalls
opt = torch.optim.SGD(param_groups(model, 0.1), lr=0.1)
sched = ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=1, cooldown=1, min_lr=[1e-3, 0.02])
val_losses = [1.0, 0.9, 0.95, 0.92, 0.91, 0.91, 0.7, 0.71, 0.72, 0.73, 0.74, 0.75]
traj = []
for val in val_losses:
    opt.step()
    sched.step(val)
    traj.append(lrs(opt))
report("plateau_min", traj, sched.num_bad_epochs, sched.best, round(sched.get_last_lr()[0], 12))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
sched = ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=0, threshold=0.05, threshold_mode="abs")
traj = []
for acc in [0.5, 0.6, 0.62, 0.7, 0.71, 0.72, 0.8]:
    opt.step()
    sched.step(acc)
    traj.append(lrs(opt))
report("plateau_max", traj, sched.state_dict()["best"], sorted(k for k in sched.state_dict() if not k.startswith("_")))

# --- a group added mid-run (unfreezing the backbone), then a scheduler over all groups
model = make_model()
for p in model[0].parameters():
    p.requires_grad_(False)
opt = torch.optim.SGD(model[2].parameters(), lr=0.1, momentum=0.9)
sched = StepLR(opt, step_size=2, gamma=0.5)
run("before_unfreeze", opt, sched, 3)
for p in model[0].parameters():
    p.requires_grad_(True)
opt.add_param_group({"params": model[0].parameters(), "lr": 0.01})
report("added_group", len(opt.param_groups), lrs(opt), opt.param_groups[1]["momentum"], "initial_lr" in opt.param_groups[1])
sched = CosineAnnealingLR(opt, T_max=4, last_epoch=-1)
run("after_unfreeze", opt, sched, 4)

# --- resume a schedule from its state_dict half-way
def fresh():
    o = torch.optim.SGD(param_groups(make_model(), 0.1), lr=0.1)
    s = SequentialLR(o, [LinearLR(o, start_factor=0.2, total_iters=2), CosineAnnealingLR(o, T_max=6)], milestones=[2])
    return o, s


opt, sched = fresh()
for _ in range(4):
    opt.step()
    sched.step()
saved_sched, saved_opt = sched.state_dict(), opt.state_dict()
full = []
for _ in range(4):
    opt.step()
    sched.step()
    full.append(lrs(opt))
opt2, sched2 = fresh()
opt2.load_state_dict(saved_opt)
sched2.load_state_dict(saved_sched)
resumed = []
for _ in range(4):
    opt2.step()
    sched2.step()
    resumed.append(lrs(opt2))
report("resume", full, resumed, full == resumed, saved_sched["last_epoch"], saved_sched["_milestones"])
