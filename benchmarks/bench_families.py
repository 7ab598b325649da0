"""One training step of n models per architecture family: train_zoo's batched step (stacked
weights, `stacked.forward`, one fused AdamW over the stacks) against an ordinary per-model loop
(n nn.Modules, n AdamWs) on the same batches. Ratio = loop seconds / batched seconds per step,
for the quick profile's architecture of every family (MLP, ResNet-20, ViT, BERT).

A step here is what train_zoo repeats: forward on each model's own batch, loss, backward,
optimizer update. Data loading is left out of both (the batches are made once).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from dwf import archs, experiments, stacked
from dwf.task import CLASSIFICATION, REGRESSION

from .timing import best_of

CASES = ("fmnist_mlp", "fmnist_resnet20", "fmnist_vit", "vader_tinybert")   # quick profiles
N_MODELS = 16
STEPS = 5          # per timing
REPEATS = 3        # best of


@dataclass
class FamilyResult:
    experiment: str
    family: str
    n_models: int
    batch_size: int
    batched_s_per_step: float
    loop_s_per_step: float
    ratio: float                     # loop / batched


def _batches(exp, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x (n, B, ...), y (n, B)) random inputs of the experiment's shape, one batch per model."""
    g = torch.Generator().manual_seed(0)
    B, a = exp.zoo.batch_size, exp.arch
    if a.kind == "bert":
        x = torch.randint(1, a.vocab, (n, B, a.max_len), generator=g)
        return x, torch.randn(n, B, generator=g)
    shape = (a.in_dim,) if a.kind == "mlp" else (a.in_dim, 28, 28)
    return torch.randn(n, B, *shape, generator=g), torch.randint(a.out_dim, (n, B), generator=g)


def steps(name: str, n: int):
    """(batched step, loop step, stacked state, per-model modules) for n models of the quick
    profile's architecture, from the same inits on the same batches."""
    exp = experiments.get(name, "quick")
    task = REGRESSION if exp.arch.kind == "bert" else CLASSIFICATION
    x, y = _batches(exp, n)
    inits = [archs.build(exp.arch, seed=i).state_dict() for i in range(n)]
    model = archs.build(exp.arch).train()
    names = {k for k, _ in model.named_parameters()}
    state = {k: torch.stack([sd[k] for sd in inits]) for k in inits[0]}
    for k in names:
        state[k].requires_grad_()
    opt = torch.optim.AdamW([state[k] for k in names], lr=1e-4, fused=True)

    def batched():
        loss = task.loss(stacked.forward(model, state, x, shared_input=False), y).mean(1)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()

    modules = []
    for sd in inits:
        m = archs.build(exp.arch).train()
        m.load_state_dict(sd)
        modules.append((m, torch.optim.AdamW(m.parameters(), lr=1e-4)))

    def loop():
        for i, (m, o) in enumerate(modules):
            loss = task.loss(m(x[i])[None], y[i][None]).mean()
            o.zero_grad(set_to_none=True)
            loss.backward()
            o.step()

    return batched, loop, state, [m for m, _ in modules]


def run(name: str, n: int = N_MODELS) -> FamilyResult:
    exp = experiments.get(name, "quick")
    batched, loop, _, _ = steps(name, n)
    batched(), loop()                                                     # warm-up
    tb, _ = best_of(lambda: [batched() for _ in range(STEPS)], REPEATS)
    tl, _ = best_of(lambda: [loop() for _ in range(STEPS)], REPEATS)
    return FamilyResult(name, exp.arch.kind, n, exp.zoo.batch_size, tb / STEPS, tl / STEPS, tl / tb)


__all__ = ["CASES", "FamilyResult", "run", "steps"]
