"""Data-efficient GAN training pieces: DiffAugment's colour / translation / cutout policies
(meshgrid index gathers on a padded permuted batch, written as mit-han-lab's DiffAugment with the
random draws passed in so both libraries see the same ones), StyleGAN2-ADA's native upfirdn2d
blur (negative F.pad crops, flipped FIR kernel, depthwise conv), a minibatch-stddev layer, a
spectrally normalised generator with an EMA copy made by copy.deepcopy before training and
updated with torch._foreach_lerp_, the non-saturating loss with lazy R1 on augmented reals, and
gradient clipping."""
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

rng = np.random.default_rng(3)
torch.manual_seed(0)  # the initial weights (shared with tinymm), drawn reproducibly


def draw(*shape):
    return torch.from_numpy(rng.random(shape).astype(np.float32))


def rand_brightness(x, r):
    return x + (r - 0.5)


def rand_saturation(x, r):
    x_mean = x.mean(dim=1, keepdim=True)
    return (x - x_mean) * (r * 2) + x_mean


def rand_contrast(x, r):
    x_mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - x_mean) * (r + 0.5) + x_mean


def rand_translation(x, shift_x, shift_y):
    grid_batch, grid_x, grid_y = torch.meshgrid(
        torch.arange(x.size(0), dtype=torch.long, device=x.device),
        torch.arange(x.size(2), dtype=torch.long, device=x.device),
        torch.arange(x.size(3), dtype=torch.long, device=x.device),
        indexing="ij",
    )
    grid_x = torch.clamp(grid_x + shift_x + 1, 0, x.size(2) + 1)
    grid_y = torch.clamp(grid_y + shift_y + 1, 0, x.size(3) + 1)
    x_pad = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return x_pad.permute(0, 2, 3, 1).contiguous()[grid_batch, grid_x, grid_y].permute(0, 3, 1, 2)


def rand_cutout(x, offset_x, offset_y, ratio=0.5):
    cutout_size = int(x.size(2) * ratio + 0.5), int(x.size(3) * ratio + 0.5)
    grid_batch, grid_x, grid_y = torch.meshgrid(
        torch.arange(x.size(0), dtype=torch.long, device=x.device),
        torch.arange(cutout_size[0], dtype=torch.long, device=x.device),
        torch.arange(cutout_size[1], dtype=torch.long, device=x.device),
        indexing="ij",
    )
    grid_x = torch.clamp(grid_x + offset_x - cutout_size[0] // 2, min=0, max=x.size(2) - 1)
    grid_y = torch.clamp(grid_y + offset_y - cutout_size[1] // 2, min=0, max=x.size(3) - 1)
    mask = torch.ones(x.size(0), x.size(2), x.size(3), dtype=x.dtype, device=x.device)
    mask[grid_batch, grid_x, grid_y] = 0
    return x * mask.unsqueeze(1)


def DiffAugment(x, draws):
    x = rand_brightness(x, draws["b"])
    x = rand_saturation(x, draws["s"])
    x = rand_contrast(x, draws["c"])
    x = rand_translation(x, draws["tx"], draws["ty"])
    x = rand_cutout(x, draws["ox"], draws["oy"])
    return x.contiguous()


def policy_draws(n, size, ratio=0.125):
    shift = int(size * ratio + 0.5)
    cut = int(size * 0.5 + 0.5)
    return {"b": draw(n, 1, 1, 1), "s": draw(n, 1, 1, 1), "c": draw(n, 1, 1, 1),
            "tx": torch.from_numpy(rng.integers(-shift, shift + 1, (n, 1, 1))),
            "ty": torch.from_numpy(rng.integers(-shift, shift + 1, (n, 1, 1))),
            "ox": torch.from_numpy(rng.integers(0, size + (1 - cut % 2), (n, 1, 1))),
            "oy": torch.from_numpy(rng.integers(0, size + (1 - cut % 2), (n, 1, 1)))}


def setup_filter(f):
    f = torch.as_tensor(f, dtype=torch.float32)
    f = f.ger(f)
    return f / f.sum()


def upfirdn2d(x, f, up=1, down=1, padding=(0, 0, 0, 0), gain=1):
    batch_size, num_channels, in_height, in_width = x.shape
    upx = upy = up
    downx = downy = down
    padx0, padx1, pady0, pady1 = padding
    x = x.reshape([batch_size, num_channels, in_height, 1, in_width, 1])
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
    x = x.reshape([batch_size, num_channels, in_height * upy, in_width * upx])
    x = F.pad(x, [max(padx0, 0), max(padx1, 0), max(pady0, 0), max(pady1, 0)])
    x = x[:, :, max(-pady0, 0): x.shape[2] - max(-pady1, 0), max(-padx0, 0): x.shape[3] - max(-padx1, 0)]
    f = f * (gain ** (f.ndim / 2))
    f = f.to(x.dtype)
    f = f.flip(list(range(f.ndim)))
    f = f[np.newaxis, np.newaxis].repeat([num_channels, 1] + [1] * f.ndim)
    x = F.conv2d(input=x, weight=f, groups=num_channels)
    return x[:, :, ::downy, ::downx]


class MinibatchStdLayer(nn.Module):
    def __init__(self, group_size, num_channels=1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x):
        N, C, H, W = x.shape
        G = min(self.group_size, N)
        F_ = self.num_channels
        c = C // F_
        y = x.reshape(G, -1, F_, c, H, W)
        y = y - y.mean(dim=0)
        y = y.square().mean(dim=0)
        y = (y + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4])
        y = y.reshape(-1, F_, 1, 1)
        y = y.repeat(G, 1, H, W)
        return torch.cat([x, y], dim=1)


class Generator(nn.Module):
    def __init__(self, nz=8, ch=8):
        super().__init__()
        self.ch = ch
        self.fc = nn.utils.spectral_norm(nn.Linear(nz, ch * 4 * 4))
        self.up = nn.Sequential(nn.Upsample(scale_factor=2), nn.utils.spectral_norm(nn.Conv2d(ch, ch, 3, 1, 1)),
                                nn.BatchNorm2d(ch), nn.ReLU(), nn.utils.spectral_norm(nn.ConvTranspose2d(ch, 3, 4, 2, 1)))

    def forward(self, z):
        return torch.tanh(self.up(self.fc(z).view(-1, self.ch, 4, 4)))


class Discriminator(nn.Module):
    def __init__(self, ch=8):
        super().__init__()
        self.register_buffer("blur", setup_filter([1, 3, 3, 1]))
        self.conv = nn.Conv2d(3, ch, 3, 1, 1)
        self.down = nn.Conv2d(ch, ch, 3, 1, 1)
        self.mbstd = MinibatchStdLayer(2)
        self.out = nn.Linear((ch + 1) * 4 * 4, 1)

    def forward(self, x):
        x = F.leaky_relu(self.conv(x), 0.2)
        x = upfirdn2d(x, self.blur, down=2, padding=(1, 2, 1, 2))
        x = F.leaky_relu(self.down(x), 0.2)
        x = upfirdn2d(x, self.blur, down=2, padding=(1, 2, 1, 2))
        return self.out(self.mbstd(x).flatten(1))


G, D = Generator(), Discriminator()
G_ema = copy.deepcopy(G).eval().requires_grad_(False)
share_init(G, "G")
share_init(G_ema, "G_ema")
share_init(D, "D")
optG = torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0.0, 0.99), eps=1e-8)
optD = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.0, 0.99), eps=1e-8)
ema_beta = 0.9

