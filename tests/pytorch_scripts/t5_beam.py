"""A T5-style encoder-decoder as HuggingFace's modeling_t5.py writes it, shrunk: T5LayerNorm
(variance in float32, no mean), relative position buckets (torch.log, torch.where, torch.min with
full_like, .to(torch.long)) looked up in an nn.Embedding and permuted into a bias shared by the
layers, bidirectional buckets in the encoder and causal ones in the decoder, an extended attention
mask of (1 - mask) * torch.finfo(dtype).min, gated-GELU feed-forward, _shift_right with
masked_fill_ of -100 labels, label-smoothed cross-entropy with ignore_index=-100 (both
F.cross_entropy(label_smoothing=) and fairseq's hand-written form), teacher-forced training with
Adafactor-free AdamW, and beam search over flattened beams: log_softmax, topk over
(num_beams * vocab), floor division and remainder into beam and token ids, index_select of the
beam histories, length-penalised finished hypotheses, and greedy decoding as the num_beams=1 case."""
import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class T5Config:
    vocab_size = 31
    d_model = 24
    d_kv = 6
    d_ff = 40
    num_layers = 2
    num_decoder_layers = 2
    num_heads = 4
    relative_attention_num_buckets = 8
    relative_attention_max_distance = 16
    layer_norm_epsilon = 1e-6
    pad_token_id = 0
    eos_token_id = 1
    decoder_start_token_id = 0
    is_decoder = False


class T5LayerNorm(nn.Module):
    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        variance = hidden_states.to(torch.float32).pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        if self.weight.dtype in [torch.float16, torch.bfloat16]:
            hidden_states = hidden_states.to(self.weight.dtype)
        return self.weight * hidden_states


class T5DenseGatedActDense(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wi_0 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wi_1 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.act = nn.GELU(approximate="tanh")

    def forward(self, hidden_states):
        hidden_gelu = self.act(self.wi_0(hidden_states))
        hidden_linear = self.wi_1(hidden_states)
        return self.wo(hidden_gelu * hidden_linear)


class T5Attention(nn.Module):
    def __init__(self, config, has_relative_attention_bias=False, is_decoder=False):
        super().__init__()
        self.is_decoder = is_decoder
        self.has_relative_attention_bias = has_relative_attention_bias
        self.relative_attention_num_buckets = config.relative_attention_num_buckets
        self.relative_attention_max_distance = config.relative_attention_max_distance
        self.d_model = config.d_model
        self.key_value_proj_dim = config.d_kv
        self.n_heads = config.num_heads
        self.inner_dim = self.n_heads * self.key_value_proj_dim
        self.q = nn.Linear(self.d_model, self.inner_dim, bias=False)
        self.k = nn.Linear(self.d_model, self.inner_dim, bias=False)
        self.v = nn.Linear(self.d_model, self.inner_dim, bias=False)
        self.o = nn.Linear(self.inner_dim, self.d_model, bias=False)
        if self.has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(self.relative_attention_num_buckets, self.n_heads)

    @staticmethod
    def _relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
        relative_buckets = 0
        if bidirectional:
            num_buckets //= 2
            relative_buckets += (relative_position > 0).to(torch.long) * num_buckets
            relative_position = torch.abs(relative_position)
        else:
            relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
        # now relative_position is in the range [0, inf)
        max_exact = num_buckets // 2
        is_small = relative_position < max_exact
        relative_position_if_large = max_exact + (
            torch.log(relative_position.float() / max_exact)
            / math.log(max_distance / max_exact)
            * (num_buckets - max_exact)
        ).to(torch.long)
        relative_position_if_large = torch.min(
            relative_position_if_large, torch.full_like(relative_position_if_large, num_buckets - 1)
        )
        relative_buckets += torch.where(is_small, relative_position, relative_position_if_large)
        return relative_buckets

    def compute_bias(self, query_length, key_length, device=None):
        if device is None:
            device = self.relative_attention_bias.weight.device
        context_position = torch.arange(query_length, dtype=torch.long, device=device)[:, None]
        memory_position = torch.arange(key_length, dtype=torch.long, device=device)[None, :]
        relative_position = memory_position - context_position  # shape (query_length, key_length)
        relative_position_bucket = self._relative_position_bucket(
            relative_position,
            bidirectional=(not self.is_decoder),
            num_buckets=self.relative_attention_num_buckets,
            max_distance=self.relative_attention_max_distance,
        )
        values = self.relative_attention_bias(relative_position_bucket)  # (query_length, key_length, num_heads)
        values = values.permute([2, 0, 1]).unsqueeze(0)  # (1, num_heads, query_length, key_length)
        return values

    def forward(self, hidden_states, mask=None, key_value_states=None, position_bias=None):
        batch_size, seq_length = hidden_states.shape[:2]
        real_seq_length = seq_length
        key_length = real_seq_length if key_value_states is None else key_value_states.shape[1]

        def shape(states):
            return states.view(batch_size, -1, self.n_heads, self.key_value_proj_dim).transpose(1, 2)

        def unshape(states):
            return states.transpose(1, 2).contiguous().view(batch_size, -1, self.inner_dim)

        query_states = shape(self.q(hidden_states))
        src = hidden_states if key_value_states is None else key_value_states
        key_states = shape(self.k(src))
        value_states = shape(self.v(src))
        # T5 does not scale the scores (the init absorbs 1/sqrt(d_kv))
        scores = torch.matmul(query_states, key_states.transpose(3, 2))
        if position_bias is None:
            if not self.has_relative_attention_bias:
                position_bias = torch.zeros(
                    (1, self.n_heads, real_seq_length, key_length), device=scores.device, dtype=scores.dtype)
            else:
                position_bias = self.compute_bias(real_seq_length, key_length, device=scores.device)
            if mask is not None:
                position_bias = position_bias + mask  # (batch_size, n_heads, seq_length, key_length)
        scores += position_bias
        attn_weights = nn.functional.softmax(scores.float(), dim=-1).type_as(scores)
        attn_output = unshape(torch.matmul(attn_weights, value_states))
        attn_output = self.o(attn_output)
        return attn_output, position_bias


class T5Block(nn.Module):
    def __init__(self, config, has_relative_attention_bias=False, is_decoder=False):
        super().__init__()
        self.is_decoder = is_decoder
        self.self_attn = T5Attention(config, has_relative_attention_bias, is_decoder)
        self.ln_self = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        if is_decoder:
            self.cross_attn = T5Attention(config, False, is_decoder)
            self.ln_cross = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.ff = T5DenseGatedActDense(config)
        self.ln_ff = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)

    def forward(self, h, mask, position_bias, enc=None, enc_mask=None, enc_bias=None):
        out, position_bias = self.self_attn(self.ln_self(h), mask, position_bias=position_bias)
        h = h + out
        if self.is_decoder:
            out, enc_bias = self.cross_attn(self.ln_cross(h), enc_mask, key_value_states=enc, position_bias=enc_bias)
            h = h + out
        h = h + self.ff(self.ln_ff(h))
        return h, position_bias, enc_bias


