"""A tiny DDPM (Ho et al.), written the way the denoising-diffusion-pytorch repository and the
annotated-diffusion blog write it: a small UNet of ResNet blocks with GroupNorm, SiLU and a
sinusoidal time embedding fed through an MLP, a linear beta schedule registered as buffers
(betas, alphas_cumprod, sqrt_alphas_cumprod, ...), ``extract`` gathering the schedule values of
each sample's timestep, q_sample with torch.randn_like, the simple noise-prediction MSE loss
under AdamW with gradient clipping, and a few ancestral sampling steps under torch.no_grad.
The noise and timesteps are drawn with NumPy so both libraries see the same numbers."""
import math
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def exists(x):
    return x is not None


def default(val, d):
    return val if exists(val) else (d() if callable(d) else d)


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim, theta=10000):
        super().__init__()
        self.dim = dim
        self.theta = theta

    def forward(self, x):
        device = x.device
        half_dim = self.dim // 2
        emb = math.log(self.theta) / (half_dim - 1)
        emb = torch.exp(torch.arange(half_dim, device=device) * -emb)
        emb = x[:, None] * emb[None, :]
        emb = torch.cat((emb.sin(), emb.cos()), dim=-1)
        return emb


class Block(nn.Module):
    def __init__(self, dim, dim_out, groups=4):
        super().__init__()
        self.proj = nn.Conv2d(dim, dim_out, 3, padding=1)
        self.norm = nn.GroupNorm(groups, dim_out)
        self.act = nn.SiLU()

    def forward(self, x, scale_shift=None):
        x = self.proj(x)
        x = self.norm(x)
        if exists(scale_shift):
            scale, shift = scale_shift
            x = x * (scale + 1) + shift
        return self.act(x)


class ResnetBlock(nn.Module):
    def __init__(self, dim, dim_out, *, time_emb_dim=None, groups=4):
        super().__init__()
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(time_emb_dim, dim_out * 2)) if exists(time_emb_dim) else None
        self.block1 = Block(dim, dim_out, groups=groups)
        self.block2 = Block(dim_out, dim_out, groups=groups)
        self.res_conv = nn.Conv2d(dim, dim_out, 1) if dim != dim_out else nn.Identity()

    def forward(self, x, time_emb=None):
        scale_shift = None
        if exists(self.mlp) and exists(time_emb):
            time_emb = self.mlp(time_emb)
            time_emb = time_emb[:, :, None, None]  # b c -> b c 1 1
            scale_shift = time_emb.chunk(2, dim=1)
        h = self.block1(x, scale_shift=scale_shift)
        h = self.block2(h)
        return h + self.res_conv(x)


class Unet(nn.Module):
    def __init__(self, dim=8, channels=1, dim_mults=(1, 2)):
        super().__init__()
        self.channels = channels
        self.init_conv = nn.Conv2d(channels, dim, 7, padding=3)
        dims = [dim, *map(lambda m: dim * m, dim_mults)]
        in_out = list(zip(dims[:-1], dims[1:]))
        time_dim = dim * 4
        self.time_mlp = nn.Sequential(
            SinusoidalPosEmb(dim), nn.Linear(dim, time_dim), nn.GELU(), nn.Linear(time_dim, time_dim))
        block_klass = partial(ResnetBlock, time_emb_dim=time_dim)
        self.downs = nn.ModuleList([])
        self.ups = nn.ModuleList([])
        for ind, (dim_in, dim_out) in enumerate(in_out):
            is_last = ind >= (len(in_out) - 1)
            self.downs.append(nn.ModuleList([
                block_klass(dim_in, dim_in),
                nn.Conv2d(dim_in, dim_out, 4, 2, 1) if not is_last else nn.Conv2d(dim_in, dim_out, 3, padding=1)]))
        mid_dim = dims[-1]
        self.mid_block = block_klass(mid_dim, mid_dim)
        for ind, (dim_in, dim_out) in enumerate(reversed(in_out)):
            is_last = ind == (len(in_out) - 1)
            self.ups.append(nn.ModuleList([
                block_klass(dim_out + dim_in, dim_out),
                nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(dim_out, dim_in, 3, padding=1))
                if not is_last else nn.Conv2d(dim_out, dim_in, 3, padding=1)]))
        self.final_res_block = block_klass(dim * 2, dim)
        self.final_conv = nn.Conv2d(dim, channels, 1)

    def forward(self, x, time):
        x = self.init_conv(x)
        r = x.clone()
        t = self.time_mlp(time)
        h = []
        for block, downsample in self.downs:
            x = block(x, t)
            h.append(x)
            x = downsample(x)
        x = self.mid_block(x, t)
        for block, upsample in self.ups:
            x = torch.cat((x, h.pop()), dim=1)
            x = block(x, t)
            x = upsample(x)
        x = torch.cat((x, r), dim=1)
        x = self.final_res_block(x, t)
        return self.final_conv(x)


def extract(a, t, x_shape):
    b, *_ = t.shape
    out = a.gather(-1, t)
    return out.reshape(b, *((1,) * (len(x_shape) - 1)))


def linear_beta_schedule(timesteps):
    scale = 1000 / timesteps
    beta_start = scale * 0.0001
    beta_end = scale * 0.02
    return torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)


