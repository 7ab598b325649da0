"""How long `make reproduce PROFILE=paper` takes on this machine, estimated without running it.

Each stage is timed at paper size on a slice of the work and scaled up, on the CPU and, when
a GPU is present, on it too in the same run (`dwf.devices`: each at its "auto" precision,
bfloat16 autocast on the GPU), with the ratio per stage. Zoo: a few nets are trained three times, for one and
for two epochs on a slice of n1 training examples and for one epoch on a slice of n2 = 4 n1
(n1 grown until an epoch takes a second). The three times give the start-up cost (paid once),
the validation pass (paid every epoch, whatever the slice) and the cost per training example;
the zoo's time is start-up + epochs × (validation + examples × cost per example), scaled by
the number of nets. Flow: a few hundred steps, scaled by the number of steps. Alignment: one
member matched to another (weight matching or TransFusion, the experiment's settings), times the
members to match (twice for a medoid reference). Evaluation: the test-split predictions of a few
nets, times the nets a report scores over its populations and replicates (`dwf.evaluate.declared`;
BatchNorm recalibration, distances, the frontier and transfer come on top).

    python -m benchmarks.bench_paper_profile [--devices cpu,cuda] [EXPERIMENT ...]   (default: every device here)
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from dwf import Experiment, align, archs, data, devices, experiments, families, flow, stacked, train_zoo
from dwf import evaluate as ev
from dwf.io import save_json
from dwf.task import task_for
from dwf.zoo import split

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
    align_member_s: float             # one member matched to the reference
    align_s: float                    # x members to match (x 2 for a medoid reference)
    predict_net_s: float              # one net's predictions on the test split
    scored_nets: int                  # nets a report scores (populations x replicates)
    evaluate_s: float                 # predict_net_s x scored_nets
    device: str                       # where zoo training, flows and evaluation were timed, and the precision

    @property
    def total_s(self) -> float:
        return self.zoo_s + self.flow_s + self.align_s + self.evaluate_s


def _zoo_seconds(exp: Experiment, n_examples: int, n_models: int, epochs: int) -> tuple[float, int]:
    """(seconds to train n_models nets of exp for `epochs` on the first n_examples, their size)."""
    sliced = data.load(replace(exp.data, train_limit=n_examples))
    t0 = time.perf_counter()
    zoo = train_zoo(sliced, exp.arch, replace(exp.zoo, n_models=n_models, epochs=epochs), progress=False)
    return time.perf_counter() - t0, zoo.layout.dim


def estimate(name: str, probe_models: int = 4, probe_examples: int = 512,
             flow_steps: int = 300, min_epoch_s: float = 1.0) -> PaperEstimate:
    """The estimate on the device in effect (`dwf.devices.using`); alignment runs on the CPU."""
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
    member_s = _align_seconds(exp)
    matched = (n - 1) * (2 if exp.align.reference == "medoid" else 1)
    net_s, nets = _predict_seconds(exp, m), scored_nets(exp)
    return PaperEstimate(name, dim, m, (n1, n2), n_train, startup, validation, example, zoo_s,
                         flow_steps, flow_probe, flow_probe * exp.flow.steps / flow_steps,
                         member_s, member_s * matched, net_s, nets, net_s * nets, str(devices.current()))


def _align_seconds(exp: Experiment) -> float:
    """Seconds to match one freshly initialized net to another at paper size."""
    if exp.align.method == "none":
        return 0.0
    x = data.load(replace(exp.data, train_limit=2)).x_train
    spec = families.symmetry(exp.arch, x)
    a, b = (archs.build(exp.arch, seed=s).state_dict() for s in (0, 1))
    t0 = time.perf_counter()
    align.match_member(spec, a, b, 1, exp.align.max_iter, exp.align.seed,
                       families.buffer_names(exp.arch), exp.align.stream)
    return time.perf_counter() - t0


def _predict_seconds(exp: Experiment, m: int) -> float:
    """Seconds per net to predict the paper profile's test split, m nets at once."""
    ds = data.load(exp.data).for_reporting()
    nets = [archs.build(exp.arch, seed=s).state_dict() for s in range(m)]
    params = {k: torch.stack([sd[k] for sd in nets]) for k in nets[0]}
    model = archs.build(exp.arch)
    stacked.predict(model, {k: v[:1] for k, v in params.items()}, ds.x_test[:8], task=task_for(ds))   # warm-up
    t0 = time.perf_counter()
    stacked.predict(model, params, ds.x_test, task=task_for(ds))   # returns on the CPU: the device is done
    return (time.perf_counter() - t0) / m


def scored_nets(exp: Experiment) -> int:
    """The nets a report of `exp` predicts: each declared population's size, per replicate
    where its nets depend on the replicate."""
    n_fit = len(split(exp.zoo.n_models, exp.pca.held_out, exp.zoo.seed)[0])
    size = {"zoo": n_fit, "held_out": exp.zoo.n_models - n_fit, "generated": exp.sample.n,
            "encode_decode": n_fit}
    specs = ev.declared(exp.eval, families.has_batchnorm(exp.arch))
    return sum(size.get(s.source, exp.eval.n_baseline) * (exp.eval.replicates if s.replicated else 1)
               for s in specs)


def _hours(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.0f} min" if s >= 60 else f"{s:.0f} s"


def main(names: list[str], on: list[str]) -> None:
    torch.manual_seed(0)
    rows: dict[str, list[dict]] = {}
    for dev in on:
        with devices.using(dev):
            print(f"timed on {devices.current()} ({torch.get_num_threads()} CPU threads)")
            print("experiment        params    ms/example  val s/epoch  zoo (paper)  flow (paper)  align  evaluate  total")
            for name in names:
                e = estimate(name)
                rows.setdefault(dev, []).append({**asdict(e), "total_s": e.total_s})
                print(f"{name:<17} {e.n_params:>11,}  {1000 * e.example_s:8.3f}  {e.validation_s:11.2f}  "
                      f"{_hours(e.zoo_s):>11}  {_hours(e.flow_s):>12}  {_hours(e.align_s):>5}  "
                      f"{_hours(e.evaluate_s):>8}  {_hours(e.total_s):>6}", flush=True)
            print(f"all: {_hours(sum(r['total_s'] for r in rows[dev]))} for zoo training, flow fitting, alignment "
                  "and test predictions (BatchNorm recalibration, the frontier and transfer come on top)")
    if {"cpu", "cuda"} <= set(rows):
        print("CPU / GPU time per stage (the GPU's speed-up):")
        print("experiment          zoo    flow  evaluate  total")
        for c, g in zip(rows["cpu"], rows["cuda"]):
            ratio = lambda k: c[k] / max(g[k], 1e-9)  # noqa: E731
            print(f"{c['experiment']:<17} {ratio('zoo_s'):5.1f}x {ratio('flow_s'):5.1f}x {ratio('evaluate_s'):8.1f}x "
                  f"{ratio('total_s'):5.1f}x")
    save_json(OUT, {"estimates": rows, "total_s": {d: sum(r["total_s"] for r in v) for d, v in rows.items()},
                    "threads": torch.get_num_threads(), "gpu": torch.cuda.get_device_name() if "cuda" in rows else None})


if __name__ == "__main__":
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("experiments", nargs="*", default=list(DEFAULT))
    args.add_argument("--devices", default="cpu" + (",cuda" if torch.cuda.is_available() else ""),
                      help="comma-separated, in the order to time them")
    a = args.parse_args()
    main(a.experiments, a.devices.split(","))
