"""The report stage of a single-zoo run: generate each replicate's nets, evaluate every declared
population (`dwf.evaluate`), and add what is measured once: the loss barrier, few-shot transfer
and the accuracy–novelty frontier. The only stage that reads the test split.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch

from . import archs, data as data_mod, evaluate as ev, families, frontier, interpolate as interp
from . import transfer as transfer_mod
from .config import AlignSpec, Experiment, PopulationSpec, SampleSpec, TransferSpec
from .errors import DatasetUnavailable
from .layout import ParamLayout
from .rebasin.symmetry import align as align_one
from .report import Barrier, FlowSummary, Report, ZooSummary
from .sample import Generated, generate
from .task import task_for

if TYPE_CHECKING:
    from .shards import Engine
    from .pipeline import Run

log = logging.getLogger(__name__)
ZOO, GENERATED = PopulationSpec("zoo", "own"), PopulationSpec("generated")


def sample_spec(exp: Experiment, replicate: int, **changes) -> SampleSpec:
    """Replicate r's sampling: the experiment's SampleSpec, seeded seed + r."""
    return dataclasses.replace(exp.sample, seed=exp.sample.seed + replicate, **changes)


def replicate_nets(run: "Run") -> list[Generated]:
    """Each flow replicate's nets: replicate r samples with `sample_spec(exp, r)`, BatchNorm
    statistics (if any) re-estimated on the training split."""
    exp = run.experiment
    return [generate(f, run.pca, exp.arch, sample_spec(exp, r), run.data.x_train)
            for r, f in enumerate(run.flows)]


def aligned_measure(exp: Experiment, reference: dict[str, torch.Tensor],
                    example: torch.Tensor) -> Callable[[dict], torch.Tensor] | None:
    """For a flow fitted without alignment: states → vectors aligned to the reference member with
    the family's own method, so its distances live in the aligned experiment's space. None for
    an aligned flow (its nets are already there)."""
    if exp.align.method != "none":
        return None
    sym = families.symmetry(exp.arch, example)
    exclude = tuple(families.buffer_names(exp.arch))
    spec = AlignSpec(method=families.family(exp.arch).align_method)
    layout = ParamLayout.from_module(archs.build(exp.arch))

    def measure(states: dict) -> torch.Tensor:
        n = next(iter(states.values())).shape[0]
        nets = [align_one(sym, reference, {k: v[i] for k, v in states.items()}, max_iter=spec.max_iter,
                                exclude=exclude, stream=spec.stream,
                                generator=torch.Generator().manual_seed(spec.seed * 1_000_003 + i))
                for i in range(n)]
        return layout.flatten(nets)

    return measure


def context(run: "Run") -> ev.Context:
    """The evaluation context of a run: reporting data, fitting and held-out members, PCA."""
    exp = run.experiment
    data = run.data.for_reporting()
    fit = run.fit
    ref_member = run.fit_idx.index(int(run.aligned.info.get("reference", 0)))   # split() keeps it fitting
    measure = aligned_measure(exp, {k: v[ref_member] for k, v in fit.params.items()}, data.x_train)
    return ev.Context(exp.arch, data, fit.params, run.held_out.params if run.held_out else None, run.pca,
                      run.codes, exp.eval, exp.sample.bn_samples, exp.sample.seed, ref_member, measure)


def report(run: "Run", folder: Path, progress: bool = False,
           on_stage: Callable[[str], None] = lambda name: None, engine: "Engine | None" = None) -> Report:
    """Generate (saved under folder/generated/r<r>), evaluate and assemble the run's Report;
    `on_stage(name)` as each part (sample, evaluate, barrier, transfer, frontier) starts. With
    `engine` the populations, frontier points and transfer fine-tunes run as Ray tasks (`dwf.fanout`)."""
    exp = run.experiment
    on_stage("sample")
    ctx = context(run)
    timings = dict(run.timings)
    gens = replicate_nets(run)
    for r, g in enumerate(gens):
        g.save(folder / "generated" / f"r{r}")
    timings["sample"] = sum(g.seconds for g in gens) / len(gens)
    if gens[0].bn_seconds:
        timings["bn_recalibration"] = sum(g.bn_seconds for g in gens) / len(gens)
    light = exp.eval.n_baseline == 0
    specs = ev.declared(exp.eval, families.has_batchnorm(exp.arch) and not light,
                        held_out=ctx.held_out is not None, baselines=not light)
    on_stage("evaluate")
    t0 = time.perf_counter()
    results, ref, runs = ev.evaluate(ctx, specs, [{(None, None): g} for g in gens], engine)
    timings["evaluate"] = time.perf_counter() - t0
    task = task_for(ctx.data)
    barrier = None
    if exp.eval.interpolation:
        on_stage("barrier")
        barrier = _barrier(run, ctx)
    transfer = []
    if exp.transfer and task.kind == "classification":
        on_stage("transfer")
        t0 = time.perf_counter()
        transfer = [_transfer(run, gens[0], t, progress, engine) for t in exp.transfer]
        timings["transfer"] = time.perf_counter() - t0
    points = []
    if exp.eval.frontier_stds:
        on_stage("frontier")
        t0 = time.perf_counter()
        points = frontier.sweep(exp, ctx, ref, run.flow, progress, {k: v[0] for k, v in runs.items()}, engine)
        timings["frontier"] = time.perf_counter() - t0
    info = run.aligned.info
    zoo = ZooSummary(len(run.fit_idx), run.held_idx, int(info.get("reference", 0)),
                     [float(v) for v in run.zoo.metric("val_acc").tolist()],
                     list(info.get("dist_to_ref_before", [])), list(info.get("dist_to_ref_after", [])),
                     ref.median_nn, ctx.layout.dim, run.pca.n_components_,
                     run.pca.explained_variance_ratio_.tolist())
    flows = FlowSummary.of([f.history for f in run.flows])
    return Report(exp.name, exp.profile, exp.task or families.describe(exp.arch), task.metric, exp.to_dict(),
                  len(gens), results, GENERATED.key, ev.gap(runs, GENERATED.key, ZOO.key), zoo, flows,
                  timings, exp.variant, barrier, points, transfer)


def _barrier(run: "Run", ctx: ev.Context) -> Barrier:
    """The loss along naive and aligned straight lines between zoo members 0 and 1 (each point's
    BatchNorm recalibrated on as many training images as every population of the report)."""
    exp = run.experiment
    model = archs.build(exp.arch)
    has_bn = families.has_batchnorm(exp.arch)
    naive, aligned = interp.naive_vs_aligned(
        model, families.symmetry(exp.arch, ctx.data.x_train), *run.zoo.state_dicts()[:2], ctx.data.x_test,
        ctx.data.y_test, x_calib=ctx.data.x_train if has_bn else None, seed=exp.align.seed, task=ctx.task,
        calib_samples=exp.sample.bn_samples)
    return Barrier(naive.lambdas.tolist(), naive.loss.tolist(), aligned.loss.tolist(), naive.acc.tolist(),
                   aligned.acc.tolist(), interp.barrier(naive), interp.barrier(aligned))


def _transfer(run: "Run", gen: Generated, spec: TransferSpec, progress: bool, engine: "Engine | None" = None) -> dict:
    """Few-shot transfer to spec's target from the first nets of each kind: generated
    (BatchNorm recalibrated), fitting members, random init. A target whose data is not on disk is
    recorded as unavailable (with the reason) rather than failing the whole report."""
    try:
        target = data_mod.load(spec.data).for_reporting()
    except DatasetUnavailable as e:
        log.warning("transfer target %s skipped: %s", spec.data.name, e)
        return {"target": spec.data.name, "unavailable": str(e)}
    task = transfer_mod.few_shot(target, spec.shots, spec.val_shots, spec.seed)
    k = min(spec.n_models, gen.n)
    inits = {"generated": [gen.state_dict(i) for i in range(k)], "zoo": run.fit.state_dicts()[:k], "random": k}
    res = transfer_mod.transfer(run.experiment.arch, inits, task, spec, progress=progress, engine=engine)
    return {**res.to_dict(), "rows": res.rows(), "spec": dataclasses.asdict(spec)}
