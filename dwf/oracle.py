"""Could a better model of the leading PCA codes beat the fitted Gaussian? An oracle asks.

Split each member's code z ∈ ℝᴷ into its head h (the k leading components, most of the members'
variance) and its tail r (the K − k others). With M ≈ K fitting members no density model can learn
more of the tail than its mean and variance; over a short head (k ≪ M) a flow could learn more.
What would a perfect model of the head gain? The oracle answers by drawing the head from the
members' own heads exactly, the distribution such a model would reproduce, and the tail from the
fitted Gaussian, all that M members say of it. Only the tail is cooled to τ; a head is drawn at
the size a new member's head has:

    Gaussian        z = μ + τ σ ⊙ ε                                 (the fitted Gaussian at τ, the reference curve)
    Gaussian head   z = (μ_h + s σ_h ⊙ ε_h,  μ_r + τ σ_r ⊙ ε_r)      (what the head's mean and variance alone give)
    oracle k        z = (h_i, μ_r + τ σ_r ⊙ ε_r),   i a random fitting member
    held-out k      z = (h_j, μ_r + τ σ_r ⊙ ε_r),   j a random held-out member (its code by the same PCA)
    marginals k     z = ((h_{j_1,1}, …, h_{j_k,k}), μ_r + τ σ_r ⊙ ε_r),   each component from its own random held-out member
    flow k          z = (h ~ a flow fitted to the heads at source std × s,  μ_r + τ σ_r ⊙ ε_r)

(μ, σ: the codes' per-component mean and std; the flow is the recipe's flow spec, one per replicate.)
A held-out member's code is its projection on the fitting members' span, shorter than theirs where
that span misses much of a new member (few members, or k beyond the directions they pin down): s
is the held-out heads' rms over the fitting heads' (about their mean; 1 without held-out members),
so the Gaussian head has the very size of the held-out heads and differs from them in shape alone.
Every generator is scored at each temperature τ of `TEMPERATURES` over R replicate draws on the
validation split, and every other row is placed against the Gaussian's curve
(`baselines.standing`). Cooling the tail but not the head already moves a Gaussian off its own
curve (the members vary least, and the loss is sharpest, along the trailing components), so the
*Gaussian head* rows are the control: a head model is worth what it gains over them at the same
k (same tail, same size of head). The oracle copies its heads, and a model that copies is not what
is wanted: the held-out rows draw heads from members no generator saw, samples of the very
distribution the fitting members come from, so they are what a perfect *generalizing* model of the
heads would draw, and the flow rows how much of it a flow fitted to M heads realizes. The marginals
rows keep every component's distribution over the held-out heads exactly and break the dependence
between components: held-out heads ahead of them owe their lead to how the components go together,
which no per-component model (and no Gaussian, the components being uncorrelated) can hold.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import plotly.graph_objects as go
import torch

from . import baselines, flow as flow_mod, plots
from .config import Experiment
from .errors import ConfigError
from .guided import Nets, Scorer
from .interval import Interval
from .recipe import Recipe
from .refit import FlowGenerator, GaussianGenerator, Sampler

TEMPERATURES = (0.25, 0.4, 0.55, 0.7, 1.0)
GENERATORS = ("Gaussian", "Gaussian head", "oracle", "held-out", "marginals", "flow")


@dataclass(frozen=True)
class AtSize:
    """A head model drawn at temperature `size` whatever the tail's."""
    model: Sampler
    size: float

    def draw(self, n: int, temperature: float, seed: int) -> torch.Tensor:
        return self.model.draw(n, self.size, seed)


@dataclass(frozen=True)
class Copies:
    """The members' own codes, drawn with replacement (a temperature has nothing to scale)."""
    codes: torch.Tensor           # (M, k)

    def draw(self, n: int, temperature: float, seed: int) -> torch.Tensor:
        return self.codes[torch.randint(len(self.codes), (n,), generator=torch.Generator().manual_seed(seed))]


