"""MAML few-shot sine-wave regression (Finn et al. 2017) the way its PyTorch re-implementations
write it: a Sequential of named Linear/ReLU layers, tasks of amplitude/phase-shifted sines,
inner-loop SGD on an OrderedDict of fast weights built from
torch.autograd.grad(loss, fast_weights.values(), create_graph=True), the query loss through
torch.func.functional_call(model, fast_weights, (x,)), torch.stack(meta_losses).mean() under a
meta Adam with second-order gradients flowing back through the inner steps; then first-order
MAML (grads detached) and Meta-SGD's learnable per-parameter inner learning rates in an
nn.ParameterDict, and the test-time adaptation curve of a few inner steps without create_graph.
Tasks are drawn from a seeded NumPy generator so both libraries see the same data."""
import math
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call


class SineTask:
    def __init__(self, rng, amplitude_range=(0.1, 5.0), phase_range=(0, math.pi), x_range=(-5.0, 5.0)):
        self.rng = rng
        self.amplitude = rng.uniform(*amplitude_range)
        self.phase = rng.uniform(*phase_range)
        self.x_range = x_range

    def sample(self, k):
        x = self.rng.uniform(*self.x_range, size=(k, 1)).astype(np.float32)
        y = self.amplitude * np.sin(x - self.phase)
        return torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))


class SineModel(nn.Module):
    def __init__(self, hidden=40):
        super().__init__()
        self.net = nn.Sequential(OrderedDict([
            ('l1', nn.Linear(1, hidden)),
            ('relu1', nn.ReLU()),
            ('l2', nn.Linear(hidden, hidden)),
            ('relu2', nn.ReLU()),
            ('l3', nn.Linear(hidden, 1)),
        ]))

    def forward(self, x):
        return self.net(x)


class MAML:
    def __init__(self, model, inner_lr=0.01, meta_lr=0.001, K=10, inner_steps=1, tasks_per_meta_batch=4,
                 first_order=False):
        self.model = model
        self.inner_lr = inner_lr
        self.meta_optimizer = torch.optim.Adam(self.model.parameters(), meta_lr)
        self.K = K
        self.inner_steps = inner_steps
        self.tasks_per_meta_batch = tasks_per_meta_batch
        self.first_order = first_order
        self.criterion = nn.MSELoss()

    def adapt(self, task):
        X, y = task.sample(self.K)
        fast_weights = OrderedDict(self.model.named_parameters())
        for step in range(self.inner_steps):
            loss = self.criterion(functional_call(self.model, fast_weights, (X,)), y)
            grads = torch.autograd.grad(loss, fast_weights.values(), create_graph=not self.first_order)
            if self.first_order:
                grads = [g.detach() for g in grads]
            fast_weights = OrderedDict(
                (name, param - self.inner_lr * grad)
                for ((name, param), grad) in zip(fast_weights.items(), grads))
        X, y = task.sample(self.K)
        return self.criterion(functional_call(self.model, fast_weights, (X,)), y)

    def main_loop(self, rng, num_iterations):
        log = []
        for iteration in range(1, num_iterations + 1):
            meta_losses = [self.adapt(SineTask(rng)) for _ in range(self.tasks_per_meta_batch)]
            meta_loss = torch.stack(meta_losses).mean()
            self.meta_optimizer.zero_grad()
            meta_loss.backward()
            self.meta_optimizer.step()
            log.append((meta_loss.item(), self.model.net.l1.weight.grad.norm().item(),
                        self.model.net.l3.bias.grad.item()))
        return log


rng = np.random.default_rng(0)
torch.manual_seed(0)
model = SineModel()
share_init(model)
maml = MAML(model, inner_lr=0.01, meta_lr=0.001, K=5, inner_steps=2)
for i, (loss, g1, g3) in enumerate(maml.main_loop(rng, 3)):
    report("maml", i, loss, g1, g3)

