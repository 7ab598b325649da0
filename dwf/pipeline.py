"""run(experiment): zoo → align → split → PCA → flow (× R replicates) → generate + evaluate, each
stage cached under artifacts/<experiment>/<profile>/seed<seed>/<stage>/ and keyed on the hash of the config
it depends on.

A stage folder is complete when its record (`dwf.cache`) carries the current hash and seed
and its files are unchanged; a folder with another hash is cleared and recomputed. One run at a
time builds in a seed folder (`dwf.lock`; a second one waits). Zoo training checkpoints every
epoch and flow fitting every `eval_every` steps, so an interrupted run resumes where it stopped.
Replicate r's flow (seed + r) lives in flow/r<r>/ and is cached on its own, so raising the
replicate count fits only the new flows.

Only the report stage reads the test split (`Dataset.for_reporting`).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from . import align, cache, data as data_mod, devices, families, flow as flow_mod, lock, reporting, shards
from .cache import cached_stage, is_cached
from .config import ConditionalExperiment, Experiment
from .data import Dataset
from .flow import Flow
from .errors import ArtifactError, Cancelled, DwfError
from .io import atomic_write_bytes
from .pca import DualPCA
from .report import Report
from .zoo import Zoo, grow, split, train_zoo

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
    root = experiment_dir(exp, artifacts)
    timings: dict[str, float] = {}
    tell("data")
    data = data_mod.load(exp.data)

    def stage(name, load, compute, folder=None):
        return cached_stage(folder or stage_dir(exp, name, artifacts), exp, name, load, compute, tell)

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
    flows, timings["flow"] = flow_stage([stage_dir(exp, "flow", artifacts) / f"r{r}" for r in range(exp.eval.replicates)],
                                        exp, codes, progress, tell, check=check)

    run = Run(exp, root, data, zoo, aligned, fit_idx, held_idx, pca, codes, flows, timings=timings)
    if evaluate:
        def report(d: Path) -> Report:
            return saved(reporting.report(run, d, progress=progress, on_stage=tell, engine=engine), d / "report.json")

        run.report, _ = stage("report", lambda d: Report.load(d / "report.json"), report)
        publish(stage_dir(exp, "report", artifacts) / "report.json", root / "report.json")
    return run


def zoo_stage(exp: Experiment, data: Dataset, artifacts: str | Path = "artifacts", progress: bool = True,
              device: str | None = None, tell: Callable[[str], None] = lambda name: None,
              check: Callable[[], None] = lambda: None, engine: shards.Engine | None = None) -> tuple[Zoo, float]:
    """(the experiment's trained zoo, seconds its training took), from the cache when built;
    `check()` runs after every epoch (it raises to stop training there; on Ray, when the shards
    are done). With `engine`, the zoo trains in shards on Ray (`dwf.shards`).

    In the independent data order a zoo grows: a smaller zoo of the same spec in the folder is
    extended by its new members only (`zoo.grow`), and a run of the first `members` (one size of
    the scaling study) trains no more members than it reads. Its zoo is then at least
    `members` strong (the caller takes the first ones), not always `exp.zoo.n_models`.

    Growing survives a crash: the smaller zoo is kept in the stage folder (GROWN_FROM) until the
    grown one is saved, so a rerun grows from it again and resumes the new members' checkpoint."""
    folder = stage_dir(exp, "zoo", artifacts)
    with lock.locked(seed_dir(exp, artifacts), on_wait=log.warning):
        had, source = _grown_size(folder, exp), folder
        if had is None:
            interrupted = _interrupted_growth(folder, exp)
            if interrupted is not None:
                source, had = folder / GROWN_FROM, interrupted.n
        n = exp.zoo.n_models
        if exp.members is not None and exp.zoo.data_order == "independent":
            n = had if had is not None and had >= exp.members else exp.members
        target = replace(exp, zoo=replace(exp.zoo, n_models=n), members=None)
        smaller = None
        if had is not None and had < n:
            if source == folder:   # its digests, read once and only here: the grown zoo builds on these files
                cache.intact(folder, cache.read(folder), "zoo")
            smaller = Zoo.load(source)

        def load(d: Path) -> Zoo:
            zoo = Zoo.load(d)
            if zoo.arch != exp.arch or zoo.n != n:
                raise ArtifactError(f"{d} holds {zoo.n} nets of {zoo.arch}, but {exp.name} [{exp.profile}] trains "
                                    f"{n} of {exp.arch}; delete {d} to retrain it")
            return zoo

        def compute(d: Path) -> Zoo:
            if engine is not None:
                zoo = shards.train_sharded(data, exp.data, exp.arch, target.zoo, d, engine, device=device,
                                           progress=progress)
                check()
                return zoo
            train = dict(out_dir=d, progress=progress, device=device, on_epoch_end=lambda epoch: check())
            if smaller is None:
                return train_zoo(data, exp.arch, target.zoo, **train)
            log.info("growing the zoo in %s from %d to %d members", d, smaller.n, n)
            if not (d / GROWN_FROM / "manifest.json").exists():
                smaller.save(d / GROWN_FROM)
            grown = saved(grow(smaller, data, target.zoo, **train), d)
            shutil.rmtree(d / GROWN_FROM)
            return grown

        return cached_stage(folder, target, "zoo", load, compute, tell)


GROWN_FROM = "grown_from"   # the smaller zoo a growing zoo stage extends, until the grown one is saved


def _interrupted_growth(folder: Path, exp: Experiment) -> Zoo | None:
    """The smaller zoo an interrupted growth left in `folder`, when it is this experiment's
    (same zoo spec but n_models, independent order); else None."""
    base = folder / GROWN_FROM
    if exp.zoo.data_order != "independent" or not (base / "manifest.json").exists():
        return None
    try:
        zoo = Zoo.load(base)
    except DwfError:
        return None
    trained = zoo.info.get("spec") or {}
    same = {**trained, "n_models": 0} == {**dataclasses.asdict(exp.zoo), "n_models": 0}
    return zoo if same and zoo.arch == exp.arch else None


def _grown_size(folder: Path, exp: Experiment) -> int | None:
    """How many members the finished zoo in `folder` has, when it is this experiment's zoo up
    to its size (same data, architecture and zoo spec but n_models, independent data order, files
    of their recorded sizes), so that its first members, or the zoo grown from it, are the
    experiment's; else None. Their digests are checked by whoever reads the files next."""
    rec = cache.read(folder)
    if exp.zoo.data_order != "independent" or rec is None or rec.seed != exp.seed:
        return None
    norm = lambda d: json.loads(json.dumps(d, default=str))  # noqa: E731   (tuples as JSON lists)
    want, had = norm({k: exp.to_dict()[k] for k in ("data", "arch", "zoo")}), rec.config
    if ({k: had.get(k) for k in ("data", "arch")} != {k: want[k] for k in ("data", "arch")}
            or {**had.get("zoo", {}), "n_models": 0} != {**want["zoo"], "n_models": 0}
            or not cache.intact(folder, rec, "zoo", verify=False)):   # sizes; digests when loaded or grown
        return None
    return int(had["zoo"]["n_models"])


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
    folder = stage_dir(exp, stage, artifacts)
    if stage == "flow":
        return all(is_cached(folder / f"r{r}", exp, stage) for r in range(exp.eval.replicates))
    return is_cached(folder, exp, stage)


__all__ = ["GROWN_FROM", "Run", "build", "cancel_check", "checked", "cached_stage", "experiment_dir", "flow_spec", "flow_stage", "is_built", "is_cached", "run",
           "publish", "saved", "seed_dir", "stage_dir", "zoo_stage"]
