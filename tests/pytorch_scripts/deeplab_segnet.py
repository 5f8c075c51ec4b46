"""Dense prediction as the segmentation repos write it: torchvision's DeepLabV3 (a dilated
ResNet-style backbone with replace_stride_with_dilation, ASPP with atrous 3x3 branches and an
image-pooling branch upsampled by F.interpolate bilinear align_corners=False, an FCN auxiliary
head), the training loop of the references (cross-entropy with ignore_index=255 on both outputs,
aux weight 0.5, a poly LambdaLR, SGD with nesterov), the ConfusionMatrix of the references
(torch.bincount of n * target + pred with minlength, per-class IoU / accuracy, global
accuracy), SegNet's encoder-decoder with MaxPool2d(return_indices=True) and MaxUnpool2d,
a Lovasz-free soft dice, a DeepLabV3+ decoder (low-level 1x1 projection, align_corners=True
upsampling), nn.Upsample / F.interpolate in bicubic and area modes, and OHEM cross-entropy
(per-pixel losses, topk of the hardest, ignore mask)."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from collections import OrderedDict


class Bottleneck(nn.Module):
    expansion = 2

    def __init__(self, inplanes, planes, stride=1, downsample=None, dilation=1):
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class TinyResNet(nn.Module):
    def __init__(self, replace_stride_with_dilation=(False, True)):
        super().__init__()
        self.inplanes = 8
        self.dilation = 1
        self.conv1 = nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(4, 1)
        self.layer2 = self._make_layer(8, 1, stride=2, dilate=replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(8, 1, stride=2, dilate=replace_stride_with_dilation[1])

    def _make_layer(self, planes, blocks, stride=1, dilate=False):
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * Bottleneck.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * Bottleneck.expansion))
        layers = [Bottleneck(self.inplanes, planes, stride, downsample, previous_dilation)]
        self.inplanes = planes * Bottleneck.expansion
        for _ in range(1, blocks):
            layers.append(Bottleneck(self.inplanes, planes, dilation=self.dilation))
        return nn.Sequential(*layers)

    def forward(self, x):
        out = OrderedDict()
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out["low_level"] = x = self.layer1(x)
        out["aux"] = x = self.layer2(x)
        out["out"] = self.layer3(x)
        return out


class ASPPConv(nn.Sequential):
    def __init__(self, in_channels, out_channels, dilation):
        modules = [
            nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        ]
        super().__init__(*modules)


class ASPPPooling(nn.Sequential):
    def __init__(self, in_channels, out_channels):
        super().__init__(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )

    def forward(self, x):
        size = x.shape[-2:]
        for mod in self:
            x = mod(x)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    def __init__(self, in_channels, atrous_rates, out_channels=16):
        super().__init__()
        modules = [nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels),
                                 nn.ReLU())]
        rates = tuple(atrous_rates)
        for rate in rates:
            modules.append(ASPPConv(in_channels, out_channels, rate))
        modules.append(ASPPPooling(in_channels, out_channels))
        self.convs = nn.ModuleList(modules)
        self.project = nn.Sequential(
            nn.Conv2d(len(self.convs) * out_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Dropout(0.0),
        )

    def forward(self, x):
        _res = []
        for conv in self.convs:
            _res.append(conv(x))
        res = torch.cat(_res, dim=1)
        return self.project(res)


class DeepLabHead(nn.Sequential):
    def __init__(self, in_channels, num_classes, atrous_rates=(2, 4, 6)):
        super().__init__(
            ASPP(in_channels, atrous_rates),
            nn.Conv2d(16, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, num_classes, 1),
        )


class FCNHead(nn.Sequential):
    def __init__(self, in_channels, channels, dropout=0.1):
        inter_channels = in_channels // 4
        layers = [
            nn.Conv2d(in_channels, inter_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(inter_channels),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Conv2d(inter_channels, channels, 1),
        ]
        super().__init__(*layers)


class DeepLabV3(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.backbone = TinyResNet()
        self.classifier = DeepLabHead(16, num_classes)
        self.aux_classifier = FCNHead(16, num_classes, dropout=0.0)  # no random mask: runs compare exactly

    def forward(self, x):
        input_shape = x.shape[-2:]
        features = self.backbone(x)
        result = OrderedDict()
        x = self.classifier(features["out"])
        result["out"] = F.interpolate(x, size=input_shape, mode="bilinear", align_corners=False)
        x = self.aux_classifier(features["aux"])
        result["aux"] = F.interpolate(x, size=input_shape, mode="bilinear", align_corners=False)
        return result


class DeepLabV3PlusDecoder(nn.Module):
    def __init__(self, low_level_channels, num_classes):
        super().__init__()
        self.project = nn.Sequential(nn.Conv2d(low_level_channels, 6, 1, bias=False), nn.BatchNorm2d(6),
                                     nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(nn.Conv2d(6 + num_classes, 8, 3, padding=1, bias=False),
                                        nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.Conv2d(8, num_classes, 1))

    def forward(self, low_level, out):
        low_level_feature = self.project(low_level)
        output_feature = F.interpolate(out, size=low_level_feature.shape[2:], mode='bilinear', align_corners=True)
        return self.classifier(torch.cat([low_level_feature, output_feature], dim=1))


class SegNet(nn.Module):
    def __init__(self, in_ch, num_classes):
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(in_ch, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True))
        self.enc2 = nn.Sequential(nn.Conv2d(8, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(inplace=True))
        self.pool = nn.MaxPool2d(2, stride=2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, stride=2)
        self.dec2 = nn.Sequential(nn.Conv2d(12, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True))
        self.dec1 = nn.Conv2d(8, num_classes, 3, padding=1)

    def forward(self, x):
        x = self.enc1(x)
        size1 = x.size()
        x, idx1 = self.pool(x)
        x = self.enc2(x)
        size2 = x.size()
        x, idx2 = self.pool(x)
        x = self.unpool(x, idx2, output_size=size2)
        x = self.dec2(x)
        x = self.unpool(x, idx1, output_size=size1)
        return self.dec1(x)


class ConfusionMatrix:
    def __init__(self, num_classes):
        self.num_classes = num_classes
        self.mat = None

    def update(self, a, b):
        n = self.num_classes
        if self.mat is None:
            self.mat = torch.zeros((n, n), dtype=torch.int64, device=a.device)
        with torch.inference_mode():
            k = (a >= 0) & (a < n)
            inds = n * a[k].to(torch.int64) + b[k]
            self.mat += torch.bincount(inds, minlength=n ** 2).reshape(n, n)

    def compute(self):
        h = self.mat.float()
        acc_global = torch.diag(h).sum() / h.sum()
        acc = torch.diag(h) / h.sum(1)
        iu = torch.diag(h) / (h.sum(1) + h.sum(0) - torch.diag(h))
        return acc_global, acc, iu


def criterion(inputs, target):
    losses = {}
    for name, x in inputs.items():
        losses[name] = nn.functional.cross_entropy(x, target, ignore_index=255)
    if len(losses) == 1:
        return losses["out"]
    return losses["out"] + 0.5 * losses["aux"]


class OhemCrossEntropy(nn.Module):
    def __init__(self, ignore_label=255, min_kept=40, thresh=0.7):
        super().__init__()
        self.thresh = thresh
        self.min_kept = max(1, min_kept)
        self.ignore_label = ignore_label
        self.criterion = nn.CrossEntropyLoss(ignore_index=ignore_label, reduction='none')

    def forward(self, score, target):
        pred = F.softmax(score, dim=1)
        pixel_losses = self.criterion(score, target).contiguous().view(-1)
        mask = target.contiguous().view(-1) != self.ignore_label
        tmp_target = target.clone()
        tmp_target[tmp_target == self.ignore_label] = 0
        pred = pred.gather(1, tmp_target.unsqueeze(1))
        pred, ind = pred.contiguous().view(-1,)[mask].contiguous().sort()
        min_value = pred[min(self.min_kept, pred.numel() - 1)]
        threshold = max(min_value, self.thresh)
        pixel_losses = pixel_losses[mask][ind]
        pixel_losses = pixel_losses[pred < threshold]
        return pixel_losses.mean()


rng = np.random.default_rng(7)
H, W = 27, 29
images = torch.from_numpy(rng.standard_normal((2, 3, H, W)).astype(np.float32))
yy, xx = np.mgrid[:H, :W]
target_np = np.stack([((xx // 7 + yy // 9 + k) % 4) for k in range(2)]).astype(np.int64)
target_np[0, :3, :] = 255  # an ignored border, as VOC's boundaries
target_np[1, :, -2:] = 255
target = torch.from_numpy(target_np)

torch.manual_seed(0)
model = DeepLabV3(num_classes=4)
share_init(model, "deeplab")
params_to_optimize = [
    {"params": [p for p in model.backbone.parameters() if p.requires_grad]},
    {"params": [p for p in model.classifier.parameters() if p.requires_grad]},
    {"params": [p for p in model.aux_classifier.parameters() if p.requires_grad], "lr": 0.02 * 10},
]
optimizer = torch.optim.SGD(params_to_optimize, lr=0.02, momentum=0.9, weight_decay=1e-4, nesterov=True)
iters_per_epoch, epochs = 2, 2
lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
    optimizer, lambda x: (1 - x / (iters_per_epoch * epochs)) ** 0.9)
for epoch in range(epochs):
    model.train()
    for it in range(iters_per_epoch):
        output = model(images)
        loss = criterion(output, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        lr_scheduler.step()
        report(epoch, it, loss.item(), [g["lr"] for g in optimizer.param_groups])

model.eval()
confmat = ConfusionMatrix(4)
with torch.inference_mode():
    output = model(images)["out"]
    confmat.update(target.flatten(), output.argmax(1).flatten())
acc_global, acc, iu = confmat.compute()
report(confmat.mat.flatten().tolist(), acc_global.item() * 100, (acc * 100).tolist(), (iu * 100).tolist(),
       iu.nanmean().item() if hasattr(iu, "nanmean") else iu.mean().item())

# DeepLabV3+ decoder on the backbone's low-level features, OHEM loss, align_corners=True
torch.manual_seed(1)
decoder = DeepLabV3PlusDecoder(8, 4)
share_init(decoder, "decoder")
ohem = OhemCrossEntropy(min_kept=50, thresh=0.6)
opt = torch.optim.Adam(decoder.parameters(), lr=1e-2)
model.eval()
with torch.no_grad():
    feats = model.backbone(images)
    coarse = model.classifier(feats["out"])
for step in range(3):
    logits = decoder(feats["low_level"], coarse)
    logits = F.interpolate(logits, size=(H, W), mode="bilinear", align_corners=True)
    loss = ohem(logits, target)
    opt.zero_grad()
    loss.backward()
    opt.step()
    report("v3+", step, loss.item(), decoder.classifier[3].bias.grad.tolist())

# SegNet with unpooling by indices, soft dice on top of CE
torch.manual_seed(2)
segnet = SegNet(3, 4)
share_init(segnet, "segnet")
opt = torch.optim.Adam(segnet.parameters(), lr=3e-3)
valid = (target != 255)
for step in range(3):
    logits = segnet(images[:, :, :24, :28])
    t = target[:, :24, :28]
    ce = F.cross_entropy(logits, t, ignore_index=255)
    probs = logits.softmax(1)
    onehot = F.one_hot(t.clamp(max=3), 4).permute(0, 3, 1, 2).float() * valid[:, None, :24, :28]
    inter = (probs * onehot).sum((0, 2, 3))
    dice = 1 - ((2 * inter + 1) / (probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3)) + 1)).mean()
    loss = ce + dice
    opt.zero_grad()
    loss.backward()
    opt.step()
    report("segnet", step, ce.item(), dice.item())

with torch.no_grad():
    x = segnet.enc1(images[:1, :, :9, :11])
    pooled, idx = F.max_pool2d(x, 2, 2, return_indices=True)
    unpooled = F.max_unpool2d(pooled, idx, 2, 2, output_size=x.shape[-2:])
    up_bicubic = F.interpolate(coarse, scale_factor=1.5, mode="bicubic", align_corners=False)
    up_area = F.interpolate(logits, size=(7, 9), mode="area")
    up_mod = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)(coarse)
report(idx[0, 0].flatten().tolist(), unpooled.abs().sum().item(), list(unpooled.shape),
       up_bicubic.sum().item(), up_bicubic[0, 1, :2].flatten().tolist(),
       up_area[0, 0, 0].tolist(), up_mod.mean().item(), list(up_mod.shape))
