"""StyleGAN2 pieces as rosinality's stylegan2-pytorch writes them: equalized-lr linear and conv
(weight scaled at run time), a pixel-norm + MLP mapping network with fused leaky ReLU, a
modulated / demodulated conv through the grouped-conv trick (groups=batch), noise injection with
a learned per-channel strength, a constant input, a style-mixing truncation trick, the
non-saturating softplus logistic loss, the R1 penalty via autograd.grad on real images, and
path-length regularisation with its moving mean."""
import math

import numpy as np
import torch
from torch import nn, autograd
from torch.nn import functional as F

rng = np.random.default_rng(1)
torch.manual_seed(0)  # the initial weights (shared with tinymm), drawn reproducibly


class PixelNorm(nn.Module):
    def forward(self, input):
        return input * torch.rsqrt(torch.mean(input ** 2, dim=1, keepdim=True) + 1e-8)


def fused_leaky_relu(input, bias, negative_slope=0.2, scale=2 ** 0.5):
    rest_dim = [1] * (input.ndim - bias.ndim - 1)
    return F.leaky_relu(input + bias.view(1, bias.shape[0], *rest_dim), negative_slope=negative_slope) * scale


class EqualLinear(nn.Module):
    def __init__(self, in_dim, out_dim, bias=True, bias_init=0, lr_mul=1, activation=None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.zeros(out_dim).fill_(bias_init)) if bias else None
        self.activation = activation
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, input):
        if self.activation:
            out = F.linear(input, self.weight * self.scale)
            return fused_leaky_relu(out, self.bias * self.lr_mul)
        return F.linear(input, self.weight * self.scale, bias=self.bias * self.lr_mul)


class EqualConv2d(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.stride, self.padding = stride, padding
        self.bias = nn.Parameter(torch.zeros(out_channel)) if bias else None

    def forward(self, input):
        return F.conv2d(input, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding)


class ModulatedConv2d(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, style_dim, demodulate=True, upsample=False):
        super().__init__()
        self.eps = 1e-8
        self.kernel_size, self.in_channel, self.out_channel = kernel_size, in_channel, out_channel
        self.upsample = upsample
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)
        self.demodulate = demodulate

    def forward(self, input, style):
        batch, in_channel, height, width = input.shape
        style = self.modulation(style).view(batch, 1, in_channel, 1, 1)
        weight = self.scale * self.weight * style
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
            weight = weight * demod.view(batch, self.out_channel, 1, 1, 1)
        if self.upsample:
            input = input.view(1, batch * in_channel, height, width)
            weight = weight.view(batch, self.out_channel, in_channel, self.kernel_size, self.kernel_size)
            weight = weight.transpose(1, 2).reshape(batch * in_channel, self.out_channel, self.kernel_size, self.kernel_size)
            out = F.conv_transpose2d(input, weight, padding=0, stride=2, groups=batch)
            _, _, height, width = out.shape
            out = out.view(batch, self.out_channel, height, width)
            return F.avg_pool2d(out, 2, stride=1)
        weight = weight.view(batch * self.out_channel, in_channel, self.kernel_size, self.kernel_size)
        input = input.view(1, batch * in_channel, height, width)
        out = F.conv2d(input, weight, padding=self.padding, groups=batch)
        _, _, height, width = out.shape
        return out.view(batch, self.out_channel, height, width)


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image, noise):
        return image + self.weight * noise


class StyledConv(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, style_dim, upsample=False):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate_bias = nn.Parameter(torch.zeros(out_channel))

    def forward(self, input, style, noise):
        out = self.noise(self.conv(input, style), noise)
        return fused_leaky_relu(out, self.activate_bias)


class ToRGB(nn.Module):
    def __init__(self, in_channel, style_dim):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, input, style, skip=None):
        out = self.conv(input, style) + self.bias
        if skip is not None:
            out = out + F.interpolate(skip, scale_factor=2, mode="bilinear", align_corners=False)
        return out


class Generator(nn.Module):
    def __init__(self, style_dim=16, n_mlp=3, ch=8, lr_mlp=0.01):
        super().__init__()
        self.style_dim = style_dim
        layers = [PixelNorm()]
        for _ in range(n_mlp):
            layers.append(EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation="fused_lrelu"))
        self.style = nn.Sequential(*layers)
        self.input = nn.Parameter(torch.randn(1, ch, 4, 4))
        self.conv1 = StyledConv(ch, ch, 3, style_dim)
        self.to_rgb1 = ToRGB(ch, style_dim)
        self.up = StyledConv(ch, ch, 3, style_dim, upsample=True)
        self.conv2 = StyledConv(ch, ch, 3, style_dim)
        self.to_rgb2 = ToRGB(ch, style_dim)
        self.n_latent = 5

    def mean_latent(self, z):
        return self.style(z).mean(0, keepdim=True)

    def forward(self, styles, noises, truncation=1, truncation_latent=None, inject_index=None, return_latents=False):
        styles = [self.style(s) for s in styles]
        if truncation < 1:
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]
        if len(styles) < 2:
            latent = styles[0].unsqueeze(1).repeat(1, self.n_latent, 1)
        else:
            latent = styles[0].unsqueeze(1).repeat(1, inject_index, 1)
            latent2 = styles[1].unsqueeze(1).repeat(1, self.n_latent - inject_index, 1)
            latent = torch.cat([latent, latent2], 1)
        out = self.input.repeat(latent.shape[0], 1, 1, 1)
        out = self.conv1(out, latent[:, 0], noises[0])
        skip = self.to_rgb1(out, latent[:, 1])
        out = self.up(out, latent[:, 1], noises[1])
        out = self.conv2(out, latent[:, 2], noises[2])
        image = self.to_rgb2(out, latent[:, 3], skip)
        return (image, latent) if return_latents else (image, None)


