"""Which training samples each zoo member sees, step by step (`ZooSpec.data_order`).

Member i of a zoo seeded s starts from `model_seed(s, i)`. Each epoch it reads every training
sample once, in one of two orders:

    rotated       one shared shuffle per epoch, rotated by i · ⌊N / n⌋ for member i of n:
                  each step's n minibatches are a strided view of one buffer (no gather), but
                  members see the same sequence shifted, and the shift depends on n (a shard
                  of the zoo reads its rows of the same view, so it trains as in the whole);
    independent   member i's own shuffle per epoch, seeded from (s, i, epoch) only: members
                  are as independent as separately trained nets, each step gathers its
                  (n, B) samples, and member i trains identically in a zoo of any size (so a
                  zoo can grow: the first N members of a 2N zoo are the N zoo).
"""
from __future__ import annotations

from typing import Iterator

import torch

from .errors import ConfigError

DATA_ORDERS = ("rotated", "independent")


def model_seed(zoo_seed: int, i: int) -> int:
    return zoo_seed * 1_000_003 + i


def epoch_permutation(zoo_seed: int, epoch: int, n_samples: int) -> torch.Tensor:
    """The epoch's shared shuffle of the training set (rotated order)."""
    return torch.randperm(n_samples, generator=torch.Generator().manual_seed(zoo_seed * 1009 + epoch))


def model_offset(i: int, n_models: int, n_samples: int) -> int:
    """Where model i starts reading the shared shuffle: offsets spread evenly over the epoch."""
    return i * (n_samples // n_models)


def epoch_order(zoo_seed: int, epoch: int, i: int, n_models: int, n_samples: int,
                data_order: str = "rotated") -> torch.Tensor:
    """(N,) sample order of model i (of n_models) in one epoch."""
    if data_order == "independent":
        g = torch.Generator().manual_seed(model_seed(zoo_seed, i) * 1009 + epoch)
        return torch.randperm(n_samples, generator=g)
    if data_order != "rotated":
        raise ConfigError(f"unknown zoo data order {data_order!r}; use one of {DATA_ORDERS}")
    return epoch_permutation(zoo_seed, epoch, n_samples).roll(-model_offset(i, n_models, n_samples))


def minibatches(x: torch.Tensor, y: torch.Tensor, zoo_seed: int, epoch: int, members: range, n_models: int,
                B: int, data_order: str = "rotated") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (x (m, B, ...), y (m, B)) for each of the epoch's ⌊N / B⌋ steps: row j is member
    members[j]'s next minibatch in its `epoch_order` (members: indices in a zoo of n_models)."""
    N = len(x)
    if data_order == "rotated":   # a run of members reads its rows of the whole zoo's strided view
        if members.step != 1 or members.start < 0 or members.stop > n_models:
            raise ConfigError(f"members {members} are not a run of indices into a zoo of {n_models}")
        for xb, yb in _rotated(x, y, epoch_permutation(zoo_seed, epoch, N).to(x.device), n_models, B):
            yield xb[members.start:members.stop], yb[members.start:members.stop]
        return
    orders = torch.stack([epoch_order(zoo_seed, epoch, i, n_models, N, data_order) for i in members]).to(x.device)
    for s in range(N // B):
        idx = orders[:, s * B:(s + 1) * B]                                   # (m, B)
        yield x[idx], y[idx]


def _rotated(x: torch.Tensor, y: torch.Tensor, perm: torch.Tensor, n: int, B: int):
    """Model i's step-s batch is rows [s*B + offset_i, s*B + offset_i + B) of the shuffled data
    repeated twice (so rotations never wrap). Views, not copies."""
    N, c = len(x), len(x) // n
    xs, ys = x[perm].reshape(N, -1), y[perm]
    xs, ys = torch.cat([xs, xs]), torch.cat([ys, ys])                 # (2N, D), (2N,)
    D = xs.shape[1]
    for s in range(N // B):
        xb = xs.as_strided((n, B, D), (c * D, D, 1), s * B * D)
        yb = ys.as_strided((n, B), (c, 1), s * B)
        yield xb.view(n, B, *x.shape[1:]), yb


__all__ = ["DATA_ORDERS", "epoch_order", "epoch_permutation", "minibatches", "model_offset", "model_seed"]
