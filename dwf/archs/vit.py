"""Vision Transformer: patch embedding, class token, learned position embedding, pre-LN blocks
with fused-QKV multi-head attention and a GELU MLP (ratio 4), final LayerNorm, linear head on
the class token.

ViT-Small-192 (dim 192, depth 6, 3 heads, patch 4) on 32x32x3 images has 2,693,578 parameters,
the paper's count.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..errors import ConfigError


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ConfigError(f"a ViT's width {dim} must be divisible by its {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)    # rows: [q heads | k heads | v heads], head-major
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        if q.is_cuda:   # the memory-efficient kernel's backward fails on a vmapped zoo ("LSE is not correctly aligned")
            with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]):
                out = F.scaled_dot_product_attention(q, k, v)
        else:
            out = F.scaled_dot_product_attention(q, k, v)   # (B, heads, T, D / heads)
        return self.proj(out.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp_ratio * dim)
        self.fc2 = nn.Linear(mlp_ratio * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))                      # (B, T, dim)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))  # (B, T, dim)


class ViT(nn.Module):
    def __init__(self, in_channels: int, image_size: int, patch: int, dim: int, depth: int,
                 heads: int, n_classes: int, mlp_ratio: int = 4):
        super().__init__()
        if image_size % patch:
            raise ConfigError(f"image size {image_size} is not a multiple of the patch size {patch}")
        n_patches = (image_size // patch) ** 2
        self.patch_embed = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, n_patches + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, C, H, W)
        x = self.patch_embed(x).flatten(2).transpose(1, 2)   # (B, N, dim)
        cls = self.cls_token.expand(len(x), -1, -1)          # (B, 1, dim)
        x = torch.cat([cls, x], dim=1) + self.pos_embed      # (B, N + 1, dim)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, 0]))                 # (B, n_classes) from the class token
