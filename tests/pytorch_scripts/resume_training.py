"""Checkpoint/resume and the optimizer bookkeeping around it, as a long-running training script
(fairseq, timm, lightning-free research code) does it: per-parameter-group settings (no weight
decay on biases and norms, the HF/timm split by name), torch.save of a dict with model,
optimizer, scheduler, epoch and RNG states into a file mid-training, torch.load with
map_location="cpu" and weights_only, resumed into fresh objects whose losses continue exactly
as the uninterrupted run's; optimizer.state_dict() structure (integer param ids, 'state' with
exp_avg / step, 'param_groups' keeping hyperparameters), a state dict loaded into an optimizer
built with a different lr (the saved lr wins), add_param_group for a head added later (and its
defaults filled in), zero_grad(set_to_none=True) leaving .grad None vs set_to_none=False
leaving zeros and the resulting Adam behaviour (a None grad skips a parameter, a zero grad
still moves it through momentum), torch.get_rng_state / set_rng_state and a torch.Generator's
get_state / set_state replaying dropout masks and randn draws, torch.random.fork_rng,
torch.use_deterministic_algorithms, and load_state_dict(strict=False) reporting
missing/unexpected keys when the model grew a head."""
import copy
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.use_deterministic_algorithms(True)


class Model(nn.Module):
    def __init__(self, extra_head=False):
        super().__init__()
        self.embed = nn.Linear(5, 16)
        self.norm = nn.LayerNorm(16)
        self.body = nn.Sequential(nn.Linear(16, 16), nn.GELU(), nn.Dropout(0.0), nn.Linear(16, 16))
        self.head = nn.Linear(16, 3)
        if extra_head:
            self.aux = nn.Linear(16, 2)

    def forward(self, x):
        h = self.norm(F.relu(self.embed(x)))
        h = h + self.body(h)
        return self.head(h)


def param_groups_weight_decay(model, weight_decay=1e-2, no_weight_decay_list=()):
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.endswith(".bias") or name in no_weight_decay_list:
            no_decay.append(param)
        else:
            decay.append(param)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


X = torch.cos(torch.arange(40 * 5, dtype=torch.float32).reshape(40, 5) * 0.91)
Y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()


def batches(epoch):
    for i in range(0, 40, 8):
        j = (i + 8 * epoch) % 40
        yield X[j:j + 8], Y[j:j + 8]


def build(lr=3e-3):
    torch.manual_seed(0)
    model = Model()
    share_init(model)
    optimizer = torch.optim.AdamW(param_groups_weight_decay(model, 0.05), lr=lr, betas=(0.9, 0.95))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.5)
    return model, optimizer, scheduler


def train_epoch(model, optimizer, scheduler, epoch):
    losses = []
    model.train()
    for x, y in batches(epoch):
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(round(loss.item(), 6))
    return losses


model, optimizer, scheduler = build()
report("groups", [len(g["params"]) for g in optimizer.param_groups], [g["weight_decay"] for g in optimizer.param_groups])
full = [train_epoch(model, optimizer, scheduler, e) for e in range(4)]

# the same run, interrupted after epoch 2 and resumed from a file
model, optimizer, scheduler = build()
for e in range(2):
    train_epoch(model, optimizer, scheduler, e)
path = os.path.join(TMP, "checkpoint.pt")
torch.save({"epoch": 2, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state()}, path)
sd = optimizer.state_dict()
report("opt_state", sorted(sd), sorted(sd["state"])[:3], sorted(sd["state"][0]), sd["state"][0]["step"].item(),
       sorted(k for k in sd["param_groups"][1] if k != "params"), sd["param_groups"][1]["params"],
       sd["param_groups"][0]["lr"])

