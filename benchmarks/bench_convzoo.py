"""Convnet zoo training throughput: the stacked training step of `dwf.train_zoo` (n models, one
AdamW over stacked weights, BatchNorm per model) with the two ways `dwf.stacked` can run n
convnets: one functional call per model (`forward_loop`, what train_zoo uses on the CPU) and
one torch.func.vmap over the model axis (`forward_vmap`, used on GPUs).

Throughput is reported as models x epochs per minute for the quick fmnist_resnet20 recipe
(its architecture, batch size and training-set size), from the measured seconds per step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dwf import archs, experiments, stacked
from dwf.zoo import model_seed

from .timing import best_of

EXPERIMENT = "fmnist_resnet20"
N_MODELS = 8
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


def _state(exp, n: int):
    model = archs.build(exp.arch)
    inits = [archs.build(exp.arch, seed=model_seed(0, i)).state_dict() for i in range(n)]
    params = {k: torch.stack([sd[k] for sd in inits]).requires_grad_() for k, _ in model.named_parameters()}
    buffers = {k: torch.stack([sd[k] for sd in inits]) for k, _ in model.named_buffers()}
    return model.train(), params, buffers


def seconds_per_step(forward, n: int = N_MODELS) -> float:
    exp = experiments.get(EXPERIMENT, "quick")
    model, params, buffers = _state(exp, n)
    opt = torch.optim.AdamW(list(params.values()), lr=exp.zoo.lr, fused=True)
    B = exp.zoo.batch_size
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, B, exp.arch.in_dim, 28, 28, generator=g)
    y = torch.randint(exp.arch.out_dim, (n, B), generator=g)

    def step():
        logits = forward(model, {**params, **buffers}, x, shared_input=False)   # (n, B, C)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(n, B).mean(1)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()

    step()
    return best_of(lambda: [step() for _ in range(STEPS)], REPEATS)[0] / STEPS


def run() -> ConvZooResult:
    exp = experiments.get(EXPERIMENT, "quick")
    N, B = exp.data.train_limit, exp.zoo.batch_size
    loop_s = seconds_per_step(stacked.forward_loop)
    vmap_s = seconds_per_step(stacked.forward_vmap)

    def per_min(s: float) -> float:        # models x epochs per minute
        return 60.0 * N_MODELS / (s * (N // B))

    return ConvZooResult(f"{EXPERIMENT} quick: ResNet-20 width {exp.arch.width:g}", N_MODELS, B, N,
                         loop_s, vmap_s, per_min(loop_s), per_min(vmap_s), vmap_s / loop_s)
