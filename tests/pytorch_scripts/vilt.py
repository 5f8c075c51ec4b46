"""A tiny ViLT (vision-and-language transformer without convolutions or region features), written
the way the ViLT repository's vilt_module.py / objectives.py and HuggingFace's ViltModel write it:
BERT-style text embeddings (word + position + token type, LayerNorm), patch embeddings through a
Conv2d + flatten(2).transpose(1, 2) whose positional grid is resized with F.interpolate(bilinear,
align_corners=True) to each image's valid patch grid, image padding masks from
F.interpolate(mode="nearest") of pixel masks, modality-type embeddings (nn.Embedding(2, ...) on
torch.zeros_like / torch.full_like of the masks), a single-stream pre-LN transformer whose blocks
run nn.MultiheadAttention(batch_first=True) with key_padding_mask and need_weights=True,
average_attn_weights=False, a tanh pooler, three heads (image-text matching with images swapped by
torch.roll, masked-language modelling with -100 labels, VQA with soft scores and ViLT's
BCE-with-logits * num_labels), word-patch alignment through IPOT optimal transport (bmm,
masked_fill_, exp, diagonal, trace), attention rollout from per-head weights, AdamW with
no-decay groups and a 10x head lr, and HF's polynomial-decay warmup schedule through LambdaLR."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Config:
    vocab_size = 24
    hidden_size = 16
    num_heads = 2
    num_layers = 2
    max_text_len = 7
    patch_size = 4
    max_grid = 4          # positional grid of a 16 x 16 image
    vqa_labels = 5
    mlp_ratio = 2


class TextEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(config.max_text_len, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(2, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=1e-12)
        self.register_buffer("position_ids", torch.arange(config.max_text_len).expand((1, -1)), persistent=False)

    def forward(self, input_ids):
        seq_length = input_ids.size(1)
        position_ids = self.position_ids[:, :seq_length]
        token_type_ids = torch.zeros(input_ids.shape, dtype=torch.long, device=input_ids.device)
        embeddings = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        return self.LayerNorm(embeddings)


class PatchEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.proj = nn.Conv2d(3, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embeddings = nn.Parameter(torch.zeros(1, config.max_grid ** 2 + 1, config.hidden_size))
        nn.init.trunc_normal_(self.position_embeddings, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.patch_size = config.patch_size
        self.max_grid = config.max_grid

    def forward(self, pixel_values, pixel_mask):
        x = self.proj(pixel_values)                                        # (B, D, h, w)
        x_mask = pixel_mask[:, None, :, :].float()
        x_mask = F.interpolate(x_mask, size=(x.shape[2], x.shape[3])).long()
        x_h = x_mask[:, 0].sum(dim=1)[:, 0]
        x_w = x_mask[:, 0].sum(dim=2)[:, 0]
        batch_size, num_channels, height, width = x.shape
        patch_dim = self.max_grid
        spatial_pos = self.position_embeddings[:, 1:, :].transpose(1, 2).view(1, num_channels, patch_dim, patch_dim)
        pos_embed = torch.cat([
            F.pad(F.interpolate(spatial_pos, size=(h, w), mode="bilinear", align_corners=True),
                  (0, width - w, 0, height - h))
            for h, w in zip(x_h.tolist(), x_w.tolist())], dim=0)
        pos_embed = pos_embed.flatten(2).transpose(1, 2)                   # (B, h*w, D)
        x = x.flatten(2).transpose(1, 2)                                   # (B, h*w, D)
        x_mask = x_mask.flatten(1)
        cls_tokens = self.cls_token.expand(batch_size, -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)
        cls_pos = self.position_embeddings[:, 0, :][:, None, :].expand(batch_size, -1, -1)
        pos_embed = torch.cat((cls_pos, pos_embed), dim=1)
        x = x + pos_embed
        x_mask = torch.cat([torch.ones(x_mask.shape[0], 1).to(x_mask), x_mask], dim=1)
        return x, x_mask, (x_h, x_w)


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=0.0, batch_first=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim))

    def forward(self, x, mask=None):
        h = self.norm1(x)
        h, attn = self.attn(h, h, h, key_padding_mask=None if mask is None else ~mask.bool(),
                            need_weights=True, average_attn_weights=False)
        x = x + h
        x = x + self.mlp(self.norm2(x))
        return x, attn


class Pooler(nn.Module):
    def __init__(self, hidden_size):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states):
        return self.activation(self.dense(hidden_states[:, 0]))


class ViLT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.text_embeddings = TextEmbeddings(config)
        self.patch_embeddings = PatchEmbeddings(config)
        self.token_type_embeddings = nn.Embedding(2, config.hidden_size)
        self.blocks = nn.ModuleList([Block(config.hidden_size, config.num_heads, config.mlp_ratio)
                                     for _ in range(config.num_layers)])
        self.norm = nn.LayerNorm(config.hidden_size, eps=1e-6)
        self.pooler = Pooler(config.hidden_size)
        self.itm_score = nn.Linear(config.hidden_size, 2)
        self.mlm_score = nn.Sequential(nn.Linear(config.hidden_size, config.hidden_size), nn.GELU(),
                                       nn.LayerNorm(config.hidden_size), nn.Linear(config.hidden_size, config.vocab_size))
        hs = config.hidden_size
        self.vqa_classifier = nn.Sequential(nn.Linear(hs, hs * 2), nn.LayerNorm(hs * 2), nn.GELU(),
                                            nn.Linear(hs * 2, config.vqa_labels))

    def infer(self, text_ids, text_masks, img, pixel_mask, image_token_type_idx=1):
        text_embeds = self.text_embeddings(text_ids)
        image_embeds, image_masks, patch_index = self.patch_embeddings(img, pixel_mask)
        text_embeds, image_embeds = (
            text_embeds + self.token_type_embeddings(torch.zeros_like(text_masks)),
            image_embeds + self.token_type_embeddings(torch.full_like(image_masks, image_token_type_idx)),
        )
        co_embeds = torch.cat([text_embeds, image_embeds], dim=1)
        co_masks = torch.cat([text_masks, image_masks], dim=1)
        x = co_embeds
        attentions = []
        for blk in self.blocks:
            x, _attn = blk(x, mask=co_masks)
            attentions.append(_attn)
        x = self.norm(x)
        text_feats, image_feats = x[:, : text_embeds.shape[1]], x[:, text_embeds.shape[1]:]
        cls_feats = self.pooler(x)
        return {"text_feats": text_feats, "image_feats": image_feats, "cls_feats": cls_feats,
                "text_masks": text_masks, "image_masks": image_masks, "attentions": attentions,
                "patch_index": patch_index}


# -- optimal transport for word-patch alignment (ViLT's objectives.py, lightly trimmed) ----------
def cost_matrix_cosine(x, y, eps=1e-5):
    """Compute cosine distnace across every pairs of x, y (batched) [B, L_x, D] [B, L_y, D] -> [B, Lx, Ly]"""
    assert x.dim() == y.dim()
    assert x.size(0) == y.size(0)
    assert x.size(2) == y.size(2)
    x = F.normalize(x, p=2, dim=-1, eps=eps)
    y = F.normalize(y, p=2, dim=-1, eps=eps)
    cosine_sim = x.matmul(y.transpose(1, 2))
    cosine_dist = 1 - cosine_sim
    return cosine_dist


def trace(x):
    """ compute trace of input tensor (batched) """
    b, m, n = x.size()
    assert m == n
    mask = torch.eye(n, dtype=torch.bool, device=x.device).unsqueeze(0).expand_as(x)
    trace = x.masked_select(mask).contiguous().view(b, n).sum(dim=-1, keepdim=False)
    return trace


@torch.no_grad()
def ipot(C, x_len, x_pad, y_len, y_pad, joint_pad, beta, iteration, k):
    """ [B, M, N], [B], [B, M], [B], [B, N], [B, M, N]"""
    b, m, n = C.size()
    sigma = torch.ones(b, m, dtype=C.dtype, device=C.device) / x_len.unsqueeze(1)
    T = torch.ones(b, n, m, dtype=C.dtype, device=C.device)
    A = torch.exp(-C.transpose(1, 2) / beta)

    # mask padded positions
    sigma.masked_fill_(x_pad, 0)
    joint_pad = joint_pad.transpose(1, 2)
    T.masked_fill_(joint_pad, 0)
    A.masked_fill_(joint_pad, 0)

    # broadcastable lengths
    x_len = x_len.unsqueeze(1).unsqueeze(2)
    y_len = y_len.unsqueeze(1).unsqueeze(2)

    # mask to zero out padding in delta and sigma
    x_mask = (x_pad.to(C.dtype) * 1e4).unsqueeze(1)
    y_mask = (y_pad.to(C.dtype) * 1e4).unsqueeze(1)

    for _ in range(iteration):
        Q = A * T  # bs * n * m
        sigma = sigma.view(b, m, 1)
        for _ in range(k):
            delta = 1 / (y_len * Q.matmul(sigma).view(b, 1, n) + y_mask)
            sigma = 1 / (x_len * delta.matmul(Q) + x_mask)
        T = delta.view(b, n, 1) * Q * sigma
    T.masked_fill_(joint_pad, 0)
    return T


def optimal_transport_dist(txt_emb, img_emb, txt_pad, img_pad, beta=0.5, iteration=20, k=1):
    """ [B, M, D], [B, N, D], [B, M], [B, N]"""
    cost = cost_matrix_cosine(txt_emb, img_emb)
    # mask the padded inputs
    joint_pad = txt_pad.unsqueeze(-1) | img_pad.unsqueeze(-2)
    cost.masked_fill_(joint_pad, 0)

    txt_len = (txt_pad.size(1) - txt_pad.sum(dim=1, keepdim=False)).to(dtype=cost.dtype)
    img_len = (img_pad.size(1) - img_pad.sum(dim=1, keepdim=False)).to(dtype=cost.dtype)

    T = ipot(cost.detach(), txt_len, txt_pad, img_len, img_pad, joint_pad, beta, iteration, k)
    distance = trace(cost.matmul(T.detach()))
    return distance


def compute_itm_wpa(model, batch):
    pos_len = len(batch["text_ids"]) // 2
    neg_len = len(batch["text_ids"]) - pos_len
    itm_labels = torch.cat([torch.ones(pos_len), torch.zeros(neg_len)]).to(batch["image"].device)
    # the negatives: the second half of the batch sees another sample's image
    itm_images = batch["image"].clone()
    itm_images[pos_len:] = torch.roll(batch["image"][pos_len:], shifts=1, dims=0)
    infer = model.infer(batch["text_ids"], batch["text_masks"], itm_images, batch["pixel_mask"])

    txt_emb, img_emb = infer["text_feats"], infer["image_feats"]
    txt_mask, img_mask = infer["text_masks"].bool(), infer["image_masks"].bool()
    for i, _len in enumerate(txt_mask.sum(dim=1)):
        txt_mask[i, _len - 1] = False          # drop [SEP]
    txt_mask[:, 0] = False                     # drop [CLS]
    img_mask[:, 0] = False
    txt_pad, img_pad = ~txt_mask, ~img_mask
    ot_dist = optimal_transport_dist(txt_emb.float(), img_emb.float(), txt_pad, img_pad).to(txt_emb)
    itm_labels = itm_labels.long()
    ot_pos = ot_dist.masked_select(itm_labels == 1)
    ot_neg = ot_dist.masked_select(itm_labels == 0)
    ot_loss = (ot_pos.sum() - ot_neg.sum()) / (ot_pos.size(0) + ot_neg.size(0))

    itm_logits = model.itm_score(infer["cls_feats"])
    itm_loss = F.cross_entropy(itm_logits, itm_labels)
    return itm_loss, 0.1 * ot_loss, itm_logits


def compute_mlm(model, batch):
    infer = model.infer(batch["text_ids_mlm"], batch["text_masks"], batch["image"], batch["pixel_mask"])
    mlm_logits = model.mlm_score(infer["text_feats"])
    mlm_loss = F.cross_entropy(mlm_logits.view(-1, model.config.vocab_size), batch["text_labels_mlm"].view(-1),
                               ignore_index=-100)
    return mlm_loss, mlm_logits


def compute_vqa(model, batch):
    infer = model.infer(batch["text_ids"], batch["text_masks"], batch["image"], batch["pixel_mask"])
    vqa_logits = model.vqa_classifier(infer["cls_feats"])
    vqa_targets = torch.zeros(len(vqa_logits), model.config.vqa_labels, device=vqa_logits.device)
    for i, (_label, _score) in enumerate(zip(batch["vqa_labels"], batch["vqa_scores"])):
        for l, s in zip(_label, _score):
            vqa_targets[i, l] = s
    vqa_loss = F.binary_cross_entropy_with_logits(vqa_logits, vqa_targets) * vqa_targets.shape[1]
    return vqa_loss, vqa_logits, infer


def make_batch(rng, n=4):
    """Images of different sizes zero-padded to 16 x 16 (with a pixel mask), captions of different
    lengths "[CLS] w w ... [SEP] pad" and VQA answers with soft scores."""
    sizes = [(16, 16), (12, 16), (16, 8), (8, 12)][:n]
    image = np.zeros((n, 3, 16, 16), np.float32)
    pixel_mask = np.zeros((n, 16, 16), np.int64)
    for i, (h, w) in enumerate(sizes):
        image[i, :, :h, :w] = rng.standard_normal((3, h, w))
        pixel_mask[i, :h, :w] = 1
    lengths = rng.integers(3, 7, n)
    text_ids = np.zeros((n, 7), np.int64)
    for i, L in enumerate(lengths):
        text_ids[i, 0] = 1
        text_ids[i, 1:L - 1] = rng.integers(4, 24, L - 2)
        text_ids[i, L - 1] = 2
    text_masks = (text_ids > 0).astype(np.int64)
    mlm_ids = text_ids.copy()
    mlm_labels = np.full_like(text_ids, -100)
    for i, L in enumerate(lengths):
        j = rng.integers(1, L - 1)
        mlm_labels[i, j] = text_ids[i, j]
        mlm_ids[i, j] = 3                       # [MASK]
    vqa_labels = [list(rng.choice(5, 2, replace=False)) for _ in range(n)]
    vqa_scores = [[1.0, 0.3] for _ in range(n)]
    return {"image": torch.from_numpy(image), "pixel_mask": torch.from_numpy(pixel_mask),
            "text_ids": torch.from_numpy(text_ids), "text_masks": torch.from_numpy(text_masks),
            "text_ids_mlm": torch.from_numpy(mlm_ids), "text_labels_mlm": torch.from_numpy(mlm_labels),
            "vqa_labels": vqa_labels, "vqa_scores": vqa_scores}


def get_polynomial_decay_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, lr_end=1e-7, power=1.0):
    lr_init = optimizer.defaults["lr"]

    def lr_lambda(current_step: int):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        elif current_step > num_training_steps:
            return lr_end / lr_init
        else:
            lr_range = lr_init - lr_end
            decay_steps = num_training_steps - num_warmup_steps
            pct_remaining = 1 - (current_step - num_warmup_steps) / decay_steps
            decay = lr_range * pct_remaining ** power + lr_end
            return decay / lr_init

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda, -1)


torch.manual_seed(0)
rng = np.random.default_rng(0)
config = Config()
model = ViLT(config)
share_init(model)

no_decay = ["bias", "LayerNorm.bias", "LayerNorm.weight", "norm.bias", "norm.weight", "norm1.bias", "norm1.weight",
            "norm2.bias", "norm2.weight"]
head_names = ["vqa_classifier", "mlm_score", "itm_score"]
lr, lr_mult = 2e-3, 10
optimizer_grouped_parameters = [
    {"params": [p for n, p in model.named_parameters()
                if not any(nd in n for nd in no_decay) and not any(bb in n for bb in head_names)],
     "weight_decay": 0.01, "lr": lr},
    {"params": [p for n, p in model.named_parameters()
                if any(nd in n for nd in no_decay) and not any(bb in n for bb in head_names)],
     "weight_decay": 0.0, "lr": lr},
    {"params": [p for n, p in model.named_parameters()
                if not any(nd in n for nd in no_decay) and any(bb in n for bb in head_names)],
     "weight_decay": 0.01, "lr": lr * lr_mult},
    {"params": [p for n, p in model.named_parameters()
                if any(nd in n for nd in no_decay) and any(bb in n for bb in head_names)],
     "weight_decay": 0.0, "lr": lr * lr_mult},
]
optimizer = torch.optim.AdamW(optimizer_grouped_parameters, lr=lr, eps=1e-8, betas=(0.9, 0.98))
scheduler = get_polynomial_decay_schedule_with_warmup(optimizer, num_warmup_steps=1, num_training_steps=5)
report("groups", [len(g["params"]) for g in optimizer.param_groups])

for step in range(4):
    batch = make_batch(rng)
    model.train()
    itm_loss, wpa_loss, itm_logits = compute_itm_wpa(model, batch)
    mlm_loss, _ = compute_mlm(model, batch)
    vqa_loss, vqa_logits, infer = compute_vqa(model, batch)
    total_loss = sum([itm_loss, wpa_loss, mlm_loss, vqa_loss])
    optimizer.zero_grad()
    total_loss.backward()
    optimizer.step()
    scheduler.step()
    report("step", step, itm_loss.item(), wpa_loss.item(), mlm_loss.item(), vqa_loss.item(),
           [g["lr"] for g in optimizer.param_groups], infer["patch_index"][0].tolist(), infer["patch_index"][1].tolist(),
           infer["image_masks"].sum(1).tolist())

# per-head attention maps: padding keys get exactly zero weight; rollout through the layers
model.eval()
batch = make_batch(rng)
with torch.no_grad():
    infer = model.infer(batch["text_ids"], batch["text_masks"], batch["image"], batch["pixel_mask"])
    attn = infer["attentions"]
    co_masks = torch.cat([infer["text_masks"], infer["image_masks"]], dim=1)
    report("attn", tuple(attn[0].shape), attn[0].sum(-1).mean().item(),
           attn[0].masked_select(~co_masks.bool()[:, None, None, :].expand_as(attn[0])).abs().max().item(),
           attn[1][0, 1, 0, :6].tolist())
    rollout = torch.eye(attn[0].size(-1)).unsqueeze(0).repeat(attn[0].size(0), 1, 1)
    for a in attn:
        a = a.mean(dim=1)
        a = a + torch.eye(a.size(-1))
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = torch.bmm(a, rollout)
    text_len = batch["text_ids"].shape[1]
    cls_to_patches = rollout[:, 0, text_len + 1:]
    report("rollout", cls_to_patches.sum(-1).tolist(), cls_to_patches.argmax(-1).tolist())
    vqa_loss, vqa_logits, _ = compute_vqa(model, batch)
    probs = torch.sigmoid(vqa_logits)
    report("vqa", vqa_loss.item(), probs.argmax(-1).tolist(), probs.max(-1).values.tolist())
    itm_loss, wpa_loss, itm_logits = compute_itm_wpa(model, batch)
    report("itm", F.softmax(itm_logits, dim=-1)[:, 1].tolist(), wpa_loss.item())
