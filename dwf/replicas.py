"""Zoo replicates: the whole run repeated with independent zoos.

Flow replicates (`EvalSpec.replicates`) refit the flow with new seeds on one fixed zoo, so their
interval says how much the *flow* varies, not how a conclusion would change with another zoo. A
zoo replicate repeats every stage with the run seeded s (`Experiment.with_seed(s)`): its own
members (initializations and data orders), held-out split, alignment, PCA and R flows, cached
under its own artifacts/<experiment>/<profile>/seed<s>/.

For a statistic x with value x_{z,r} in zoo z and flow replicate r, each zoo contributes its
mean over flows, and the interval is Student's t over the Z zoo-level means:

    x̄_z = (1/R) Σ_r x_{z,r},     interval = Interval.of([x̄_1, …, x̄_Z])

(the two-stage estimate: between-zoo spread already contains the flows' own variation).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from . import pipeline
from .config import Experiment, PopulationSpec
from .errors import ConfigError
from .interval import Interval
from .io import load_json, save_json
from .record import from_json, to_json
from .report import COLLAPSE_SPREAD, MEMORIZE_FRACTION, Report, score_format


@dataclass(frozen=True)
class ReplicatedPopulation:
    spec: PopulationSpec
    name: str
    score: Interval                  # over zoo-level mean scores
    novelty: Interval
    spread: Interval
    memorized: Interval


@dataclass(frozen=True)
class ReplicatedReport:
    experiment: str
    profile: str
    metric: str
    seeds: list[int]                 # one zoo per seed
    flow_replicates: int             # flows per zoo
    generated_key: str
    gap: Interval                    # generated − zoo, over zoo-level means
    populations: list[ReplicatedPopulation]

    @property
    def generated(self) -> ReplicatedPopulation:
        return next(p for p in self.populations if p.spec.key == self.generated_key)

    def verdicts(self) -> list[str]:
        g, out = self.generated, []
        if g.spread.mean < COLLAPSE_SPREAD:
            out.append(f"{self.experiment}: over {len(self.seeds)} zoos the generated nets COLLAPSED "
                       f"(spread {g.spread.text()})")
        if g.memorized.mean > MEMORIZE_FRACTION:
            out.append(f"{self.experiment}: over {len(self.seeds)} zoos the generated nets MEMORIZE "
                       f"({100 * g.memorized.mean:.0f} % near-copies)")
        return out

    def markdown(self) -> str:
        f, d, label = score_format(self.metric)
        unit = "pp" if self.metric == "accuracy" else "ρ"
        out = [f"### {self.experiment} [{self.profile}] over {len(self.seeds)} zoos (seeds "
               f"{', '.join(map(str, self.seeds))}; {self.flow_replicates} flows each)", "",
               f"| population | {label} [95 % interval over zoos] | novelty | spread | memorized |",
               "|---|---|---|---|---|"]
        out += [f"| {p.name} | {p.score.text(f, d)} | {p.novelty.text()} | {p.spread.text()} | "
                f"{p.memorized.text(1, 2)} |" for p in self.populations]
        out += ["", f"Generated − zoo: **{self.gap.text(f, d)} {unit}** (95 % interval over zoos)."]
        out += [f"**{v}**" for v in self.verdicts()]
        return "\n".join(out)

    def save(self, path: str | Path) -> None:
        save_json(path, to_json(self))

    @classmethod
    def load(cls, path: str | Path) -> "ReplicatedReport":
        return from_json(cls, load_json(path), str(path))


def seeds(exp: Experiment, zoos: int | None = None) -> list[int]:
    """The run seeds of the experiment's zoo replicates: its own seed, then the next ones."""
    z = exp.zoo_replicates if zoos is None else zoos
    if z < 1:
        raise ConfigError(f"zoo replicates must be >= 1, got {z}")
    return [exp.zoo.seed + i for i in range(z)]


def combine(reports: Sequence[Report]) -> ReplicatedReport:
    """One zoo-replicated report from the reports of independent zoos of one experiment."""
    if len({(r.experiment, r.variant, r.profile) for r in reports}) != 1:
        raise ConfigError("combine() takes the reports of one experiment (same variant and profile), "
                          f"got {sorted({(r.experiment, r.variant, r.profile) for r in reports})}")
    first = reports[0]
    keys = [p.spec.key for p in first.populations]
    missing = [k for r in reports for k in keys if r.find(_spec(first, k)) is None]
    if missing:
        raise ConfigError(f"populations {sorted(set(missing))} are missing from some zoo's report; "
                          "rebuild every seed with the same config")
    over = lambda xs: Interval.of(xs, replicated=len(xs) > 1)  # noqa: E731

    def population(key: str) -> ReplicatedPopulation:
        ps = [r.find(_spec(first, key)) for r in reports]
        return ReplicatedPopulation(ps[0].spec, ps[0].name, over([p.score.mean for p in ps]),
                                    over([p.novelty.mean for p in ps]), over([p.spread.mean for p in ps]),
                                    over([p.memorized.mean for p in ps]))

    return ReplicatedReport(first.experiment, first.profile, first.metric,
                            [int(r.config["zoo"]["seed"]) for r in reports], first.replicates,
                            first.generated_key, over([r.gap.mean for r in reports]),
                            [population(k) for k in keys])


def _spec(report: Report, key: str) -> PopulationSpec:
    return next(p.spec for p in report.populations if p.spec.key == key)


def build(exp: Experiment, artifacts: str | Path = "artifacts", zoos: int | None = None,
          progress: bool = True) -> ReplicatedReport:
    """Run the experiment once per zoo seed (each cached on its own) and combine the reports;
    writes artifacts/<experiment>/<profile>/zoo_replicates.json."""
    reports = [pipeline.run(exp.with_seed(s), artifacts, progress) for s in seeds(exp, zoos)]
    rep = combine(reports)
    rep.save(path(exp, artifacts))
    return rep


def path(exp: Experiment, artifacts: str | Path = "artifacts") -> Path:
    return Path(artifacts) / exp.name / exp.profile / (f"variants/{exp.variant}/" if exp.variant else "") \
        / "zoo_replicates.json"


__all__ = ["ReplicatedPopulation", "ReplicatedReport", "build", "combine", "path", "seeds"]
