"""Evaluation: the one place that builds populations of nets and measures them.

Every population is declared by a `PopulationSpec` (where its nets come from, which BatchNorm
statistics they run with), never by a display name. `evaluate` builds each population per
replicate r (seeded from the eval seed, r and the spec's key), runs it on the test split once,
and derives every metric from those cached predictions and from distances in the aligned space:

    score              accuracy or Spearman ρ per net                        (dwf.task)
    novelty            median NN distance to the fitting members / their LOO median NN
    novelty_held_out   the same against the held-out members (≈ 1 for a net as new as a member)
    spread             median NN distance within the population / the members' LOO median NN
    memorized          share of nets with d₁ < d₂ / 3 against the fitting members   (dwf.novelty)
    coverage           share of fitting members that are some net's nearest member
    error_similarity   mean over nets of the max similarity of its errors with a fitting member's
    diversity          mean pairwise disagreement of predictions within the population

A population compared with itself (the zoo, the held-out members) leaves each net's own entry out.
Nets of a flow fitted without alignment are aligned to the reference member before any distance
is taken (`Context.measure`), so every novelty in one table lives in one space.
"""
from __future__ import annotations

import zlib
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import torch

from . import archs, baselines, fanout, stacked
from . import sample as sample_mod
from .config import ArchSpec, EvalSpec, PopulationSpec
from .data import Dataset
from .errors import ConfigError
from .interval import Interval
from .layout import ParamLayout
from .novelty import Distances, coverage, loo_median_nn, memorized_fraction, novelty, spread
from .pca import DualPCA
from .report import PerNet, PopulationResult
from .sample import Generated
from .task import CLASSIFICATION, Task, task_for

if TYPE_CHECKING:
    from .shards import Engine

__all__ = ["Bench", "Context", "Measured", "build", "compare", "coverage", "declared", "error_similarity", "evaluate",
           "measure", "memorized_fraction", "novelty", "spread"]

States = dict[str, torch.Tensor]


def declared(spec: EvalSpec, has_bn: bool, held_out: bool = True, baselines: bool = True) -> list[PopulationSpec]:
    """The populations of a report, in table order: the fitting members, the held-out ones,
    the generated nets, BatchNorm controls (the paper's one-member statistics and the zoo's mean,
    each applied to members and generated nets alike) and, with `baselines`, the trivial
    generators: noisy copies (each σ), interpolations, a Gaussian over the PCA codes, and the
    members through encode → decode."""
    S = PopulationSpec
    out = [S("zoo", "own")] + ([S("held_out", "own")] if held_out else []) + [S("generated")]
    if has_bn:
        out += [S("zoo", "recalibrate"), S("zoo", "member"), S("generated", "member"),
                S("zoo", "mean"), S("generated", "mean")]
    if baselines and spec.n_baseline > 0:
        out += [S("noisy", sigma=s) for s in spec.noise_sigmas]
        out += [S("interpolation"), S("code_gaussian"), S("encode_decode")]
    return out


def name(spec: PopulationSpec, label_names: Sequence[str] = ()) -> str:
    """The display name of a population (for tables and plots only; never for decisions)."""
    bn = {"own": "", "recalibrate": "", "mean": ", zoo-mean BN statistics",
          "member": ", one member's BN statistics"}[spec.bn]
    if spec.source == "zoo" and spec.bn == "recalibrate":
        bn = ", BN recalibrated"
    base = {"zoo": "zoo (fitting members)", "held_out": "held-out members",
            "noisy": f"noisy copies σ={spec.sigma:g}", "code_gaussian": "Gaussian over PCA codes",
            "encode_decode": "zoo through encode → decode",
            "interpolation": "interpolations" + (f" λ={spec.lam:g}" if spec.lam is not None else "")}
    if spec.source != "generated":
        return base[spec.source] + bn
    text = "generated"
    if spec.guidance == 0:
        text += ", no label (w=0)"
    else:
        if spec.label is not None and label_names:
            text += f" for {label_names[spec.label]}"
        if spec.guidance is not None:
            text += f", guidance w={spec.guidance:g}"
    return text + bn


@dataclass(frozen=True)
class Context:
    """What every population is built from and measured against."""
    arch: ArchSpec
    data: Dataset                      # test split unlocked (reporting), training split for BatchNorm
    fit: States                        # {name: (n, ...)} fitting members, in the flow's coordinates
    held_out: States | None            # {name: (h, ...)} held-out members, same coordinates
    pca: DualPCA
    codes: torch.Tensor                # (n, k) the fitting members' codes
    eval: EvalSpec
    bn_samples: int = 1024
    bn_seed: int = 0
    reference: int = 0                 # the member whose statistics the "member" control copies
    measure: Callable[[States], torch.Tensor] | None = None   # states -> aligned vectors (None: as is)
    label_names: tuple[str, ...] = ()

    @property
    def task(self) -> Task:
        return task_for(self.data)

    @functools.cached_property
    def layout(self) -> ParamLayout:
        return ParamLayout.from_module(archs.build(self.arch))

    def vectors(self, states: States) -> torch.Tensor:
        """(m, d) vectors in the aligned space distances are taken in."""
        return self.measure(states) if self.measure else self.layout.flatten(states, stacked=True)

    def states(self, vectors: torch.Tensor, bn: str) -> States:
        return sample_mod.states(self.arch, vectors, bn, x_train=self.data.x_train, bn_samples=self.bn_samples,
                                 seed=self.bn_seed, zoo_buffers=self.fit, member=self.reference)


