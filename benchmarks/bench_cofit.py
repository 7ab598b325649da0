"""Fitting the flows of an experiment and its ablations as one stack (`dwf.pipeline.fit_flows`,
`flow.fit_many` with one code matrix per replicate) against one stack per run, as `build` fits
them alone.

Each case is one flow shape of `make reproduce`'s quick profile: RUNS runs (the experiment and its
unaligned variant) of R replicates each, codes of the quick MLP zoos' shape (48 fitting members
→ 47 components). The codes are seeded Gaussian draws: the cost of a step does not depend on
their values. Both ways fit the same flows (up to floating-point summation order), which the
result checks by the largest parameter difference.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch

from dwf import flow as flow_mod
from dwf.config import FlowSpec

from .timing import best_of

N, K = 48, 47                 # fitting members, PCA components (a quick MLP zoo of 64, a quarter held out)
RUNS, R = 2, 3                # an experiment and its unaligned variant, 3 replicate flows each
STEPS = 400
CASES = (("h=512 (the quick MLPs' flow)", FlowSpec(steps=STEPS, hidden=512)),
         ("h=64 (the paper's small-flow ablation)", FlowSpec(steps=STEPS, hidden=64)))
REPEATS = 3


@dataclass
class CofitResult:
    case: str
    runs: int
    replicates: int
    steps: int
    apart_s: float                  # one fit_many per run
    together_s: float               # one fit_many over every run's replicates
    ratio: float                    # apart_s / together_s
    max_abs_param_diff: float       # between the two ways' fitted velocity nets


def run(case: str, spec: FlowSpec) -> CofitResult:
    g = torch.Generator().manual_seed(0)
    codes = [torch.randn(N, K, generator=g) for _ in range(RUNS)]
    specs = [replace(spec, seed=r) for r in range(R)]
    flow_mod.fit_many(codes[0], [replace(spec, steps=20)], progress=False)      # first-call overheads
    apart_s, apart = best_of(lambda: [f for Z in codes for f in flow_mod.fit_many(Z, specs, progress=False)], REPEATS)
    together_s, together = best_of(lambda: flow_mod.fit_many([Z for Z in codes for _ in specs], specs * RUNS,
                                                             progress=False), REPEATS)
    diff = max(float((a - b).abs().max()) for fa, fb in zip(apart, together)
               for a, b in zip(fa.net.state_dict().values(), fb.net.state_dict().values()))
    return CofitResult(case, RUNS, R, spec.steps, apart_s, together_s, apart_s / together_s, diff)


if __name__ == "__main__":
    for name, s in CASES:
        print(asdict(run(name, s)))
