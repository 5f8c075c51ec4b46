"""A tiny BLIP / ALBEF retrieval model, written the way BLIP's blip_retrieval.py and ALBEF's
model_retrieval.py write it: a ViT image encoder, a BERT-style text encoder whose layers add
cross-attention to the image tokens in "multimodal" mode (HF-style transpose_for_scores and an
extended additive attention mask from torch.finfo(dtype).min), projections + F.normalize, a
learnable temperature clamped in place under no_grad, momentum encoders (copy_params with
param_m.data.copy_ and requires_grad = False, then param_m.data.mul_(m).add_(param.data, alpha=1 - m)),
feature queues as buffers (randn normalised along dim 0, a long queue_ptr, dequeue-and-enqueue by
slice assignment of .T), image ids turned into soft contrastive targets with torch.eq(idx, idx_all),
momentum distillation (alpha * softmax + (1 - alpha) * targets) with -sum(log_softmax * targets),
image-text matching on hard negatives drawn by torch.multinomial from softmax weights whose
positives are zeroed with masked_fill_ (under torch.no_grad), torch.stack of the drawn rows, a
concat_all_gather that is the identity without torch.distributed, the alpha warm-up, and
retrieval evaluation that reranks topk candidates with ITM scores into a torch.full(-100) matrix,
with recall@k computed in NumPy as BLIP's itm_eval."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class BertSelfAttention(nn.Module):
    def __init__(self, hidden, heads, is_cross_attention=False, encoder_width=None):
        super().__init__()
        self.num_attention_heads = heads
        self.attention_head_size = hidden // heads
        self.all_head_size = hidden
        self.query = nn.Linear(hidden, hidden)
        kv_width = encoder_width if is_cross_attention else hidden
        self.key = nn.Linear(kv_width, hidden)
        self.value = nn.Linear(kv_width, hidden)
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)

    def transpose_for_scores(self, x):
        new_x_shape = x.size()[:-1] + (self.num_attention_heads, self.attention_head_size)
        x = x.view(*new_x_shape)
        return x.permute(0, 2, 1, 3)

    def forward(self, hidden_states, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None):
        mixed_query_layer = self.query(hidden_states)
        if encoder_hidden_states is not None:
            key_layer = self.transpose_for_scores(self.key(encoder_hidden_states))
            value_layer = self.transpose_for_scores(self.value(encoder_hidden_states))
            attention_mask = encoder_attention_mask
        else:
            key_layer = self.transpose_for_scores(self.key(hidden_states))
            value_layer = self.transpose_for_scores(self.value(hidden_states))
        query_layer = self.transpose_for_scores(mixed_query_layer)
        attention_scores = torch.matmul(query_layer, key_layer.transpose(-1, -2))
        attention_scores = attention_scores / math.sqrt(self.attention_head_size)
        if attention_mask is not None:
            attention_scores = attention_scores + attention_mask
        attention_probs = nn.Softmax(dim=-1)(attention_scores)
        context_layer = torch.matmul(attention_probs, value_layer)
        context_layer = context_layer.permute(0, 2, 1, 3).contiguous()
        new_context_layer_shape = context_layer.size()[:-2] + (self.all_head_size,)
        context_layer = context_layer.view(*new_context_layer_shape)
        return self.LayerNorm(self.dense(context_layer) + hidden_states)


class BertLayer(nn.Module):
    def __init__(self, hidden, heads, encoder_width):
        super().__init__()
        self.attention = BertSelfAttention(hidden, heads)
        self.crossattention = BertSelfAttention(hidden, heads, is_cross_attention=True, encoder_width=encoder_width)
        self.intermediate = nn.Linear(hidden, hidden * 2)
        self.output = nn.Linear(hidden * 2, hidden)
        self.output_norm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, hidden_states, attention_mask, encoder_hidden_states=None, encoder_attention_mask=None, mode="text"):
        hidden_states = self.attention(hidden_states, attention_mask)
        if mode == "multimodal":
            assert encoder_hidden_states is not None, "encoder_hidden_states must be given for cross-attention layers"
            hidden_states = self.crossattention(hidden_states, None, encoder_hidden_states, encoder_attention_mask)
        return self.output_norm(self.output(F.gelu(self.intermediate(hidden_states))) + hidden_states)


class BertModel(nn.Module):
    def __init__(self, vocab=30, hidden=16, heads=2, layers=2, encoder_width=16, max_len=8):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden, padding_idx=0)
        self.position_embeddings = nn.Embedding(max_len, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)
        self.layer = nn.ModuleList([BertLayer(hidden, heads, encoder_width) for _ in range(layers)])

    def get_extended_attention_mask(self, attention_mask, dtype):
        extended_attention_mask = attention_mask[:, None, None, :]
        extended_attention_mask = extended_attention_mask.to(dtype=dtype)  # fp16 compatibility
        return (1.0 - extended_attention_mask) * torch.finfo(dtype).min

    def forward(self, input_ids, attention_mask, encoder_hidden_states=None, encoder_attention_mask=None, mode="text"):
        seq_length = input_ids.size(1)
        position_ids = torch.arange(seq_length, dtype=torch.long, device=input_ids.device).unsqueeze(0)
        embeddings = self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(position_ids))
        extended = self.get_extended_attention_mask(attention_mask, embeddings.dtype)
        encoder_extended = None
        if encoder_hidden_states is not None:
            encoder_extended = self.get_extended_attention_mask(encoder_attention_mask, embeddings.dtype)
        hidden_states = embeddings
        for layer_module in self.layer:
            hidden_states = layer_module(hidden_states, extended, encoder_hidden_states, encoder_extended, mode=mode)
        return hidden_states


class VisionTransformer(nn.Module):
    def __init__(self, img_size=8, patch_size=4, embed_dim=16, depth=1, heads=2):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)
        num_patches = (img_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=.02)
        nn.init.trunc_normal_(self.cls_token, std=.02)
        layer = nn.TransformerEncoderLayer(embed_dim, heads, embed_dim * 2, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

    def forward(self, x):
        B = x.shape[0]
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        cls_tokens = self.cls_token.expand(B, -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)
        x = x + self.pos_embed[:, :x.size(1), :]
        return self.norm(self.blocks(x))


@torch.no_grad()
def concat_all_gather(tensor):
    """Gather a tensor from every process (the identity on one process)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return tensor
    tensors_gather = [torch.ones_like(tensor) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(tensors_gather, tensor, async_op=False)
    return torch.cat(tensors_gather, dim=0)


class BLIP_Retrieval(nn.Module):
    def __init__(self, embed_dim=8, queue_size=8, momentum=0.9, negative_all_rank=False):
        super().__init__()
        self.visual_encoder = VisionTransformer()
        vision_width = 16
        self.text_encoder = BertModel(encoder_width=vision_width)
        text_width = 16
        self.enc_token_id = 3
        self.vision_proj = nn.Linear(vision_width, embed_dim)
        self.text_proj = nn.Linear(text_width, embed_dim)
        self.itm_head = nn.Linear(text_width, 2)

        # create momentum encoders
        self.visual_encoder_m = VisionTransformer()
        self.vision_proj_m = nn.Linear(vision_width, embed_dim)
        self.text_encoder_m = BertModel(encoder_width=vision_width)
        self.text_proj_m = nn.Linear(text_width, embed_dim)
        self.model_pairs = [[self.visual_encoder, self.visual_encoder_m],
                            [self.vision_proj, self.vision_proj_m],
                            [self.text_encoder, self.text_encoder_m],
                            [self.text_proj, self.text_proj_m]]
        self.copy_params()

        # create the queue
        self.register_buffer("image_queue", torch.randn(embed_dim, queue_size))
        self.register_buffer("text_queue", torch.randn(embed_dim, queue_size))
        self.register_buffer("idx_queue", torch.full((1, queue_size), -100))
        self.register_buffer("ptr_queue", torch.zeros(1, dtype=torch.long))
        self.image_queue = nn.functional.normalize(self.image_queue, dim=0)
        self.text_queue = nn.functional.normalize(self.text_queue, dim=0)

        self.queue_size = queue_size
        self.momentum = momentum
        self.temp = nn.Parameter(0.07 * torch.ones([]))
        self.negative_all_rank = negative_all_rank

    def forward(self, image, input_ids, attention_mask, alpha, idx):
        with torch.no_grad():
            self.temp.clamp_(0.001, 0.5)

        image_embeds = self.visual_encoder(image)
        image_atts = torch.ones(image_embeds.size()[:-1], dtype=torch.long).to(image.device)
        image_feat = F.normalize(self.vision_proj(image_embeds[:, 0, :]), dim=-1)

        text_output = self.text_encoder(input_ids, attention_mask, mode="text")
        text_feat = F.normalize(self.text_proj(text_output[:, 0, :]), dim=-1)

        ###============== Image-text Contrastive Learning ===================###
        idx = idx.view(-1, 1)
        idx_all = torch.cat([idx.t(), self.idx_queue.clone().detach()], dim=1)
        pos_idx = torch.eq(idx, idx_all).float()
        sim_targets = pos_idx / pos_idx.sum(1, keepdim=True)

        # get momentum features
        with torch.no_grad():
            self._momentum_update()
            image_embeds_m = self.visual_encoder_m(image)
            image_feat_m = F.normalize(self.vision_proj_m(image_embeds_m[:, 0, :]), dim=-1)
            image_feat_m_all = torch.cat([image_feat_m.t(), self.image_queue.clone().detach()], dim=1)

            text_output_m = self.text_encoder_m(input_ids, attention_mask, mode="text")
            text_feat_m = F.normalize(self.text_proj_m(text_output_m[:, 0, :]), dim=-1)
            text_feat_m_all = torch.cat([text_feat_m.t(), self.text_queue.clone().detach()], dim=1)

            sim_i2t_m = image_feat_m @ text_feat_m_all / self.temp
            sim_t2i_m = text_feat_m @ image_feat_m_all / self.temp

            sim_i2t_targets = alpha * F.softmax(sim_i2t_m, dim=1) + (1 - alpha) * sim_targets
            sim_t2i_targets = alpha * F.softmax(sim_t2i_m, dim=1) + (1 - alpha) * sim_targets

        sim_i2t = image_feat @ text_feat_m_all / self.temp
        sim_t2i = text_feat @ image_feat_m_all / self.temp

        loss_i2t = -torch.sum(F.log_softmax(sim_i2t, dim=1) * sim_i2t_targets, dim=1).mean()
        loss_t2i = -torch.sum(F.log_softmax(sim_t2i, dim=1) * sim_t2i_targets, dim=1).mean()
        loss_ita = (loss_i2t + loss_t2i) / 2

        idxs = concat_all_gather(idx)
        self._dequeue_and_enqueue(image_feat_m, text_feat_m, idxs)

        ###============== Image-text Matching ===================###
        encoder_input_ids = input_ids.clone()
        encoder_input_ids[:, 0] = self.enc_token_id

        # forward the positve image-text pair
        bs = image.size(0)
        output_pos = self.text_encoder(encoder_input_ids, attention_mask, encoder_hidden_states=image_embeds,
                                       encoder_attention_mask=image_atts, mode="multimodal")

        with torch.no_grad():
            mask = torch.eq(idx, idx.t())
            sim_i2t = image_feat @ text_feat.t() / self.temp
            sim_t2i = text_feat @ image_feat.t() / self.temp
            weights_i2t = F.softmax(sim_i2t, dim=1)
            weights_i2t.masked_fill_(mask, 0)
            weights_t2i = F.softmax(sim_t2i, dim=1)
            weights_t2i.masked_fill_(mask, 0)

        # select a negative image (from same rank) for each text
        image_embeds_neg = []
        for b in range(bs):
            neg_idx = torch.multinomial(weights_t2i[b], 1).item()
            image_embeds_neg.append(image_embeds[neg_idx])
        image_embeds_neg = torch.stack(image_embeds_neg, dim=0)

        # select a negative text (from same rank) for each image
        text_ids_neg = []
        text_atts_neg = []
        for b in range(bs):
            neg_idx = torch.multinomial(weights_i2t[b], 1).item()
            text_ids_neg.append(encoder_input_ids[neg_idx])
            text_atts_neg.append(attention_mask[neg_idx])
        text_ids_neg = torch.stack(text_ids_neg, dim=0)
        text_atts_neg = torch.stack(text_atts_neg, dim=0)

        text_ids_all = torch.cat([encoder_input_ids, text_ids_neg], dim=0)
        text_atts_all = torch.cat([attention_mask, text_atts_neg], dim=0)
        image_embeds_all = torch.cat([image_embeds_neg, image_embeds], dim=0)
        image_atts_all = torch.cat([image_atts, image_atts], dim=0)

        output_neg = self.text_encoder(text_ids_all, text_atts_all, encoder_hidden_states=image_embeds_all,
                                       encoder_attention_mask=image_atts_all, mode="multimodal")
        vl_embeddings = torch.cat([output_pos[:, 0, :], output_neg[:, 0, :]], dim=0)
        vl_output = self.itm_head(vl_embeddings)
        itm_labels = torch.cat([torch.ones(bs, dtype=torch.long), torch.zeros(2 * bs, dtype=torch.long)],
                               dim=0).to(image.device)
        loss_itm = F.cross_entropy(vl_output, itm_labels)
        return loss_ita, loss_itm, weights_t2i, weights_i2t

    @torch.no_grad()
    def copy_params(self):
        for model_pair in self.model_pairs:
            for param, param_m in zip(model_pair[0].parameters(), model_pair[1].parameters()):
                param_m.data.copy_(param.data)  # initialize
                param_m.requires_grad = False  # not update by gradient

    @torch.no_grad()
    def _momentum_update(self):
        for model_pair in self.model_pairs:
            for param, param_m in zip(model_pair[0].parameters(), model_pair[1].parameters()):
                param_m.data.mul_(self.momentum).add_(param.data, alpha=1. - self.momentum)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, image_feat, text_feat, idxs):
        # gather keys before updating queue
        image_feats = concat_all_gather(image_feat)
        text_feats = concat_all_gather(text_feat)
        batch_size = image_feats.shape[0]
        ptr = int(self.ptr_queue)
        assert self.queue_size % batch_size == 0  # for simplicity
        # replace the keys at ptr (dequeue and enqueue)
        self.image_queue[:, ptr:ptr + batch_size] = image_feats.T
        self.text_queue[:, ptr:ptr + batch_size] = text_feats.T
        self.idx_queue[:, ptr:ptr + batch_size] = idxs.T
        ptr = (ptr + batch_size) % self.queue_size  # move pointer
        self.ptr_queue[0] = ptr


