"""The training and generation utilities LLM repos carry (HF transformers' Trainer/generate, lit-gpt,
OLMo), around a small GPT: AdamW param groups that exclude biases and norm weights by module type
and by name, get_cosine_schedule_with_warmup as a LambdaLR, gradient accumulation with loss
scaling, gradient checkpointing per block with torch.utils.checkpoint(use_reentrant=False) checked
against the plain backward, clip_grad_norm_(foreach=True) and its total norm, left-padded batches
(pad_sequence(padding_side="left")) with position_ids from attention_mask.cumsum(-1) - 1 and
masked_fill_; HF-style logits processors (repetition penalty by gather/scatter, no-repeat-ngram
bans, min-length EOS suppression, temperature, top-k by topk()[0][..., -1, None], top-p by
ascending sort, cumsum and scatter of the removal mask), greedy generation with per-row EOS
early stopping (unfinished_sequences mul_), and sampling with torch.multinomial under a seeded
Generator checked by what it may draw."""
import math
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.checkpoint import checkpoint

VOCAB, PAD, EOS = 19, 0, 1


class Block(nn.Module):
    def __init__(self, dim, n_head):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(dim)
        self.c_attn = nn.Linear(dim, 3 * dim)
        self.c_proj = nn.Linear(dim, dim)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))

    def forward(self, x, attn_bias):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias)
        x = x + self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, dim=24, n_head=4, n_layer=3, max_pos=32):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, dim)
        self.wpe = nn.Embedding(max_pos, dim)
        self.h = nn.ModuleList([Block(dim, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, VOCAB, bias=False)
        self.gradient_checkpointing = False

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        B, T = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if position_ids is None:
            position_ids = attention_mask.long().cumsum(-1) - 1
            position_ids.masked_fill_(attention_mask == 0, 1)
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool, device=input_ids.device))
        allowed = causal[None, None] & attention_mask[:, None, None, :].bool()
        # an additive float bias, as HF's _prepare_4d_causal_attention_mask builds it
        attn_bias = torch.zeros(allowed.shape, dtype=torch.float32).masked_fill(~allowed, torch.finfo(torch.float32).min)
        x = self.wte(input_ids) + self.wpe(position_ids)
        for block in self.h:
            if self.gradient_checkpointing and self.training:
                x = checkpoint(block, x, attn_bias, use_reentrant=False)
            else:
                x = block(x, attn_bias)
        return self.lm_head(self.ln_f(x))


def get_cosine_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, num_cycles=0.5, last_epoch=-1):
    def lr_lambda(current_step, *, num_warmup_steps, num_training_steps, num_cycles):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        progress = float(current_step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))

    lr_lambda = partial(lr_lambda, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps,
                        num_cycles=num_cycles)
    return LambdaLR(optimizer, lr_lambda, last_epoch)


def get_parameter_groups(model, weight_decay):
    # Trainer.get_decay_parameter_names: every weight outside LayerNorm, minus biases
    decay, no_decay = [], []
    norm_params = {id(p) for m in model.modules() if isinstance(m, (nn.LayerNorm, nn.Embedding)) for p in m.parameters()}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.endswith("bias") or id(p) in norm_params:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# ---- logits processors, as transformers.generation.logits_process writes them ----
class RepetitionPenaltyLogitsProcessor:
    def __init__(self, penalty):
        self.penalty = penalty

    def __call__(self, input_ids, scores):
        score = torch.gather(scores, 1, input_ids)
        score = torch.where(score < 0, score * self.penalty, score / self.penalty)
        return scores.scatter(1, input_ids, score)


