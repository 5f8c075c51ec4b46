"""RLHF-style preference training as TRL / OpenRLHF / the DPO reference code write it, shrunk: a
tiny causal LM, a reference model frozen by copy.deepcopy + requires_grad_(False) + eval();
per-token log-probs by log_softmax + torch.gather on the shifted labels with a loss mask (labels
== -100 replaced by a dummy id first), summed and length-averaged sequence log-probs; the DPO
sigmoid loss (F.logsigmoid), IPO and conservative (label-smoothed) variants, chosen/rejected
rewards and reward accuracies; a reward model with a scalar value head pooled at the last
non-pad token (the HF argmax trick on eq(pad).int(), the flip/argmax form, and gather on
attention_mask.sum - 1), trained with -logsigmoid(r_chosen - r_rejected) plus a margin;
the PPO-style KL penalty per token against the reference, masked_mean / masked whitening of
advantages, and a GAE loop with torch.stack of reversed lists."""
import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class TinyLM(nn.Module):
    def __init__(self, vocab=23, dim=16, n_head=2, n_layer=2, max_len=16):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(1, max_len, dim))
        layer = nn.TransformerEncoderLayer(dim, n_head, dim_feedforward=32, dropout=0.0, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.blocks = nn.TransformerEncoder(layer, n_layer, enable_nested_tensor=False)
        self.ln_f = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)

    def hidden(self, input_ids, attention_mask):
        T = input_ids.shape[1]
        causal = nn.Transformer.generate_square_subsequent_mask(T)
        x = self.embed(input_ids) + self.pos[:, :T]
        x = self.blocks(x, mask=causal, is_causal=True)
        return self.ln_f(x)

    def forward(self, input_ids, attention_mask):
        return self.lm_head(self.hidden(input_ids, attention_mask))


def get_batch_logps(logits, labels, average_log_prob=False, label_pad_token_id=-100):
    labels = labels[:, 1:].clone()
    logits = logits[:, :-1, :]
    loss_mask = labels != label_pad_token_id
    # dummy token; we'll ignore the losses on these tokens later
    labels[labels == label_pad_token_id] = 0
    per_token_logps = torch.gather(logits.log_softmax(-1), dim=2, index=labels.unsqueeze(2)).squeeze(2)
    if average_log_prob:
        return (per_token_logps * loss_mask).sum(-1) / loss_mask.sum(-1)
    return (per_token_logps * loss_mask).sum(-1)


def dpo_loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps,
             beta=0.1, label_smoothing=0.0, loss_type="sigmoid"):
    pi_logratios = policy_chosen_logps - policy_rejected_logps
    ref_logratios = reference_chosen_logps - reference_rejected_logps
    logits = pi_logratios - ref_logratios
    if loss_type == "sigmoid":
        losses = (-F.logsigmoid(beta * logits) * (1 - label_smoothing)
                  - F.logsigmoid(-beta * logits) * label_smoothing)
    elif loss_type == "ipo":
        losses = (logits - 1 / (2 * beta)) ** 2
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * logits)
    else:
        raise ValueError(loss_type)
    chosen_rewards = beta * (policy_chosen_logps - reference_chosen_logps).detach()
    rejected_rewards = beta * (policy_rejected_logps - reference_rejected_logps).detach()
    return losses, chosen_rewards, rejected_rewards


def concatenated_forward(model, chosen, rejected, chosen_labels, rejected_labels, pad_id):
    # pad both to the same length and run them as one batch, as TRL does
    max_len = max(chosen.shape[1], rejected.shape[1])
    pad = lambda t, v: F.pad(t, (0, max_len - t.shape[1]), value=v)
    input_ids = torch.cat([pad(chosen, pad_id), pad(rejected, pad_id)], dim=0)
    labels = torch.cat([pad(chosen_labels, -100), pad(rejected_labels, -100)], dim=0)
    attention_mask = input_ids.ne(pad_id).long()
    logits = model(input_ids, attention_mask).to(torch.float32)
    logps = get_batch_logps(logits, labels)
    n = chosen.shape[0]
    return logps[:n], logps[n:], logits[:n], logits[n:]


