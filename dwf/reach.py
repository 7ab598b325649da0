"""How far a generator reaches: the largest novelty its nets attain within a fixed accuracy loss.

Each family traces a curve of populations as one knob turns, measured per flow replicate r (its
own flow, its own baseline draws) like the report's rows (`dwf.evaluate`):

    flow            the run's flow r sampled at source std  m · s_train,  m ∈ STD_MULTIPLIERS
    noisy copies    fitting members + N(0, σ² I) weight noise,             σ ∈ SIGMAS
    interpolations  (1 − λ) a + λ b of random aligned member pairs,        λ ∈ LAMBDAS
    fitted Gaussian decode(μ + s · sd ⊙ ε) over the members' PCA codes,     s ∈ GAUSSIAN_SCALES

A point's loss is the fitting members' mean score minus the population's. The reach of a curve at
loss ℓ is the largest novelty among its points with loss ≤ ℓ, and on each segment between
neighbouring knob values that crosses loss = ℓ, the novelty interpolated linearly at ℓ. Noisy
copies and interpolations start at the members themselves (σ = 0, λ = 0: loss 0, novelty 0), so
they always reach something; a flow or a fitted Gaussian whose every point loses more than ℓ
reaches nothing (NaN; the Gaussian starts at the members' mean code, s → 0, not at the members).
Reach is an interval over replicates: a generator beats noisy copies (or the fitted Gaussian) at
loss ℓ when its reach lies above theirs.

`stored` keeps a run's reach as a stage (reach/reach.json, recorded like the report it extends:
the same config hash), so re-rendering a study loads it; one measured on other knob values or
loss levels than this module's is measured again.
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from . import cache, reporting
from . import evaluate as ev
from .baselines import GAUSSIAN_SCALES
from .config import PopulationSpec
from .errors import ArtifactError
from .folders import stage_dir
from .interval import Interval
from .io import load_json, save_json
from .record import from_json, to_json
from .sample import generate

if TYPE_CHECKING:
    from .pipeline import Run

STD_MULTIPLIERS = (0.3, 1.0, 3.0, 10.0)
SIGMAS = (0.001, 0.003, 0.01, 0.02, 0.03, 0.05, 0.1)
LAMBDAS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
LOSSES = (0.003, 0.01, 0.1)                # 0.3 pp and 1 pp of accuracy (the target's), and 10 pp
FAMILIES = ("flow", "noisy copies", "interpolations", "fitted Gaussian")


@dataclass(frozen=True)
class Curve:
    family: str
    params: tuple[float, ...]              # the knob: source std, σ, λ or the Gaussian's std factor
    loss: list[Interval]                   # per knob value, over replicates
    novelty: list[Interval]
    reach: dict[float, Interval]           # loss level -> largest novelty within it


@dataclass(frozen=True)
class Reach:
    """Every family's curve for one run (one zoo size)."""
    n: int                                 # zoo size (fitting + held-out members)
    zoo_score: float                       # the fitting members' mean test score
    curves: list[Curve]

    def curve(self, family: str) -> Curve:
        return next(c for c in self.curves if c.family == family)

    def beats(self, family: str, rival: str, loss: float) -> bool | None:
        """Whether `family` reaches farther than `rival` at this loss, intervals apart (None:
        overlapping intervals or nothing reached)."""
        a, b = self.curve(family).reach[loss], self.curve(rival).reach[loss]
        if math.isnan(a.mean) or math.isnan(b.mean):
            return None if math.isnan(a.mean) == math.isnan(b.mean) else not math.isnan(a.mean)
        if a.lo > b.hi:
            return True
        return False if a.hi < b.lo else None

    def save(self, path: str | Path) -> None:
        save_json(path, to_json(self))

    @classmethod
    def load(cls, path: str | Path) -> "Reach":
        r = from_json(cls, load_json(path), str(path))       # JSON keeps the loss levels as strings
        return replace(r, curves=[replace(c, reach={float(k): v for k, v in c.reach.items()}) for c in r.curves])

    def knobs(self) -> dict[str, tuple[float, ...]]:
        return {c.family: tuple(c.params) for c in self.curves}


