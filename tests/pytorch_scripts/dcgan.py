"""The PyTorch DCGAN example, shrunk: ConvTranspose2d generator and strided Conv2d
discriminator with BatchNorm2d and LeakyReLU, the weights_init hook through apply(), two Adam
optimizers, BCEWithLogitsLoss with real/fake label tensors, .detach() for the D step,
zero_grad(set_to_none=True), and D(x)/D(G(z)) statistics as the example prints them."""
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

nz, ngf, ndf, nc = 8, 8, 8, 3


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find('Conv') != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find('BatchNorm') != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


class Generator(nn.Module):
    def __init__(self):
        super(Generator, self).__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False),   # 4x4
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),  # 8x8
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, nc, 4, 2, 1, bias=False),  # 16x16
            nn.Tanh()
        )

    def forward(self, input):
        return self.main(input)


class Discriminator(nn.Module):
    def __init__(self):
        super(Discriminator, self).__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),  # 8x8
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),  # 4x4
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, 1, 4, 1, 0, bias=False),
        )

    def forward(self, input):
        return self.main(input).view(-1, 1).squeeze(1)


torch.manual_seed(999)
device = torch.device("cpu")
netG = Generator().to(device)
netG.apply(weights_init)
share_init(netG, "netG")
netD = Discriminator().to(device)
netD.apply(weights_init)
share_init(netD, "netD")

criterion = nn.BCEWithLogitsLoss()
rng = np.random.default_rng(0)
fixed_noise = torch.from_numpy(rng.standard_normal((4, nz, 1, 1)).astype(np.float32))
real_label, fake_label = 1., 0.
optimizerD = optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
optimizerG = optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
dataset = torch.from_numpy(rng.uniform(-1, 1, (16, nc, 16, 16)).astype(np.float32))

for epoch in range(2):
    for i, real_cpu in enumerate(dataset.split(8)):
        # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad(set_to_none=True)
        b_size = real_cpu.size(0)
        label = torch.full((b_size,), real_label, dtype=torch.float, device=device)
        output = netD(real_cpu)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = torch.sigmoid(output).mean().item()
        noise = torch.from_numpy(rng.standard_normal((b_size, nz, 1, 1)).astype(np.float32)).to(device)
        fake = netG(noise)
        label.fill_(fake_label)
        output = netD(fake.detach())
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.sigmoid().mean().item()
        errD = errD_real + errD_fake
        optimizerD.step()
        # (2) Update G: maximize log(D(G(z)))
        netG.zero_grad(set_to_none=True)
        label.fill_(real_label)
        output = netD(fake)
        errG = criterion(output, label)
        errG.backward()
        D_G_z2 = output.sigmoid().mean().item()
        optimizerG.step()
        report(epoch, i, errD.item(), errG.item(), D_x, D_G_z1, D_G_z2)

netG.eval()
with torch.no_grad():
    fake = netG(fixed_noise).detach().cpu()
report(list(fake.shape), fake.mean().item(), fake.std().item(), fake[0, 0, 0, :4].tolist())
report(netG.main[1].running_mean[:3].tolist(), netG.main[1].running_var[:3].tolist(),
       netG.main[1].num_batches_tracked.item())
netG.zero_grad(set_to_none=True)
report([p.grad is None for p in netG.parameters()], [p.grad is None for p in netD.parameters()])
