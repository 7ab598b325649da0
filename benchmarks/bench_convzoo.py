"""Convnet zoo training throughput: the stacked training step of `dwf.train_zoo` (n models, one
AdamW over stacked weights, BatchNorm per model) with the two ways `dwf.stacked` can run n
convnets: one functional call per model (`forward_loop`, what train_zoo uses on the CPU) and
one torch.func.vmap over the model axis (`forward_vmap`, used on GPUs).

Throughput is reported as models x epochs per minute for the quick fmnist_resnet20 recipe
(its batch size and training-set size), from the measured seconds per step, at the quick
profile's width and at full ResNet-20 width.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from dwf import archs, experiments, stacked
from dwf.batches import model_seed

from .timing import best_of

EXPERIMENT = "fmnist_resnet20"
CASES = ((0.25, 8), (1.0, 4))   # (width, models): the quick profile's nets, full ResNet-20s
STEPS = 6          # timed steps per repeat (after one warm-up step)
REPEATS = 2


@dataclass
class ConvZooResult:
    case: str
    n_models: int
    batch_size: int
    train_samples: int
    loop_s_per_step: float
    vmap_s_per_step: float
    loop_models_epochs_per_min: float
    vmap_models_epochs_per_min: float
    ratio: float                 # vmap / loop seconds per step (> 1: the loop is faster)


def _state(arch, n: int):
    model = archs.build(arch)
    inits = [archs.build(arch, seed=model_seed(0, i)).state_dict() for i in range(n)]
    params = {k: torch.stack([sd[k] for sd in inits]).requires_grad_() for k, _ in model.named_parameters()}
    buffers = {k: torch.stack([sd[k] for sd in inits]) for k, _ in model.named_buffers()}
    return model.train(), params, buffers


def seconds_per_step(forward, width: float, n: int) -> float:
    exp = experiments.get(EXPERIMENT, "quick")
    arch = replace(exp.arch, width=width)
    model, params, buffers = _state(arch, n)
    opt = torch.optim.AdamW(list(params.values()), lr=exp.zoo.lr, fused=True)
    B = exp.zoo.batch_size
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, B, arch.in_dim, 28, 28, generator=g)
    y = torch.randint(arch.out_dim, (n, B), generator=g)

    def step():
        logits = forward(model, {**params, **buffers}, x, shared_input=False)   # (n, B, C)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(n, B).mean(1)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()

    step()
    return best_of(lambda: [step() for _ in range(STEPS)], REPEATS)[0] / STEPS


def run(width: float, n: int) -> ConvZooResult:
    exp = experiments.get(EXPERIMENT, "quick")
    N, B = exp.data.train_limit, exp.zoo.batch_size
    loop_s = seconds_per_step(stacked.forward_loop, width, n)
    vmap_s = seconds_per_step(stacked.forward_vmap, width, n)

    def per_min(s: float) -> float:        # models x epochs per minute
        return 60.0 * n / (s * (N // B))

    return ConvZooResult(f"ResNet-20 width {width:g}", n, B, N, loop_s, vmap_s, per_min(loop_s),
                         per_min(vmap_s), vmap_s / loop_s)
