"""Report: every metric of a run with the config that produced it (JSON) and a printable table."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from .io import load_json, save_json


def score_format(metric: str) -> tuple[float, int, str]:
    """(factor, decimals, label) to show a score: accuracy in percent with 2 decimals,
    Spearman ρ as it is with 4."""
    return (100.0, 2, "accuracy (%)") if metric == "accuracy" else (1.0, 4, metric)


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
    metric: str = "accuracy"                     # what acc_* hold: "accuracy" or "Spearman ρ"

    def row(self, name: str) -> dict:
        for r in self.rows:
            if r["name"] == name:
                return r
        raise KeyError(f"no population {name!r} in the report; have {[r['name'] for r in self.rows]}")

    @property
    def gap_pp(self) -> float:
        """Generated minus zoo mean score in display units: percentage points of accuracy, or
        the difference in Spearman ρ."""
        return self.fmt_factor * (self.row("generated")["acc_mean"] - self.row("zoo")["acc_mean"])

    @property
    def fmt_factor(self) -> float:
        return score_format(self.metric)[0]

    def fmt(self, v: float, decimals: int | None = None) -> str:
        """A score in display units (percent for accuracy)."""
        f, d, _ = score_format(self.metric)
        return f"{f * v:.{d if decimals is None else decimals}f}"

    @property
    def gap_text(self) -> str:
        return f"{self.gap_pp:+.2f} pp" if self.metric == "accuracy" else f"{self.gap_pp:+.4f} ρ"

    def table(self) -> str:
        head = f"{'population':<22}{'n':>5}{'score':>10}{'± std':>8}{'min':>8}{'max':>8}{'novelty':>9}{'max sim':>9}"
        lines = [f"{self.experiment} [{self.profile}] — score: {score_format(self.metric)[2]}", head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r['name']:<22}{r['n']:>5}{self.fmt(r['acc_mean']):>10}{self.fmt(r['acc_std']):>8}"
                         f"{self.fmt(r['acc_min']):>8}{self.fmt(r['acc_max']):>8}{r['novelty']:>9.3f}{r['max_iou']:>9.3f}")
        lines.append("novelty: median NN distance to the zoo / the zoo's own median NN distance; "
                     "max sim: mean over nets of the max error-set IoU (regression: residual "
                     "correlation) with a zoo member")
        lines.append("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in self.timings.items()))
        return "\n".join(lines)

    def markdown_rows(self) -> str:
        label = score_format(self.metric)[2]
        sim = "max error-IoU" if self.metric == "accuracy" else "max residual correlation"
        out = [f"| population | n | {label} | min–max | novelty | {sim} |", "|---|---|---|---|---|---|"]
        short = 1 if self.metric == "accuracy" else 3
        for r in self.rows:
            out.append(f"| {r['name']} | {r['n']} | {self.fmt(r['acc_mean'])} ± {self.fmt(r['acc_std'])} | "
                       f"{self.fmt(r['acc_min'], short)}–{self.fmt(r['acc_max'], short)} | {r['novelty']:.3f} | "
                       f"{r['max_iou']:.3f} |")
        return "\n".join(out)

    def save(self, path: str | Path) -> None:
        save_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> "Report":
        return cls(**load_json(path))
