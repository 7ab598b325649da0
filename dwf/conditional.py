"""Conditional generation: one flow over the zoos of several datasets that share an architecture.

Label k is member k's dataset. Every net of every zoo is aligned to the reference member of zoo 0
(one basis for all); each zoo keeps its own seeded held-out members; one dual PCA compresses the
union of the fitting members, and one flow per replicate learns v(x, t | label) with a null
label for classifier-free guidance (`dwf.flow`). Generated nets for label k are scored on dataset
k beside zoo k and its trivial baselines (`dwf.evaluate`); as controls, nets generated for the
other labels, without a label (w = 0) and with stronger guidance are scored on dataset k too.

Stages are cached under artifacts/<name>/<profile>/{align,pca,flow/r<r>,report}; the member
zoos are their own experiments' (shared with them).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from . import align, data as data_mod, evaluate as ev, families, lock
from .config import ConditionalExperiment, PopulationSpec, SampleSpec
from .data import Dataset
from .errors import ConfigError
from .flow import Flow
from .pca import DualPCA
from .cache import cached_stage, is_cached
from .pipeline import cancel_check, checked, flow_stage, saved, zoo_stage
from .report import ConditionalInfo, FlowSummary, Report, ZooSummary
from .sample import Generated, generate
from .zoo import Zoo, split

log = logging.getLogger(__name__)


@dataclass
class ConditionalRun:
    experiment: ConditionalExperiment
    root: Path
    datasets: list[Dataset]           # test splits locked
    zoos: list[Zoo]
    aligned: Zoo                      # every member of every zoo, in one basis
    labels: torch.Tensor              # (n,) label of each aligned net
    fit_idx: list[int]                # joint indices of the fitting members
    held_idx: list[int]
    pca: DualPCA
    codes: torch.Tensor               # (n_fit, k)
    flows: list[Flow]                 # one per replicate
    reports: list[Report] = field(default_factory=list)   # one per label
    timings: dict = field(default_factory=dict)

    @property
    def flow(self) -> Flow:
        return self.flows[0]


def root(cexp: ConditionalExperiment, artifacts: str | Path = "artifacts") -> Path:
    return Path(artifacts) / cexp.name / cexp.profile


def build(cexp: ConditionalExperiment, artifacts: str | Path = "artifacts", progress: bool = True,
          evaluate: bool = True, on_stage: Callable[[str], None] | None = None,
          cancel: Callable[[], bool] | None = None) -> ConditionalRun:
    """Every stage (cached): member zoos, joint alignment, PCA, conditional flows, reports.
    One build at a time per folder (`dwf.lock`; the member zoos take their own folders' locks);
    `cancel` as in `pipeline.build`."""
    check = cancel_check(cancel)
    with lock.locked(root(cexp, artifacts), on_wait=log.warning):
        return _build(cexp, artifacts, progress, evaluate, checked(on_stage, check), check)


def _build(cexp: ConditionalExperiment, artifacts: str | Path, progress: bool, evaluate: bool,
           tell: Callable[[str], None], check: Callable[[], None]) -> ConditionalRun:
    base = root(cexp, artifacts)
    timings: dict[str, float] = {}
    tell("data")
    datasets = [data_mod.load(m.data) for m in cexp.members]
    zoos = []
    for m, d in zip(cexp.members, datasets):
        zoo, timings[f"zoo {m.name}"] = zoo_stage(m, d, artifacts, progress, tell=tell, check=check)
        zoos.append(zoo)
    labels = torch.cat([torch.full((z.n,), k, dtype=torch.long) for k, z in enumerate(zoos)])

    def stage(name, load, compute, folder=None):
        return cached_stage(folder or base / name, cexp, name, load, compute, tell)

    arch = cexp.arch
    joint = Zoo(arch, {k: torch.cat([z.params[k] for z in zoos]) for k in zoos[0].params},
                [{**row, "label": k} for k, z in enumerate(zoos) for row in z.models])
    aligned, timings["align"] = stage("align", Zoo.load, lambda d: saved(align.align_zoo(
        joint, families.symmetry(arch, datasets[0].x_train), cexp.align,
        exclude=families.buffer_names(arch), progress=progress), d))
    fit_idx, held_idx, offset = [], [], 0
    for m, z in zip(cexp.members, zoos):   # each zoo keeps its own held-out members
        f, h = split(z.n, cexp.pca.held_out, m.zoo.seed, keep=int(aligned.info.get("reference", 0)) - offset)
        fit_idx += [offset + i for i in f]
        held_idx += [offset + i for i in h]
        offset += z.n
    fit_vectors = aligned.select(fit_idx).vectors()
    pca, timings["pca"] = stage("pca", lambda d: DualPCA.load(d / "pca.safetensors"), lambda d: saved(
        DualPCA(cexp.pca.n_components, cexp.pca.variance).fit(fit_vectors), d / "pca.safetensors"))
    codes = pca.transform(fit_vectors)
    flows, timings["flow"] = flow_stage([base / "flow" / f"r{r}" for r in range(cexp.eval.replicates)], cexp, codes,
                                        progress, tell, labels[fit_idx], check)
    run = ConditionalRun(cexp, base, datasets, zoos, aligned, labels, fit_idx, held_idx, pca, codes, flows,
                         timings=timings)
    if evaluate:
        def reports(d: Path) -> list[Report]:
            out = evaluate_run(run, d)
            for k, r in enumerate(out):
                r.save(d / f"label{k}.json")
            return out

        run.reports, _ = stage("report", lambda d: [Report.load(d / f"label{k}.json")
                                                    for k in range(len(cexp.members))], reports)
    return run


def is_built(cexp: ConditionalExperiment, artifacts: str | Path = "artifacts", stage: str = "flow") -> bool:
    """Whether `stage` (and so every stage before it) is cached for this exact config."""
    if stage == "flow":
        return all(is_cached(root(cexp, artifacts) / "flow" / f"r{r}", cexp, stage)
                   for r in range(cexp.eval.replicates))
    return is_cached(root(cexp, artifacts) / stage, cexp, stage)


def sample_spec(cexp: ConditionalExperiment, replicate: int, label: int, **changes) -> SampleSpec:
    """Replicate r's sampling for `label`: seeded seed + r + 1000 · label."""
    return dataclasses.replace(cexp.sample, seed=cexp.sample.seed + replicate + 1000 * label, **changes)


def generate_for(run: ConditionalRun, label: int, spec: SampleSpec, replicate: int = 0) -> Generated:
    """Nets generated for `label` by replicate r's flow, BatchNorm statistics (if any) on that
    label's training split."""
    if not 0 <= label < len(run.datasets):
        raise ConfigError(f"label {label} is not one of {run.experiment.name}'s labels "
                          f"0..{len(run.datasets) - 1} ({', '.join(run.experiment.labels)})")
    return generate(run.flows[replicate], run.pca, run.experiment.arch, spec, run.datasets[label].x_train, label)


def context(run: ConditionalRun, k: int) -> ev.Context:
    """Label k's evaluation context: dataset k, zoo k's fitting and held-out members, their codes."""
    cexp = run.experiment
    fit_k = [i for i in run.fit_idx if run.labels[i] == k]
    held_k = [i for i in run.held_idx if run.labels[i] == k]
    codes_k = run.codes[[j for j, i in enumerate(run.fit_idx) if run.labels[i] == k]]
    return ev.Context(cexp.arch, run.datasets[k].for_reporting(), run.aligned.select(fit_k).params,
                      run.aligned.select(held_k).params if held_k else None, run.pca, codes_k, cexp.eval,
                      cexp.sample.bn_samples, cexp.sample.seed, 0, None, tuple(cexp.labels))


def label_specs(cexp: ConditionalExperiment, k: int, has_bn: bool, held_out: bool) -> list[PopulationSpec]:
    """Label k's populations: the declared ones with the generated nets made for k, then the
    controls: nets generated for every other label and at each extra guidance weight."""
    S = PopulationSpec
    specs = [dataclasses.replace(s, label=k) if s.source == "generated" else s
             for s in ev.declared(cexp.eval, has_bn, held_out)]
    return (specs + [S("generated", label=j) for j in range(len(cexp.members)) if j != k]
            + [S("generated", label=k, guidance=w) for w in cexp.guidance])


def evaluate_run(run: ConditionalRun, folder: Path | None = None) -> list[Report]:
    """One report per label k (see `label_report`), every replicate's nets generated once."""
    cexp = run.experiment
    L = len(cexp.members)
    gens: list[dict[tuple, Generated]] = []
    for r in range(len(run.flows)):
        by = {(j, None): generate_for(run, j, sample_spec(cexp, r, j), r) for j in range(L)}
        by |= {(j, w): generate_for(run, j, sample_spec(cexp, r, j, guidance=w), r)
               for j in range(L) for w in cexp.guidance}
        gens.append(by)
        if folder is not None:
            for j in range(L):
                by[j, None].save(folder / "generated" / f"r{r}" / f"label{j}")
    return [label_report(run, k, gens) for k in range(L)]


def label_report(run: ConditionalRun, k: int, generated: list[dict[tuple, Generated]]) -> Report:
    """Label k's report, all on dataset k's test split: zoo k, its held-out members, the nets
    generated for k (`generated[r][(k, None)]` per replicate r), its baselines and the controls
    present in `generated` (other labels, other guidance weights)."""
    cexp = run.experiment
    ctx = context(run, k)
    present = set().union(*(g.keys() for g in generated))
    specs = [s for s in label_specs(cexp, k, families.has_batchnorm(cexp.arch), ctx.held_out is not None)
             if s.source != "generated" or (s.label, s.guidance) in present]
    t0 = time.perf_counter()
    results, ref, runs = ev.evaluate(ctx, specs, generated)
    own = PopulationSpec("generated", label=k)
    timings = {**run.timings, "sample": sum(g[k, None].seconds for g in generated) / len(generated),
               "evaluate": time.perf_counter() - t0}
    info = run.aligned.info
    mask = (run.labels == k).tolist()
    members = [i for i, keep in enumerate(mask) if keep]
    zoo = ZooSummary(sum(1 for i in run.fit_idx if mask[i]), [i - members[0] for i in run.held_idx if mask[i]],
                     int(info.get("reference", 0)) if k == 0 else -1,
                     [float(v) for v in run.zoos[k].metric("val_acc").tolist()],
                     [d for d, keep in zip(info.get("dist_to_ref_before", []), mask) if keep],
                     [d for d, keep in zip(info.get("dist_to_ref_after", []), mask) if keep],
                     ref.median_nn, ctx.layout.dim, run.pca.n_components_,
                     run.pca.explained_variance_ratio_.tolist())
    flows = FlowSummary.of([f.history for f in run.flows])
    names = cexp.labels
    task = (f"conditional {families.describe(cexp.arch)}: label {k} = {names[k]}, one flow over "
            f"{' + '.join(names)} zoos")
    return Report(f"{cexp.name}_{names[k]}", cexp.profile, task, ctx.task.metric, cexp.to_dict(), len(generated),
                  results, own.key, ev.gap(runs, own.key, PopulationSpec("zoo", "own").key), zoo, flows, timings,
                  conditional=ConditionalInfo(k, list(names), cexp.sample.guidance, list(cexp.guidance),
                                              len(run.labels)))
