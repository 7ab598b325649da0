"""The stage cache: when a stage folder counts as done, and what it records.

A stage folder is done when its record `stage.json` (written last, atomically) carries

    hash    the hash of every spec the stage depends on (`Experiment.stage_hash`, seeds included)
    seed    the run's seed, which is also in the folder's path (runs with other seeds never meet)
    files   {relative path: [size, sha256]} of every file the stage wrote

and every recorded file is still there with that size and digest. So a deleted file makes the
stage run again, while a file replaced or edited since (another zoo copied in, a truncated
weight file) is refused with an `ArtifactError` naming it, never loaded as this run's result.
An unfinished folder keeps a `pending.json` with the hash it is being computed for: the same
config resumes there (the zoo's epoch checkpoints, the flow's step checkpoints); any other
config clears it first. The record also keeps the thread count, which bit-identity needs.
"""
from __future__ import annotations

import hashlib
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from . import __version__, devices
from .errors import ArtifactError
from .io import load_json, save_json
from .record import from_json, to_json

log = logging.getLogger(__name__)
RECORD, PENDING = "stage.json", "pending.json"


@dataclass(frozen=True)
class FileDigest:
    size: int
    sha256: str


@dataclass(frozen=True)
class StageRecord:
    hash: str
    experiment: str
    profile: str
    seed: int | None
    seconds: float
    threads: int                       # torch threads: results are bit-identical only at the same count
    dwf_version: str
    files: dict[str, FileDigest]       # by path relative to the stage folder
    config: dict
    compute: str = ""                  # device and precision (`dwf.devices`); "" in records before it
    cpu: str = ""                      # torch's CPU kernel set ("AVX2", "AVX512"): another one computes
                                       # other last bits, as other threads do; "" in records before it


def digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _files(d: Path) -> list[Path]:
    """The files a stage wrote in d (not its record, pending marker, lock or temp files)."""
    return sorted(p for p in d.rglob("*") if p.is_file() and p.name not in (RECORD, PENDING)
                  and not p.name.startswith("."))


def read(d: Path) -> StageRecord | None:
    """The folder's record, or None where it has none or one this version cannot read."""
    if not (d / RECORD).exists():
        return None
    try:
        return from_json(StageRecord, load_json(d / RECORD), str(d / RECORD))
    except ArtifactError as e:
        log.warning("%s: unreadable stage record (%s); the stage will be recomputed", d, e)
        return None


def check(d: Path, exp, name: str, verify: bool = True) -> StageRecord | None:
    """The record when folder d holds stage `name` finished for exactly `exp`'s config with all
    its files present (None otherwise). With `verify`, each file's digest is checked too, and a
    file that changed since the stage wrote it raises ArtifactError."""
    rec = read(d)
    if rec is None or rec.hash != exp.stage_hash(name) or rec.seed != getattr(exp, "seed", None):
        return None
    return rec if intact(d, rec, name, verify) else None


def intact(d: Path, rec: StageRecord, name: str, verify: bool = True) -> bool:
    """Whether every file of the record is in d (False, with a warning, if one is missing);
    a file that changed since (size, or with `verify` its SHA-256) raises ArtifactError."""
    for rel, f in rec.files.items():
        p = d / rel
        if not p.is_file():
            log.warning("%s is missing; stage %s will be recomputed", p, name)
            return False
        if p.stat().st_size != f.size or (verify and digest(p) != f.sha256):
            raise ArtifactError(f"{p} changed after stage {name!r} wrote it (size or SHA-256 differs from "
                                f"{d / RECORD}); it is not this run's result. Delete {d} to recompute the "
                                "stage, or restore the file")
    return True


def open_stage(d: Path, exp, name: str) -> StageRecord | None:
    """The record of a finished stage in d; otherwise prepare d to compute it (a folder pending
    for this same config is kept so the stage can resume, anything else is cleared) and None."""
    rec = check(d, exp, name)
    if rec is not None:
        return rec
    h = exp.stage_hash(name)
    pending = d / PENDING
    resumable = pending.exists() and not (d / RECORD).exists() and _pending_hash(pending) == h
    if d.exists() and not resumable:
        shutil.rmtree(d)
    d.mkdir(parents=True, exist_ok=True)
    save_json(pending, {"hash": h})
    return None


def _pending_hash(path: Path) -> str | None:
    try:
        return load_json(path).get("hash")
    except (ArtifactError, AttributeError):
        return None


def finish(d: Path, exp, name: str, seconds: float) -> StageRecord:
    """Record stage `name` in d as done for `exp` (the record is written last)."""
    files = {str(p.relative_to(d)): FileDigest(p.stat().st_size, digest(p)) for p in _files(d)}
    rec = StageRecord(exp.stage_hash(name), exp.name, exp.profile, getattr(exp, "seed", None), seconds,
                      torch.get_num_threads(), __version__, files, exp.to_dict(), str(devices.current()),
                      torch.backends.cpu.get_cpu_capability())
    save_json(d / RECORD, to_json(rec))
    (d / PENDING).unlink(missing_ok=True)
    return rec


def cached_stage(folder: Path, exp, name: str, load: Callable[[Path], object],
                 compute: Callable[[Path], object], tell: Callable[[str], None]) -> tuple:
    """(artifact, seconds its computation took): loaded from the stage folder when finished for
    this config, else computed (the function saves into the folder) and recorded."""
    tell(name)
    rec = open_stage(folder, exp, name)
    if rec is not None:
        return load(folder), rec.seconds
    t0 = time.perf_counter()
    artifact = compute(folder)
    seconds = time.perf_counter() - t0
    finish(folder, exp, name, seconds)
    return artifact, seconds


def is_cached(folder: Path, exp, stage: str) -> bool:
    """Whether `folder` holds stage `stage` finished for exactly `exp`'s config (files present
    with their recorded sizes; digests are checked when the stage is loaded)."""
    try:
        return check(folder, exp, stage, verify=False) is not None
    except ArtifactError:
        return False


__all__ = ["FileDigest", "StageRecord", "cached_stage", "check", "finish", "intact", "is_cached", "open_stage", "read"]
