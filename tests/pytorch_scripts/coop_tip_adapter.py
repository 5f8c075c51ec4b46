"""Prompt learning and cache adapters on a frozen CLIP-style model, written the way CoOp / CoCoOp
(KaiyangZhou/CoOp, on Dassl) and Tip-Adapter write them: a frozen image and text encoder
(requires_grad_(False) by name, everything but the prompt learner), learnable context vectors
(nn.Parameter of nn.init.normal_(std=0.02) vectors) spliced between the token-embedding prefix
and suffix kept as buffers (torch.cat of prefix, ctx.unsqueeze(0).expand(n_cls, -1, -1), suffix),
the text feature taken at tokenized_prompts.argmax(dim=-1), class-token position "end", CoCoOp's
meta-net (Linear-ReLU-Linear) shifting the context per image with a loop over (prompt, image
feature) pairs and torch.stack of the logits, SGD with momentum + cosine annealing after a
constant warmup (Dassl's ConstantWarmupScheduler as a wrapper), then Tip-Adapter: cache keys
from features averaged over augmentation rounds, cache values from F.one_hot, affinity
exp(-beta (1 - A)) @ values added to the zero-shot logits with weight alpha, a grid search of
beta and alpha over torch.linspace, Tip-Adapter-F's nn.Linear initialised from the cache keys
(adapter.weight = nn.Parameter(cache_keys.t())) trained with AdamW, and top-k accuracy as
cls_acc computes it (topk(..., 1, True, True)[1].t(), eq, expand_as)."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

N_CLS, CTX_LEN, VOCAB, WIDTH, EMBED = 4, 8, 24, 16, 12
SOT, EOT, X_TOKEN = 1, 23, 2   # "X" is the placeholder a context token replaces


class TextEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.token_embedding = nn.Embedding(VOCAB, WIDTH)
        self.positional_embedding = nn.Parameter(torch.randn(CTX_LEN, WIDTH) * 0.01)
        layer = nn.TransformerEncoderLayer(WIDTH, 2, WIDTH * 2, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.ln_final = nn.LayerNorm(WIDTH)
        self.text_projection = nn.Parameter(torch.randn(WIDTH, EMBED) * WIDTH ** -0.5)
        self.register_buffer("attn_mask", torch.empty(CTX_LEN, CTX_LEN).fill_(float("-inf")).triu_(1), persistent=False)

    def forward(self, prompts, tokenized_prompts):
        x = prompts + self.positional_embedding
        x = self.transformer(x, mask=self.attn_mask)
        x = self.ln_final(x)
        # take features from the eot embedding (eot_token is the highest number in each sequence)
        return x[torch.arange(x.shape[0]), tokenized_prompts.argmax(dim=-1)] @ self.text_projection


class ImageEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, WIDTH, kernel_size=4, stride=4, bias=False)
        self.ln = nn.LayerNorm(WIDTH)
        self.proj = nn.Parameter(torch.randn(WIDTH, EMBED) * WIDTH ** -0.5)

    def forward(self, x):
        x = self.conv1(x).flatten(2).mean(-1)
        return self.ln(x) @ self.proj


class CLIPLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.visual = ImageEncoder()
        self.text = TextEncoder()
        self.logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))
        self.dtype = torch.float32


def tokenize(name_ids, n_ctx):
    """ "X X X X name ." as ids: SOT, n_ctx placeholders, the class name tokens, EOT, padding."""
    out = torch.zeros(len(name_ids), CTX_LEN, dtype=torch.long)
    for i, ids in enumerate(name_ids):
        seq = [SOT] + [X_TOKEN] * n_ctx + ids + [EOT]
        out[i, :len(seq)] = torch.tensor(seq)
    return out


class PromptLearner(nn.Module):
    def __init__(self, classnames, clip_model, n_ctx=2, conditional=False):
        super().__init__()
        ctx_dim = WIDTH
        ctx_vectors = torch.empty(n_ctx, ctx_dim, dtype=clip_model.dtype)
        nn.init.normal_(ctx_vectors, std=0.02)
        self.ctx = nn.Parameter(ctx_vectors)  # to be optimized
        self.conditional = conditional
        if conditional:
            self.meta_net = nn.Sequential(nn.Linear(EMBED, EMBED // 4), nn.ReLU(inplace=True), nn.Linear(EMBED // 4, ctx_dim))
        tokenized_prompts = tokenize(classnames, n_ctx)
        with torch.no_grad():
            embedding = clip_model.text.token_embedding(tokenized_prompts).type(clip_model.dtype)
        # These token vectors will be saved when in save_model(), but they should be ignored in load_model()
        self.register_buffer("token_prefix", embedding[:, :1, :])  # SOS
        self.register_buffer("token_suffix", embedding[:, 1 + n_ctx:, :])  # CLS, EOS
        self.n_cls = len(classnames)
        self.n_ctx = n_ctx
        self.tokenized_prompts = tokenized_prompts

    def construct_prompts(self, ctx, prefix, suffix):
        return torch.cat([prefix, ctx, suffix], dim=1)

    def forward(self, im_features=None):
        ctx = self.ctx
        if ctx.dim() == 2:
            ctx = ctx.unsqueeze(0).expand(self.n_cls, -1, -1)
        if not self.conditional:
            return self.construct_prompts(ctx, self.token_prefix, self.token_suffix)
        bias = self.meta_net(im_features).unsqueeze(1)      # (batch, 1, ctx_dim)
        ctx_shifted = self.ctx.unsqueeze(0) + bias          # (batch, n_ctx, ctx_dim)
        prompts = []
        for ctx_shifted_i in ctx_shifted:
            ctx_i = ctx_shifted_i.unsqueeze(0).expand(self.n_cls, -1, -1)
            prompts.append(self.construct_prompts(ctx_i, self.token_prefix, self.token_suffix))
        return torch.stack(prompts)


class CustomCLIP(nn.Module):
    def __init__(self, classnames, clip_model, conditional=False):
        super().__init__()
        self.prompt_learner = PromptLearner(classnames, clip_model, conditional=conditional)
        self.tokenized_prompts = self.prompt_learner.tokenized_prompts
        self.image_encoder = clip_model.visual
        self.text_encoder = clip_model.text
        self.logit_scale = clip_model.logit_scale
        self.dtype = clip_model.dtype
        self.conditional = conditional

    def forward(self, image):
        image_features = self.image_encoder(image.type(self.dtype))
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        logit_scale = self.logit_scale.exp()
        if not self.conditional:
            prompts = self.prompt_learner()
            text_features = self.text_encoder(prompts, self.tokenized_prompts)
            text_features = text_features / text_features.norm(dim=-1, keepdim=True)
            return logit_scale * image_features @ text_features.t()
        prompts = self.prompt_learner(image_features)
        logits = []
        for pts_i, imf_i in zip(prompts, image_features):
            text_features = self.text_encoder(pts_i, self.tokenized_prompts)
            text_features = text_features / text_features.norm(dim=-1, keepdim=True)
            logits.append(logit_scale * imf_i @ text_features.t())
        return torch.stack(logits)


class ConstantWarmupScheduler(torch.optim.lr_scheduler.LRScheduler):
    """Dassl's warmup wrapper: a constant lr for warmup_epoch epochs, then the successor."""

    def __init__(self, optimizer, successor, warmup_epoch, cons_lr, last_epoch=-1):
        self.successor = successor
        self.warmup_epoch = warmup_epoch
        self.cons_lr = cons_lr
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch >= self.warmup_epoch:
            return self.successor.get_last_lr()
        return [self.cons_lr for _ in self.base_lrs]

    def step(self, epoch=None):
        if self.last_epoch >= self.warmup_epoch:
            self.successor.step(epoch)
            self._last_lr = self.successor.get_last_lr()
        else:
            super().step(epoch)


