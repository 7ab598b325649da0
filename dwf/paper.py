"""The paper_figures set: named figures (PNG + HTML) per run, `results.md` and `results.json`.

Everything is rendered in memory (PNGs in one kaleido batch, into a scratch folder) before the
first output file is written; each file is then written atomically, so a failure leaves no
half-written file behind.
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import plotly.graph_objects as go
import plotly.io as pio

from . import plots
from .errors import ConfigError, DwfError
from .io import atomic_write_bytes, strict_json
from .pipeline import Run
from .report import Report, score_format

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_SCALE = 1.5
STAGES = ("zoo", "align", "pca", "flow", "sample", "evaluate")

NOTE = """\
**Reading the tables.** Accuracy is on the test split, which no stage ever selects on.
*Novelty* is the median distance (aligned weight space) from each net to its nearest zoo member,
divided by the zoo's own leave-one-out median nearest-neighbour distance: 1.0 means as far from
the zoo as zoo members are from each other, near 0 means near-copies of zoo members.
Scores are test accuracy (%) for classifiers and Spearman ρ for regressors (VADER).
*Max error-IoU* is, averaged over nets, the largest intersection-over-union between the set of
test examples a net gets wrong and that of any zoo member (a zoo member is not compared with
itself): near 1 means the net makes the same mistakes as some original.
For regressors the same column holds the largest correlation of a net's residuals with a zoo
member's. A generator is only interesting where it beats the trivial baselines, noisy copies of
zoo members and interpolations of aligned pairs, on accuracy **and** novelty together.
"""


def figures(report: Report) -> dict[str, go.Figure]:
    """The named figures of one run, built from its report alone."""
    ex, tag = report.extras, f" — {report.experiment} [{report.profile}]"
    pops = {r["name"]: report.populations[r["name"]] for r in report.rows}   # table order
    acc, m = {k: p["acc"] for k, p in pops.items()}, report.metric
    ref = int(ex.get("reference", 0))
    return {
        "zoo_accuracy": plots.zoo_accuracy_histogram(pops["zoo"]["acc"], ex.get("zoo_val_acc"),
                                                     title="Zoo score" + tag, metric=m),
        "pca_spectrum": plots.pca_spectrum(ex["explained_variance_ratio"],
                                           title="Dual PCA explained variance" + tag),
        "flow_loss": plots.flow_loss(ex["flow_history"], title="Flow-matching loss" + tag),
        "accuracy_distributions": plots.accuracy_distributions(acc, title="Test score per net" + tag, metric=m),
        "novelty_scatter": plots.novelty_scatter(report, title="Accuracy vs novelty" + tag),
        "novelty_per_net": plots.novelty_per_net(pops, ex["zoo_median_nn"],
                                                 title="Score vs distance to the zoo, every net" + tag, metric=m),
        "iou_accuracy": plots.iou_accuracy(pops, title="Score vs behavioural similarity, every net" + tag, metric=m),
        "nn_distance_histogram": plots.nn_distance_histogram(
            {k: p["nn_dist"] for k, p in pops.items() if k != "zoo"}, ex["zoo_median_nn"],
            title="Distance to the nearest zoo member" + tag),
        **({"interpolation_barrier": plots.interpolation_barrier(
            ex["interpolation"], title="Loss along the line between two zoo members" + tag)}
           if "interpolation" in ex else {}),
        "alignment_distances": plots.alignment_distances(
            ex.get("dist_to_ref_before", []), ex.get("dist_to_ref_after", []), reference=ref,
            title="Distance to the reference member, before and after re-basin" + tag),
        **{f"transfer_{t['target']}": plots.transfer_curves(t, title="Few-shot transfer" + tag)
           for t in ex.get("transfer", []) if "unavailable" not in t},
        **({"frontier": plots.frontier(ex["frontier"], report.row("zoo")["acc_mean"], m,
                                       title="Accuracy–novelty frontier" + tag)} if "frontier" in ex else {}),
    }


def _fmt(v: float) -> str:
    """An accuracy fraction as a percentage with two decimals."""
    return f"{100 * v:.2f}"


def _paper_cells(paper: dict) -> tuple[str, str, str]:
    """(zoo, generated, gap) cells for the paper's numbers, '—' where it reports none."""
    if "zoo" not in paper or "generated" not in paper:
        return "—", "—", "—"
    z, g = paper["zoo"], paper["generated"]
    zs = f" ± {paper['zoo_std']:.2f}" if "zoo_std" in paper else ""
    gs = f" ± {paper['generated_std']:.2f}" if "generated_std" in paper else ""
    return f"{z:.2f}{zs}", f"{g:.2f}{gs}", f"{g - z:+.2f}"


