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
    maths, same result). Other modules on the CPU use `forward_loop`, except a narrow convnet
    in a training step (`grouped_conv_pays`); elsewhere `forward_vmap`. vmap turns the n convs
    into one grouped conv, which `make bench` (bench_convzoo) measured 1.2-1.4x slower per
    training step than the loop for full-width ResNet-20s, 1.3x faster for width-0.25 ones, and
    2x slower at inference batches of 256 (width 0.25). Either way gradients reach the stacked
    parameters and BatchNorm updates the stacked buffers.
    """
    if hasattr(model, "forward_stacked"):
        return model.forward_stacked(params, x, shared_input)
    if x.device.type == "cpu" and not grouped_conv_pays(model):
        return forward_loop(model, params, x, shared_input)
    return forward_vmap(model, params, x, shared_input)


NARROW_CHANNELS = 16   # widest conv of a width-0.25 ResNet-20, where the grouped conv measured faster


def grouped_conv_pays(model: nn.Module) -> bool:
    """Whether vmap's grouped conv beats the per-model loop on the CPU: in a training step
    (grad enabled, train mode) of a convnet whose convs all have <= NARROW_CHANNELS outputs."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return (bool(convs) and model.training and torch.is_grad_enabled()
            and max(c.out_channels for c in convs) <= NARROW_CHANNELS)


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
    n = next(iter(params.values())).shape[0]
    rows = []
    for m0 in range(0, n, model_chunk):
        p = {k: v[m0:m0 + model_chunk].to(c.device) for k, v in params.items()}
        with devices.autocast(c):
            rows.append(torch.cat([task.predictions(forward(model, p, x[i:i + batch_size].to(c.device)).float()).cpu()
                                   for i in range(0, len(x), batch_size)], dim=1))
    return torch.cat(rows, dim=0)