def make_pairs(rng, img_ids):
    """Image i has a dominant colour channel and a brightness; its caption names both."""
    n = len(img_ids)
    image = rng.standard_normal((n, 3, 8, 8)).astype(np.float32) * 0.3
    ids = np.zeros((n, 8), np.int64)
    mask = np.zeros((n, 8), np.int64)
    for i, k in enumerate(img_ids):
        image[i, k % 3] += 1.0 + (k // 3) * 0.5
        words = [2, 4 + k % 3, 8 + k // 3, 12 + rng.integers(0, 6)]
        ids[i, :len(words)] = words
        mask[i, :len(words)] = 1
    return (torch.from_numpy(image), torch.from_numpy(ids), torch.from_numpy(mask),
            torch.tensor(list(img_ids), dtype=torch.long))


torch.manual_seed(0)
rng = np.random.default_rng(0)
model = BLIP_Retrieval()
share_init(model)
report("momentum copy", all(torch.equal(p, p_m) for p, p_m in zip(model.text_encoder.parameters(),
                                                                      model.text_encoder_m.parameters())),
       sum(p.numel() for p in model.parameters() if p.requires_grad), model.image_queue.norm(dim=0).tolist())
optimizer = torch.optim.AdamW(params=[p for p in model.parameters() if p.requires_grad], lr=3e-3, weight_decay=0.05)
steps_per_epoch, epochs = 3, 2
for epoch in range(epochs):
    # the cosine lr schedule of BLIP's utils.cosine_lr_schedule, set per epoch
    lr = (3e-3 - 1e-4) * 0.5 * (1. + math.cos(math.pi * epoch / epochs)) + 1e-4
    for param_group in optimizer.param_groups:
        param_group["lr"] = lr
    for i in range(steps_per_epoch):
        # a pair of images per step: with the positive masked out, each row has exactly one
        # negative left, so the drawn hard negatives do not depend on the random stream
        image, input_ids, attention_mask, idx = make_pairs(rng, rng.choice(6, 2, replace=False))
        if epoch > 0:
            alpha = 0.4
        else:
            alpha = 0.4 * min(1, i / steps_per_epoch)
        model.train()
        loss_ita, loss_itm, w_t2i, w_i2t = model(image, input_ids, attention_mask, alpha=alpha, idx=idx)
        loss = loss_ita + loss_itm
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        report("step", epoch, i, loss_ita.item(), loss_itm.item(), model.temp.item(), model.temp.grad.item(),
               int(model.ptr_queue), model.idx_queue.tolist(), w_t2i.tolist(), lr)
report("momentum moved", sum((p - p_m).abs().sum().item() for p, p_m in zip(model.vision_proj.parameters(),
                                                                            model.vision_proj_m.parameters())),
       model.text_queue.norm(dim=0).tolist())

# hard negatives for a bigger batch: never a positive, drawn in proportion to the weights
with torch.no_grad():
    image, input_ids, attention_mask, idx = make_pairs(rng, [0, 1, 2, 2, 4, 5])
    image_feat = F.normalize(model.vision_proj(model.visual_encoder(image)[:, 0, :]), dim=-1)
    text_feat = F.normalize(model.text_proj(model.text_encoder(input_ids, attention_mask)[:, 0, :]), dim=-1)
    idx = idx.view(-1, 1)
    mask = torch.eq(idx, idx.t())
    weights = F.softmax(text_feat @ image_feat.t() / 0.5, dim=1)
    weights.masked_fill_(mask, 0)
    draws = torch.multinomial(weights, 4000, replacement=True)                     # (6, 4000)
    freq = F.one_hot(draws, 6).float().mean(dim=1)
    expected = weights / weights.sum(1, keepdim=True)
    no_repeat = torch.multinomial(weights, 3)
report("multinomial", tuple(draws.shape), bool(mask.gather(1, draws).any()), (freq - expected).abs().max().item() < 0.04,
       bool(mask.gather(1, no_repeat).any()), [len(set(r)) for r in no_repeat.tolist()], mask.sum().item())

# retrieval: ITC similarities, the top-k reranked by ITM scores, recall@k as BLIP's itm_eval
model.eval()
with torch.no_grad():
    image, input_ids, attention_mask, img_ids = make_pairs(rng, [0, 1, 2, 3, 4, 5])
    image_embeds = model.visual_encoder(image)
    image_feat = F.normalize(model.vision_proj(image_embeds[:, 0, :]), dim=-1)
    text_feat = F.normalize(model.text_proj(model.text_encoder(input_ids, attention_mask)[:, 0, :]), dim=-1)
    sims_matrix = image_feat @ text_feat.t()
    k_test = 3
    score_matrix_i2t = torch.full((6, 6), -100.0)
    encoder_ids = input_ids.clone()
    encoder_ids[:, 0] = model.enc_token_id
    for i, sims in enumerate(sims_matrix):
        topk_sim, topk_idx = sims.topk(k=k_test, dim=0)
        encoder_output = image_embeds[i].repeat(k_test, 1, 1)
        encoder_att = torch.ones(encoder_output.size()[:-1], dtype=torch.long)
        output = model.text_encoder(encoder_ids[topk_idx], attention_mask[topk_idx], encoder_hidden_states=encoder_output,
                                    encoder_attention_mask=encoder_att, mode="multimodal")
        score = model.itm_head(output[:, 0, :])[:, 1]
        score_matrix_i2t[i, topk_idx] = score + topk_sim
scores_i2t = score_matrix_i2t.cpu().numpy()
ranks = np.zeros(scores_i2t.shape[0])
for index, score in enumerate(scores_i2t):
    inds = np.argsort(score)[::-1]
    ranks[index] = np.where(inds == index)[0][0]
tr1 = 100.0 * len(np.where(ranks < 1)[0]) / len(ranks)
tr5 = 100.0 * len(np.where(ranks < 5)[0]) / len(ranks)
report("retrieval", ranks.tolist(), tr1, tr5, (score_matrix_i2t == -100.0).sum().item(), sims_matrix.diag().tolist())