def novelty_summary(report: Report) -> str:
    """One sentence placing the generated nets' novelty among the noisy-copy baselines."""
    g, z = report.row("generated"), report.row("zoo")
    noisy = sorted((r for r in report.rows if r["name"].startswith("noisy")), key=lambda r: r["novelty"])
    below = [r for r in noisy if r["novelty"] <= g["novelty"]]
    above = [r for r in noisy if r["novelty"] > g["novelty"]]
    cite = lambda r: f"{r['name']} ({r['novelty']:.3f})"  # noqa: E731
    if not noisy:
        where = "no noisy-copy baseline to compare with"
    elif not below:
        where = f"closer to the zoo than even the least noisy copies, {cite(above[0])}"
    elif not above:
        where = f"farther from the zoo than the noisiest copies, {cite(below[-1])}"
    else:
        where = f"between {cite(below[-1])} and {cite(above[0])}"
    sim = "max error-IoU" if report.metric == "accuracy" else "max residual correlation"
    return (f"Generated nets have novelty {g['novelty']:.3f}, {where}; their mean {sim} "
            f"is {g['max_iou']:.3f} (zoo members against each other: {z['max_iou']:.3f}).")


def conditional_summary(report: Report) -> str:
    """One sentence on a conditional flow's label k: its nets against the controls (nets generated
    for the other labels, without a label, with stronger guidance) on dataset k."""
    c = report.extras["conditional"]
    name = c["labels"][c["label"]]
    controls = [r for r in report.rows if r["name"].startswith("generated") and r["name"] != "generated"]
    cells = "; ".join(f"{r['name']}: {report.fmt(r['acc_mean'])}" for r in controls)
    return (f"Conditional flow over the {' + '.join(c['labels'])} zoos ({c['n_zoo_nets']} nets, one "
            f"basis, one PCA): nets generated for label {c['label']} ({name}, guidance "
            f"w={c['guidance']:g}) score {report.fmt(report.row('generated')['acc_mean'])} on {name}, "
            f"zoo {report.fmt(report.row('zoo')['acc_mean'])}. Controls on the same test split: {cells}.")


def frontier_markdown(report: Report) -> str:
    """The frontier points as a table, best novelty among nets within 1 pp (0.01 ρ) of the zoo
    per family, then every point."""
    pts, zoo = report.extras["frontier"], report.row("zoo")["acc_mean"]
    close = 0.01
    lines = ["Accuracy–novelty frontier (`dwf.frontier`; every family at several settings, "
             f"{score_format(report.metric)[2]}):", "",
             "| family | setting | score | novelty | max error-IoU / residual corr. |", "|---|---|---|---|---|"]
    for p in pts:
        mark = " (paper recipe)" if p.get("recipe") else ""
        lines.append(f"| {p['family']} | {p['param']:g}{mark} | {report.fmt(p['acc_mean'])} ± "
                     f"{report.fmt(p['acc_std'])} | {p['novelty']:.3f} | {p['max_iou']:.3f} |")
    best = []
    for fam in dict.fromkeys(p["family"] for p in pts):
        ok = [p for p in pts if p["family"] == fam and p["acc_mean"] >= zoo - close]
        if ok:
            b = max(ok, key=lambda p: p["novelty"])
            best.append(f"{fam} {b['novelty']:.3f} (at {b['param']:g})")
        else:
            best.append(f"{fam}: none")
    within = "1 pp" if report.metric == "accuracy" else f"{close:g} ρ"
    lines += ["", f"Largest novelty with a mean score within {within} of the zoo's: "
              + "; ".join(best) + "."]
    return "\n".join(lines)


