"""Transfer learning: do generated nets make good initializations for a new, small task?

A source net's backbone (every tensor but its classifier head) initializes a model for the
target task; the head is new. Generated nets, original zoo members and random initializations
go through the same few-shot recipe, so only the starting weights differ:

1. BatchNorm statistics recalibrated on the few-shot TRAINING images of the target task;
2. epoch 0: a linear probe, the new head fitted by logistic regression on frozen features;
3. epochs 1..E: every weight fine-tuned with Adam on the few-shot training images.

Test accuracy is recorded after every epoch; the reported "selected" accuracy is that of the
epoch with the best accuracy on a few-shot VALIDATION split (never the test split).
"""
from __future__ import annotations

import copy
import functools
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from torch import nn

from . import archs, fanout
from .bn import recalibrate_bn
from .config import ArchSpec, TransferSpec
from .data import Dataset
from .errors import ConfigError, DwfError

if TYPE_CHECKING:
    from .shards import Engine

StateDict = Mapping[str, torch.Tensor]


@dataclass
class FewShot:
    """The target task's few-shot training and validation images, and its full test split."""
    name: str
    x_train: torch.Tensor    # (shots * C, ...)
    y_train: torch.Tensor
    x_val: torch.Tensor      # (<= val_shots * C, ...)
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int


def few_shot(data: Dataset, shots: int, val_shots: int, seed: int) -> FewShot:
    """`shots` training and `val_shots` validation images per class, drawn (seeded) from the
    target's training and validation splits."""
    if shots < 1 or val_shots < 1:
        raise ConfigError(f"shots and val_shots must be >= 1, got {shots} and {val_shots}")
    g = torch.Generator().manual_seed(seed)

    def per_class(y: torch.Tensor, k: int, split: str) -> torch.Tensor:
        idx = []
        for c in range(data.n_classes):
            members = (y == c).nonzero().flatten()
            if len(members) < (k if split == "training" else 1):
                raise ConfigError(f"{data.name}'s {split} split has {len(members)} images of class "
                                  f"{c}; ask for at most that many shots")
            idx.append(members[torch.randperm(len(members), generator=g)[:k]])
        return torch.cat(idx)

    tr, va = per_class(data.y_train, shots, "training"), per_class(data.y_val, val_shots, "validation")
    return FewShot(data.name, data.x_train[tr], data.y_train[tr], data.x_val[va], data.y_val[va],
                   data.x_test, data.y_test, data.n_classes)


@functools.lru_cache(maxsize=64)
def head_names(arch: ArchSpec) -> tuple[str, ...]:
    """The classifier head's tensors: those whose shape depends on the number of classes
    (cached per architecture: it builds two models)."""
    a = archs.build(arch).state_dict()
    b = archs.build(replace(arch, out_dim=arch.out_dim + 1)).state_dict()
    return tuple(k for k in a if a[k].shape != b[k].shape)


@dataclass
class TransferResult:
    """Per initialization ("generated", "zoo", "random"): test and validation accuracy of each
    net after each epoch (epoch 0 = linear probe), and the validation-selected epoch."""
    target: str
    epochs: list[int]                       # 0..E
    report_epochs: list[int]                # the columns shown in tables, e.g. [0, 1, 5]
    test_acc: dict[str, list[list[float]]]  # init -> (n, E + 1)
    val_acc: dict[str, list[list[float]]]
    selected_epoch: dict[str, list[int]]    # init -> (n,)
    selected_test_acc: dict[str, list[float]]

    def rows(self) -> list[dict]:
        """Summary per initialization: mean ± std test accuracy at the report epochs and after
        validation-based selection."""
        out = []
        for init, acc in self.test_acc.items():
            a = torch.tensor(acc)                                     # (n, E + 1)
            sel = torch.tensor(self.selected_test_acc[init])
            std = (lambda v: float(v.std()) if len(v) > 1 else 0.0)  # noqa: E731
            out.append({"init": init, "n": len(acc),
                        **{f"acc_e{e}": float(a[:, e].mean()) for e in self.report_epochs},
                        **{f"std_e{e}": std(a[:, e]) for e in self.report_epochs},
                        "acc_selected": float(sel.mean()), "std_selected": std(sel)})
        return out

    def to_dict(self) -> dict:
        return asdict(self)


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
                      for i in range(0, len(x), batch_size))
    return correct / len(x)