def cls_acc(output, target, topk=1):
    pred = output.topk(topk, 1, True, True)[1].t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    acc = float(correct[: topk].reshape(-1).float().sum(0, keepdim=True).cpu().numpy().item())  # (NumPy 2: .item())
    acc = 100 * acc / target.shape[0]
    return acc


def make_images(rng, labels):
    images = rng.standard_normal((len(labels), 3, 8, 8)).astype(np.float32) * 0.4
    for i, c in enumerate(labels):
        images[i, c % 3] += 1.0 if c < 3 else -1.0
    return torch.from_numpy(images)


torch.manual_seed(0)
rng = np.random.default_rng(0)
clip_model = CLIPLike()
share_init(clip_model, "clip")
classnames = [[5, 9], [6, 9], [7, 9], [8, 10]]   # "red thing", "green thing", ... as token ids

results = {}
for conditional in (False, True):
    torch.manual_seed(1)
    model = CustomCLIP(classnames, clip_model, conditional=conditional)
    share_init(model.prompt_learner, f"prompt{int(conditional)}")
    for name, param in model.named_parameters():
        if "prompt_learner" not in name:
            param.requires_grad_(False)
    enabled = sorted(name for name, param in model.named_parameters() if param.requires_grad)
    optim = torch.optim.SGD(model.prompt_learner.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    successor = torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=4)
    sched = ConstantWarmupScheduler(optim, successor, warmup_epoch=1, cons_lr=1e-3)
    history = []
    for epoch in range(5):
        labels = rng.integers(0, N_CLS, 8)
        image, label = make_images(rng, labels), torch.from_numpy(labels)
        output = model(image)
        loss = F.cross_entropy(output, label)
        optim.zero_grad()
        loss.backward()
        optim.step()
        sched.step()
        history.append((loss.item(), cls_acc(output, label), optim.param_groups[0]["lr"]))
    report("prompt learning", conditional, enabled, history, model.prompt_learner.ctx.norm().item(),
           clip_model.text.token_embedding.weight.grad is None)
    results[conditional] = model

