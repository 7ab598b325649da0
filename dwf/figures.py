"""The paper_figures set: named figures (PNG + HTML) per report, `results.md` and `results.json`.

Everything is rendered in memory (PNGs in one kaleido batch, into a scratch folder) before the
first output file is written; each file is then written atomically, so a failure leaves no
half-written file behind.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import plotly.graph_objects as go
import plotly.io as pio

from . import plots, tables
from .errors import ConfigError, DwfError
from .io import atomic_write_bytes
from .replicas import ReplicatedReport
from .report import Report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_SCALE = 2


def figures(r: Report) -> dict[str, go.Figure]:
    """The named figures of one report, built from the report alone."""
    tag = f" — {r.experiment} [{r.profile}]"
    pops, m = {p.name: p.per_net for p in r.populations}, r.metric
    out = {
        "zoo_validation_score": plots.zoo_accuracy_histogram(
            r.zoo_population.per_net.score, r.zoo.val_score, title="Zoo score (fitting members: test)" + tag, metric=m),
        "pca_spectrum": plots.pca_spectrum(r.zoo.explained_variance_ratio, title="Dual PCA explained variance" + tag),
        "flow_loss": plots.flow_loss(r.flow.history, title="Flow-matching loss (replicate 0)" + tag),
        "accuracy_distributions": plots.accuracy_distributions(
            {k: p.score for k, p in pops.items()}, title="Test score per net (replicate 0)" + tag, metric=m),
        "novelty_scatter": plots.novelty_scatter(r.populations, m, title="Score vs novelty, 95 % intervals" + tag),
        "spread_novelty": plots.spread_novelty(r.populations, title="Collapse and memorization map" + tag),
        "novelty_per_net": plots.novelty_per_net(pops, title="Score vs distance to the zoo, every net" + tag, metric=m),
        "error_similarity": plots.error_similarity_accuracy(
            pops, title="Score vs behavioural similarity, every net" + tag, metric=m),
        "nn_distance_histogram": plots.nn_distance_histogram(
            {p.name: p.per_net.novelty for p in r.populations if p.spec.source != "zoo"},
            title="Distance to the nearest fitting member" + tag),
        "alignment_distances": plots.alignment_distances(
            r.zoo.dist_to_ref_before, r.zoo.dist_to_ref_after, reference=r.zoo.reference,
            title="Distance to the reference member, before and after re-basin" + tag),
    }
    if r.barrier:
        out["interpolation_barrier"] = plots.interpolation_barrier(
            r.barrier, title="Loss along the line between two zoo members" + tag)
    out |= {f"transfer_{t['target']}": plots.transfer_curves(t, title="Few-shot transfer" + tag)
            for t in r.transfer if "unavailable" not in t}
    if r.frontier:
        out["frontier"] = plots.frontier(r.frontier, r.zoo_population.score.mean, m,
                                         title="Accuracy–novelty frontier" + tag)
    return out


def _html(fig: go.Figure, div_id: str) -> bytes:
    return fig.to_html(include_plotlyjs="cdn", full_html=True, div_id=div_id).encode()


def render_pngs(figs: Sequence[go.Figure], scratch: Path) -> list[bytes]:
    """PNG bytes of every figure, rendered by ONE kaleido call (one browser start)."""
    if not figs:
        return []
    paths = [scratch / f"{i}.png" for i in range(len(figs))]
    try:
        pio.write_images(list(figs), paths, scale=PNG_SCALE,
                         width=[f.layout.width for f in figs], height=[f.layout.height for f in figs])
        data = [p.read_bytes() for p in paths]
    except Exception as e:
        raise DwfError(f"rendering PNGs with kaleido failed ({e}); kaleido drives a Chrome or "
                       "Chromium browser: install the Debian package 'chromium' (make setup does)") from e
    bad = [str(p) for p, d in zip(paths, data) if not d.startswith(PNG_MAGIC)]
    if bad:
        raise DwfError(f"kaleido wrote files that are not PNGs: {bad}; check the kaleido install")
    return data


def write(reports: Sequence[Report], out_dir: str | Path = "paper_figures",
          replicated: Sequence[ReplicatedReport] = (), started: float | None = None,
          side_by_side: bool = False) -> dict[str, Any]:
    """Write out_dir/<experiment>/<figure>.{png,html}, out_dir/results.md and results.json
    (with the experiments repeated over independent zoos, when given; with the whole run's wall
    time when `started`, its time.time() at the start, is given, and whether its builds ran
    `side_by_side`, `dwf.reproduce`). Returns results.json's content."""
    out = Path(out_dir)
    if any(not isinstance(r, Report) for r in reports):
        raise ConfigError("write() takes Reports: build runs with dwf.pipeline.build(..., evaluate=True)")
    named = [(r.experiment, name, fig) for r in reports if not r.variant for name, fig in figures(r).items()]
    for r in reports:   # the flow width × alignment ablation, for experiments run with variants
        variants = [v for v in reports if v.variant and v.experiment == r.experiment]
        cells = tables.flow_alignment_cells(r, variants) if variants and not r.variant else {}
        if len(cells) > 1:
            named.append((r.experiment, "ablation_flow_alignment", plots.flow_alignment(
                cells, r.zoo_population.score.mean, r.metric,
                title=f"Flow width × alignment, 95 % intervals — {r.experiment} [{r.profile}]")))
    files: dict[Path, bytes] = {out / exp / f"{name}.html": _html(fig, f"{exp}-{name}") for exp, name, fig in named}
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=out, prefix=".render-"))
    try:
        pngs = render_pngs([f for _, _, f in named], scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for (exp, name, _), png in zip(named, pngs):
        files[out / exp / f"{name}.png"] = png
    listing: dict[str, list[str]] = {}
    for exp, name, _ in named:
        listing.setdefault(exp, []).extend([f"{exp}/{name}.png", f"{exp}/{name}.html"])
    summary = tables.results_json(reports, listing, replicated)
    if started is not None:   # the whole run, figures included (rendered above)
        summary["reproduce"] = {"profile": reports[0].profile if reports else "", "seconds": time.time() - started,
                                "side_by_side": side_by_side}
    files[out / "results.md"] = tables.results_markdown(reports, replicated=replicated).encode()
    files[out / "results.json"] = (json.dumps(summary, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()
    for path, data in files.items():
        atomic_write_bytes(path, data)
    return summary


def write_figure(stem: str | Path, fig: go.Figure) -> list[Path]:
    """One figure as stem.png and stem.html, each written atomically (a dot in the stem stays:
    "refit_t0.4" gives refit_t0.4.png). Returns the paths written."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=stem.parent, prefix=".render-"))
    try:
        png, = render_pngs([fig], scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    files = {stem.parent / f"{stem.name}.png": png, stem.parent / f"{stem.name}.html": _html(fig, stem.name)}
    for path, data in files.items():
        atomic_write_bytes(path, data)
    return list(files)


def write_study(out_dir: str | Path, figs: dict[str, go.Figure], markdown: str) -> list[Path]:
    """A study's figures (out_dir/<name>.{png,html}) and its table (out_dir/results.md), each file
    written atomically. Returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=out, prefix=".render-"))
    try:
        pngs = render_pngs(list(figs.values()), scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    files = {out / "results.md": (markdown + "\n").encode()}
    for (name, fig), png in zip(figs.items(), pngs):
        files[out / f"{name}.png"] = png
        files[out / f"{name}.html"] = _html(fig, name)
    for path, data in files.items():
        atomic_write_bytes(path, data)
    return list(files)
