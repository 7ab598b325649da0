"""Where a run's artifacts live: artifacts/<experiment>/<profile>/seed<seed>/<stage>/, a
variant (ablation) under variants/<name>/ beside its experiment's stages, sharing its zoo."""
from __future__ import annotations

from pathlib import Path

from .config import Experiment


def experiment_dir(exp: Experiment, artifacts: str | Path = "artifacts") -> Path:
    """Where the experiment's stages and report.json live: one folder per run seed, so runs with
    other seeds never share files; a variant (ablation) keeps its own under variants/<name>/ and
    shares the experiment's zoo."""
    base = seed_dir(exp, artifacts)
    return base / "variants" / exp.variant if exp.variant else base


def seed_dir(exp: Experiment, artifacts: str | Path = "artifacts") -> Path:
    return Path(artifacts) / exp.name / exp.profile / f"seed{exp.seed}"


def stage_dir(exp: Experiment, stage: str, artifacts: str | Path = "artifacts") -> Path:
    """The folder of one stage (a variant's zoo is its experiment's)."""
    if stage == "zoo":
        return seed_dir(exp, artifacts) / "zoo"
    return experiment_dir(exp, artifacts) / stage


__all__ = ["experiment_dir", "seed_dir", "stage_dir"]
