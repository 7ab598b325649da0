"""run(experiment): zoo -> align -> PCA -> flow -> sample + evaluate, each stage cached under
artifacts/<experiment>/<profile>/<stage>/ and keyed on the hash of the config it depends on.

A stage folder is complete when its `stage.json` (written last) carries the current hash; a
folder with another hash is cleared and recomputed. Zoo training checkpoints every epoch, so an
interrupted run resumes where it stopped.
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from . import align, archs, bn, data as data_mod, evaluate as ev, flow as flow_mod, frontier, stacked
from . import interpolate as interp, transfer as transfer_mod
from .config import ConditionalExperiment, Experiment, TransferSpec
from .data import Dataset
from .errors import DatasetUnavailable
from .flow import Flow
from .io import load_json, save_json
from .pca import DualPCA
from .rebasin import bert_spec, spec_from_module, vit_spec
from .rebasin.symmetry import Symmetry
from .report import Report
from .sample import Generated, generate
from .task import task_for
from .zoo import Zoo, train_zoo

log = logging.getLogger(__name__)


@dataclass
class Run:
    """Every artifact of one experiment run, for notebooks and the app."""
    experiment: Experiment
    root: Path
    data: Dataset
    zoo: Zoo
    aligned: Zoo
    pca: DualPCA
    codes: torch.Tensor
    flow: Flow
    report: Report | None = None
    timings: dict = field(default_factory=dict)


def _stage(d: Path, name: str, exp: Experiment) -> tuple[Path, bool]:
    """(folder, done) for stage `name` in folder d; clears a folder computed for another config."""
    h = exp.stage_hash(name)
    marker = d / "stage.json"
    if marker.exists():
        try:
            if load_json(marker).get("hash") == h:
                return d, True
        except Exception:  # an unreadable marker means an unfinished stage
            pass
    pending = d / "pending.json"
    if d.exists() and not (pending.exists() and load_json(pending).get("hash") == h):
        shutil.rmtree(d)
    d.mkdir(parents=True, exist_ok=True)
    save_json(pending, {"hash": h})
    return d, False


def _done(d: Path, exp: Experiment, stage: str, info: dict | None = None) -> None:
    save_json(d / "stage.json", {"hash": exp.stage_hash(stage), "experiment": exp.name,
                                 "profile": exp.profile, "config": exp.to_dict(), **(info or {})})
    (d / "pending.json").unlink(missing_ok=True)


def experiment_dir(exp: Experiment, artifacts: str | Path = "artifacts") -> Path:
    """Where the experiment's stages and report.json live; a variant (ablation) keeps its own
    under variants/<name>/ and shares the experiment's zoo."""
    base = Path(artifacts) / exp.name / exp.profile
    return base / "variants" / exp.variant if exp.variant else base


def stage_dir(exp: Experiment, stage: str, artifacts: str | Path = "artifacts") -> Path:
    """The folder of one stage (a variant's zoo is its experiment's)."""
    if stage == "zoo":
        return Path(artifacts) / exp.name / exp.profile / "zoo"
    return experiment_dir(exp, artifacts) / stage


