"""The accuracy–novelty frontier: how far from the zoo new nets can go before they stop working,
for the flow and for the trivial ways of making new nets.

Each point is one population, built and measured by `dwf.evaluate` like the report's rows (mean
test score, novelty against the fitting members, mean max error similarity):
- generated: the experiment's flow (replicate 0) sampled at several source stds (the paper's
  recipe samples at its small training std, which lands next to zoo members);
- generated, standardized codes: a second flow fitted on codes divided by their per-component
  std, where N(0, 1) is the natural source, sampled at several stds;
- noisy copies: fitting members plus N(0, σ²) weight noise, at several σ;
- interpolations: (1 - λ) a + λ b for random aligned pairs, at several λ.
The frontier is one replicate (a sweep, not a comparison of two numbers); the report's rows
carry the intervals. A generator is worth having where its points sit above and to the right
of the baselines'.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Mapping

from . import evaluate as ev
from . import fanout, flow as flow_mod
from .config import Experiment, PopulationSpec
from .flow import Flow
from .report import FrontierPoint
from .sample import generate

if TYPE_CHECKING:
    from .shards import Engine

NOISE_SIGMAS = (0.001, 0.01, 0.03, 0.1)
LAMBDAS = (0.05, 0.15, 0.3, 0.5)
STANDARDIZED_STDS = (0.1, 0.3, 1.0)


def sweep(exp: Experiment, ctx: ev.Context, ref: ev.Reference, flow: Flow, progress: bool = False,
          measured: Mapping[str, ev.Measured] | None = None, engine: "Engine | None" = None) -> list[FrontierPoint]:
    """Every frontier point of one experiment. The generated points use `exp.eval.frontier_stds`
    and the recipe's own std; every point has max(8, `exp.eval.n_baseline`) nets. `measured`
    (the report's replicate-0 populations by spec key) is reused instead of measured again: the
    recipe point is the report's generated population (flow replicate 0 at the recipe's std), and
    a noisy-copy point whose σ and size the report shares is the very same nets. Every other
    point is one job: measured here, or with `engine` as a Ray task (`dwf.fanout`)."""
    n = max(8, exp.eval.n_baseline)
    ctx = replace(ctx, eval=replace(ctx.eval, n_baseline=n))
    recipe_std = exp.sample.source_std if exp.sample.source_std is not None else flow.spec.source_std
    generated = PopulationSpec("generated")
    standardized = flow_mod.fit(ctx.codes, replace(flow.spec, standardize=True, source_std=1.0), progress=progress)
    # (family, parameter, population, flow sampled at the parameter's std or None, recipe point)
    points = ([("generated", std, generated, flow, std == recipe_std)
               for std in sorted(set(exp.eval.frontier_stds) | {recipe_std})]
              + [("generated, standardized codes", std, generated, standardized, False) for std in STANDARDIZED_STDS]
              + [("noisy copies", sigma, PopulationSpec("noisy", sigma=sigma), None, False) for sigma in NOISE_SIGMAS]
              + [("interpolation", lam, PopulationSpec("interpolation", lam=lam), None, False) for lam in LAMBDAS])
    known = dict(measured or {})

    def reused(spec: PopulationSpec, flow_: Flow | None, recipe: bool) -> ev.Measured | None:
        return known.get(spec.key) if (recipe or (flow_ is None and n == exp.eval.n_baseline)) else None

    todo = [(spec, flow_, param) for _, param, spec, flow_, recipe in points if reused(spec, flow_, recipe) is None]
    fresh = iter(fanout.map_jobs(engine, _measure_point, (exp, ctx, ref), todo, desc="frontier", progress=progress))
    out = []
    for family, param, spec, flow_, recipe in points:
        m = reused(spec, flow_, recipe)
        m = next(fresh) if m is None else m
        out.append(FrontierPoint(family, param, float(m.score.mean()), float(m.score.std()) if len(m.score) > 1 else 0.0,
                                 m.novelty, float(m.error_similarity.mean()), recipe))
    return out


def _measure_point(exp: Experiment, ctx: ev.Context, ref: ev.Reference, spec: PopulationSpec,
                   flow: Flow | None, param: float) -> ev.Measured:
    """One point's population (a flow's: sampled at source std `param`), built and measured."""
    gens = None
    if flow is not None:
        gens = {(None, None): generate(flow, ctx.pca, exp.arch, replace(exp.sample, n=ctx.eval.n_baseline,
                                                                         source_std=param), ctx.data.x_train)}
    return ev.measure(ctx, ref, spec, ev.build(ctx, spec, 0, gens))
