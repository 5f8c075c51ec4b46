"""VideoMAE pre-training and a TimeSformer classifier, written the way MCG-NJU/VideoMAE's
modeling_pretrain.py / masking_generator.py and facebookresearch/TimeSformer's vit.py write them:
tubelet PatchEmbed (Conv3d with kernel = stride = (tubelet, p, p), flatten(2).transpose(1, 2)), the
fixed sinusoid table from numpy as a non-trainable buffer (type_as, .to(x.device).clone().detach()),
TubeMaskingGenerator (np.random.shuffle of a frame mask, np.tile over time), the visible tokens picked
with x[~mask].reshape(B, -1, C), a decoder on [visible + pos, mask_token + pos] with torch.cat and
expand, the normalised-pixel target (videos un-normalised with ImageNet mean/std, rearranged into
tubelet patches by view/permute, (x - mean) / (var.sqrt() + 1e-6) per patch), MSE on masked tokens;
timm-style Block with DropPath (drop_prob 0 => Identity) and qkv.reshape(B, N, 3, H, C // H).permute(2, 0,
3, 1, 4), q @ k.transpose(-2, -1) * scale; init through trunc_normal_ and module.apply; AdamW with
per-parameter-group weight decay (no decay for bias / norm / pos / tokens) and a cosine schedule set
in param_group["lr"]; then TimeSformer's divided space-time attention (einops rearranges written out
with view/permute: temporal attention over (b h w) t m with a zero-initialised temporal_fc, then
spatial attention with the cls token repeated per frame and averaged back), and random-mask argsort
with gather (MAE-style) checked against the tube masks."""
import math
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.init import trunc_normal_


def get_sinusoid_encoding_table(n_position, d_hid):
    def get_position_angle_vec(position):
        return [position / np.power(10000, 2 * (hid_j // 2) / d_hid) for hid_j in range(d_hid)]

    sinusoid_table = np.array([get_position_angle_vec(pos_i) for pos_i in range(n_position)])
    sinusoid_table[:, 0::2] = np.sin(sinusoid_table[:, 0::2])
    sinusoid_table[:, 1::2] = np.cos(sinusoid_table[:, 1::2])
    return torch.FloatTensor(sinusoid_table).unsqueeze(0)


class TubeMaskingGenerator:
    def __init__(self, input_size, mask_ratio, rs):
        self.frames, self.height, self.width = input_size
        self.num_patches_per_frame = self.height * self.width
        self.total_patches = self.frames * self.num_patches_per_frame
        self.num_masks_per_frame = int(mask_ratio * self.num_patches_per_frame)
        self.total_masks = self.frames * self.num_masks_per_frame
        self.rs = rs

    def __call__(self):
        mask_per_frame = np.hstack([
            np.zeros(self.num_patches_per_frame - self.num_masks_per_frame),
            np.ones(self.num_masks_per_frame),
        ])
        self.rs.shuffle(mask_per_frame)
        mask = np.tile(mask_per_frame, (self.frames, 1)).flatten()
        return mask


class DropPath(nn.Module):
    def __init__(self, drop_prob=None):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        if self.drop_prob == 0. or not self.training:
            return x
        keep_prob = 1 - self.drop_prob
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        random_tensor = keep_prob + torch.rand(shape, dtype=x.dtype, device=x.device)
        random_tensor.floor_()
        return x.div(keep_prob) * random_tensor


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


class Attention(nn.Module):
    def __init__(self, dim, num_heads=2, qkv_bias=False, attn_drop=0., proj_drop=0.):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = None
            self.v_bias = None
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        B, N, C = x.shape
        qkv_bias = None
        if self.q_bias is not None:
            qkv_bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias, requires_grad=False), self.v_bias))
        qkv = F.linear(input=x, weight=self.qkv.weight, bias=qkv_bias)
        qkv = qkv.reshape(B, N, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = q * self.scale
        attn = (q @ k.transpose(-2, -1))
        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)
        x = (attn @ v).transpose(1, 2).reshape(B, N, -1)
        return self.proj_drop(self.proj(x))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=2., qkv_bias=False, drop_path=0., norm_layer=nn.LayerNorm,
                 init_values=None):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio))
        if init_values is not None and init_values > 0:
            self.gamma_1 = nn.Parameter(init_values * torch.ones((dim)), requires_grad=True)
            self.gamma_2 = nn.Parameter(init_values * torch.ones((dim)), requires_grad=True)
        else:
            self.gamma_1, self.gamma_2 = None, None

    def forward(self, x):
        if self.gamma_1 is None:
            x = x + self.drop_path(self.attn(self.norm1(x)))
            x = x + self.drop_path(self.mlp(self.norm2(x)))
        else:
            x = x + self.drop_path(self.gamma_1 * self.attn(self.norm1(x)))
            x = x + self.drop_path(self.gamma_2 * self.mlp(self.norm2(x)))
        return x


