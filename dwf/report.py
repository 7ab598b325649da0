"""Report: every metric of a run, typed, with the config that produced it (JSON) and a table.

Names hold for every task: `score` is accuracy for classifiers and Spearman ρ for regressors;
`error_similarity` is the IoU of error sets or the correlation of residuals (`dwf.task`). Every
population statistic is an `Interval` over the run's replicates (flow fits with their own seeds);
populations that do not depend on the replicate (the zoo) carry a zero-width interval.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .config import PopulationSpec
from .errors import ConfigError
from .interval import Interval
from .io import load_json, save_json
from .record import from_json, to_json

COLLAPSE_SPREAD = 0.1        # spread below this: the generated nets are (nearly) one net
MEMORIZE_FRACTION = 0.5      # memorized fraction above this: mostly near-copies of members


def is_zoo_stage(stage: str) -> bool:
    """Whether a `timings` entry is zoo training: "zoo", or "zoo <member>" per member zoo of a
    conditional flow."""
    return stage == "zoo" or stage.startswith("zoo ")


def zoo_seconds(timings: dict[str, float]) -> float:
    """Seconds of zoo training in a report's `timings` (every member zoo's, summed)."""
    return sum(v for k, v in timings.items() if is_zoo_stage(k))


def score_format(metric: str) -> tuple[float, int, str]:
    """(factor, decimals, label) to show a score: accuracy in percent with 2 decimals,
    Spearman ρ as it is with 4."""
    return (100.0, 2, "accuracy (%)") if metric == "accuracy" else (1.0, 4, metric)


@dataclass(frozen=True)
class PerNet:
    """Replicate 0's nets, one entry each (for plots)."""
    score: list[float]
    novelty: list[float]             # distance to the nearest fitting member / the zoo's median NN
    error_similarity: list[float]    # max similarity of the net's errors with a fitting member's


@dataclass(frozen=True)
class PopulationResult:
    spec: PopulationSpec
    name: str
    n: int                           # nets per replicate
    score: Interval                  # population mean score
    score_std: float                 # std over the nets of replicate 0
    score_min: float                 # over every replicate's nets
    score_max: float
    novelty: Interval                # vs the fitting members (dwf.novelty.novelty)
    novelty_held_out: Interval | None   # vs the held-out members
    spread: Interval                 # within the population
    memorized: Interval              # memorized fraction vs the fitting members
    error_similarity: Interval       # mean over nets of the max error similarity with a member
    diversity: Interval              # functional diversity (dwf.task.Task.diversity)
    per_net: PerNet
    coverage: Interval | None = None  # share of fitting members that are some net's nearest member

    @property
    def collapsed(self) -> bool:
        return self.spread.mean < COLLAPSE_SPREAD

    @property
    def memorizes(self) -> bool:
        return self.memorized.mean > MEMORIZE_FRACTION


@dataclass(frozen=True)
class ZooSummary:
    n_fit: int
    held_out: list[int]              # member indices kept out of PCA and flow fitting
    reference: int                   # the alignment reference (a fitting member)
    val_score: list[float]           # every member's validation score (selection), fit then held out
    dist_to_ref_before: list[float]
    dist_to_ref_after: list[float]
    median_nn: float                 # the fitting members' leave-one-out median NN distance
    n_params: int
    n_components: int
    explained_variance_ratio: list[float]


@dataclass(frozen=True)
class FlowSummary:
    history: dict                    # replicate 0: step, train_loss, val_loss, lr, best_val_loss
    best_val_loss: list[float]       # per replicate (NaN where no codes were held out)

    @classmethod
    def of(cls, histories: list[dict]) -> "FlowSummary":
        best = [h.get("best_val_loss") for h in histories]
        return cls(histories[0], [float(b) if b is not None else math.nan for b in best])


@dataclass(frozen=True)
class Barrier:
    lambdas: list[float]
    naive_loss: list[float]
    aligned_loss: list[float]
    naive_score: list[float]
    aligned_score: list[float]
    naive_barrier: float
    aligned_barrier: float


@dataclass(frozen=True)
class FrontierPoint:
    family: str          # "generated" | "generated, standardized codes" | "noisy copies" | "interpolation"
    param: float         # source std, σ or λ
    score: float
    score_std: float
    novelty: float
    error_similarity: float
    recipe: bool = False  # the paper's recipe (the experiment's own flow at its sampling std)


@dataclass(frozen=True)
class ConditionalInfo:
    label: int
    labels: list[str]
    guidance: float
    extra_guidance: list[float]
    n_zoo_nets: int


