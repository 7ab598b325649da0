"""run(experiment): zoo → align → split → PCA → flow (× R replicates) → generate + evaluate, each
stage cached under artifacts/<experiment>/<profile>/seed<seed>/<stage>/ and keyed on the hash of the config
it depends on.

A stage folder is complete when its record (`dwf.cache`) carries the current hash and seed
and its files are unchanged; a folder with another hash is cleared and recomputed. One run at a
time builds in a seed folder (`dwf.lock`; a second one waits). Zoo training checkpoints every
epoch and flow fitting every `eval_every` steps, so an interrupted run resumes where it stopped.
Replicate r's flow (seed + r) lives in flow/r<r>/ and is cached on its own, so raising the
replicate count fits only the new flows. `fit_flows` fits the flows of an experiment and its
ablations together, as one stack per flow shape, before they are built. A variant whose
alignment, PCA or flow is another run's on the same zoo (same stage hash) copies that stage
instead of computing it (`reuse_twin`): a recipe that only samples colder shares its flows.

Only the report stage reads the test split (`Dataset.for_reporting`).
"""
from __future__ import annotations

import contextlib
import logging
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import torch

from . import align, cache, data as data_mod, devices, families, flow as flow_mod, lock, reporting, shards
from .cache import cached_stage, is_cached
from .config import ConditionalExperiment, Experiment
from .data import Dataset
from .flow import Flow
from .errors import Cancelled
from .io import atomic_write_bytes
from .pca import DualPCA
from .report import Report
from .folders import experiment_dir, seed_dir, stage_dir
from .zoo import Zoo, split
from .zoo_stage import GROWN_FROM, zoo_stage

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


def flow_spec(exp: Experiment | ConditionalExperiment, replicate: int):
    """Replicate r's flow: the experiment's, seeded seed + r."""
    return replace(exp.flow, seed=exp.flow.seed + replicate)


def build(exp: Experiment, artifacts: str | Path = "artifacts", progress: bool = True,
          device: str | None = None, evaluate: bool = True,
          on_stage: Callable[[str], None] | None = None, cancel: Callable[[], bool] | None = None,
          engine: shards.Engine | None = None, precision: str | None = None) -> Run:
    """Run (or load from cache) every stage; returns all artifacts. `on_stage(name)` is called
    as each stage starts (for progress displays). `cancel()` is asked at every stage start, zoo
    epoch and flow checkpoint; once it says True the build raises `Cancelled` (what finished is
    kept, so building again resumes). With `engine` the zoo trains in shards on Ray
    (`dwf.shards`; the same zoo, so the same cache), and each member's alignment and each of
    the report's populations run as Ray tasks (`dwf.align`, `dwf.evaluate.evaluate`).
    Every stage computes on `device` in `precision` (`dwf.devices`; None: the caller's choice,
    by default CUDA when present, with bfloat16 autocast there)."""
    check = cancel_check(cancel)
    with lock.locked(seed_dir(exp, artifacts), on_wait=log.warning), devices.using(device, precision):
        return _build(exp, artifacts, progress, evaluate, checked(on_stage, check), check, engine)


def codes(exp: Experiment, artifacts: str | Path = "artifacts") -> Run:
    """The run up to its flows (zoo, alignment, PCA, the fitting members' codes; no flows), each
    stage built or loaded from the cache as `build` does."""
    check = cancel_check(None)
    with lock.locked(seed_dir(exp, artifacts), on_wait=log.warning):
        return _codes(exp, artifacts, False, checked(None, check), check)


def cancel_check(cancel: Callable[[], bool] | None) -> Callable[[], None]:
    """A function that raises `Cancelled` once `cancel()` is true (never, for None)."""
    def check() -> None:
        if cancel is not None and cancel():
            raise Cancelled("build cancelled: its finished stages and last zoo/flow checkpoint are kept, "
                            "so building again resumes there")
    return check


def checked(on_stage: Callable[[str], None] | None, check: Callable[[], None]) -> Callable[[str], None]:
    """`on_stage` that first checks for cancellation."""
    def tell(name: str) -> None:
        check()
        if on_stage is not None:
            on_stage(name)
    return tell


def _build(exp: Experiment, artifacts: str | Path, progress: bool, evaluate: bool,
           tell: Callable[[str], None], check: Callable[[], None], engine: shards.Engine | None = None) -> Run:
    run = _codes(exp, artifacts, progress, tell, check, engine)
    folders = flow_folders(exp, artifacts)
    for d in folders:
        reuse_twin(d, exp, "flow", artifacts)
    run.flows, run.timings["flow"] = flow_stage(folders, exp, run.codes, progress, tell, check=check)
    if evaluate:
        def report(d: Path) -> Report:
            return saved(reporting.report(run, d, progress=progress, on_stage=tell, engine=engine), d / "report.json")

        run.report, _ = cached_stage(stage_dir(exp, "report", artifacts), exp, "report",
                                     lambda d: Report.load(d / "report.json"), report, tell)
        publish(stage_dir(exp, "report", artifacts) / "report.json", run.root / "report.json")
    return run


