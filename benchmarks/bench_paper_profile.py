"""How long `make reproduce PROFILE=paper` takes on this machine, estimated without running it.

The two stages that dominate at paper size, zoo training and flow fitting, are timed at paper
size on a slice of the work and scaled up. Zoo: a few nets are trained three times, for one and
for two epochs on a slice of n1 training examples and for one epoch on a slice of n2 = 4 n1
(n1 grown until an epoch takes a second). The three times give the start-up cost (paid once),
the validation pass (paid every epoch, whatever the slice) and the cost per training example;
the zoo's time is start-up + epochs × (validation + examples × cost per example), scaled by
the number of nets. Flow: a few hundred steps, scaled by the number of steps.

    python -m benchmarks.bench_paper_profile [EXPERIMENT ...]
"""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from dwf import Experiment, data, experiments, flow, train_zoo
from dwf.io import save_json

# the experiments `make reproduce` runs (the conditional flow has no paper profile)
DEFAULT = ("iris_mlp", "digits_mlp", "fmnist_mlp", "fmnist_resnet20", "fmnist_vit", "vader_tinybert")
OUT = Path("artifacts/bench/paper_profile.json")


@dataclass
class PaperEstimate:
    experiment: str
    n_params: int
    probe_models: int
    probe_examples: tuple[int, int]   # n1, n2 training examples in the probe slices
    train_examples: int               # in the paper profile's epoch
    startup_s: float                  # paid once
    validation_s: float               # per epoch, for the probe's nets
    example_s: float                  # per training example and epoch, for the probe's nets
    zoo_s: float                      # (startup + epochs x (validation + examples x example)) x nets / probe nets
    flow_probe_steps: int
    flow_probe_s: float
    flow_s: float                     # extrapolated to the paper profile's flow steps

    @property
    def total_s(self) -> float:
        return self.zoo_s + self.flow_s


def _zoo_seconds(exp: Experiment, n_examples: int, n_models: int, epochs: int) -> tuple[float, int]:
    """(seconds to train n_models nets of exp for `epochs` on the first n_examples, their size)."""
    sliced = data.load(replace(exp.data, train_limit=n_examples))
    t0 = time.perf_counter()
    zoo = train_zoo(sliced, exp.arch, replace(exp.zoo, n_models=n_models, epochs=epochs), progress=False)
    return time.perf_counter() - t0, zoo.layout.dim


def estimate(name: str, probe_models: int = 4, probe_examples: int = 512,
             flow_steps: int = 300, min_epoch_s: float = 1.0) -> PaperEstimate:
    exp = experiments.get(name, "paper")
    n_train = len(data.load(exp.data).y_train)
    m = min(probe_models, exp.zoo.n_models)
    n1 = min(probe_examples, n_train)
    while True:   # grow the slice until one epoch takes long enough to time (or is the whole split)
        one, dim = _zoo_seconds(exp, n1, m, 1)
        epoch = max(_zoo_seconds(exp, n1, m, 2)[0] - one, 0.0)
        if epoch >= min_epoch_s or n1 == n_train:
            break
        n1 = min(4 * n1, n_train)
    n2 = min(4 * n1, n_train)
    example = max(_zoo_seconds(exp, n2, m, 1)[0] - one, 0.0) / (n2 - n1) if n2 > n1 else epoch / n1
    validation = max(epoch - example * n1, 0.0)
    startup = max(one - epoch, 0.0)
    n = exp.zoo.n_models
    zoo_s = (startup + exp.zoo.epochs * (validation + example * n_train)) * n / m
    codes = torch.randn(n, n - 1, generator=torch.Generator().manual_seed(0))   # PCA keeps n - 1
    t0 = time.perf_counter()
    flow.fit(codes, replace(exp.flow, steps=flow_steps), progress=False)
    flow_probe = time.perf_counter() - t0
    return PaperEstimate(name, dim, m, (n1, n2), n_train, startup, validation, example, zoo_s,
                         flow_steps, flow_probe, flow_probe * exp.flow.steps / flow_steps)


def _hours(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.0f} min" if s >= 60 else f"{s:.0f} s"


def main(names: list[str]) -> None:
    torch.manual_seed(0)
    rows = []
    print("experiment        params    ms/example  val s/epoch  zoo (paper)  flow (paper)  total")
    for name in names:
        e = estimate(name)
        rows.append({**asdict(e), "total_s": e.total_s})
        print(f"{name:<17} {e.n_params:>11,}  {1000 * e.example_s:8.3f}  {e.validation_s:11.2f}  "
              f"{_hours(e.zoo_s):>11}  {_hours(e.flow_s):>12}  {_hours(e.total_s):>6}", flush=True)
    total = sum(r["total_s"] for r in rows)
    print(f"all: {_hours(total)} for zoo training and flow fitting (evaluation, frontier and "
          "transfer come on top)")
    save_json(OUT, {"estimates": rows, "total_s": total, "threads": torch.get_num_threads()})


if __name__ == "__main__":
    main(sys.argv[1:] or list(DEFAULT))