class PatchEmbed(nn.Module):
    def __init__(self, img_size=8, patch_size=4, in_chans=3, embed_dim=16, num_frames=4, tubelet_size=2):
        super().__init__()
        self.tubelet_size = int(tubelet_size)
        self.num_patches = (img_size // patch_size) * (img_size // patch_size) * (num_frames // self.tubelet_size)
        self.proj = nn.Conv3d(in_channels=in_chans, out_channels=embed_dim,
                              kernel_size=(self.tubelet_size, patch_size, patch_size),
                              stride=(self.tubelet_size, patch_size, patch_size))

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class PretrainVisionTransformer(nn.Module):
    def __init__(self, img_size=8, patch_size=4, num_frames=4, tubelet_size=2, encoder_embed_dim=16, encoder_depth=2,
                 decoder_embed_dim=8, decoder_depth=1, num_heads=2, drop_path_rate=0.0,
                 norm_layer=partial(nn.LayerNorm, eps=1e-6), init_values=0.1):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, 3, encoder_embed_dim, num_frames, tubelet_size)
        num_patches = self.patch_embed.num_patches
        self.pos_embed = get_sinusoid_encoding_table(num_patches, encoder_embed_dim)
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, encoder_depth)]
        self.blocks = nn.ModuleList([Block(encoder_embed_dim, num_heads, qkv_bias=True, drop_path=dpr[i],
                                           norm_layer=norm_layer, init_values=init_values)
                                     for i in range(encoder_depth)])
        self.norm = norm_layer(encoder_embed_dim)
        self.encoder_to_decoder = nn.Linear(encoder_embed_dim, decoder_embed_dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.dec_pos_embed = get_sinusoid_encoding_table(num_patches, decoder_embed_dim)
        self.dec_blocks = nn.ModuleList([Block(decoder_embed_dim, num_heads, norm_layer=norm_layer)
                                         for _ in range(decoder_depth)])
        self.dec_norm = norm_layer(decoder_embed_dim)
        self.head = nn.Linear(decoder_embed_dim, 3 * tubelet_size * patch_size ** 2)
        self.apply(self._init_weights)
        trunc_normal_(self.mask_token, std=.02)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    def no_weight_decay(self):
        return {"pos_embed", "mask_token"}

    def forward(self, x, mask):
        x = self.patch_embed(x)
        x = x + self.pos_embed.type_as(x).to(x.device).clone().detach()
        B, _, C = x.shape
        x_vis = x[~mask].reshape(B, -1, C)
        for blk in self.blocks:
            x_vis = blk(x_vis)
        x_vis = self.encoder_to_decoder(self.norm(x_vis))
        B, N, C = x_vis.shape
        expand_pos_embed = self.dec_pos_embed.expand(B, -1, -1).type_as(x).to(x.device).clone().detach()
        pos_emd_vis = expand_pos_embed[~mask].reshape(B, -1, C)
        pos_emd_mask = expand_pos_embed[mask].reshape(B, -1, C)
        x_full = torch.cat([x_vis + pos_emd_vis, self.mask_token + pos_emd_mask], dim=1)
        for blk in self.dec_blocks:
            x_full = blk(x_full)
        return self.head(self.dec_norm(x_full[:, -pos_emd_mask.shape[1]:]))


def videos_to_patch_targets(unnorm_videos, tubelet, p):
    # rearrange(videos, 'b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2) c'), written out
    B, C, T, H, W = unnorm_videos.shape
    x = unnorm_videos.view(B, C, T // tubelet, tubelet, H // p, p, W // p, p)
    x = x.permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(B, (T // tubelet) * (H // p) * (W // p), tubelet * p * p, C)
    x = (x - x.mean(dim=-2, keepdim=True)) / (x.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6)
    return x.flatten(-2)  # b n (p c)


def get_parameter_groups(model, weight_decay, skip_list=()):
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if len(param.shape) == 1 or name.endswith(".bias") or name in skip_list:
            no_decay.append(param)
        else:
            decay.append(param)
    return [{"params": no_decay, "weight_decay": 0.}, {"params": decay, "weight_decay": weight_decay}]


def cosine_scheduler(base_value, final_value, epochs, niter_per_ep, warmup_steps=0):
    warmup_schedule = np.linspace(0, base_value, warmup_steps)
    iters = np.arange(epochs * niter_per_ep - warmup_steps)
    schedule = final_value + 0.5 * (base_value - final_value) * (1 + np.cos(np.pi * iters / len(iters)))
    return np.concatenate((warmup_schedule, schedule))


torch.manual_seed(0)
model = PretrainVisionTransformer()
share_init(model)
report("init", len(list(model.parameters())), model.pos_embed.shape[1], model.pos_embed.requires_grad)

rs = np.random.RandomState(0)
videos = torch.from_numpy(rs.rand(2, 3, 4, 8, 8).astype(np.float32))
mean = torch.as_tensor((0.485, 0.456, 0.406))[None, :, None, None, None]
std = torch.as_tensor((0.229, 0.224, 0.225))[None, :, None, None, None]
videos = (videos - mean) / std
masker = TubeMaskingGenerator((2, 2, 2), 0.5, rs)

param_groups = get_parameter_groups(model, 0.05, model.no_weight_decay())
optimizer = torch.optim.AdamW(param_groups, lr=1e-3, betas=(0.9, 0.95))
lr_schedule = cosine_scheduler(1e-2, 1e-4, 1, 5, warmup_steps=2)
loss_func = nn.MSELoss()
model.train()
for step in range(5):
    for param_group in optimizer.param_groups:
        param_group["lr"] = lr_schedule[step]
    bool_masked_pos = torch.from_numpy(np.stack([masker() for _ in range(2)])).to(torch.bool)
    with torch.no_grad():
        unnorm_videos = videos * std + mean
        videos_patch = videos_to_patch_targets(unnorm_videos, 2, 4)
        B, _, C = videos_patch.shape
        labels = videos_patch[bool_masked_pos].reshape(B, -1, C)
    outputs = model(videos, bool_masked_pos)
    loss = loss_func(input=outputs, target=labels)
    optimizer.zero_grad()
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.02)
    optimizer.step()
    report("pretrain", step, loss.item(), grad_norm.item(), bool_masked_pos.sum(1).tolist(),
           model.blocks[0].gamma_1.abs().sum().item(), optimizer.param_groups[1]["lr"])


class DividedAttentionBlock(nn.Module):
    """TimeSformer's 'divided_space_time' block: temporal attention, then spatial attention."""

    def __init__(self, dim, num_heads, norm_layer=nn.LayerNorm):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=True)
        self.temporal_norm1 = norm_layer(dim)
        self.temporal_attn = Attention(dim, num_heads=num_heads, qkv_bias=True)
        self.temporal_fc = nn.Linear(dim, dim)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=dim * 2)
        self.drop_path = nn.Identity()

    def forward(self, x, B, T, W):
        num_spatial_tokens = (x.size(1) - 1) // T
        H = num_spatial_tokens // W
        # temporal: rearrange(xt, 'b (h w t) m -> (b h w) t m')
        xt = x[:, 1:, :]
        m = xt.size(2)
        xt = xt.reshape(B, H, W, T, m).reshape(B * H * W, T, m)
        res_temporal = self.drop_path(self.temporal_attn(self.temporal_norm1(xt)))
        res_temporal = res_temporal.reshape(B, H * W * T, m)
        res_temporal = self.temporal_fc(res_temporal)
        xt = x[:, 1:, :] + res_temporal
        # spatial: rearrange(xt, 'b (h w t) m -> (b t) (h w) m') with the cls token repeated per frame
        init_cls_token = x[:, 0, :].unsqueeze(1)
        cls_token = init_cls_token.repeat(1, T, 1)
        cls_token = cls_token.reshape(B * T, m).unsqueeze(1)
        xs = xt.reshape(B, H, W, T, m).permute(0, 3, 1, 2, 4).reshape(B * T, H * W, m)
        xs = torch.cat((cls_token, xs), 1)
        res_spatial = self.drop_path(self.attn(self.norm1(xs)))
        cls_token = res_spatial[:, 0, :]
        cls_token = cls_token.reshape(B, T, m)
        cls_token = torch.mean(cls_token, 1, True)
        res_spatial = res_spatial[:, 1:, :]
        res_spatial = res_spatial.reshape(B, T, H, W, m).permute(0, 2, 3, 1, 4).reshape(B, H * W * T, m)
        x = torch.cat((init_cls_token, xt), 1) + torch.cat((cls_token, res_spatial), 1)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x


class TimeSformer(nn.Module):
    def __init__(self, img_size=8, patch_size=4, num_frames=4, dim=16, depth=2, num_classes=3):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)
        num_patches = (img_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, dim))
        self.time_embed = nn.Parameter(torch.zeros(1, num_frames, dim))
        self.blocks = nn.ModuleList([DividedAttentionBlock(dim, 2) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        trunc_normal_(self.pos_embed, std=.02)
        trunc_normal_(self.cls_token, std=.02)
        i = 0
        for m in self.blocks.modules():
            if "Block" in str(m.__class__.__name__):
                if i > 0:
                    nn.init.constant_(m.temporal_fc.weight, 0)
                    nn.init.constant_(m.temporal_fc.bias, 0)
                i += 1

    def forward(self, x):
        B, C, T, H, W = x.shape
        x = x.permute(0, 2, 1, 3, 4).reshape(B * T, C, H, W)  # 'b c t h w -> (b t) c h w'
        x = self.patch_embed(x)
        W = x.size(-1)
        x = x.flatten(2).transpose(1, 2)
        cls_tokens = self.cls_token.expand(x.size(0), -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)
        x = x + self.pos_embed
        cls_tokens = x[:B, 0, :].unsqueeze(1)
        x = x[:, 1:]
        # rearrange(x, '(b t) n m -> (b n) t m'), add the time embedding, and back to 'b (n t) m'
        n = x.size(1)
        x = x.reshape(B, T, n, -1).permute(0, 2, 1, 3).reshape(B * n, T, -1)
        x = x + self.time_embed
        x = x.reshape(B, n * T, -1)
        x = torch.cat((cls_tokens, x), dim=1)
        for blk in self.blocks:
            x = blk(x, B, T, W)
        x = self.norm(x)
        return self.head(x[:, 0])


torch.manual_seed(1)
tsf = TimeSformer()
share_init(tsf, "timesformer")
labels = torch.tensor([0, 2])
opt = torch.optim.SGD(tsf.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
for step in range(3):
    logits = tsf(videos)
    loss = F.cross_entropy(logits, labels, label_smoothing=0.1)
    opt.zero_grad()
    loss.backward()
    opt.step()
    report("timesformer", step, loss.item(), logits.softmax(-1)[:, 2].tolist(),
           tsf.blocks[1].temporal_fc.weight.grad.abs().sum().item(), tsf.time_embed.grad.abs().sum().item())

# MAE-style random masking: argsort of noise, ids_restore, gather, and the mask unshuffled
noise = torch.from_numpy(rs.rand(2, 8).astype(np.float32))
tokens = tsf.patch_embed(videos[:, :, 0]).flatten(2).transpose(1, 2).repeat(1, 2, 1)
N, L, D = tokens.shape
len_keep = int(L * (1 - 0.75))
ids_shuffle = torch.argsort(noise, dim=1)
ids_restore = torch.argsort(ids_shuffle, dim=1)
ids_keep = ids_shuffle[:, :len_keep]
x_masked = torch.gather(tokens, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, D))
mask = torch.ones([N, L], device=tokens.device)
mask[:, :len_keep] = 0
mask = torch.gather(mask, dim=1, index=ids_restore)
mask_tokens = torch.zeros(N, L - len_keep, D)
x_ = torch.cat([x_masked, mask_tokens], dim=1)
x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, D))
x_.sum().backward()
report("random_masking", ids_keep.tolist(), mask.tolist(), x_.abs().sum().item(),
       tsf.patch_embed.weight.grad.abs().sum().item())
