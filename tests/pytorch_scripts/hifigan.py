"""A tiny HiFi-GAN vocoder step, written the way jik876/hifi-gan's models.py and train.py write it: a
generator of weight-normed ConvTranspose1d upsamplers (padding (k-u)//2) and multi-receptive-field
ResBlock1s (dilated Conv1d pairs, get_padding, leaky_relu with LRELU_SLOPE, init_weights through
module.apply and m.weight.data.normal_), tanh output; a multi-period discriminator (F.pad reflect,
view to (b, c, t // p, p), Conv2d with (k, 1) kernels, spectral/weight norm, fmap lists) and a
scale discriminator with AvgPool1d and grouped Conv1d; feature-matching, LSGAN discriminator and
generator losses; the mel L1 loss from torch.stft with a hann window and a mel filterbank matmul;
AdamW with betas (0.8, 0.99) and ExponentialLR; then remove_weight_norm for inference, which must not
change the waveform, and the parametrizations.weight_norm variant with original0/original1."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import Conv1d, ConvTranspose1d, Conv2d, AvgPool1d
from torch.nn.utils import weight_norm, remove_weight_norm, spectral_norm

LRELU_SLOPE = 0.1


def init_weights(m, mean=0.0, std=0.01):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        m.weight.data.normal_(mean, std)


def get_padding(kernel_size, dilation=1):
    return int((kernel_size * dilation - dilation) / 2)


class ResBlock1(torch.nn.Module):
    def __init__(self, channels, kernel_size=3, dilation=(1, 3, 5)):
        super(ResBlock1, self).__init__()
        self.convs1 = nn.ModuleList([
            weight_norm(Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=get_padding(kernel_size, d)))
            for d in dilation])
        self.convs1.apply(init_weights)
        self.convs2 = nn.ModuleList([
            weight_norm(Conv1d(channels, channels, kernel_size, 1, dilation=1, padding=get_padding(kernel_size, 1)))
            for _ in dilation])
        self.convs2.apply(init_weights)

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = F.leaky_relu(x, LRELU_SLOPE)
            xt = c1(xt)
            xt = F.leaky_relu(xt, LRELU_SLOPE)
            xt = c2(xt)
            x = xt + x
        return x

    def remove_weight_norm(self):
        for l in self.convs1:
            remove_weight_norm(l)
        for l in self.convs2:
            remove_weight_norm(l)


class Generator(torch.nn.Module):
    def __init__(self, h):
        super(Generator, self).__init__()
        self.h = h
        self.num_kernels = len(h["resblock_kernel_sizes"])
        self.num_upsamples = len(h["upsample_rates"])
        self.conv_pre = weight_norm(Conv1d(h["num_mels"], h["upsample_initial_channel"], 7, 1, padding=3))
        self.ups = nn.ModuleList()
        for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"])):
            self.ups.append(weight_norm(
                ConvTranspose1d(h["upsample_initial_channel"] // (2 ** i), h["upsample_initial_channel"] // (2 ** (i + 1)),
                                k, u, padding=(k - u) // 2)))
        self.resblocks = nn.ModuleList()
        for i in range(len(self.ups)):
            ch = h["upsample_initial_channel"] // (2 ** (i + 1))
            for j, (k, d) in enumerate(zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"])):
                self.resblocks.append(ResBlock1(ch, k, d))
        self.conv_post = weight_norm(Conv1d(ch, 1, 7, 1, padding=3))
        self.ups.apply(init_weights)
        self.conv_post.apply(init_weights)

    def forward(self, x):
        x = self.conv_pre(x)
        for i in range(self.num_upsamples):
            x = F.leaky_relu(x, LRELU_SLOPE)
            x = self.ups[i](x)
            xs = None
            for j in range(self.num_kernels):
                if xs is None:
                    xs = self.resblocks[i * self.num_kernels + j](x)
                else:
                    xs += self.resblocks[i * self.num_kernels + j](x)
            x = xs / self.num_kernels
        x = F.leaky_relu(x)
        x = self.conv_post(x)
        x = torch.tanh(x)
        return x

    def remove_weight_norm(self):
        for l in self.ups:
            remove_weight_norm(l)
        for l in self.resblocks:
            l.remove_weight_norm()
        remove_weight_norm(self.conv_pre)
        remove_weight_norm(self.conv_post)


class DiscriminatorP(torch.nn.Module):
    def __init__(self, period, kernel_size=5, stride=3, use_spectral_norm=False):
        super(DiscriminatorP, self).__init__()
        self.period = period
        norm_f = weight_norm if use_spectral_norm == False else spectral_norm
        self.convs = nn.ModuleList([
            norm_f(Conv2d(1, 4, (kernel_size, 1), (stride, 1), padding=(get_padding(5, 1), 0))),
            norm_f(Conv2d(4, 8, (kernel_size, 1), (stride, 1), padding=(get_padding(5, 1), 0))),
            norm_f(Conv2d(8, 8, (kernel_size, 1), 1, padding=(2, 0))),
        ])
        self.conv_post = norm_f(Conv2d(8, 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x):
        fmap = []
        b, c, t = x.shape
        if t % self.period != 0:  # pad first
            n_pad = self.period - (t % self.period)
            x = F.pad(x, (0, n_pad), "reflect")
            t = t + n_pad
        x = x.view(b, c, t // self.period, self.period)
        for l in self.convs:
            x = l(x)
            x = F.leaky_relu(x, LRELU_SLOPE)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        x = torch.flatten(x, 1, -1)
        return x, fmap


class DiscriminatorS(torch.nn.Module):
    def __init__(self, use_spectral_norm=False):
        super(DiscriminatorS, self).__init__()
        norm_f = weight_norm if use_spectral_norm == False else spectral_norm
        self.convs = nn.ModuleList([
            norm_f(Conv1d(1, 8, 15, 1, padding=7)),
            norm_f(Conv1d(8, 8, 41, 2, groups=4, padding=20)),
            norm_f(Conv1d(8, 16, 5, 1, padding=2)),
        ])
        self.conv_post = norm_f(Conv1d(16, 1, 3, 1, padding=1))

    def forward(self, x):
        fmap = []
        for l in self.convs:
            x = l(x)
            x = F.leaky_relu(x, LRELU_SLOPE)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        x = torch.flatten(x, 1, -1)
        return x, fmap


class MultiDiscriminator(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.discriminators = nn.ModuleList([DiscriminatorP(2), DiscriminatorP(3), DiscriminatorS(use_spectral_norm=True),
                                             DiscriminatorS()])
        self.meanpools = nn.ModuleList([AvgPool1d(4, 2, padding=2)])

    def forward(self, y, y_hat):
        y_d_rs, y_d_gs, fmap_rs, fmap_gs = [], [], [], []
        for i, d in enumerate(self.discriminators):
            if i == 3:
                y = self.meanpools[0](y)
                y_hat = self.meanpools[0](y_hat)
            y_d_r, fmap_r = d(y)
            y_d_g, fmap_g = d(y_hat)
            y_d_rs.append(y_d_r)
            fmap_rs.append(fmap_r)
            y_d_gs.append(y_d_g)
            fmap_gs.append(fmap_g)
        return y_d_rs, y_d_gs, fmap_rs, fmap_gs


def feature_loss(fmap_r, fmap_g):
    loss = 0
    for dr, dg in zip(fmap_r, fmap_g):
        for rl, gl in zip(dr, dg):
            loss += torch.mean(torch.abs(rl - gl))
    return loss * 2


def discriminator_loss(disc_real_outputs, disc_generated_outputs):
    loss = 0
    r_losses, g_losses = [], []
    for dr, dg in zip(disc_real_outputs, disc_generated_outputs):
        r_loss = torch.mean((1 - dr) ** 2)
        g_loss = torch.mean(dg ** 2)
        loss += (r_loss + g_loss)
        r_losses.append(r_loss.item())
        g_losses.append(g_loss.item())
    return loss, r_losses, g_losses


def generator_loss(disc_outputs):
    loss = 0
    gen_losses = []
    for dg in disc_outputs:
        l = torch.mean((1 - dg) ** 2)
        gen_losses.append(l)
        loss += l
    return loss, gen_losses


mel_basis = {}
hann_window = {}


def mel_spectrogram(y, n_fft, num_mels, hop_size, win_size, fmin_bin=1):
    global mel_basis, hann_window
    if str(num_mels) not in mel_basis:
        rng_f = np.random.default_rng(7)
        fb = np.abs(rng_f.standard_normal((num_mels, n_fft // 2 + 1))).astype(np.float32)
        fb[:, :fmin_bin] = 0
        mel_basis[str(num_mels)] = torch.from_numpy(fb).float().to(y.device)
        hann_window[str(y.device)] = torch.hann_window(win_size).to(y.device)
    y = torch.nn.functional.pad(y.unsqueeze(1), (int((n_fft - hop_size) / 2), int((n_fft - hop_size) / 2)), mode="reflect")
    y = y.squeeze(1)
    spec = torch.stft(y, n_fft, hop_length=hop_size, win_length=win_size, window=hann_window[str(y.device)],
                      center=False, pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
    spec = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + (1e-9))
    spec = torch.matmul(mel_basis[str(num_mels)], spec)
    spec = torch.log(torch.clamp(spec, min=1e-5) * 1)
    return spec


h = {"num_mels": 6, "upsample_rates": [4, 2], "upsample_kernel_sizes": [8, 4], "upsample_initial_channel": 16,
     "resblock_kernel_sizes": [3, 5], "resblock_dilation_sizes": [[1, 3], [1, 2]]}
torch.manual_seed(0)
generator = Generator(h)
mpd = MultiDiscriminator()
share_init(generator, "generator")
share_init(mpd, "mpd")
report("params", sum(p.numel() for p in generator.parameters()), sorted(generator.conv_pre.state_dict().keys()))

rng = np.random.default_rng(0)
y = torch.from_numpy(np.sin(np.linspace(0, 40, 2 * 64)).reshape(2, 64).astype(np.float32) * 0.5)
x = mel_spectrogram(y, n_fft=16, num_mels=6, hop_size=8, win_size=16)
report("mel", list(x.shape), x.mean().item(), x.std().item())

optim_g = torch.optim.AdamW(generator.parameters(), 2e-3, betas=(0.8, 0.99))
optim_d = torch.optim.AdamW(mpd.parameters(), 2e-3, betas=(0.8, 0.99))
scheduler_g = torch.optim.lr_scheduler.ExponentialLR(optim_g, gamma=0.999)
scheduler_d = torch.optim.lr_scheduler.ExponentialLR(optim_d, gamma=0.999)
generator.train()
mpd.train()
for step in range(3):
    y_g_hat = generator(x)
    y_g_hat_mel = mel_spectrogram(y_g_hat.squeeze(1), n_fft=16, num_mels=6, hop_size=8, win_size=16)
    yw = y.unsqueeze(1)

    optim_d.zero_grad()
    y_df_hat_r, y_df_hat_g, _, _ = mpd(yw, y_g_hat.detach())
    loss_disc_all, r_losses, g_losses = discriminator_loss(y_df_hat_r, y_df_hat_g)
    loss_disc_all.backward()
    optim_d.step()

    optim_g.zero_grad()
    loss_mel = F.l1_loss(x, y_g_hat_mel) * 45
    y_df_hat_r, y_df_hat_g, fmap_f_r, fmap_f_g = mpd(yw, y_g_hat)
    loss_fm = feature_loss(fmap_f_r, fmap_f_g)
    loss_gen, losses_gen = generator_loss(y_df_hat_g)
    loss_gen_all = loss_gen + loss_fm + loss_mel
    loss_gen_all.backward()
    optim_g.step()
    scheduler_g.step()
    scheduler_d.step()
    report("step", step, loss_disc_all.item(), r_losses, g_losses, loss_mel.item(), loss_fm.item(), loss_gen.item(),
           generator.ups[0].weight_g.grad.norm().item(), scheduler_g.get_last_lr()[0])

generator.eval()
with torch.no_grad():
    before = generator(x)
    generator.remove_weight_norm()
    after = generator(x)
report("remove_weight_norm", list(after.shape), (before - after).abs().max().item() < 1e-5, after.abs().sum().item(),
       sorted(generator.conv_pre.state_dict().keys()), hasattr(generator.conv_pre, "weight_g"))

# the newer API: the norm as a parametrization, folded back with remove_parametrizations
conv = nn.utils.parametrizations.weight_norm(ConvTranspose1d(4, 3, 4, 2, padding=1))
share_init(conv, "pconv")
report("param_keys", sorted(conv.state_dict().keys()), list(conv.parametrizations.weight.original0.shape))
z = torch.from_numpy(rng.standard_normal((2, 4, 5)).astype(np.float32))
out = conv(z)
out.pow(2).sum().backward()
report("pconv", out.sum().item(), conv.parametrizations.weight.original0.grad.flatten().tolist(),
       conv.parametrizations.weight.original1.grad.abs().sum().item())
nn.utils.parametrize.remove_parametrizations(conv, "weight")
report("pconv_removed", sorted(conv.state_dict().keys()), conv(z).sum().item())