def _codes(exp: Experiment, artifacts: str | Path, progress: bool, tell: Callable[[str], None],
           check: Callable[[], None], engine: shards.Engine | None = None) -> Run:
    """The run up to its flows (zoo, alignment, split, PCA, the fitting members' codes); flows empty."""
    root = experiment_dir(exp, artifacts)
    timings: dict[str, float] = {}
    tell("data")
    data = data_mod.load(exp.data)

    def stage(name, load, compute):
        folder = stage_dir(exp, name, artifacts)
        reuse_twin(folder, exp, name, artifacts)
        return cached_stage(folder, exp, name, load, compute, tell)

    zoo, timings["zoo"] = zoo_stage(exp, data, artifacts, progress, tell=tell, check=check, engine=engine)
    if exp.members is not None:   # the first members only (with the independent order: the zoo of that size)
        zoo = zoo.select(list(range(exp.members)))
    aligned, timings["align"] = stage("align", Zoo.load, lambda d: saved(
        align_zoo(zoo, exp, data, progress, engine), d))
    fit_idx, held_idx = split(aligned.n, exp.pca.held_out, exp.zoo.seed, keep=int(aligned.info.get("reference", 0)))
    fit_vectors = aligned.select(fit_idx).vectors()
    pca, timings["pca"] = stage("pca", lambda d: DualPCA.load(d / "pca.safetensors"), lambda d: saved(
        DualPCA(exp.pca.n_components, exp.pca.variance, device=devices.current().device).fit(fit_vectors),
        d / "pca.safetensors"))
    codes = pca.transform(fit_vectors)
    return Run(exp, root, data, zoo, aligned, fit_idx, held_idx, pca, codes, [], timings=timings)


def flow_folders(exp: Experiment, artifacts: str | Path = "artifacts") -> list[Path]:
    """Replicate r's flow folder flow/r<r>/, for every replicate."""
    return [stage_dir(exp, "flow", artifacts) / f"r{r}" for r in range(exp.eval.replicates)]


def fit_flows(exps: Sequence[Experiment], artifacts: str | Path = "artifacts", progress: bool = False,
              on_stage: Callable[[str], None] | None = None) -> int:
    """Fit the missing flows of several runs (an experiment and its ablations) before they are
    built, as few stacks as their shapes allow: the replicates of every run whose flow spec
    differs only in seed and whose codes have one shape train as one stack (`flow.fit_many`, one
    code matrix per replicate), which costs little more than one run's replicates (per-step
    overhead dominates these small nets). Each flow is saved and recorded in its own run's
    folder with its share of the stack's seconds, so `build` then loads it; a replicate with no
    partner is left to `build`. Returns how many flows were fitted."""
    tell = checked(on_stage, lambda: None)
    with contextlib.ExitStack() as held:
        for folder in sorted({seed_dir(e, artifacts) for e in exps}):
            held.enter_context(lock.locked(folder, on_wait=log.warning))
        tell("codes")   # every run's zoo, alignment and PCA (mostly shared or cached)
        groups: dict[tuple, list[tuple[Experiment, int, Path, torch.Tensor]]] = {}
        for exp in exps:
            codes = None
            for r, d in enumerate(flow_folders(exp, artifacts)):
                reuse_twin(d, exp, "flow", artifacts)
                if cache.open_stage(d, exp, "flow") is None:
                    if codes is None:
                        codes = _codes(exp, artifacts, progress, lambda name: None, lambda: None).codes
                    groups.setdefault((replace(flow_spec(exp, r), seed=0), tuple(codes.shape)), []).append(
                        (exp, r, d, codes))
        fitted = 0
        for group in (g for g in groups.values() if len({id(e) for e, *_ in g}) > 1):
            tell(f"flows ×{len(group)}")
            t0 = time.perf_counter()
            ck = group[0][2] / "checkpoint.safetensors"     # resumed by a rerun with the same missing set
            flows = flow_mod.fit_many([c for *_, c in group], [flow_spec(e, r) for e, r, _, _ in group], progress,
                                      checkpoint_path=ck)
            ck.unlink(missing_ok=True)
            each = (time.perf_counter() - t0) / len(group)
            for (exp, _, d, _), f in zip(group, flows):
                f.save(d)
                cache.finish(d, exp, "flow", each)
            fitted += len(group)
        return fitted


