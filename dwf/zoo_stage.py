"""The zoo stage of a run: trained once and cached, resumed from its epoch checkpoints, and in
the independent data order grown from a smaller zoo of the same spec (`dwf.zoo.grow`)."""
from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Callable

from . import cache, lock, shards
from .cache import cached_stage
from .config import Experiment
from .data import Dataset
from .errors import ArtifactError, DwfError
from .folders import seed_dir, stage_dir
from .zoo import Zoo, grow, train_zoo

log = logging.getLogger(__name__)


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
            grown = grow(smaller, data, target.zoo, **train)
            grown.save(d)
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


__all__ = ["GROWN_FROM", "zoo_stage"]
