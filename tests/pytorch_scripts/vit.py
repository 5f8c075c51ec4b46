"""A small Vision Transformer (timm / lucidrains style): Conv2d patch embedding (sizes through
torch.nn.modules.utils._pair), a cls token and a
positional embedding as nn.Parameter with trunc_normal_ init, torch.cat / expand, hand-written
multi-head attention through einsum and reshape/permute beside nn.MultiheadAttention, LayerNorm,
GELU, timm's drop_path (torch.rand(..., device=x.device) + floor_), a fused
F.scaled_dot_product_attention path, timm's Mixup (np.random.beta, flip/mul_/add_, scatter_ one-hot
targets) with SoftTargetCrossEntropy, ModelEmaV2 (deepcopy, copy_ into state_dict values), AdamW with
weight-decay / no-decay param groups, a warmup+cosine LambdaLR, clip_grad_norm_ and argmax accuracy."""
import math
from copy import deepcopy
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR
from torch.nn.modules.utils import _pair


def drop_path(x, drop_prob: float = 0., training: bool = False):
    if drop_prob == 0. or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # work with diff dim tensors, not just 2D ConvNets
    random_tensor = keep_prob + torch.rand(shape, dtype=x.dtype, device=x.device)
    random_tensor.floor_()  # binarize
    output = x.div(keep_prob) * random_tensor
    return output


class DropPath(nn.Module):
    def __init__(self, drop_prob=None):
        super(DropPath, self).__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f'drop_prob={round(self.drop_prob, 3):0.3f}'


class PatchEmbed(nn.Module):
    def __init__(self, img_size=8, patch_size=4, in_chans=3, embed_dim=16):
        super().__init__()
        img_size, patch_size = _pair(img_size), _pair(patch_size)
        self.grid_size = (img_size[0] // patch_size[0], img_size[1] // patch_size[1])
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        B, C, H, W = x.shape
        x = self.proj(x).flatten(2).transpose(1, 2)  # B, N, D
        return x


class Attention(nn.Module):
    def __init__(self, dim, num_heads=2, qkv_bias=True, attn_drop=0., proj_drop=0., fused_attn=False):
        super().__init__()
        self.fused_attn = fused_attn
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p if self.training else 0.)
        else:
            attn = torch.einsum('bhid,bhjd->bhij', q, k) * self.scale
            attn = attn.softmax(dim=-1)
            attn = self.attn_drop(attn)
            x = torch.einsum('bhij,bhjd->bhid', attn, v)
        x = x.transpose(1, 2).reshape(B, N, C)
        x = self.proj(x)
        x = self.proj_drop(x)
        return x


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features=None, act_layer=nn.GELU, drop=0.):
        super().__init__()
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=2., drop_path=0., use_mha=False, fused_attn=False, norm_layer=nn.LayerNorm):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.use_mha = use_mha
        if use_mha:
            self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        else:
            self.attn = Attention(dim, num_heads=num_heads, fused_attn=fused_attn)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio))

    def forward(self, x):
        if self.use_mha:
            h = self.norm1(x)
            x = x + self.drop_path(self.attn(h, h, h, need_weights=False)[0])
        else:
            x = x + self.drop_path(self.attn(self.norm1(x)))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x


