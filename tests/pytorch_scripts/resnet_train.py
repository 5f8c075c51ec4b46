"""A torchvision-style ResNet (BasicBlock with a downsample nn.Sequential, zero-init of the last
BN gamma, conv3x3/conv1x1 helpers) trained by the ImageNet example's loop, shrunk: a
TensorDataset of synthetic images, SGD with momentum + nesterov, OneCycleLR stepped per batch
(and MultiStepLR for a second run), CrossEntropyLoss(label_smoothing=0.1), model.train() /
model.eval(), torch.argmax accuracy, .item() and .tolist() side by side, running BN statistics,
and a checkpoint round trip of model + optimizer + scheduler state through torch.save/torch.load
into an io.BytesIO and a temporary file, resumed into fresh objects."""
import copy
import io
import os
import tempfile
import time
from typing import Callable, List, Optional, Type, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding"""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation, groups=groups,
                     bias=False, dilation=dilation)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution"""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion: int = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 norm_layer: Optional[Callable[..., nn.Module]] = None) -> None:
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class ResNet(nn.Module):
    def __init__(self, block: Type[BasicBlock], layers: List[int], num_classes: int = 4,
                 zero_init_residual: bool = False, width: int = 4) -> None:
        super().__init__()
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = self._norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 2 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock) and m.bn2.weight is not None:
                    nn.init.constant_(m.bn2.weight, 0)  # type: ignore[arg-type]

    def _make_layer(self, block: Type[BasicBlock], planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        norm_layer = self._norm_layer
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                norm_layer(planes * block.expansion),
            )
        layers = []
        layers.append(block(self.inplanes, planes, stride, downsample, norm_layer))
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, norm_layer=norm_layer))
        return nn.Sequential(*layers)

    def _forward_impl(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.fc(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self._forward_impl(x)


class AverageMeter(object):
    """Computes and stores the average and current value"""

    def __init__(self, name, fmt=':f'):
        self.name = name
        self.fmt = fmt
        self.reset()

    def reset(self):
        self.val = 0
        self.avg = 0
        self.sum = 0
        self.count = 0

    def update(self, val, n=1):
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count


def train_one_epoch(model, criterion, optimizer, scheduler, loader, device, set_train=True):
    if set_train:
        model.train()
    losses = AverageMeter('Loss', ':.4e')
    correct = 0
    for images, target in loader:
        images = images.to(device, non_blocking=True)
        target = target.to(device, non_blocking=True)
        output = model(images)
        loss = criterion(output, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.update(loss.item(), images.size(0))
        correct += (torch.argmax(output, dim=1) == target).sum().item()
    return losses.avg, correct / len(loader.dataset)


def evaluate(model, criterion, loader, device):
    model.eval()
    total, correct, loss_sum, preds = 0, 0, 0.0, []
    with torch.no_grad():
        for images, target in loader:
            images, target = images.to(device), target.to(device)
            output = model(images)
            loss_sum += criterion(output, target).item() * images.size(0)
            pred = torch.argmax(output, 1)
            correct += pred.eq(target).sum().item()
            total += target.size(0)
            preds += pred.tolist()
    return loss_sum / total, 100.0 * correct / total, preds


device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
torch.manual_seed(0)
rng = np.random.default_rng(0)
X = torch.tensor(rng.standard_normal((24, 3, 8, 8)), dtype=torch.float32)
Y = torch.tensor(rng.integers(0, 4, 24), dtype=torch.long)
train_loader = DataLoader(TensorDataset(X[:16], Y[:16]), batch_size=8, shuffle=False, drop_last=True)
val_loader = DataLoader(TensorDataset(X[16:], Y[16:]), batch_size=4)

model = ResNet(BasicBlock, [1, 1], zero_init_residual=True).to(device)
share_init(model)
criterion = nn.CrossEntropyLoss(label_smoothing=0.1).to(device)
parameters = [p for p in model.parameters() if p.requires_grad]
optimizer = torch.optim.SGD(parameters, lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True)
epochs = 3
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.2, epochs=epochs,
                                                steps_per_epoch=len(train_loader), pct_start=0.3)
best_acc1 = 0
for epoch in range(epochs):
    start = time.time()
    train_loss, train_acc = train_one_epoch(model, criterion, optimizer, scheduler, train_loader, device)
    val_loss, acc1, preds = evaluate(model, criterion, val_loader, device)
    is_best = acc1 > best_acc1
    best_acc1 = max(acc1, best_acc1)
    report(epoch, train_loss, train_acc, val_loss, acc1, preds, scheduler.get_last_lr()[0], is_best)
    if is_best:
        best_state = copy.deepcopy(model.state_dict())
report("bn", model.bn1.running_mean.tolist(), model.bn1.running_var.tolist(),
       model.bn1.num_batches_tracked.item(), model.layer1[0].bn2.weight.detach().abs().sum().item())

# checkpoint round trip through a BytesIO buffer
buffer = io.BytesIO()
torch.save({'epoch': epochs, 'arch': 'resnet', 'state_dict': model.state_dict(), 'best_acc1': best_acc1,
            'optimizer': optimizer.state_dict(), 'scheduler': scheduler.state_dict()}, buffer)
buffer.seek(0)
checkpoint = torch.load(buffer, map_location=device, weights_only=True)
resumed = ResNet(BasicBlock, [1, 1]).to(device)
missing, unexpected = resumed.load_state_dict(checkpoint['state_dict'], strict=True)
optimizer2 = torch.optim.SGD(resumed.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True)
optimizer2.load_state_dict(checkpoint['optimizer'])
for state in optimizer2.state.values():  # the resume idiom: optimizer state onto the device
    for k, v in state.items():
        if isinstance(v, torch.Tensor):
            state[k] = v.to(device)
scheduler2 = torch.optim.lr_scheduler.OneCycleLR(optimizer2, max_lr=0.2, epochs=epochs + 1,
                                                 steps_per_epoch=len(train_loader))
scheduler2.load_state_dict(checkpoint['scheduler'])
resumed.eval()
with torch.no_grad():
    same = torch.equal(resumed(X[16:]), model.eval()(X[16:]))
report("resumed", checkpoint['epoch'], checkpoint['arch'], checkpoint['best_acc1'], list(missing), list(unexpected),
       same, optimizer2.state_dict()['param_groups'][0]['lr'], scheduler2.last_epoch,
       len(optimizer2.state_dict()['state']), sorted(checkpoint['optimizer']['param_groups'][0].keys())[:4],
       sorted(optimizer2.state[resumed.fc.weight].keys()), optimizer2.state[resumed.fc.weight]['momentum_buffer'].shape[0])

# the best weights through a temporary file, then a MultiStepLR fine-tune of the fc layer only, with every
# nn.modules.batchnorm._BatchNorm kept in eval mode
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, 'model_best.pth.tar')
    torch.save(best_state, path)
    state = torch.load(path, map_location='cpu')
model.load_state_dict(state)
for name, p in model.named_parameters():
    p.requires_grad = name.startswith('fc.')


def set_bn_eval(m):
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        m.eval()


optimizer = torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.05, momentum=0.9)
scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[1, 2], gamma=0.1)
for epoch in range(3):
    model.train()
    model.apply(set_bn_eval)  # frozen backbone: keep the running statistics
    train_loss, train_acc = train_one_epoch(model, criterion, optimizer, scheduler, train_loader, device, set_train=False)
    report("finetune", epoch, train_loss, train_acc, optimizer.param_groups[0]['lr'],
           model.conv1.weight.grad is None, model.bn1.running_mean.tolist() == state['bn1.running_mean'].tolist())
