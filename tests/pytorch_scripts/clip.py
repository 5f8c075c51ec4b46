"""A CLIP-style contrastive trainer as open_clip and the CLIP paper's pseudocode write it: an
image encoder (a small conv net with BatchNorm and attention pooling: nn.MultiheadAttention
from a learned query) and a text encoder (a causal Transformer whose feature
is taken at the argmax token, the end-of-text id), both projected with ``x @ self.proj`` matrices,
F.normalize, a learnable ``logit_scale`` initialised to log(1/0.07) used as ``logit_scale.exp()``
and clamped in place under no_grad after each step, the symmetric F.cross_entropy on the
similarity matrix against torch.arange labels, zero-shot classification by prompt embeddings,
retrieval ranks by argsort, AdamW with weight decay only on >= 2-D weights and a warmup-cosine
LambdaLR. The data are drawn with NumPy."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class AttentionPool(nn.Module):
    def __init__(self, width, heads, out_dim):
        super().__init__()
        self.cls = nn.Parameter(torch.randn(1, 1, width) * width ** -0.5)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, out_dim) * width ** -0.5)

    def forward(self, x):                                  # (B, N, W)
        q = self.cls.expand(x.shape[0], -1, -1)
        pooled, _ = self.attn(q, x, x, need_weights=False)
        return self.ln(pooled[:, 0]) @ self.proj


class ImageEncoder(nn.Module):
    def __init__(self, width=16, embed_dim=12):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(inplace=True),
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.pool = AttentionPool(width, 2, embed_dim)

    def forward(self, x):
        x = self.stem(x)                                   # (B, W, H', W')
        x = x.flatten(2).permute(0, 2, 1)                  # (B, N, W)
        return self.pool(x)


class TextEncoder(nn.Module):
    def __init__(self, vocab=20, ctx=6, width=16, heads=2, layers=2, embed_dim=12):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.positional_embedding = nn.Parameter(torch.empty(ctx, width))
        nn.init.normal_(self.positional_embedding, std=0.01)
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=width * 2, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, embed_dim))
        nn.init.normal_(self.text_projection, std=width ** -0.5)
        self.register_buffer("attn_mask", nn.Transformer.generate_square_subsequent_mask(ctx), persistent=False)

    def forward(self, text):
        x = self.token_embedding(text) + self.positional_embedding
        x = self.transformer(x, mask=self.attn_mask, is_causal=True)
        x = self.ln_final(x)
        # features from the eot embedding (the highest token id in each sequence)
        return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection


class CLIP(nn.Module):
    def __init__(self):
        super().__init__()
        self.visual = ImageEncoder()
        self.text = TextEncoder()
        self.logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))

    def encode_image(self, image, normalize=False):
        features = self.visual(image)
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, text, normalize=False):
        features = self.text(text)
        return F.normalize(features, dim=-1) if normalize else features

    def forward(self, image, text):
        image_features = self.encode_image(image, normalize=True)
        text_features = self.encode_text(text, normalize=True)
        return image_features, text_features, self.logit_scale.exp()


class ClipLoss(nn.Module):
    def forward(self, image_features, text_features, logit_scale):
        logits_per_image = logit_scale * image_features @ text_features.T
        logits_per_text = logit_scale * text_features @ image_features.T
        labels = torch.arange(logits_per_image.shape[0], device=image_features.device, dtype=torch.long)
        return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2


def make_batch(rng, n, distinct=False):
    """Images whose mean colour says the class; captions "<bos> w_class w_colour pad <eot>",
    all different when ``distinct`` (n <= 16)."""
    labels = np.arange(n) % 4 if distinct else rng.integers(0, 4, n)
    images = rng.standard_normal((n, 3, 8, 8)).astype(np.float32) * 0.3
    images[np.arange(n), labels % 3] += (1.0 + (labels // 3))[:, None, None]
    text = np.zeros((n, 6), np.int64)
    text[:, 0] = 1
    text[:, 1] = 2 + labels
    text[:, 2] = 6 + (np.arange(n) // 4 if distinct else rng.integers(0, 4, n))
    text[:, 3] = 19  # end of text: the largest id
    return torch.from_numpy(images), torch.from_numpy(text), labels


torch.manual_seed(0)
rng = np.random.default_rng(0)
model = CLIP()
share_init(model)
exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n
named_parameters = list(model.named_parameters())
gain_or_bias_params = [p for n, p in named_parameters if exclude(n, p) and p.requires_grad]
rest_params = [p for n, p in named_parameters if not exclude(n, p) and p.requires_grad]
optimizer = torch.optim.AdamW([{"params": gain_or_bias_params, "weight_decay": 0.},
                               {"params": rest_params, "weight_decay": 0.2}], lr=5e-3, betas=(0.9, 0.98), eps=1e-6)
warmup, total = 2, 6
lr_lambda = lambda step: (step + 1) / warmup if step < warmup else 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
loss_fn = ClipLoss()
report("groups", len(gain_or_bias_params), len(rest_params), model.logit_scale.item())
for step in range(total):
    images, text, _ = make_batch(rng, 8)
    model.train()
    image_features, text_features, logit_scale = model(images, text)
    loss = loss_fn(image_features, text_features, logit_scale)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    with torch.no_grad():
        model.logit_scale.clamp_(0, math.log(100))  # as open_clip's train loop
    report("step", step, loss.item(), logit_scale.item(), model.logit_scale.grad.item(),
           scheduler.get_last_lr(), image_features.norm(dim=-1).tolist())

# zero-shot: a prompt per class, mean over two colour words, normalised again
model.eval()
with torch.no_grad():
    prompts = torch.tensor([[1, 2 + c, 6 + w, 0, 19, 0] for c in range(4) for w in range(2)])
    class_emb = model.encode_text(prompts, normalize=True).view(4, 2, -1).mean(dim=1)
    class_emb /= class_emb.norm(dim=-1, keepdim=True)
    images, text, labels = make_batch(rng, 12, distinct=True)
    img = model.encode_image(images, normalize=True)
    logits = 100.0 * img @ class_emb.T
    probs = logits.softmax(dim=-1)
    pred = probs.argmax(dim=-1)
    txt = model.encode_text(text, normalize=True)
    sim = img @ txt.t()
    ranking = torch.argsort(sim, dim=1, descending=True)
    preds = torch.where(ranking == torch.arange(12).view(-1, 1))[1]
report("zero-shot", pred.tolist(), probs.max(dim=-1).values.tolist(), (pred.numpy() == labels).mean().item())
report("retrieval", preds.tolist(), (preds < 1).float().mean().item(), torch.mean(preds.float()).item(),
       torch.floor(torch.median(preds.float())).item() + 1)

# BatchNorm running statistics and the clamp at the bound
report("bn", model.visual.stem[1].running_mean.tolist(), model.visual.stem[1].num_batches_tracked.item())
with torch.no_grad():
    model.logit_scale.fill_(10.0)
    model.logit_scale.clamp_(0, math.log(100))
report("clamped", model.logit_scale.item(), model.logit_scale.requires_grad, model.logit_scale.is_leaf)
