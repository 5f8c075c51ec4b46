"""taming-transformers' VQGAN training step, shrunk: an encoder / decoder with GroupNorm(eps=1e-6)
and swish, conv layers with padding_mode="reflect" / "circular", a codebook quantizer with the
straight-through estimator and commitment loss, the VQLPIPSWithDiscriminator loss (hinge D loss,
the adaptive weight from torch.autograd.grad of the NLL and the GAN loss w.r.t. the decoder's
last layer, clamped and detached, adopt_weight warm-up, a learned logvar), two optimizers
stepped in alternation by optimizer_idx, and an NLayer PatchGAN with weights_init."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

rng = np.random.default_rng(5)
torch.manual_seed(0)  # the initial weights (shared with tinymm), drawn reproducibly


def Normalize(in_channels):
    return torch.nn.GroupNorm(num_groups=4, num_channels=in_channels, eps=1e-6, affine=True)


def nonlinearity(x):
    return x * torch.sigmoid(x)


class ResnetBlock(nn.Module):
    def __init__(self, in_channels, out_channels=None):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.norm1 = Normalize(in_channels)
        self.conv1 = torch.nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, padding_mode="reflect")
        self.norm2 = Normalize(out_channels)
        self.conv2 = torch.nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1, padding_mode="circular")
        self.nin_shortcut = torch.nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x):
        h = self.conv1(nonlinearity(self.norm1(x)))
        h = self.conv2(nonlinearity(self.norm2(h)))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return x + h


class Encoder(nn.Module):
    def __init__(self, ch=8, z_channels=4):
        super().__init__()
        self.conv_in = nn.Conv2d(3, ch, 3, 1, 1)
        self.down = nn.Conv2d(ch, ch, 3, 2, 0)
        self.block = ResnetBlock(ch, 2 * ch)
        self.norm_out = Normalize(2 * ch)
        self.conv_out = nn.Conv2d(2 * ch, z_channels, 3, 1, 1)

    def forward(self, x):
        h = self.conv_in(x)
        h = self.down(F.pad(h, (0, 1, 0, 1), mode="constant", value=0))
        return self.conv_out(nonlinearity(self.norm_out(self.block(h))))


class Decoder(nn.Module):
    def __init__(self, ch=8, z_channels=4):
        super().__init__()
        self.conv_in = nn.Conv2d(z_channels, 2 * ch, 3, 1, 1)
        self.block = ResnetBlock(2 * ch, ch)
        self.up = nn.Conv2d(ch, ch, 3, 1, 1)
        self.norm_out = Normalize(ch)
        self.conv_out = nn.Conv2d(ch, 3, 3, 1, 1)

    def forward(self, z):
        h = self.block(self.conv_in(z))
        h = self.up(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(nonlinearity(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    def __init__(self, n_e, e_dim, beta):
        super().__init__()
        self.n_e, self.e_dim, self.beta = n_e, e_dim, beta
        self.embedding = nn.Embedding(self.n_e, self.e_dim)
        self.embedding.weight.data.uniform_(-1.0 / self.n_e, 1.0 / self.n_e)

    def forward(self, z):
        z = z.permute(0, 2, 3, 1).contiguous()
        z_flattened = z.view(-1, self.e_dim)
        d = torch.sum(z_flattened ** 2, dim=1, keepdim=True) + torch.sum(self.embedding.weight ** 2, dim=1) - \
            2 * torch.matmul(z_flattened, self.embedding.weight.t())
        min_encoding_indices = torch.argmin(d, dim=1).unsqueeze(1)
        min_encodings = torch.zeros(min_encoding_indices.shape[0], self.n_e).to(z)
        min_encodings.scatter_(1, min_encoding_indices, 1)
        z_q = torch.matmul(min_encodings, self.embedding.weight).view(z.shape)
        loss = torch.mean((z_q.detach() - z) ** 2) + self.beta * torch.mean((z_q - z.detach()) ** 2)
        z_q = z + (z_q - z).detach()
        e_mean = torch.mean(min_encodings, dim=0)
        perplexity = torch.exp(-torch.sum(e_mean * torch.log(e_mean + 1e-10)))
        z_q = z_q.permute(0, 3, 1, 2).contiguous()
        return z_q, loss, (perplexity, min_encodings, min_encoding_indices)


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc=3, ndf=8):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 4, 1, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 4, 1, 1))

    def forward(self, input):
        return self.main(input)


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find('Conv') != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find('BatchNorm') != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


def adopt_weight(weight, global_step, threshold=0, value=0.):
    if global_step < threshold:
        weight = value
    return weight


def hinge_d_loss(logits_real, logits_fake):
    return 0.5 * (torch.mean(F.relu(1. - logits_real)) + torch.mean(F.relu(1. + logits_fake)))


class VQLoss(nn.Module):
    def __init__(self, disc_start=1, codebook_weight=1.0, disc_factor=1.0, disc_weight=0.8):
        super().__init__()
        self.codebook_weight = codebook_weight
        self.logvar = nn.Parameter(torch.ones(size=()) * 0.0)
        self.discriminator = NLayerDiscriminator().apply(weights_init)
        self.discriminator_iter_start = disc_start
        self.disc_factor, self.discriminator_weight = disc_factor, disc_weight

    def calculate_adaptive_weight(self, nll_loss, g_loss, last_layer):
        nll_grads = torch.autograd.grad(nll_loss, last_layer, retain_graph=True)[0]
        g_grads = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
        d_weight = torch.norm(nll_grads) / (torch.norm(g_grads) + 1e-4)
        d_weight = torch.clamp(d_weight, 0.0, 1e4).detach()
        return d_weight * self.discriminator_weight

    def forward(self, codebook_loss, inputs, reconstructions, optimizer_idx, global_step, last_layer):
        rec_loss = torch.abs(inputs.contiguous() - reconstructions.contiguous())
        nll_loss = rec_loss / torch.exp(self.logvar) + self.logvar
        nll_loss = torch.mean(nll_loss)
        if optimizer_idx == 0:
            logits_fake = self.discriminator(reconstructions.contiguous())
            g_loss = -torch.mean(logits_fake)
            d_weight = self.calculate_adaptive_weight(nll_loss, g_loss, last_layer=last_layer)
            disc_factor = adopt_weight(self.disc_factor, global_step, threshold=self.discriminator_iter_start)
            loss = nll_loss + d_weight * disc_factor * g_loss + self.codebook_weight * codebook_loss.mean()
            return loss, {"d_weight": d_weight.item(), "nll": nll_loss.item(), "g": g_loss.item()}
        logits_real = self.discriminator(inputs.contiguous().detach())
        logits_fake = self.discriminator(reconstructions.contiguous().detach())
        disc_factor = adopt_weight(self.disc_factor, global_step, threshold=self.discriminator_iter_start)
        d_loss = disc_factor * hinge_d_loss(logits_real, logits_fake)
        return d_loss, {"logits_real": logits_real.detach().mean().item()}


class VQModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = Encoder(), Decoder()
        self.loss = VQLoss()
        self.quantize = VectorQuantizer(16, 4, beta=0.25)
        self.quant_conv = torch.nn.Conv2d(4, 4, 1)
        self.post_quant_conv = torch.nn.Conv2d(4, 4, 1)

    def forward(self, input):
        quant, diff, (_, _, ind) = self.quantize(self.quant_conv(self.encoder(input)))
        return self.decoder(self.post_quant_conv(quant)), diff, ind

    def get_last_layer(self):
        return self.decoder.conv_out.weight


model = VQModel()
share_init(model, "vqgan")
lr = 4.5e-4
opt_ae = torch.optim.Adam(list(model.encoder.parameters()) + list(model.decoder.parameters()) +
                          list(model.quantize.parameters()) + list(model.quant_conv.parameters()) +
                          list(model.post_quant_conv.parameters()), lr=lr, betas=(0.5, 0.9))
opt_disc = torch.optim.Adam(model.loss.discriminator.parameters(), lr=lr, betas=(0.5, 0.9))
for global_step in range(3):
    x = torch.from_numpy(rng.uniform(-1, 1, (2, 3, 8, 8)).astype(np.float32))
    for optimizer_idx, opt in enumerate([opt_ae, opt_disc]):
        xrec, qloss, ind = model(x)
        loss, log = model.loss(qloss, x, xrec, optimizer_idx, global_step, last_layer=model.get_last_layer())
        opt.zero_grad()
        loss.backward()
        opt.step()
        report(global_step, optimizer_idx, loss.item(), sorted(log.items()), ind.view(-1)[:6].tolist())
report("logvar", model.loss.logvar.item(), model.loss.logvar.grad is None, list(xrec.shape))
