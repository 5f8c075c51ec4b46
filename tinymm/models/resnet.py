"""A small ResNet: basic blocks with batch norm, stride-2 stages, global average pool (He et al. 2015).

    image (B, C_in, S, S) → stem conv-BN-ReLU (B, c, S, S)
      → stage 1: ``blocks`` basic blocks at width c            (B, c, S, S)
      → stage k: the first block halves the side, doubles c    (B, c·2^(k-1), S/2^(k-1), S/2^(k-1))
      → global average pool (B, D) → linear (B, num_classes)    (D = c·2^(stages-1))

A basic block is ``relu(x' + bn(conv(relu(bn(conv(x))))))`` where ``x'`` is ``x``, or a 1×1
stride-2 conv + BN of it when the block changes the side or width (the projection shortcut).
The residual path lets gradients skip the convolutions, which is why deep stacks still train.
``num_classes=0`` makes it an encoder: ``forward`` returns the pooled (B, D) features.
"""
from __future__ import annotations

from dataclasses import dataclass

import tinymm.nn.functional as F
from tinymm import nn
from tinymm.models._inputs import expect_shape, from_batch
from tinymm.models.pretrained import PretrainedMixin, register


@dataclass
class ResNetConfig:
    num_classes: int = 0  # 0: no classifier, forward returns the pooled features
    image_size: int = 32  # recorded for the task; the global pool takes any side >= 2^(stages-1)
    in_channels: int = 3
    channels: int = 16  # width of the first stage; each later stage doubles it
    stages: int = 3
    blocks: int = 1  # basic blocks per stage


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))  # (B, c_out, h/s, w/s)
        y = self.bn2(self.conv2(y))  # (B, c_out, h/s, w/s)
        skip = x if self.shortcut is None else self.shortcut(x)  # (B, c_out, h/s, w/s)
        return F.relu(y + skip)


@register
class ResNet(nn.Module, PretrainedMixin):
    """Image (B, C, S, S) — or a task batch with key ``"image"`` — → logits (B, num_classes),
    or pooled features (B, :attr:`out_dim`) when ``num_classes=0``."""

    def __init__(self, num_classes: int = 0, image_size: int = 32, in_channels: int = 3, channels: int = 16,
                 stages: int = 3, blocks: int = 1):
        super().__init__()
        if min(channels, stages, blocks, in_channels) < 1 or num_classes < 0:
            raise ValueError(f"ResNet: sizes must be positive (num_classes >= 0), got channels={channels}, "
                             f"stages={stages}, blocks={blocks}, in_channels={in_channels}, num_classes={num_classes}")
        if image_size < 2 ** (stages - 1):
            raise ValueError(f"ResNet: image_size {image_size} is too small for {stages} stages "
                             f"(each after the first halves the side)")
        self.config = ResNetConfig(num_classes, image_size, in_channels, channels, stages, blocks)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels), nn.ReLU())
        layers, c = [], channels
        for stage in range(stages):
            c_out = channels * 2 ** stage
            for b in range(blocks):
                layers.append(BasicBlock(c, c_out, stride=2 if (stage > 0 and b == 0) else 1))
                c = c_out
        self.layers = nn.Sequential(*layers)
        self.out_dim = c
        self.fc = nn.Linear(c, num_classes) if num_classes else None

    def features(self, x):
        """(B, C, S, S) → the last stage's feature map (B, D, S', S')."""
        expect_shape("ResNet", "image", x, ("B", self.config.in_channels, "H", "W"))
        return self.layers(self.stem(x))  # (B, D, S/2^(stages-1), S/2^(stages-1))

    def forward(self, batch):
        x = from_batch("ResNet", batch, "image")
        pooled = self.features(x).mean(dim=(2, 3))  # (B, D)
        return pooled if self.fc is None else self.fc(pooled)  # (B, num_classes)
