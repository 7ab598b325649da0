"""Predicting with a population of convnets: `dwf.stacked.predict` (BatchNorm folded into the
convolutions, images channels-last) vs the same per-model loop over the unfolded modules.

The evaluation stage of `fmnist_resnet20` runs a few hundred width-0.25 ResNet-20s over the
10 000 test images; this is that inner loop on random weights with non-trivial statistics."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from dwf import ArchSpec, archs, stacked

from .timing import best_of

CASES = (("fmnist_resnet20 quick (width 0.25)", ArchSpec("resnet20", 1, (), 10, width=0.25), 28),)
N_MODELS = 8
N_IMAGES = 4096
REPEATS = 2


@dataclass(frozen=True)
class PredictResult:
    case: str
    n_models: int
    n_images: int
    unfolded_s: float
    folded_s: float
    ratio: float                 # unfolded / folded
    agreement: float             # share of predictions the two paths agree on


def states(arch: ArchSpec, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        torch.manual_seed(seed * 1000 + i)
        model = archs.build(arch)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5, generator=g)
                    m.running_var.uniform_(0.5, 2.0, generator=g)
        rows.append(model.state_dict())
    return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}


@torch.no_grad()
def unfolded(model: torch.nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor,
             batch_size: int = 256) -> torch.Tensor:
    """predict's loop without folding: (n, N) classes."""
    model.eval()
    return torch.cat([stacked.forward_loop(model, params, x[i:i + batch_size]).argmax(-1)
                      for i in range(0, len(x), batch_size)], dim=1)


def run(case: str, arch: ArchSpec, side: int, n_models: int = N_MODELS, n_images: int = N_IMAGES,
        repeats: int = REPEATS) -> PredictResult:
    model = archs.build(arch)
    params = states(arch, n_models)
    x = torch.randn(n_images, arch.in_dim, side, side, generator=torch.Generator().manual_seed(0))
    slow_s, slow = best_of(lambda: unfolded(model, params, x), repeats)
    fast_s, fast = best_of(lambda: stacked.predict(model, params, x), repeats)
    return PredictResult(case, n_models, n_images, slow_s, fast_s, slow_s / fast_s,
                         float((slow == fast).float().mean()))
