"""Weight matching of a zoo of ResNets against one reference (`dwf.align.match_all`): seconds
per model, against the cost of one forward + backward pass of the same net on a CIFAR batch of
128 (the unit zoo training pays per step), so the ratio says how many training steps one
alignment costs.

The zoo is synthetic but has the structure matching must find: every member is a randomly
permuted copy of one base net plus independent Gaussian noise on every weight (half the weight's
own scale), so members share features in different orders, as trained nets do. Whether the
planted permutations are recovered is reported beside the timings.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dwf import ArchSpec, archs
from dwf.align import match_all
from dwf.rebasin import apply_perms, random_perms, spec_from_module

from .timing import best_of

CASES = (("ResNet-20", ArchSpec("resnet20", 3, (), 10), 32),
         ("ResNet-18", ArchSpec("resnet18", 3, (), 10), 8))
NOISE = 0.5        # noise std relative to each tensor's std
REPEATS = 2
BATCH = 128


@dataclass
class AlignResult:
    case: str
    n_models: int
    n_params: int
    s_per_model: float          # weight matching of one member against the reference
    train_step_s: float         # one forward + backward on a (128, 3, 32, 32) batch
    ratio: float                # s_per_model / train_step_s: training steps one alignment costs
    recovered: int              # members put back exactly into the reference's unit order


def synthetic_zoo(arch: ArchSpec, n: int, seed: int = 0):
    """(spec, members, buffer names, expected): n permuted noisy copies of one base net, and
    each noisy copy in member 0's unit order (what aligning it to member 0 must give)."""
    g = torch.Generator().manual_seed(seed)
    model = archs.build(arch, seed=seed)
    spec = spec_from_module(model, torch.randn(2, arch.in_dim, 32, 32))
    base = model.state_dict()
    buffers = [k for k, _ in model.named_buffers()]
    sds, noisy = [], []
    for _ in range(n):
        noisy.append({k: v + NOISE * v.std() * torch.randn(v.shape, generator=g)
                      if v.is_floating_point() and k not in buffers else v for k, v in base.items()})
        perms = random_perms(spec, g)
        sds.append(apply_perms(spec, perms, noisy[-1]))
        if len(sds) == 1:
            perms0 = perms
    return spec, sds, buffers, [apply_perms(spec, perms0, sd) for sd in noisy]


def train_step_seconds(arch: ArchSpec) -> float:
    model = archs.build(arch, seed=0).train()
    x = torch.randn(BATCH, arch.in_dim, 32, 32)
    y = torch.randint(arch.out_dim, (BATCH,))

    def step():
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()

    step()
    return best_of(step, 3)[0]


def run(case: str, arch: ArchSpec, n: int) -> AlignResult:
    spec, sds, buffers, expected = synthetic_zoo(arch, n)
    seconds, out = best_of(lambda: match_all(spec, sds[0], sds, 0, max_iter=100, seed=0,
                                             exclude=buffers), REPEATS)
    recovered = sum(int(all(torch.equal(o[k], e[k]) for k in o)) for o, e in zip(out, expected))
    n_params = sum(v.numel() for k, v in expected[0].items() if k not in buffers)
    per_model = seconds / (n - 1)
    step = train_step_seconds(arch)
    return AlignResult(case, n, n_params, per_model, step, per_model / step, recovered)
