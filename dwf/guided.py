"""Does the flow still gain anything once every generator may follow the training loss?

One recipe's flow nets and two trivial generators (noisy copies of the members and a Gaussian
fitted to their codes, `dwf.baselines`) are scored before and after the same loss guidance
(`dwf.guidance`), on the validation split only:

    flow                  its R replicates' nets, as `dwf.recipe.score` samples them
    noisy copies          the σ grid of `baselines.noisy_copies`, guided and not
    fitted Gaussian       the std grid of `baselines.fitted_gaussian`, guided and not

The guided flow counts as ahead of a curve where its validation gap's 95 % interval lies above the
best gap that curve attains at least as far from the members (`baselines.best_gap_from`), behind
where it lies below, and tied otherwise. Guidance lifting every generator alike leaves the flow
where it was against the guided curves; only a flow whose nets sit in places the loss rewards
more would pull ahead of them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
import torch

from . import archs, baselines, pipeline, plots, stacked
from .config import Experiment
from .guidance import Guidance, check, guide
from .interval import Interval
from .novelty import loo_median_nn, memorized_fraction, novelty, spread
from .recipe import Recipe
from .reporting import replicate_nets
from .task import task_for


@dataclass(frozen=True)
class Nets:
    """One generator's nets over replicates: distance from the members and validation gap."""
    novelty: Interval
    gap: Interval              # validation score − the fitting members' mean
    spread: Interval
    memorized: Interval


@dataclass(frozen=True)
class GuidedStudy:
    experiment: str
    n: int                                 # zoo size
    recipe: str
    guidance: Guidance
    flow: Nets                             # the flow's nets as sampled
    flow_guided: Nets                      # ... after guidance
    curves: dict[str, baselines.Curve]     # {"noisy copies": ..., "fitted Gaussian": ...} as drawn
    guided_curves: dict[str, baselines.Curve]   # ... the same populations after guidance
    seconds: float = float("nan")          # guiding one replicate's nets (all of them at once)

    def verdict(self, curve: baselines.Curve) -> str:
        """The guided flow against one curve (`baselines.standing`)."""
        return baselines.standing(self.flow_guided.gap, self.flow_guided.novelty.mean, curve)

    def markdown(self) -> str:
        g = self.guidance
        pp = lambda v: "—" if v is None else f"{100 * v:+.2f}"  # noqa: E731
        lines = [f"Loss guidance on {self.experiment} at N = {self.n}, recipe {self.recipe}: {g.steps} Adam steps "
                 f"(learning rate {g.lr:g}, {g.batch_size} training examples per step) on each net's PCA code "
                 "(`dwf.guidance`), applied alike to the flow's nets and to the trivial generators'; validation "
                 f"split (95 % intervals over flow replicates; the curves are one draw per point). Guiding one "
                 f"replicate's nets (all at once) took {self.seconds:.1f} s here.", "",
                 "| nets | validation gap (pp) | novelty | spread | memorized |", "|---|---|---|---|---|"]
        for name, nets in (("flow", self.flow), ("flow, guided", self.flow_guided)):
            lines.append(f"| {name} | {nets.gap.text(100, 2)} | {nets.novelty.text()} | {nets.spread.text()} | "
                         f"{nets.memorized.text(100, 0)} % |")
        lines += ["", "Each curve's best validation gap at least as novel as the guided flow's nets "
                  f"(novelty {self.flow_guided.novelty.mean:.3f}), and where the guided flow stands:", "",
                  "| curve | best gap there (pp) | guided flow |", "|---|---|---|"]
        named = [*self.curves.items(), *((f"{k}, guided", c) for k, c in self.guided_curves.items())]
        for name, curve in named:
            lines.append(f"| {name} | {pp(baselines.best_gap_from(curve, self.flow_guided.novelty.mean))} | "
                         f"{self.verdict(curve)} |")
        lines += ["", "The curves, point by point (novelty, validation gap in pp):", ""]
        for name, curve in named:
            lines.append(f"- {name}: " + ", ".join(f"({v:.3f}, {100 * gp:+.2f})" for v, gp in sorted(curve)))
        return "\n".join(lines)

    def figure(self) -> go.Figure:
        title = (f"Loss guidance on {self.experiment} at N = {self.n}, validation split<br><sup>{self.guidance.steps} "
                 f"steps on the codes, alike for every generator</sup>")
        return plots.generators(self.curves, [("flow", self.flow.novelty, self.flow.gap),
                                              ("flow, guided", self.flow_guided.novelty, self.flow_guided.gap)], title,
                                guided=self.guided_curves)


