"""The paper's numbers (PAPER.md §§ results, ablations, speed), in one registry, and where ours
sit beside each. Every row names how our setting differs from the paper's.

A `Comparison` says which of our reports answers it (`kind`):
  gap          zoo → generated of `experiment`, with the gap's 95 % interval over replicates
  pair         generated score of two variants of `experiment` (a vs b)
  similarity   generated mean max error similarity vs the σ=0.01 noisy copies'
  conditional  per label zoo → generated of every conditional report
  speed        seconds to sample and decode one net
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .config import PopulationSpec
from .errors import ConfigError
from .report import Report


@dataclass(frozen=True)
class Comparison:
    what: str
    paper: str                       # the paper's number(s) as it prints them
    setting: str                     # how our setting differs
    kind: str
    experiment: str = ""
    variants: tuple[str, str] = ("", "")


COMPARISONS = (
    Comparison("MLP / MNIST: zoo → generated", "96.32 ± 0.20 → 96.17 ± 0.31 (−0.15 pp)",
               "sklearn digits 8×8 (1,797 images), 64-32-32-10, quick zoo of 64", "gap", "digits_mlp"),
    Comparison("ResNet-18 / CIFAR-10: zoo → generated", "94.45 ± 0.14 → 93.55 ± 0.13 (−0.90 pp)",
               "not run here: CIFAR-10 is not on disk; ResNet-20 on Fashion-MNIST instead", "gap",
               "cifar10_resnet18"),
    Comparison("ViT-Small-192 / CIFAR-10: zoo → generated", "83.30 ± 0.29 → 83.07 ± 0.42 (−0.23 pp)",
               "a 2-block ViT of width 48 on Fashion-MNIST, 16 nets", "gap", "fmnist_vit"),
    Comparison("BERT regression, generated Spearman ρ: aligned vs unaligned", "0.7902 ± 0.0061 vs 0.7909 ± 0.005",
               "a 2-layer BERT of width 32 on VADER word valence, 16 nets", "pair", "vader_tinybert",
               ("", "unaligned")),
    Comparison("MNIST MLP, flow h=512: aligned vs unaligned", "96.17 vs 96.19",
               "sklearn digits 8×8", "pair", "digits_mlp", ("", "unaligned")),
    Comparison("MNIST MLP, flow h=64: aligned vs unaligned", "57.80 ± 9.85 vs 25.54 ± 12.90",
               "sklearn digits 8×8", "pair", "digits_mlp", ("flow-h64", "flow-h64-unaligned")),
    Comparison("Fashion-MNIST MLP, flow h=64: aligned vs unaligned", "77.76 ± 3.72 vs 53.35 ± 30.49",
               "784-32-32-10 (the paper's is wider), 4 epochs", "pair", "fmnist_mlp",
               ("flow-h64", "flow-h64-unaligned")),
    Comparison("ViT, flow h=128: aligned vs unaligned", "69.09 ± 25.20 vs 41.15 ± 25.26",
               "small ViT on Fashion-MNIST", "pair", "fmnist_vit", ("flow-h128", "flow-h128-unaligned")),
    Comparison("MNIST MLPs, mean max error-IoU: generated vs noisy copies σ=0.01",
               "0.76–0.90, about the σ=0.01 copies' (read off plots)", "sklearn digits 8×8", "similarity",
               "digits_mlp"),
    Comparison("Conditional: one flow over two MLP zoos, per label zoo → generated", "shown, no numbers",
               "digits resized to 28×28 + Fashion-MNIST (the paper: MNIST + Fashion-MNIST)", "conditional"),
    Comparison("Speed: seconds to sample and decode one net", "sub-second per small model; 21 s for BERT-base",
               "2 CPU cores, small nets", "speed"),
)
NOISY_001 = PopulationSpec("noisy", sigma=0.01)


def ours(c: Comparison, reports: Sequence[Report]) -> str:
    """Our side of one comparison, from the reports of this run ('not in this run' if absent)."""
    by = {(r.experiment, r.variant): r for r in reports}
    if c.kind == "conditional":
        labelled = [r for r in reports if r.conditional is not None]
        return "; ".join(f"{r.conditional.labels[r.conditional.label]}: {r.fmt(r.zoo_population.score.mean)} → "
                         f"{r.fmt(r.generated.score.mean)} ({r.gap_text})" for r in labelled) or "not in this run"
    if c.kind == "speed":
        per = [(r.experiment, r.timings["sample"] / r.generated.n) for r in reports
               if not r.variant and "sample" in r.timings and r.conditional is None]
        return ", ".join(f"{e} {s * 1000:.1f} ms" for e, s in per) + " per net" if per else "not in this run"
    if any((c.experiment, v) not in by for v in (c.variants if c.kind == "pair" else ("",))):
        return "not in this run"
    r = by[c.experiment, ""]
    if c.kind == "gap":
        return f"{r.fmt(r.zoo_population.score.mean)} → {r.fmt_interval(r.generated.score)} ({r.gap_text})"
    if c.kind == "pair":
        return " vs ".join(by[c.experiment, v].fmt_interval(by[c.experiment, v].generated.score) for v in c.variants)
    if c.kind == "similarity":
        noisy = r.find(NOISY_001)
        return (f"{r.generated.error_similarity.text()} vs "
                + (noisy.error_similarity.text() if noisy else "—"))
    raise ConfigError(f"unknown comparison kind {c.kind!r}")


def comparison_markdown(reports: Sequence[Report]) -> str:
    """Every paper number this study can set ours beside, as one table (95 % intervals over
    replicates in brackets)."""
    lines = ["| comparison | paper | ours | our setting differs |", "|---|---|---|---|"]
    lines += [f"| {c.what} | {c.paper} | {ours(c, reports)} | {c.setting} |" for c in COMPARISONS]
    return "\n".join(lines)
