"""The do-it-yourself training infrastructure research repos carry around: a custom optimizer
subclassing torch.optim.Optimizer (Lion, with @torch.no_grad() step(closure), self.state[p],
defaults filled into groups, state_dict round trip), a custom warmup scheduler subclassing
torch.optim.lr_scheduler.LRScheduler (get_lr from self.base_lrs and self.last_epoch) chained
with a stock one, timm's ModelEmaV3 (torch._foreach_lerp_ / _foreach_mul_ / _foreach_add_ over
parameters and buffers, a deepcopy held in eval mode with requires_grad_(False)), optimizer
step pre/post hooks counting steps, a weight tied between embedding and output head (one
Parameter in two modules, named_parameters deduplicating it), parameters_to_vector /
vector_to_parameters, torch.nn.utils.get_total_norm + clip_grads_with_norm_ (the split
clip_grad_norm_), torch.set_grad_enabled / inference_mode around evaluation, and
register_forward_hook(with_kwargs=True)."""
import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parameters_to_vector, vector_to_parameters
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class Lion(Optimizer):
    r"""Implements Lion algorithm."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        if not 0.0 <= lr:
            raise ValueError("Invalid learning rate: {}".format(lr))
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError("Invalid beta parameter at index 0: {}".format(betas[0]))
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError("Invalid beta parameter at index 1: {}".format(betas[1]))
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            for p in group['params']:
                if p.grad is None:
                    continue

                # Perform stepweight decay
                p.data.mul_(1 - group['lr'] * group['weight_decay'])

                grad = p.grad
                state = self.state[p]
                # State initialization
                if len(state) == 0:
                    # Exponential moving average of gradient values
                    state['exp_avg'] = torch.zeros_like(p)

                exp_avg = state['exp_avg']
                beta1, beta2 = group['betas']

                # Weight update
                update = exp_avg * beta1 + grad * (1 - beta1)
                p.add_(torch.sign(update), alpha=-group['lr'])
                # Decay the momentum running average coefficient
                exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)

        return loss


class LinearWarmup(LRScheduler):
    def __init__(self, optimizer, warmup_steps, last_epoch=-1):
        self.warmup_steps = warmup_steps
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        scale = min(1.0, (self.last_epoch + 1) / self.warmup_steps)
        return [base_lr * scale for base_lr in self.base_lrs]


class ModelEmaV3(nn.Module):
    def __init__(self, model, decay=0.9999, min_decay=0.0, use_warmup=False, warmup_gamma=1.0, warmup_power=2 / 3,
                 device=None, foreach=True, exclude_buffers=False):
        super().__init__()
        self.module = copy.deepcopy(model)
        self.module.eval()
        self.decay = decay
        self.min_decay = min_decay
        self.use_warmup = use_warmup
        self.warmup_gamma = warmup_gamma
        self.warmup_power = warmup_power
        self.foreach = foreach
        self.device = device
        self.exclude_buffers = exclude_buffers
        if self.device is not None and device != next(model.parameters()).device:
            self.foreach = False
            self.module.to(device=device)

    def get_decay(self, step=None):
        if step is None:
            return self.decay
        step = max(0, step - 1)
        if step <= 0:
            return 0.0
        if self.use_warmup:
            decay = 1 - (1 + step / self.warmup_gamma) ** -self.warmup_power
            decay = max(min(decay, self.decay), self.min_decay)
        else:
            decay = self.decay
        return decay

    @torch.no_grad()
    def update(self, model, step=None):
        decay = self.get_decay(step)
        if self.exclude_buffers:
            self.apply_update_no_buffers_(model, decay)
        else:
            self.apply_update_(model, decay)

    def apply_update_(self, model, decay):
        if self.foreach:
            ema_lerp_values = []
            model_lerp_values = []
            for ema_v, model_v in zip(self.module.state_dict().values(), model.state_dict().values()):
                if ema_v.is_floating_point():
                    ema_lerp_values.append(ema_v)
                    model_lerp_values.append(model_v)
                else:
                    ema_v.copy_(model_v)
            if hasattr(torch, '_foreach_lerp_'):
                torch._foreach_lerp_(ema_lerp_values, model_lerp_values, weight=1. - decay)
            else:
                torch._foreach_mul_(ema_lerp_values, scalar=decay)
                torch._foreach_add_(ema_lerp_values, model_lerp_values, alpha=1. - decay)
        else:
            for ema_v, model_v in zip(self.module.state_dict().values(), model.state_dict().values()):
                if ema_v.is_floating_point():
                    ema_v.lerp_(model_v.to(device=self.device), weight=1. - decay)
                else:
                    ema_v.copy_(model_v.to(device=self.device))

    def apply_update_no_buffers_(self, model, decay):
        ema_params = tuple(self.module.parameters())
        model_params = tuple(model.parameters())
        if self.foreach:
            if hasattr(torch, '_foreach_lerp_'):
                torch._foreach_lerp_(ema_params, model_params, weight=1. - decay)
            else:
                torch._foreach_mul_(ema_params, scalar=decay)
                torch._foreach_add_(ema_params, model_params, alpha=1 - decay)
        else:
            for ema_p, model_p in zip(ema_params, model_params):
                ema_p.lerp_(model_p.to(device=self.device), weight=1. - decay)
        for ema_b, model_b in zip(self.module.buffers(), model.buffers()):
            ema_b.copy_(model_b.to(device=self.device))

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


class TinyLM(nn.Module):
    def __init__(self, vocab=11, d=8):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.mix = nn.Sequential(nn.Linear(d, d), nn.LayerNorm(d), nn.GELU())
        self.bn = nn.BatchNorm1d(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.wte.weight = self.lm_head.weight  # https://paperswithcode.com/method/weight-tying

    def forward(self, idx, temperature=1.0):
        h = self.mix(self.wte(idx))  # (B, T, d)
        h = self.bn(h.transpose(1, 2)).transpose(1, 2)
        return self.lm_head(h) / temperature


torch.manual_seed(0)
model = TinyLM()
share_init(model)
report("tied", model.wte.weight is model.lm_head.weight, len(list(model.parameters())),
       [n for n, _ in model.named_parameters()], len(list(model.named_parameters(remove_duplicate=False))),
       sorted(model.state_dict())[:3])

ema = ModelEmaV3(model, decay=0.9, use_warmup=True, warmup_gamma=1.0)
for p in ema.module.parameters():
    p.requires_grad_(False)
decay_params = [p for n, p in model.named_parameters() if p.dim() >= 2]
other_params = [p for n, p in model.named_parameters() if p.dim() < 2]
optimizer = Lion([{"params": decay_params, "weight_decay": 0.1}, {"params": other_params}], lr=3e-3, betas=(0.9, 0.99))
report("groups", [len(g["params"]) for g in optimizer.param_groups], [g["weight_decay"] for g in optimizer.param_groups],
       sorted(optimizer.defaults))
warm = LinearWarmup(optimizer, warmup_steps=3)
steps = {"pre": 0, "post": 0}


def pre_hook(opt, args, kwargs):
    steps["pre"] += 1


def post_hook(opt, args, kwargs):
    steps["post"] += 1


h1 = optimizer.register_step_pre_hook(pre_hook)
h2 = optimizer.register_step_post_hook(post_hook)
kw_seen = []
h3 = model.register_forward_hook(lambda m, args, kwargs, out: kw_seen.append(sorted(kwargs)), with_kwargs=True)

seq = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8, 9], [2, 4, 6, 8, 10, 1, 3, 5, 7], [3, 6, 9, 1, 4, 7, 10, 2, 5]])
x, y = seq[:, :-1], seq[:, 1:]
for step in range(8):
    model.train()

    def closure():
        optimizer.zero_grad()
        logits = model(x, temperature=1.0)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        loss.backward()
        return loss

    loss = optimizer.step(closure)
    warm.step()
    ema.update(model, step=step + 1)
    report("step", step, loss.item(), optimizer.param_groups[0]["lr"], round(ema.get_decay(step + 1), 8))
h1.remove()
h2.remove()
h3.remove()
report("hooks", steps, kw_seen[:2], len(kw_seen))

# the split clip: total norm first, then scale with it
optimizer.zero_grad()
F.cross_entropy(model(x).reshape(-1, 11), y.reshape(-1)).backward()
grads = [p.grad for p in model.parameters() if p.grad is not None]
total = torch.nn.utils.get_total_norm(grads, norm_type=2.0)
torch.nn.utils.clip_grads_with_norm_(model.parameters(), max_norm=0.1, total_norm=total)
report("split_clip", total.item(), torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]).item())

# flat parameter vectors (as in second-order and evolution-strategy code)
vec = parameters_to_vector(model.parameters())
vector_to_parameters(vec * 0.5, model.parameters())
report("vector", vec.numel(), vec.shape, parameters_to_vector(model.parameters()).sum().item() / vec.sum().item())

# state round trip of the custom optimizer, then the ema's eval
sd = optimizer.state_dict()
opt2 = Lion([{"params": decay_params, "weight_decay": 0.1}, {"params": other_params}], lr=1.0)
opt2.load_state_dict(sd)
report("lion_state", sorted(sd["state"][0]), opt2.param_groups[0]["lr"], opt2.param_groups[1]["weight_decay"],
       torch.equal(opt2.state[decay_params[0]]["exp_avg"], optimizer.state[decay_params[0]]["exp_avg"]))
with torch.inference_mode():
    ema_logits = ema(x)
with torch.set_grad_enabled(False):
    logits = model.eval()(x)
report("eval", ema_logits.requires_grad, logits.requires_grad, ema_logits.argmax(-1)[0].tolist(),
       F.cross_entropy(ema_logits.reshape(-1, 11), y.reshape(-1)).item(), ema.module.training,
       ema.module.bn.num_batches_tracked.item(), ema.module.bn.running_mean[:3].tolist())