class GaussianDiffusion(nn.Module):
    def __init__(self, model, *, image_size, timesteps=20):
        super().__init__()
        self.model = model
        self.channels = model.channels
        self.image_size = image_size
        betas = linear_beta_schedule(timesteps)
        alphas = 1. - betas
        alphas_cumprod = torch.cumprod(alphas, dim=0)
        alphas_cumprod_prev = F.pad(alphas_cumprod[:-1], (1, 0), value=1.)
        timesteps, = betas.shape
        self.num_timesteps = int(timesteps)
        register_buffer = lambda name, val: self.register_buffer(name, val.to(torch.float32))
        register_buffer('betas', betas)
        register_buffer('alphas_cumprod', alphas_cumprod)
        register_buffer('alphas_cumprod_prev', alphas_cumprod_prev)
        register_buffer('sqrt_alphas_cumprod', torch.sqrt(alphas_cumprod))
        register_buffer('sqrt_one_minus_alphas_cumprod', torch.sqrt(1. - alphas_cumprod))
        register_buffer('sqrt_recip_alphas_cumprod', torch.sqrt(1. / alphas_cumprod))
        register_buffer('sqrt_recipm1_alphas_cumprod', torch.sqrt(1. / alphas_cumprod - 1))
        posterior_variance = betas * (1. - alphas_cumprod_prev) / (1. - alphas_cumprod)
        register_buffer('posterior_variance', posterior_variance)
        register_buffer('posterior_log_variance_clipped', torch.log(posterior_variance.clamp(min=1e-20)))
        register_buffer('posterior_mean_coef1', betas * torch.sqrt(alphas_cumprod_prev) / (1. - alphas_cumprod))
        register_buffer('posterior_mean_coef2', (1. - alphas_cumprod_prev) * torch.sqrt(alphas) / (1. - alphas_cumprod))

    @property
    def device(self):
        return self.betas.device

    def q_sample(self, x_start, t, noise=None):
        noise = default(noise, lambda: torch.randn_like(x_start))
        return (extract(self.sqrt_alphas_cumprod, t, x_start.shape) * x_start +
                extract(self.sqrt_one_minus_alphas_cumprod, t, x_start.shape) * noise)

    def predict_start_from_noise(self, x_t, t, noise):
        return (extract(self.sqrt_recip_alphas_cumprod, t, x_t.shape) * x_t -
                extract(self.sqrt_recipm1_alphas_cumprod, t, x_t.shape) * noise)

    def q_posterior(self, x_start, x_t, t):
        posterior_mean = (extract(self.posterior_mean_coef1, t, x_t.shape) * x_start +
                          extract(self.posterior_mean_coef2, t, x_t.shape) * x_t)
        posterior_log_variance_clipped = extract(self.posterior_log_variance_clipped, t, x_t.shape)
        return posterior_mean, posterior_log_variance_clipped

    @torch.no_grad()
    def p_sample(self, x, t: int, noise):
        batched_times = torch.full((x.shape[0],), t, device=self.device, dtype=torch.long)
        pred_noise = self.model(x, batched_times.float())
        x_start = self.predict_start_from_noise(x, batched_times, pred_noise).clamp_(-1., 1.)
        model_mean, model_log_variance = self.q_posterior(x_start, x, batched_times)
        noise = noise if t > 0 else 0.
        return model_mean + (0.5 * model_log_variance).exp() * noise

    def p_losses(self, x_start, t, noise):
        x = self.q_sample(x_start=x_start, t=t, noise=noise)
        model_out = self.model(x, t.float())
        loss = F.mse_loss(model_out, noise, reduction='none')
        loss = loss.mean(dim=[1, 2, 3])
        return loss.mean()

    def forward(self, img, t, noise):
        b, c, h, w = img.shape
        assert h == self.image_size and w == self.image_size, f'height and width of image must be {self.image_size}'
        img = img * 2 - 1  # normalize_to_neg_one_to_one
        return self.p_losses(img, t, noise)


torch.manual_seed(0)
rng = np.random.default_rng(0)
model = Unet(dim=8, channels=1, dim_mults=(1, 2))
diffusion = GaussianDiffusion(model, image_size=8, timesteps=20)
share_init(diffusion)
report("buffers", sorted(k for k, _ in diffusion.named_buffers()),
       diffusion.alphas_cumprod[-1].item(), diffusion.sqrt_recip_alphas_cumprod[-2:].tolist(),
       diffusion.posterior_log_variance_clipped[:3].tolist())
opt = torch.optim.AdamW(diffusion.parameters(), lr=2e-3, betas=(0.9, 0.99))

images = torch.from_numpy((rng.random((6, 1, 8, 8)) > 0.5).astype(np.float32))
for step in range(4):
    t = torch.from_numpy(rng.integers(0, diffusion.num_timesteps, 6)).long()
    noise = torch.from_numpy(rng.standard_normal((6, 1, 8, 8)).astype(np.float32))
    loss = diffusion(images, t, noise)
    opt.zero_grad()
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(diffusion.parameters(), 1.0)
    opt.step()
    report("step", step, loss.item(), norm.item())

# randn_like: same shape and dtype, standard normal moments
noisy = diffusion.q_sample(images, torch.zeros(6, dtype=torch.long))
report("randn_like", list(noisy.shape), noisy.dtype == torch.float32)
big = torch.randn_like(torch.empty(20000, dtype=torch.float64))
report("randn_like stats", big.dtype == torch.float64, abs(big.mean().item()) < 0.05, abs(big.std().item() - 1) < 0.05)

model.eval()
img = torch.from_numpy(rng.standard_normal((2, 1, 8, 8)).astype(np.float32))
for t in reversed(range(0, diffusion.num_timesteps, 5)):
    z = torch.from_numpy(rng.standard_normal((2, 1, 8, 8)).astype(np.float32))
    img = diffusion.p_sample(img, t, z)
    report("sample", t, img.requires_grad, img.mean().item(), img.abs().max().item())
img = (img + 1) * 0.5  # unnormalize_to_zero_to_one
report("final", img.clamp(0, 1).sum().item())
