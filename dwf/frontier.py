"""The accuracy–novelty frontier: how far from the zoo new nets can go before they stop working,
for the flow and for the trivial ways of making new nets.

Each point is one population of nets, scored like the report's rows (mean test score, novelty =
median NN distance to the zoo / the zoo's own median NN distance, mean max error-IoU):
- generated: the experiment's flow sampled at several source stds (the paper's recipe samples at
  its small training std, which lands next to zoo members);
- generated, standardized codes: a second flow fitted on codes divided by their per-component
  std, where N(0, 1) is the natural source, sampled at several stds;
- noisy copies: zoo members plus N(0, σ²) weight noise, at several σ;
- interpolations: (1 - λ) a + λ b for random aligned pairs, at several λ.
A generator is worth having where its points sit above and to the right of the baselines'.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Callable

import torch

from . import evaluate as ev
from . import flow as flow_mod
from .config import Experiment
from .flow import Flow
from .pca import DualPCA
from .sample import generate

NOISE_SIGMAS = (0.001, 0.01, 0.03, 0.1)
LAMBDAS = (0.05, 0.15, 0.3, 0.5)
STANDARDIZED_STDS = (0.1, 0.3, 1.0)

# (family, setting, vectors (m, d)) -> Population summary dict
Score = Callable[[str, torch.Tensor], dict]


@dataclass
class Point:
    family: str          # "generated" | "generated, standardized codes" | "noisy copies" | "interpolation"
    param: float         # source std, σ or λ
    acc_mean: float
    acc_std: float
    novelty: float
    max_iou: float
    recipe: bool = False  # the paper's recipe (the experiment's own flow at its sampling std)


def interpolations_at(vectors: torch.Tensor, n: int, lam: float, generator: torch.Generator) -> torch.Tensor:
    """(1 - lam) v_i + lam v_j for n random pairs i != j of aligned zoo members. (n, d)"""
    i = torch.randint(vectors.shape[0], (n,), generator=generator)
    j = (i + 1 + torch.randint(vectors.shape[0] - 1, (n,), generator=generator)) % vectors.shape[0]
    return (1 - lam) * vectors[i] + lam * vectors[j]


def sweep(exp: Experiment, flow: Flow, pca: DualPCA, codes: torch.Tensor, zoo_vectors: torch.Tensor,
          score: Score, progress: bool = False) -> list[dict]:
    """Every frontier point of one experiment (as dicts, for the report). The generated points
    use `exp.eval.frontier_stds`; `score(name, vectors)` evaluates a population (BatchNorm
    recalibration, predictions, novelty) exactly as the report does. Every point has as many
    nets as each report baseline (`exp.eval.n_baseline`, at least 8)."""
    n = max(8, exp.eval.n_baseline)
    s = exp.sample
    recipe_std = s.source_std if s.source_std is not None else flow.spec.source_std
    points: list[Point] = []

    def add(family: str, param: float, vectors: torch.Tensor, recipe: bool = False) -> None:
        r = score(f"{family} {param:g}", vectors)
        points.append(Point(family, param, r["acc_mean"], r["acc_std"], r["novelty"], r["max_iou"], recipe))

    for std in sorted(set(exp.eval.frontier_stds) | {recipe_std}):
        gen = generate(flow, pca, n, s.steps, s.method, std, s.seed)
        add("generated", std, gen.vectors, recipe=std == recipe_std)
    standardized = flow_mod.fit(codes, replace(flow.spec, standardize=True, source_std=1.0), progress=progress)
    for std in STANDARDIZED_STDS:
        add("generated, standardized codes", std, generate(standardized, pca, n, s.steps, s.method, std, s.seed).vectors)
    g = torch.Generator().manual_seed(exp.eval.seed)
    for sigma in NOISE_SIGMAS:
        add("noisy copies", sigma, ev.noisy_copies(zoo_vectors, n, sigma, g))
    for lam in LAMBDAS:
        add("interpolation", lam, interpolations_at(zoo_vectors, n, lam, g))
    return [asdict(p) for p in points]