def get_extended_attention_mask(attention_mask, dtype, causal=False):
    if causal:
        batch_size, seq_length = attention_mask.shape
        seq_ids = torch.arange(seq_length, device=attention_mask.device)
        causal_mask = seq_ids[None, None, :].repeat(batch_size, seq_length, 1) <= seq_ids[None, :, None]
        causal_mask = causal_mask.to(attention_mask.dtype)
        extended = causal_mask[:, None, :, :] * attention_mask[:, None, None, :]
    else:
        extended = attention_mask[:, None, None, :]
    extended = extended.to(dtype=dtype)
    return (1.0 - extended) * torch.finfo(dtype).min


class T5Stack(nn.Module):
    def __init__(self, config, embed_tokens, is_decoder):
        super().__init__()
        self.embed_tokens = embed_tokens
        self.is_decoder = is_decoder
        n = config.num_decoder_layers if is_decoder else config.num_layers
        self.block = nn.ModuleList([T5Block(config, has_relative_attention_bias=bool(i == 0), is_decoder=is_decoder)
                                    for i in range(n)])
        self.final_layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)

    def forward(self, input_ids, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None):
        h = self.embed_tokens(input_ids)
        if attention_mask is None:
            attention_mask = torch.ones(input_ids.shape, device=h.device)
        mask = get_extended_attention_mask(attention_mask, h.dtype, causal=self.is_decoder)
        enc_mask = None
        if encoder_attention_mask is not None:
            enc_mask = get_extended_attention_mask(encoder_attention_mask, h.dtype)
        position_bias, enc_bias = None, None
        for layer in self.block:
            h, position_bias, enc_bias = layer(h, mask, position_bias, encoder_hidden_states, enc_mask, enc_bias)
        return self.final_layer_norm(h)


