"""TransFusion (`dwf.rebasin.transfusion`, one pass) on transformer zoos: seconds per model, and
whether the planted permutations are recovered.

Synthetic zoos with the structure alignment must find: each member is the base net (a random
ViT-Small-192, or the pretrained MiniLM-L6) plus independent Gaussian noise of NOISE times each
tensor's std, then randomly permuted (heads, QK, VO, FFN and residual stream).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from dwf import ArchSpec, archs
from dwf.rebasin import (apply_transformer_perms, bert_spec, random_transformer_perms, transfusion,
                         vit_spec)

from .timing import best_of

CASES = (("ViT-Small-192", ArchSpec("vit", 3, (192,), 10, depth=6, heads=3, patch=4, image_size=32), 8),
         ("MiniLM-L6 (pretrained)", ArchSpec("bert", 0, (), 1, pretrained="minilm-l6"), 8))
NOISE = 0.05
REPEATS = 2


@dataclass
class TransFusionResult:
    case: str
    n_models: int
    n_params: int
    s_per_model: float
    recovered: int          # members put back exactly into the reference's order


def synthetic_zoo(arch: ArchSpec, n: int, seed: int = 0):
    """(spec, members, expected): permuted noisy copies of one net, and each noisy copy in
    member 0's order (what aligning it to member 0 must give)."""
    g = torch.Generator().manual_seed(seed)
    model = archs.build(arch, seed=seed)
    spec = bert_spec(model.bert) if arch.kind == "bert" else vit_spec(model)
    base = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    members, noisy = [], []
    for _ in range(n):
        noisy.append({k: v + NOISE * v.std(correction=0) * torch.randn(v.shape, generator=g)
                      for k, v in base.items()})
        perms = random_transformer_perms(spec, noisy[-1], g)
        members.append(apply_transformer_perms(spec, perms, noisy[-1]))
        if len(members) == 1:
            perms0 = perms
    return spec, members, [apply_transformer_perms(spec, perms0, sd) for sd in noisy]


def run(case: str, arch: ArchSpec, n: int) -> TransFusionResult:
    spec, members, expected = synthetic_zoo(arch, n)

    def align_all():
        return [apply_transformer_perms(spec, transfusion(spec, members[0], sd), sd) for sd in members[1:]]

    seconds, out = best_of(align_all, REPEATS)
    recovered = 1 + sum(int(all(torch.equal(o[k], e[k]) for k in o)) for o, e in zip(out, expected[1:]))
    return TransFusionResult(case, n, sum(v.numel() for v in members[0].values()), seconds / (n - 1),
                             recovered)
