"""LoRA fine-tuning of a frozen pretrained model as loralib / PEFT-style code writes it: a
LoRALinear subclassing nn.Linear with lora_A / lora_B parameters (kaiming_uniform_ with a=sqrt(5),
zeros_), a scaling of alpha / r, lora_dropout, merge/unmerge of the update into the weight on
train()/eval() overrides; injection by walking named_modules and setattr on the parent;
mark_only_lora_as_trainable through requires_grad_(False) and named_parameters filtering,
an optimizer over ``filter(lambda p: p.requires_grad, ...)`` with two param groups of different
learning rates, the trainable-parameter count, gradients that reach only the LoRA tensors,
a lora-only state_dict saved with torch.save and loaded with strict=False (missing/unexpected
keys), and the merged model checked against the unmerged one."""
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class LoRALinear(nn.Linear):
    def __init__(self, in_features, out_features, r=0, lora_alpha=1, lora_dropout=0.0, merge_weights=True, **kwargs):
        nn.Linear.__init__(self, in_features, out_features, **kwargs)
        self.r = r
        self.lora_alpha = lora_alpha
        self.lora_dropout = nn.Dropout(p=lora_dropout) if lora_dropout > 0. else (lambda x: x)
        self.merged = False
        self.merge_weights = merge_weights
        if r > 0:
            self.lora_A = nn.Parameter(self.weight.new_zeros((r, in_features)))
            self.lora_B = nn.Parameter(self.weight.new_zeros((out_features, r)))
            self.scaling = self.lora_alpha / self.r
            self.weight.requires_grad = False
        self.reset_parameters()

    def reset_parameters(self):
        nn.Linear.reset_parameters(self)
        if hasattr(self, 'lora_A'):
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
            nn.init.zeros_(self.lora_B)

    def train(self, mode: bool = True):
        nn.Linear.train(self, mode)
        if mode:
            if self.merge_weights and self.merged:
                if self.r > 0:
                    self.weight.data -= (self.lora_B @ self.lora_A) * self.scaling
                self.merged = False
        else:
            if self.merge_weights and not self.merged:
                if self.r > 0:
                    self.weight.data += (self.lora_B @ self.lora_A) * self.scaling
                self.merged = True
        return self

    def forward(self, x: torch.Tensor):
        if self.r > 0 and not self.merged:
            result = F.linear(x, self.weight, bias=self.bias)
            result += (self.lora_dropout(x) @ self.lora_A.transpose(0, 1) @ self.lora_B.transpose(0, 1)) * self.scaling
            return result
        return F.linear(x, self.weight, bias=self.bias)


def mark_only_lora_as_trainable(model: nn.Module, bias: str = 'none') -> None:
    for n, p in model.named_parameters():
        if 'lora_' not in n:
            p.requires_grad = False
    if bias == 'lora_only':
        for m in model.modules():
            if isinstance(m, LoRALinear) and hasattr(m, 'bias') and m.bias is not None:
                m.bias.requires_grad = True


def lora_state_dict(model: nn.Module, bias: str = 'none'):
    my_state_dict = model.state_dict()
    if bias == 'none':
        return {k: my_state_dict[k] for k in my_state_dict if 'lora_' in k}
    return {k: my_state_dict[k] for k in my_state_dict if 'lora_' in k or 'bias' in k}


def inject_lora(model, target=("q_proj", "v_proj"), r=4, alpha=8):
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and name.split(".")[-1] in target:
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            new = LoRALinear(module.in_features, module.out_features, r=r, lora_alpha=alpha,
                             bias=module.bias is not None)
            new.weight.data.copy_(module.weight.data)
            if module.bias is not None:
                new.bias.data.copy_(module.bias.data)
            setattr(parent, child, new)
    return model


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.o_proj = nn.Linear(d, d)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (proj(x).view(B, T, self.heads, C // self.heads).transpose(1, 2)
                   for proj in (self.q_proj, self.k_proj, self.v_proj))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, C))