ckpt = torch.load(path, map_location="cpu", weights_only=True)
model2, optimizer2, scheduler2 = build(lr=1.0)  # the saved lr and schedule win
model2.load_state_dict(ckpt["model"])
optimizer2.load_state_dict(ckpt["optimizer"])
scheduler2.load_state_dict(ckpt["scheduler"])
torch.set_rng_state(ckpt["rng"])
report("resumed_lr", optimizer2.param_groups[0]["lr"], scheduler2.last_epoch, ckpt["epoch"],
       optimizer2.state_dict()["state"][3]["exp_avg"].shape == optimizer.state_dict()["state"][3]["exp_avg"].shape)
resumed = [train_epoch(model2, optimizer2, scheduler2, e) for e in range(ckpt["epoch"], 4)]
report("resume", full[2:], resumed, full[2:] == resumed)

# --- a head added later gets its own param group
aux = nn.Linear(16, 2)
optimizer2.add_param_group({"params": aux.parameters(), "lr": 1e-3})
report("add_group", len(optimizer2.param_groups), optimizer2.param_groups[-1]["betas"], optimizer2.param_groups[-1]["weight_decay"],
       optimizer2.param_groups[-1]["lr"])
try:
    optimizer2.add_param_group({"params": model2.head.weight})
    report("dup_group", "accepted")
except ValueError as e:
    report("dup_group", "ValueError", "more than one parameter group" in str(e))

# --- zero_grad: None skips the parameter, zeros still move it through Adam's momentum
p = nn.Parameter(torch.ones(3))
q = nn.Parameter(torch.ones(3))
opt = torch.optim.Adam([p, q], lr=0.1)
(p * torch.tensor([1.0, -2.0, 3.0])).sum().backward()
(q * torch.tensor([1.0, -2.0, 3.0])).sum().backward()
opt.step()
opt.zero_grad(set_to_none=True)
report("none_grad", p.grad is None, q.grad is None)
q.grad = torch.zeros(3)  # only q has a (zero) gradient
before_p, before_q = p.detach().clone(), q.detach().clone()
opt.step()
report("zero_vs_none", torch.equal(p, before_p), [round(v, 6) for v in (q - before_q).tolist()],
       int(opt.state[p]["step"].item()), int(opt.state[q]["step"].item()))
opt.zero_grad(set_to_none=False)
report("zeros_kept", q.grad.tolist(), p.grad is None)

# --- RNG: global state and a Generator's state replay draws and dropout masks
torch.manual_seed(1234)
state = torch.get_rng_state()
a = torch.randn(4)
m1 = F.dropout(torch.ones(8), 0.5, training=True)
torch.set_rng_state(state)
b = torch.randn(4)
m2 = F.dropout(torch.ones(8), 0.5, training=True)
gen = torch.Generator().manual_seed(7)
gstate = gen.get_state()
r1 = torch.rand(5, generator=gen)
gen.set_state(gstate)
r2 = torch.rand(5, generator=gen)
with torch.random.fork_rng():
    torch.randn(100)
c = torch.randn(4)
torch.set_rng_state(state)
torch.randn(4)
F.dropout(torch.ones(8), 0.5, training=True)
d = torch.randn(4)
report("rng", torch.equal(a, b), torch.equal(m1, m2), set(m1.tolist()) <= {0.0, 2.0}, torch.equal(r1, r2),
       torch.equal(c, d), gen.initial_seed(), torch.initial_seed(), torch.are_deterministic_algorithms_enabled())

# --- a model that grew a head: strict=False reports the difference
grown = Model(extra_head=True)
result = grown.load_state_dict(ckpt["model"], strict=False)
report("strict_false", result.missing_keys, result.unexpected_keys)
try:
    grown.load_state_dict(ckpt["model"])
except RuntimeError as e:
    report("strict_true", "RuntimeError", "Missing key(s)" in str(e), "aux.weight" in str(e))
wrong = copy.deepcopy(ckpt["model"])
wrong["head.weight"] = torch.zeros(4, 16)
try:
    Model().load_state_dict(wrong)
except RuntimeError as e:
    report("mis_shaped", "RuntimeError", "size mismatch for head.weight" in str(e))
