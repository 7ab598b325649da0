"""run(experiment): zoo → align → split → PCA → flow (× R replicates) → generate + evaluate, each
stage cached under artifacts/<experiment>/<profile>/seed<seed>/<stage>/ and keyed on the hash of the config
it depends on.

A stage folder is complete when its `stage.json` (written last) carries the current hash; a
folder with another hash is cleared and recomputed. Zoo training checkpoints every epoch, so an
interrupted run resumes where it stopped. Replicate r's flow (seed + r) lives in flow/r<r>/ and
is cached on its own, so raising the replicate count fits only the new flows.

Only the report stage reads the test split (`Dataset.for_reporting`).
"""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from . import align, data as data_mod, families, flow as flow_mod, reporting
from .config import ConditionalExperiment, Experiment
from .data import Dataset
from .flow import Flow
from .io import load_json, save_json
from .pca import DualPCA
from .report import Report
from .zoo import Zoo, split, train_zoo

log = logging.getLogger(__name__)


@dataclass
class Run:
    """Every artifact of one experiment run, for notebooks and the app."""
    experiment: Experiment
    root: Path
    data: Dataset                    # test split locked; `data.for_reporting()` to score
    zoo: Zoo                         # as trained
    aligned: Zoo                     # every member aligned to the reference
    fit_idx: list[int]               # members the PCA and flows are fitted on
    held_idx: list[int]              # members held out of fitting
    pca: DualPCA
    codes: torch.Tensor              # (n_fit, k)
    flows: list[Flow]                # one per replicate (seed + r)
    report: Report | None = None
    timings: dict = field(default_factory=dict)

    @property
    def flow(self) -> Flow:
        return self.flows[0]

    @property
    def fit(self) -> Zoo:
        return self.aligned.select(self.fit_idx)

    @property
    def held_out(self) -> Zoo | None:
        return self.aligned.select(self.held_idx) if self.held_idx else None


def experiment_dir(exp: Experiment, artifacts: str | Path = "artifacts") -> Path:
    """Where the experiment's stages and report.json live: one folder per run seed, so runs with
    other seeds never share files; a variant (ablation) keeps its own under variants/<name>/ and
    shares the experiment's zoo."""
    base = seed_dir(exp, artifacts)
    return base / "variants" / exp.variant if exp.variant else base


def seed_dir(exp: Experiment, artifacts: str | Path = "artifacts") -> Path:
    return Path(artifacts) / exp.name / exp.profile / f"seed{exp.seed}"


def stage_dir(exp: Experiment, stage: str, artifacts: str | Path = "artifacts") -> Path:
    """The folder of one stage (a variant's zoo is its experiment's)."""
    if stage == "zoo":
        return seed_dir(exp, artifacts) / "zoo"
    return experiment_dir(exp, artifacts) / stage


def flow_spec(exp: Experiment | ConditionalExperiment, replicate: int):
    """Replicate r's flow: the experiment's, seeded seed + r."""
    return replace(exp.flow, seed=exp.flow.seed + replicate)


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

    def stage(name, load, compute, folder=None):
        return cached_stage(folder or stage_dir(exp, name, artifacts), exp, name, load, compute, tell)

    zoo, timings["zoo"] = zoo_stage(exp, data, artifacts, progress, device, tell)
    aligned, timings["align"] = stage("align", Zoo.load, lambda d: saved(
        align_zoo(zoo, exp, data, progress), d))
    fit_idx, held_idx = split(aligned.n, exp.pca.held_out, exp.zoo.seed, keep=int(aligned.info.get("reference", 0)))
    fit_vectors = aligned.select(fit_idx).vectors()
    pca, timings["pca"] = stage("pca", lambda d: DualPCA.load(d / "pca.safetensors"), lambda d: saved(
        DualPCA(exp.pca.n_components, exp.pca.variance, device=device).fit(fit_vectors),
        d / "pca.safetensors"))
    codes = pca.transform(fit_vectors)
    flows, timings["flow"] = flow_stage([stage_dir(exp, "flow", artifacts) / f"r{r}" for r in range(exp.eval.replicates)],
                                        exp, codes, progress, tell)

    run = Run(exp, root, data, zoo, aligned, fit_idx, held_idx, pca, codes, flows, timings=timings)
    if evaluate:
        def report(d: Path) -> Report:
            rep = saved(reporting.report(run, d, progress=progress, on_stage=tell), d / "report.json")
            return saved(rep, root / "report.json")

        run.report, _ = stage("report", lambda d: Report.load(d / "report.json"), report)
    return run


