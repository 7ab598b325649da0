"""Convnet zoo throughput: the stacked training step of `dwf.train_zoo` (n models, one AdamW
over stacked weights, BatchNorm per model) with the three ways `dwf.stacked` can run n ResNets:
one functional call per model (`forward_loop`), one torch.func.vmap over the model axis
(`forward_vmap`, a grouped conv; GPUs) and the ResNet's hand-batched `forward_stacked` (a grouped
conv in channels-last layout; what the CPU takes for narrow ResNets, `stacked.stacked_pays`);
and the seconds `stacked.predict` takes per net on the quick test subset, by the loop and by
`forward_stacked`.

Training throughput is reported as models x epochs per minute for the quick fmnist_resnet20
recipe (its batch size and training-set size), from the measured seconds per step, at the
quick profile's width and at full ResNet-20 width.
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
    stacked_s_per_step: float
    loop_models_epochs_per_min: float
    stacked_models_epochs_per_min: float
    ratio: float                 # loop / forward_stacked seconds per step (> 1: forward_stacked is faster)
    predict_loop_s_per_net: float      # eval forward on the quick test subset, one net at a time (batch 256)
    predict_stacked_s_per_net: float   # ... all n through forward_stacked (batch GROUPED_BATCH)


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


def _stacked_forward(model, params, x, shared_input=True):
    return model.forward_stacked(params, x, shared_input)


def predict_seconds_per_net(forward, width: float, n: int, batch_size: int) -> float:
    """Seconds per net of n nets' eval-mode forward over the quick test subset's size, in
    batches of `batch_size` (what `stacked.predict` computes, by the given path)."""
    exp = experiments.get(EXPERIMENT, "quick")
    model, params, buffers = _state(replace(exp.arch, width=width), n)
    state = {k: v.detach() for k, v in {**params, **buffers}.items()}
    x = torch.randn(exp.data.test_limit, exp.arch.in_dim, 28, 28, generator=torch.Generator().manual_seed(0))

    def run():
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                forward(model.eval(), state, x[i:i + batch_size])

    return best_of(run, REPEATS)[0] / n


def run(width: float, n: int) -> ConvZooResult:
    exp = experiments.get(EXPERIMENT, "quick")
    N, B = exp.data.train_limit, exp.zoo.batch_size
    loop_s = seconds_per_step(stacked.forward_loop, width, n)
    vmap_s = seconds_per_step(stacked.forward_vmap, width, n)
    stacked_s = seconds_per_step(_stacked_forward, width, n)

    def per_min(s: float) -> float:        # models x epochs per minute
        return 60.0 * n / (s * (N // B))

    return ConvZooResult(f"ResNet-20 width {width:g}", n, B, N, loop_s, vmap_s, stacked_s, per_min(loop_s),
                         per_min(stacked_s), loop_s / stacked_s,
                         predict_seconds_per_net(stacked.forward_loop, width, n, 256),
                         predict_seconds_per_net(_stacked_forward, width, n, stacked.GROUPED_BATCH))