class NoRepeatNGramLogitsProcessor:
    def __init__(self, ngram_size):
        self.ngram_size = ngram_size

    def __call__(self, input_ids, scores):
        num_batch_hypotheses, cur_len = input_ids.shape
        if cur_len + 1 < self.ngram_size:
            return scores
        for b in range(num_batch_hypotheses):
            gen = input_ids[b].tolist()
            ngrams = {}
            for ngram in zip(*[gen[i:] for i in range(self.ngram_size)]):
                ngrams.setdefault(tuple(ngram[:-1]), []).append(ngram[-1])
            banned = ngrams.get(tuple(gen[cur_len + 1 - self.ngram_size:]), [])
            scores[b, banned] = -float("inf")
        return scores


class MinLengthLogitsProcessor:
    def __init__(self, min_length, eos_token_id):
        self.min_length = min_length
        self.eos_token_id = torch.tensor([eos_token_id])

    def __call__(self, input_ids, scores):
        vocab_tensor = torch.arange(scores.shape[-1], device=scores.device)
        eos_token_mask = torch.isin(vocab_tensor, self.eos_token_id)
        scores_processed = scores.clone()
        if input_ids.shape[-1] < self.min_length:
            scores_processed = torch.where(eos_token_mask, -math.inf, scores)
        return scores_processed


class TemperatureLogitsWarper:
    def __init__(self, temperature):
        self.temperature = temperature

    def __call__(self, input_ids, scores):
        return scores / self.temperature


class TopKLogitsWarper:
    def __init__(self, top_k, filter_value=-float("Inf"), min_tokens_to_keep=1):
        self.top_k = max(top_k, min_tokens_to_keep)
        self.filter_value = filter_value

    def __call__(self, input_ids, scores):
        top_k = min(self.top_k, scores.size(-1))
        indices_to_remove = scores < torch.topk(scores, top_k)[0][..., -1, None]
        return scores.masked_fill(indices_to_remove, self.filter_value)


class TopPLogitsWarper:
    def __init__(self, top_p, filter_value=-float("Inf"), min_tokens_to_keep=1):
        self.top_p = top_p
        self.filter_value = filter_value
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, input_ids, scores):
        sorted_logits, sorted_indices = torch.sort(scores, descending=False)
        cumulative_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        sorted_indices_to_remove = cumulative_probs <= (1 - self.top_p)
        sorted_indices_to_remove[..., -self.min_tokens_to_keep:] = 0
        indices_to_remove = sorted_indices_to_remove.scatter(1, sorted_indices, sorted_indices_to_remove)
        return scores.masked_fill(indices_to_remove, self.filter_value)


@torch.no_grad()
def generate(model, input_ids, attention_mask, max_new_tokens, processors=(), do_sample=False, generator=None):
    unfinished_sequences = torch.ones(input_ids.shape[0], dtype=torch.long, device=input_ids.device)
    for _ in range(max_new_tokens):
        logits = model(input_ids, attention_mask)
        next_token_scores = logits[:, -1, :].float()
        for p in processors:
            next_token_scores = p(input_ids, next_token_scores)
        if do_sample:
            probs = F.softmax(next_token_scores, dim=-1)
            next_tokens = torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)
        else:
            next_tokens = torch.argmax(next_token_scores, dim=-1)
        # finished sentences get padding
        next_tokens = next_tokens * unfinished_sequences + PAD * (1 - unfinished_sequences)
        input_ids = torch.cat([input_ids, next_tokens[:, None]], dim=-1)
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((attention_mask.shape[0], 1))], dim=-1)
        unfinished_sequences = unfinished_sequences & ~(next_tokens == EOS)
        if unfinished_sequences.max() == 0:
            break
    return input_ids


torch.manual_seed(0)
model = GPT()
share_init(model)
groups = get_parameter_groups(model, 0.1)
report("groups", [len(g["params"]) for g in groups], [sum(p.numel() for p in g["params"]) for g in groups])
optimizer = torch.optim.AdamW(groups, lr=4e-3, betas=(0.9, 0.95), eps=1e-8)
scheduler = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=2, num_training_steps=8)