class VisionTransformer(nn.Module):
    def __init__(self, img_size=8, patch_size=4, in_chans=3, num_classes=5, embed_dim=16, depth=3,
                 num_heads=2, mlp_ratio=2., drop_path_rate=0.):
        super().__init__()
        self.num_features = self.embed_dim = embed_dim
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(p=0.)
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, depth)]  # stochastic depth decay rule
        self.blocks = nn.Sequential(*[
            Block(embed_dim, num_heads, mlp_ratio, drop_path=dpr[i], use_mha=(i == 1), fused_attn=(i == 2))
            for i in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        nn.init.trunc_normal_(self.pos_embed, std=.02)
        nn.init.trunc_normal_(self.cls_token, std=.02)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    @torch.jit.ignore
    def no_weight_decay(self):
        return {'pos_embed', 'cls_token'}

    def forward_features(self, x):
        B = x.shape[0]
        x = self.patch_embed(x)
        cls_tokens = self.cls_token.expand(B, -1, -1)  # stole cls_tokens impl from Phil Wang, thanks
        x = torch.cat((cls_tokens, x), dim=1)
        x = x + self.pos_embed
        x = self.pos_drop(x)
        x = self.blocks(x)
        x = self.norm(x)
        return x[:, 0]

    def forward(self, x):
        return self.head(self.forward_features(x))


def param_groups_weight_decay(model, weight_decay=1e-5, no_weight_decay_list=()):
    no_weight_decay_list = set(no_weight_decay_list)
    decay = []
    no_decay = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.endswith(".bias") or name in no_weight_decay_list:
            no_decay.append(param)
        else:
            decay.append(param)
    return [
        {'params': no_decay, 'weight_decay': 0.},
        {'params': decay, 'weight_decay': weight_decay}]


class ModelEmaV2(nn.Module):
    def __init__(self, model, decay=0.9999, device=None):
        super(ModelEmaV2, self).__init__()
        self.module = deepcopy(model)
        self.module.eval()
        self.decay = decay
        self.device = device
        if self.device is not None:
            self.module.to(device=device)

    def _update(self, model, update_fn):
        with torch.no_grad():
            for ema_v, model_v in zip(self.module.state_dict().values(), model.state_dict().values()):
                if self.device is not None:
                    model_v = model_v.to(device=self.device)
                ema_v.copy_(update_fn(ema_v, model_v))

    def update(self, model):
        self._update(model, update_fn=lambda e, m: self.decay * e + (1. - self.decay) * m)


def one_hot(x, num_classes, on_value=1., off_value=0.):
    x = x.long().view(-1, 1)
    return torch.full((x.size()[0], num_classes), off_value, device=x.device).scatter_(1, x, on_value)


def mixup_target(target, num_classes, lam=1., smoothing=0.0):
    off_value = smoothing / num_classes
    on_value = 1. - smoothing + off_value
    y1 = one_hot(target, num_classes, on_value=on_value, off_value=off_value)
    y2 = one_hot(target.flip(0), num_classes, on_value=on_value, off_value=off_value)
    return y1 * lam + y2 * (1. - lam)


class Mixup:
    def __init__(self, mixup_alpha=0.8, label_smoothing=0.1, num_classes=5):
        self.mixup_alpha = mixup_alpha
        self.label_smoothing = label_smoothing
        self.num_classes = num_classes

    def __call__(self, x, target):
        lam = float(np.random.beta(self.mixup_alpha, self.mixup_alpha))
        x_flipped = x.flip(0).mul_(1. - lam)
        x.mul_(lam).add_(x_flipped)
        target = mixup_target(target, self.num_classes, lam, self.label_smoothing)
        return x, target


class SoftTargetCrossEntropy(nn.Module):
    def __init__(self):
        super(SoftTargetCrossEntropy, self).__init__()

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = torch.sum(-target * F.log_softmax(x, dim=-1), dim=-1)
        return loss.mean()


def cosine_with_warmup(warmup, total):
    def lr_lambda(step):
        if step < warmup:
            return float(step + 1) / float(max(1, warmup))
        progress = float(step - warmup) / float(max(1, total - warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    return lr_lambda


torch.manual_seed(0)
model = VisionTransformer()
share_init(model)
report("model", str(model).count("\n"), repr(model.blocks[1].attn).splitlines()[1].strip(), repr(model.patch_embed))
report("params", sum(p.numel() for p in model.parameters() if p.requires_grad))
groups = param_groups_weight_decay(model, 0.05, model.no_weight_decay())
report("groups", [len(g["params"]) for g in groups])
optimizer = torch.optim.AdamW(groups, lr=3e-3, betas=(0.9, 0.999))
steps = 6
scheduler = LambdaLR(optimizer, lr_lambda=cosine_with_warmup(2, steps))
criterion = SoftTargetCrossEntropy()
mixup_fn = Mixup(mixup_alpha=0.8, label_smoothing=0.1, num_classes=5)
np.random.seed(0)  # Mixup draws lam from NumPy's global generator
model_ema = ModelEmaV2(model, decay=0.9)
rng = np.random.default_rng(0)
images = torch.from_numpy(rng.standard_normal((6, 3, 8, 8)).astype(np.float32))
labels = torch.from_numpy(rng.integers(0, 5, 6))
device = torch.device("cpu")
model.to(device)
for step in range(steps):
    model.train()
    images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
    samples, targets = mixup_fn(images.clone(), labels)
    output = model(samples)
    loss = criterion(output, targets)
    optimizer.zero_grad()
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
    scheduler.step()
    model_ema.update(model)
    acc = (output.argmax(dim=-1) == labels).float().mean().item() * 100
    report(step, loss.item(), grad_norm.item(), acc, [g["lr"] for g in optimizer.param_groups])
model.eval()
with torch.no_grad():
    logits = model(images)
    report("eval", logits.softmax(-1).max(dim=1).values.tolist(), logits.argmax(1).tolist())
    ema_logits = model_ema.module(images)
    report("ema", ema_logits[0].tolist(), model_ema.module.cls_token.requires_grad, targets.sum(1).tolist())

# stochastic depth: a model whose blocks drop whole samples while training
torch.manual_seed(0)
sd = VisionTransformer(drop_path_rate=0.5)
report("dpr", [round(b.drop_path.drop_prob, 3) if isinstance(b.drop_path, DropPath) else 0.0 for b in sd.blocks], repr(sd.blocks[1].drop_path))
x = torch.ones(64, 3, 5)
out = drop_path(x, 0.25, training=True)
kept = out[:, 0, 0]
report("drop_path values", sorted(set(round(v, 4) for v in kept.tolist())), out.shape == x.shape,
       bool(((out == 0).all(dim=(1, 2)) | (out == 1 / 0.75).all(dim=(1, 2))).all()))
sd.train()
sd_out = sd(images)
sd_out.sum().backward()
report("sd grads", all(p.grad is not None for p in sd.parameters()), tuple(sd_out.shape))