def reach_at(loss: Sequence[float], novelty: Sequence[float], level: float, from_origin: bool) -> float:
    """The largest novelty within `level` along one curve (knob order); NaN when none is."""
    pts = ([(0.0, 0.0)] if from_origin else []) + list(zip(loss, novelty))
    best = -math.inf
    for i, (l, v) in enumerate(pts):
        if l <= level:
            best = max(best, v)
        if i and (pts[i - 1][0] <= level) != (l <= level):           # the segment crosses the level
            (l0, v0), (l1, v1) = pts[i - 1], (l, v)
            best = max(best, v0 + (level - l0) / (l1 - l0) * (v1 - v0))
    return best if best > -math.inf else math.nan


def knobs(run: "Run") -> dict[str, tuple[float, ...]]:
    """Each family's knob values for this run (the flow's are source stds around its own)."""
    exp = run.experiment
    std0 = exp.sample.source_std if exp.sample.source_std is not None else run.flow.spec.source_std
    return {"flow": tuple(m * std0 for m in STD_MULTIPLIERS), "noisy copies": SIGMAS,
            "interpolations": LAMBDAS, "fitted Gaussian": GAUSSIAN_SCALES}


def stored(run: "Run", artifacts: str | Path = "artifacts",
           tell: Callable[[str], None] = lambda name: None) -> Reach:
    """`measure(run)`, loaded from the run's reach stage folder when it holds one for this config
    and these knob values and loss levels, else measured and saved there."""
    exp = run.experiment
    folder = stage_dir(exp, "reach", artifacts)
    if cache.is_cached(folder, exp, "reach") and not _current(folder / "reach.json", run):
        shutil.rmtree(folder)

    def compute(d: Path) -> Reach:
        r = measure(run)
        r.save(d / "reach.json")
        return r

    measured, _ = cache.cached_stage(folder, exp, "reach", lambda d: Reach.load(d / "reach.json"), compute, tell)
    return measured


def _current(path: Path, run: "Run") -> bool:
    """Whether a stored reach was measured on this module's knob values and loss levels (False
    too for one this version cannot read)."""
    try:
        old = Reach.load(path)
    except ArtifactError:
        return False
    return old.knobs() == knobs(run) and all(set(c.reach) == set(LOSSES) for c in old.curves)


def measure(run: "Run") -> Reach:
    """Every family's curve and reach for one run, from the test split (reporting only)."""
    exp = run.experiment
    ctx = reporting.context(run)
    ref = ev.Reference.of(ctx)
    zoo = float(ctx.task.score(ref.preds, ctx.data.y_test).mean())
    R = len(run.flows)
    grid = knobs(run)
    n = max(8, exp.eval.n_baseline)
    ctx = replace(ctx, eval=replace(ctx.eval, n_baseline=n))

    def point(spec: PopulationSpec, r: int, std: float | None = None) -> tuple[float, float]:
        gens = None
        if std is not None:
            gens = {(None, None): generate(run.flows[r], run.pca, exp.arch,
                                           reporting.sample_spec(exp, r, n=n, source_std=std), ctx.data.x_train)}
        m = ev.measure(ctx, ref, spec, ev.build(ctx, spec, r, gens))
        return zoo - float(m.score.mean()), m.novelty

    turn = {"flow": (lambda p, r: point(PopulationSpec("generated"), r, p), False),   # (a point, from the members?)
            "noisy copies": (lambda p, r: point(PopulationSpec("noisy", sigma=p), r), True),
            "interpolations": (lambda p, r: point(PopulationSpec("interpolation", lam=p), r), True),
            "fitted Gaussian": (lambda p, r: point(PopulationSpec("code_gaussian", scale=p), r), False)}
    curves = []
    for family, (at, origin) in turn.items():
        params = grid[family]
        per_r = [[at(p, r) for p in params] for r in range(R)]                # [r][knob] (loss, novelty)
        reach = {lv: Interval.of([reach_at([x[0] for x in row], [x[1] for x in row], lv, origin)
                                  for row in per_r]) for lv in LOSSES}
        over_r = lambda i, j: Interval.of([row[i][j] for row in per_r])  # noqa: E731
        curves.append(Curve(family, params, [over_r(i, 0) for i in range(len(params))],
                            [over_r(i, 1) for i in range(len(params))], reach))
    return Reach(exp.members or exp.zoo.n_models, zoo, curves)


__all__ = ["FAMILIES", "LOSSES", "Curve", "Reach", "knobs", "measure", "reach_at", "stored"]
