"""A nanoGPT-style GPT written once in PyTorch spelling (after karpathy/nanoGPT's model.py:
the tril mask buffer path, weight tying, scaled c_proj init, AdamW parameter groups, topk +
multinomial sampling) runs on tinymm and on PyTorch, given the library as ``torch``, with the
same weights; logits, loss, every gradient and the parameters after AdamW steps must match."""
import math
from dataclasses import dataclass

import numpy as np
import pytest

import tinymm
from helpers import TORCH_REASON, torch as real_torch


@dataclass
class GPTConfig:
    block_size: int = 16
    vocab_size: int = 37
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 16
    dropout: float = 0.0
    bias: bool = True


def build_gpt(torch, config):
    """The model file: every line is what nanoGPT writes for PyTorch; ``torch`` is either
    library."""
    nn = torch.nn
    F = torch.nn.functional

    class LayerNorm(nn.Module):
        def __init__(self, ndim, bias):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(ndim))
            self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

        def forward(self, input):
            return F.layer_norm(input, self.weight.shape, self.weight, self.bias, 1e-5)

    class CausalSelfAttention(nn.Module):
        def __init__(self, config):
            super().__init__()
            assert config.n_embd % config.n_head == 0
            self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
            self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
            self.attn_dropout = nn.Dropout(config.dropout)
            self.resid_dropout = nn.Dropout(config.dropout)
            self.n_head = config.n_head
            self.n_embd = config.n_embd
            self.dropout = config.dropout
            # the slow path, with the causal mask as a buffer (nanoGPT's non-flash branch)
            self.register_buffer("bias", torch.tril(torch.ones(config.block_size, config.block_size))
                                 .view(1, 1, config.block_size, config.block_size))

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
            k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
            q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
            v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)
            att = self.attn_dropout(att)
            y = att @ v  # (B, nh, T, T) x (B, nh, T, hs) -> (B, nh, T, hs)
            y = y.transpose(1, 2).contiguous().view(B, T, C)
            return self.resid_dropout(self.c_proj(y))

    class MLP(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
            self.gelu = nn.GELU()
            self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
            self.dropout = nn.Dropout(config.dropout)

        def forward(self, x):
            return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))

    class Block(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
            self.attn = CausalSelfAttention(config)
            self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
            self.mlp = MLP(config)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            x = x + self.mlp(self.ln_2(x))
            return x

    class GPT(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=LayerNorm(config.n_embd, bias=config.bias),
            ))
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
            self.transformer.wte.weight = self.lm_head.weight  # weight tying
            self.apply(self._init_weights)
            for pn, p in self.named_parameters():
                if pn.endswith("c_proj.weight"):
                    torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

        def get_num_params(self, non_embedding=True):
            n_params = sum(p.numel() for p in self.parameters())
            if non_embedding:
                n_params -= self.transformer.wpe.weight.numel()
            return n_params

        def _init_weights(self, module):
            if isinstance(module, nn.Linear):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if module.bias is not None:
                    torch.nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

        def forward(self, idx, targets=None):
            device = idx.device
            b, t = idx.size()
            assert t <= self.config.block_size, f"Cannot forward sequence of length {t}"
            pos = torch.arange(0, t, dtype=torch.long, device=device)  # shape (t)
            tok_emb = self.transformer.wte(idx)  # (b, t, n_embd)
            pos_emb = self.transformer.wpe(pos)  # (t, n_embd)
            x = self.transformer.drop(tok_emb + pos_emb)
            for block in self.transformer.h:
                x = block(x)
            x = self.transformer.ln_f(x)
            if targets is not None:
                logits = self.lm_head(x)
                loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
            else:
                logits = self.lm_head(x[:, [-1], :])  # only the last position
                loss = None
            return logits, loss

        def configure_optimizers(self, weight_decay, learning_rate, betas):
            param_dict = {pn: p for pn, p in self.named_parameters()}
            param_dict = {pn: p for pn, p in param_dict.items() if p.requires_grad}
            decay_params = [p for n, p in param_dict.items() if p.dim() >= 2]
            nodecay_params = [p for n, p in param_dict.items() if p.dim() < 2]
            optim_groups = [
                {"params": decay_params, "weight_decay": weight_decay},
                {"params": nodecay_params, "weight_decay": 0.0},
            ]
            return torch.optim.AdamW(optim_groups, lr=learning_rate, betas=betas)

        @torch.no_grad()
        def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
            for _ in range(max_new_tokens):
                idx_cond = idx if idx.size(1) <= self.config.block_size else idx[:, -self.config.block_size:]
                logits, _ = self(idx_cond)
                logits = logits[:, -1, :] / temperature
                if top_k is not None:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = -float("Inf")
                probs = F.softmax(logits, dim=-1)
                idx_next = torch.multinomial(probs, num_samples=1)
                idx = torch.cat((idx, idx_next), dim=1)
            return idx

    return GPT(config)


