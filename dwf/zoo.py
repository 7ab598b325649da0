"""The Zoo artifact (stacked safetensors + JSON manifest) and `train_zoo`, which trains every
seed at once: stacked parameters, one vmapped forward, one AdamW over the stack.

Adam and decoupled weight decay act elementwise and the summed loss separates across models, so
one optimizer over the stacked tensors is exactly n independent optimizers.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from . import archs, checkpoint, devices, stacked
from .batches import DATA_ORDERS, minibatches, model_seed
from .config import ArchSpec, ZooSpec
from .data import Dataset
from .errors import ArtifactError, ConfigError
from .io import load_json, load_tensors, save_json, save_tensors
from .layout import ParamLayout
from .task import Task, task_for

log = logging.getLogger(__name__)
# architectures whose batched (vmap) training step runs under bfloat16 autocast. Measured on an
# H200 with torch 2.11: the convnets' batched BatchNorm fails in backward ("expected running_mean
# to have type BFloat16") and the transformers' efficient attention too ("LSE is not correctly
# aligned"), so those train in float32; their predictions do autocast.
MIXED_TRAINING = ("mlp",)
WEIGHTS, MANIFEST, CKPT = "weights.safetensors", "manifest.json", "checkpoint.safetensors"


@dataclass
class Zoo:
    """n networks of one architecture. params: {name: (n, *shape)}; models: per-model metrics."""
    arch: ArchSpec
    params: dict[str, torch.Tensor]
    models: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        n = self.layout.check(self.params)
        if self.models and len(self.models) != n:
            raise ArtifactError(f"manifest lists {len(self.models)} models, the weights hold {n}")

    @property
    def n(self) -> int:
        return next(iter(self.params.values())).shape[0]

    @functools.cached_property
    def layout(self) -> ParamLayout:
        return ParamLayout.from_module(archs.build(self.arch))

    def module(self) -> torch.nn.Module:
        """An (untrained) instance of the architecture, for functional calls."""
        return archs.build(self.arch)

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        return [{k: v[i] for k, v in self.params.items()} for i in range(self.n)]

    def vectors(self) -> torch.Tensor:
        """(n, d) flattened weights."""
        return self.layout.flatten(self.params, stacked=True)

    @classmethod
    def from_vectors(cls, arch: ArchSpec, X: torch.Tensor, models=None, info=None) -> "Zoo":
        layout = ParamLayout.from_module(archs.build(arch))
        return cls(arch, layout.unflatten_stacked(X), list(models or []), dict(info or {}))

    def select(self, idx: list[int]) -> "Zoo":
        """The members `idx`, in that order (their manifest rows and the zoo's info kept)."""
        return Zoo(self.arch, {k: v[idx] for k, v in self.params.items()},
                   [self.models[i] for i in idx] if self.models else [], dict(self.info))

    def metric(self, key: str) -> torch.Tensor:
        return torch.tensor([m[key] for m in self.models])

    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        save_tensors(d / WEIGHTS, self.params)
        save_json(d / MANIFEST, {"arch": dataclasses.asdict(self.arch), "models": self.models,
                                 "info": self.info})

    @classmethod
    def load(cls, directory: str | Path) -> "Zoo":
        d = Path(directory)
        man = load_json(d / MANIFEST)
        try:
            arch = ArchSpec(**{**man["arch"], "hidden": tuple(man["arch"]["hidden"])})
        except (KeyError, TypeError) as e:
            raise ArtifactError(f"{d / MANIFEST} has no valid 'arch' entry ({e}); "
                                "it was not written by dwf or is damaged") from e
        return cls(arch, load_tensors(d / WEIGHTS), man.get("models", []), man.get("info", {}))


def split(n: int, held_out: float, seed: int, keep: int = 0) -> tuple[list[int], list[int]]:
    """(fitting, held-out) member indices: a seeded ceil(held_out · n) members are held out of
    PCA and flow fitting, never member `keep` (the alignment reference), and at least 2 stay in."""
    if not 0 <= held_out < 1:
        raise ConfigError(f"held_out must be a share in [0, 1), got {held_out}")
    k = min(math.ceil(held_out * n), n - 2)
    if k <= 0:
        return list(range(n)), []
    others = [i for i in range(n) if i != keep]
    order = torch.randperm(len(others), generator=torch.Generator().manual_seed(seed)).tolist()
    held = sorted(others[j] for j in order[:k])
    return [i for i in range(n) if i not in held], held


def learning_rate(spec: ZooSpec, step: int, total_steps: int) -> float:
    """The learning rate of a given optimizer step (0-based): constant, or a cosine from
    `spec.lr` down to 0 at the last step, so every model ends training with settled weights and
    BatchNorm statistics."""
    if spec.schedule == "constant":
        return spec.lr
    return spec.lr * 0.5 * (1 + math.cos(math.pi * step / max(1, total_steps)))


def _score(model, params, x, y, task: Task, compute: devices.Compute) -> torch.Tensor:
    """(n,) accuracy or Spearman ρ of n stacked models (on the CPU)."""
    return task.score(stacked.predict(model, params, x, task=task, compute=compute), y.cpu())


def train_zoo(data: Dataset, arch: ArchSpec, spec: ZooSpec, out_dir: str | Path | None = None,
              progress: bool = True, device: str | None = None,
              on_epoch_end: Callable[[int], None] | None = None, members: range | None = None) -> Zoo:
    """Train `spec.n_models` nets at once (or only `members`, a run of indices into that zoo,
    which train as they would in the whole: `dwf.shards`, `grow`); keep, per
    model, the epoch with the best validation score (accuracy, or Spearman ρ for a regression dataset).

    With `out_dir`, a checkpoint is written after every epoch and a later call resumes from it
    (identical result to an uninterrupted run at the same thread count); the finished zoo is
    saved there too. The checkpoint is one file (weights, optimizer state and, in its header,
    the epoch, losses and a fingerprint of the arch, spec and data), written atomically: a crash
    leaves either the previous epoch's checkpoint or this one, and a checkpoint of another
    configuration is never resumed.

    Trains on `device` (None: the run's, `dwf.devices`), with the forward passes in bfloat16
    autocast when the run is mixed-precision (the weights and optimizer stay float32), except
    for the kinds outside `MIXED_TRAINING`, which train in float32.
    """
    if spec.schedule not in ("constant", "cosine"):
        raise ConfigError(f"unknown zoo learning-rate schedule {spec.schedule!r}; use 'constant' or 'cosine'")
    if spec.data_order not in DATA_ORDERS:
        raise ConfigError(f"unknown zoo data order {spec.data_order!r}; use one of {DATA_ORDERS}")
    compute = devices.current() if device is None else devices.current().on(device)
    dev = compute.device
    task = task_for(data)
    model = archs.build(arch).to(dev)
    if arch.kind not in MIXED_TRAINING:
        compute = dataclasses.replace(compute, precision="fp32")
    members = range(spec.n_models) if members is None else members
    n = len(members)
    if n < 1 or members.start < 0 or members.stop > spec.n_models or members.step != 1:
        raise ConfigError(f"members {members} are not a run of indices into a zoo of {spec.n_models}")
    inits = [archs.build(arch, seed=model_seed(spec.seed, i)).state_dict() for i in members]
    names = [k for k, _ in model.named_parameters()]
    params = {k: torch.stack([sd[k] for sd in inits]).to(dev).requires_grad_() for k in names}
    # persistent buffers (BatchNorm running statistics): stacked too, updated in place per model
    buffers = {k: torch.stack([sd[k] for sd in inits]).to(dev) for k in inits[0] if k not in names}
    state = {**params, **buffers}                                             # same tensor objects
    best = {k: v.detach().clone() for k, v in state.items()}
    best_val = torch.full((n,), -1.0)
    best_epoch = torch.zeros(n, dtype=torch.long)
    # fused: one kernel for the whole stacked update (same maths as the default implementation)
    opt = torch.optim.AdamW(list(params.values()), lr=spec.lr, weight_decay=spec.weight_decay,
                            fused=True)
    start_epoch, losses = 0, []

    ck = Path(out_dir) / CKPT if out_dir else None
    fp = checkpoint.fingerprint(dataclasses.asdict(arch), dataclasses.asdict(spec), data.name, len(data.x_train),
                                [members.start, members.stop])
    resumed = _resume(ck, fp, state, best, best_val, best_epoch, opt) if ck is not None else None
    if resumed is not None:
        start_epoch, losses = resumed
        log.info("resuming zoo training at epoch %d", start_epoch)

    xtr, ytr = data.x_train.to(dev), data.y_train.to(dev)
    xval, yval = data.x_val.to(dev), data.y_val.to(dev)
    _check_fits(model, xtr, arch, data.name)
    N, B = len(xtr), min(spec.batch_size, len(xtr))
    steps = N // B
    if n > N and spec.data_order == "rotated":
        raise ConfigError(f"{n} models but only {N} training samples: every model needs its own "
                          "starting point in the data; train fewer models or use more data")
    t0 = time.perf_counter()
    bar = tqdm(total=spec.epochs * steps, initial=start_epoch * steps, disable=not progress,
               desc=f"zoo: {n} models", unit="step")
    for epoch in range(start_epoch, spec.epochs):
        epoch_loss = torch.zeros(n, device=dev)
        model.train()
        batches = minibatches(xtr, ytr, spec.seed, epoch, members, spec.n_models, B, spec.data_order)
        for s, (x, y) in enumerate(batches):                                  # (n, B, ...), (n, B)
            opt.param_groups[0]["lr"] = learning_rate(spec, epoch * steps + s, spec.epochs * steps)
            with devices.autocast(compute):
                outputs = stacked.forward(model, state, x, shared_input=False)  # (n, B, C)
            loss = task.loss(outputs.float(), y).mean(1)                       # (n,)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            epoch_loss += loss.detach()
            bar.update()
        model.eval()
        detached = {k: v.detach() for k, v in state.items()}
        val_acc = _score(model, detached, xval, yval, task, compute)
        better = val_acc > best_val
        for k in best:
            best[k][better.to(dev)] = detached[k][better.to(dev)]
        best_val = torch.where(better, val_acc, best_val)
        best_epoch = torch.where(better, torch.full_like(best_epoch, epoch), best_epoch)
        losses.append((epoch_loss / steps).cpu().tolist())
        bar.set_postfix(val_acc=f"{val_acc.mean():.3f}")
        if ck is not None:
            _checkpoint(ck, fp, epoch + 1, state, best, best_val, best_epoch, opt, losses)
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    bar.close()

    # no test score here: the test split is the report stage's alone (dwf.data)
    models = [{"seed": model_seed(spec.seed, i), "best_epoch": int(best_epoch[j]),
               "val_acc": float(best_val[j]),
               "train_loss": [ep[j] for ep in losses]} for j, i in enumerate(members)]
    zoo = Zoo(arch, {k: v.cpu() for k, v in best.items()}, models,
              {"spec": dataclasses.asdict(spec), "dataset": data.name,
               "train_seconds": time.perf_counter() - t0, "threads": torch.get_num_threads(),
               "compute": str(compute)})
    if out_dir is not None:
        zoo.save(out_dir)
        ck.unlink(missing_ok=True)
    return zoo


def grow(zoo: Zoo, data: Dataset, spec: ZooSpec, **train) -> Zoo:
    """`zoo` (the first zoo.n members of a zoo of `spec`) extended to spec.n_models members:
    only the new members train (`train_zoo(..., members=range(zoo.n, spec.n_models), **train)`).
    Needs the independent data order, under which the result is the zoo trained at full size."""
    if spec.data_order != "independent":
        raise ConfigError("only a zoo with data_order='independent' can grow: in the rotated order every "
                          "member's minibatches depend on the zoo's size")
    trained = zoo.info.get("spec")
    if trained != {**dataclasses.asdict(spec), "n_models": trained.get("n_models") if trained else None}:
        raise ConfigError(f"the zoo was trained with {trained}, not as the first members of {spec}; "
                          "train a new zoo instead")
    if spec.n_models <= zoo.n:
        raise ConfigError(f"the zoo already has {zoo.n} members; grow it to more than that, not {spec.n_models}")
    new = train_zoo(data, zoo.arch, spec, members=range(zoo.n, spec.n_models), **train)
    return Zoo(zoo.arch, {k: torch.cat([zoo.params[k], new.params[k]]) for k in zoo.params},
               zoo.models + new.models, {**new.info, "grown_from": zoo.n,
                                         "train_seconds": zoo.info.get("train_seconds", 0.0) + new.info["train_seconds"]})


def _check_fits(model: torch.nn.Module, x: torch.Tensor, arch: ArchSpec, dataset: str) -> None:
    """One forward pass on two training inputs, so a data/architecture mismatch (input shape,
    token ids beyond the vocabulary) is reported before any training."""
    with torch.no_grad():
        try:
            model.eval()(x[:2])
        except (RuntimeError, IndexError, ValueError) as e:
            raise ConfigError(f"{dataset} inputs of shape {tuple(x.shape[1:])} (values {x.min().item()}.."
                              f"{x.max().item()}) do not fit the {arch.kind} architecture {arch}: {e}. "
                              "Match in_dim/image_size/vocab to the data") from e


def _checkpoint(path: Path, fp: str, epoch, state, best, best_val, best_epoch, opt, losses) -> None:
    t = {f"state.{k}": v.detach() for k, v in state.items()} | {f"best.{k}": v for k, v in best.items()}
    t |= {"best_val": best_val, "best_epoch": best_epoch} | checkpoint.optimizer_tensors(opt)
    checkpoint.save(path, fp, t, {"epoch": epoch, "losses": losses})


def _resume(path: Path, fp: str, state, best, best_val, best_epoch, opt) -> tuple[int, list] | None:
    """(epoch, losses) of the checkpoint restored into the training state; None without one for `fp`."""
    saved = checkpoint.load(path, fp)
    if saved is None:
        return None
    t, meta = saved
    try:
        epoch, losses = int(meta["epoch"]), list(meta["losses"])
        if len(losses) != epoch:
            raise ValueError(f"{len(losses)} epochs of losses for epoch {epoch}")
        with torch.no_grad():
            for k in state:
                state[k].copy_(t[f"state.{k}"])
                best[k].copy_(t[f"best.{k}"])
        best_val.copy_(t["best_val"])
        best_epoch.copy_(t["best_epoch"])
        checkpoint.restore_optimizer(opt, t)
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        raise ArtifactError(f"checkpoint {path} is damaged or does not match this zoo ({e}); "
                            "delete it to start training afresh") from e
    return epoch, losses