# Tip-Adapter on top of the learned prompts' classifier
model = results[False]
model.eval()
with torch.no_grad():
    prompts = model.prompt_learner()
    clip_weights = model.text_encoder(prompts, model.tokenized_prompts)
    clip_weights = (clip_weights / clip_weights.norm(dim=-1, keepdim=True)).t()       # (EMBED, N_CLS)
    shots = np.repeat(np.arange(N_CLS), 3)
    train_features = []
    for augment_idx in range(2):
        feats = clip_model.visual(make_images(rng, shots))
        train_features.append((feats / feats.norm(dim=-1, keepdim=True)).unsqueeze(0))
    cache_keys = torch.cat(train_features, dim=0).mean(dim=0)
    cache_keys /= cache_keys.norm(dim=-1, keepdim=True)
    cache_keys = cache_keys.permute(1, 0)                                              # (EMBED, N*K)
    cache_values = F.one_hot(torch.from_numpy(shots)).float()                          # (N*K, N_CLS)
    test_labels = torch.from_numpy(rng.integers(0, N_CLS, 16))
    test_features = clip_model.visual(make_images(rng, test_labels.numpy()))
    test_features /= test_features.norm(dim=-1, keepdim=True)
    clip_logits = 100. * test_features @ clip_weights
    beta, alpha = 1.0, 1.17
    affinity = test_features @ cache_keys
    cache_logits = ((-1) * (beta - beta * affinity)).exp() @ cache_values
    tip_logits = clip_logits + cache_logits * alpha
    report("tip", cls_acc(clip_logits, test_labels), cls_acc(tip_logits, test_labels),
           cls_acc(tip_logits, test_labels, topk=2), cache_logits.sum(1).tolist()[:4])
    best_acc, best_beta, best_alpha = 0, 0, 0
    for beta in torch.linspace(0.5, 5.0, 4).tolist():
        for alpha in torch.linspace(0.1, 3.0, 4).tolist():
            cache_logits = ((-1) * (beta - beta * affinity)).exp() @ cache_values
            acc = cls_acc(clip_logits + cache_logits * alpha, test_labels)
            if acc > best_acc:
                best_acc, best_beta, best_alpha = acc, beta, alpha
    report("search", best_acc, best_beta, best_alpha)

# Tip-Adapter-F: the cache keys become a trainable linear layer
adapter = nn.Linear(cache_keys.shape[0], cache_keys.shape[1], bias=False).to(clip_model.dtype)
adapter.weight = nn.Parameter(cache_keys.t())
optimizer = torch.optim.AdamW(adapter.parameters(), lr=0.01, eps=1e-4)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 4 * 2)
for train_idx in range(4):
    adapter.train()
    with torch.no_grad():
        image_features = clip_model.visual(make_images(rng, shots))
        image_features /= image_features.norm(dim=-1, keepdim=True)
    affinity = adapter(image_features)
    cache_logits = ((-1) * (best_beta - best_beta * affinity)).exp() @ cache_values
    clip_logits = 100. * image_features @ clip_weights
    tip_logits = clip_logits + cache_logits * best_alpha
    loss = F.cross_entropy(tip_logits, torch.from_numpy(shots))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    report("tip-f", train_idx, loss.item(), cls_acc(tip_logits, torch.from_numpy(shots)), scheduler.get_last_lr()[0])
adapter.eval()
with torch.no_grad():
    affinity = adapter(test_features)
    cache_logits = ((-1) * (best_beta - best_beta * affinity)).exp() @ cache_values
    tip_logits = 100. * test_features @ clip_weights + cache_logits * best_alpha
report("tip-f test", cls_acc(tip_logits, test_labels), (adapter.weight - cache_keys.t()).abs().max().item())
