"""The mixed-precision / compile boilerplate a modern training script wraps around its model, on
a CPU box: torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_amp) with use_amp off (as
a context manager, stacked with torch.cuda.amp.autocast(enabled=False), and as a decorator),
is_autocast_enabled, bfloat16 named as a dtype, torch.cuda.amp.GradScaler(enabled=False) and torch.amp.GradScaler("cpu",
enabled=False) as no-op pass-throughs (scale returns the loss itself, step runs the optimizer,
get_scale is 1.0, state_dict is empty), torch.compile(model) (and mode=/fullgraph= keywords,
_orig_mod, the compiled module's state_dict keys with their _orig_mod. prefix, accelerate's
is_compiled_module via torch._dynamo.eval_frame.OptimizedModule), torch.jit.script
on a helper function and a module, torch.utils.checkpoint.checkpoint(use_reentrant=False) with a
keyword argument and with preserve_rng_state under dropout, gradient accumulation over micro-
batches with loss / accum, clip_grad_norm_ (error_if_nonfinite, foreach, norm_type inf) and
clip_grad_value_, zero_grad(set_to_none=False) keeping zero tensors vs set_to_none=True, and
torch.backends flags scripts set up front (cudnn.benchmark, matmul.allow_tf32,
set_float32_matmul_precision)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

torch.backends.cudnn.benchmark = True
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
torch.set_float32_matmul_precision("high")


@torch.jit.script
def fused_gelu(x):
    return x * 0.5 * (1.0 + torch.erf(x / 1.41421))


class Block(nn.Module):
    def __init__(self, d, p=0.0):
        super().__init__()
        self.ln = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 2 * d)
        self.fc2 = nn.Linear(2 * d, d)
        self.drop = nn.Dropout(p)

    def forward(self, x, scale: float = 1.0):
        return x + scale * self.drop(self.fc2(fused_gelu(self.fc1(self.ln(x)))))


class Net(nn.Module):
    def __init__(self, d=12, n_cls=3, depth=3, grad_ckpt=True):
        super().__init__()
        self.inp = nn.Linear(6, d)
        self.blocks = nn.ModuleList([Block(d) for _ in range(depth)])
        self.head = nn.Linear(d, n_cls)
        self.grad_ckpt = grad_ckpt

    def forward(self, x):
        x = self.inp(x)
        for blk in self.blocks:
            if self.grad_ckpt and self.training:
                x = checkpoint(blk, x, use_reentrant=False, scale=0.5)
            else:
                x = blk(x, scale=0.5)
        return self.head(x.mean(1))


torch.manual_seed(0)
model = Net()
share_init(model)
# data from a fixed formula, so both libraries see the same batches
base = torch.arange(24 * 5 * 6, dtype=torch.float32).reshape(24, 5, 6)
xs = torch.sin(base * 0.37) + 0.1 * torch.cos(base * 1.3)
ys = (xs[:, :, 0].sum(1) > 0).long() + (xs[:, :, 1].sum(1) > 1).long()

# --- autocast as scripts guard it: on only when asked for (bfloat16 on the CPU is opt-in here)
use_amp = False
amp_dtype = torch.bfloat16 if use_amp else torch.float32
with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=use_amp):
    h = model.inp(xs[:2])
    s = h.float().sum()
    report("autocast", h.dtype == torch.float32, s.dtype == torch.float32, torch.is_autocast_enabled(), torch.is_autocast_enabled("cpu"),
           amp_dtype == torch.float32, torch.bfloat16.is_floating_point, torch.finfo(torch.bfloat16).eps)
    with torch.autocast(device_type="cpu", enabled=False):
        h32 = model.inp(xs[:2])
        report("autocast_off", h32.dtype == torch.float32, torch.equal(h, h32))
with torch.amp.autocast("cpu", enabled=False), torch.cuda.amp.autocast(enabled=False):
    report("autocast_stack", torch.is_autocast_enabled("cpu"), model.inp(xs[:2]).dtype == torch.float32)


@torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_amp)
def amp_logits(m, x):
    return m(x)


model.eval()
out_amp = amp_logits(model, xs[:4])
out_fp32 = model(xs[:4])
report("decorated", out_amp.dtype == torch.float32, torch.equal(out_amp, out_fp32))
model.train()

# --- disabled scalers are pass-throughs
for scaler in (torch.cuda.amp.GradScaler(enabled=False), torch.amp.GradScaler("cpu", enabled=False)):
    loss = model(xs[:4]).logsumexp(1).mean()
    report("scaler_off", scaler.is_enabled(), scaler.scale(loss) is loss, scaler.get_scale(), scaler.state_dict())
    model.zero_grad()

# --- compile and jit
compiled = torch.compile(model, backend="eager")
report("compile", type(compiled._orig_mod).__name__, compiled._orig_mod is model,
       sorted(compiled.state_dict())[:3], torch.allclose(compiled(xs[:3]), model(xs[:3])))
compiled.eval()
report("compile_mirror", model.training, compiled.training, compiled.grad_ckpt, len(list(compiled.parameters())),
       [n for n, _ in compiled.named_children()], list(compiled.state_dict())[-1])
compiled.train()
compiled.grad_ckpt = True  # written through to the original module
# a checkpoint saved from the compiled model, loaded nanoGPT-style into a plain one
state_dict = {k: v.clone() for k, v in compiled.state_dict().items()}
unwanted_prefix = "_orig_mod."
for k, v in list(state_dict.items()):
    if k.startswith(unwanted_prefix):
        state_dict[k[len(unwanted_prefix):]] = state_dict.pop(k)
plain = Net()
report("compile_ckpt", str(plain.load_state_dict(state_dict)), model.grad_ckpt,
       torch.compile(plain).load_state_dict(compiled.state_dict()).missing_keys)
raw_model = compiled._orig_mod if hasattr(compiled, "_orig_mod") else compiled


def is_compiled_module(module):
    """Check whether the module was compiled with torch.compile() (accelerate's helper)."""
    if not hasattr(torch, "_dynamo"):
        return False
    return isinstance(module, torch._dynamo.eval_frame.OptimizedModule)


report("unwrap", raw_model is model, is_compiled_module(compiled), is_compiled_module(model))
scripted_block = torch.jit.script(Block(12))
report("jit", torch.allclose(fused_gelu(torch.linspace(-2, 2, 5)), F.gelu(torch.linspace(-2, 2, 5)), atol=1e-4),
       scripted_block(torch.ones(2, 12)).shape == torch.Size([2, 12]))

# --- the training loop: accumulation, clipping, autocast and the scaler off
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
scaler = torch.amp.GradScaler("cpu", enabled=use_amp)
accum = 3
micro = 4
step = 0
for epoch in range(2):
    optimizer.zero_grad(set_to_none=True)
    for i in range(0, 24, micro):
        xb, yb = xs[i:i + micro], ys[i:i + micro]
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=use_amp):
            logits = compiled(xb)
            loss = F.cross_entropy(logits, yb)
        scaler.scale(loss / accum).backward()
        if (i // micro + 1) % accum == 0:
            scaler.unscale_(optimizer)
            if step % 2 == 0:
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5, error_if_nonfinite=True, foreach=True)
            else:
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.2, norm_type=float("inf"))
            torch.nn.utils.clip_grad_value_(model.head.parameters(), clip_value=0.05)
            head_max = max(p.grad.abs().max().item() for p in model.head.parameters())
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=(step % 2 == 0))
            report("step", epoch, step, loss.item(), norm.item(), head_max <= 0.05 + 1e-7,
                   [p.grad is None for p in model.head.parameters()],
                   [None if p.grad is None else p.grad.abs().sum().item() for p in model.head.parameters()])
            step += 1

# --- a non-finite norm is an error when asked for
model.zero_grad()
F.cross_entropy(model(xs[:4]), ys[:4]).backward()
model.head.weight.grad[0, 0] = float("nan")
try:
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, error_if_nonfinite=True)
    report("nonfinite", "accepted")
except RuntimeError as e:
    report("nonfinite", "RuntimeError", "non-finite" in str(e))
report("nonfinite_default", math.isnan(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).item()))

# --- checkpointing: identical gradients, and dropout replayed with the same mask
model.zero_grad()
model.blocks[1].drop.p = 0.3
grads = []
for ckpt in (True, False):
    model.grad_ckpt = ckpt
    model.zero_grad()
    torch.manual_seed(123)
    F.cross_entropy(model(xs[:6]), ys[:6]).backward()
    grads.append([p.grad.clone() for p in model.parameters()])
report("ckpt_same", all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads)))

model.eval()
with torch.no_grad():
    pred = model(xs).argmax(1)
report("final", (pred == ys).float().mean().item(), pred.tolist())
