"""A small U-Net segmentation step as the repos write it: DoubleConv blocks (Conv2d, BatchNorm2d,
ReLU(inplace)), MaxPool2d down, bilinear F.interpolate (align_corners=True) and ConvTranspose2d
up, torch.cat skip connections with F.pad for odd sizes, a hand-written multiclass dice loss over
F.one_hot(...).permute, cross-entropy plus dice, RMSprop with a foreach flag, and IoU per class."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class DoubleConv(nn.Module):
    """(convolution => [BN] => ReLU) * 2"""

    def __init__(self, in_channels, out_channels, mid_channels=None):
        super().__init__()
        if not mid_channels:
            mid_channels = out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True)
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, in_channels, out_channels, bilinear=True):
        super().__init__()
        self.bilinear = bilinear
        if bilinear:
            self.conv = DoubleConv(in_channels, out_channels, in_channels // 2)
        else:
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x1, x2):
        if self.bilinear:
            x1 = F.interpolate(x1, scale_factor=2, mode='bilinear', align_corners=True)
        else:
            x1 = self.up(x1)
        diffY = x2.size()[2] - x1.size()[2]
        diffX = x2.size()[3] - x1.size()[3]
        x1 = F.pad(x1, [diffX // 2, diffX - diffX // 2, diffY // 2, diffY - diffY // 2])
        x = torch.cat([x2, x1], dim=1)
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, n_channels, n_classes):
        super(UNet, self).__init__()
        self.n_classes = n_classes
        self.inc = DoubleConv(n_channels, 8)
        self.down1 = Down(8, 16)
        self.down2 = Down(16, 16)
        self.up1 = Up(32, 16, bilinear=True)
        self.up2 = Up(16, 8, bilinear=False)
        self.outc = nn.Conv2d(8, n_classes, kernel_size=1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x = self.up1(x3, x2)
        x = self.up2(x, x1)
        return self.outc(x)


def dice_coeff(input, target, reduce_batch_first=False, epsilon=1e-6):
    assert input.size() == target.size()
    sum_dim = (-1, -2) if input.dim() == 2 or not reduce_batch_first else (-1, -2, -3)
    inter = 2 * (input * target).sum(dim=sum_dim)
    sets_sum = input.sum(dim=sum_dim) + target.sum(dim=sum_dim)
    sets_sum = torch.where(sets_sum == 0, inter, sets_sum)
    dice = (inter + epsilon) / (sets_sum + epsilon)
    return dice.mean()


def multiclass_dice_coeff(input, target, reduce_batch_first=False, epsilon=1e-6):
    return dice_coeff(input.flatten(0, 1), target.flatten(0, 1), reduce_batch_first, epsilon)


def dice_loss(input, target, multiclass=False):
    fn = multiclass_dice_coeff if multiclass else dice_coeff
    return 1 - fn(input, target, reduce_batch_first=True)


torch.manual_seed(0)
model = UNet(n_channels=3, n_classes=3)
model = model.to(memory_format=torch.channels_last)
share_init(model)
rng = np.random.default_rng(0)
images = torch.from_numpy(rng.standard_normal((4, 3, 11, 11)).astype(np.float32))
yy, xx = np.mgrid[:11, :11]
masks = torch.from_numpy(np.stack([(xx + yy + k) % 3 for k in range(4)])).long()
optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3, weight_decay=1e-8, momentum=0.9, foreach=True)
criterion = nn.CrossEntropyLoss()
for step in range(3):
    model.train()
    images_cl = images.to(dtype=torch.float32, memory_format=torch.channels_last)
    masks_pred = model(images_cl)
    loss = criterion(masks_pred, masks)
    loss += dice_loss(F.softmax(masks_pred, dim=1).float(),
                      F.one_hot(masks, model.n_classes).permute(0, 3, 1, 2).float(),
                      multiclass=True)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    report(step, loss.item(), grad_norm.item())

model.eval()
with torch.no_grad():
    pred = model(images)
    mask_pred = F.one_hot(pred.argmax(dim=1), model.n_classes).permute(0, 3, 1, 2).float()
    score = multiclass_dice_coeff(mask_pred[:, 1:], F.one_hot(masks, 3).permute(0, 3, 1, 2).float()[:, 1:],
                                  reduce_batch_first=False)
    ious = []
    for c in range(3):
        p, t = pred.argmax(1) == c, masks == c
        inter = (p & t).sum().item(); union = (p | t).sum().item()
        ious.append(inter / union if union else float('nan'))
report(list(pred.shape), score.item(), ious, pred[0, :, 5, 5].tolist())
