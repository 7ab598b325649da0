"""Loss and accuracy along the straight line between two networks (linear mode connectivity).

θ(λ) = (1 − λ) θ_a + λ θ_b. Two independently trained nets usually show a loss barrier in the
middle; after aligning b's hidden units to a (Git Re-Basin) the barrier shrinks. That contrast
is why alignment makes weight space a sensible place to fit a flow.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from . import stacked
from .archs import load_weights
from .bn import batchnorms, recalibrate_bn
from .devices import module_device
from .errors import ConfigError, DwfError
from .rebasin.symmetry import Symmetry, align
from .task import CLASSIFICATION, Task

StateDict = Mapping[str, torch.Tensor]


@dataclass
class InterpolationPath:
    lambdas: torch.Tensor   # (L,) increasing
    loss: torch.Tensor      # (L,) mean loss at each λ (cross-entropy, or squared error)
    acc: torch.Tensor       # (L,) score at each λ (accuracy, or Spearman ρ)

    @property
    def barrier(self) -> float:
        return barrier(self)


def barrier(path: InterpolationPath) -> float:
    """max over λ of loss(λ) minus the straight line between the two endpoint losses (>= 0)."""
    lam, loss = path.lambdas.double(), path.loss.double()
    t = (lam - lam[0]) / (lam[-1] - lam[0])
    return float((loss - ((1 - t) * loss[0] + t * loss[-1])).max())


def _check(sd_a: StateDict, sd_b: StateDict, x: torch.Tensor, y: torch.Tensor,
           lambdas: torch.Tensor) -> None:
    if sd_a.keys() != sd_b.keys():
        raise DwfError(f"the state dicts hold different tensors "
                       f"({sorted(set(sd_a) ^ set(sd_b))[:5]}); interpolate nets of one architecture")
    bad = [k for k in sd_a if sd_a[k].shape != sd_b[k].shape]
    if bad:
        raise DwfError(f"tensors {bad[:5]} differ in shape; interpolate nets of one architecture")
    if len(x) == 0 or len(x) != len(y):
        raise DwfError(f"evaluation data has {len(x)} inputs and {len(y)} labels; pass a "
                       "non-empty split with one label per input")
    if lambdas.ndim != 1 or len(lambdas) < 2 or not bool((lambdas.diff() > 0).all()):
        raise ConfigError("lambdas must be a strictly increasing 1-D grid of at least 2 points, "
                          "e.g. torch.linspace(0, 1, 11)")


def interpolate(sd_a: StateDict, sd_b: StateDict, lam: float) -> dict[str, torch.Tensor]:
    """(1 − λ) a + λ b for float tensors (exact at λ = 0 and 1); integer buffers copied from a."""
    return {k: (1 - lam) * a + lam * sd_b[k] if a.is_floating_point() else a.clone()
            for k, a in sd_a.items()}


@torch.no_grad()
def _evaluate(logits_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, batch_size: int,
              dev: torch.device, task: Task) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss (cross-entropy or squared error) and score (accuracy or Spearman ρ), (m,)
    each, of logits_fn: (B, ...) -> (m, B, C)."""
    loss_sum, preds = 0, []
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(dev), y[i:i + batch_size].to(dev)
        out = logits_fn(xb)                                               # (m, B, C)
        loss_sum = loss_sum + task.loss(out, yb.expand(len(out), -1)).double().sum(1)   # (m,)
        preds.append(task.predictions(out).cpu())
    return (loss_sum / len(x)).float().cpu(), task.score(torch.cat(preds, 1), y.cpu()).float()


def interpolation_path(model: nn.Module, sd_a: StateDict, sd_b: StateDict, x_eval: torch.Tensor,
                       y_eval: torch.Tensor, lambdas: Sequence[float] | torch.Tensor | None = None,
                       x_calib: torch.Tensor | None = None, calib_samples: int = 2048,
                       calib_batch_size: int = 256, calib_seed: int = 0,
                       batch_size: int = 256, task: Task = CLASSIFICATION) -> InterpolationPath:
    """Loss and score of θ(λ) on (x_eval, y_eval) for each λ (default 11 points on [0, 1]).

    `model` is an architecture template (not modified). Without BatchNorm all λ run as one
    stacked model batch. With BatchNorm each λ runs alone; given x_calib (TRAINING inputs), its
    running statistics are recalibrated first, otherwise they are interpolated too.
    """
    lam = (torch.linspace(0, 1, 11, dtype=torch.float64) if lambdas is None
           else torch.as_tensor(lambdas, dtype=torch.float64))
    _check(sd_a, sd_b, x_eval, y_eval, lam)
    work = copy.deepcopy(model).eval()
    dev = module_device(work)
    load_weights(work, sd_a)

    if not batchnorms(work):
        points = [interpolate(sd_a, sd_b, t) for t in lam.tolist()]
        grid = {k: torch.stack([p[k] for p in points]).to(dev)          # (L, *shape)
                for k, v in sd_a.items() if v.is_floating_point()}
        loss, acc = _evaluate(lambda xb: stacked.forward(work, grid, xb), x_eval, y_eval,
                              batch_size, dev, task)
        return InterpolationPath(lam.float(), loss, acc)

    losses, accs = [], []
    for t in lam.tolist():
        load_weights(work, interpolate(sd_a, sd_b, t))
        if x_calib is not None:
            recalibrate_bn(work, x_calib, calib_samples, calib_batch_size, calib_seed)
        loss, acc = _evaluate(lambda xb: work(xb)[None], x_eval, y_eval, batch_size, dev, task)
        losses.append(loss)
        accs.append(acc)
    return InterpolationPath(lam.float(), torch.cat(losses), torch.cat(accs))


def naive_vs_aligned(model: nn.Module, spec: Symmetry, sd_a: StateDict, sd_b: StateDict,
                     x_eval: torch.Tensor, y_eval: torch.Tensor,
                     x_calib: torch.Tensor | None = None, *, max_iter: int = 100, seed: int = 0,
                     **kw) -> tuple[InterpolationPath, InterpolationPath]:
    """Paths a→b as trained and a→P(b), b's units permuted to match a (weight matching, or
    TransFusion for a transformer spec).

    Buffers (BatchNorm running statistics) are left out of the matching cost but permuted with
    their channels. kw go to `interpolation_path`.
    """
    buffers = [k for k, _ in model.named_buffers()]
    aligned = align(spec, sd_a, sd_b, max_iter=max_iter, exclude=buffers,
                    generator=torch.Generator().manual_seed(seed))
    return (interpolation_path(model, sd_a, sd_b, x_eval, y_eval, x_calib=x_calib, **kw),
            interpolation_path(model, sd_a, aligned, x_eval, y_eval, x_calib=x_calib, **kw))
