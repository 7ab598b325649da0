"""Multi-layer perceptron: flatten, then Linear-ReLU blocks and a linear head."""
from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, in_dim: int, hidden: tuple[int, ...], out_dim: int):
        super().__init__()
        dims = (in_dim, *hidden, out_dim)
        self.fc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)                      # (B, in_dim)
        for layer in self.fc[:-1]:
            x = torch.relu(layer(x))          # (B, hidden_i)
        return self.fc[-1](x)                 # (B, out_dim) logits