class RewardModel(nn.Module):
    def __init__(self, base, pad_id):
        super().__init__()
        self.base = base
        self.pad_id = pad_id
        self.score = nn.Linear(base.lm_head.in_features, 1, bias=False)

    def forward(self, input_ids, attention_mask):
        values = self.score(self.base.hidden(input_ids, attention_mask)).squeeze(-1)  # (B, T)
        # HF: the first pad token's index minus one, modulo T for unpadded rows
        sequence_lengths = torch.eq(input_ids, self.pad_id).int().argmax(-1) - 1
        sequence_lengths = sequence_lengths % input_ids.shape[-1]
        rewards = values[torch.arange(input_ids.shape[0], device=values.device), sequence_lengths]
        return rewards, values


def masked_mean(values, mask, axis=None):
    if axis is not None:
        return (values * mask).sum(axis=axis) / mask.sum(axis=axis)
    return (values * mask).sum() / mask.sum()


def masked_var(values, mask, unbiased=True):
    mean = masked_mean(values, mask)
    centered_values = values - mean
    variance = masked_mean(centered_values ** 2, mask)
    if unbiased:
        mask_sum = mask.sum()
        bessel_correction = mask_sum / (mask_sum - 1)
        variance = variance * bessel_correction
    return variance


def masked_whiten(values, mask, shift_mean=True):
    mean, var = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened += mean
    return whitened


PAD, EOS = 0, 1
torch.manual_seed(0)
policy = TinyLM()
share_init(policy)
reference = copy.deepcopy(policy)
reference.requires_grad_(False)
reference.eval()
report("frozen", sum(p.requires_grad for p in reference.parameters()), sum(p.requires_grad for p in policy.parameters()))

# prompt + response pairs; labels mask the prompt (-100) so only responses are scored
prompts = [[5, 6, 7], [8, 9], [10, 11, 12, 13]]
chosen_resp = [[14, 15, 1], [16, 1], [17, 18, 19, 1]]
rejected_resp = [[20, 1], [21, 22, 3, 1], [4, 1]]


def build(prompts, responses):
    ids = [p + r for p, r in zip(prompts, responses)]
    labs = [[-100] * len(p) + r for p, r in zip(prompts, responses)]
    T = max(len(i) for i in ids)
    input_ids = torch.tensor([i + [PAD] * (T - len(i)) for i in ids])
    labels = torch.tensor([l + [-100] * (T - len(l)) for l in labs])
    return input_ids, labels


chosen, chosen_labels = build(prompts, chosen_resp)
rejected, rejected_labels = build(prompts, rejected_resp)
report("batch", tuple(chosen.shape), tuple(rejected.shape), (chosen_labels != -100).sum(-1).tolist())

optimizer = torch.optim.AdamW(policy.parameters(), lr=5e-3)
for step in range(5):
    pc, pr, _, _ = concatenated_forward(policy, chosen, rejected, chosen_labels, rejected_labels, PAD)
    with torch.no_grad():
        rc, rr, _, _ = concatenated_forward(reference, chosen, rejected, chosen_labels, rejected_labels, PAD)
    losses, cr, rjr = dpo_loss(pc, pr, rc, rr, beta=0.5)
    loss = losses.mean()
    optimizer.zero_grad()
    loss.backward()
    gn = torch.nn.utils.clip_grad_norm_(policy.parameters(), max_norm=1.0)
    optimizer.step()
    # at step 0 policy == reference, so the rewards tie and their comparison is rounding noise
    accuracy = (cr > rjr).float().mean().item() if step else None
    report(f"dpo {step}", loss.item(), accuracy, (cr - rjr).mean().item(),
           pc.detach().mean().item(), gn.item())

