"""Aligned crossover: new nets recombined unit by unit from aligned members, a generator that
learns nothing.

After alignment, unit j of a hidden group plays the same role in every member, so a child can
take each unit from another member. A unit is everything one permutation writes at index j:
every tensor slice along axis 0 that the permutation P governs (a Linear or conv row with its
bias, a BatchNorm channel's weight, bias and statistics). Rows that no permutation writes (the
classifier's) are units of their own tensor. With m aligned members W_1 … W_m and each unit u
drawn from a member d(u) uniformly at random,

    child[t][j] = (1 − λ) · W_{d(u)}[t][j] + λ · W̄[t][j],      u = the unit of row j of tensor t,

where W̄ is the members' mean and λ ∈ [0, 1] blends the child toward it: λ = 0 is a pure
recombination (a child is about as far from every member as the members are from each other),
λ = 1 the members' average. With one member every child is that member.

Only families aligned by weight matching (a `PermutationSpec`: MLPs, convnets) have units this
simple; transformers (heads, TransFusion) are not recombined.
"""
from __future__ import annotations

from typing import Mapping

import torch

from .errors import ConfigError
from .rebasin import PermutationSpec


def unit_groups(spec: PermutationSpec, names: list[str]) -> dict[str, str]:
    """Per tensor, the group whose units index its axis 0: the permutation writing it, or the
    tensor's own module (`fc.2.weight` -> `fc.2`: its weight rows and bias share donors)."""
    return {t: (spec.axes.get(t, (None,)) or (None,))[0] or t.rsplit(".", 1)[0] for t in names}


def crossover(params: Mapping[str, torch.Tensor], spec: PermutationSpec, n: int, blend: float,
              g: torch.Generator) -> dict[str, torch.Tensor]:
    """n children {name: (n, *shape)} of the aligned members `params` {name: (m, *shape)}."""
    if not isinstance(spec, PermutationSpec):
        raise ConfigError(f"crossover recombines the units of a PermutationSpec (MLPs, convnets); "
                          f"this family's symmetry is a {type(spec).__name__}")
    if not 0.0 <= blend <= 1.0:
        raise ConfigError(f"the crossover blend λ must lie in [0, 1], got {blend:g}")
    groups = unit_groups(spec, list(params))
    m = next(iter(params.values())).shape[0]
    donors: dict[str, torch.Tensor] = {}                                       # group -> (n, units)
    out = {}
    for t, W in params.items():                                                # W (m, rows, ...)
        rows = W.shape[1] if W.ndim > 1 else 1
        d = donors.setdefault(groups[t], torch.randint(m, (n, rows), generator=g))
        if d.shape[1] != rows:
            raise ConfigError(f"{t!r} has {rows} rows but its unit group {groups[t]!r} has {d.shape[1]}")
        W2 = W.reshape(m, rows, -1)                                            # (m, rows, rest)
        child = W2[d, torch.arange(rows)[None, :]]                             # (n, rows, rest)
        if W.is_floating_point():   # integer buffers (BatchNorm's batch counters) are taken, not blended
            child = (1 - blend) * child + blend * W2.mean(0, keepdim=True)
        out[t] = child.reshape(n, *W.shape[1:])
    return out


__all__ = ["crossover", "unit_groups"]