def reuse_twin(folder: Path, exp: Experiment, name: str, artifacts: str | Path = "artifacts") -> bool:
    """When `folder` lacks stage `name` for `exp`'s config but the same stage folder of another run
    on this zoo (the experiment or one of its variants, under one seed folder) holds it finished
    for the same stage hash, copy that folder here (record included: it says how the files were
    made) instead of computing the stage again. Returns whether it copied. The copy lands under
    a temporary name and is renamed into place, so a crash never leaves half a stage."""
    if is_cached(folder, exp, name):
        return False
    rel = folder.relative_to(experiment_dir(exp, artifacts))
    base = seed_dir(exp, artifacts)
    for twin in (base / rel, *sorted((base / "variants").glob(f"*/{rel.as_posix()}"))):
        if twin == folder or not is_cached(twin, exp, name):
            continue
        tmp = folder.with_name(f".{folder.name}.copying")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(twin, tmp, ignore=shutil.ignore_patterns(".*", cache.PENDING))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
        log.info("%s: stage %s copied from %s (the same config)", folder, name, twin)
        return True
    return False


def align_zoo(zoo: Zoo, exp: Experiment, data: Dataset, progress: bool = False,
              engine: shards.Engine | None = None) -> Zoo:
    """Every member permuted to match the reference member (same functions, aligned weights);
    with `engine`, each member as a Ray task."""
    return align.align_zoo(zoo, families.symmetry(exp.arch, data.x_train), exp.align,
                           exclude=families.buffer_names(exp.arch), progress=progress, engine=engine)


def publish(source: Path, path: Path) -> None:
    """Copy the report stage's report.json to the experiment's top level whenever the copy is
    missing or differs (deleted or edited by hand since)."""
    text = source.read_bytes()
    if not path.exists() or path.read_bytes() != text:
        atomic_write_bytes(path, text)


def saved(artifact, path: Path):
    """`artifact.save(path)`, then the artifact (for stage functions that compute and save)."""
    artifact.save(path)
    return artifact


def flow_stage(folders: list[Path], exp: Experiment | ConditionalExperiment, codes: torch.Tensor, progress: bool,
               tell: Callable[[str], None], labels: torch.Tensor | None = None,
               check: Callable[[], None] = lambda: None) -> tuple[list[Flow], float]:
    """(replicate r's flow for each folder r, seconds their fits took): each replicate cached in
    its own folder; the missing ones fitted together as one stack (`flow.fit_many`), `check()`
    running after every checkpoint."""
    tell("flow")
    records = [cache.open_stage(d, exp, "flow") for d in folders]
    missing = [r for r, rec in enumerate(records) if rec is None]
    flows: dict[int, Flow] = {r: Flow.load(d) for r, (d, rec) in enumerate(zip(folders, records)) if rec}
    seconds = sum(rec.seconds for rec in records if rec)
    if missing:
        t0 = time.perf_counter()
        ck = folders[missing[0]] / "checkpoint.safetensors"     # resumed by a rerun with the same missing set
        fitted = flow_mod.fit_many(codes, [flow_spec(exp, r) for r in missing], progress, labels, checkpoint_path=ck,
                                   on_eval=lambda step: check())
        ck.unlink(missing_ok=True)
        each = (time.perf_counter() - t0) / len(missing)
        for r, f in zip(missing, fitted):
            f.save(folders[r])
            cache.finish(folders[r], exp, "flow", each)
            flows[r] = f
        seconds += each * len(missing)
    return [flows[r] for r in range(len(folders))], seconds


def run(exp: Experiment, artifacts: str | Path = "artifacts", progress: bool = True,
        on_stage: Callable[[str], None] | None = None) -> Report:
    """The whole pipeline for one experiment; returns (and writes) its report."""
    return build(exp, artifacts, progress, on_stage=on_stage).report


def is_built(exp: Experiment, artifacts: str | Path = "artifacts", stage: str = "report") -> bool:
    """Whether `stage` (and so every stage before it) is cached for this exact config."""
    if stage == "flow":
        return all(is_cached(d, exp, stage) for d in flow_folders(exp, artifacts))
    return is_cached(stage_dir(exp, stage, artifacts), exp, stage)


__all__ = ["GROWN_FROM", "Run", "build", "cancel_check", "checked", "cached_stage", "experiment_dir", "fit_flows",
           "flow_folders", "flow_spec", "flow_stage", "is_built", "is_cached", "run",
           "publish", "saved", "seed_dir", "stage_dir", "zoo_stage"]
