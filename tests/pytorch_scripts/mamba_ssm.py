"""A Mamba language model as mamba-minimal and mamba_ssm's reference paths write it (einops spelled
out with view/transpose): in_proj split into x and the gate z, a causal depthwise F.conv1d
(groups=d_inner, padding=d_conv - 1, sliced back to L), x_proj split into delta / B / C with
torch.split, softplus(dt_proj) with the inverse-softplus bias init (torch.expm1, torch.log,
torch.rand clamped), A = -exp(A_log) from a repeated arange, the discretisation
exp(einsum('bld,dn->bldn')) and the sequential selective scan with torch.stack, the same scan in
parallel form through cumsum of log-decays, RMSNorm, tied embeddings, a few AdamW steps with
_no_weight_decay parameters, and recurrent step-by-step inference with a conv state rolled by
torch.roll and an ssm state, checked against the full-sequence forward."""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ModelArgs:
    d_model: int = 16
    n_layer: int = 2
    vocab_size: int = 21
    d_state: int = 4
    expand: int = 2
    dt_rank: int = 2
    d_conv: int = 3
    conv_bias: bool = True
    bias: bool = False

    @property
    def d_inner(self):
        return self.expand * self.d_model


class RMSNorm(nn.Module):
    def __init__(self, d_model: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def selective_scan(u, delta, A, B, C, D):
    """u, delta: (b, l, d_in); A: (d_in, n); B, C: (b, l, n); D: (d_in,) -> (b, l, d_in)"""
    (b, l, d_in) = u.shape
    n = A.shape[1]
    deltaA = torch.exp(torch.einsum('bld,dn->bldn', delta, A))
    deltaB_u = torch.einsum('bld,bln,bld->bldn', delta, B, u)
    x = torch.zeros((b, d_in, n), device=deltaA.device)
    ys = []
    for i in range(l):
        x = deltaA[:, i] * x + deltaB_u[:, i]
        y = torch.einsum('bdn,bn->bd', x, C[:, i, :])
        ys.append(y)
    y = torch.stack(ys, dim=1)  # shape (b, l, d_in)
    return y + u * D


def selective_scan_parallel(u, delta, A, B, C, D):
    """the same recurrence unrolled: x_t = sum_s exp(sum_{s<r<=t} delta_r A) delta_s B_s u_s"""
    dA = torch.einsum('bld,dn->bldn', delta, A)  # log-decays, <= 0
    cum = torch.cumsum(dA, dim=1)  # (b, l, d, n)
    # decay from step s to step t: exp(cum_t - cum_s), only for s <= t
    seg = cum.unsqueeze(2) - cum.unsqueeze(1)  # (b, t, s, d, n)
    l = u.shape[1]
    causal = torch.tril(torch.ones(l, l, dtype=torch.bool))[None, :, :, None, None]
    decay = torch.where(causal, seg, torch.full_like(seg, -float("inf"))).exp()
    dBu = torch.einsum('bld,bln,bld->bldn', delta, B, u)
    x = (decay * dBu.unsqueeze(1)).sum(2)  # (b, t, d, n)
    y = torch.einsum('bldn,bln->bld', x, C)
    return y + u * D


class MambaBlock(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.in_proj = nn.Linear(args.d_model, args.d_inner * 2, bias=args.bias)
        self.conv1d = nn.Conv1d(in_channels=args.d_inner, out_channels=args.d_inner, bias=args.conv_bias,
                                kernel_size=args.d_conv, groups=args.d_inner, padding=args.d_conv - 1)
        self.x_proj = nn.Linear(args.d_inner, args.dt_rank + args.d_state * 2, bias=False)
        self.dt_proj = nn.Linear(args.dt_rank, args.d_inner, bias=True)
        dt_init_std = args.dt_rank ** -0.5
        nn.init.uniform_(self.dt_proj.weight, -dt_init_std, dt_init_std)
        dt = torch.exp(torch.rand(args.d_inner) * (math.log(0.1) - math.log(0.001)) + math.log(0.001)).clamp(min=1e-4)
        inv_dt = dt + torch.log(-torch.expm1(-dt))  # inverse of softplus
        with torch.no_grad():
            self.dt_proj.bias.copy_(inv_dt)
        self.dt_proj.bias._no_reinit = True
        A = torch.arange(1, args.d_state + 1, dtype=torch.float32).repeat(args.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(A))
        self.A_log._no_weight_decay = True
        self.D = nn.Parameter(torch.ones(args.d_inner))
        self.D._no_weight_decay = True
        self.out_proj = nn.Linear(args.d_inner, args.d_model, bias=args.bias)

    def ssm_params(self, x):
        A = -torch.exp(self.A_log.float())  # (d_in, n)
        x_dbl = self.x_proj(x)  # (b, l, dt_rank + 2 * n)
        delta, B, C = x_dbl.split(split_size=[self.args.dt_rank, self.args.d_state, self.args.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(delta))  # (b, l, d_in)
        return A, delta, B, C

    def forward(self, x, parallel=False):
        (b, l, d) = x.shape
        x_and_res = self.in_proj(x)  # shape (b, l, 2 * d_in)
        (x, res) = x_and_res.split(split_size=[self.args.d_inner, self.args.d_inner], dim=-1)
        x = x.transpose(1, 2)  # b l d_in -> b d_in l
        x = self.conv1d(x)[:, :, :l]
        x = x.transpose(1, 2)
        x = F.silu(x)
        A, delta, B, C = self.ssm_params(x)
        scan = selective_scan_parallel if parallel else selective_scan
        y = scan(x, delta, A, B, C, self.D.float())
        y = y * F.silu(res)
        return self.out_proj(y)

    def step(self, x, conv_state, ssm_state):
        """x: (b, d_model); conv_state: (b, d_in, d_conv); ssm_state: (b, d_in, n)"""
        xz = self.in_proj(x)
        x, z = xz.chunk(2, dim=-1)  # (b, d_in)
        conv_state.copy_(torch.roll(conv_state, shifts=-1, dims=-1))
        conv_state[:, :, -1] = x
        x = torch.sum(conv_state * self.conv1d.weight.squeeze(1), dim=-1) + self.conv1d.bias
        x = F.silu(x)
        A, delta, B, C = self.ssm_params(x)
        dA = torch.exp(torch.einsum("bd,dn->bdn", delta, A))
        dB = torch.einsum("bd,bn->bdn", delta, B)
        ssm_state.copy_(ssm_state * dA + x.unsqueeze(-1) * dB)
        y = torch.einsum("bdn,bn->bd", ssm_state, C) + self.D * x
        y = y * F.silu(z)
        return self.out_proj(y)


class ResidualBlock(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.mixer = MambaBlock(args)
        self.norm = RMSNorm(args.d_model)

    def forward(self, x, parallel=False):
        return self.mixer(self.norm(x), parallel) + x


class Mamba(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.embedding = nn.Embedding(args.vocab_size, args.d_model)
        self.layers = nn.ModuleList([ResidualBlock(args) for _ in range(args.n_layer)])
        self.norm_f = RMSNorm(args.d_model)
        self.lm_head = nn.Linear(args.d_model, args.vocab_size, bias=False)
        self.lm_head.weight = self.embedding.weight  # Tie output projection to embedding weights.

    def forward(self, input_ids, parallel=False):
        x = self.embedding(input_ids)
        for layer in self.layers:
            x = layer(x, parallel)
        x = self.norm_f(x)
        return self.lm_head(x)

    @torch.no_grad()
    def step(self, input_ids, states):
        x = self.embedding(input_ids)
        for layer, (conv_state, ssm_state) in zip(self.layers, states):
            x = layer.mixer.step(layer.norm(x), conv_state, ssm_state) + x
        return self.lm_head(self.norm_f(x))

    def allocate_inference_cache(self, batch_size):
        a = self.args
        return [(torch.zeros(batch_size, a.d_inner, a.d_conv), torch.zeros(batch_size, a.d_inner, a.d_state))
                for _ in self.layers]


torch.manual_seed(0)
args = ModelArgs()
model = Mamba(args)
share_init(model)
block = model.layers[0].mixer
report("init", tuple(block.A_log.shape), torch.allclose(F.softplus(block.dt_proj.bias), block.dt_proj.bias.exp().log1p()),
       sorted(n for n, p in model.named_parameters() if getattr(p, "_no_weight_decay", False)))

ids = torch.tensor([[(5 * i + j) % 21 for i in range(10)] for j in range(3)])
with torch.no_grad():
    seq = model(ids)
    par = model(ids, parallel=True)
report("scan forms agree", torch.allclose(seq, par, atol=1e-5), tuple(seq.shape), round(seq.abs().mean().item(), 5))

decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and not getattr(p, "_no_weight_decay", False)]
no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or getattr(p, "_no_weight_decay", False)]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=5e-3)
for step in range(5):
    logits = model(ids[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, args.vocab_size), ids[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    report(f"step {step}", loss.item(), gn.item(), block.A_log.grad.abs().sum().item())

# recurrent inference reproduces the full forward, token by token
model.eval()
states = model.allocate_inference_cache(3)
steps = [model.step(ids[:, t], states) for t in range(ids.shape[1])]
with torch.no_grad():
    full = model(ids)
report("recurrent == full", torch.allclose(torch.stack(steps, dim=1), full, atol=1e-5),
       round(states[0][1].abs().sum().item(), 4))

# greedy continuation through the recurrent path
states = model.allocate_inference_cache(1)
prompt = ids[:1, :4]
for t in range(prompt.shape[1]):
    logits = model.step(prompt[:, t], states)
out = prompt.tolist()[0]
for _ in range(6):
    nxt = logits.argmax(-1)
    out.append(nxt.item())
    logits = model.step(nxt, states)
report("greedy", out)
