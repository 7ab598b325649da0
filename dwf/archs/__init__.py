"""Model builders, one per architecture family, all seeded explicitly."""
from __future__ import annotations

import torch
from torch import nn

from ..config import ArchSpec
from ..errors import ConfigError
from .mlp import MLP

__all__ = ["MLP", "build"]


def build(arch: ArchSpec, seed: int | None = None) -> nn.Module:
    """A fresh model for `arch`; with `seed`, its initialization is reproducible and isolated
    from the global RNG."""
    if arch.kind != "mlp":
        raise ConfigError(f"unknown architecture kind {arch.kind!r}; known: mlp")
    if seed is None:
        return MLP(arch.in_dim, tuple(arch.hidden), arch.out_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLP(arch.in_dim, tuple(arch.hidden), arch.out_dim)
