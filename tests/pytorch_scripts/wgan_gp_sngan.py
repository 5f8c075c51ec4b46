"""WGAN-GP (gradient penalty through torch.autograd.grad with create_graph=True on interpolates,
n_critic steps, Adam(0, 0.9)) and SNGAN/BigGAN pieces: nn.utils.spectral_norm and
nn.utils.parametrizations.spectral_norm, conditional BatchNorm with class embeddings, hinge loss,
a SAGAN self-attention block with a learned gamma, and a projection discriminator.

torch's initial weights are seeded: several biases here (ahead of BatchNorm, the key conv under
the softmax, LayerNorm's in the critic) have an analytically zero gradient, float32 noise whose
sign Adam's first steps turn into full-size updates, so two libraries drift apart chaotically
for some initialisations (~1e-4 after a few steps); measured over seeds, this one stays well
inside float32 agreement."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import autograd
from torch.nn.utils import spectral_norm
from torch.nn.utils.parametrizations import spectral_norm as sn_param

rng = np.random.default_rng(0)
torch.manual_seed(0)


def compute_gradient_penalty(D, real_samples, fake_samples, alpha):
    interpolates = (alpha * real_samples + ((1 - alpha) * fake_samples)).requires_grad_(True)
    d_interpolates = D(interpolates)
    fake = torch.ones_like(d_interpolates, requires_grad=False)
    gradients = autograd.grad(
        outputs=d_interpolates, inputs=interpolates, grad_outputs=fake,
        create_graph=True, retain_graph=True, only_inputs=True,
    )[0]
    gradients = gradients.view(gradients.size(0), -1)
    return ((gradients.norm(2, dim=1) - 1) ** 2).mean()


class Critic(nn.Module):
    def __init__(self, nc=3, ndf=8):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1), nn.LayerNorm([ndf * 2, 2, 2]), nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(), nn.Linear(ndf * 2 * 4, 1))

    def forward(self, x):
        return self.net(x)


class GenMLP(nn.Module):
    def __init__(self, nz=6, nc=3):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(nz, 32), nn.ReLU(True), nn.Linear(32, nc * 8 * 8), nn.Tanh())

    def forward(self, z):
        return self.fc(z).view(-1, 3, 8, 8)


G, D = GenMLP(), Critic()
share_init(G, "G")
share_init(D, "D")
optG = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.9))
optD = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.0, 0.9))
lambda_gp, n_critic = 10, 2
data = torch.from_numpy(rng.uniform(-1, 1, (24, 3, 8, 8)).astype(np.float32))
for i, real in enumerate(data.split(6)):
    optD.zero_grad()
    z = torch.from_numpy(rng.standard_normal((real.size(0), 6)).astype(np.float32))
    fake = G(z)
    alpha = torch.from_numpy(rng.random((real.size(0), 1, 1, 1)).astype(np.float32))
    gp = compute_gradient_penalty(D, real.data, fake.data, alpha)
    d_loss = -torch.mean(D(real)) + torch.mean(D(fake.detach())) + lambda_gp * gp
    d_loss.backward()
    optD.step()
    report("wgan D", i, d_loss.item(), gp.item())
    if i % n_critic == 0:
        optG.zero_grad()
        g_loss = -torch.mean(D(G(z)))
        g_loss.backward()
        optG.step()
        report("wgan G", i, g_loss.item())


class ConditionalBatchNorm2d(nn.Module):
    def __init__(self, num_features, num_classes):
        super().__init__()
        self.num_features = num_features
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.embed = nn.Embedding(num_classes, num_features * 2)
        self.embed.weight.data[:, :num_features].normal_(1, 0.02)
        self.embed.weight.data[:, num_features:].zero_()

    def forward(self, x, y):
        out = self.bn(x)
        gamma, beta = self.embed(y).chunk(2, 1)
        return gamma.view(-1, self.num_features, 1, 1) * out + beta.view(-1, self.num_features, 1, 1)


class SelfAttention(nn.Module):
    def __init__(self, in_dim):
        super().__init__()
        self.query_conv = spectral_norm(nn.Conv2d(in_dim, in_dim // 8, 1))
        self.key_conv = spectral_norm(nn.Conv2d(in_dim, in_dim // 8, 1))
        self.value_conv = spectral_norm(nn.Conv2d(in_dim, in_dim, 1))
        self.gamma = nn.Parameter(torch.zeros(1))
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):
        B, C, W, H = x.size()
        proj_query = self.query_conv(x).view(B, -1, W * H).permute(0, 2, 1)
        proj_key = self.key_conv(x).view(B, -1, W * H)
        attention = self.softmax(torch.bmm(proj_query, proj_key))
        proj_value = self.value_conv(x).view(B, -1, W * H)
        out = torch.bmm(proj_value, attention.permute(0, 2, 1)).view(B, C, W, H)
        return self.gamma * out + x, attention


class GBlock(nn.Module):
    def __init__(self, cin, cout, n_classes):
        super().__init__()
        self.b1 = ConditionalBatchNorm2d(cin, n_classes)
        self.c1 = spectral_norm(nn.Conv2d(cin, cout, 3, 1, 1))
        self.b2 = ConditionalBatchNorm2d(cout, n_classes)
        self.c2 = spectral_norm(nn.Conv2d(cout, cout, 3, 1, 1))
        self.sc = spectral_norm(nn.Conv2d(cin, cout, 1))

    def forward(self, x, y):
        h = F.interpolate(F.relu(self.b1(x, y)), scale_factor=2)
        h = self.c2(F.relu(self.b2(self.c1(h), y)))
        return h + self.sc(F.interpolate(x, scale_factor=2))


class SNGenerator(nn.Module):
    def __init__(self, nz=8, ch=16, n_classes=4):
        super().__init__()
        self.ch = ch
        self.linear = spectral_norm(nn.Linear(nz, ch * 4 * 4))
        self.block = GBlock(ch, ch, n_classes)
        self.attn = SelfAttention(ch)
        self.bn = nn.BatchNorm2d(ch)
        self.out = spectral_norm(nn.Conv2d(ch, 3, 3, 1, 1))

    def forward(self, z, y):
        h = self.linear(z).view(-1, self.ch, 4, 4)
        h, _ = self.attn(self.block(h, y))
        return torch.tanh(self.out(F.relu(self.bn(h))))


class SNDiscriminator(nn.Module):
    def __init__(self, ch=16, n_classes=4):
        super().__init__()
        self.c1 = sn_param(nn.Conv2d(3, ch, 3, 1, 1))
        self.c2 = sn_param(nn.Conv2d(ch, ch, 4, 2, 1))
        self.attn = SelfAttention(ch)
        self.l_y = sn_param(nn.Embedding(n_classes, ch))
        self.fc = sn_param(nn.Linear(ch, 1))

    def forward(self, x, y):
        h = F.leaky_relu(self.c1(x), 0.1)
        h, _ = self.attn(F.leaky_relu(self.c2(h), 0.1))
        h = torch.sum(h, dim=(2, 3))
        out = self.fc(h)
        return out + torch.sum(self.l_y(y) * h, dim=1, keepdim=True)


netG, netD = SNGenerator(), SNDiscriminator()
share_init(netG, "netG")
share_init(netD, "netD")
with torch.no_grad():
    netG.block.b1.embed.weight.data.copy_(torch.from_numpy(rng.normal(1, 0.02, (4, 32)).astype(np.float32)))
    netG.attn.gamma.fill_(0.1)
    netD.attn.gamma.fill_(0.1)
report("sn keys", sorted(k for k in netG.state_dict() if k.startswith("linear")),
       sorted(k for k in netD.state_dict() if k.startswith("fc")))
optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.0, 0.999))
optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.0, 0.999))
for step in range(3):
    x = torch.from_numpy(rng.uniform(-1, 1, (4, 3, 8, 8)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 4, 4))
    z = torch.from_numpy(rng.standard_normal((4, 8)).astype(np.float32))
    fake = netG(z, y)
    d_loss = F.relu(1.0 - netD(x, y)).mean() + F.relu(1.0 + netD(fake.detach(), y)).mean()
    optD.zero_grad()
    d_loss.backward()
    optD.step()
    g_loss = -netD(fake, y).mean()
    optG.zero_grad()
    g_loss.backward()
    optG.step()
    report("sngan", step, d_loss.item(), g_loss.item(), netD.attn.gamma.item(), netG.attn.gamma.item())

netG.eval()
with torch.no_grad():
    w = netD.fc.weight
    sigma = torch.linalg.matrix_norm(w, ord=2)
    out = netG(torch.zeros(2, 8), torch.tensor([0, 3]))
report("sn eval", sigma.item(), out.mean().item(), out.std().item(),
       netG.linear.weight_u[:3].tolist(), netD.fc.parametrizations.weight.original.shape[1])