def build(exp: Experiment, artifacts: str | Path = "artifacts", progress: bool = True,
          device: str = "auto", evaluate: bool = True,
          on_stage: Callable[[str], None] | None = None) -> Run:
    """Run (or load from cache) every stage; returns all artifacts. `on_stage(name)` is called
    as each stage starts (for progress displays)."""
    root = experiment_dir(exp, artifacts)
    timings: dict[str, float] = {}
    tell = on_stage or (lambda name: None)
    tell("data")
    data = data_mod.load(exp.data)

    def stage(name, load, compute):
        return cached_stage(stage_dir(exp, name, artifacts), exp, name, load, compute, tell)

    zoo, timings["zoo"] = zoo_stage(exp, data, artifacts, progress, device, tell)
    aligned, timings["align"] = stage("align", Zoo.load, lambda d: saved(
        align_zoo(zoo, exp, data, progress), d))
    pca, timings["pca"] = stage("pca", lambda d: DualPCA.load(d / "pca.safetensors"), lambda d: saved(
        DualPCA(exp.pca.n_components, exp.pca.variance, device=device).fit(aligned.vectors()),
        d / "pca.safetensors"))
    codes = pca.transform(aligned.vectors())
    flow, timings["flow"] = stage("flow", Flow.load, lambda d: saved(
        flow_mod.fit(codes, exp.flow, progress=progress), d))

    run = Run(exp, root, data, zoo, aligned, pca, codes, flow)
    run.timings = timings
    if evaluate:
        def report(d: Path) -> Report:
            gen = sample(run)
            Zoo(exp.arch, gen.params, info={"generated": True}).save(d / "generated")
            rep = saved(evaluate_run(run, gen, progress=progress), d / "report.json")
            return saved(rep, root / "report.json")

        run.report, _ = stage("report", lambda d: Report.load(d / "report.json"), report)
    return run


def zoo_stage(exp: Experiment, data: Dataset, artifacts: str | Path = "artifacts", progress: bool = True,
              device: str = "auto", tell: Callable[[str], None] = lambda name: None) -> tuple[Zoo, float]:
    """(the experiment's trained zoo, seconds its training took), from the cache when built."""
    return cached_stage(stage_dir(exp, "zoo", artifacts), exp, "zoo", Zoo.load, lambda d: train_zoo(
        data, exp.arch, exp.zoo, out_dir=d, progress=progress, device=device), tell)


def saved(artifact, path: Path):
    """`artifact.save(path)`, then the artifact (for stage functions that compute and save)."""
    artifact.save(path)
    return artifact


def cached_stage(folder: Path, exp: Experiment, name: str, load: Callable[[Path], object],
                 compute: Callable[[Path], object], tell: Callable[[str], None]) -> tuple:
    """(artifact, seconds its computation took): loaded from the stage folder when cached for
    this config, else computed (the function saves into the folder) and marked done."""
    tell(name)
    d, done = _stage(folder, name, exp)
    if done:
        return load(d), float(load_json(d / "stage.json").get("seconds") or 0.0)
    t0 = time.perf_counter()
    artifact = compute(d)
    seconds = time.perf_counter() - t0
    _done(d, exp, name, {"seconds": seconds})
    return artifact, seconds


def run(exp: Experiment, artifacts: str | Path = "artifacts", progress: bool = True) -> Report:
    """The whole pipeline for one experiment; returns (and writes) its report."""
    return build(exp, artifacts, progress).report


def symmetry(exp: Experiment, data: Dataset) -> Symmetry:
    """The architecture's permutation symmetry: declared for transformers, traced from the
    graph (torch.fx) for everything else."""
    model = archs.build(exp.arch)
    if exp.arch.kind == "vit":
        return vit_spec(model)
    if exp.arch.kind == "bert":
        return bert_spec(model.bert)
    return spec_from_module(model, data.x_train[:2])


def buffer_names(exp: Experiment) -> list[str]:
    """Saved buffers (BatchNorm running statistics and counters): permuted with their channels,
    but never part of the matching cost, the PCA vectors or the flow (they are recalibrated
    after generation)."""
    model = archs.build(exp.arch)
    params = {k for k, _ in model.named_parameters()}
    return [k for k in model.state_dict() if k not in params]


def state_with_bn(run: Run, vectors: torch.Tensor, recalibrate: bool = True) -> dict[str, torch.Tensor]:
    """Stacked state dicts {name: (n, ...)} for flat weight vectors (n, d). Models with BatchNorm
    get running statistics recalibrated on the training split (seeded subset) or, with
    `recalibrate=False`, the aligned zoo's mean statistics."""
    exp = run.experiment
    params = run.aligned.layout.unflatten_stacked(vectors)
    names = [k for k in buffer_names(exp) if run.aligned.params[k].is_floating_point()]
    if not names:
        return params
    if not recalibrate:
        n = vectors.shape[0]
        return {**params, **{k: run.aligned.params[k].mean(0).expand(n, *run.aligned.params[k].shape[1:])
                             for k in names}}
    return {**params, **bn.recalibrate_stacked(archs.build(exp.arch), params, run.data.x_train,
                                               n_samples=exp.sample.bn_samples, seed=exp.sample.seed)}


