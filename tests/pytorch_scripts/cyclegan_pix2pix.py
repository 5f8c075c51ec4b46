"""CycleGAN and pix2pix as junyanz/pytorch-CycleGAN-and-pix2pix writes them: a ResNet generator
(ReflectionPad2d, InstanceNorm2d, ConvTranspose2d with output_padding), a PatchGAN discriminator,
init_weights through apply() with functools.partial norm layers, GANLoss (LSGAN MSELoss and
vanilla BCEWithLogitsLoss) with registered label buffers expanded to the prediction, an ImagePool
of past fakes, set_requires_grad toggling of the discriminators, itertools.chain over two
generators in one Adam, cycle and identity L1 losses, pix2pix's U-Net skip generator with
Dropout, and lr_scheduler.LambdaLR's linear decay."""
import functools
import itertools
import random

import numpy as np
import torch
import torch.nn as nn
from torch.nn import init
from torch.optim import lr_scheduler

rng = np.random.default_rng(2)


def init_weights(net, init_type="normal", init_gain=0.02):
    def init_func(m):
        classname = m.__class__.__name__
        if hasattr(m, "weight") and (classname.find("Conv") != -1 or classname.find("Linear") != -1):
            if init_type == "normal":
                init.normal_(m.weight.data, 0.0, init_gain)
            elif init_type == "xavier":
                init.xavier_normal_(m.weight.data, gain=init_gain)
            elif init_type == "kaiming":
                init.kaiming_normal_(m.weight.data, a=0, mode="fan_in")
            if hasattr(m, "bias") and m.bias is not None:
                init.constant_(m.bias.data, 0.0)
        elif classname.find("BatchNorm2d") != -1:
            init.normal_(m.weight.data, 1.0, init_gain)
            init.constant_(m.bias.data, 0.0)
    net.apply(init_func)


class ResnetBlock(nn.Module):
    def __init__(self, dim, padding_type, norm_layer, use_dropout, use_bias):
        super(ResnetBlock, self).__init__()
        conv_block = [nn.ReflectionPad2d(1) if padding_type == "reflect" else nn.ReplicationPad2d(1),
                      nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias), norm_layer(dim), nn.ReLU(True)]
        if use_dropout:
            conv_block += [nn.Dropout(0.5)]
        conv_block += [nn.ReflectionPad2d(1) if padding_type == "reflect" else nn.ReplicationPad2d(1),
                       nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias), norm_layer(dim)]
        self.conv_block = nn.Sequential(*conv_block)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, ngf=8, norm_layer=nn.BatchNorm2d, n_blocks=2, padding_type="reflect"):
        super(ResnetGenerator, self).__init__()
        if type(norm_layer) == functools.partial:
            use_bias = norm_layer.func == nn.InstanceNorm2d
        else:
            use_bias = norm_layer == nn.InstanceNorm2d
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
                 norm_layer(ngf), nn.ReLU(True)]
        n_downsampling = 2
        for i in range(n_downsampling):
            mult = 2 ** i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                      norm_layer(ngf * mult * 2), nn.ReLU(True)]
        mult = 2 ** n_downsampling
        for i in range(n_blocks):
            model += [ResnetBlock(ngf * mult, padding_type=padding_type if i == 0 else "replicate",
                                  norm_layer=norm_layer, use_dropout=False, use_bias=use_bias)]
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            model += [nn.ConvTranspose2d(ngf * mult, int(ngf * mult / 2), kernel_size=3, stride=2, padding=1,
                                         output_padding=1, bias=use_bias),
                      norm_layer(int(ngf * mult / 2)), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, input):
        return self.model(input)


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc, ndf=8, n_layers=2, norm_layer=nn.BatchNorm2d):
        super(NLayerDiscriminator, self).__init__()
        if type(norm_layer) == functools.partial:
            use_bias = norm_layer.func == nn.InstanceNorm2d
        else:
            use_bias = norm_layer == nn.InstanceNorm2d
        kw, padw = 4, 1
        sequence = [nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw), nn.LeakyReLU(0.2, True)]
        nf_mult = 1
        for n in range(1, n_layers):
            nf_mult_prev, nf_mult = nf_mult, min(2 ** n, 8)
            sequence += [nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=2, padding=padw, bias=use_bias),
                         norm_layer(ndf * nf_mult), nn.LeakyReLU(0.2, True)]
        nf_mult_prev, nf_mult = nf_mult, min(2 ** n_layers, 8)
        sequence += [nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=1, padding=padw, bias=use_bias),
                     norm_layer(ndf * nf_mult), nn.LeakyReLU(0.2, True)]
        sequence += [nn.Conv2d(ndf * nf_mult, 1, kernel_size=kw, stride=1, padding=padw)]
        self.model = nn.Sequential(*sequence)

    def forward(self, input):
        return self.model(input)


