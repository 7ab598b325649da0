"""CIFAR-style ResNets: ResNet-20 (3 stages x 3 basic blocks, 16/32/64 channels) and ResNet-18
with the CIFAR stem (3x3 conv, stride 1, no max-pool; 4 stages x 2 blocks, 64..512 channels).

Where a block changes the shape (stride 2 or more channels), its shortcut is a 1x1 conv + BN
("option B"), so every tensor is a parameter and every block can be permuted.
"""
from __future__ import annotations

from typing import Mapping

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

    grouped_convs = True   # forward_stacked runs n models as grouped convs (dwf.stacked.stacked_pays)

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

    def forward_stacked(self, params: Mapping[str, torch.Tensor], x: torch.Tensor,
                        shared_input: bool) -> torch.Tensor:
        """n ResNets at once, as one ResNet whose every tensor has n·c channels and whose convs
        are grouped (groups = n: model i's channels see only model i's), in channels-last layout.

        params: {name: (n, *shape)} (BatchNorm statistics too; a statistic left out is this
        module's own, for every model); x: (B, C_in, H, W) shared or (n, B, C_in, H, W) per
        model -> (n, B, n_classes). BatchNorm, ReLU and the residual sums act per channel, so
        they need no grouping; in training mode each model's BatchNorm normalizes by its own
        batch's statistics and updates its own slice of the stacked running statistics, as
        `nn.BatchNorm2d` does. Channels-last is what makes the narrow grouped convs fast on
        the CPU: on one core a 4-channel stage's grouped conv trains 2.6x faster in it than in
        the contiguous layout (the whole step: `make bench`, bench_convzoo).
        """
        n = params["conv1.weight"].shape[0]
        B = x.shape[0] if shared_input else x.shape[1]
        h = x.repeat(1, n, 1, 1) if shared_input else x.transpose(0, 1).flatten(1, 2)   # (B, n·C_in, H, W)
        h = h.contiguous(memory_format=torch.channels_last)

        def conv(name: str, m: nn.Conv2d, h: torch.Tensor) -> torch.Tensor:
            w = params[f"{name}.weight"].flatten(0, 1)                 # (n·c_out, c_in, k, k)
            return F.conv2d(h, w, None, m.stride, m.padding, m.dilation, n)

        def bn(name: str, m: nn.BatchNorm2d, h: torch.Tensor) -> torch.Tensor:
            stats = []
            for k in ("running_mean", "running_var"):
                v = params.get(f"{name}.{k}")
                # a training step writes each model's statistics back into its (n, c) slice
                stats.append(getattr(m, k).repeat(n) if v is None else v.view(-1) if m.training else v.reshape(-1))
            counter = params.get(f"{name}.num_batches_tracked", m.num_batches_tracked)
            momentum = m.momentum
            if m.training:
                counter.add_(1)
                if momentum is None:                  # cumulative average, as nn.BatchNorm2d
                    momentum = 1.0 / float(counter.reshape(-1)[0])
            return F.batch_norm(h, *stats, params[f"{name}.weight"].reshape(-1),
                                params[f"{name}.bias"].reshape(-1), m.training, momentum, m.eps)

        h = F.relu(bn("bn1", self.bn1, conv("conv1", self.conv1, h)))                 # (B, n·w0, H, W)
        for s in range(self.n_stages):
            for i, block in enumerate(getattr(self, f"layer{s + 1}")):
                p = f"layer{s + 1}.{i}"
                out = F.relu(bn(f"{p}.bn1", block.bn1, conv(f"{p}.conv1", block.conv1, h)))
                out = bn(f"{p}.bn2", block.bn2, conv(f"{p}.conv2", block.conv2, out))
                if isinstance(block.shortcut, nn.Identity):
                    short = h
                else:
                    short = bn(f"{p}.shortcut.1", block.shortcut[1], conv(f"{p}.shortcut.0", block.shortcut[0], h))
                h = F.relu(out + short)                                               # (B, n·w_s, H_s, W_s)
        h = h.mean((2, 3)).view(B, n, -1).transpose(0, 1)                             # (n, B, w_last)
        return torch.baddbmm(params["fc.bias"][:, None], h, params["fc.weight"].transpose(1, 2))


def _scaled(widths: tuple[int, ...], width: float) -> tuple[int, ...]:
    return tuple(max(1, round(c * width)) for c in widths)


def resnet20(in_channels: int = 3, n_classes: int = 10, width: float = 1.0) -> ResNet:
    """ResNet-20 (He et al. 2016, CIFAR); 272,474 parameters at width 1, 3 channels, 10 classes."""
    return ResNet(in_channels, _scaled((16, 32, 64), width), (3, 3, 3), n_classes)


def resnet18(in_channels: int = 3, n_classes: int = 10, width: float = 1.0) -> ResNet:
    """ResNet-18 with the CIFAR stem; 11,173,962 parameters at width 1, 3 channels, 10 classes."""
    return ResNet(in_channels, _scaled((64, 128, 256, 512), width), (2, 2, 2, 2), n_classes)