class Discriminator(nn.Module):
    def __init__(self, ch=8):
        super().__init__()
        self.conv0 = EqualConv2d(3, ch, 3, padding=1)
        self.conv1 = EqualConv2d(ch, ch, 3, stride=2, padding=1)
        self.final_linear = EqualLinear(ch * 16, 1)

    def forward(self, x):
        out = F.leaky_relu(self.conv0(x), 0.2) * 2 ** 0.5
        out = F.leaky_relu(self.conv1(out), 0.2) * 2 ** 0.5
        return self.final_linear(out.view(out.shape[0], -1))


def d_logistic_loss(real_pred, fake_pred):
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def d_r1_loss(real_pred, real_img):
    grad_real, = autograd.grad(outputs=real_pred.sum(), inputs=real_img, create_graph=True)
    return grad_real.pow(2).reshape(grad_real.shape[0], -1).sum(1).mean()


def g_nonsaturating_loss(fake_pred):
    return F.softplus(-fake_pred).mean()


def g_path_regularize(fake_img, latents, mean_path_length, noise, decay=0.01):
    grad, = autograd.grad(outputs=(fake_img * noise).sum(), inputs=latents, create_graph=True)
    path_lengths = torch.sqrt(grad.pow(2).sum(2).mean(1))
    path_mean = mean_path_length + decay * (path_lengths.mean() - mean_path_length)
    path_penalty = (path_lengths - path_mean).pow(2).mean()
    return path_penalty, path_mean.detach(), path_lengths


def requires_grad(model, flag=True):
    for p in model.parameters():
        p.requires_grad = flag


def np32(*shape):
    return torch.from_numpy(rng.standard_normal(shape).astype(np.float32))


generator, discriminator = Generator(), Discriminator()
share_init(generator, "g")
share_init(discriminator, "d")
with torch.no_grad():
    for m in generator.modules():
        if isinstance(m, NoiseInjection):
            m.weight.fill_(0.1)
g_reg_ratio, d_reg_ratio = 2 / 3, 2 / 3
g_optim = torch.optim.Adam(generator.parameters(), lr=2e-3 * g_reg_ratio, betas=(0 ** g_reg_ratio, 0.99 ** g_reg_ratio))
d_optim = torch.optim.Adam(discriminator.parameters(), lr=2e-3 * d_reg_ratio, betas=(0 ** d_reg_ratio, 0.99 ** d_reg_ratio))
mean_path_length = 0
batch = 4


def make_noise():
    return [np32(batch, 1, 4, 4), np32(batch, 1, 8, 8), np32(batch, 1, 8, 8)]


for i in range(4):
    real_img = torch.from_numpy(rng.uniform(-1, 1, (batch, 3, 8, 8)).astype(np.float32))
    requires_grad(generator, False)
    requires_grad(discriminator, True)
    fake_img, _ = generator([np32(batch, 16), np32(batch, 16)], make_noise(), inject_index=2)
    d_loss = d_logistic_loss(discriminator(real_img), discriminator(fake_img))
    discriminator.zero_grad()
    d_loss.backward()
    d_optim.step()
    report("d", i, d_loss.item(), fake_img.shape[-1])
    if i % 2 == 0:
        real_img.requires_grad = True
        real_pred = discriminator(real_img)
        r1_loss = d_r1_loss(real_pred, real_img)
        discriminator.zero_grad()
        (10 / 2 * r1_loss * 2 + 0 * real_pred[0]).backward()
        d_optim.step()
        report("r1", i, r1_loss.item())
    requires_grad(generator, True)
    requires_grad(discriminator, False)
    fake_img, _ = generator([np32(batch, 16)], make_noise())
    g_loss = g_nonsaturating_loss(discriminator(fake_img))
    generator.zero_grad()
    g_loss.backward()
    g_optim.step()
    report("g", i, g_loss.item(), generator.conv1.noise.weight.item())
    if i % 2 == 1:
        fake_img, latents = generator([np32(2, 16)], [n[:2] for n in make_noise()], return_latents=True)
        noise = np32(*fake_img.shape) / math.sqrt(fake_img.shape[2] * fake_img.shape[3])
        path_loss, mean_path_length, path_lengths = g_path_regularize(fake_img, latents, mean_path_length, noise)
        generator.zero_grad()
        (2 * 2 * path_loss + 0 * fake_img[0, 0, 0, 0]).backward()
        g_optim.step()
        report("pl", i, path_loss.item(), mean_path_length.item(), path_lengths.tolist())

with torch.no_grad():
    mean_latent = generator.mean_latent(np32(64, 16))
    sample, _ = generator([np32(2, 16)], [n[:2] for n in make_noise()], truncation=0.7, truncation_latent=mean_latent)
report("sample", list(sample.shape), sample.mean().item(), sample.std().item(), sample[0, :, 0, 0].tolist())