def _generator(ctx: Context, spec: PopulationSpec, replicate: int) -> torch.Generator:
    return torch.Generator().manual_seed(ctx.eval.seed * 1_000_003 + 7919 * replicate + zlib.crc32(spec.key.encode()))


def build(ctx: Context, spec: PopulationSpec, replicate: int = 0,
          generated: Mapping[tuple, Generated] | None = None) -> States:
    """The stacked state dicts of one population. `generated` maps (label, guidance) of a
    generated spec to the replicate's `Generated` nets."""
    fit_vectors = ctx.layout.flatten(ctx.fit, stacked=True)                    # (n, d)
    n = ctx.eval.n_baseline
    g = _generator(ctx, spec, replicate)
    if spec.source in ("zoo", "held_out"):
        own = ctx.fit if spec.source == "zoo" else ctx.held_out
        if own is None:
            raise ConfigError("this run keeps no held-out members (PCASpec.held_out = 0); raise it to hold members out")
        return dict(own) if spec.bn == "own" else ctx.states(ctx.layout.flatten(own, stacked=True), spec.bn)
    if spec.source == "generated":
        key = (spec.label, spec.guidance)
        if not generated or key not in generated:
            raise ConfigError(f"no generated nets for label {spec.label}, guidance {spec.guidance}")
        gen = generated[key]
        return gen.params if spec.bn == "recalibrate" else ctx.states(gen.vectors, spec.bn)
    if spec.source == "noisy":
        idx = torch.arange(n) % fit_vectors.shape[0]
        V = fit_vectors[idx] + spec.sigma * torch.randn(n, fit_vectors.shape[1], generator=g)
    elif spec.source == "interpolation":
        i = torch.randint(fit_vectors.shape[0], (n,), generator=g)
        j = (i + 1 + torch.randint(fit_vectors.shape[0] - 1, (n,), generator=g)) % fit_vectors.shape[0]
        lam = (0.25 + 0.5 * torch.rand(n, 1, generator=g)) if spec.lam is None else torch.full((n, 1), spec.lam)
        V = (1 - lam) * fit_vectors[i] + lam * fit_vectors[j]
    elif spec.source == "code_gaussian":
        V = baselines.code_gaussian(ctx.pca, ctx.codes, n, spec.scale, g)
    else:   # encode_decode
        V = ctx.pca.inverse_transform(ctx.codes)
    return ctx.states(V, spec.bn)


@dataclass(frozen=True)
class Measured:
    """One population in one replicate."""
    score: torch.Tensor                # (m,)
    nn_dist: torch.Tensor              # (m,) to the nearest fitting member
    error_similarity: torch.Tensor     # (m,)
    novelty: float
    novelty_held_out: float | None
    spread: float
    memorized: float
    diversity: float
    coverage: float


@dataclass(frozen=True)
class Reference:
    fit: torch.Tensor                  # (n, d) aligned vectors of the fitting members
    held_out: torch.Tensor | None      # (h, d)
    errors: torch.Tensor               # (n, N) the fitting members' error signatures
    median_nn: float
    preds: torch.Tensor                # (n, N) the fitting members' test predictions (own BN statistics)

    @classmethod
    def of(cls, ctx: Context) -> "Reference":
        x, y = ctx.data.x_test, ctx.data.y_test
        preds = stacked.predict(archs.build(ctx.arch), ctx.fit, x, task=ctx.task)
        fit = ctx.vectors(ctx.fit)
        held = ctx.vectors(ctx.held_out) if ctx.held_out is not None else None
        return cls(fit, held, ctx.task.signature(preds, y), loo_median_nn(fit), preds)


def measure(ctx: Context, ref: Reference, spec: PopulationSpec, states: States) -> Measured:
    """Every metric of one population from one pass over the test split (none for the fitting
    members with their own statistics: the reference already ran them)."""
    task, y = ctx.task, ctx.data.y_test
    preds = (ref.preds if spec == PopulationSpec("zoo", "own") else
             stacked.predict(archs.build(ctx.arch), states, ctx.data.x_test, task=task))
    V = ctx.vectors(states)
    self_zoo, self_held = spec.source == "zoo", spec.source == "held_out"
    sim = task.similarity(task.signature(preds, y), ref.errors)
    if self_zoo:
        sim.fill_diagonal_(-float("inf"))
    ho = None
    if ref.held_out is not None and ref.held_out.shape[0] >= 2:
        ho = novelty(V, ref.held_out, exclude_self=self_held)
    many = V.shape[0] >= 2
    # a first and a second nearest member need 2 members (3 when a member meets itself)
    enough = ref.fit.shape[0] - int(self_zoo) >= 2
    to_fit = Distances.of(V, ref.fit, exclude_self=self_zoo)                  # (m, n) once for four metrics
    return Measured(task.score(preds, y), to_fit.nearest().float(), sim.max(1).values, to_fit.novelty(ref.median_nn),
                    ho, spread(V, ref.fit, scale=ref.median_nn) if many else float("nan"),
                    to_fit.memorized_fraction() if enough else float("nan"), task.diversity(preds, y),
                    to_fit.coverage())