@dataclass
class Report:
    experiment: str
    profile: str
    task: str                        # what the nets do, in words
    metric: str                      # "accuracy" | "Spearman ρ"
    config: dict
    replicates: int
    populations: list[PopulationResult]
    generated_key: str               # spec key of the generated population the gap is about
    gap: Interval                    # generated − zoo mean score, per replicate
    zoo: ZooSummary
    flow: FlowSummary
    timings: dict[str, float]
    variant: str = ""                # "" for the experiment, else the ablation's name
    barrier: Barrier | None = None
    frontier: list[FrontierPoint] = field(default_factory=list)
    transfer: list[dict] = field(default_factory=list)      # dwf.transfer.TransferResult.summary()
    conditional: ConditionalInfo | None = None

    def population(self, spec: PopulationSpec) -> PopulationResult:
        for p in self.populations:
            if p.spec == spec:
                return p
        raise ConfigError(f"no population {spec.key!r} in the report; have "
                          f"{[p.spec.key for p in self.populations]}")

    def find(self, spec: PopulationSpec) -> PopulationResult | None:
        return next((p for p in self.populations if p.spec == spec), None)

    @property
    def zoo_population(self) -> PopulationResult:
        return self.population(PopulationSpec("zoo", "own"))

    @property
    def generated(self) -> PopulationResult:
        return next(p for p in self.populations if p.spec.key == self.generated_key)

    @property
    def held_out(self) -> PopulationResult | None:
        return self.find(PopulationSpec("held_out", "own"))

    @property
    def fmt_factor(self) -> float:
        return score_format(self.metric)[0]

    def fmt(self, v: float, decimals: int | None = None) -> str:
        """A score in display units (percent for accuracy)."""
        f, d, _ = score_format(self.metric)
        return f"{f * v:.{d if decimals is None else decimals}f}"

    def fmt_interval(self, iv: Interval) -> str:
        f, d, _ = score_format(self.metric)
        return iv.text(f, d)

    @property
    def gap_text(self) -> str:
        unit = "pp" if self.metric == "accuracy" else "ρ"
        f, d, _ = score_format(self.metric)
        g = self.gap
        return (f"{f * g.mean:+.{d}f} {unit}" + (f" [{f * g.lo:+.{d}f}, {f * g.hi:+.{d}f}]" if g.replicated else ""))

    def verdicts(self) -> list[str]:
        """Sentences saying whether the generated nets collapsed or memorize."""
        p, name = self.generated, self.experiment + (f"/{self.variant}" if self.variant else "")
        n_fit = self.zoo.n_fit
        near = (f"; they are nearest to {max(1, round(p.coverage.mean * n_fit))} of the {n_fit} fitting members"
                if p.coverage is not None else "")
        out = []
        if p.collapsed:
            out.append(f"{name}: {p.name} COLLAPSED: spread {p.spread.mean:.3f} < {COLLAPSE_SPREAD}, its nets "
                       f"nearly coincide with each other{near}")
        if p.memorizes:
            out.append(f"{name}: {p.name} MEMORIZES: {100 * p.memorized.mean:.0f} % of its nets are near-copies of "
                       f"one fitting member{near if not p.collapsed else ''}")
        return out

    def table(self) -> str:
        head = (f"{'population':<34}{'n':>5}{'score':>9}{'± std':>8}{'novelty':>9}{'held-out':>9}"
                f"{'spread':>8}{'memo':>6}{'err sim':>8}{'divers':>8}")
        lines = [f"{self.experiment}{' / ' + self.variant if self.variant else ''} [{self.profile}] — score: "
                 f"{score_format(self.metric)[2]}, means over {self.replicates} replicate(s)",
                 head, "-" * len(head)]
        for p in self.populations:
            ho = f"{p.novelty_held_out.mean:>9.3f}" if p.novelty_held_out else f"{'—':>9}"
            lines.append(f"{p.name[:33]:<34}{p.n:>5}{self.fmt(p.score.mean):>9}{self.fmt(p.score_std):>8}"
                         f"{p.novelty.mean:>9.3f}{ho}{p.spread.mean:>8.3f}{p.memorized.mean:>6.2f}"
                         f"{p.error_similarity.mean:>8.3f}{p.diversity.mean:>8.3f}")
        lines.append(f"generated − zoo: {self.gap_text} (95 % interval over replicates)")
        lines += self.verdicts()
        lines.append("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in self.timings.items()))
        return "\n".join(lines)

    def save(self, path: str | Path) -> None:
        save_json(path, to_json(self))

    @classmethod
    def load(cls, path: str | Path) -> "Report":
        return from_json(cls, load_json(path), str(path))