class UnetSkipConnectionBlock(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=nn.BatchNorm2d, use_dropout=False):
        super(UnetSkipConnectionBlock, self).__init__()
        self.outermost = outermost
        use_bias = norm_layer == nn.InstanceNorm2d
        if input_nc is None:
            input_nc = outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = norm_layer(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = norm_layer(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv] + [submodule] + [uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv] + [uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, downnorm] + [submodule] + [uprelu, upconv, upnorm]
            if use_dropout:
                model = model + [nn.Dropout(0.5)]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class GANLoss(nn.Module):
    def __init__(self, gan_mode, target_real_label=1.0, target_fake_label=0.0):
        super(GANLoss, self).__init__()
        self.register_buffer("real_label", torch.tensor(target_real_label))
        self.register_buffer("fake_label", torch.tensor(target_fake_label))
        self.gan_mode = gan_mode
        if gan_mode == "lsgan":
            self.loss = nn.MSELoss()
        elif gan_mode == "vanilla":
            self.loss = nn.BCEWithLogitsLoss()

    def get_target_tensor(self, prediction, target_is_real):
        target_tensor = self.real_label if target_is_real else self.fake_label
        return target_tensor.expand_as(prediction)

    def __call__(self, prediction, target_is_real):
        return self.loss(prediction, self.get_target_tensor(prediction, target_is_real))


class ImagePool():
    """Keeps 50% of the time a past fake; the coin flips come from Python's random, seeded alike."""
    def __init__(self, pool_size):
        self.pool_size = pool_size
        self.num_imgs = 0
        self.images = []

    def query(self, images):
        return_images = []
        for image in images:
            image = torch.unsqueeze(image.data, 0)
            if self.num_imgs < self.pool_size:
                self.num_imgs = self.num_imgs + 1
                self.images.append(image)
                return_images.append(image)
            else:
                p = random.uniform(0, 1)
                if p > 0.5:
                    random_id = random.randint(0, self.pool_size - 1)
                    tmp = self.images[random_id].clone()
                    self.images[random_id] = image
                    return_images.append(tmp)
                else:
                    return_images.append(image)
        return torch.cat(return_images, 0)


def set_requires_grad(nets, requires_grad=False):
    if not isinstance(nets, list):
        nets = [nets]
    for net in nets:
        if net is not None:
            for param in net.parameters():
                param.requires_grad = requires_grad


def get_scheduler(optimizer, n_epochs=2, n_epochs_decay=3, epoch_count=1):
    def lambda_rule(epoch):
        return 1.0 - max(0, epoch + epoch_count - n_epochs) / float(n_epochs_decay + 1)
    return lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda_rule)


# ---- CycleGAN ----
# (one image pair per epoch: the conv biases ahead of the InstanceNorms have an analytically
# zero gradient, pure float32 noise that Adam's first steps turn into full-size updates of
# random sign, so torch's run and any other drift apart chaotically after a few steps)
torch.manual_seed(0)
random.seed(0)
norm_layer = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
netG_A, netG_B = ResnetGenerator(3, 3, norm_layer=norm_layer), ResnetGenerator(3, 3, norm_layer=norm_layer)
netD_A, netD_B = NLayerDiscriminator(3, norm_layer=norm_layer), NLayerDiscriminator(3, norm_layer=norm_layer)
for name, net in [("GA", netG_A), ("GB", netG_B), ("DA", netD_A), ("DB", netD_B)]:
    init_weights(net)
    share_init(net, name)