with torch.no_grad():
    pc, pr, _, _ = concatenated_forward(policy, chosen, rejected, chosen_labels, rejected_labels, PAD)
    rc, rr, _, _ = concatenated_forward(reference, chosen, rejected, chosen_labels, rejected_labels, PAD)
    for kind, ls in (("ipo", 0.0), ("hinge", 0.0), ("sigmoid", 0.2)):
        l, _, _ = dpo_loss(pc, pr, rc, rr, beta=0.5, label_smoothing=ls, loss_type=kind)
        report(kind, l.tolist())
    avg_logits = policy(chosen, chosen.ne(PAD))
    report("avg logp", get_batch_logps(avg_logits, chosen_labels, average_log_prob=True).tolist())

# reward model: pooled at the last non-pad token, three ways
rm = RewardModel(copy.deepcopy(reference), PAD)
rm.requires_grad_(True)
share_init(rm.score, "score")
mask = chosen.ne(PAD).long()
r, values = rm(chosen, mask)
last_by_sum = mask.sum(-1) - 1
last_by_flip = mask.shape[1] - 1 - mask.flip(-1).argmax(-1)
report("pool", last_by_sum.tolist(), torch.equal(last_by_sum, last_by_flip),
       torch.allclose(r, values.gather(1, last_by_sum.unsqueeze(-1)).squeeze(-1)))
rm_opt = torch.optim.Adam(rm.parameters(), lr=1e-2)
margin = torch.tensor([0.5, 1.0, 0.0])
for step in range(4):
    r_c, _ = rm(chosen, chosen.ne(PAD).long())
    r_r, _ = rm(rejected, rejected.ne(PAD).long())
    loss = -F.logsigmoid(r_c - r_r - margin).mean()
    rm_opt.zero_grad()
    loss.backward()
    rm_opt.step()
    report(f"rm {step}", loss.item(), (r_c > r_r).float().mean().item())

# PPO-style per-token rewards: -kl_coef * (logp - ref_logp), the score added at the last token
with torch.no_grad():
    logits = policy(chosen, chosen.ne(PAD))
    ref_logits = reference(chosen, chosen.ne(PAD))
    labels = chosen[:, 1:]
    logp = torch.gather(F.log_softmax(logits[:, :-1], -1), 2, labels.unsqueeze(-1)).squeeze(-1)
    ref_logp = torch.gather(F.log_softmax(ref_logits[:, :-1], -1), 2, labels.unsqueeze(-1)).squeeze(-1)
    action_mask = (chosen_labels[:, 1:] != -100).float()
    kl = (logp - ref_logp) * action_mask
    rewards = -0.05 * kl
    scores, _ = rm(chosen, chosen.ne(PAD).long())
    last = (action_mask.cumsum(-1) * action_mask).argmax(-1)
    rewards.scatter_add_(1, last.unsqueeze(1), scores.unsqueeze(1))
    report("kl", masked_mean(kl, action_mask).item(), masked_mean(kl, action_mask, axis=1).tolist(), last.tolist())
    values = torch.tanh(logp)  # a stand-in critic
    lastgaelam = 0
    advantages_reversed = []
    gen_len = rewards.shape[-1]
    gamma, lam = 0.99, 0.95
    for t in reversed(range(gen_len)):
        nextvalues = values[:, t + 1] if t < gen_len - 1 else 0.0
        delta = rewards[:, t] + gamma * nextvalues - values[:, t]
        lastgaelam = delta + gamma * lam * lastgaelam
        advantages_reversed.append(lastgaelam)
    advantages = torch.stack(advantages_reversed[::-1]).transpose(0, 1)
    returns = advantages + values
    white = masked_whiten(advantages, action_mask)
    report("gae", tuple(advantages.shape), returns.sum().item(), masked_mean(white, action_mask).item(),
           masked_var(white, action_mask).item())
