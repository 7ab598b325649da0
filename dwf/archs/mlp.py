"""Multi-layer perceptron: flatten, then Linear-ReLU blocks and a linear head."""
from __future__ import annotations

from typing import Mapping

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

    def forward_stacked(self, params: Mapping[str, torch.Tensor], x: torch.Tensor,
                        shared_input: bool) -> torch.Tensor:
        """n MLPs at once with batched matmuls (what vmap would do, without its overhead).

        params: {name: (n, *shape)}; x: (B, ...) shared or (n, B, ...) per model -> (n, B, out).
        Activations are kept feature-major, h (n, features, B), so every layer is h ← W h + b
        with W (n, out, in) as stored: neither the forward nor the weight gradient dW = dh hᵀ
        needs a transposed copy of W or of the input batch (which is a strided view).
        """
        x = x.flatten(1) if shared_input else x.flatten(2)  # (B, in) or (n, B, in)
        w0 = params["fc.0.weight"]                                   # (n, out, in)
        h = x.T.expand(w0.shape[0], -1, -1) if shared_input else x.transpose(1, 2)   # (n, in, B)
        last = len(self.fc) - 1
        for i in range(last + 1):
            w, b = params[f"fc.{i}.weight"], params[f"fc.{i}.bias"]   # (n, out, in), (n, out)
            h = torch.baddbmm(b[:, :, None], w, h)                    # (n, out, B)
            if i < last:
                h = torch.relu(h)
        return h.transpose(1, 2)                                      # (n, B, out)