def summarize(ctx: Context, spec: PopulationSpec, runs: Sequence[Measured], median_nn: float) -> PopulationResult:
    """One population's statistics, each an interval over the replicates."""
    iv = lambda f: Interval.of([f(m) for m in runs], spec.replicated)  # noqa: E731
    first, scores = runs[0], torch.cat([m.score for m in runs])
    return PopulationResult(
        spec, name(spec, ctx.label_names), len(first.score), iv(lambda m: float(m.score.mean())),
        float(first.score.std()) if len(first.score) > 1 else 0.0, float(scores.min()), float(scores.max()),
        iv(lambda m: m.novelty), iv(lambda m: m.novelty_held_out) if first.novelty_held_out is not None else None,
        iv(lambda m: m.spread), iv(lambda m: m.memorized), iv(lambda m: float(m.error_similarity.mean())),
        iv(lambda m: m.diversity),
        PerNet(first.score.tolist(), (first.nn_dist / median_nn).tolist(), first.error_similarity.tolist()),
        iv(lambda m: m.coverage))


def evaluate(ctx: Context, specs: Sequence[PopulationSpec], generated: Sequence[Mapping[tuple, Generated]],
             engine: "Engine | None" = None) -> tuple[list[PopulationResult], Reference, dict[str, list[Measured]]]:
    """Every population of `specs` over len(generated) replicates (replicate r uses
    generated[r]); populations that do not depend on the replicate are measured once. Each
    (population, replicate) is one job: built and measured here, or with `engine` as a Ray task
    (`dwf.fanout`; the context and reference are shipped once). Returns the results, the
    reference, and the per-replicate measurements by spec key."""
    ref = Reference.of(ctx)
    jobs = [(spec, r, gens) for r, gens in enumerate(generated) for spec in specs if spec.replicated or r == 0]
    measured = iter(fanout.map_jobs(engine, _build_and_measure, (ctx, ref), jobs, desc="populations"))
    runs: dict[str, list[Measured]] = {}
    for r in range(len(generated)):
        for spec in specs:
            runs.setdefault(spec.key, []).append(next(measured) if spec.replicated or r == 0 else runs[spec.key][0])
    return [summarize(ctx, s, runs[s.key], ref.median_nn) for s in specs], ref, runs


def _build_and_measure(ctx: Context, ref: Reference, spec: PopulationSpec, replicate: int,
                       generated: Mapping[tuple, Generated]) -> Measured:
    return measure(ctx, ref, spec, build(ctx, spec, replicate, generated))


@dataclass(frozen=True)
class Bench:
    """The fitting and held-out members measured once, to compare any number of samples with
    them: what an interactive sampler needs (each sample then costs only its own nets)."""
    ctx: Context
    ref: Reference
    members: tuple[tuple[PopulationSpec, Measured], ...]

    @classmethod
    def of(cls, ctx: Context) -> "Bench":
        ref = Reference.of(ctx)
        specs = [PopulationSpec("zoo", "own")] + ([PopulationSpec("held_out", "own")] if ctx.held_out else [])
        return cls(ctx, ref, tuple((s, measure(ctx, ref, s, build(ctx, s))) for s in specs))

    def compare(self, generated: Generated, spec: PopulationSpec | None = None) -> list[PopulationResult]:
        """The members, then one sample of nets (one replicate, no baselines). `spec` defaults
        to the plain generated population (a conditional sample: for its label)."""
        spec = spec or PopulationSpec("generated", label=generated.label)
        nets = build(self.ctx, spec, 0, {(spec.label, spec.guidance): generated})
        measured = [*self.members, (spec, measure(self.ctx, self.ref, spec, nets))]
        return [summarize(self.ctx, s, [m], self.ref.median_nn) for s, m in measured]


def compare(ctx: Context, generated: Generated, spec: PopulationSpec | None = None) -> list[PopulationResult]:
    """One sample of nets beside the fitting and held-out members (`Bench.compare`, measuring
    the members first)."""
    return Bench.of(ctx).compare(generated, spec)


def error_similarity(preds: torch.Tensor, ref_preds: torch.Tensor, y: torch.Tensor,
                     task: Task = CLASSIFICATION) -> torch.Tensor:
    """(m, n) similarity of each net's errors (preds (m, N)) with each reference net's
    (ref_preds (n, N)): IoU of the misclassified sets, or the correlation of residuals."""
    return task.similarity(task.signature(preds, y), task.signature(ref_preds, y))


def gap(runs: Mapping[str, Sequence[Measured]], generated_key: str, zoo_key: str) -> Interval:
    """Generated − zoo mean score per replicate, as an interval."""
    return Interval.of([float(g.score.mean() - z.score.mean())
                        for g, z in zip(runs[generated_key], runs[zoo_key])])