@dataclass(frozen=True)
class Marginals:
    """Each component from its own random row of `codes`: the components' distributions kept
    exactly, their dependence broken (a temperature has nothing to scale)."""
    codes: torch.Tensor           # (M, k)

    def draw(self, n: int, temperature: float, seed: int) -> torch.Tensor:
        rows = torch.randint(len(self.codes), (n, self.codes.shape[1]), generator=torch.Generator().manual_seed(seed))
        return torch.gather(self.codes, 0, rows)                                      # (n, k)


def with_tail(head: Sampler, codes: torch.Tensor, k: int, n: int, temperature: float, seed: int) -> torch.Tensor:
    """(n, K) codes: the k leading drawn by `head` as it is (temperature 1), the other K − k by the
    Gaussian over the codes (M, K) at `temperature` (k = 0: the Gaussian's own draws, same seed)."""
    tail = GaussianGenerator(codes[:, k:]).draw(n, temperature, seed)                 # (n, K - k)
    return tail if k == 0 else torch.cat([head.draw(n, 1.0, seed + 1), tail], 1)


def check_heads(ks: Sequence[int], K: int) -> None:
    if not ks or any(k != int(k) or not 0 < k < K for k in ks):
        raise ConfigError(f"--k takes head sizes between 1 and {K - 1} (this run's codes have K = {K} components), "
                          f"got {list(ks)}")


@dataclass(frozen=True)
class Row:
    generator: str                # one of GENERATORS
    k: int                        # the head's components (0 for the Gaussian: it draws every one)
    temperature: float
    nets: Nets