def zoo_stage(exp: Experiment, data: Dataset, artifacts: str | Path = "artifacts", progress: bool = True,
              device: str = "auto", tell: Callable[[str], None] = lambda name: None) -> tuple[Zoo, float]:
    """(the experiment's trained zoo, seconds its training took), from the cache when built."""
    return cached_stage(stage_dir(exp, "zoo", artifacts), exp, "zoo", Zoo.load, lambda d: train_zoo(
        data, exp.arch, exp.zoo, out_dir=d, progress=progress, device=device), tell)


def align_zoo(zoo: Zoo, exp: Experiment, data: Dataset, progress: bool = False) -> Zoo:
    """Every member permuted to match the reference member (same functions, aligned weights)."""
    return align.align_zoo(zoo, families.symmetry(exp.arch, data.x_train), exp.align,
                           exclude=families.buffer_names(exp.arch), progress=progress)


def saved(artifact, path: Path):
    """`artifact.save(path)`, then the artifact (for stage functions that compute and save)."""
    artifact.save(path)
    return artifact


def _stage(d: Path, name: str, exp: Experiment | ConditionalExperiment) -> tuple[Path, bool]:
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


def cached_stage(folder: Path, exp: Experiment | ConditionalExperiment, name: str,
                 load: Callable[[Path], object], compute: Callable[[Path], object],
                 tell: Callable[[str], None]) -> tuple:
    """(artifact, seconds its computation took): loaded from the stage folder when cached for
    this config, else computed (the function saves into the folder) and marked done."""
    tell(name)
    d, done = _stage(folder, name, exp)
    if done:
        return load(d), float(load_json(d / "stage.json").get("seconds") or 0.0)
    t0 = time.perf_counter()
    artifact = compute(d)
    seconds = time.perf_counter() - t0
    _done(d, exp, name, seconds)
    return artifact, seconds


def _done(d: Path, exp: Experiment | ConditionalExperiment, name: str, seconds: float) -> None:
    """Mark stage `name` in folder d complete for this config (its stage.json is written last)."""
    save_json(d / "stage.json", {"hash": exp.stage_hash(name), "experiment": exp.name,
                                 "profile": exp.profile, "config": exp.to_dict(), "seconds": seconds})
    (d / "pending.json").unlink(missing_ok=True)


def flow_stage(folders: list[Path], exp: Experiment | ConditionalExperiment, codes: torch.Tensor, progress: bool,
               tell: Callable[[str], None], labels: torch.Tensor | None = None) -> tuple[list[Flow], float]:
    """(replicate r's flow for each folder r, seconds their fits took): each replicate cached in
    its own folder; the missing ones fitted together as one stack (`flow.fit_many`)."""
    tell("flow")
    state = [_stage(d, "flow", exp) for d in folders]
    missing = [r for r, (_, done) in enumerate(state) if not done]
    flows: dict[int, Flow] = {r: Flow.load(d) for r, (d, done) in enumerate(state) if done}
    seconds = sum(float(load_json(d / "stage.json").get("seconds") or 0.0) for d, done in state if done)
    if missing:
        t0 = time.perf_counter()
        fitted = flow_mod.fit_many(codes, [flow_spec(exp, r) for r in missing], progress, labels)
        each = (time.perf_counter() - t0) / len(missing)
        for r, f in zip(missing, fitted):
            f.save(folders[r])
            _done(folders[r], exp, "flow", each)
            flows[r] = f
        seconds += each * len(missing)
    return [flows[r] for r in range(len(folders))], seconds


def run(exp: Experiment, artifacts: str | Path = "artifacts", progress: bool = True,
        on_stage: Callable[[str], None] | None = None) -> Report:
    """The whole pipeline for one experiment; returns (and writes) its report."""
    return build(exp, artifacts, progress, on_stage=on_stage).report


def is_built(exp: Experiment, artifacts: str | Path = "artifacts", stage: str = "report") -> bool:
    """Whether `stage` (and so every stage before it) is cached for this exact config."""
    folder = stage_dir(exp, stage, artifacts)
    if stage == "flow":
        return all(is_cached(folder / f"r{r}", exp, stage) for r in range(exp.eval.replicates))
    return is_cached(folder, exp, stage)


def is_cached(folder: Path, exp: Experiment | ConditionalExperiment, stage: str) -> bool:
    """Whether `folder` holds stage `stage`, finished for exactly `exp`'s config."""
    marker = folder / "stage.json"
    try:
        return marker.exists() and load_json(marker).get("hash") == exp.stage_hash(stage)
    except Exception:
        return False


__all__ = ["Run", "build", "cached_stage", "experiment_dir", "flow_spec", "flow_stage", "is_built", "is_cached", "run",
           "saved", "seed_dir", "stage_dir", "zoo_stage"]
