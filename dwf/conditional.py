"""Conditional generation: one flow over the zoos of several datasets that share an architecture.

Label k is member k's dataset. Every net of every zoo is aligned to the reference member of zoo 0
(one basis for all), one dual PCA compresses the union, and one flow learns v(x, t | label) with
a null label for classifier-free guidance (`dwf.flow`). Generated nets for label k are scored on
dataset k beside zoo k and its trivial baselines, and, as controls, nets generated for the other
labels and without a label (guidance 0) are scored on dataset k too.

Stages are cached under artifacts/<name>/<profile>/{align,pca,flow,report}; the member zoos are
their own experiments' (shared with them).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import torch

from . import align, archs, bn, data as data_mod, evaluate as ev, flow as flow_mod, stacked
from .config import ConditionalExperiment
from .data import Dataset
from .errors import ConfigError
from .flow import Flow
from .pca import DualPCA
from .pipeline import buffer_names, cached_stage, is_cached, saved, symmetry, zoo_stage
from .report import Report
from .sample import Generated, generate
from .task import task_for
from .zoo import Zoo


@dataclass
class ConditionalRun:
    experiment: ConditionalExperiment
    root: Path
    datasets: list[Dataset]
    zoos: list[Zoo]
    aligned: Zoo                      # every member of every zoo, in one basis
    labels: torch.Tensor              # (n,) label of each aligned net
    pca: DualPCA
    codes: torch.Tensor               # (n, k)
    flow: Flow
    reports: list[Report] = field(default_factory=list)   # one per label
    timings: dict = field(default_factory=dict)


def root(cexp: ConditionalExperiment, artifacts: str | Path = "artifacts") -> Path:
    return Path(artifacts) / cexp.name / cexp.profile


def build(cexp: ConditionalExperiment, artifacts: str | Path = "artifacts", progress: bool = True,
          evaluate: bool = True, on_stage: Callable[[str], None] | None = None) -> ConditionalRun:
    """Every stage (cached): member zoos, joint alignment, PCA, conditional flow, reports."""
    tell = on_stage or (lambda name: None)
    base = root(cexp, artifacts)
    timings: dict[str, float] = {}
    tell("data")
    datasets = [data_mod.load(m.data) for m in cexp.members]
    zoos = []
    for m, d in zip(cexp.members, datasets):
        zoo, timings[f"zoo {m.name}"] = zoo_stage(m, d, artifacts, progress, tell=tell)
        zoos.append(zoo)
    labels = torch.cat([torch.full((z.n,), k, dtype=torch.long) for k, z in enumerate(zoos)])

    def stage(name, load, compute):
        return cached_stage(base / name, cexp, name, load, compute, tell)

    m0 = cexp.members[0]
    joint = Zoo(cexp.arch, {k: torch.cat([z.params[k] for z in zoos]) for k in zoos[0].params},
                [{**row, "label": k} for k, z in enumerate(zoos) for row in z.models])
    aligned, timings["align"] = stage("align", Zoo.load, lambda d: saved(align.align_zoo(
        joint, symmetry(m0, datasets[0]), cexp.align, exclude=buffer_names(m0), progress=progress), d))
    pca, timings["pca"] = stage("pca", lambda d: DualPCA.load(d / "pca.safetensors"), lambda d: saved(
        DualPCA(cexp.pca.n_components, cexp.pca.variance).fit(aligned.vectors()), d / "pca.safetensors"))
    codes = pca.transform(aligned.vectors())
    flow, timings["flow"] = stage("flow", Flow.load, lambda d: saved(
        flow_mod.fit(codes, cexp.flow, progress=progress, labels=labels), d))
    run = ConditionalRun(cexp, base, datasets, zoos, aligned, labels, pca, codes, flow, timings=timings)
    if evaluate:
        def reports(d: Path) -> list[Report]:
            out = evaluate_run(run)
            for k, r in enumerate(out):
                r.save(d / f"label{k}.json")
            return out

        run.reports, _ = stage("report", lambda d: [Report.load(d / f"label{k}.json")
                                                    for k in range(len(cexp.members))], reports)
    return run


def states(run: ConditionalRun, vectors: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
    """Stacked state dicts of flat weight vectors (n, d), to be run on dataset k: BatchNorm
    statistics (if the architecture has any) re-estimated on dataset k's training split."""
    params = run.aligned.layout.unflatten_stacked(vectors)
    s = run.experiment.sample
    return {**params, **bn.recalibrate_stacked(archs.build(run.experiment.arch), params,
                                               run.datasets[k].x_train, n_samples=s.bn_samples, seed=s.seed)}


def is_built(cexp: ConditionalExperiment, artifacts: str | Path = "artifacts", stage: str = "flow") -> bool:
    """Whether `stage` (and so every stage before it) is cached for this exact config."""
    return is_cached(root(cexp, artifacts) / stage, cexp, stage)