class T5ForConditionalGeneration(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, self.shared, is_decoder=False)
        self.decoder = T5Stack(config, self.shared, is_decoder=True)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.lm_head.weight = self.shared.weight
        self.model_dim = config.d_model

    def _shift_right(self, input_ids):
        shifted_input_ids = input_ids.new_zeros(input_ids.shape)
        shifted_input_ids[..., 1:] = input_ids[..., :-1].clone()
        shifted_input_ids[..., 0] = self.config.decoder_start_token_id
        # replace possible -100 values in labels by `pad_token_id`
        shifted_input_ids.masked_fill_(shifted_input_ids == -100, self.config.pad_token_id)
        return shifted_input_ids

    def forward(self, input_ids, attention_mask=None, decoder_input_ids=None, labels=None, encoder_outputs=None,
                label_smoothing=0.0):
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids, attention_mask=attention_mask)
        if labels is not None and decoder_input_ids is None:
            decoder_input_ids = self._shift_right(labels)
        dec = self.decoder(decoder_input_ids, encoder_hidden_states=encoder_outputs,
                           encoder_attention_mask=attention_mask)
        # rescale output before projecting on vocab (tied embeddings)
        dec = dec * (self.model_dim ** -0.5)
        lm_logits = self.lm_head(dec)
        loss = None
        if labels is not None:
            loss_fct = nn.CrossEntropyLoss(ignore_index=-100, label_smoothing=label_smoothing)
            loss = loss_fct(lm_logits.view(-1, lm_logits.size(-1)), labels.view(-1))
        return loss, lm_logits, encoder_outputs


def label_smoothed_nll_loss(lprobs, target, epsilon, ignore_index=None, reduce=True):
    """fairseq's form: eps_i = epsilon / (V - 1), applied with a pad mask"""
    if target.dim() == lprobs.dim() - 1:
        target = target.unsqueeze(-1)
    nll_loss = -lprobs.gather(dim=-1, index=target)
    smooth_loss = -lprobs.sum(dim=-1, keepdim=True)
    if ignore_index is not None:
        pad_mask = target.eq(ignore_index)
        nll_loss.masked_fill_(pad_mask, 0.0)
        smooth_loss.masked_fill_(pad_mask, 0.0)
    else:
        nll_loss = nll_loss.squeeze(-1)
        smooth_loss = smooth_loss.squeeze(-1)
    if reduce:
        nll_loss = nll_loss.sum()
        smooth_loss = smooth_loss.sum()
    eps_i = epsilon / (lprobs.size(-1) - 1)
    loss = (1.0 - epsilon - eps_i) * nll_loss + eps_i * smooth_loss
    return loss, nll_loss


@torch.no_grad()
def beam_search(model, input_ids, attention_mask, num_beams=3, max_length=8, length_penalty=1.0):
    cfg = model.config
    batch_size = input_ids.shape[0]
    enc = model.encoder(input_ids, attention_mask=attention_mask)
    # expand encoder outputs per beam: (batch * num_beams, src_len, d)
    expand_idx = torch.arange(batch_size).view(-1, 1).repeat(1, num_beams).view(-1)
    enc = enc.index_select(0, expand_idx)
    enc_mask = attention_mask.index_select(0, expand_idx)
    seqs = torch.full((batch_size * num_beams, 1), cfg.decoder_start_token_id, dtype=torch.long)
    beam_scores = torch.zeros((batch_size, num_beams))
    beam_scores[:, 1:] = -1e9  # only the first beam is live at the first step
    beam_scores = beam_scores.view((batch_size * num_beams,))
    finished = [[] for _ in range(batch_size)]
    done = torch.zeros(batch_size, dtype=torch.bool)
    for cur_len in range(1, max_length):
        _, logits, _ = model(None, enc_mask, decoder_input_ids=seqs, encoder_outputs=enc)
        next_token_scores = F.log_softmax(logits[:, -1, :], dim=-1)  # (batch * num_beams, vocab)
        next_token_scores = next_token_scores + beam_scores[:, None].expand_as(next_token_scores)
        vocab_size = next_token_scores.shape[-1]
        next_token_scores = next_token_scores.view(batch_size, num_beams * vocab_size)
        next_token_scores, next_tokens = torch.topk(next_token_scores, 2 * num_beams, dim=1, largest=True, sorted=True)
        next_indices = torch.div(next_tokens, vocab_size, rounding_mode="floor")
        next_tokens = next_tokens % vocab_size
        new_scores = torch.zeros((batch_size, num_beams))
        new_tokens = torch.zeros((batch_size, num_beams), dtype=torch.long)
        new_indices = torch.zeros((batch_size, num_beams), dtype=torch.long)
        for b in range(batch_size):
            if done[b]:
                new_tokens[b] = cfg.pad_token_id
                new_indices[b] = torch.arange(num_beams)
                continue
            k = 0
            for score, token, beam in zip(next_token_scores[b], next_tokens[b], next_indices[b]):
                batch_beam_idx = b * num_beams + beam.item()
                if token.item() == cfg.eos_token_id:
                    hyp = torch.cat([seqs[batch_beam_idx], token.view(1)])
                    finished[b].append((score.item() / (hyp.shape[-1] ** length_penalty), hyp.tolist()))
                else:
                    new_scores[b, k], new_tokens[b, k], new_indices[b, k] = score, token, beam
                    k += 1
                if k == num_beams:
                    break
            if len(finished[b]) >= num_beams:
                best_open = new_scores[b].max().item() / (cur_len ** length_penalty)
                worst = sorted(s for s, _ in finished[b])[-num_beams]
                done[b] = worst >= best_open
        beam_scores = new_scores.view(-1)
        beam_idx = (new_indices + torch.arange(batch_size)[:, None] * num_beams).view(-1)
        seqs = torch.cat([seqs[beam_idx, :], new_tokens.view(-1, 1)], dim=-1)
        if done.all():
            break
    results = []
    for b in range(batch_size):
        if not finished[b]:
            for i in range(num_beams):
                s = seqs[b * num_beams + i]
                finished[b].append((beam_scores[b * num_beams + i].item() / (s.shape[-1] ** length_penalty), s.tolist()))
        results.append(max(finished[b]))
    return results


