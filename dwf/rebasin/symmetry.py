"""One interface over both kinds of symmetry spec: a `PermutationSpec` (MLPs, convnets: one
permutation per axis group, aligned by weight matching) and a `TransformerSpec` (heads, QK, VO,
FFN and stream permutations, aligned by TransFusion)."""
from __future__ import annotations

import math
from typing import Iterable, Mapping

import torch

from .matching import align_to
from .spec import PermutationSpec, apply_perms, random_perms
from .transformer import TransformerSpec, apply_transformer_perms, ffn_size, random_transformer_perms
from .transfusion import align_transformer

Symmetry = PermutationSpec | TransformerSpec
StateDict = Mapping[str, torch.Tensor]


def align(spec: Symmetry, reference: StateDict, sd: StateDict, *, max_iter: int = 100,
          generator: torch.Generator | None = None, exclude: Iterable[str] = (),
          stream: bool = True) -> dict[str, torch.Tensor]:
    """`sd` permuted to match `reference`: weight matching (max_iter sweeps, random group order
    from `generator`, `exclude`d tensors out of the cost) or TransFusion (one pass; `stream`
    also aligns the residual stream)."""
    if isinstance(spec, TransformerSpec):
        return align_transformer(spec, reference, sd, stream=stream)
    return align_to(spec, reference, sd, max_iter=max_iter, generator=generator, exclude=exclude)


def random_permutation(spec: Symmetry, sd: StateDict,
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """`sd` with every symmetry group randomly permuted: the same function, other weights."""
    if isinstance(spec, TransformerSpec):
        return apply_transformer_perms(spec, random_transformer_perms(spec, sd, generator), sd)
    return apply_perms(spec, random_perms(spec, generator), sd)


def group_sizes(spec: Symmetry, sd: StateDict) -> dict[str, int]:
    """Name -> number of units of each independent permutation."""
    if isinstance(spec, PermutationSpec):
        return dict(spec.sizes)
    out = {"stream": spec.dim}
    for i, b in enumerate(spec.blocks):
        out[f"block {i} heads"] = b.heads
        for h in range(b.heads):
            out[f"block {i} head {h} QK"] = b.head_dim
            out[f"block {i} head {h} VO"] = b.head_dim
        out[f"block {i} FFN"] = ffn_size(spec, sd, i)
    return out


def log10_equivalent_weights(spec: Symmetry, sd: StateDict) -> float:
    """log10 of how many weight vectors compute the same function (the symmetry group's size)."""
    return sum(math.lgamma(n + 1) for n in group_sizes(spec, sd).values()) / math.log(10)
