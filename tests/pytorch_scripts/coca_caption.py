"""A tiny CoCa-style captioner (contrastive + captioning), written the way open_clip's coca_model.py,
its transformer.py and the PyTorch translation tutorial write it: region features of different
counts per image padded with a boolean mask, an attentional pooler (nn.MultiheadAttention with
kdim / vdim of the image width and learned queries), a unimodal causal text encoder with a CLS
token appended at the end whose attention mask is open_clip's build_cls_mask (F.pad of a
boolean mask with value=True, masked_fill_ with -inf, torch.repeat_interleave over heads into a
3-D (B * heads, L, L) attn_mask added to the causal mask), a multimodal nn.TransformerDecoder
(batch_first, norm_first) with tgt_mask from nn.Transformer.generate_square_subsequent_mask,
tgt_is_causal, tgt_key_padding_mask and memory_key_padding_mask, teacher forcing with
F.cross_entropy over (N, C, L) logits with ignore_index=pad and label_smoothing, a CLIP loss on the
pooled embeddings, AdamW + CosineAnnealingLR with warmup through SequentialLR, then greedy decoding
and beam search (repeat_interleave of the memory, log_softmax + running beam scores, topk over
beam * vocab, floor division and remainder to split beams and tokens, index_select to reorder,
torch.where to freeze finished beams, gather, a length penalty).

Training is 15 steps at lr 5e-3: with 30 steps at 1e-2 the two libraries' float32 rounding grew
to 1.3e-4 relative by step 13 once torch, OpenBLAS and the kernels ran their AVX2 code paths
(OPENBLAS_CORETYPE=Haswell NUMBA_CPU_NAME=haswell MKL_ENABLE_INSTRUCTIONS=AVX2
ATEN_CPU_CAPABILITY=avx2), past the comparison's 1e-4; these settings passed there and natively
for seeds 0-3."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, BOS, EOS, VOCAB, MAX_LEN = 0, 1, 2, 16, 7


class AttentionalPooler(nn.Module):
    def __init__(self, d_model, context_dim, n_head=2, n_queries=3):
        super().__init__()
        self.query = nn.Parameter(torch.randn(n_queries, d_model))
        self.attn = nn.MultiheadAttention(d_model, n_head, kdim=context_dim, vdim=context_dim, batch_first=True)
        self.ln_q = nn.LayerNorm(d_model)
        self.ln_k = nn.LayerNorm(context_dim)

    def forward(self, x, key_padding_mask=None):
        N = x.shape[0]
        x = self.ln_k(x)
        q = self.ln_q(self.query)
        out = self.attn(q.unsqueeze(0).expand(N, -1, -1), x, x, key_padding_mask=key_padding_mask, need_weights=False)[0]
        return out


class VisionTower(nn.Module):
    def __init__(self, feat_dim=10, width=12, d_model=16, embed_dim=8):
        super().__init__()
        self.proj_in = nn.Linear(feat_dim, width)
        self.pos = nn.Parameter(torch.randn(6, width) * 0.02)
        self.attn_pool = AttentionalPooler(d_model, width, n_queries=4)
        self.ln_post = nn.LayerNorm(d_model)
        self.proj = nn.Parameter(torch.randn(d_model, embed_dim) * d_model ** -0.5)

    def forward(self, regions, region_mask):                     # (B, R, F), (B, R) True = padding
        x = self.proj_in(regions) + self.pos[: regions.shape[1]]
        x = self.attn_pool(x, key_padding_mask=region_mask)
        x = self.ln_post(x)
        pooled, tokens = x[:, 0], x[:, 1:]
        return pooled @ self.proj, tokens


class TextTower(nn.Module):
    def __init__(self, width=16, heads=2, layers=1, embed_dim=8):
        super().__init__()
        self.heads = heads
        self.token_embedding = nn.Embedding(VOCAB, width)
        self.positional_embedding = nn.Parameter(torch.empty(MAX_LEN + 1, width))
        self.cls_emb = nn.Parameter(torch.empty(width))
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.cls_emb, std=0.01)
        layer = nn.TransformerEncoderLayer(width, heads, width * 2, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, embed_dim))
        nn.init.normal_(self.text_projection, std=width ** -0.5)
        self.register_buffer("attn_mask", self.build_causal_mask(), persistent=False)

    def build_causal_mask(self):
        mask = torch.empty(MAX_LEN + 1, MAX_LEN + 1)
        mask.fill_(float("-inf"))
        mask.triu_(1)  # zero out the lower diagonal
        return mask

    def build_cls_mask(self, text, cast_dtype):
        cls_mask = (text != PAD).unsqueeze(1)
        cls_mask = F.pad(cls_mask, (1, 0, cls_mask.shape[2], 0), value=True)
        additive_mask = torch.empty(cls_mask.shape, dtype=cast_dtype, device=cls_mask.device)
        additive_mask.fill_(0)
        additive_mask.masked_fill_(~cls_mask, float("-inf"))
        additive_mask = torch.repeat_interleave(additive_mask, self.heads, 0)
        return additive_mask

    def forward(self, text):
        seq_len = text.shape[1] + 1
        x = self.token_embedding(text)
        x = torch.cat([x, self.cls_emb.view(1, 1, -1).expand(x.shape[0], 1, -1)], dim=1)
        cls_mask = self.build_cls_mask(text, x.dtype)
        attn_mask = self.attn_mask[None, :seq_len, :seq_len] + cls_mask[:, :seq_len, :seq_len]
        x = x + self.positional_embedding[:seq_len]
        x = self.transformer(x, mask=attn_mask)
        pooled, tokens = x[:, -1], x[:, :-1]
        pooled = self.ln_final(pooled)
        return pooled @ self.text_projection, tokens


class MultimodalDecoder(nn.Module):
    def __init__(self, width=16, heads=2, layers=2):
        super().__init__()
        layer = nn.TransformerDecoderLayer(width, heads, width * 2, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers, norm=nn.LayerNorm(width))
        self.lm_head = nn.Linear(width, VOCAB)

    def forward(self, text_tokens, image_tokens, tgt_key_padding_mask=None, memory_key_padding_mask=None):
        L = text_tokens.shape[1]
        tgt_mask = nn.Transformer.generate_square_subsequent_mask(L, device=text_tokens.device)
        out = self.decoder(text_tokens, image_tokens, tgt_mask=tgt_mask, tgt_is_causal=True,
                           tgt_key_padding_mask=tgt_key_padding_mask,
                           memory_key_padding_mask=memory_key_padding_mask)
        return self.lm_head(out)


class CoCa(nn.Module):
    def __init__(self):
        super().__init__()
        self.visual = VisionTower()
        self.text = TextTower()
        self.text_decoder = MultimodalDecoder()
        self.logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))

    def forward(self, regions, region_mask, text):
        image_latent, image_embs = self.visual(regions, region_mask)
        text_latent, token_embs = self.text(text)
        # the decoder predicts token t + 1 from tokens <= t
        logits = self.text_decoder(token_embs[:, :-1], image_embs, tgt_key_padding_mask=text[:, :-1] == PAD)
        return F.normalize(image_latent, dim=-1), F.normalize(text_latent, dim=-1), logits, self.logit_scale.exp()


class CoCaLoss(nn.Module):
    def __init__(self, caption_loss_weight=2.0, clip_loss_weight=1.0, pad_id=PAD, label_smoothing=0.1):
        super().__init__()
        self.caption_loss = nn.CrossEntropyLoss(ignore_index=pad_id, label_smoothing=label_smoothing)
        self.caption_loss_weight = caption_loss_weight
        self.clip_loss_weight = clip_loss_weight

    def forward(self, image_features, text_features, logits, labels, logit_scale):
        logits_per_image = logit_scale * image_features @ text_features.T
        ground = torch.arange(logits_per_image.shape[0])
        clip_loss = (F.cross_entropy(logits_per_image, ground) + F.cross_entropy(logits_per_image.T, ground)) / 2
        caption_loss = self.caption_loss(logits.permute(0, 2, 1), labels)
        return clip_loss * self.clip_loss_weight, caption_loss * self.caption_loss_weight


def make_batch(rng, n=4):
    """Each image has 3-6 region features; region r of class c carries a one-hot at c; the caption
    is "<bos> c c+5 <eos>" (plus a word when the image is large), padded to MAX_LEN."""
    cls = rng.integers(0, 5, n)
    counts = rng.integers(3, 7, n)
    regions = rng.standard_normal((n, 6, 10)).astype(np.float32) * 0.3
    region_mask = np.arange(6)[None, :] >= counts[:, None]
    text = np.full((n, MAX_LEN), PAD, np.int64)
    for i in range(n):
        regions[i, :, cls[i]] += 1.5
        regions[i, counts[i]:] = 0.0
        words = [BOS, 3 + cls[i], 8 + cls[i]] + ([14] if counts[i] > 4 else []) + [EOS]
        text[i, :len(words)] = words
    return torch.from_numpy(regions), torch.from_numpy(region_mask), torch.from_numpy(text)


@torch.no_grad()
def greedy_decode(model, regions, region_mask, max_len=MAX_LEN):
    _, memory = model.visual(regions, region_mask)
    ys = torch.full((regions.shape[0], 1), BOS, dtype=torch.long)
    finished = torch.zeros(regions.shape[0], dtype=torch.bool)
    for _ in range(max_len - 1):
        _, tokens = model.text(ys)
        logits = model.text_decoder(tokens, memory)[:, -1]
        next_word = torch.where(finished, torch.full_like(finished, PAD, dtype=torch.long), logits.argmax(dim=-1))
        ys = torch.cat([ys, next_word.unsqueeze(1)], dim=1)
        finished |= next_word == EOS
        if finished.all():
            break
    return ys


@torch.no_grad()
def beam_search(model, regions, region_mask, num_beams=3, max_len=MAX_LEN, length_penalty=1.0):
    batch_size = regions.shape[0]
    _, memory = model.visual(regions, region_mask)
    memory = memory.repeat_interleave(num_beams, dim=0)                         # (B * k, Q, D)
    input_ids = torch.full((batch_size * num_beams, 1), BOS, dtype=torch.long)
    beam_scores = torch.zeros((batch_size, num_beams))
    beam_scores[:, 1:] = -1e9  # only the first beam is live at the start
    beam_scores = beam_scores.view((batch_size * num_beams,))
    finished = torch.zeros(batch_size * num_beams, dtype=torch.bool)
    lengths = torch.ones(batch_size * num_beams)
    for _ in range(max_len - 1):
        _, tokens = model.text(input_ids)
        logits = model.text_decoder(tokens, memory)[:, -1, :]
        log_probs = F.log_softmax(logits, dim=-1)                                 # (B * k, V)
        # a finished beam may only emit PAD, at no cost
        pad_only = torch.full_like(log_probs, float("-inf"))
        pad_only[:, PAD] = 0.0
        log_probs = torch.where(finished[:, None], pad_only, log_probs)
        next_scores = log_probs + beam_scores[:, None].expand_as(log_probs)
        next_scores = next_scores.view(batch_size, num_beams * VOCAB)
        next_scores, next_tokens = torch.topk(next_scores, num_beams, dim=1, largest=True, sorted=True)
        next_indices = torch.div(next_tokens, VOCAB, rounding_mode="floor")
        next_tokens = next_tokens % VOCAB
        beam_idx = (next_indices + torch.arange(batch_size).unsqueeze(1) * num_beams).view(-1)
        input_ids = torch.cat([input_ids.index_select(0, beam_idx), next_tokens.view(-1, 1)], dim=-1)
        finished = finished.index_select(0, beam_idx)
        lengths = lengths.index_select(0, beam_idx) + (~finished).float()
        finished = finished | (next_tokens.view(-1) == EOS)
        beam_scores = next_scores.view(-1)
        if finished.all():
            break
    normalised = (beam_scores / lengths ** length_penalty).view(batch_size, num_beams)
    best = normalised.argmax(dim=-1, keepdim=True)
    best_ids = input_ids.view(batch_size, num_beams, -1).gather(
        1, best.unsqueeze(-1).expand(-1, -1, input_ids.shape[-1])).squeeze(1)
    return best_ids, normalised.gather(1, best).squeeze(1), beam_scores.view(batch_size, num_beams)


torch.manual_seed(0)
rng = np.random.default_rng(0)
model = CoCa()
share_init(model)
loss_fn = CoCaLoss()
optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.05)
warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.25, total_iters=2)
cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=13, eta_min=1e-4)
scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, schedulers=[warmup, cosine], milestones=[2])
for step in range(15):
    regions, region_mask, text = make_batch(rng)
    model.train()
    image_features, text_features, logits, logit_scale = model(regions, region_mask, text)
    labels = text[:, 1:]
    clip_loss, caption_loss = loss_fn(image_features, text_features, logits, labels, logit_scale)
    loss = clip_loss + caption_loss
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0, norm_type=2.0)
    optimizer.step()
    scheduler.step()
    report("step", step, clip_loss.item(), caption_loss.item(), scheduler.get_last_lr()[0], tuple(logits.shape))

# the caption loss by hand: label smoothing spreads eps over all classes, padding positions are ignored
with torch.no_grad():
    flat_logits, flat_labels = logits.reshape(-1, VOCAB), labels.reshape(-1)
    keep = flat_labels != PAD
    logp = F.log_softmax(flat_logits[keep], dim=-1)
    nll = -logp.gather(1, flat_labels[keep].unsqueeze(1)).squeeze(1)
    by_hand = (0.9 * nll - 0.1 * logp.mean(dim=-1)).mean()
    report("smoothing", by_hand.item(), F.cross_entropy(logits.permute(0, 2, 1), labels, ignore_index=PAD,
                                                         label_smoothing=0.1).item(),
           F.cross_entropy(flat_logits, flat_labels, ignore_index=PAD, label_smoothing=0.1, reduction="sum").item(),
           F.cross_entropy(logits.permute(0, 2, 1), labels, ignore_index=PAD, reduction="none").sum(1).tolist())

model.eval()
regions, region_mask, text = make_batch(rng, 5)
greedy = greedy_decode(model, regions, region_mask)
best_ids, best_scores, all_scores = beam_search(model, regions, region_mask)
report("greedy", greedy.tolist())
report("beam", best_ids.tolist(), best_scores.tolist(), all_scores.tolist())
report("targets", text.tolist())
with torch.no_grad():
    image_latent, _ = model.visual(regions, region_mask)
    text_latent, _ = model.text(text)
    sim = F.normalize(image_latent, dim=-1) @ F.normalize(text_latent, dim=-1).T
report("retrieval", sim.argmax(dim=1).tolist(), sim.diag().tolist())
