"""Stochastic weight averaging and parametrizations around a small CNN, the way the PyTorch SWA
tutorial and blog post write it (AveragedModel, SWALR with cosine annealing and anneal_epochs,
a swa_start epoch switching from CosineAnnealingLR to SWALR, update_bn over the train loader
with a dict batch unpacked by the loader, swa_model(x) for evaluation, custom avg_fn), plus
what research code does to its layers: nn.utils.parametrizations.weight_norm(dim=0) and
orthogonal (a recurrent-style square map), parametrize.register_parametrization with a user
module (a symmetric matrix, and a positive-weights softplus map with right_inverse),
parametrize.cached(), remove_parametrizations(leave_parametrized=True), model.apply(init_fn)
with per-type init, named_modules / named_children / modules() traversal with a prefix,
requires_grad_(False) freezing of a sub-tree (the optimizer built over the trainable ones),
register_forward_pre_hook rescaling inputs, register_forward_hook collecting activations,
register_full_backward_hook recording grad_output norms, tensor.register_hook clipping a
gradient, and removing the handles."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.parametrize as parametrize
from torch.nn.utils.parametrizations import orthogonal, weight_norm
from torch.optim.swa_utils import SWALR, AveragedModel, update_bn
from torch.utils.data import DataLoader, Dataset


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(-1, -2)


class Positive(nn.Module):
    def forward(self, X):
        return F.softplus(X)

    def right_inverse(self, W):
        # softplus^-1, so that assigning a weight stores its preimage
        return W + torch.log(-torch.expm1(-W))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
            nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.mix = nn.Linear(4, 4, bias=False)
        self.proj = nn.Linear(4, 6)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        h = self.features(x)
        h = torch.tanh(self.mix(h))
        return self.head(F.relu(self.proj(h)))


class Shapes(Dataset):
    """8x8 images: a bright row (class 0), column (1) or diagonal (2), with fixed noise."""

    def __init__(self, n, offset=0):
        self.n, self.offset = n, offset

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        k = (i + self.offset) % 3
        j = (i * 5 + self.offset) % 8
        img = 0.1 * torch.sin(torch.arange(64, dtype=torch.float32).reshape(1, 8, 8) * (i + 1 + self.offset) * 0.7)
        if k == 0:
            img[0, j, :] += 1.0
        elif k == 1:
            img[0, :, j] += 1.0
        else:
            img[0] += torch.eye(8)
        return {"image": img, "label": k}


def init_weights(m):
    if isinstance(m, nn.Conv2d):
        nn.init.constant_(m.bias, 0.01)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


torch.manual_seed(0)
model = Net()
share_init(model)
model.apply(init_weights)
report("modules", [(n, type(m).__name__) for n, m in model.named_modules() if n][:6],
       [n for n, _ in model.named_children()], sum(1 for _ in model.modules()),
       [n for n, _ in model.features.named_modules(prefix="features")][:3])

# --- parametrizations
weight_norm(model.proj, name="weight", dim=0)
orthogonal(model.mix)
report("param_names", sorted(n for n, _ in model.named_parameters() if "proj" in n or "mix" in n),
       parametrize.is_parametrized(model.mix), parametrize.is_parametrized(model.head),
       type(model.mix.parametrizations.weight[0]).__name__)
W = model.mix.weight
report("orthogonal", torch.allclose(W @ W.T, torch.eye(4), atol=1e-5))
g = model.proj.parametrizations.weight.original0
v = model.proj.parametrizations.weight.original1
report("weight_norm", tuple(g.shape), tuple(v.shape),
       torch.allclose(model.proj.weight, g * v / v.norm(dim=1, keepdim=True), atol=1e-6))

sym = nn.Linear(3, 3)
parametrize.register_parametrization(sym, "weight", Symmetric())
report("symmetric", torch.equal(sym.weight, sym.weight.T), sorted(sym.state_dict()))
pos = nn.Linear(3, 2)
parametrize.register_parametrization(pos, "weight", Positive())
pos.weight = torch.tensor([[0.5, 1.0, 2.0], [0.1, 0.2, 3.0]])
report("positive", [round(v, 5) for v in pos.weight.flatten().tolist()],
       [round(v, 5) for v in pos.parametrizations.weight.original.flatten().tolist()])
with parametrize.cached():
    a = pos.weight
    b = pos.weight
    report("cached", a is b)
parametrize.remove_parametrizations(pos, "weight", leave_parametrized=True)
report("removed", parametrize.is_parametrized(pos), type(pos.weight).__name__, [round(v, 5) for v in pos.weight[0].tolist()])

# --- hooks
acts, grad_norms, seen = {}, [], []


def scale_input(module, args):
    return (args[0] * 2.0,)


def save_act(name):
    def hook(module, inp, out):
        acts[name] = out.detach()
    return hook


def bwd_hook(module, grad_input, grad_output):
    grad_norms.append(round(grad_output[0].norm().item(), 5))


handles = [model.head.register_forward_pre_hook(scale_input),
           model.proj.register_forward_hook(save_act("proj")),
           model.head.register_full_backward_hook(bwd_hook)]

ds = Shapes(24)
loader = DataLoader(ds, batch_size=6, shuffle=False)
batch = next(iter(loader))
x, y = batch["image"], batch["label"]
x.requires_grad_(True)
h = x.register_hook(lambda grad: seen.append(grad.abs().sum().item()) or grad.clamp(-1e-3, 1e-3))
out = model(x)
loss = F.cross_entropy(out, y)
loss.backward()
report("hooks", loss.item(), tuple(acts["proj"].shape), grad_norms, round(seen[0], 4),
       x.grad.abs().max().item() <= 1e-3 + 1e-9)
for hd in handles + [h]:
    hd.remove()
model.zero_grad()

# --- freeze the conv trunk's first block; the optimizer only sees what trains
for p in model.features[:3].parameters():
    p.requires_grad_(False)
trainable = [p for p in model.parameters() if p.requires_grad]
report("frozen", len(trainable), sum(p.numel() for p in trainable),
       [n for n, p in model.named_parameters() if not p.requires_grad])

# --- SWA
optimizer = torch.optim.SGD(trainable, lr=0.05, momentum=0.9)
swa_model = AveragedModel(model)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=6)
swa_start = 3
swa_scheduler = SWALR(optimizer, swa_lr=0.02, anneal_epochs=2, anneal_strategy="cos")
frozen_before = model.features[0].weight.detach().clone()
for epoch in range(6):
    model.train()
    total = 0.0
    for batch in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(batch["image"]), batch["label"])
        loss.backward()
        optimizer.step()
        total += loss.item()
    if epoch >= swa_start:
        swa_model.update_parameters(model)
        swa_scheduler.step()
    else:
        scheduler.step()
    report("epoch", epoch, total / len(loader), optimizer.param_groups[0]["lr"], int(swa_model.n_averaged))
report("frozen_unchanged", torch.equal(frozen_before, model.features[0].weight))

bn = swa_model.module.features[1]
before = bn.running_mean.clone()
update_bn(({"image": b["image"]}["image"] for b in loader), swa_model)
report("update_bn", torch.allclose(before, bn.running_mean), [round(v, 4) for v in bn.running_var.tolist()],
       int(bn.num_batches_tracked))

swa_model.eval()
model.eval()
test = DataLoader(Shapes(12, offset=1), batch_size=12)
tb = next(iter(test))
with torch.no_grad():
    swa_acc = (swa_model(tb["image"]).argmax(1) == tb["label"]).float().mean().item()
    acc = (model(tb["image"]).argmax(1) == tb["label"]).float().mean().item()
report("eval", acc, swa_acc, sorted(swa_model.state_dict())[:2], "n_averaged" in swa_model.state_dict())

# a custom running average: an EMA through avg_fn
ema = AveragedModel(model, avg_fn=lambda avg, cur, n: 0.5 * avg + 0.5 * cur)
for _ in range(2):  # the first update copies, the second averages
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update_parameters(model)
report("ema", round(ema.module.head.bias[0].item() - model.head.bias[0].item(), 6))