class TinyLM(nn.Module):
    def __init__(self, vocab=13, d=16, heads=2, layers=2):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList(nn.ModuleDict({"ln": nn.LayerNorm(d), "attn": Attention(d, heads),
                                                   "mlp": nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))})
                                    for _ in range(layers))
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        x = self.wte(idx)
        for layer in self.layers:
            x = x + layer["attn"](layer["ln"](x))
            x = x + layer["mlp"](x)
        return self.head(x)


torch.manual_seed(0)
rng = np.random.default_rng(0)
model = TinyLM()
share_init(model, "pretrained")
frozen = {k: v.clone() for k, v in model.state_dict().items()}
seq = torch.from_numpy(rng.integers(0, 13, (6, 9))).long()
with torch.no_grad():
    base_logits = model(seq[:, :-1])

torch.manual_seed(1)
inject_lora(model)
share_init(model, "lora")  # the A matrices came from the generators
mark_only_lora_as_trainable(model, bias="lora_only")
model.head.requires_grad_(False)
trainable = [n for n, p in model.named_parameters() if p.requires_grad]
n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
n_total = sum(p.numel() for p in model.parameters())
report("trainable", trainable, n_trainable, n_total, f"{100 * n_trainable / n_total:.2f}%")
with torch.no_grad():
    report("identity at init", (model(seq[:, :-1]) - base_logits).abs().max().item())

lora_a = [p for n, p in model.named_parameters() if p.requires_grad and n.endswith("lora_A")]
others = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith("lora_A")]
optimizer = torch.optim.AdamW([{"params": lora_a, "lr": 1e-2}, {"params": others}], lr=3e-3, weight_decay=0.01)
model.train()
for step in range(5):
    logits = model(seq[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, 13), seq[:, 1:].reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    grads = [n for n, p in model.named_parameters() if p.grad is not None]
    report("step", step, loss.item(), grads == trainable, model.layers[0]["attn"].q_proj.weight.grad is None,
           model.layers[1]["attn"].v_proj.lora_B.grad.abs().sum().item(), [g["lr"] for g in optimizer.param_groups])

unchanged = all(torch.equal(model.state_dict()[k], frozen[k]) for k in frozen if "lora" not in k and not k.endswith("bias"))
report("frozen unchanged", unchanged)

path = os.path.join(TMP, "lora.pt")
torch.save(lora_state_dict(model, bias="none"), path)
saved = torch.load(path)
report("saved", sorted(saved), [list(v.shape) for _, v in sorted(saved.items())])

# merged (eval) equals unmerged (train); then a fresh injected model loads the LoRA weights
with torch.no_grad():
    unmerged = model(seq[:, :-1])
    model.eval()
    merged = model(seq[:, :-1])
report("merge", model.layers[0]["attn"].q_proj.merged, (merged - unmerged).abs().max().item() < 1e-5)
model.train()
report("unmerge", model.layers[0]["attn"].q_proj.merged,
       (model.layers[0]["attn"].q_proj.weight - frozen["layers.0.attn.q_proj.weight"]).abs().max().item() < 1e-6)

fresh = inject_lora(TinyLM())
fresh.load_state_dict(frozen, strict=False)
result = fresh.load_state_dict(saved, strict=False)
report("load", sorted(result.missing_keys)[:3], len(result.missing_keys), result.unexpected_keys)
with torch.no_grad():
    fresh.eval()
    model.eval()
    diff = (fresh(seq[:, :-1]) - model(seq[:, :-1])).abs().max().item()
report("reloaded", diff < 1e-4 or diff)  # biases were trained too and not saved: expect a difference
bad = fresh.load_state_dict({"layers.0.attn.q_proj.lora_A": saved["layers.0.attn.q_proj.lora_A"], "nope": torch.zeros(1)}, strict=False)
report("unexpected", bad.unexpected_keys, len(bad.missing_keys))
try:
    fresh.load_state_dict({"layers.0.attn.q_proj.lora_A": torch.zeros(3, 3)}, strict=False)
except RuntimeError as e:
    report("size mismatch", "size mismatch" in str(e))
