"""Many models of one architecture run as one batched call (torch.func.vmap over stacked weights).

This is what lets a whole zoo train at once and every generated net be evaluated in one pass.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn
from torch.func import functional_call, vmap

from . import devices
from .task import CLASSIFICATION, Task


def forward(model: nn.Module, params: Mapping[str, torch.Tensor], x: torch.Tensor,
            shared_input: bool = True) -> torch.Tensor:
    """Outputs of n models.

    params: {name: (n, *shape)} for the model's parameters (and float buffers, if given).
    x: (B, ...) fed to every model when `shared_input`, else (n, B, ...) one batch per model.
    returns (n, B, C). Architectures with a `forward_stacked` method use it (hand-batched
    maths, same result) where it pays (`stacked_pays`); other modules on the CPU use
    `forward_loop`, except a narrow convnet in a training step (`grouped_conv_pays`); elsewhere
    `forward_vmap`. Both batched paths turn the n convs into one grouped conv. `make bench`
    (bench_convzoo, one thread, 16 ResNet-20s) measured, per training step at width 0.25: loop
    1.5 s, vmap 1.0 s, the ResNet's channels-last `forward_stacked` 0.56 s; at width 1 the loop
    and `forward_stacked` tie (3.5 s) and vmap takes 4.6 s; at inference `forward_stacked` is
    1.3x faster than the loop at width 0.25 and 2.5x slower at width 1. Either way gradients
    reach the stacked parameters and BatchNorm updates the stacked buffers.
    """
    if hasattr(model, "forward_stacked") and stacked_pays(model, x.device):
        if getattr(model, "grouped_convs", False):
            return _grouped(model, params, x, shared_input)
        return model.forward_stacked(params, x, shared_input)
    if x.device.type == "cpu" and not grouped_conv_pays(model):
        return forward_loop(model, params, x, shared_input)
    return forward_vmap(model, params, x, shared_input)


NARROW_CHANNELS = 16   # widest conv of a width-0.25 ResNet-20, where the grouped conv measured faster
# nets x images per grouped-conv call (narrow ResNets on the CPU), so the activations stay in
# cache: a training step of 64 nets took 1.74 s as four calls of 16, 2.42 s as one; `predict`
# 0.30 s a net on 2000 images at 16 x 64, against 0.46 at 16 x 128 and 0.62 at 64 x 64
GROUPED_NETS, GROUPED_BATCH = 16, 64


def _grouped(model: nn.Module, params: Mapping[str, torch.Tensor], x: torch.Tensor,
             shared_input: bool) -> torch.Tensor:
    """`forward_stacked` of grouped-conv models, GROUPED_NETS at a time. (n, B, C)"""
    n = next(iter(params.values())).shape[0]
    if n <= GROUPED_NETS:
        return model.forward_stacked(params, x, shared_input)
    return torch.cat([model.forward_stacked({k: v[i:i + GROUPED_NETS] for k, v in params.items()},
                                            x if shared_input else x[i:i + GROUPED_NETS], shared_input)
                      for i in range(0, n, GROUPED_NETS)])


def _conv_widths(model: nn.Module) -> list[int]:
    return [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]


def stacked_pays(model: nn.Module, device: torch.device | str) -> bool:
    """Whether the model's hand-batched `forward_stacked` is the path to take: always, unless it
    runs grouped convs (a class with `grouped_convs = True`, the ResNets); those only on the CPU
    with every conv at most NARROW_CHANNELS wide (wider ones run faster one model at a time
    there; GPUs keep vmap)."""
    if not getattr(model, "grouped_convs", False):
        return True
    return torch.device(device).type == "cpu" and max(_conv_widths(model)) <= NARROW_CHANNELS


def grouped_conv_pays(model: nn.Module) -> bool:
    """Whether vmap's grouped conv beats the per-model loop on the CPU: in a training step
    (grad enabled, train mode) of a convnet whose convs all have <= NARROW_CHANNELS outputs."""
    widths = _conv_widths(model)
    return bool(widths) and model.training and torch.is_grad_enabled() and max(widths) <= NARROW_CHANNELS


def forward_loop(model: nn.Module, params: Mapping[str, torch.Tensor], x: torch.Tensor,
                 shared_input: bool = True) -> torch.Tensor:
    """`forward` as one functional call per model, stacked. (n, B, C)

    The stack is split with `unbind`, whose backward writes all n gradients in one stack;
    indexing `v[i]` instead would scatter each model's gradient into a zero tensor of the whole
    stack (n^2 work: 20 MiniLMs took 20 s per step instead of 3)."""
    per_model = {k: v.unbind(0) for k, v in params.items()}
    n = len(next(iter(per_model.values())))
    return torch.stack([functional_call(model, {k: v[i] for k, v in per_model.items()},
                                        (x if shared_input else x[i],)) for i in range(n)])


def forward_vmap(model: nn.Module, params: Mapping[str, torch.Tensor], x: torch.Tensor,
                 shared_input: bool = True) -> torch.Tensor:
    """`forward` as one torch.func.vmap over the model axis. (n, B, C)"""
    def one(p, xb):
        return functional_call(model, dict(p), (xb,))

    return vmap(one, in_dims=(0, None if shared_input else 0))(dict(params), x)


@torch.no_grad()
def predict(model: nn.Module, params: Mapping[str, torch.Tensor], x: torch.Tensor,
            batch_size: int = 256, model_chunk: int = 64, task: Task = CLASSIFICATION,
            compute: devices.Compute | None = None) -> torch.Tensor:
    """Predictions (n, N) of n stacked models on inputs x (N, ...), in eval mode (BatchNorm uses
    the running statistics given in `params`): classes (int64), or values for a regression task.
    Computed on the run's device (`dwf.devices`; `compute` overrides it), in bfloat16 autocast
    when the run is mixed-precision; returned on the CPU."""
    c = compute or devices.current()
    model = devices.on_device(model, c.device).eval()
    if getattr(model, "grouped_convs", False) and stacked_pays(model, c.device):
        batch_size = min(batch_size, GROUPED_BATCH)
    n = next(iter(params.values())).shape[0]
    rows = []
    for m0 in range(0, n, model_chunk):
        p = {k: v[m0:m0 + model_chunk].to(c.device) for k, v in params.items()}
        with devices.autocast(c):
            rows.append(torch.cat([task.predictions(forward(model, p, x[i:i + batch_size].to(c.device)).float()).cpu()
                                   for i in range(0, len(x), batch_size)], dim=1))
    return torch.cat(rows, dim=0)
