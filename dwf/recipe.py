"""Flow recipes: what plausibly moves a flow from copying its zoo toward generating new nets, and
a sweep that chooses among them without the test split.

A `Recipe` names a change to an experiment's PCA, flow and sampling (each field None: keep the
experiment's; a temperature τ samples the same kind of flow from N(0, (τ s_train)² I)), or to
how its zoo is trained: a zoo learning rate or epoch count other than the experiment's makes
another zoo, so an experiment of its own name (`<name>-zoo-lr<f>x`, `-ep<e>x`;
same seeds and data order), whose nets are compared with its own members. The sweep fits every
recipe (R flow replicates, own seeds, cached as variants `recipe-<name>`) and scores what selection
may see:

    val_gap     mean validation score of its generated nets − the fitting members'   (criterion)
    novelty     of its nets against the fitting members (a copy scores 0), and the floor: the
                fitting members' own novelty after PCA encode → decode (0 when k = n − 1)
    novelty_ho  against the held-out members (a net as new as a member scores ≈ 1)
    memorized   share of its nets far closer to one fitting member than to any other
    radius      their distance to the fitting members' centroid over the members' own (copies and
                new members ≈ 1; nets blended toward the members' average < 1), beside the
                centroid's own validation gap (what full blending costs) and the members' own
                validation score (a zoo recipe must not buy its gap with worse members)
    spread      the nets' median nearest-neighbour distance among themselves over the members'
                (a flow collapsed onto a few points, or onto their average, scores ≪ 1)
    val_loss    the flow's held-out loss on codes it was not fitted on
    baselines   the validation gap of noisy copies, of a Gaussian fitted to the codes and of the
                members' aligned crossover at the recipe's novelty (`dwf.baselines`): the trivial
                generators its nets must beat

and chooses, among the recipes whose nets are new (novelty − floor ≥ `NEW`, memorized ≤ `MEMORIZED`,
spread ≥ `SPREAD`: many new nets, not one)
and still work (mean validation gap ≥ −`MAX_LOSS`), the one with the best validation gap; the
experiment's own recipe when none qualifies. The test split stays locked throughout (`dwf.data`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import plotly.graph_objects as go

from . import archs, baselines, pipeline, plots, stacked
from .config import Experiment
from .errors import ConfigError
from .interval import Interval
from .novelty import loo_median_nn, memorized_fraction, novelty, radius, spread
from .progress import StageLog
from .reporting import replicate_nets
from .sample import states
from .task import task_for
from .zoo import split

NEW = 0.5          # the target's novelty (issue: ≥ 0.5 above the encode → decode floor)
MEMORIZED = 0.1    # the target's memorized share
SPREAD = 0.5       # the target's spread (of the members'): below it the nets crowd onto a few points
MAX_LOSS = 0.01    # the largest mean validation loss a chosen recipe may have: 1 pp (0.01 ρ); the target is 0.3 pp


@dataclass(frozen=True)
class Recipe:
    """A named change to the PCA, flow and sampling of an experiment (None: the experiment's)."""
    name: str
    hidden: int | None = None            # velocity-net width
    steps: int | None = None             # training steps
    batch_size: int | None = None
    dropout: float | None = None
    weight_decay: float | None = None
    standardize: bool | None = None      # codes divided by their per-component std
    source_std: float | None = None      # training-time source std (sampling uses the same)
    n_components: int | None = None      # PCA dimension k (None: the experiment's, n − 1)
    ode_steps: int | None = None         # solver steps per sample
    temperature: float | None = None     # sampling source std over the training one (< 1: colder samples; same flow)
    snapshot: str | None = None          # "best" held-out flow loss (early stopping) or "last" EMA weights
    zoo_lr_factor: float | None = None   # the zoo trained at this multiple of the experiment's learning rate
    zoo_epochs_factor: int | None = None  # ... for this multiple of its epochs

    def applies(self, exp: Experiment) -> bool:
        """Whether the recipe can run on `exp`: a PCA dimension k needs more than k fitting members."""
        n = exp.members or exp.zoo.n_models
        n_fit = len(split(n, exp.pca.held_out, exp.zoo.seed)[0])
        return self.n_components is None or self.n_components <= n_fit - 1

    def apply(self, exp: Experiment) -> Experiment:
        """The experiment with this recipe, as its own variant (shares the zoo and alignment; a
        variant's recipe, e.g. one size of the scaling study, keeps that variant's name in front);
        a zoo recipe renames the experiment instead, as its zoo is another."""
        flow = {f: getattr(self, f) for f in ("hidden", "steps", "batch_size", "dropout", "weight_decay",
                                              "standardize", "source_std", "snapshot") if getattr(self, f) is not None}
        pca = dataclasses.replace(exp.pca, n_components=self.n_components) if self.n_components else exp.pca
        sample = dataclasses.replace(exp.sample, steps=self.ode_steps) if self.ode_steps else exp.sample
        if self.source_std is not None:
            sample = dataclasses.replace(sample, source_std=None)   # sample at the training std
        if self.temperature is not None:
            if not self.temperature > 0:
                raise ConfigError(f"recipe {self.name}: the temperature (sampling source std over the training "
                                  f"one) must be > 0, got {self.temperature:g}")
            sample = dataclasses.replace(sample, source_std=self.temperature * flow.get("source_std", exp.flow.source_std))
        if self.zoo_lr_factor is not None or self.zoo_epochs_factor is not None:
            exp = self._zoo(exp)
        if not (flow or self.n_components or self.ode_steps or self.temperature):
            return exp
        name = f"{exp.variant}-recipe-{self.name}" if exp.variant else f"recipe-{self.name}"
        return exp.ablation(name, flow=dataclasses.replace(exp.flow, **flow), pca=pca,
                            sample=sample)

    def _zoo(self, exp: Experiment) -> Experiment:
        """Another zoo: another experiment, in its own folders, named by what changed
        (`<name>-zoo-lr3x`, `<name>-zoo-lr3x-ep3x`)."""
        lr = 1.0 if self.zoo_lr_factor is None else self.zoo_lr_factor
        ep = 1 if self.zoo_epochs_factor is None else self.zoo_epochs_factor
        if lr <= 0 or ep < 1 or ep != int(ep):
            raise ConfigError(f"recipe {self.name}: the zoo's learning-rate factor must be > 0 and its epoch "
                              f"factor a whole number ≥ 1 (got {lr:g} and {ep:g})")
        suffix = "".join([f"-lr{lr:g}x" if self.zoo_lr_factor is not None else "",
                          f"-ep{int(ep)}x" if self.zoo_epochs_factor is not None else ""])
        zoo = dataclasses.replace(exp.zoo, lr=exp.zoo.lr * lr, epochs=exp.zoo.epochs * int(ep))
        return dataclasses.replace(exp, name=f"{exp.name}-zoo{suffix}", zoo=zoo)


PAPER = Recipe("paper")
# At N = 1024 the paper's recipe stops early: the held-out flow loss is lowest at the first check
# (step 500) and rises after, so the returned flow is barely trained. Every other candidate keeps
# training to the end ("last"), one hypothesis each.
CANDIDATES = (
    PAPER,
    Recipe("last", snapshot="last"),                                      # no early stopping
    Recipe("long", steps=24_000, snapshot="last"),                        # more training
    Recipe("batch64", batch_size=64, snapshot="last"),                    # 8x the codes per step
    Recipe("wide", hidden=2048, snapshot="last"),                         # a velocity net narrower than k?
    Recipe("whitened", standardize=True, source_std=1.0, snapshot="last"),  # whitened codes, N(0, I) source
    Recipe("k256", n_components=256, snapshot="last"),                    # fewer, better-determined directions
    Recipe("k512", n_components=512, snapshot="last"),                    # ... a lower encode -> decode floor
    Recipe("dropout", dropout=0.4, snapshot="last"),                      # a regularized velocity net
    Recipe("decay", weight_decay=1e-2, snapshot="last"),                  # (the paper: dropout 0.1, decay 1e-5)
    Recipe("source0.1", source_std=0.1, snapshot="last"),                 # a 10x wider source while training
    Recipe("ode400", ode_steps=400),                                      # the paper's flow, a finer ODE solve
    Recipe("t0.5", temperature=0.5),                                      # colder samples: the source std
    Recipe("t0.4", temperature=0.4),                                      # ... times 0.5 or 0.4 when sampling
    Recipe("zoo-lr3x", zoo_lr_factor=3.0),                                # flatter members: a lower barrier?
    Recipe("zoo-lr10x", zoo_lr_factor=10.0),
    Recipe("zoo-lr3x-ep3x", zoo_lr_factor=3.0, zoo_epochs_factor=3),      # ... trained to convergence at that rate
)


def named(names: Sequence[str]) -> list[Recipe]:
    """The candidates of these names, in the order given; "a+b" is candidates a and b at once
    (e.g. "zoo-lr3x+whitened": the whitened flow on the 3x zoo), as `combined`."""
    known = {r.name: r for r in CANDIDATES}
    parts = [[p.strip() for p in n.split("+")] for n in names]
    unknown = [p for ps in parts for p in ps if p not in known]
    if unknown:
        raise ConfigError(f"unknown recipes {unknown}; choose from {list(known)}, or join two with '+'")
    return [combined([known[p] for p in ps]) for ps in parts]


def combined(recipes: Sequence[Recipe]) -> Recipe:
    """One recipe making every change of `recipes`, named "a+b"; refused when two of them set one
    field to different values."""
    changes: dict[str, object] = {}
    for rc in recipes:
        for f in dataclasses.fields(Recipe):
            v = getattr(rc, f.name)
            if f.name == "name" or v is None:
                continue
            if changes.setdefault(f.name, v) != v:
                raise ConfigError(f"recipes {' and '.join(r.name for r in recipes)} both set {f.name} "
                                  f"({changes[f.name]!r} and {v!r}); combine recipes that change different things")
    return recipes[0] if len(recipes) == 1 else Recipe("+".join(r.name for r in recipes), **changes)


@dataclass(frozen=True)
class Scored:
    recipe: Recipe
    val_gap: Interval          # generated − fitting members, validation split
    novelty: Interval
    floor: float               # novelty of the fitting members through encode → decode
    novelty_held_out: Interval
    memorized: Interval
    val_loss: Interval
    radius: Interval
    centroid_gap: float        # validation gap of the fitting members' mean net
    zoo_val: float = math.nan  # the fitting members' mean validation score
    noisy: baselines.Curve = ()      # (novelty, validation gap) of noisy copies (`baselines.noisy_copies`)
    gaussian: baselines.Curve = ()   # ... of the fitted Gaussian over the codes (`baselines.fitted_gaussian`)
    spread: Interval | None = None   # None: scored before spread was measured
    crossover: baselines.Curve = ()  # ... of the members' aligned crossover (`baselines.crossovers`; () for transformers)

    @property
    def noisy_gap(self) -> float | None:
        """The best validation gap of noisy copies at least as novel as this recipe's nets (None:
        none that novel): what the trivial generator loses for as much novelty."""
        return baselines.best_gap_from(self.noisy, self.novelty.mean)

    @property
    def gaussian_gap(self) -> float | None:
        """The same for the fitted Gaussian over the codes."""
        return baselines.best_gap_from(self.gaussian, self.novelty.mean)

    @property
    def crossover_gap(self) -> float | None:
        """The same for the members' aligned crossover."""
        return baselines.best_gap_from(self.crossover, self.novelty.mean)

    @property
    def new(self) -> bool:
        return (self.novelty.mean - self.floor >= NEW and self.memorized.mean <= MEMORIZED
                and (self.spread is None or self.spread.mean >= SPREAD))

    @property
    def works(self) -> bool:
        return self.val_gap.mean >= -MAX_LOSS


@dataclass(frozen=True)
class Sweep:
    experiment: str
    n: int                     # zoo size
    scored: list[Scored]
    chosen: str
    skipped: tuple[str, ...] = ()   # recipes that do not apply at this size (`Recipe.applies`)
    omitted: tuple[str, ...] = ()   # candidates this sweep was not asked to run

    def markdown(self) -> str:
        lines = [f"Recipes for {self.experiment} at N = {self.n}, scored on the validation split (95 % "
                 f"intervals over flow replicates; the test split is locked). New: novelty above the "
                 f"encode → decode floor ≥ {NEW:g}, memorized ≤ {MEMORIZED:.0%} and spread ≥ {SPREAD:g}; works: mean validation "
                 f"gap ≥ −{100 * MAX_LOSS:g} pp; chosen: the best validation gap among recipes that are new and "
                 "work, else the experiment's own. The held-out flow loss is in each flow's own units (a "
                 "recipe on standardized codes, or on another zoo, is not comparable with the others). Radius: distance to the "
                 "fitting members' centroid over the members' own (copies and new members ≈ 1, nets blended "
                 "toward the members' average < 1); centroid: the validation gap of the members' mean net; "
                 "members: the fitting members' own validation score, which every gap is measured from (a "
                 "zoo recipe trains other members); spread: the nets' median nearest-neighbour distance "
                 "among themselves over the members' (≪ 1: collapsed, or blended toward one point); noisy "
                 "copies, fitted Gaussian and crossover: the best validation gap of noisy copies of the same members, "
                 "of a Gaussian fitted to their codes and of the members' aligned crossover (each unit from a random "
                 "member, blended toward the members' mean; not defined for transformers), at least as novel as the "
                 "recipe's nets (on a σ, a std and a blend grid, linear between points; — none that novel): the "
                 "generated nets beat them where their own gap is higher.", "",
                 "| recipe | validation gap (pp) | novelty | floor | held-out novelty | memorized | radius | spread | "
                 "held-out flow loss | new | works | centroid (pp) | members | noisy copies (pp) | fitted Gaussian (pp) | "
                 "crossover (pp) |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in self.scored:
            mark = " (chosen)" if s.recipe.name == self.chosen else ""
            pp = lambda v: "—" if v is None else f"{100 * v:+.2f}"  # noqa: E731
            lines.append(f"| {s.recipe.name}{mark} | {s.val_gap.text(100, 2)} | {s.novelty.text()} | {s.floor:.3f} | "
                         f"{s.novelty_held_out.text()} | {s.memorized.text(100, 0)} % | {s.radius.text()} | "
                         f"{'—' if s.spread is None else s.spread.text()} | {s.val_loss.text(1, 4)} | "
                         f"{'yes' if s.new else 'no'} | {'yes' if s.works else 'no'} | "
                         f"{100 * s.centroid_gap:+.2f} | {s.zoo_val:.4f} | {pp(s.noisy_gap)} | {pp(s.gaussian_gap)} | "
                         f"{pp(s.crossover_gap)} |")
        if self.chosen not in {s.recipe.name for s in self.scored}:
            lines += ["", f"None of these recipes is new and works: the experiment keeps its own ({self.chosen})."]
        if self.skipped:
            lines += ["", f"Not run at N = {self.n} (a PCA dimension k needs more than k fitting members): "
                      + ", ".join(self.skipped) + "."]
        if self.omitted:
            lines += ["", "Not asked for in this sweep (`--recipes`): " + ", ".join(self.omitted) + "."]
        return "\n".join(lines)

    def figure(self) -> go.Figure:
        """Each recipe's nets beside the trivial generators' curves of the first recipe (its members
        and codes); recipes on another zoo, whose gaps count from other members, are named, not drawn."""
        base = self.scored[0]
        same = [s for s in self.scored if s.zoo_val == base.zoo_val]
        others = [s.recipe.name for s in self.scored if s.zoo_val != base.zoo_val]
        title = (f"Recipes for {self.experiment} at N = {self.n}, validation split<br><sup>the Gaussian is "
                 f"fitted to {base.recipe.name}'s codes" + ("; on another zoo, not drawn: " + ", ".join(others)
                                                            if others else "") + "</sup>")
        curves = {"noisy copies": base.noisy, "fitted Gaussian": base.gaussian,
                  "crossover": base.crossover}
        return plots.generators({k: v for k, v in curves.items() if v},
                                [(s.recipe.name, s.novelty, s.val_gap) for s in same], title)


def score(exp: Experiment, recipe: Recipe, artifacts: str | Path = "artifacts", log=None) -> Scored:
    """Fit (cached) and score one recipe on validation data and distances only. With a `log`
    stream, each stage's time is a line there as it ends and the zoo and flows show progress bars
    (a large zoo trains for an hour)."""
    e = recipe.apply(exp)
    stages = StageLog(f"{e.name} N={e.members or e.zoo.n_models} {recipe.name}", log) if log is not None else None
    run = pipeline.build(e, artifacts, progress=log is not None, evaluate=False, on_stage=stages)
    if stages is not None:
        stages.done()
    task, model = task_for(run.data), archs.build(e.arch)
    zoo_val = float(task.score(stacked.predict(model, run.fit.params, run.data.x_val, task=task),
                               run.data.y_val).mean())
    fit, held = run.fit.vectors(), run.held_out.vectors() if run.held_out is not None else None
    unit = loo_median_nn(fit)                      # novelty's units, computed once (n² d each)
    held_unit = loo_median_nn(held) if held is not None else None
    gaps, nov, nov_ho, mem, losses, rad, spr = [], [], [], [], [], [], []
    for f, gen in zip(run.flows, replicate_nets(run)):
        preds = stacked.predict(model, gen.params, run.data.x_val, task=task)
        gaps.append(float(task.score(preds, run.data.y_val).mean()) - zoo_val)
        nov.append(novelty(gen.vectors, fit, scale=unit))
        nov_ho.append(novelty(gen.vectors, held, scale=held_unit) if held is not None else math.nan)
        mem.append(memorized_fraction(gen.vectors, fit))
        rad.append(radius(gen.vectors, fit))
        spr.append(spread(gen.vectors, fit, scale=unit))
        losses.append(float(f.history.get("best_val_loss", math.nan)))
    floor = novelty(run.pca.inverse_transform(run.codes), fit, scale=unit)
    centroid = states(e.arch, fit.mean(0, keepdim=True), x_train=run.data.x_train,   # the members' mean net
                      bn_samples=e.sample.bn_samples)                                # (BatchNorm recalibrated)
    centroid_gap = float(task.score(stacked.predict(model, centroid, run.data.x_val, task=task),
                                    run.data.y_val).mean()) - zoo_val
    return Scored(recipe, Interval.of(gaps), Interval.of(nov), floor,
                  *(Interval.of(v) for v in (nov_ho, mem, losses, rad)), centroid_gap, zoo_val,
                  baselines.noisy_copies(run, model, zoo_val), baselines.fitted_gaussian(run, model, zoo_val),
                  Interval.of(spr), baselines.crossovers(run, model, zoo_val))


def sweep(exp: Experiment, recipes: Sequence[Recipe] = CANDIDATES, artifacts: str | Path = "artifacts",
          log=None) -> Sweep:
    """Every recipe on `exp` (e.g. one size of the scaling study), the choice by the rule above."""
    scored, skipped = [], tuple(rc.name for rc in recipes if not rc.applies(exp))
    for rc in recipes:
        if not rc.applies(exp):
            continue
        scored.append(score(exp, rc, artifacts, log))
        if log is not None:
            s = scored[-1]
            print(f"{exp.name} N={exp.members or exp.zoo.n_models} recipe {rc.name}: validation gap "
                  f"{s.val_gap.text(100, 2)} pp, novelty {s.novelty.text()}, memorized {s.memorized.text(100, 0)} %",
                  file=log, flush=True)
    asked = {part for rc in recipes for part in rc.name.split("+")}   # a joined recipe runs its parts' changes
    return Sweep(exp.name, exp.members or exp.zoo.n_models, scored, choose(scored), skipped,
                 tuple(c.name for c in CANDIDATES if c.name not in asked))


def choose(scored: Sequence[Scored]) -> str:
    """The rule: the best validation gap among recipes that are new and work; else the
    experiment's own (`PAPER`, whether or not this sweep ran it)."""
    good = [s for s in scored if s.new and s.works]
    return max(good, key=lambda s: s.val_gap.mean).recipe.name if good else PAPER.name


__all__ = ["CANDIDATES", "MAX_LOSS", "PAPER", "Recipe", "Scored", "Sweep", "choose", "combined", "named", "score",
           "sweep"]