def sample(run: ConditionalRun, label: int | None, n: int | None = None, guidance: float | None = None,
           seed: int | None = None, source_std: float | None = None, steps: int | None = None,
           method: str | None = None) -> Generated:
    """Nets generated for `label` (None: unconditional, made ready for dataset 0) with guidance
    weight `guidance` (0: ignore the label, 1: plain conditional flow, > 1: classifier-free
    guidance). Unset options come from the experiment's SampleSpec."""
    s = run.experiment.sample
    if label is not None and not 0 <= label < len(run.datasets):
        raise ConfigError(f"label {label} is not one of {run.experiment.name}'s labels "
                          f"0..{len(run.datasets) - 1} ({', '.join(run.experiment.labels)})")
    gen = generate(run.flow, run.pca, n or s.n, steps or s.steps, method or s.method,
                   s.source_std if source_std is None else source_std,
                   s.seed if seed is None else seed, label=label,
                   guidance=s.guidance if guidance is None else guidance)
    t0 = time.perf_counter()
    gen.params = states(run, gen.vectors, 0 if label is None else label)
    gen.bn_seconds = time.perf_counter() - t0 if bn.batchnorms(archs.build(run.experiment.arch)) else 0.0
    return gen


def evaluate_run(run: ConditionalRun) -> list[Report]:
    """One report per label k (see `label_report`): the nets generated for k, and as controls
    the nets generated for each other label and at each extra guidance weight (0 = unconditional)."""
    cexp = run.experiment
    names = cexp.labels
    gens = {j: sample(run, j, seed=cexp.sample.seed + j) for j in range(len(names))}
    extra = {w: {j: sample(run, j, guidance=w, seed=cexp.sample.seed + j) for j in range(len(names))}
             for w in cexp.guidance}
    out = []
    for k in range(len(names)):
        controls = {("generated, no label (w=0)" if w == 0 else f"generated, guidance w={w:g}"): by_label[k].vectors
                    for w, by_label in extra.items()}
        controls |= {f"generated for {names[j]}": gens[j].vectors for j in gens if j != k}
        out.append(label_report(run, k, gens[k], controls))
    return out


def label_report(run: ConditionalRun, k: int, generated: Generated,
                 controls: Mapping[str, torch.Tensor] | None = None) -> Report:
    """Label k's report, all on dataset k's test split: zoo k, `generated` (nets generated for
    k), its noisy-copy and interpolation baselines, and any `controls` {name: flat weights (n, d)}."""
    cexp = run.experiment
    model = archs.build(cexp.arch)
    names = cexp.labels
    g = torch.Generator().manual_seed(cexp.eval.seed)
    zoo_vecs = run.aligned.vectors()[run.labels == k]
    pops = {"zoo": zoo_vecs, "generated": generated.vectors, **(controls or {})}
    if cexp.eval.n_baseline > 0:
        for sigma in cexp.eval.noise_sigmas:
            pops[f"noisy σ={sigma:g}"] = ev.noisy_copies(zoo_vecs, cexp.eval.n_baseline, sigma, g)
        pops["interpolation"] = ev.interpolations(zoo_vecs, cexp.eval.n_baseline, g)
    data = run.datasets[k]
    task = task_for(data)
    x, y = data.x_test, data.y_test
    preds = {name: stacked.predict(model, states(run, v, k), x, task=task) for name, v in pops.items()}
    ref = ev.ZooReference.build(zoo_vecs, preds["zoo"], y, task)
    rows = {name: ev.population(name, v, preds[name], y, ref, is_zoo=name == "zoo")
            for name, v in pops.items()}
    info = run.aligned.info
    mask = (run.labels == k).tolist()
    extras = {
        "explained_variance_ratio": run.pca.explained_variance_ratio_.tolist(),
        "flow_history": run.flow.history,
        "zoo_val_acc": run.zoos[k].metric("val_acc").tolist(),
        "dist_to_ref_before": [d for d, keep in zip(info.get("dist_to_ref_before", []), mask) if keep],
        "dist_to_ref_after": [d for d, keep in zip(info.get("dist_to_ref_after", []), mask) if keep],
        "reference": int(info.get("reference", 0)) if k == 0 else -1,
        "n_params": run.aligned.layout.dim, "n_components": run.pca.n_components_,
        "zoo_median_nn": ref.median_nn,
        "conditional": {"label": k, "labels": names, "guidance": cexp.sample.guidance,
                        "extra_guidance": list(cexp.guidance), "n_zoo_nets": len(run.labels)},
    }
    timings = {**run.timings, "sample": generated.seconds}
    paper = {"task": f"conditional {_describe(cexp)}: label {k} = {names[k]}, one flow over "
                     f"{' + '.join(names)} zoos"}
    return Report(f"{cexp.name}_{names[k]}", cexp.profile, cexp.to_dict(),
                  [r.summary(ref.median_nn) for r in rows.values()],
                  {name: r.to_dict() for name, r in rows.items()}, timings, extras, paper,
                  metric=task.metric)


def _describe(cexp: ConditionalExperiment) -> str:
    a = cexp.arch
    return f"MLP {a.in_dim}-{'-'.join(map(str, a.hidden))}-{a.out_dim}" if a.kind == "mlp" else a.kind