@dataclass(frozen=True)
class OracleStudy:
    experiment: str
    n: int                        # zoo size
    recipe: str
    K: int                        # code components
    rows: tuple[Row, ...]
    seconds: float = float("nan")   # fitting one head flow
    head_scale: tuple[tuple[int, float], ...] = ()   # (k, s): held-out heads' rms / fitting heads' rms, about their mean

    def curve(self, generator: str, k: int = 0) -> baselines.Curve:
        """(novelty, gap) means over replicates across the temperatures."""
        return tuple((r.nets.novelty.mean, r.nets.gap.mean) for r in self.rows if (r.generator, r.k) == (generator, k))

    def verdict(self, row: Row) -> str:
        """A row against the Gaussian's curve (`baselines.standing`); "—" for the Gaussian itself."""
        return "—" if row.generator == "Gaussian" else baselines.standing(row.nets.gap, row.nets.novelty.mean,
                                                                            self.curve("Gaussian"))

    def against_control(self, row: Row) -> str:
        """A head model's row against the Gaussian head's curve at the same k; "—" for the two Gaussians."""
        return "—" if row.generator in ("Gaussian", "Gaussian head") else baselines.standing(
            row.nets.gap, row.nets.novelty.mean, self.curve("Gaussian head", row.k))

    def markdown(self) -> str:
        lines = [f"The leading-codes oracle on {self.experiment} at N = {self.n}, recipe {self.recipe} (`dwf.oracle`): "
                 f"of each code's K = {self.K} components the k leading are drawn from the Gaussian fitted to the "
                 "fitting members' heads (Gaussian head, the control), from the members' own (oracle), from the "
                 "held-out members' own (held-out), each component from its own held-out member (marginals) or from "
                 "a flow fitted to the fitting members' (the recipe's flow spec), the two models at the held-out "
                 "heads' size s; the rest from the Gaussian fitted to the codes at temperature τ. "
                 "Validation split; 95 % intervals over "
                 f"{self.rows[0].nets.gap.n} replicate draws. One head flow took {self.seconds:.0f} s to fit here.",
                 "", "| generator | k | τ | validation gap (pp) | novelty | spread | memorized | against the Gaussian "
                 "| against the Gaussian head |", "|---|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            n = r.nets
            lines.append(f"| {r.generator} | {r.k or self.K} | {r.temperature:g} | {n.gap.text(100, 2)} | "
                         f"{n.novelty.text()} | {n.spread.text()} | {n.memorized.text(100, 0)} % | {self.verdict(r)} | "
                         f"{self.against_control(r)} |")
        ahead = sorted({f"{r.generator} k = {r.k}" for r in self.rows if self.verdict(r) == "ahead"})
        beyond = sorted({f"{r.generator} k = {r.k}" for r in self.rows if self.against_control(r) == "ahead"})
        if self.head_scale:
            lines += ["", "The held-out heads' rms over the fitting heads' (about the fitting mean), the size s at which "
                      "the Gaussian head and the flow draw theirs: "
                      + ", ".join(f"{s:.2f} at k = {k}" for k, s in self.head_scale) + "."]
        lines += ["", "Ahead of the Gaussian's curve somewhere: " + (", ".join(ahead) or "none") + ".",
                  "Ahead of the Gaussian head's curve at its k somewhere: " + (", ".join(beyond) or "none") + "."]
        return "\n".join(lines)

    def figure(self) -> go.Figure:
        curves: dict[tuple[str, int], list[tuple[Interval, Interval]]] = {}
        for r in self.rows:
            curves.setdefault((r.generator, r.k), []).append((r.nets.novelty, r.nets.gap))
        return plots.leading_codes(curves, f"The leading-codes oracle on {self.experiment} at N = {self.n}, validation "
                                   f"split<br><sup>k leading of {self.K} codes: Gaussian, member (oracle), held-out member (or "
                                   f"its marginals) or flow; the rest Gaussian at τ {TEMPERATURES[0]:g}–"
                                   f"{TEMPERATURES[-1]:g}</sup>")


def study(exp: Experiment, recipe: Recipe, ks: Sequence[int], artifacts: str | Path = "artifacts",
          log=None) -> OracleStudy:
    """The study above for head sizes `ks` on `exp` with `recipe`'s zoo and flow spec; one line
    per head size to `log` (a text stream) as it is scored."""
    sc = Scorer.of(recipe.apply(exp), artifacts, flows=False)
    run, e = sc.run, sc.run.experiment
    Z, R, n = run.codes, e.eval.replicates, e.sample.n                          # Z (M, K)
    H = run.pca.transform(run.held_out.vectors()) if run.held_out is not None else None   # (M_ho, K)
    check_heads(ks, Z.shape[1])

    def scored(name: str, k: int, heads: Sequence[Sampler]) -> list[Row]:
        return [Row(name, k, t, sc.nets([run.pca.inverse_transform(with_tail(h, Z, k, n, t, e.sample.seed + 1000 * r))
                                         for r, h in enumerate(heads)])) for t in TEMPERATURES]

    rows = scored("Gaussian", 0, [GaussianGenerator(Z)] * R)
    seconds, head_scale = float("nan"), []
    for k in ks:
        t0 = time.perf_counter()
        flows = [FlowGenerator(flow_mod.fit(Z[:, :k], dataclasses.replace(e.flow, seed=e.flow.seed + r), progress=False), e)
                 for r in range(R)]
        seconds = (time.perf_counter() - t0) / R
        size = 1.0 if H is None else _rms(H[:, :k] - Z[:, :k].mean(0)) / _rms(Z[:, :k] - Z[:, :k].mean(0))
        rows += scored("Gaussian head", k, [AtSize(GaussianGenerator(Z[:, :k]), size)] * R)
        rows += scored("oracle", k, [Copies(Z[:, :k])] * R)
        if H is not None:
            rows += scored("held-out", k, [Copies(H[:, :k])] * R)
            rows += scored("marginals", k, [Marginals(H[:, :k])] * R)
            head_scale.append((k, size))
        rows += scored("flow", k, [AtSize(f, size) for f in flows])
        if log is not None:
            print(f"{e.name} oracle: k = {k} fitted and scored in {time.perf_counter() - t0:.0f} s", file=log, flush=True)
    return OracleStudy(e.name, exp.members or exp.zoo.n_models, recipe.name, Z.shape[1], tuple(rows), seconds,
                       tuple(head_scale))


def _rms(X: torch.Tensor) -> float:
    """Root mean square of the rows' norms."""
    return float(X.pow(2).sum(1).mean().sqrt())


__all__ = ["AtSize", "Copies", "GENERATORS", "Marginals", "OracleStudy", "Row", "TEMPERATURES", "check_heads", "study",
           "with_tail"]
