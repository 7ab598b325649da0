"""A generator refit to its own guided nets, round after round, beside a Gaussian put through the same.

Loss guidance (`dwf.guidance`) lifts the flow's nets, but lifts a Gaussian's over the members'
codes as much (`dwf.guided`): what it adds is the training loss's. Here each generator also learns
from it. Round 0 is the generator fitted to the members' codes Z⁰; round j + 1 fits the same kind
of generator to the codes of M nets that round j drew at temperature τ and guidance then moved:

    Zʲ⁺¹ = codes(guide(decode(draw(Gʲ, M, τ)))),    Gʲ⁺¹ = fit(Zʲ⁺¹)

with M the number of fitting members (every round learns from as many codes as the first). At
τ = 1 (the default) a round fits the generator's own distribution pushed forward by guidance; τ < 1
(e.g. the recipe's sampling temperature) cools every round's draws, and the Gaussian's spread then
shrinks by τ per round. Two kinds go through the same rounds, guidance and τ:

    flow        the recipe's flow (its spec refit from a fresh seed); τ scales its source std
    Gaussian    mean and per-component std of the codes; τ scales the std

A flow can keep the shape of the set guidance leads to; a Gaussian keeps only its first two
moments. So where the refit flow's nets are better than the refit Gaussian's at the same novelty,
the gain is the flow's own. Both kinds are scored at round 0 and at the last round, at each
temperature of `TEMPERATURES`, as drawn and after guidance, over R replicate chains (chain r starts
from the recipe's flow replicate r and draws from its own seeds), on the validation split only.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import plotly.graph_objects as go
import torch

from . import baselines, flow as flow_mod, plots, recipe as recipe_mod
from .config import Experiment
from .errors import ConfigError, DwfError
from .flow import Flow
from .guidance import Guidance, check
from .guided import Nets, Scorer
from .interval import Interval
from .novelty import novelty
from .pca import DualPCA
from .recipe import Recipe

KINDS = ("flow", "Gaussian")
TARGET_LOSS = 0.003                # the moonshot's 0.3 pp
TEMPERATURES = (0.4, 0.7, 1.0)     # scored at round 0 and the last round (1: the generator's own spread)


@dataclass(frozen=True)
class Refit:
    rounds: int = 2             # refits after the first fit: the last round is G^rounds
    temperature: float = 1.0    # τ of every round's draws (1: the generator's own distribution)

    def __post_init__(self):
        if self.rounds < 1 or self.rounds != int(self.rounds):
            raise ConfigError(f"refit rounds must be a whole number >= 1, got {self.rounds!r}")
        if not self.temperature > 0:
            raise ConfigError(f"the refit temperature must be > 0, got {self.temperature!r}")


class Sampler(Protocol):
    def draw(self, n: int, temperature: float, seed: int) -> torch.Tensor: ...    # (n, k) codes


class Generator(Sampler, Protocol):
    def refit(self, Z: torch.Tensor, seed: int) -> "Generator": ...                # the same kind fitted to Z (M, k)


@dataclass(frozen=True)
class FlowGenerator:
    flow: Flow
    exp: Experiment               # its sampling spec (ODE steps and solver) and flow spec

    def draw(self, n: int, temperature: float, seed: int) -> torch.Tensor:
        s = self.exp.sample
        Z = self.flow.sample(n, steps=s.steps, method=s.method, generator=torch.Generator().manual_seed(seed),
                             source_std=temperature * self.flow.spec.source_std)
        if not torch.isfinite(Z).all():
            raise DwfError("a refit flow's samples hold NaN or inf: it diverged; use fewer rounds or a lower "
                           "guidance learning rate")
        return Z

    def refit(self, Z: torch.Tensor, seed: int) -> "FlowGenerator":
        return FlowGenerator(flow_mod.fit(Z, dataclasses.replace(self.exp.flow, seed=seed), progress=False), self.exp)


@dataclass(frozen=True)
class GaussianGenerator:
    codes: torch.Tensor           # (M, k) the codes it was fitted to

    def draw(self, n: int, temperature: float, seed: int) -> torch.Tensor:
        mu, sd = self.codes.mean(0), self.codes.std(0)                                   # (k,), (k,)
        return mu + temperature * sd * torch.randn(n, len(mu), generator=torch.Generator().manual_seed(seed))

    def refit(self, Z: torch.Tensor, seed: int) -> "GaussianGenerator":
        return GaussianGenerator(Z)


def chain(g: Generator, rounds: int, M: int, temperature: float, pca: DualPCA, guided: baselines.Transform,
          seed: int) -> Generator:
    """G^rounds from G⁰ = g: each round draws M codes at `temperature`, decodes them, guides the nets
    (`guided`: nets (M, d) -> nets (M, d)) and refits the generator to their codes."""
    for j in range(1, rounds + 1):
        nets = guided(pca.inverse_transform(g.draw(M, temperature, seed + 1000 * j)))   # (M, d)
        g = g.refit(pca.transform(nets), seed + 1000 * j)
    return g


def on_target(n: Nets, floor: float) -> bool:
    """The numbers the moonshot asks of generated nets: novelty measured above `floor`, the
    fitting members' own novelty through encode → decode."""
    return (n.gap.lo >= -TARGET_LOSS and n.novelty.mean - floor >= recipe_mod.NEW
            and n.memorized.mean <= recipe_mod.MEMORIZED and n.spread.mean >= recipe_mod.SPREAD)


@dataclass(frozen=True)
class Row:
    kind: str                   # "flow" or "Gaussian"
    round: int
    temperature: float
    guided: bool                # scored after guidance
    nets: Nets


