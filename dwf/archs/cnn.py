"""Small CNN: conv3x3-BN-ReLU blocks with 2x2 max-pooling between them, global average pool,
linear head. For 1- or 3-channel images (28x28 or 32x32); every layer has a permutable width."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CNN(nn.Module):
    def __init__(self, in_channels: int, channels: tuple[int, ...], n_classes: int):
        super().__init__()
        dims = (in_channels, *channels)
        # no conv bias: the BatchNorm that follows each conv has its own
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1, bias=False)
                                   for a, b in zip(dims[:-1], dims[1:]))
        self.bns = nn.ModuleList(nn.BatchNorm2d(c) for c in channels)
        self.head = nn.Linear(channels[-1], n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, C_in, H, W)
        last = len(self.convs) - 1
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            x = F.relu(bn(conv(x)))           # (B, C_i, H_i, W_i)
            if i < last:
                x = F.max_pool2d(x, 2)        # (B, C_i, H_i / 2, W_i / 2)
        x = x.mean((2, 3))                    # (B, C_last) global average pool
        return self.head(x)                   # (B, n_classes) logits