def _features(model: nn.Module, head: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """Inputs of the head (eval mode), captured with a forward hook."""
    got = []
    handle = head.register_forward_hook(lambda m, inp, out: got.append(inp[0].detach()))
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return got[0].flatten(1)


def _head_module(model: nn.Module, names: Sequence[str]) -> nn.Linear:
    prefixes = {n.rsplit(".", 1)[0] for n in names}
    mod = model.get_submodule(prefixes.pop()) if len(prefixes) == 1 else None
    if not isinstance(mod, nn.Linear):
        raise DwfError(f"transfer needs the classifier head to be one nn.Linear; found tensors {list(names)}")
    return mod


def fine_tune(model: nn.Module, head_tensors: Sequence[str], task: FewShot, spec: TransferSpec,
              seed: int) -> tuple[list[float], list[float]]:
    """Recalibrate BN, probe the head, then fine-tune everything; (test, val) accuracy after
    each epoch 0..E. The model is modified in place."""
    recalibrate_bn(model, task.x_train, n_samples=len(task.x_train), batch_size=len(task.x_train), seed=seed)
    head = _head_module(model, head_tensors)
    feats = _features(model, head, task.x_train).double().numpy()
    probe = LogisticRegression(C=spec.probe_c, max_iter=2000).fit(feats, task.y_train.numpy())
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(probe.coef_))
        head.bias.copy_(torch.from_numpy(probe.intercept_))
    test, val = [_accuracy(model, task.x_test, task.y_test)], [_accuracy(model, task.x_val, task.y_val)]
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    g = torch.Generator().manual_seed(seed)
    B = min(spec.batch_size, len(task.x_train))
    for _ in range(max(spec.epochs)):
        model.train()
        order = torch.randperm(len(task.x_train), generator=g)
        for i in range(0, len(order) - B + 1, B):                       # full batches only (BN)
            idx = order[i:i + B]
            loss = F.cross_entropy(model(task.x_train[idx]), task.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        test.append(_accuracy(model, task.x_test, task.y_test))
        val.append(_accuracy(model, task.x_val, task.y_val))
    return test, val


def transfer(arch: ArchSpec, inits: Mapping[str, Sequence[StateDict] | int], task: FewShot,
             spec: TransferSpec, progress: bool = False, engine: "Engine | None" = None) -> TransferResult:
    """Few-shot transfer from each named set of source nets.

    inits: name -> state dicts of source nets (their heads are dropped), or an int n for n
    randomly initialized nets. Net j of every set uses the same data order (seed + j). Each net's
    fine-tuning is one job: run here, or with `engine` as a Ray task (`dwf.fanout`).
    """
    if arch.out_dim < 1 or task.n_classes < 2:
        raise ConfigError(f"transfer needs a classification target; {task.name} has {task.n_classes} classes")
    if not spec.epochs or min(spec.epochs) < 0:
        raise ConfigError(f"transfer epochs must be non-negative report points, got {spec.epochs}")
    E = max(spec.epochs)
    res = TransferResult(task.name, list(range(E + 1)), sorted(set(spec.epochs)), {}, {}, {}, {})
    jobs = [(name, j, sd) for name, nets in inits.items()
            for j, sd in enumerate([None] * nets if isinstance(nets, int) else list(nets))]
    curves = iter(fanout.map_jobs(engine, _fine_tune_one, (arch, task, spec), jobs,
                                  desc=f"transfer to {task.name}", progress=progress))
    for name, nets in inits.items():
        runs = [next(curves) for _ in range(nets if isinstance(nets, int) else len(nets))]
        tests, vals = [t for t, _ in runs], [v for _, v in runs]
        best = [int(np.argmax(v)) for v in vals]      # first epoch with the best validation accuracy
        res.test_acc[name], res.val_acc[name] = tests, vals
        res.selected_epoch[name] = best
        res.selected_test_acc[name] = [t[b] for t, b in zip(tests, best)]
    return res


def _fine_tune_one(arch: ArchSpec, task: FewShot, spec: TransferSpec, name: str, j: int,
                   sd: StateDict | None) -> tuple[list[float], list[float]]:
    """(test, validation) accuracy per epoch of net j of set `name`: `sd`'s backbone (None: a
    random init) with a fresh head for the target's classes."""
    target = replace(arch, out_dim=task.n_classes)
    heads = head_names(target)
    model = archs.build(target, seed=spec.seed * 1_000_003 + j)
    if sd is not None:
        source_head = set(head_names(arch))
        backbone = {k: v for k, v in sd.items() if k not in source_head}
        missing = {k for k, v in model.state_dict().items() if v.is_floating_point()} - set(backbone) - set(heads)
        if missing:
            raise DwfError(f"source nets of {name!r} lack {sorted(missing)[:5]}; pass state dicts of {arch.kind}")
        model.load_state_dict({**copy.deepcopy(backbone),
                               **{k: v for k, v in model.state_dict().items() if k in heads}}, strict=False)
    return fine_tune(model, heads, task, spec, seed=spec.seed + j)