def align_zoo(zoo: Zoo, exp: Experiment, data: Dataset, progress: bool = False) -> Zoo:
    """Every member permuted to match the reference member (same functions, aligned weights)."""
    return align.align_zoo(zoo, symmetry(exp, data), exp.align, exclude=buffer_names(exp),
                           progress=progress)


def sample(run: Run, n: int | None = None, steps: int | None = None, method: str | None = None,
           source_std: float | None = None, seed: int | None = None) -> Generated:
    """Generated nets from the run's flow, ready to use: `params` holds their stacked state
    dicts, BatchNorm statistics recalibrated on the training split. Unset options come from
    the experiment's SampleSpec."""
    s = run.experiment.sample
    gen = generate(run.flow, run.pca, n or s.n, steps or s.steps, method or s.method,
                   source_std if source_std is not None else s.source_std,
                   s.seed if seed is None else seed)
    t0 = time.perf_counter()
    gen.params = state_with_bn(run, gen.vectors)
    gen.bn_seconds = time.perf_counter() - t0 if bn.batchnorms(archs.build(run.experiment.arch)) else 0.0
    return gen


def evaluate_run(run: Run, gen: Generated, barrier: bool = True, transfer: bool = True,
                 progress: bool = False) -> Report:
    """Score generated nets beside the zoo and the trivial baselines (noisy copies,
    interpolations of aligned pairs), from predictions computed once per population.
    With `barrier` (and the EvalSpec asking for it), also the loss along naive and aligned paths
    between zoo members 0 and 1; with `transfer`, the experiment's few-shot transfer targets."""
    exp = run.experiment
    timings = {**run.timings, "sample": gen.seconds}
    model = archs.build(exp.arch)
    layout = run.aligned.layout
    x, y = run.data.x_test, run.data.y_test
    g = torch.Generator().manual_seed(exp.eval.seed)

    zoo_vecs = run.aligned.vectors()
    populations = {"zoo": zoo_vecs, "generated": gen.vectors}
    has_bn = bool(bn.batchnorms(model))
    if has_bn:  # the trained zoo's momentum statistics lag; recalibrated members are the fair reference
        populations = {"zoo": zoo_vecs, "zoo, BN recalibrated": zoo_vecs, "generated": gen.vectors,
                       "generated, no BN recalibration": gen.vectors}
    if exp.eval.n_baseline > 0:
        for sigma in exp.eval.noise_sigmas:
            populations[f"noisy σ={sigma:g}"] = ev.noisy_copies(zoo_vecs, exp.eval.n_baseline, sigma, g)
        populations["interpolation"] = ev.interpolations(zoo_vecs, exp.eval.n_baseline, g)

    t0 = time.perf_counter()
    states = {k: run.aligned.params if k == "zoo" else gen.params if k == "generated" else
              state_with_bn(run, v, recalibrate=not k.endswith("no BN recalibration"))
              for k, v in populations.items()}
    if has_bn:   # the generated nets' share was paid in `sample`
        timings["bn_recalibration"] = time.perf_counter() - t0 + gen.bn_seconds
    t0 = time.perf_counter()
    task = task_for(run.data)
    preds = {k: stacked.predict(model, st, x, task=task) for k, st in states.items()}
    timings["evaluate"] = time.perf_counter() - t0
    ref = ev.ZooReference.build(zoo_vecs, preds["zoo"], y, task)
    pops = {k: ev.population(k, populations[k], preds[k], y, ref, is_zoo=k.startswith("zoo"))
            for k in populations}
    extras = {}
    if transfer and exp.transfer and task.kind == "classification":
        t0 = time.perf_counter()
        extras["transfer"] = [_transfer(run, states["generated"], t, progress) for t in exp.transfer]
        timings["transfer"] = time.perf_counter() - t0
    if barrier and exp.eval.interpolation:
        naive, aligned = interp.naive_vs_aligned(
            model, symmetry(exp, run.data), *run.zoo.state_dicts()[:2], x, y,
            x_calib=run.data.x_train if has_bn else None, seed=exp.align.seed, task=task)
        extras["interpolation"] = {
            "lambdas": naive.lambdas.tolist(),
            "naive_loss": naive.loss.tolist(), "aligned_loss": aligned.loss.tolist(),
            "naive_acc": naive.acc.tolist(), "aligned_acc": aligned.acc.tolist(),
            "naive_barrier": interp.barrier(naive), "aligned_barrier": interp.barrier(aligned)}
    if exp.eval.frontier_stds:
        t0 = time.perf_counter()

        def score(name: str, vectors: torch.Tensor) -> dict:
            p = stacked.predict(model, state_with_bn(run, vectors), x, task=task)
            return ev.population(name, vectors, p, y, ref).summary(ref.median_nn)

        extras["frontier"] = frontier.sweep(exp, run.flow, run.pca, run.codes, zoo_vecs, score, progress)
        timings["frontier"] = time.perf_counter() - t0
    extras |= {
        "explained_variance_ratio": run.pca.explained_variance_ratio_.tolist(),
        "flow_history": run.flow.history,
        "zoo_val_acc": run.zoo.metric("val_acc").tolist(),
        "dist_to_ref_before": run.aligned.info.get("dist_to_ref_before", []),
        "dist_to_ref_after": run.aligned.info.get("dist_to_ref_after", []),
        "reference": run.aligned.info.get("reference", 0),
        "n_params": layout.dim, "n_components": run.pca.n_components_,
        "zoo_median_nn": ref.median_nn,
    }
    return Report(exp.name, exp.profile, exp.to_dict(),
                  [p.summary(ref.median_nn) for p in pops.values()],
                  {k: p.to_dict() for k, p in pops.items()}, timings, extras, dict(exp.paper),
                  variant=exp.variant, metric=task.metric)


