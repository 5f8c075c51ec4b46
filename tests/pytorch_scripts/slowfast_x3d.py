"""SlowFast and X3D video classifiers, written the way facebookresearch/SlowFast and pytorchvideo
write them: clip preprocessing as pytorchvideo's transforms do it (uniform_temporal_subsample with
torch.linspace(...).clamp(...).long() and index_select, short-side scale through F.interpolate bilinear
on (T, C, H, W) frames, center crop, horizontal flip with torch.flip, Normalize by view(-1, 1, 1, 1)),
PackPathway building the slow pathway by index_select on the time axis; two pathways of Conv3d stems
((5,7,7)-style temporal kernels, padding tuples), BatchNorm3d, MaxPool3d with [1,3,3] kernels,
bottleneck ResBlocks with temporal kernels only in the fast path and the last BN zero-initialised,
FuseFastToSlow lateral connections (Conv3d with kernel (fusion_kernel, 1, 1), stride (alpha, 1, 1)) concatenated
onto the slow path; a ResNetBasicHead that AvgPool3d's each pathway over its own (t, h, w), cat's,
permutes to channels-last, Dropout, Linear, and in eval softmaxes and means over the remaining
positions; X3D's channel-wise (depthwise, groups = channels) 3x3x3 Conv3d with a Squeeze-Excitation
(AdaptiveAvgPool3d((1,1,1)), round_width), Swish as x * sigmoid(x) in a custom autograd.Function; a
precise-BN pass (running stats recomputed with momentum None); SGD with nesterov and a cosine
warmup schedule; channels_last_3d input; and multi-view test aggregation (views.view(B, n, -1).mean(1))."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def uniform_temporal_subsample(x, num_samples, temporal_dim=-3):
    t = x.shape[temporal_dim]
    indices = torch.linspace(0, t - 1, num_samples)
    indices = torch.clamp(indices, 0, t - 1).long()
    return torch.index_select(x, temporal_dim, indices)


def short_side_scale(x, size, interpolation="bilinear"):
    assert len(x.shape) == 4
    c, t, h, w = x.shape
    if w < h:
        new_h = int(math.floor((float(h) / w) * size))
        new_w = size
    else:
        new_h = size
        new_w = int(math.floor((float(w) / h) * size))
    return torch.nn.functional.interpolate(x, size=(new_h, new_w), mode=interpolation, align_corners=False)


def center_crop(x, size):
    h, w = x.shape[-2:]
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return x[..., top:top + size, left:left + size]


class PackPathway(torch.nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, frames):
        fast_pathway = frames
        slow_pathway = torch.index_select(
            frames, 1, torch.linspace(0, frames.shape[1] - 1, frames.shape[1] // self.alpha).long())
        return [slow_pathway, fast_pathway]


class SwishEfficient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        result = x * torch.sigmoid(x)
        ctx.save_for_backward(x)
        return result

    @staticmethod
    def backward(ctx, grad_output):
        x = ctx.saved_tensors[0]
        sigmoid_x = torch.sigmoid(x)
        return grad_output * (sigmoid_x * (1 + x * (1 - sigmoid_x)))


class Swish(nn.Module):
    def forward(self, x):
        return SwishEfficient.apply(x)


def round_width(width, multiplier, min_width=8, divisor=8):
    width *= multiplier
    min_width = min_width or divisor
    width_out = max(min_width, int(width + divisor / 2) // divisor * divisor)
    if width_out < 0.9 * width:
        width_out += divisor
    return int(width_out)


class SE(nn.Module):
    def __init__(self, dim_in, ratio, relu_act=True):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool3d((1, 1, 1))
        dim_fc = round_width(dim_in, ratio)
        self.fc1 = nn.Conv3d(dim_in, dim_fc, 1, bias=True)
        self.fc1_act = nn.ReLU() if relu_act else Swish()
        self.fc2 = nn.Conv3d(dim_fc, dim_in, 1, bias=True)
        self.fc2_sig = nn.Sigmoid()

    def forward(self, x):
        x_in = x
        for module in self.children():
            x = module(x)
        return x_in * x


class BottleneckTransform(nn.Module):
    def __init__(self, dim_in, dim_out, temp_kernel_size, stride, dim_inner, zero_init_final_bn=True):
        super().__init__()
        self.a = nn.Conv3d(dim_in, dim_inner, kernel_size=[temp_kernel_size, 1, 1], stride=[1, 1, 1],
                           padding=[int(temp_kernel_size // 2), 0, 0], bias=False)
        self.a_bn = nn.BatchNorm3d(dim_inner, eps=1e-5, momentum=0.1)
        self.a_relu = nn.ReLU(inplace=True)
        self.b = nn.Conv3d(dim_inner, dim_inner, [1, 3, 3], stride=[1, stride, stride], padding=[0, 1, 1], bias=False)
        self.b_bn = nn.BatchNorm3d(dim_inner, eps=1e-5, momentum=0.1)
        self.b_relu = nn.ReLU(inplace=True)
        self.c = nn.Conv3d(dim_inner, dim_out, kernel_size=[1, 1, 1], bias=False)
        self.c_bn = nn.BatchNorm3d(dim_out, eps=1e-5, momentum=0.1)
        self.c_bn.transform_final_bn = zero_init_final_bn

    def forward(self, x):
        for block in self.children():
            x = block(x)
        return x


class ResBlock(nn.Module):
    def __init__(self, dim_in, dim_out, temp_kernel_size, stride, dim_inner):
        super().__init__()
        if (dim_in != dim_out) or (stride != 1):
            self.branch1 = nn.Conv3d(dim_in, dim_out, kernel_size=1, stride=[1, stride, stride], padding=0, bias=False)
            self.branch1_bn = nn.BatchNorm3d(dim_out)
        self.branch2 = BottleneckTransform(dim_in, dim_out, temp_kernel_size, stride, dim_inner)
        self.relu = nn.ReLU(True)

    def forward(self, x):
        f_x = self.branch2(x)
        if hasattr(self, "branch1"):
            x = self.branch1_bn(self.branch1(x)) + f_x
        else:
            x = x + f_x
        return self.relu(x)


class FuseFastToSlow(nn.Module):
    def __init__(self, dim_in, fusion_conv_channel_ratio, fusion_kernel, alpha):
        super().__init__()
        self.conv_f2s = nn.Conv3d(dim_in, dim_in * fusion_conv_channel_ratio, kernel_size=[fusion_kernel, 1, 1],
                                  stride=[alpha, 1, 1], padding=[fusion_kernel // 2, 0, 0], bias=False)
        self.bn = nn.BatchNorm3d(dim_in * fusion_conv_channel_ratio)
        self.relu = nn.ReLU(True)

    def forward(self, x):
        x_s, x_f = x[0], x[1]
        fuse = self.relu(self.bn(self.conv_f2s(x_f)))
        x_s_fuse = torch.cat([x_s, fuse], 1)
        return [x_s_fuse, x_f]


class ResNetBasicHead(nn.Module):
    def __init__(self, dim_in, num_classes, pool_size, dropout_rate=0.0):
        super().__init__()
        self.num_pathways = len(pool_size)
        for pathway in range(self.num_pathways):
            setattr(self, "pathway{}_avgpool".format(pathway), nn.AvgPool3d(pool_size[pathway], stride=1))
        if dropout_rate > 0.0:
            self.dropout = nn.Dropout(dropout_rate)
        self.projection = nn.Linear(sum(dim_in), num_classes, bias=True)
        self.act = nn.Softmax(dim=4)

    def forward(self, inputs):
        pool_out = []
        for pathway in range(self.num_pathways):
            m = getattr(self, "pathway{}_avgpool".format(pathway))
            pool_out.append(m(inputs[pathway]))
        x = torch.cat(pool_out, 1)
        x = x.permute((0, 2, 3, 4, 1))  # (N, C, T, H, W) -> (N, T, H, W, C)
        if hasattr(self, "dropout"):
            x = self.dropout(x)
        x = self.projection(x)
        if not self.training:
            x = self.act(x)
            x = x.mean([1, 2, 3])
        x = x.view(x.shape[0], -1)
        return x


class SlowFast(nn.Module):
    def __init__(self, num_classes=4, alpha=4, beta_inv=4, width=8, frames=8, crop=8):
        super().__init__()
        fast_w = width // beta_inv
        self.s1_slow = nn.Sequential(nn.Conv3d(3, width, [1, 5, 5], [1, 2, 2], [0, 2, 2], bias=False),
                                     nn.BatchNorm3d(width), nn.ReLU(True))
        self.s1_fast = nn.Sequential(nn.Conv3d(3, fast_w, [5, 5, 5], [1, 2, 2], [2, 2, 2], bias=False),
                                     nn.BatchNorm3d(fast_w), nn.ReLU(True))
        self.pool1 = nn.MaxPool3d(kernel_size=[1, 3, 3], stride=[1, 2, 2], padding=[0, 1, 1])
        self.s1_fuse = FuseFastToSlow(fast_w, 2, 5, alpha)
        slow_in = width + 2 * fast_w
        self.s2_slow = ResBlock(slow_in, 2 * width, 1, 1, width)
        self.s2_fast = ResBlock(fast_w, 2 * fast_w, 3, 1, fast_w)
        self.head = ResNetBasicHead([2 * width, 2 * fast_w], num_classes,
                                    [[frames // alpha, crop // 4, crop // 4], [frames, crop // 4, crop // 4]])
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                batchnorm_weight = 0.0 if getattr(m, "transform_final_bn", False) else 1.0
                m.weight.data.fill_(batchnorm_weight)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.weight.data.normal_(mean=0.0, std=0.01)
                m.bias.data.zero_()

    def forward(self, x):
        x = [self.s1_slow(x[0]), self.s1_fast(x[1])]
        x = [self.pool1(p) for p in x]
        x = self.s1_fuse(x)
        x = [self.s2_slow(x[0]), self.s2_fast(x[1])]
        return self.head(x)


class X3DBlock(nn.Module):
    def __init__(self, dim, dim_inner, se_ratio=0.0625):
        super().__init__()
        self.a = nn.Conv3d(dim, dim_inner, 1, bias=False)
        self.a_bn = nn.BatchNorm3d(dim_inner)
        self.b = nn.Conv3d(dim_inner, dim_inner, [3, 3, 3], padding=[1, 1, 1], groups=dim_inner, bias=False)
        self.b_bn = nn.BatchNorm3d(dim_inner)
        self.se = SE(dim_inner, se_ratio)
        self.b_relu = Swish()
        self.c = nn.Conv3d(dim_inner, dim, 1, bias=False)
        self.c_bn = nn.BatchNorm3d(dim)

    def forward(self, x):
        f = F.relu(self.a_bn(self.a(x)))
        f = self.b_relu(self.se(self.b_bn(self.b(f))))
        return F.relu(x + self.c_bn(self.c(f)))


class X3D(nn.Module):
    def __init__(self, num_classes=4, dim=8):
        super().__init__()
        self.conv_xy = nn.Conv3d(3, dim, [1, 3, 3], stride=[1, 2, 2], padding=[0, 1, 1], bias=False)
        self.conv_t = nn.Conv3d(dim, dim, [5, 1, 1], padding=[2, 0, 0], groups=dim, bias=False)
        self.bn = nn.BatchNorm3d(dim)
        self.block = X3DBlock(dim, round_width(dim, 2.25))
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.proj = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = F.relu(self.bn(self.conv_t(self.conv_xy(x))))
        x = self.block(x)
        return self.proj(self.pool(x).flatten(1))


rng = np.random.default_rng(0)
raw = [torch.from_numpy(rng.uniform(0, 255, (16, 12, 10, 3)).astype(np.uint8)) for _ in range(3)]  # T, H, W, C
mean = torch.tensor([0.45, 0.45, 0.45])
std = torch.tensor([0.225, 0.225, 0.225])


def transform(video, flip):
    video = video.permute(3, 0, 1, 2).float() / 255.0  # C, T, H, W
    video = uniform_temporal_subsample(video, 8, temporal_dim=1)
    video = short_side_scale(video, 9)
    video = center_crop(video, 8)
    if flip:
        video = torch.flip(video, dims=[-1])
    video = (video - mean.view(-1, 1, 1, 1)) / std.view(-1, 1, 1, 1)
    return video


clips = torch.stack([transform(v, i == 1) for i, v in enumerate(raw)])
report("clips", list(clips.shape), clips.mean().item(), clips[1, 2, 3].abs().sum().item())
pack = PackPathway(alpha=4)
inputs = [torch.stack(p) for p in zip(*[pack(c) for c in clips])]
report("pathways", [list(p.shape) for p in inputs])
labels = torch.tensor([1, 3, 0])

torch.manual_seed(0)
model = SlowFast()
share_init(model, "slowfast")
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True)


def get_lr_at_epoch(cur_epoch, base_lr=0.1, warmup_epochs=2, max_epoch=6, warmup_start_lr=0.01):
    lr = base_lr * (math.cos(math.pi * cur_epoch / max_epoch) + 1.0) * 0.5
    if cur_epoch < warmup_epochs:
        lr_end = base_lr * (math.cos(math.pi * warmup_epochs / max_epoch) + 1.0) * 0.5
        alpha = (lr_end - warmup_start_lr) / warmup_epochs
        lr = cur_epoch * alpha + warmup_start_lr
    return lr


model.train()
for step in range(4):
    lr = get_lr_at_epoch(step + 0.5)
    for param_group in optimizer.param_groups:
        param_group["lr"] = lr
    preds = model([p.contiguous(memory_format=torch.channels_last_3d) if p.dim() == 5 else p for p in inputs])
    loss = nn.CrossEntropyLoss(reduction="mean")(preds, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    top1 = (preds.argmax(1) == labels).float().mean()
    report("slowfast", step, loss.item(), top1.item(), lr, model.s1_fuse.conv_f2s.weight.grad.abs().sum().item(),
           model.s2_slow.branch2.c_bn.weight.abs().sum().item())

# precise BN: running stats recomputed over the data with a cumulative average (momentum None)
bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm3d)]
momentums = [bn.momentum for bn in bns]
for bn in bns:
    bn.reset_running_stats()
    bn.momentum = None
with torch.no_grad():
    for i in range(3):
        model([p[i:i + 1] for p in inputs])
for bn, mom in zip(bns, momentums):
    bn.momentum = mom
report("precise_bn", bns[0].running_mean.tolist(), bns[-1].running_var.abs().sum().item(), bns[0].num_batches_tracked.item())

model.eval()
with torch.no_grad():
    probs = model(inputs)
    # two spatial views per clip, aggregated
    views = torch.cat([probs, model([torch.flip(x, dims=[-1]) for x in inputs])])
    agg = views.view(2, 3, -1).permute(1, 0, 2).reshape(3, 2, -1).mean(1)
report("eval", probs.sum(1).tolist(), probs[:, 1].tolist(), agg.argmax(1).tolist(), agg.max(1).values.tolist())

torch.manual_seed(1)
x3d = X3D()
share_init(x3d, "x3d")
opt = torch.optim.Adam(x3d.parameters(), lr=1e-2)
x3d.train()
for step in range(3):
    out = x3d(clips)
    loss = F.cross_entropy(out, labels)
    opt.zero_grad()
    loss.backward()
    opt.step()
    report("x3d", step, loss.item(), x3d.block.b.weight.grad.abs().sum().item(),
           x3d.block.se.fc1.weight.grad.abs().sum().item(), x3d.conv_t.weight.grad.flatten()[:5].tolist())
