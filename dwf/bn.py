"""BatchNorm recalibration: fresh running statistics for weights that never saw data.

Generated, interpolated or permuted weights come with running statistics that do not match their
activations. Recalibration resets them and re-estimates them on a fixed, seeded subset of the
TRAINING split (never the test split), with a cumulative average (momentum=None) so every
calibration batch counts equally, then restores each layer's momentum.
"""
from __future__ import annotations

import copy
from typing import Mapping

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from . import devices
from .errors import ConfigError, DwfError


def batchnorms(model: nn.Module) -> list[_BatchNorm]:
    """The BatchNorm layers of `model` that track running statistics."""
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def buffer_names(model: nn.Module) -> list[str]:
    """State-dict names of the running statistics (and counters) of `model`'s BatchNorm layers."""
    return [f"{prefix}.{b}" if prefix else b for prefix, m in model.named_modules()
            if isinstance(m, _BatchNorm) and m.track_running_stats for b, _ in m.named_buffers(recurse=False)]


def calibration_batches(x_train: torch.Tensor, n_samples: int, batch_size: int,
                        seed: int) -> list[torch.Tensor]:
    """A seeded subset of min(n_samples, N) rows of x_train, split into near-equal batches.

    Near-equal (sizes differ by at most one) so the cumulative average of batch means is the
    mean over the subset.
    """
    if not isinstance(x_train, torch.Tensor) or not x_train.is_floating_point() or x_train.ndim < 2:
        raise DwfError("calibration inputs must be a float tensor (N, *input_shape); pass the "
                       "training split's inputs, e.g. dataset.x_train")
    if len(x_train) == 0:
        raise DwfError("calibration inputs are empty; pass the training split's inputs")
    if n_samples < 1 or batch_size < 1:
        raise ConfigError(f"n_samples and batch_size must be >= 1, got {n_samples} and {batch_size}")
    n = min(n_samples, len(x_train))
    idx = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed))[:n]
    n_batches = -(-n // batch_size)
    return [x_train[i] for i in torch.tensor_split(idx, n_batches)]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x_train: torch.Tensor, n_samples: int = 2048,
                   batch_size: int = 256, seed: int = 0) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics in place; return the model in eval mode.

    x_train: (N, *input_shape) training inputs. Only the BatchNorm layers run in train mode
    during the pass (dropout and the like stay off, as at evaluation). Same seed, same subset,
    bit-identical statistics. running_var ends as the mean of the per-batch unbiased variances.
    """
    batches = calibration_batches(x_train, n_samples, batch_size, seed)
    model.eval()
    bns = batchnorms(model)
    if not bns:
        return model
    momenta = [bn.momentum for bn in bns]
    dev = devices.module_device(model)
    try:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        for xb in batches:
            try:
                model(xb.to(dev))
            except (RuntimeError, ValueError) as e:
                raise DwfError(f"the model's forward pass failed on calibration inputs of shape "
                               f"{tuple(xb.shape)} ({e}); pass training inputs shaped "
                               "(N, *input_shape) as the model expects, and batches of >= 2") from e
    finally:
        for bn, m in zip(bns, momenta):
            bn.momentum = m
            bn.eval()
    return model


def recalibrate_stacked(model: nn.Module, params: Mapping[str, torch.Tensor], x_train: torch.Tensor,
                        n_samples: int = 2048, batch_size: int = 256,
                        seed: int = 0) -> dict[str, torch.Tensor]:
    """Recalibrated BatchNorm buffers of n stacked models, {buffer name: (n, *shape)}.

    params: {name: (n, *shape)} holding every parameter of `model` (buffers optional, they are
    reset). `model` is a template and is not modified. Every model uses the same seeded subset.
    Runs on the run's device (`dwf.devices`) in float32; the statistics come back on the CPU.
    Returns {} for a model without BatchNorm.
    """
    work = copy.deepcopy(model).to(devices.current().device)
    names = buffer_names(work)
    if not names:
        return {}
    missing = [k for k, _ in work.named_parameters() if k not in params]
    if missing:
        raise DwfError(f"stacked params lack {missing[:5]}; pass every parameter of the model")
    n = next(iter(params.values())).shape[0]
    out: dict[str, list[torch.Tensor]] = {k: [] for k in names}
    for i in range(n):
        try:
            work.load_state_dict({k: v[i] for k, v in params.items()}, strict=False)
        except RuntimeError as e:
            raise DwfError(f"stacked params do not fit the model ({e}); pass {{name: (n, *shape)}} "
                           "with the model's own shapes") from e
        recalibrate_bn(work, x_train, n_samples, batch_size, seed)
        sd = work.state_dict()
        for k in names:
            out[k].append(sd[k].to("cpu", copy=True))   # a copy: the next net resets these buffers
    return {k: torch.stack(v) for k, v in out.items()}


BN_MODES = ("recalibrate", "mean", "member")


def stacked_statistics(model: nn.Module, params: Mapping[str, torch.Tensor], mode: str = "recalibrate", *,
                       x_train: torch.Tensor | None = None, n_samples: int = 2048, seed: int = 0,
                       zoo_buffers: Mapping[str, torch.Tensor] | None = None,
                       member: int = 0) -> dict[str, torch.Tensor]:
    """BatchNorm running statistics {buffer: (n, ...)} for n stacked nets `params`:

    - "recalibrate": re-estimated for each net on a seeded subset of `x_train` (the training split);
    - "mean": the zoo's mean statistics (`zoo_buffers`: the zoo's stacked state {name: (N, ...)},
      of which only the BatchNorm statistics are read), the same for every net;
    - "member": one zoo member's statistics (the paper's control), the same for every net.
    {} for a model without BatchNorm.
    """
    if mode not in BN_MODES:
        raise ConfigError(f"unknown BatchNorm statistics mode {mode!r}; use one of {', '.join(BN_MODES)}")
    if not batchnorms(model):
        return {}
    n = next(iter(params.values())).shape[0]
    if mode == "recalibrate":
        if x_train is None:
            raise DwfError("BatchNorm recalibration needs the training inputs (x_train)")
        return recalibrate_stacked(model, params, x_train, n_samples=n_samples, seed=seed)
    if zoo_buffers is None:
        raise DwfError(f"BatchNorm mode {mode!r} needs the zoo's statistics (zoo_buffers)")
    # only the BatchNorm statistics: every other tensor stays each net's own
    floats = {k: zoo_buffers[k] for k in buffer_names(model) if zoo_buffers[k].is_floating_point()}
    if mode == "mean":
        return {k: v.mean(0).expand(n, *v.shape[1:]).clone() for k, v in floats.items()}
    if not 0 <= member < next(iter(floats.values())).shape[0]:
        raise ConfigError(f"member {member} is not in the zoo")
    return {k: v[member].expand(n, *v.shape[1:]).clone() for k, v in floats.items()}