def _transfer(run: Run, generated: dict[str, torch.Tensor], spec: TransferSpec, progress: bool) -> dict:
    """Few-shot transfer to spec's target from the first nets of each kind: generated
    (BatchNorm recalibrated), zoo members, random init. A target whose data is not on disk is
    recorded as unavailable (with the reason) rather than failing the whole report."""
    try:
        target = data_mod.load(spec.data)
    except DatasetUnavailable as e:
        log.warning("transfer target %s skipped: %s", spec.data.name, e)
        return {"target": spec.data.name, "unavailable": str(e)}
    task = transfer_mod.few_shot(target, spec.shots, spec.val_shots, spec.seed)
    k = min(spec.n_models, next(iter(generated.values())).shape[0])
    inits = {"generated": [{n: v[i] for n, v in generated.items()} for i in range(k)],
             "zoo": run.aligned.state_dicts()[:k], "random": k}
    res = transfer_mod.transfer(run.experiment.arch, inits, task, spec, progress=progress)
    return {**res.to_dict(), "rows": res.rows(), "spec": dataclasses.asdict(spec)}


def is_built(exp: Experiment, artifacts: str | Path = "artifacts", stage: str = "report") -> bool:
    """Whether `stage` (and so every stage before it) is cached for this exact config."""
    return is_cached(stage_dir(exp, stage, artifacts), exp, stage)


def is_cached(folder: Path, exp: Experiment | ConditionalExperiment, stage: str) -> bool:
    """Whether `folder` holds stage `stage`, finished for exactly `exp`'s config."""
    marker = folder / "stage.json"
    try:
        return marker.exists() and load_json(marker).get("hash") == exp.stage_hash(stage)
    except Exception:
        return False