def ablation_markdown(base: Report, variants: Sequence[Report]) -> str:
    """The generated nets of each variant beside the experiment's own (same zoo)."""
    lines = ["| variant | what changes | generated | gap | novelty | no BN recalibration |",
             "|---|---|---|---|---|---|"]
    for r in [base, *variants]:
        g = r.row("generated")
        nobn = next((x for x in r.rows if x["name"] == "generated, no BN recalibration"), None)
        lines.append(f"| {r.variant or 'as configured'} | {_changes(base, r)} | "
                     f"{r.fmt(g['acc_mean'])} ± {r.fmt(g['acc_std'])} | {r.gap_text} | "
                     f"{g['novelty']:.3f} | {r.fmt(nobn['acc_mean']) if nobn else '—'} |")
    return "\n".join(lines)


def flow_alignment_cells(base: Report, variants: Sequence[Report]) -> dict[tuple[str, str], tuple[float, float]]:
    """{(flow width, aligned or not): (mean, std) generated score} over an experiment and the
    variants that change only the flow width and/or the alignment (the paper's ablation)."""
    cells = {}
    for r in [base, *variants]:
        if set(_diff(base, r)) - {"align.method", "flow.hidden"}:
            continue
        method = r.config.get("align", {}).get("method", "")
        g = r.row("generated")
        cells[f"flow h={r.config['flow']['hidden']}", "unaligned" if method == "none" else
              f"aligned ({method})"] = (g["acc_mean"], g["acc_std"])
    return dict(sorted(cells.items(), key=lambda kv: (-int(kv[0][0].split("=")[1]), kv[0][1] == "unaligned")))


def _diff(base: Report, variant: Report) -> dict[str, object]:
    """{'stage.field': the variant's value} for every upstream spec field the variant changed."""
    out = {}
    for stage in ("align", "pca", "flow", "sample"):
        # as JSON: a report read from disk holds lists where a fresh one holds tuples
        a, b = (json.loads(json.dumps(r.config.get(stage, {}))) for r in (base, variant))
        out |= {f"{stage}.{k}": b[k] for k in sorted(b) if a.get(k) != b.get(k)}
    return out


def _changes(base: Report, variant: Report) -> str:
    """Which upstream specs a variant changed, e.g. 'align.method: none' ('—' for the base)."""
    return ", ".join(f"{k}: {v}" for k, v in _diff(base, variant).items()) or "—"