@dataclass(frozen=True)
class Scorer:
    """One run's fitting members and validation split, against which generated nets are scored."""
    run: pipeline.Run
    model: torch.nn.Module
    zoo_val: float            # the fitting members' mean validation score
    fit: torch.Tensor         # (n_fit, d) the fitting members' weights
    scale: float              # their leave-one-out median NN distance (novelty's unit; n_fit² d to compute)

    @classmethod
    def of(cls, e: Experiment, artifacts: str | Path, flows: bool = True) -> "Scorer":
        """The run of `e` up to its flows (fitted or loaded from the cache; without them, `flows=False`)."""
        run = pipeline.build(e, artifacts, progress=False, evaluate=False) if flows else pipeline.codes(e, artifacts)
        task, model = task_for(run.data), archs.build(e.arch)
        zoo_val = float(task.score(stacked.predict(model, run.fit.params, run.data.x_val, task=task),
                                   run.data.y_val).mean())
        fit = run.fit.vectors()
        return cls(run, model, zoo_val, fit, loo_median_nn(fit))

    def guided(self, V: torch.Tensor, guidance: Guidance) -> torch.Tensor:
        """The nets V (n, d) after `guidance` on the run's training split."""
        r = self.run
        return guide(V, r.pca, r.experiment.arch, r.data.x_train, r.data.y_train, task_for(r.data), guidance)

    def nets(self, populations: list[torch.Tensor]) -> Nets:
        """One generator's populations (one (n, d) per replicate) measured against the members."""
        gaps = [baselines.validation_gap(self.run, self.model, V, self.zoo_val) for V in populations]
        return Nets(Interval.of([novelty(V, self.fit, scale=self.scale) for V in populations]), Interval.of(gaps),
                    Interval.of([spread(V, self.fit, scale=self.scale) for V in populations]),
                    Interval.of([memorized_fraction(V, self.fit) for V in populations]))


def flow_nets(run: pipeline.Run) -> list[torch.Tensor]:
    """Each flow replicate's nets (n, d), sampled as `dwf.recipe.score` samples them."""
    return [g.vectors for g in replicate_nets(run)]


def study(exp: Experiment, recipe: Recipe, guidance: Guidance, artifacts: str | Path = "artifacts",
          log=None) -> GuidedStudy:
    """The comparison above for `recipe` on `exp` (its flows fitted or loaded from the cache); one
    line per population to `log` (a text stream) as it is scored."""
    check(exp.arch)
    sc = Scorer.of(recipe.apply(exp), artifacts)
    run = sc.run

    def done(what: str, t0: float) -> None:
        if log is not None:
            print(f"{run.experiment.name} guidance: {what} scored in {time.perf_counter() - t0:.0f} s", file=log,
                  flush=True)

    t0 = time.perf_counter()
    sampled = flow_nets(run)
    t1 = time.perf_counter()
    moved = [sc.guided(V, guidance) for V in sampled]
    seconds = (time.perf_counter() - t1) / len(sampled)
    flow, flow_guided = sc.nets(sampled), sc.nets(moved)
    done(f"the flow's nets ({len(sampled)} replicates, as sampled and guided)", t0)
    curves, guided_curves = {}, {}
    for name, curve in (("noisy copies", baselines.noisy_copies), ("fitted Gaussian", baselines.fitted_gaussian)):
        t0 = time.perf_counter()
        curves[name] = curve(run, sc.model, sc.zoo_val)
        guided_curves[name] = curve(run, sc.model, sc.zoo_val, transform=lambda V: sc.guided(V, guidance))
        done(f"{name} (as drawn and guided)", t0)
    return GuidedStudy(run.experiment.name, exp.members or exp.zoo.n_models, recipe.name, guidance, flow, flow_guided,
                       curves, guided_curves, seconds)


__all__ = ["GuidedStudy", "Nets", "Scorer", "flow_nets", "study"]
