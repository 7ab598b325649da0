"""Report: every metric of a run with the config that produced it (JSON) and a printable table."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from .io import load_json, save_json


@dataclass
class Report:
    experiment: str
    profile: str
    config: dict
    rows: list[dict]                  # Population.summary() per population
    populations: dict[str, dict]      # per-net metrics, for plots
    timings: dict[str, float]
    extras: dict = field(default_factory=dict)   # spectra, flow history, alignment stats...
    paper: dict = field(default_factory=dict)    # comparable numbers from the paper
    variant: str = ""                            # "" for the experiment, else the ablation's name

    def row(self, name: str) -> dict:
        for r in self.rows:
            if r["name"] == name:
                return r
        raise KeyError(f"no population {name!r} in the report; have {[r['name'] for r in self.rows]}")

    @property
    def gap_pp(self) -> float:
        """Generated mean accuracy minus zoo mean accuracy, in percentage points."""
        return 100 * (self.row("generated")["acc_mean"] - self.row("zoo")["acc_mean"])

    def table(self) -> str:
        head = f"{'population':<22}{'n':>5}{'acc mean':>10}{'± std':>8}{'min':>8}{'max':>8}{'novelty':>9}{'max IoU':>9}"
        lines = [f"{self.experiment} [{self.profile}]", head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r['name']:<22}{r['n']:>5}{100 * r['acc_mean']:>10.2f}{100 * r['acc_std']:>8.2f}"
                         f"{100 * r['acc_min']:>8.2f}{100 * r['acc_max']:>8.2f}{r['novelty']:>9.3f}{r['max_iou']:>9.3f}")
        lines.append("novelty: median NN distance to the zoo / the zoo's own median NN distance; "
                     "max IoU: mean over nets of the max error-set IoU with a zoo member")
        lines.append("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in self.timings.items()))
        return "\n".join(lines)

    def markdown_rows(self) -> str:
        out = ["| population | n | accuracy (%) | min–max | novelty | max error-IoU |",
               "|---|---|---|---|---|---|"]
        for r in self.rows:
            out.append(f"| {r['name']} | {r['n']} | {100 * r['acc_mean']:.2f} ± {100 * r['acc_std']:.2f} | "
                       f"{100 * r['acc_min']:.1f}–{100 * r['acc_max']:.1f} | {r['novelty']:.3f} | {r['max_iou']:.3f} |")
        return "\n".join(out)

    def save(self, path: str | Path) -> None:
        save_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> "Report":
        return cls(**load_json(path))