# second-order terms really flow: the meta-gradient differs from first-order MAML's
task_rng = np.random.default_rng(5)
task = SineTask(task_rng)
state = {k: v.clone() for k, v in model.state_dict().items()}
grads = {}
for first_order in (False, True):
    task.rng = np.random.default_rng(6)
    fo = MAML(model, K=5, inner_steps=2, first_order=first_order)
    model.zero_grad()
    fo.adapt(task).backward()
    grads[first_order] = model.net.l2.weight.grad.clone()
report("second order", (grads[False] - grads[True]).abs().max().item() > 0, grads[True].norm().item(),
       grads[False].norm().item())

# first-order MAML trains too
fomaml_model = SineModel()
share_init(fomaml_model, "fomaml")
fomaml = MAML(fomaml_model, inner_lr=0.01, meta_lr=0.001, K=5, inner_steps=1, first_order=True)
for i, (loss, g1, g3) in enumerate(fomaml.main_loop(np.random.default_rng(1), 2)):
    report("fomaml", i, loss, g1, g3)


# ---- Meta-SGD: per-parameter learnable inner learning rates
class MetaSGD(nn.Module):
    def __init__(self, model, init_lr=0.01):
        super().__init__()
        self.model = model
        self.lrs = nn.ParameterDict({
            name.replace('.', '_'): nn.Parameter(torch.full_like(p, init_lr))
            for name, p in model.named_parameters()})

    def adapt(self, X, y, params=None):
        params = params if params is not None else dict(self.model.named_parameters())
        loss = F.mse_loss(functional_call(self.model, params, X), y)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        return {name: p - self.lrs[name.replace('.', '_')] * g
                for (name, p), g in zip(params.items(), grads)}


meta_sgd = MetaSGD(SineModel(hidden=16))
share_init(meta_sgd, "metasgd")
opt = torch.optim.Adam(meta_sgd.parameters(), lr=1e-3)
rng = np.random.default_rng(2)
for it in range(3):
    opt.zero_grad()
    total = 0.
    for _ in range(2):
        task = SineTask(rng)
        X_s, y_s = task.sample(5)
        X_q, y_q = task.sample(5)
        fast = meta_sgd.adapt(X_s, y_s)
        q_loss = F.mse_loss(functional_call(meta_sgd.model, fast, X_q), y_q)
        (q_loss / 2).backward()
        total += q_loss.item() / 2
    torch.nn.utils.clip_grad_norm_(meta_sgd.parameters(), 10.0)
    opt.step()
    report("meta-sgd", it, total, meta_sgd.lrs['net_l1_weight'].grad.abs().sum().item(),
           meta_sgd.lrs['net_l3_bias'].item())

# ---- test-time adaptation curve: plain SGD steps on a copy's fast weights, no graph kept
task = SineTask(np.random.default_rng(3))
X_s, y_s = task.sample(10)
X_t = torch.linspace(-5, 5, 50).unsqueeze(1)
y_t = task.amplitude * torch.sin(X_t - task.phase)
fast_weights = {k: v.detach().clone().requires_grad_() for k, v in model.named_parameters()}
curve = []
for step in range(4):
    with torch.no_grad():
        curve.append(F.mse_loss(functional_call(model, fast_weights, (X_t,)), y_t).item())
    loss = F.mse_loss(functional_call(model, fast_weights, (X_s,)), y_s)
    grads = torch.autograd.grad(loss, list(fast_weights.values()))
    fast_weights = {k: (w - 0.01 * g).detach().requires_grad_() for (k, w), g in zip(fast_weights.items(), grads)}
report("adaptation", curve, y_t.dtype == torch.float32, list(y_t.shape))


