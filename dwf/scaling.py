"""The zoo-scaling study: one recipe fitted on zoos of growing size N (the first N members of one
zoo trained in the independent data order, `experiments.scaling`), to see whether more training
nets move the flow from copying members toward generating new ones.

Per N the table gives the generated nets' gap to the fitting members (95 % interval over flow
replicates), their novelty against the fitting and the held-out members (a held-out member
scores ≈ 1: the ideal), the memorized share, the spread, and how far each generator reaches
(`dwf.reach`: the largest novelty within 0.3 pp, 1 pp and 10 pp of the members' accuracy) for
the flow, noisy copies, interpolations and a Gaussian fitted to the codes (whether the flow's
reach beats noisy copies' and the Gaussian's), and where the generated nets sit against the
noisy-copy curve at their own novelty (`dwf.dominance`).
The figures: that reach against N, and the curves behind it, one panel per N.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import math

import plotly.graph_objects as go

from . import dominance, experiments, figures as figures_mod, pipeline, plots, reach
from .config import Experiment
from .progress import StageLog
from .reach import Reach
from .recipe import Recipe
from .report import Report


@dataclass(frozen=True)
class ScalingPoint:
    n: int                  # zoo size: fitting + held-out members
    report: Report
    reach: Reach


def run(exp: Experiment, artifacts: str | Path = "artifacts", progress: bool = True,
        log: TextIO | None = None, recipe: Recipe | None = None) -> list[ScalingPoint]:
    """Every size of the study, smallest first (the zoo is trained, or grown, once); with `log`,
    one line per size and stage there (`StageLog`). With `recipe`, every size runs that recipe
    (`dwf.recipe`: the runs a recipe sweep at that size fits, cached alike)."""
    points = []
    for e in experiments.scaling(exp):
        e = recipe.apply(e) if recipe is not None else e
        n = e.members or e.zoo.n_models
        stages = StageLog(f"{e.name} [{e.profile}, N={n}]", log) if log is not None else None
        run_ = pipeline.build(e, artifacts, progress, on_stage=stages)
        measured = reach.stored(run_, artifacts, stages or (lambda name: None))
        if stages is not None:
            stages.done()
        points.append(ScalingPoint(n, run_.report, measured))
    return points


def write(exp: Experiment, out_dir: str | Path, artifacts: str | Path = "artifacts", progress: bool = True,
          log: TextIO | None = None, recipe: Recipe | None = None) -> list[ScalingPoint]:
    """Run the study (`run`) and write its table (out_dir/results.md) and figures there."""
    points = run(exp, artifacts, progress, log, recipe)
    figures_mod.write_study(out_dir, figures(points), markdown(points))
    return points


RIVALS = ("noisy copies", "fitted Gaussian")   # the trivial generators the flow's reach must beat


def _reach_text(iv) -> str:
    return "none" if math.isnan(iv.mean) else iv.text(1, 2)


def markdown(points: list[ScalingPoint]) -> str:
    """One row per zoo size, then one per size and loss level for the reach."""
    return size_markdown([p.n for p in points], [p.report for p in points]) + reach_markdown(points)


def size_markdown(sizes: list[int], reports: list[Report]) -> str:
    """One row per zoo size: the generated nets against the members and the noisy-copy curve."""
    head = ("| N | fitting members | generated | gap | novelty | held-out novelty | memorized | spread | "
            "noisy copies at that novelty | against noisy copies |\n|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for n, r in zip(sizes, reports):
        g = r.generated
        d = dominance.of(r)
        ho = g.novelty_held_out.text() if g.novelty_held_out is not None else "–"
        rows.append(f"| {n} | {r.fmt(r.zoo_population.score.mean)} | {r.fmt_interval(g.score)} | {r.gap_text} | "
                    f"{g.novelty.text()} | {ho} | {g.memorized.text(100, 0)} % | {g.spread.text()} | "
                    + (r.fmt_interval(d.noisy) if d.noisy else "none that novel") + f" | {d.outcome} |")
    return "\n".join([head, *rows])


def reach_markdown(points: list[ScalingPoint]) -> str:
    """One row per size and loss level: each generator's reach and whether the flow's beats the rivals'."""
    reach_head = ("\n\nLargest novelty within a loss of the fitting members' accuracy (dwf.reach; 95 % intervals "
                  "over replicates; none: no point of the curve is that accurate in every replicate):\n\n"
                  "| N | loss | " + " | ".join(reach.FAMILIES) + " | " + " | ".join(f"flow beats {r}" for r in RIVALS)
                  + " |\n|---|---|" + "---|" * (len(reach.FAMILIES) + len(RIVALS)))
    reach_rows = []
    for p in points:
        for lv in reach.LOSSES:
            beats = [{True: "yes", False: "no", None: "undecided"}[p.reach.beats("flow", r, lv)] for r in RIVALS]
            reach_rows.append(f"| {p.n} | {100 * lv:g} pp | "
                              + " | ".join(_reach_text(p.reach.curve(f).reach[lv]) for f in reach.FAMILIES)
                              + " | " + " | ".join(beats) + " |")
    return reach_head + "\n" + "\n".join(reach_rows)


def figures(points: list[ScalingPoint]) -> dict[str, go.Figure]:
    """The reach against N, and every size's curves with its held-out members."""
    sizes = [p.n for p in points]
    name = f"{points[0].report.experiment} [{points[0].report.profile}]" if points else ""
    reaches = {(f, lv): [p.reach.curve(f).reach[lv] for p in points] for f in ("flow", *RIVALS)
               for lv in reach.LOSSES}
    held = []
    for p in points:
        ho = next((q for q in p.report.populations if q.spec.source == "held_out"), None)
        held.append(None if ho is None else (ho.novelty.mean, p.reach.zoo_score - ho.score.mean))
    curves = [{c.family: (c.novelty, c.loss) for c in p.reach.curves} for p in points]
    metric = points[0].report.metric if points else "accuracy"
    return {"reach_scaling": plots.reach_scaling(sizes, reaches, title=f"How far each generator reaches — {name}"),
            "frontier_by_size": plots.frontier_by_size(sizes, curves, held, metric,
                                                       title=f"Loss against novelty per zoo size — {name}")}


__all__ = ["ScalingPoint", "figures", "markdown", "reach_markdown", "run", "size_markdown", "write"]