@dataclass(frozen=True)
class RefitStudy:
    experiment: str
    n: int                      # zoo size
    recipe: str
    guidance: Guidance
    refit: Refit
    rows: tuple[Row, ...]
    floor: float                # novelty of the fitting members through encode → decode
    seconds: float = float("nan")   # one chain's refits (all rounds), flow and Gaussian together

    def curve(self, kind: str, round: int, guided: bool) -> baselines.Curve:
        """(novelty, gap) means over replicates across the temperatures."""
        return tuple((r.nets.novelty.mean, r.nets.gap.mean) for r in self.rows
                     if (r.kind, r.round, r.guided) == (kind, round, guided))

    def verdict(self, row: Row) -> str:
        """A row against the other kind's curve of its round, guided alike (`baselines.standing`)."""
        other = next(k for k in KINDS if k != row.kind)
        return baselines.standing(row.nets.gap, row.nets.novelty.mean, self.curve(other, row.round, row.guided))

    def markdown(self) -> str:
        g = self.guidance
        lines = [f"A generator refit to its own guided nets on {self.experiment} at N = {self.n}, recipe "
                 f"{self.recipe} (`dwf.refit`): {self.refit.rounds} rounds, each drawing as many nets as the zoo "
                 f"has fitting members at temperature {self.refit.temperature:g}, guiding them ({g.steps} Adam steps, "
                 f"learning rate {g.lr:g}, {g.batch_size} examples per step) and refitting to their codes; the "
                 "flow and the Gaussian over the codes go through the same rounds. Validation split; 95 % intervals "
                 f"over {self.rows[0].nets.gap.n} chains. One chain's refits took {self.seconds:.0f} s here.", "",
                 "| generator | round | temperature | guided | validation gap (pp) | novelty | spread | memorized "
                 "| against the other kind |", "|---|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            n = r.nets
            lines.append(f"| {r.kind} | {r.round} | {r.temperature:g} | {'yes' if r.guided else 'no'} | "
                         f"{n.gap.text(100, 2)} | {n.novelty.text()} | {n.spread.text()} | {n.memorized.text(100, 0)} % | "
                         f"{self.verdict(r)} |")
        meets = [r for r in self.rows if on_target(r.nets, self.floor)]
        lines += ["", "Rows on the target (gap interval within 0.3 pp, novelty ≥ 0.5 above the floor of "
                  f"{self.floor:.3f}, memorized ≤ 10 %, spread ≥ 0.5): "
                  + (", ".join(f"{r.kind}, round {r.round} at temperature {r.temperature:g}{', guided' if r.guided else ''}"
                               for r in meets) or "none") + "."]
        return "\n".join(lines)

    def figure(self) -> go.Figure:
        curves: dict[tuple[str, int, bool], list[tuple[Interval, Interval]]] = {}
        for r in self.rows:
            curves.setdefault((r.kind, r.round, r.guided), []).append((r.nets.novelty, r.nets.gap))
        return plots.refit_rounds(curves, f"Refit to guided nets on {self.experiment} at N = {self.n}, validation "
                                  f"split<br><sup>{self.refit.rounds} rounds at temperature {self.refit.temperature:g}; "
                                  "points: temperatures " + ", ".join(f"{t:g}" for t in TEMPERATURES) + "</sup>")


def study(exp: Experiment, recipe: Recipe, guidance: Guidance, refit: Refit, artifacts: str | Path = "artifacts",
          log=None) -> RefitStudy:
    """The study above for `recipe` on `exp`; one line per chain and per scored round to `log`."""
    check(exp.arch)
    sc = Scorer.of(recipe.apply(exp), artifacts)
    run, e = sc.run, sc.run.experiment
    tau, M = refit.temperature, run.codes.shape[0]

    def guided(V: torch.Tensor) -> torch.Tensor:
        return sc.guided(V, guidance)

    def say(what: str, t0: float) -> None:
        if log is not None:
            print(f"{e.name} refit: {what} in {time.perf_counter() - t0:.0f} s", file=log, flush=True)

    starts = {"flow": [FlowGenerator(f, e) for f in run.flows], "Gaussian": [GaussianGenerator(run.codes)] * len(run.flows)}
    rounds = {0: starts, refit.rounds: {k: [] for k in KINDS}}
    t0 = time.perf_counter()
    for r in range(len(run.flows)):
        for kind in KINDS:
            rounds[refit.rounds][kind].append(chain(starts[kind][r], refit.rounds, M, tau, run.pca, guided,
                                                    e.flow.seed + 7919 * (r + 1)))
        say(f"chain {r + 1}/{len(run.flows)} refit {refit.rounds} times", t0)
    seconds = (time.perf_counter() - t0) / len(run.flows)
    rows = []
    for j, gens in rounds.items():
        t1 = time.perf_counter()
        for kind in KINDS:
            for temp in TEMPERATURES:
                drawn = [run.pca.inverse_transform(g.draw(e.sample.n, temp, e.sample.seed + r)) for r, g in enumerate(gens[kind])]
                rows.append(Row(kind, j, temp, False, sc.nets(drawn)))
                rows.append(Row(kind, j, temp, True, sc.nets([guided(V) for V in drawn])))
        say(f"round {j} scored", t1)
    return RefitStudy(e.name, exp.members or exp.zoo.n_models, recipe.name, guidance, refit, tuple(rows),
                      novelty(run.pca.inverse_transform(run.codes), sc.fit, scale=sc.scale), seconds)


__all__ = ["FlowGenerator", "GaussianGenerator", "KINDS", "Refit", "RefitStudy", "Row", "Sampler", "TEMPERATURES", "chain", "on_target",
           "study"]