criterionGAN, criterionCycle, criterionIdt = GANLoss("lsgan"), torch.nn.L1Loss(), torch.nn.L1Loss()
optimizer_G = torch.optim.Adam(itertools.chain(netG_A.parameters(), netG_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
optimizer_D = torch.optim.Adam(itertools.chain(netD_A.parameters(), netD_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
schedulers = [get_scheduler(o) for o in (optimizer_G, optimizer_D)]
fake_A_pool, fake_B_pool = ImagePool(3), ImagePool(3)
lambda_A = lambda_B = 10.0
lambda_idt = 0.5


def backward_D_basic(netD, real, fake):
    loss_D_real = criterionGAN(netD(real), True)
    loss_D_fake = criterionGAN(netD(fake.detach()), False)
    loss_D = (loss_D_real + loss_D_fake) * 0.5
    loss_D.backward()
    return loss_D


for epoch in range(1, 5):
    for it in range(1):
        real_A = torch.from_numpy(rng.uniform(-1, 1, (2, 3, 16, 16)).astype(np.float32))
        real_B = torch.from_numpy(rng.uniform(-1, 1, (2, 3, 16, 16)).astype(np.float32))
        fake_B = netG_A(real_A)
        rec_A = netG_B(fake_B)
        fake_A = netG_B(real_B)
        rec_B = netG_A(fake_A)
        set_requires_grad([netD_A, netD_B], False)
        optimizer_G.zero_grad()
        idt_A = netG_A(real_B)
        loss_idt_A = criterionIdt(idt_A, real_B) * lambda_B * lambda_idt
        idt_B = netG_B(real_A)
        loss_idt_B = criterionIdt(idt_B, real_A) * lambda_A * lambda_idt
        loss_G_A = criterionGAN(netD_A(fake_B), True)
        loss_G_B = criterionGAN(netD_B(fake_A), True)
        loss_cycle_A = criterionCycle(rec_A, real_A) * lambda_A
        loss_cycle_B = criterionCycle(rec_B, real_B) * lambda_B
        loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
        loss_G.backward()
        optimizer_G.step()
        set_requires_grad([netD_A, netD_B], True)
        optimizer_D.zero_grad()
        loss_D_A = backward_D_basic(netD_A, real_B, fake_B_pool.query(fake_B))
        loss_D_B = backward_D_basic(netD_B, real_A, fake_A_pool.query(fake_A))
        optimizer_D.step()
        report("cycle", epoch, it, loss_G.item(), loss_cycle_A.item(), loss_idt_B.item(), loss_D_A.item(), loss_D_B.item())
    for scheduler in schedulers:
        scheduler.step()
    report("lr", epoch, optimizer_G.param_groups[0]["lr"], schedulers[1].get_last_lr())

# ---- pix2pix ----
unet = UnetSkipConnectionBlock(8 * 4, 8 * 4, norm_layer=nn.BatchNorm2d, innermost=True)
unet = UnetSkipConnectionBlock(8 * 2, 8 * 4, submodule=unet, norm_layer=nn.BatchNorm2d, use_dropout=False)
unet = UnetSkipConnectionBlock(8, 8 * 2, submodule=unet, norm_layer=nn.BatchNorm2d)
netG = UnetSkipConnectionBlock(3, 8, input_nc=3, submodule=unet, outermost=True, norm_layer=nn.BatchNorm2d)
netD = NLayerDiscriminator(6, n_layers=2, norm_layer=nn.BatchNorm2d)
init_weights(netG, "xavier")
init_weights(netD, "kaiming")
share_init(netG, "p2pG")
share_init(netD, "p2pD")
criterionGAN, criterionL1 = GANLoss("vanilla"), torch.nn.L1Loss()
optimizer_G = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
optimizer_D = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
for it in range(3):
    real_A = torch.from_numpy(rng.uniform(-1, 1, (2, 3, 16, 16)).astype(np.float32))
    real_B = torch.from_numpy(rng.uniform(-1, 1, (2, 3, 16, 16)).astype(np.float32))
    fake_B = netG(real_A)
    set_requires_grad(netD, True)
    optimizer_D.zero_grad()
    pred_fake = netD(torch.cat((real_A, fake_B), 1).detach())
    loss_D = (criterionGAN(pred_fake, False) + criterionGAN(netD(torch.cat((real_A, real_B), 1)), True)) * 0.5
    loss_D.backward()
    optimizer_D.step()
    set_requires_grad(netD, False)
    optimizer_G.zero_grad()
    loss_G_GAN = criterionGAN(netD(torch.cat((real_A, fake_B), 1)), True)
    loss_G_L1 = criterionL1(fake_B, real_B) * 100.0
    (loss_G_GAN + loss_G_L1).backward()
    optimizer_G.step()
    report("pix2pix", it, loss_D.item(), loss_G_GAN.item(), loss_G_L1.item(), list(pred_fake.shape))
report("grads off", all(p.grad is None or not p.requires_grad for p in netD.parameters()),
       [p.requires_grad for p in netD.parameters()][:2])
