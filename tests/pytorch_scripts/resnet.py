"""A CIFAR ResNet (kuangliu/pytorch-cifar's BasicBlock): the in-place residual out += shortcut(x),
kaiming_normal_(mode="fan_out"), label smoothing, mixup, the ImageNet example's top-k accuracy."""
import sys, numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
class BasicBlock(nn.Module):
    expansion = 1
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(self.expansion * planes))
    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)
class ResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10):
        super().__init__()
        self.in_planes = 8
        self.conv1 = nn.Conv2d(3, 8, kernel_size=3, stride=1, padding=1, bias=False); self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = self._make_layer(block, 8, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 16, num_blocks[1], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1)); self.linear = nn.Linear(16 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d): nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)): nn.init.constant_(m.weight, 1); nn.init.constant_(m.bias, 0)
    def _make_layer(self, block, planes, num_blocks, stride):
        strides = [stride] + [1] * (num_blocks - 1); layers = []
        for stride in strides:
            layers.append(block(self.in_planes, planes, stride)); self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)
    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer2(self.layer1(out))
        out = torch.flatten(self.avgpool(out), 1)
        return self.linear(out)
def accuracy(output, target, topk=(1,)):
    with torch.no_grad():
        maxk = max(topk); batch_size = target.size(0)
        _, pred = output.topk(maxk, 1, True, True); pred = pred.t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))
        res = []
        for k in topk:
            correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
            res.append(correct_k.mul_(100.0 / batch_size))
        return res
class AverageMeter:
    def __init__(self): self.sum = 0; self.count = 0
    def update(self, val, n=1): self.sum += val * n; self.count += n
torch.manual_seed(0)
net = ResNet(BasicBlock, [1, 1])
share_init(net)
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
rng = np.random.default_rng(0)
X = torch.from_numpy(rng.standard_normal((16, 3, 8, 8)).astype(np.float32)); Y = torch.from_numpy(rng.integers(0, 10, 16))
top1 = AverageMeter()
for epoch in range(4):
    net.train()
    lam = 0.7; index = torch.from_numpy(rng.permutation(16))
    mixed = lam * X + (1 - lam) * X[index, :]
    out = net(mixed)
    loss = lam * criterion(out, Y) + (1 - lam) * criterion(out, Y[index])
    opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    acc1, acc5 = accuracy(out, Y, topk=(1, 5)); top1.update(acc1[0].item(), X.size(0))
    report(loss.item(), acc1[0].item(), acc5[0].item(), sched.get_last_lr()[0])
net.eval()
with torch.no_grad():
    report(net(X).argmax(1).tolist(), net.bn1.running_mean.tolist())