# sequences count up mod 17 (offset past PAD and EOS) and end in EOS
seqs = [torch.tensor([2 + (s + i) % 17 for i in range(n)] + [EOS]) for s, n in ((0, 7), (3, 5), (5, 9), (9, 4))]
batch = pad_sequence(seqs, batch_first=True, padding_value=PAD)
mask = (torch.arange(batch.shape[1])[None] < torch.tensor([len(s) for s in seqs])[:, None]).long()
labels = batch.masked_fill(mask == 0, -100)
report("batch", tuple(batch.shape), mask.sum().item())

# gradient checkpointing gives the plain backward's gradients
model.train()
loss_of = lambda m: F.cross_entropy(m(batch, mask)[:, :-1].reshape(-1, VOCAB), labels[:, 1:].reshape(-1), ignore_index=-100)
loss_of(model).backward()
plain = [p.grad.clone() for p in model.parameters()]
model.zero_grad(set_to_none=True)
model.gradient_checkpointing = True
loss_of(model).backward()
report("checkpoint grads", all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(plain, model.parameters())))
model.zero_grad(set_to_none=True)

accum = 2
for step in range(8):
    for micro in range(accum):
        rows = slice(2 * micro, 2 * micro + 2)
        logits = model(batch[rows], mask[rows])
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), labels[rows, 1:].reshape(-1), ignore_index=-100)
        (loss / accum).backward()
    total_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5, foreach=True)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    report(f"step {step}", loss.item(), total_norm.item(), scheduler.get_last_lr())
report("schedule state", scheduler.state_dict()["last_epoch"], scheduler.state_dict()["_step_count"])
model.gradient_checkpointing = False
model.eval()

# left padding: a batch of prompts of unequal length, generated greedily with EOS stopping
prompts = [torch.tensor([2, 3, 4]), torch.tensor([7, 8, 9, 10, 11]), torch.tensor([12])]
input_ids = pad_sequence(prompts, batch_first=True, padding_value=PAD, padding_side="left")
attention_mask = pad_sequence([torch.ones_like(p) for p in prompts], batch_first=True, padding_value=0,
                              padding_side="left")
position_ids = attention_mask.long().cumsum(-1) - 1
position_ids.masked_fill_(attention_mask == 0, 1)
report("left padded", input_ids.tolist(), position_ids.tolist())
out = generate(model, input_ids, attention_mask, 12)
report("greedy", out.tolist())
# the left-padded row matches the same prompt run alone
alone = generate(model, prompts[0][None], torch.ones(1, 3, dtype=torch.long), 12)
report("left pad == alone", out[0, 2: 2 + alone.shape[1]].tolist() == alone[0].tolist()[: out.shape[1] - 2])

procs = [MinLengthLogitsProcessor(9, EOS), RepetitionPenaltyLogitsProcessor(1.3), NoRepeatNGramLogitsProcessor(2)]
out_p = generate(model, input_ids, attention_mask, 10, procs)
report("processed greedy", out_p.tolist())
scores = model(input_ids, attention_mask)[:, -1].detach()
report("top-k", TopKLogitsWarper(3)(input_ids, scores.clone()).isfinite().sum(-1).tolist())
report("top-p", TopPLogitsWarper(0.7)(input_ids, scores.clone()).isfinite().sum(-1).tolist())
report("repetition", RepetitionPenaltyLogitsProcessor(2.0)(input_ids, scores.clone()).sum().item())

warpers = [TemperatureLogitsWarper(0.8), TopKLogitsWarper(4), TopPLogitsWarper(0.9)]
g = torch.Generator().manual_seed(7)
s1 = generate(model, input_ids, attention_mask, 1, warpers, do_sample=True, generator=g)
g = torch.Generator().manual_seed(7)
s2 = generate(model, input_ids, attention_mask, 1, warpers, do_sample=True, generator=g)
allowed = scores.clone()
for w in warpers:
    allowed = w(input_ids, allowed)
report("sampled", torch.equal(s1, s2), all(allowed[b, s1[b, -1]].isfinite().item() for b in range(3)),
       allowed.isfinite().sum(-1).tolist())
