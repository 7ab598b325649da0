"""CIFAR-style ResNets: ResNet-20 (3 stages x 3 basic blocks, 16/32/64 channels) and ResNet-18
with the CIFAR stem (3x3 conv, stride 1, no max-pool; 4 stages x 2 blocks, 64..512 channels).

Where a block changes the shape (stride 2 or more channels), its shortcut is a 1x1 conv + BN
("option B"), so every tensor is a parameter and every block can be permuted.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, c_in, H, W)
        out = F.relu(self.bn1(self.conv1(x)))     # (B, c_out, H / stride, W / stride)
        out = self.bn2(self.conv2(out))           # (B, c_out, H / stride, W / stride)
        return F.relu(out + self.shortcut(x))     # residual stream, same shape


class ResNet(nn.Module):
    """Stem conv3x3-BN-ReLU, then stages of basic blocks (the first block of every stage but
    the first halves the resolution), global average pool, linear head."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], blocks: tuple[int, ...],
                 n_classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        c_in = widths[0]
        for s, (c, n) in enumerate(zip(widths, blocks)):
            stage = [BasicBlock(c_in if i == 0 else c, c, 2 if (i == 0 and s > 0) else 1)
                     for i in range(n)]
            self.add_module(f"layer{s + 1}", nn.Sequential(*stage))
            c_in = c
        self.n_stages = len(widths)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, C_in, H, W)
        x = F.relu(self.bn1(self.conv1(x)))       # (B, w0, H, W)
        for s in range(self.n_stages):
            x = getattr(self, f"layer{s + 1}")(x)  # (B, w_s, H / 2^s, W / 2^s)
        x = self.pool(x).flatten(1)               # (B, w_last)
        return self.fc(x)                         # (B, n_classes) logits


def _scaled(widths: tuple[int, ...], width: float) -> tuple[int, ...]:
    return tuple(max(1, round(c * width)) for c in widths)


def resnet20(in_channels: int = 3, n_classes: int = 10, width: float = 1.0) -> ResNet:
    """ResNet-20 (He et al. 2016, CIFAR); 272,474 parameters at width 1, 3 channels, 10 classes."""
    return ResNet(in_channels, _scaled((16, 32, 64), width), (3, 3, 3), n_classes)


def resnet18(in_channels: int = 3, n_classes: int = 10, width: float = 1.0) -> ResNet:
    """ResNet-18 with the CIFAR stem; 11,173,962 parameters at width 1, 3 channels, 10 classes."""
    return ResNet(in_channels, _scaled((64, 128, 256, 512), width), (2, 2, 2, 2), n_classes)
