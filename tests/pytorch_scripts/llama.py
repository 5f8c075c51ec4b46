"""A LLaMA-style decoder as Meta's llama/model.py and its many forks write it, shrunk: RMSNorm in
float32 with .type_as, rotary embeddings by precompute_freqs_cis (torch.outer, torch.polar) applied
through view_as_complex / view_as_real, grouped-query attention with repeat_kv (expand + reshape)
and the repeat_interleave form, a KV cache filled by slice assignment, the cos/sin (rotate_half)
form of RoPE checked against the complex one, F.scaled_dot_product_attention with is_causal, with
a boolean mask and with an additive float mask (torch.triu of -inf), SwiGLU with
multiple_of rounding, a short training run, greedy decoding with the cache compared to decoding
without it, and top-p sampling (sort, cumsum, scatter back, torch.multinomial under a seeded
torch.Generator) checked by what it may draw."""
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ModelArgs:
    dim: int = 32
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: Optional[int] = 2
    vocab_size: int = 29
    multiple_of: int = 16
    ffn_dim_multiplier: Optional[float] = None
    norm_eps: float = 1e-5
    max_batch_size: int = 4
    max_seq_len: int = 24


class RMSNorm(torch.nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def _norm(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x):
        output = self._norm(x.float()).type_as(x)
        return output * self.weight


def precompute_freqs_cis(dim: int, end: int, theta: float = 10000.0):
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: (dim // 2)].float() / dim))
    t = torch.arange(end, device=freqs.device, dtype=torch.float32)
    freqs = torch.outer(t, freqs)
    freqs_cis = torch.polar(torch.ones_like(freqs), freqs)  # complex64
    return freqs_cis


def reshape_for_broadcast(freqs_cis: torch.Tensor, x: torch.Tensor):
    ndim = x.ndim
    assert 0 <= 1 < ndim
    assert freqs_cis.shape == (x.shape[1], x.shape[-1])
    shape = [d if i == 1 or i == ndim - 1 else 1 for i, d in enumerate(x.shape)]
    return freqs_cis.view(*shape)


def apply_rotary_emb(xq: torch.Tensor, xk: torch.Tensor, freqs_cis: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    xq_ = torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
    xk_ = torch.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
    freqs_cis = reshape_for_broadcast(freqs_cis, xq_)
    xq_out = torch.view_as_real(xq_ * freqs_cis).flatten(3)
    xk_out = torch.view_as_real(xk_ * freqs_cis).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)


# the HuggingFace form: cos/sin caches and rotate_half, on the interleaved pairs of the Meta form
def rotate_half_interleaved(x):
    x1 = x[..., ::2]
    x2 = x[..., 1::2]
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


def apply_rotary_cos_sin(x, cos, sin):
    return x * cos + rotate_half_interleaved(x) * sin


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """torch.repeat_interleave(x, dim=2, repeats=n_rep)"""
    bs, slen, n_kv_heads, head_dim = x.shape
    if n_rep == 1:
        return x
    return (
        x[:, :, :, None, :]
        .expand(bs, slen, n_kv_heads, n_rep, head_dim)
        .reshape(bs, slen, n_kv_heads * n_rep, head_dim)
    )


class Attention(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.n_kv_heads = args.n_heads if args.n_kv_heads is None else args.n_kv_heads
        self.n_local_heads = args.n_heads
        self.n_local_kv_heads = self.n_kv_heads
        self.n_rep = self.n_local_heads // self.n_local_kv_heads
        self.head_dim = args.dim // args.n_heads
        self.wq = nn.Linear(args.dim, args.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(args.dim, self.n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(args.dim, self.n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(args.n_heads * self.head_dim, args.dim, bias=False)
        self.register_buffer("cache_k", torch.zeros(
            (args.max_batch_size, args.max_seq_len, self.n_local_kv_heads, self.head_dim)), persistent=False)
        self.register_buffer("cache_v", torch.zeros(
            (args.max_batch_size, args.max_seq_len, self.n_local_kv_heads, self.head_dim)), persistent=False)

    def forward(self, x: torch.Tensor, start_pos: int, freqs_cis: torch.Tensor, mask: Optional[torch.Tensor],
                use_cache: bool = False):
        bsz, seqlen, _ = x.shape
        xq, xk, xv = self.wq(x), self.wk(x), self.wv(x)
        xq = xq.view(bsz, seqlen, self.n_local_heads, self.head_dim)
        xk = xk.view(bsz, seqlen, self.n_local_kv_heads, self.head_dim)
        xv = xv.view(bsz, seqlen, self.n_local_kv_heads, self.head_dim)
        xq, xk = apply_rotary_emb(xq, xk, freqs_cis=freqs_cis)

        if use_cache:
            self.cache_k = self.cache_k.to(xq)
            self.cache_v = self.cache_v.to(xq)
            self.cache_k[:bsz, start_pos: start_pos + seqlen] = xk
            self.cache_v[:bsz, start_pos: start_pos + seqlen] = xv
            keys = self.cache_k[:bsz, : start_pos + seqlen]
            values = self.cache_v[:bsz, : start_pos + seqlen]
        else:
            keys, values = xk, xv

        keys = repeat_kv(keys, self.n_rep)  # (bs, cache_len + seqlen, n_local_heads, head_dim)
        values = repeat_kv(values, self.n_rep)
        xq = xq.transpose(1, 2)  # (bs, n_local_heads, seqlen, head_dim)
        keys = keys.transpose(1, 2)
        values = values.transpose(1, 2)
        scores = torch.matmul(xq, keys.transpose(2, 3)) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores + mask  # (bs, n_local_heads, seqlen, cache_len + seqlen)
        scores = F.softmax(scores.float(), dim=-1).type_as(xq)
        output = torch.matmul(scores, values)  # (bs, n_local_heads, seqlen, head_dim)
        output = output.transpose(1, 2).contiguous().view(bsz, seqlen, -1)
        return self.wo(output)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden_dim: int, multiple_of: int, ffn_dim_multiplier: Optional[float]):
        super().__init__()
        hidden_dim = int(2 * hidden_dim / 3)
        if ffn_dim_multiplier is not None:
            hidden_dim = int(ffn_dim_multiplier * hidden_dim)
        hidden_dim = multiple_of * ((hidden_dim + multiple_of - 1) // multiple_of)
        self.w1 = nn.Linear(dim, hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden_dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self, layer_id: int, args: ModelArgs):
        super().__init__()
        self.n_heads = args.n_heads
        self.dim = args.dim
        self.head_dim = args.dim // args.n_heads
        self.attention = Attention(args)
        self.feed_forward = FeedForward(dim=args.dim, hidden_dim=4 * args.dim, multiple_of=args.multiple_of,
                                        ffn_dim_multiplier=args.ffn_dim_multiplier)
        self.layer_id = layer_id
        self.attention_norm = RMSNorm(args.dim, eps=args.norm_eps)
        self.ffn_norm = RMSNorm(args.dim, eps=args.norm_eps)

    def forward(self, x, start_pos, freqs_cis, mask, use_cache=False):
        h = x + self.attention(self.attention_norm(x), start_pos, freqs_cis, mask, use_cache)
        out = h + self.feed_forward(self.ffn_norm(h))
        return out


class Transformer(nn.Module):
    def __init__(self, params: ModelArgs):
        super().__init__()
        self.params = params
        self.vocab_size = params.vocab_size
        self.n_layers = params.n_layers
        self.tok_embeddings = nn.Embedding(params.vocab_size, params.dim)
        self.layers = torch.nn.ModuleList()
        for layer_id in range(params.n_layers):
            self.layers.append(TransformerBlock(layer_id, params))
        self.norm = RMSNorm(params.dim, eps=params.norm_eps)
        self.output = nn.Linear(params.dim, params.vocab_size, bias=False)
        self.freqs_cis = precompute_freqs_cis(self.params.dim // self.params.n_heads, self.params.max_seq_len * 2)

    def forward(self, tokens: torch.Tensor, start_pos: int = 0, use_cache: bool = False):
        _bsz, seqlen = tokens.shape
        h = self.tok_embeddings(tokens)
        self.freqs_cis = self.freqs_cis.to(h.device)
        freqs_cis = self.freqs_cis[start_pos: start_pos + seqlen]
        mask = None
        if seqlen > 1:
            mask = torch.full((seqlen, seqlen), float("-inf"), device=tokens.device)
            mask = torch.triu(mask, diagonal=1)
            # when performing key-value caching, we compute the attention scores only for the new sequence
            mask = torch.hstack([torch.zeros((seqlen, start_pos), device=tokens.device), mask]).type_as(h)
        for layer in self.layers:
            h = layer(h, start_pos, freqs_cis, mask, use_cache)
        h = self.norm(h)
        output = self.output(h).float()
        return output


def sample_top_p(probs, p, generator=None):
    probs_sort, probs_idx = torch.sort(probs, dim=-1, descending=True)
    probs_sum = torch.cumsum(probs_sort, dim=-1)
    mask = probs_sum - probs_sort > p
    probs_sort[mask] = 0.0
    probs_sort.div_(probs_sort.sum(dim=-1, keepdim=True))
    next_token = torch.multinomial(probs_sort, num_samples=1, generator=generator)
    next_token = torch.gather(probs_idx, -1, next_token)
    return next_token


@torch.inference_mode()
def generate(model, prompt_tokens, max_gen_len, temperature=0.0, top_p=0.9, eos_id=-1, pad_id=-1,
             use_cache=True, generator=None):
    bsz = len(prompt_tokens)
    min_prompt_len = min(len(t) for t in prompt_tokens)
    max_prompt_len = max(len(t) for t in prompt_tokens)
    total_len = min(model.params.max_seq_len, max_gen_len + max_prompt_len)
    tokens = torch.full((bsz, total_len), pad_id, dtype=torch.long)
    for k, t in enumerate(prompt_tokens):
        tokens[k, : len(t)] = torch.tensor(t, dtype=torch.long)
    prev_pos = 0
    eos_reached = torch.tensor([False] * bsz)
    input_text_mask = tokens != pad_id
    for cur_pos in range(min_prompt_len, total_len):
        if use_cache:
            logits = model.forward(tokens[:, prev_pos:cur_pos], prev_pos, use_cache=True)
        else:
            logits = model.forward(tokens[:, :cur_pos])
        if temperature > 0:
            probs = torch.softmax(logits[:, -1] / temperature, dim=-1)
            next_token = sample_top_p(probs, top_p, generator)
        else:
            next_token = torch.argmax(logits[:, -1], dim=-1)
        next_token = next_token.reshape(-1)
        # only replace token if prompt has already been generated
        next_token = torch.where(input_text_mask[:, cur_pos], tokens[:, cur_pos], next_token)
        tokens[:, cur_pos] = next_token
        eos_reached |= (~input_text_mask[:, cur_pos]) & (next_token == eos_id)
        if use_cache:
            prev_pos = cur_pos
        if all(eos_reached):
            break
    return tokens, cur_pos


def fixed(*shape):
    # inputs both libraries build alike (their random streams differ)
    return torch.sin(torch.arange(math.prod(shape), dtype=torch.float32) * 0.731).reshape(shape)


torch.manual_seed(0)
args = ModelArgs()
model = Transformer(args)
share_init(model)
report("params", sum(p.numel() for p in model.parameters()), model.layers[0].feed_forward.w1.weight.shape[0],
       sorted(model.state_dict().keys())[:3], model.freqs_cis.dtype == torch.complex64)

# the two RoPE forms agree: cos/sin caches repeated per pair, applied with rotate_half
x = fixed(2, 5, 4, 8)
fc = model.freqs_cis[:5]
rq, _ = apply_rotary_emb(x, x, fc)
cos = fc.real.repeat_interleave(2, dim=-1)[None, :, None, :]
sin = fc.imag.repeat_interleave(2, dim=-1)[None, :, None, :]
report("rope forms agree", torch.allclose(rq, apply_rotary_cos_sin(x, cos, sin), atol=1e-6),
       tuple(rq.shape), rq.dtype == torch.float32)
report("repeat_kv == repeat_interleave", torch.equal(repeat_kv(x, 3), torch.repeat_interleave(x, dim=2, repeats=3)))

# SDPA with is_causal, with a boolean mask and with the additive mask of the model agree
q, k, v = fixed(3, 2, 4, 6, 8).unbind(0)
causal = F.scaled_dot_product_attention(q, k, v, is_causal=True)
bool_mask = torch.ones(6, 6, dtype=torch.bool).tril(diagonal=0)
float_mask = torch.triu(torch.full((6, 6), float("-inf")), diagonal=1)
report("sdpa masks",
       torch.allclose(causal, F.scaled_dot_product_attention(q, k, v, attn_mask=bool_mask), atol=1e-6),
       torch.allclose(causal, F.scaled_dot_product_attention(q, k, v, attn_mask=float_mask), atol=1e-6),
       round(causal.sum().item(), 4))
# grouped-query attention through SDPA: the kv heads expanded with repeat_interleave on dim 1
kg, vg = fixed(2, 2, 2, 6, 8).cos().unbind(0)
gqa = F.scaled_dot_product_attention(q, kg.repeat_interleave(2, dim=1), vg.repeat_interleave(2, dim=1), is_causal=True)
report("gqa sdpa", round(gqa.square().mean().item(), 5))

# a short training run (no cache): next-token prediction on a fixed batch
data = torch.tensor([[(3 * i + j) % 29 for i in range(12)] for j in range(4)])
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
for step in range(6):
    logits = model(data[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), data[:, 1:].reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    report(f"step {step}", loss.item(), gnorm.item())

# greedy with the KV cache == greedy recomputing the whole prefix; prompts of unequal lengths
model.eval()
prompts = [[1, 4, 7, 10], [2, 5, 8], [3, 6, 9, 12, 15]]
cached, last = generate(model, prompts, 8, temperature=0.0, use_cache=True)
plain, _ = generate(model, prompts, 8, temperature=0.0, use_cache=False)
report("greedy", cached.tolist(), last, torch.equal(cached, plain), torch.is_inference_mode_enabled())
with torch.no_grad():
    full = model(cached[:1, :10])
    step_logits = model(cached[:1, :6], 0, use_cache=True)
    step_logits = model(cached[:1, 6:10], 6, use_cache=True)
report("cache logits", torch.allclose(full[:, 6:], step_logits, atol=1e-5), tuple(step_logits.shape))

# eos: a row stops once it emits it
eos = cached[0, 4].item()
stopped, last = generate(model, prompts[:1], 8, temperature=0.0, eos_id=eos)
report("eos", last, stopped[0, : last + 1].tolist())

# top-p sampling: the same seeded generator draws the same tokens; each draw is inside the nucleus
g = torch.Generator().manual_seed(1234)
s1, _ = generate(model, prompts, 6, temperature=0.7, top_p=0.8, generator=g)
g = torch.Generator().manual_seed(1234)
s2, _ = generate(model, prompts, 6, temperature=0.7, top_p=0.8, generator=g)
with torch.no_grad():
    probs = torch.softmax(model(s1[:, :5])[:, -1] / 0.7, dim=-1)
ps, pi = torch.sort(probs, dim=-1, descending=True)
nucleus = [set(pi[b][(ps[b].cumsum(0) - ps[b]) <= 0.8].tolist()) for b in range(3)]
report("top-p", torch.equal(s1, s2), tuple(s1.shape), all(s1[b, 5].item() in nucleus[b] for b in range(3)))
# the nucleus of a fixed prefix: how many tokens top_p keeps
with torch.no_grad():
    probs = torch.softmax(model(cached[:, :5])[:, -1] / 0.7, dim=-1)
ps, _ = torch.sort(probs, dim=-1, descending=True)
report("nucleus sizes", ((ps.cumsum(-1) - ps) <= 0.8).sum(-1).tolist())