def transfer_markdown(t: dict) -> str:
    """One transfer target's table, or why it was skipped."""
    if "unavailable" in t:
        return f"Transfer to {t['target']}: skipped, the data is not on disk ({t['unavailable']})"
    spec = t.get("spec", {})
    head = " | ".join(f"epoch {e} (%)" for e in t["report_epochs"])
    lines = [f"Few-shot transfer to **{t['target']}** ({spec.get('shots', '?')} images per class, new "
             "head; epoch 0 is a linear probe on frozen features, then every weight is fine-tuned; "
             "'val-selected' takes each net's epoch with the best validation accuracy):", "",
             f"| initialization | n | {head} | val-selected (%) |",
             "|---" * (3 + len(t["report_epochs"])) + "|"]
    for r in t["rows"]:
        cells = " | ".join(f"{_fmt(r[f'acc_e{e}'])} ± {_fmt(r[f'std_e{e}'])}" for e in t["report_epochs"])
        lines.append(f"| {r['init']} | {r['n']} | {cells} | {_fmt(r['acc_selected'])} ± {_fmt(r['std_selected'])} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Comparison:
    """One number the paper reports, and where ours is: `kind` says how to read our reports
    ("gap": zoo -> generated of `experiment`; "pair": generated of variants a vs b; "iou":
    generated max error-IoU vs the σ=0.01 noisy copies'; "conditional"; "speed")."""
    what: str
    paper: str
    kind: str
    experiment: str = ""
    variants: tuple[str, str] = ("", "")


COMPARISONS = (
    Comparison("MLP / MNIST: zoo → generated (ours: sklearn digits 8×8)",
               "96.32 ± 0.20 → 96.17 ± 0.31 (−0.15 pp)", "gap", "digits_mlp"),
    Comparison("ViT-Small-192 / CIFAR-10: zoo → generated (ours: a small ViT on Fashion-MNIST)",
               "83.30 ± 0.29 → 83.07 ± 0.42 (−0.23 pp)", "gap", "fmnist_vit"),
    Comparison("BERT regression, generated Spearman ρ: aligned vs unaligned (ours: tiny BERT, VADER)",
               "0.7902 ± 0.0061 vs 0.7909 ± 0.005", "pair", "vader_tinybert", ("", "unaligned")),
    Comparison("MNIST MLP, flow h=512: aligned vs unaligned (ours: sklearn digits)",
               "96.17 vs 96.19", "pair", "digits_mlp", ("", "unaligned")),
    Comparison("MNIST MLP, flow h=64: aligned vs unaligned (ours: sklearn digits)",
               "57.80 ± 9.85 vs 25.54 ± 12.90", "pair", "digits_mlp", ("flow-h64", "flow-h64-unaligned")),
    Comparison("Fashion-MNIST MLP, flow h=64: aligned vs unaligned (ours: 784-32-32-10)",
               "77.76 ± 3.72 vs 53.35 ± 30.49", "pair", "fmnist_mlp", ("flow-h64", "flow-h64-unaligned")),
    Comparison("ViT, flow h=128: aligned vs unaligned (ours: small ViT, Fashion-MNIST)",
               "69.09 ± 25.20 vs 41.15 ± 25.26", "pair", "fmnist_vit", ("flow-h128", "flow-h128-unaligned")),
    Comparison("MNIST MLPs, mean max error-IoU: generated vs noisy copies σ=0.01 (ours: sklearn digits)",
               "0.76–0.90, about the σ=0.01 copies' (read off plots)", "iou", "digits_mlp"),
    Comparison("Conditional: one flow over two MLP zoos, per label zoo → generated "
               "(paper: MNIST + Fashion-MNIST; ours: digits 28×28 + Fashion-MNIST)",
               "shown, no numbers", "conditional"),
    Comparison("Speed: seconds to sample and decode one net", "sub-second per small model; 21 s for BERT-base",
               "speed"),
)


def _ours(c: Comparison, reports: Sequence[Report]) -> str:
    """Our side of one comparison, from the reports of this run ('not in this run' if absent)."""
    by = {(r.experiment, r.variant): r for r in reports}
    if c.kind == "conditional":
        labelled = [r for r in reports if "conditional" in r.extras]
        return "; ".join(f"{r.extras['conditional']['labels'][r.extras['conditional']['label']]}: "
                         f"{r.fmt(r.row('zoo')['acc_mean'])} → {r.fmt(r.row('generated')['acc_mean'])} "
                         f"({r.gap_text})" for r in labelled) or "not in this run"
    if c.kind == "speed":
        per = [(r.experiment, r.timings["sample"] / r.row("generated")["n"]) for r in reports
               if not r.variant and "sample" in r.timings and "conditional" not in r.extras]
        return ", ".join(f"{e} {s * 1000:.1f} ms" for e, s in per) + " per net" if per else "not in this run"
    if any((c.experiment, v) not in by for v in (c.variants if c.kind == "pair" else ("",))):
        return "not in this run"
    r = by[c.experiment, ""]
    cell = lambda x, name="generated": f"{x.fmt(x.row(name)['acc_mean'])} ± {x.fmt(x.row(name)['acc_std'])}"  # noqa: E731
    if c.kind == "gap":
        return f"{cell(r, 'zoo')} → {cell(r)} ({r.gap_text})"
    if c.kind == "pair":
        return " vs ".join(cell(by[c.experiment, v]) for v in c.variants)
    if c.kind == "iou":
        noisy = next((x for x in r.rows if x["name"] == "noisy σ=0.01"), None)
        return f"{r.row('generated')['max_iou']:.3f} vs " + (f"{noisy['max_iou']:.3f}" if noisy else "—")
    raise ConfigError(f"unknown comparison kind {c.kind!r}")


def comparison_markdown(reports: Sequence[Report]) -> str:
    """Every paper number this study can set ours beside (COMPARISONS), as one table."""
    lines = ["| comparison | paper | ours |", "|---|---|---|"]
    lines += [f"| {c.what} | {c.paper} | {_ours(c, reports)} |" for c in COMPARISONS]
    return "\n".join(lines)


def novelty_markdown(reports: Sequence[Report]) -> str:
    """Score / novelty of the generated nets beside each baseline, one row per experiment."""
    reports = [r for r in reports if not r.variant]
    base = list(dict.fromkeys(x["name"] for r in reports for x in r.rows
                              if x["name"].startswith("noisy") or x["name"] == "interpolation"))
    lines = ["| experiment | score | generated | " + " | ".join(base) + " |", "|---" * (3 + len(base)) + "|"]
    for r in reports:
        rows = {x["name"]: x for x in r.rows}
        cells = [f"{r.fmt(rows[b]['acc_mean'])} / {rows[b]['novelty']:.3f}" if b in rows else "—"
                 for b in ["generated", *base]]
        lines.append(f"| {r.experiment} | {score_format(r.metric)[2]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def timing_markdown(reports: Sequence[Report]) -> str:
    """Seconds per stage, one row per experiment (a conditional flow once, its member zoos
    summed), with the cost of one zoo net against one generated net."""
    seen, rows = set(), []
    for r in reports:
        c = r.extras.get("conditional")   # a conditional flow's reports are named <name>_<label>
        key = r.experiment.removesuffix("_" + c["labels"][c["label"]]) if c else r.experiment
        if r.variant or key in seen:
            continue
        seen.add(key)
        t = r.timings
        zoo = sum(v for k, v in t.items() if k == "zoo" or k.startswith("zoo "))
        n_zoo = c["n_zoo_nets"] if c else r.row("zoo")["n"]
        n_gen = r.row("generated")["n"]
        cells = [f"{zoo:.1f}", *(f"{t[k]:.1f}" if k in t else "—" for k in
                                 ("align", "pca", "flow", "sample", "evaluate", "frontier", "transfer")),
                 f"{zoo / n_zoo:.2f}", f"{1000 * t['sample'] / n_gen:.1f}" if "sample" in t else "—"]
        rows.append(f"| {key} | {n_zoo} | " + " | ".join(cells) + " |")
    return "\n".join(["| experiment | zoo nets | zoo | align | pca | flow | sample | evaluate | frontier | "
                      "transfer | s per zoo net | ms per generated net |", "|---" * 12 + "|", *rows])


def results_markdown(reports: Sequence[Report], title: str = "# Results") -> str:
    """results.md: a summary row per experiment; the paper's numbers beside ours, novelty
    against the baselines and timings, across experiments; then each experiment's table,
    ablations (its variants), frontier, transfer tables, paper numbers, model size and timings."""
    variants = {}
    for r in reports:
        if r.variant:
            variants.setdefault(r.experiment, []).append(r)
    reports = [r for r in reports if not r.variant]
    out = [title, "",
           "| experiment | profile | params | score | zoo | generated | gap | "
           "generated novelty | generated max error-IoU / residual corr. | paper zoo | paper generated | paper gap |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        z, g = r.row("zoo"), r.row("generated")
        pz, pg, pgap = _paper_cells(r.paper)
        out.append(f"| {r.experiment} | {r.profile} | {r.extras.get('n_params', '—')} | "
                   f"{score_format(r.metric)[2]} | {r.fmt(z['acc_mean'])} ± {r.fmt(z['acc_std'])} | "
                   f"{r.fmt(g['acc_mean'])} ± {r.fmt(g['acc_std'])} | {r.gap_text} | {g['novelty']:.3f} | "
                   f"{g['max_iou']:.3f} | {pz} | {pg} | {pgap} |")
    out += ["", NOTE, "## The paper's numbers beside ours", "",
            "Our zoos are smaller and train on CPU-sized data; where the setting differs, the "
            "comparison says how.", "", comparison_markdown([*reports, *(v for vs in variants.values() for v in vs)]),
            "", "## Novelty against the trivial baselines", "",
            "Mean score / novelty of each population (novelty 1: as far from the zoo as its members are "
            "from each other). The generated nets are worth having where no baseline is both as "
            "accurate and as novel.", "", novelty_markdown(reports),
            "", "## Timings", "",
            "Seconds per stage on this machine (stages loaded from the cache report the time they took "
            "when computed). The last two columns compare training one zoo net with generating one.",
            "", timing_markdown(reports), ""]
    for r in reports:
        ex = r.extras
        evr = ex.get("explained_variance_ratio") or []
        out += [f"## {r.experiment} [{r.profile}]" + (f" — {r.paper['task']}" if "task" in r.paper else ""),
                "", r.markdown_rows(), "",
                f"Generated − zoo: **{r.gap_text}**. {novelty_summary(r)}"]
        pz, pg, pgap = _paper_cells(r.paper)
        if pz != "—":
            out.append(f"The paper: zoo {pz}, generated {pg} ({pgap} pp); "
                       f"here: zoo {r.fmt(r.row('zoo')['acc_mean'])}, generated "
                       f"{r.fmt(r.row('generated')['acc_mean'])} ({r.gap_text}).")
        if "note" in r.paper:
            out.append(f"Paper note: {r.paper['note']}.")
        if "conditional" in ex:
            out.append(conditional_summary(r))
        if "interpolation" in ex:
            ip = ex["interpolation"]
            out.append(f"Loss barrier between zoo members 0 and 1: naive {ip['naive_barrier']:.3f}, "
                       f"aligned {ip['aligned_barrier']:.3f}.")
        if r.experiment in variants:
            out += ["", "Ablations (same zoo):", "", ablation_markdown(r, variants[r.experiment])]
        if "frontier" in ex:
            out += ["", frontier_markdown(r)]
        for t in ex.get("transfer", []):
            out += ["", transfer_markdown(t)]
        if "transfer_note" in r.paper:
            out += ["", f"Paper transfer: {r.paper['transfer_note']}."]
        out += ["", f"Parameters per net: {ex.get('n_params', '—')}; PCA components: "
                f"{ex.get('n_components', '—')} ({100 * sum(evr):.1f} % of the variance)."
                if evr else f"Parameters per net: {ex.get('n_params', '—')}.",
                "", "Timings (s): " + _timings(r.timings), ""]
    return "\n".join(out).rstrip() + "\n"


def _timings(t: dict[str, float]) -> str:
    """'zoo 1.0, align 0.1, ...' in pipeline order, unknown stages last."""
    keys = [k for k in STAGES if k in t] + sorted(k for k in t if k not in STAGES)
    return ", ".join(f"{k} {t[k]:.1f}" for k in keys)


def results_json(reports: Sequence[Report], figure_files: dict[str, list[str]] | None = None) -> dict:
    """Summary of every run: rows, gap, paper numbers, timings, sizes, figure files."""
    return strict_json({"experiments": [
        {"experiment": r.experiment, "variant": r.variant, "profile": r.profile, "rows": r.rows,
         "metric": r.metric, "gap_pp": r.gap_pp, "paper": r.paper, "timings": r.timings,
         "n_params": r.extras.get("n_params"), "n_components": r.extras.get("n_components"),
         "barrier": {k: v for k, v in r.extras.get("interpolation", {}).items() if k.endswith("barrier")},
         "transfer": [{k: t[k] for k in ("target", "rows", "unavailable") if k in t}
                      for t in r.extras.get("transfer", [])],
         "figures": [] if r.variant else (figure_files or {}).get(r.experiment, [])} for r in reports]})


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


def write(runs: Sequence[Run | Report], out_dir: str | Path = "paper_figures") -> dict[str, Any]:
    """Write out_dir/<experiment>/<figure>.{png,html}, out_dir/results.md and results.json.
    Returns the results.json content."""
    out = Path(out_dir)
    reports = [r.report if isinstance(r, Run) else r for r in runs]
    if any(r is None for r in reports):
        raise ConfigError("a run has no report: build it with dwf.pipeline.build(..., evaluate=True)")
    named = [(r.experiment, name, fig) for r in reports if not r.variant
             for name, fig in figures(r).items()]
    for r in reports:   # the flow width × alignment ablation, for experiments run with variants
        variants = [v for v in reports if v.variant and v.experiment == r.experiment]
        cells = flow_alignment_cells(r, variants) if variants and not r.variant else {}
        if len(cells) > 1:
            named.append((r.experiment, "ablation_flow_alignment", plots.flow_alignment(
                cells, r.row("zoo")["acc_mean"], r.metric,
                title=f"Flow width × alignment — {r.experiment} [{r.profile}]")))
    files: dict[Path, bytes] = {}
    for exp, name, fig in named:
        files[out / exp / f"{name}.html"] = _html(fig, f"{exp}-{name}")
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
    summary = results_json(reports, listing)
    files[out / "results.md"] = results_markdown(reports).encode()
    files[out / "results.json"] = (json.dumps(summary, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()
    for path, data in files.items():
        atomic_write_bytes(path, data)
    return summary