# ---- learn2learn's MAML wrapper: clone_module / update_module write the modules' registries
def clone_module(module, memo=None):
    if memo is None:
        memo = {}
    if not isinstance(module, torch.nn.Module):
        return module
    clone = module.__new__(type(module))
    clone.__dict__ = module.__dict__.copy()
    clone._parameters = clone._parameters.copy()
    clone._buffers = clone._buffers.copy()
    clone._modules = clone._modules.copy()
    if hasattr(clone, '_parameters'):
        for param_key in module._parameters:
            if module._parameters[param_key] is not None:
                param = module._parameters[param_key]
                param_ptr = param.data_ptr
                if param_ptr in memo:
                    clone._parameters[param_key] = memo[param_ptr]
                else:
                    cloned = param.clone()
                    clone._parameters[param_key] = cloned
                    memo[param_ptr] = cloned
    if hasattr(clone, '_buffers'):
        for buffer_key in module._buffers:
            if clone._buffers[buffer_key] is not None and \
                    clone._buffers[buffer_key].requires_grad:
                buff = module._buffers[buffer_key]
                buff_ptr = buff.data_ptr
                if buff_ptr in memo:
                    clone._buffers[buffer_key] = memo[buff_ptr]
                else:
                    cloned = buff.clone()
                    clone._buffers[buffer_key] = cloned
                    memo[param_ptr] = cloned
    if hasattr(clone, '_modules'):
        for module_key in clone._modules:
            clone._modules[module_key] = clone_module(module._modules[module_key], memo=memo)
    return clone


def update_module(module, updates=None, memo=None):
    if memo is None:
        memo = {}
    if updates is not None:
        params = list(module.parameters())
        for p, g in zip(params, updates):
            p.update = g
    for param_key in module._parameters:
        p = module._parameters[param_key]
        if p in memo:
            module._parameters[param_key] = memo[p]
        else:
            if p is not None and hasattr(p, 'update') and p.update is not None:
                updated = p + p.update
                p.update = None
                memo[p] = updated
                module._parameters[param_key] = updated
    for module_key in module._modules:
        module._modules[module_key] = update_module(module._modules[module_key], updates=None, memo=memo)
    return module


def maml_update(model, lr, grads=None):
    if grads is not None:
        params = list(model.parameters())
        for p, g in zip(params, grads):
            if g is not None:
                p.update = - lr * g
    return update_module(model)


class L2LMAML(nn.Module):
    def __init__(self, model, lr, first_order=False):
        super().__init__()
        self.module = model
        self.lr = lr
        self.first_order = first_order

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def adapt(self, loss):
        second_order = not self.first_order
        gradients = torch.autograd.grad(loss, self.module.parameters(), retain_graph=second_order,
                                        create_graph=second_order, allow_unused=False)
        self.module = maml_update(self.module, self.lr, gradients)

    def clone(self):
        return L2LMAML(clone_module(self.module), lr=self.lr, first_order=self.first_order)


l2l_model = SineModel(hidden=16)
share_init(l2l_model, "l2l")
maml = L2LMAML(l2l_model, lr=0.01)
opt = torch.optim.Adam(maml.parameters(), lr=1e-3)
rng = np.random.default_rng(4)
for iteration in range(3):
    opt.zero_grad()
    meta_train_error = 0.0
    for task_i in range(2):
        task = SineTask(rng)
        X_s, y_s = task.sample(5)
        X_q, y_q = task.sample(5)
        learner = maml.clone()
        for _ in range(2):
            learner.adapt(F.mse_loss(learner(X_s), y_s))
        evaluation_error = F.mse_loss(learner(X_q), y_q)
        evaluation_error.backward()
        meta_train_error += evaluation_error.item()
    for p in maml.parameters():
        p.grad.data.mul_(1.0 / 2)
    opt.step()
    report("l2l", iteration, meta_train_error / 2, l2l_model.net.l1.weight.grad.norm().item(),
           learner.module.net.l3.bias.is_leaf, len(list(learner.parameters())),
           (learner.module.net.l1.weight - l2l_model.net.l1.weight).abs().sum().item())
