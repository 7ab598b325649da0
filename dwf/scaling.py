"""The zoo-scaling study: one recipe fitted on zoos of growing size N (the first N members of one
zoo trained in the independent data order, `experiments.scaling`), to see whether more training
nets move the flow from copying members toward generating new ones.

Per N the table gives the generated nets' gap to the fitting members (95 % interval over flow
replicates), their novelty against the fitting and the held-out members (a held-out member
scores ≈ 1: the ideal), the memorized share, the spread, and, at the nearest σ, the accuracy of
noisy copies that are at least as novel: a generator beats noisy copies at this N only if it is
more accurate than every such copy population.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from . import experiments, pipeline
from .config import Experiment
from .progress import StageLog
from .report import Report


@dataclass(frozen=True)
class ScalingPoint:
    n: int                  # zoo size: fitting + held-out members
    report: Report

    def noisy_at_least_as_novel(self) -> tuple[float, float] | None:
        """(σ, mean score) of the most accurate noisy-copy population whose novelty is at least
        the generated nets' (None: no σ was that novel)."""
        novel = self.report.generated.novelty.mean
        rows = [(p.spec.sigma, p.score.mean) for p in self.report.populations
                if p.spec.source == "noisy" and p.novelty.mean >= novel]
        return max(rows, key=lambda r: r[1]) if rows else None

    @property
    def beats_noisy_copies(self) -> bool | None:
        """Whether the generated nets are more accurate than every noisy-copy population at
        least as novel (None: no such population to compare with)."""
        rival = self.noisy_at_least_as_novel()
        return None if rival is None else self.report.generated.score.mean > rival[1]


def run(exp: Experiment, artifacts: str | Path = "artifacts", progress: bool = True,
        log: TextIO | None = None) -> list[ScalingPoint]:
    """Every size of the study, smallest first (the zoo is trained, or grown, once); with `log`,
    one line per size and stage there (`StageLog`)."""
    points = []
    for e in experiments.scaling(exp):
        n = e.members or e.zoo.n_models
        stages = StageLog(f"{e.name} [{e.profile}, N={n}]", log) if log is not None else None
        report = pipeline.run(e, artifacts, progress, on_stage=stages)
        if stages is not None:
            stages.done()
        points.append(ScalingPoint(n, report))
    return points


def markdown(points: list[ScalingPoint]) -> str:
    """One row per zoo size."""
    head = ("| N | fitting members | generated | gap | novelty | held-out novelty | memorized | spread | "
            "noisy copies at least as novel (σ: score) | beats them |\n|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for p in points:
        r, g = p.report, p.report.generated
        rival = p.noisy_at_least_as_novel()
        ho = g.novelty_held_out.text() if g.novelty_held_out is not None else "–"
        rows.append(f"| {p.n} | {r.fmt(r.zoo_population.score.mean)} | {r.fmt_interval(g.score)} | {r.gap_text} | "
                    f"{g.novelty.text()} | {ho} | {g.memorized.text(100, 0)} % | {g.spread.text()} | "
                    + (f"{rival[0]:g}: {r.fmt(rival[1])}" if rival else "none that novel") + " | "
                    + {True: "yes", False: "no", None: "–"}[p.beats_noisy_copies] + " |")
    return "\n".join([head, *rows])


__all__ = ["ScalingPoint", "markdown", "run"]
