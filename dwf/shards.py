"""A zoo trained in shards: contiguous runs of members, each trained as one vmapped group by
`train_zoo(members=...)` in its own folder, then concatenated in member order.

    members 0 … n−1  ──split──▶  [0, s), [s, 2s), …  ──train_zoo each──▶  shard zoos  ──concat──▶  zoo

Member i starts from model_seed(seed, i) and reads the same minibatches in any shard
(`dwf.batches`), and Adam, weight decay and the summed loss act per member, so the merged zoo is
the zoo trained at once: the same best epochs, weights equal up to the summation order of the
batched kernels, which depends on the group size (~1e-8 apart at one thread in our tests).

The shards run as Ray tasks (an existing engine, not a home-made scheduler): `Engine(address)`
joins the cluster at `address`, or starts a local one without it. Each task asks for
`cpus_per_shard` CPUs and one GPU when the cluster has GPUs, loads the dataset from its own disk,
and checkpoints its shard every epoch (`train_zoo`), so a task whose worker dies is retried by
Ray and resumes at its last epoch; a finished shard is kept and never retrained. With
`on_ray=False` the shards train one after another in this process (same result). The Ray
plumbing (joining the cluster, resource requests, retries, progress) is `dwf.fanout`'s.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from . import data as data_mod, fanout
from .config import ArchSpec, DataSpec, ZooSpec
from .errors import ConfigError, DwfError
from .zoo import MANIFEST, Zoo, train_zoo

EpochHook = Callable[[range, int], None]   # (the shard's members, its finished epoch)


@dataclass(frozen=True)
class Engine:
    """Where shards run: a Ray cluster at `address` (None: a local one on this machine)."""
    address: str | None = None
    shard_size: int = 8           # members per shard (one task)
    cpus_per_shard: int = 1
    max_retries: int = 3          # Ray retries of a shard whose worker died

    def __post_init__(self):
        if self.shard_size < 1 or self.cpus_per_shard < 1 or self.max_retries < 0:
            raise ConfigError(f"shards need shard_size >= 1, cpus_per_shard >= 1 and max_retries >= 0, got "
                              f"{self.shard_size}, {self.cpus_per_shard} and {self.max_retries}")

    @classmethod
    def from_env(cls, address: str | None = None, shard_size: int = 8) -> "Engine":
        """The engine for `--ray [ADDRESS]`: ADDRESS, else $DWF_RAY_ADDRESS, else a local cluster."""
        return cls(address or os.environ.get("DWF_RAY_ADDRESS") or None, shard_size)


def shard_ranges(n_models: int, shard_size: int) -> list[range]:
    """[0, s), [s, 2s), … covering n_models members."""
    if n_models < 1 or shard_size < 1:
        raise ConfigError(f"a zoo of {n_models} members cannot be split into shards of {shard_size}; "
                          "both must be >= 1")
    return [range(a, min(a + shard_size, n_models)) for a in range(0, n_models, shard_size)]


def train_shard(data: data_mod.Dataset | DataSpec, arch: ArchSpec, spec: ZooSpec, members: range,
                folder: Path, device: str | None = None, on_epoch_end: EpochHook | None = None) -> Zoo:
    """One shard: loaded when its folder holds it finished, else trained there (resuming from
    the folder's checkpoint). `data` may be a spec, loaded here (on a Ray worker)."""
    folder = Path(folder)
    if (folder / MANIFEST).exists():      # written last by Zoo.save: the shard is complete
        return Zoo.load(folder)
    ds = data_mod.load(data) if isinstance(data, DataSpec) else data
    hook = None if on_epoch_end is None else (lambda epoch: on_epoch_end(members, epoch))
    return train_zoo(ds, arch, spec, out_dir=folder, progress=False, device=device, on_epoch_end=hook,
                     members=members)


def merge(shards: list[Zoo], spec: ZooSpec, dataset: str, seconds: float) -> Zoo:
    """The shards' members in order, as one zoo (what `train_zoo` returns for the whole)."""
    first = shards[0]
    params = {k: torch.cat([z.params[k] for z in shards]) for k in first.params}
    models = [m for z in shards for m in z.models]
    if len(models) != spec.n_models:
        raise DwfError(f"the shards hold {len(models)} members, the zoo needs {spec.n_models}")
    info = {"spec": dataclasses.asdict(spec), "dataset": dataset, "train_seconds": seconds,
            "threads": first.info.get("threads"), "shards": [z.n for z in shards]}
    return Zoo(first.arch, params, models, info)


def train_sharded(data: data_mod.Dataset, data_spec: DataSpec, arch: ArchSpec, spec: ZooSpec,
                  out_dir: str | Path, engine: Engine, on_ray: bool = True, device: str | None = None,
                  on_epoch_end: EpochHook | None = None, progress: bool = False) -> Zoo:
    """The zoo of `spec`, trained in shards of `engine.shard_size` members under out_dir/shards/
    (as Ray tasks, or with `on_ray=False` here one after another), merged and saved in out_dir
    (the shard folders are removed once the merged zoo is saved); `progress`: a bar over shards."""
    out, shard_size = Path(out_dir), engine.shard_size
    ranges = shard_ranges(spec.n_models, shard_size)
    folders = [out / "shards" / f"{r.start:05d}-{r.stop:05d}" for r in ranges]
    t0 = time.perf_counter()
    if not on_ray:
        zoos = [train_shard(data, arch, spec, r, f, device, on_epoch_end)
                for r, f in tqdm(list(zip(ranges, folders)), desc="zoo shards", disable=not progress)]
    else:
        zoos = _on_ray(engine, data_spec, arch, spec, ranges, folders, on_epoch_end, progress)
    zoo = merge(zoos, spec, data.name, time.perf_counter() - t0)
    zoo.save(out)
    shutil.rmtree(out / "shards", ignore_errors=True)
    return zoo


def _on_ray(engine: Engine, data_spec: DataSpec, arch: ArchSpec, spec: ZooSpec, ranges: list[range],
            folders: list[Path], on_epoch_end: EpochHook | None, progress: bool) -> list[Zoo]:
    ray = fanout.connect(engine)
    task = fanout.remote(ray, engine, train_shard)
    done = ray.remote(num_cpus=0)(EpochCount).remote()   # every shard tells it of each finished epoch

    def hook(members: range, epoch: int) -> None:         # runs on the worker; counted before the task ends
        ray.get(done.add.remote(len(members)))
        if on_epoch_end is not None:
            on_epoch_end(members, epoch)

    refs = [task.remote(data_spec, arch, spec, r, f, "auto", hook) for r, f in zip(ranges, folders)]
    return fanout.wait_all(ray, refs, "zoo shards", progress, engine,
                           "; its finished epochs are checkpointed, so running again resumes there",
                           ticks=lambda: ray.get(done.count.remote()), total=spec.n_models * spec.epochs,
                           unit="member-epoch")


class EpochCount:
    """A Ray actor counting the member-epochs the shards finish, for one progress bar on the
    driver (a resumed shard reports only the epochs it trains now)."""

    def __init__(self):
        self.n = 0

    def add(self, members: int) -> None:
        self.n += members

    def count(self) -> int:
        return self.n


__all__ = ["Engine", "EpochCount", "merge", "shard_ranges", "train_shard", "train_sharded"]