for step in range(4):
    reals = torch.from_numpy(rng.uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32))
    z = torch.from_numpy(rng.standard_normal((4, 8)).astype(np.float32))
    fakes = G(z)
    d_real = D(DiffAugment(reals, policy_draws(4, 16)))
    d_fake = D(DiffAugment(fakes.detach(), policy_draws(4, 16)))
    loss_D = F.softplus(d_fake).mean() + F.softplus(-d_real).mean()
    optD.zero_grad(set_to_none=True)
    loss_D.backward()
    if step % 2 == 0:
        reals_aug = DiffAugment(reals, policy_draws(4, 16)).detach().requires_grad_(True)
        r1_grads = torch.autograd.grad(outputs=[D(reals_aug).sum()], inputs=[reals_aug], create_graph=True, only_inputs=True)[0]
        r1_penalty = r1_grads.square().sum([1, 2, 3])
        (r1_penalty.mean() * (1.0 / 2) * 2).backward()
        report("r1", step, r1_penalty.tolist())
    total = torch.nn.utils.clip_grad_norm_(D.parameters(), max_norm=5.0)
    optD.step()
    loss_G = F.softplus(-D(DiffAugment(fakes, policy_draws(4, 16)))).mean()
    optG.zero_grad(set_to_none=True)
    loss_G.backward()
    optG.step()
    with torch.no_grad():
        ema_p, p = list(G_ema.parameters()), list(G.parameters())
        torch._foreach_lerp_(ema_p, p, 1 - ema_beta)
        for b_ema, b in zip(G_ema.buffers(), G.buffers()):
            b_ema.copy_(b)
    report("step", step, loss_D.item(), loss_G.item(), total.item(), G.fc.weight_u[:3].tolist())

with torch.no_grad():
    z = torch.from_numpy(rng.standard_normal((3, 8)).astype(np.float32))
    img, img_ema = G.eval()(z), G_ema(z)
report("ema", img.mean().item(), img_ema.mean().item(), img_ema.std().item(), G_ema.fc.weight_orig[0, :3].tolist(),
       list(upfirdn2d(img_ema, setup_filter([1, 3, 3, 1]), up=1, padding=(-1, 2, 0, -1)).shape))
