"""A Mixture-of-Experts transformer block as Switch/Mixtral-style code writes it: pre-norm
causal self-attention, then a router Linear whose logits go through softmax and topk, the
chosen gates renormalised, tokens grouped per expert with torch.where / nonzero and the expert
outputs put back with index_add_ (and, once more, with scatter_add_ over the token index),
the Switch load-balancing loss (fraction of tokens per expert times mean router probability,
counted with one_hot and bincount), a router z-loss with logsumexp, expert capacity counted
with cumsum, all trained with AdamW under a cosine LambdaLR on a tiny copy task."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Expert(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.w1 = nn.Linear(d, hidden, bias=False)
        self.w3 = nn.Linear(d, hidden, bias=False)
        self.w2 = nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))  # SwiGLU


class MoE(nn.Module):
    def __init__(self, d, hidden, num_experts=4, top_k=2, use_scatter=False):
        super().__init__()
        self.num_experts = num_experts
        self.top_k = top_k
        self.use_scatter = use_scatter
        self.gate = nn.Linear(d, num_experts, bias=False)
        self.experts = nn.ModuleList([Expert(d, hidden) for _ in range(num_experts)])

    def forward(self, x):
        B, T, C = x.shape
        x_flat = x.view(-1, C)                                        # (N, C)
        router_logits = self.gate(x_flat)                             # (N, E)
        routing_weights = F.softmax(router_logits, dim=1, dtype=torch.float)
        topk_weights, topk_idx = torch.topk(routing_weights, self.top_k, dim=-1)
        topk_weights /= topk_weights.sum(dim=-1, keepdim=True)
        topk_weights = topk_weights.to(x.dtype)

        final = torch.zeros((B * T, C), dtype=x.dtype, device=x.device)
        expert_mask = F.one_hot(topk_idx, num_classes=self.num_experts).permute(2, 1, 0)  # (E, k, N)
        for e, expert in enumerate(self.experts):
            idx, top_x = torch.where(expert_mask[e])
            if top_x.numel() == 0:
                continue
            current = x_flat[None, top_x].reshape(-1, C)
            out = expert(current) * topk_weights[top_x, idx, None]
            if self.use_scatter:
                final = final.scatter_add(0, top_x[:, None].expand(-1, C), out)
            else:
                final.index_add_(0, top_x, out.to(x.dtype))

        # Switch Transformer load balancing: E * sum_e f_e * P_e
        tokens_per_expert = F.one_hot(topk_idx[:, 0], self.num_experts).float().mean(0)
        prob_per_expert = routing_weights.mean(0)
        aux = self.num_experts * torch.sum(tokens_per_expert * prob_per_expert)
        z_loss = torch.logsumexp(router_logits, dim=-1).pow(2).mean()
        counts = torch.bincount(topk_idx.flatten(), minlength=self.num_experts)
        return final.view(B, T, C), aux, z_loss, counts


class Block(nn.Module):
    def __init__(self, d, n_head, hidden, **moe):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, n_head, batch_first=True)
        self.ln2 = nn.LayerNorm(d)
        self.moe = MoE(d, hidden, **moe)

    def forward(self, x):
        T = x.size(1)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        h = self.ln1(x)
        a, _ = self.attn(h, h, h, attn_mask=mask, need_weights=False)
        x = x + a
        m, aux, z, counts = self.moe(self.ln2(x))
        return x + m, aux, z, counts


class TinyMoELM(nn.Module):
    def __init__(self, vocab=11, d=16, n_head=2, hidden=24, block=8, **moe):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(1, block, d))
        self.blocks = nn.ModuleList([Block(d, n_head, hidden, **moe) for _ in range(2)])
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, idx, targets=None):
        x = self.tok(idx) + self.pos[:, :idx.size(1)]
        aux_total, z_total, counts = 0.0, 0.0, []
        for blk in self.blocks:
            x, aux, z, c = blk(x)
            aux_total = aux_total + aux
            z_total = z_total + z
            counts.append(c)
        logits = self.head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss, aux_total, z_total, torch.stack(counts)


torch.manual_seed(0)
rng = np.random.default_rng(1)
data = torch.from_numpy(rng.integers(0, 11, (8, 9))).long()
for use_scatter in (False, True):
    model = TinyMoELM(use_scatter=use_scatter)
    share_init(model, f"moe{int(use_scatter)}")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}], lr=3e-3)
    steps = 5
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    for step in range(steps):
        x, y = data[:, :-1], data[:, 1:]
        logits, loss, aux, z, counts = model(x, y)
        total = loss + 0.01 * aux + 1e-3 * z
        opt.zero_grad(set_to_none=True)
        total.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        report(use_scatter, step, loss.item(), aux.item(), z.item(), counts.tolist(), gnorm.item(),
               sched.get_last_lr()[0], model.blocks[0].moe.gate.weight.grad.abs().sum().item())

    model.eval()
    with torch.no_grad():
        logits, _, _, _, counts = model(data[:2, :-1])
        probs = logits[:, -1].softmax(-1)
        top = probs.topk(3, dim=-1)
    report("eval", use_scatter, top.indices.tolist(), top.values.tolist(), counts.sum().item())

# expert capacity: position of each token in its expert's queue through cumsum over a one_hot
idx = torch.tensor([0, 2, 0, 1, 0, 2, 2, 3])
mask = F.one_hot(idx, 4)
position_in_expert = torch.cumsum(mask, dim=0) * mask
keep = (position_in_expert.sum(-1) <= 2)
report("capacity", position_in_expert.sum(-1).tolist(), keep.tolist(), mask.dtype == torch.int64,
       torch.nonzero(~keep).flatten().tolist(), keep.long().sum().item())