@torch.no_grad()
def greedy(model, input_ids, attention_mask, max_length=8):
    enc = model.encoder(input_ids, attention_mask=attention_mask)
    dec = torch.full((input_ids.shape[0], 1), model.config.decoder_start_token_id, dtype=torch.long)
    unfinished = torch.ones(input_ids.shape[0], dtype=torch.long)
    for _ in range(max_length - 1):
        _, logits, _ = model(None, attention_mask, decoder_input_ids=dec, encoder_outputs=enc)
        nxt = logits[:, -1].argmax(-1)
        nxt = nxt * unfinished + model.config.pad_token_id * (1 - unfinished)
        dec = torch.cat([dec, nxt[:, None]], dim=-1)
        unfinished = unfinished.mul((nxt != model.config.eos_token_id).long())
        if unfinished.max() == 0:
            break
    return dec


torch.manual_seed(0)
config = T5Config()
model = T5ForConditionalGeneration(config)
share_init(model)

# the buckets themselves: bidirectional (encoder) and causal (decoder)
rel = torch.arange(-20, 21)
report("buckets bidir", T5Attention._relative_position_bucket(rel, True, 8, 16).tolist())
report("buckets causal", T5Attention._relative_position_bucket(rel, False, 8, 16).tolist())
bias = model.encoder.block[0].self_attn.compute_bias(5, 7)
report("bias", tuple(bias.shape), round(bias.sum().item(), 5))

# a copy task with padded sources: target = reversed source, then eos; pads in labels are -100
src = torch.tensor([[5, 9, 12, 7, 1, 0], [8, 3, 6, 1, 0, 0], [4, 4, 10, 11, 13, 1], [20, 21, 1, 0, 0, 0]])
attention_mask = (src != config.pad_token_id).long()
labels = torch.full_like(src, -100)
for b in range(src.shape[0]):
    n = int(attention_mask[b].sum()) - 1
    labels[b, :n] = src[b, :n].flip(0)
    labels[b, n] = config.eos_token_id
report("shift_right", model._shift_right(labels).tolist())

no_decay = ["bias", "layer_norm.weight", "ln_"]
groups = [
    {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)], "weight_decay": 0.01},
    {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
]
report("groups", [len(g["params"]) for g in groups])
optimizer = torch.optim.AdamW(groups, lr=1e-2)
for step in range(8):
    loss, logits, _ = model(src, attention_mask, labels=labels, label_smoothing=0.1)
    lprobs = F.log_softmax(logits, dim=-1)
    # fairseq pads targets with the pad id (gather needs valid indices) and masks that id
    target = labels.view(-1).masked_fill(labels.view(-1) == -100, config.pad_token_id)
    fs_loss, nll = label_smoothed_nll_loss(lprobs.view(-1, lprobs.size(-1)), target, 0.1,
                                          ignore_index=config.pad_token_id)
    ntokens = (labels != -100).sum()
    optimizer.zero_grad()
    (loss + 0.0 * fs_loss).backward()
    optimizer.step()
    report(f"step {step}", loss.item(), (fs_loss / ntokens).item(), (nll / ntokens).item(), ntokens.item())

plain = F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1), ignore_index=-100, reduction="none")
report("per-token ce", tuple(plain.shape), (plain == 0).sum().item(), round(plain.sum().item(), 4))

model.eval()
g = greedy(model, src, attention_mask)
report("greedy", g.tolist())
beams = beam_search(model, src, attention_mask, num_beams=3)
report("beam", [(round(s, 4), h) for s, h in beams])
one_beam = beam_search(model, src, attention_mask, num_beams=1)
report("beam=1", [h for _, h in one_beam])
# a deep copy decodes identically and shares no storage
twin = copy.deepcopy(model)
report("deepcopy", torch.equal(greedy(twin, src, attention_mask), g),
       twin.shared.weight.data_ptr() != model.shared.weight.data_ptr(), twin.lm_head.weight is twin.shared.weight)
