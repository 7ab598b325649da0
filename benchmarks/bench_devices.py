"""One experiment built end to end on each device this machine has (`dwf.devices`): seconds per
stage, and the report's headline numbers, so a GPU run shows both its speed-up and that it
reaches the same conclusions (the CPU in float32, the GPU in its "auto" precision: bfloat16
autocast for the networks' forward passes). Each device builds in its own fresh folder.

    python -m benchmarks.bench_devices [--devices cpu,cuda] [EXPERIMENT ...]
    (default: every device here, fmnist_mlp; quick profile)
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from dwf import PopulationSpec, devices, experiments, pipeline
from dwf.io import save_json

OUT = Path("artifacts/bench/devices.json")


@dataclass
class DeviceRun:
    experiment: str
    compute: str                     # device and precision
    seconds: float                   # the whole build
    stages: dict[str, float]         # report: evaluation, frontier, transfer and figures data
    zoo_score: float                 # fitting members' mean test score
    gap: tuple[float, float, float]  # generated − zoo (mean, 95 % interval), over flow replicates
    novelty: float                   # generated nets, against the fitting members
    novelty_held_out: float | None


def run(name: str, device: str, profile: str = "quick") -> DeviceRun:
    exp = experiments.get(name, profile)
    with tempfile.TemporaryDirectory() as d, devices.using(device) as compute:
        t0 = time.perf_counter()
        built = pipeline.build(exp, d, progress=False)
        seconds = time.perf_counter() - t0
    rep = built.report
    gen = rep.population(PopulationSpec("generated"))
    stages = {**built.timings, "report": seconds - sum(built.timings.values())}
    return DeviceRun(name, str(compute), seconds, stages, rep.population(PopulationSpec("zoo", "own")).score.mean,
                     (rep.gap.mean, rep.gap.lo, rep.gap.hi), gen.novelty.mean,
                     gen.novelty_held_out.mean if gen.novelty_held_out else None)


def main(names: list[str], on: list[str]) -> None:
    runs = []
    for name in names:
        for dev in on:
            r = run(name, dev)
            runs.append(r)
            stages = ", ".join(f"{k} {v:.1f}" for k, v in r.stages.items())
            print(f"{name} on {r.compute}: {r.seconds:.1f} s ({stages}); zoo {r.zoo_score:.4f}, gap "
                  f"{100 * r.gap[0]:+.2f} [{100 * r.gap[1]:+.2f}, {100 * r.gap[2]:+.2f}] pp, novelty "
                  f"{r.novelty:.3f}", flush=True)
    save_json(OUT, {"runs": [asdict(r) for r in runs], "threads": torch.get_num_threads(),
                    "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None})


if __name__ == "__main__":
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("experiments", nargs="*", default=["fmnist_mlp"])
    args.add_argument("--devices", default="cpu" + (",cuda" if torch.cuda.is_available() else ""),
                      help="comma-separated, in the order to run them")
    a = args.parse_args()
    main(a.experiments, a.devices.split(","))