pytestmark = pytest.mark.skipif(real_torch is None, reason=TORCH_REASON)


def _twins(config=GPTConfig()):
    real_torch.manual_seed(0)
    tinymm.manual_seed(0)
    theirs = build_gpt(real_torch, config)
    ours = build_gpt(tinymm, config)
    ours_params = dict(ours.named_parameters())
    their_params = dict(theirs.named_parameters())
    assert sorted(ours_params) == sorted(their_params)  # tying dedups lm_head.weight in both
    with tinymm.no_grad():
        for name, p in their_params.items():
            ours_params[name].copy_(tinymm.tensor(p.detach().numpy()))
    assert ours.lm_head.weight is ours.transformer.wte.weight
    return ours, theirs


def _batch(config, seed=1, b=3, t=12):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, config.vocab_size, size=(b, t))
    y = rng.integers(0, config.vocab_size, size=(b, t))
    y[0, :2] = -1  # ignored positions (nanoGPT's ignore_index=-1)
    return x, y


def test_gpt_logits_loss_and_gradients_match_pytorch():
    config = GPTConfig()
    ours, theirs = _twins(config)
    assert ours.get_num_params() == theirs.get_num_params()
    x, y = _batch(config)
    logits, loss = ours(tinymm.tensor(x), tinymm.tensor(y))
    tlogits, tloss = theirs(real_torch.tensor(x), real_torch.tensor(y))
    np.testing.assert_allclose(logits.detach().numpy(), tlogits.detach().numpy(), atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
    loss.backward()
    tloss.backward()
    their_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), their_params[name].grad.numpy(), atol=2e-6, rtol=1e-3, err_msg=name)
    # inference path: only the last position's logits
    last, none = ours(tinymm.tensor(x))
    tlast, _ = theirs(real_torch.tensor(x))
    assert none is None and last.shape == (3, 1, config.vocab_size)
    np.testing.assert_allclose(last.detach().numpy(), tlast.detach().numpy(), atol=1e-5, rtol=1e-4)


def test_gpt_adamw_param_groups_train_in_step_with_pytorch():
    config = GPTConfig()
    ours, theirs = _twins(config)
    opt = ours.configure_optimizers(weight_decay=0.1, learning_rate=3e-3, betas=(0.9, 0.95))
    topt = theirs.configure_optimizers(weight_decay=0.1, learning_rate=3e-3, betas=(0.9, 0.95))
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    for step in range(5):
        x, y = _batch(config, seed=10 + step)
        _, loss = ours(tinymm.tensor(x), tinymm.tensor(y))
        _, tloss = theirs(real_torch.tensor(x), real_torch.tensor(y))
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-4, err_msg=f"step {step}")
        opt.zero_grad(set_to_none=True)
        topt.zero_grad(set_to_none=True)
        loss.backward()
        tloss.backward()
        tinymm.nn.utils.clip_grad_norm_(ours.parameters(), 1.0)
        real_torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
        opt.step()
        topt.step()
    their_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), their_params[name].detach().numpy(), atol=1e-5, rtol=1e-4, err_msg=name)


def test_gpt_generate_with_topk_and_multinomial():
    config = GPTConfig()
    ours, theirs = _twins(config)
    start = np.array([[1, 2, 3], [4, 5, 6]])
    # top_k=1 makes multinomial pick the argmax: both libraries must produce the same tokens,
    # also once the sequence outgrows block_size and is cropped.
    greedy = ours.generate(tinymm.tensor(start), 16, top_k=1).detach().numpy()
    tgreedy = theirs.generate(real_torch.tensor(start), 16, top_k=1).detach().numpy()
    np.testing.assert_array_equal(greedy, tgreedy)
    tinymm.manual_seed(5)
    sampled = ours.generate(tinymm.tensor(start), 6, temperature=0.8, top_k=5)
    tinymm.manual_seed(5)
    again = ours.generate(tinymm.tensor(start), 6, temperature=0.8, top_k=5)
    assert sampled.shape == (2, 9) and sampled.dtype == np.int64
    np.testing.assert_array_equal(sampled.detach().numpy(), again.detach().numpy())
    # each sampled token is among the 5 most likely under the model at that step
    for i in range(3, 9):
        logits, _ = ours(sampled[:, :i])
        top5 = logits[:, -1, :].topk(5).indices.detach().numpy()
        assert all(sampled.detach().numpy()[r, i] in top5[r] for r in range(2))
