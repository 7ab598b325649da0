"""results.md and results.json: every report as tables, with 95 % intervals over replicates and,
in words, which flows collapse or memorize."""
from __future__ import annotations

import json
from typing import Sequence

from . import dominance
from .config import PopulationSpec
from .interval import Interval
from .io import strict_json
from .published import comparison_markdown
from .record import to_json
from .replicas import ReplicatedReport
from .report import COLLAPSE_SPREAD, MEMORIZE_FRACTION, Report, score_format, zoo_seconds

STAGES = ("zoo", "align", "pca", "flow", "sample", "evaluate")

NOTE = f"""\
**Reading the tables.** Scores are on the test split, which only the report stage can read
(`dwf.data` locks it for every stage that selects). Scores are test accuracy (%) for classifiers
and Spearman ρ for regressors (VADER). Each zoo is split: a seeded quarter of its members is
*held out* of PCA and flow fitting; the rest are the *fitting members* ("zoo"). Every number in
brackets is a 95 % interval (Student's t) over replicates: flow fit, sampling and baselines
repeated with their own seeds on the same zoo. Populations that do not depend on the replicate
(the zoo, the held-out members, the zoo through encode → decode) carry no interval.
*Novelty*: median distance (aligned weight space) from each net to its nearest fitting member,
divided by the fitting members' own leave-one-out median nearest-neighbour distance (1: as far
as members are from each other; near 0: near-copies). *Held-out novelty*: the same against the
held-out members; a net as new as a real member scores about what the fitting members do.
*Spread*: median distance from each net to its nearest other net of the same population, on the
same scale; below {COLLAPSE_SPREAD} the population has **collapsed** onto (nearly) one net.
*Memorized*: share of nets whose nearest member is closer than a third of the second-nearest;
above {MEMORIZE_FRACTION} the generator **memorizes**. *Coverage*: share of the fitting members that are the
nearest member of at least one net (1/n: every net sits by one member). *Error similarity*: mean over nets of the
largest IoU of its set of test errors with a fitting member's (regression: residual correlation).
*Diversity*: mean pairwise share of test examples on which two nets of the population disagree
(regression: 1 − residual correlation). Nets of a flow fitted without alignment are aligned to
the reference member before any distance is taken, so every novelty lives in one space.
Two trivial generators of the flow's own space set the bar: the *zoo through encode → decode*
(the novelty floor of the compression) and a *Gaussian over the PCA codes*.
"""


def population_markdown(r: Report) -> str:
    head = ("| population | n | score (mean ± std over nets) | 95 % interval | novelty | held-out novelty | "
            "spread | memorized | coverage | error similarity | diversity |")
    out = [head, "|---" * 11 + "|"]
    for p in r.populations:
        ho = p.novelty_held_out.text() if p.novelty_held_out else "—"
        ci = f"[{r.fmt(p.score.lo)}, {r.fmt(p.score.hi)}]" if p.score.replicated else "fixed"
        cov = p.coverage.text(1, 2) if p.coverage else "—"
        out.append(f"| {p.name} | {p.n} | {r.fmt(p.score.mean)} ± {r.fmt(p.score_std)} | {ci} | {p.novelty.text()} | "
                   f"{ho} | {p.spread.text()} | {p.memorized.text(1, 2)} | {cov} | {p.error_similarity.text()} | "
                   f"{p.diversity.text()} |")
    return "\n".join(out)


def verdict_markdown(reports: Sequence[Report]) -> str:
    lines = [v for r in reports for v in r.verdicts()]
    return "\n".join(f"- {v}" for v in lines) if lines else "- No flow collapsed or memorizes by these criteria."


def novelty_summary(r: Report) -> str:
    """One sentence placing the generated nets among the held-out members and the floor."""
    g, z, h = r.generated, r.zoo_population, r.held_out
    floor = r.find(PopulationSpec("encode_decode"))
    parts = [f"Generated nets: novelty {g.novelty.text()}, spread {g.spread.text()}, memorized "
             f"{g.memorized.text(1, 2)}"]
    if h is not None and h.novelty_held_out is not None and g.novelty_held_out is not None:
        parts.append(f"against the held-out members {g.novelty_held_out.text()} (fitting members: "
                     f"{z.novelty_held_out.text() if z.novelty_held_out else '—'})")
    if floor is not None:
        parts.append(f"the encode → decode floor is at novelty {floor.novelty.text()}")
    return "; ".join(parts) + "."


def conditional_summary(r: Report) -> str:
    """One sentence on a conditional flow's label k: its nets against the controls (nets generated
    for the other labels, without a label, with stronger guidance) on dataset k."""
    c = r.conditional
    controls = [p for p in r.populations if p.spec.source == "generated" and p.spec.key != r.generated_key
                and p.spec.bn == "recalibrate"]
    cells = "; ".join(f"{p.name}: {r.fmt_interval(p.score)}" for p in controls)
    return (f"Conditional flow over the {' + '.join(c.labels)} zoos ({c.n_zoo_nets} nets, one basis, one PCA): "
            f"nets generated for label {c.label} ({c.labels[c.label]}, guidance w={c.guidance:g}) score "
            f"{r.fmt_interval(r.generated.score)} on {c.labels[c.label]}, fitting members "
            f"{r.fmt(r.zoo_population.score.mean)}. Controls on the same test split: {cells}.")


def frontier_markdown(r: Report) -> str:
    """The frontier points, then the best novelty within 1 pp (0.01 ρ) of the zoo per family."""
    zoo, close = r.zoo_population.score.mean, 0.01
    lines = ["Accuracy–novelty frontier (`dwf.frontier`, replicate 0; every family at several settings, "
             f"{score_format(r.metric)[2]}):", "",
             "| family | setting | score | novelty | error similarity |", "|---|---|---|---|---|"]
    for p in r.frontier:
        mark = " (paper recipe)" if p.recipe else ""
        lines.append(f"| {p.family} | {p.param:g}{mark} | {r.fmt(p.score)} ± {r.fmt(p.score_std)} | "
                     f"{p.novelty:.3f} | {p.error_similarity:.3f} |")
    best = []
    for fam in dict.fromkeys(p.family for p in r.frontier):
        ok = [p for p in r.frontier if p.family == fam and p.score >= zoo - close]
        b = max(ok, key=lambda p: p.novelty) if ok else None
        best.append(f"{fam} {b.novelty:.3f} (at {b.param:g})" if b else f"{fam}: none")
    within = "1 pp" if r.metric == "accuracy" else f"{close:g} ρ"
    return "\n".join(lines + ["", f"Largest novelty with a mean score within {within} of the zoo's: "
                              + "; ".join(best) + "."])


def _diff(base: Report, variant: Report) -> dict[str, object]:
    """{'stage.field': the variant's value} for every upstream spec field the variant changed."""
    out = {}
    for stage in ("align", "pca", "flow", "sample"):
        a, b = (json.loads(json.dumps(x.config.get(stage, {}))) for x in (base, variant))
        out |= {f"{stage}.{k}": b[k] for k in sorted(b) if a.get(k) != b.get(k)}
    return out


def ablation_markdown(base: Report, variants: Sequence[Report]) -> str:
    """The generated nets of each variant beside the experiment's own (same zoo, same space)."""
    lines = ["| variant | what changes | generated | gap | novelty | spread | memorized |", "|---" * 7 + "|"]
    for r in [base, *variants]:
        g = r.generated
        changes = ", ".join(f"{k}: {v}" for k, v in _diff(base, r).items()) or "—"
        lines.append(f"| {r.variant or 'as configured'} | {changes} | {r.fmt_interval(g.score)} | {r.gap_text} | "
                     f"{g.novelty.text()} | {g.spread.text()} | {g.memorized.text(1, 2)} |")
    return "\n".join(lines)


def flow_alignment_cells(base: Report, variants: Sequence[Report]) -> dict[tuple[str, str], Interval]:
    """{(flow width, aligned or not): generated score interval} over an experiment and the
    variants that change only the flow width and/or the alignment (the paper's ablation)."""
    cells = {}
    for r in [base, *variants]:
        if set(_diff(base, r)) - {"align.method", "flow.hidden"}:
            continue
        method = r.config.get("align", {}).get("method", "")
        cells[f"flow h={r.config['flow']['hidden']}", "unaligned" if method == "none" else
              f"aligned ({method})"] = r.generated.score
    return dict(sorted(cells.items(), key=lambda kv: (-int(kv[0][0].split("=")[1]), kv[0][1] == "unaligned")))


def transfer_markdown(t: dict) -> str:
    """One transfer target's table, or why it was skipped."""
    if "unavailable" in t:
        return f"Transfer to {t['target']}: skipped, the data is not on disk ({t['unavailable']})"
    pct = lambda v: f"{100 * v:.2f}"  # noqa: E731
    head = " | ".join(f"epoch {e} (%)" for e in t["report_epochs"])
    lines = [f"Few-shot transfer to **{t['target']}** ({t['spec']['shots']} images per class, new head; "
             "epoch 0 is a linear probe on frozen features, then every weight is fine-tuned; "
             "'val-selected' takes each net's epoch with the best validation accuracy; one replicate):", "",
             f"| initialization | n | {head} | val-selected (%) |", "|---" * (3 + len(t["report_epochs"])) + "|"]
    for row in t["rows"]:
        cells = " | ".join(f"{pct(row[f'acc_e{e}'])} ± {pct(row[f'std_e{e}'])}" for e in t["report_epochs"])
        lines.append(f"| {row['init']} | {row['n']} | {cells} | {pct(row['acc_selected'])} ± {pct(row['std_selected'])} |")
    return "\n".join(lines)


def baseline_markdown(reports: Sequence[Report]) -> str:
    """Score / novelty of the generated nets beside every baseline, one row per experiment."""
    reports = [r for r in reports if not r.variant]
    keys = list(dict.fromkeys(p.spec.key for r in reports for p in r.populations
                              if p.spec.source not in ("zoo", "generated") and p.spec.bn in ("own", "recalibrate")))
    names = {p.spec.key: p.name for r in reports for p in r.populations}
    lines = ["| experiment | generated | " + " | ".join(names[k] for k in keys) + " |", "|---" * (2 + len(keys)) + "|"]
    for r in reports:
        cells = {p.spec.key: f"{r.fmt(p.score.mean)} / {p.novelty.mean:.3f}" for p in r.populations}
        lines.append(f"| {r.experiment} | {r.fmt(r.generated.score.mean)} / {r.generated.novelty.mean:.3f} | "
                     + " | ".join(cells.get(k, "—") for k in keys) + " |")
    return "\n".join(lines)


def timing_markdown(reports: Sequence[Report]) -> str:
    """Seconds per stage, one row per experiment (a conditional flow once)."""
    seen, rows = set(), []
    for r in reports:
        c = r.conditional
        key = r.experiment.removesuffix("_" + c.labels[c.label]) if c else r.experiment
        if r.variant or key in seen:
            continue
        seen.add(key)
        t = r.timings
        zoo = zoo_seconds(t)
        n_zoo = c.n_zoo_nets if c else r.zoo.n_fit + len(r.zoo.held_out)
        cells = [f"{zoo:.1f}", *(f"{t[k]:.1f}" if k in t else "—" for k in
                                 ("align", "pca", "flow", "sample", "evaluate", "frontier", "transfer")),
                 f"{zoo / n_zoo:.2f}", f"{1000 * t['sample'] / r.generated.n:.1f}" if "sample" in t else "—"]
        rows.append(f"| {key} | {n_zoo} | {r.replicates} | " + " | ".join(cells) + " |")
    return "\n".join(["| experiment | zoo nets | replicates | zoo | align | pca | flows (all) | sample | evaluate | "
                      "frontier | transfer | s per zoo net | ms per generated net |", "|---" * 13 + "|", *rows])


def results_markdown(reports: Sequence[Report], title: str = "# Results",
                     replicated: Sequence[ReplicatedReport] = ()) -> str:
    """results.md: a summary row per experiment, collapse and memorization in words, the paper's
    numbers beside ours, baselines and timings, experiments repeated over independent zoos; then
    each experiment's table and sections."""
    variants: dict[str, list[Report]] = {}
    for r in reports:
        if r.variant:
            variants.setdefault(r.experiment, []).append(r)
    base = [r for r in reports if not r.variant]
    out = [title, "", "| experiment | profile | params | score | zoo | held-out | generated [95 % interval] | gap | "
           "novelty | spread | memorized |", "|---" * 11 + "|"]
    for r in base:
        h, g = r.held_out, r.generated
        out.append(f"| {r.experiment} | {r.profile} | {r.zoo.n_params} | {score_format(r.metric)[2]} | "
                   f"{r.fmt(r.zoo_population.score.mean)} | {r.fmt(h.score.mean) if h else '—'} | "
                   f"{r.fmt_interval(g.score)} | {r.gap_text} | {g.novelty.text()} | {g.spread.text()} | "
                   f"{g.memorized.text(1, 2)} |")
    out += ["", NOTE, "## Collapse and memorization", "", verdict_markdown(reports), "",
            "## Against noisy copies", "", dominance.EXPLAINED, "", dominance.markdown(base), "",
            "## The paper's numbers beside ours", "", comparison_markdown(reports), "",
            "## Novelty against the trivial baselines", "",
            "Mean score / novelty of each population, replicate means.", "", baseline_markdown(reports), "",
            "## Timings", "", "Seconds per stage on this machine (cached stages report the time they took "
            "when computed; *flows* sums every replicate's fit).", "", timing_markdown(reports), ""]
    if replicated:
        out += ["## Over independent zoos", "", "Each experiment run again from scratch with other seeds "
                "(its own zoo, split, alignment, PCA and flows; `dwf.replicas`); intervals are over the "
                "zoos' means, so they include how much a conclusion depends on the zoo.", ""]
        out += [x for rep in replicated for x in (rep.markdown(), "")]
    for r in base:
        out += [f"## {r.experiment} [{r.profile}] — {r.task}", "", population_markdown(r), "",
                f"Generated − zoo: **{r.gap_text}** (95 % interval over {r.replicates} replicates). "
                + novelty_summary(r)]
        out += [f"**{v}**" for v in r.verdicts()]
        if r.conditional:
            out.append(conditional_summary(r))
        if r.barrier:
            out.append(f"Loss barrier between zoo members 0 and 1: naive {r.barrier.naive_barrier:.3f}, "
                       f"aligned {r.barrier.aligned_barrier:.3f}.")
        if r.experiment in variants:
            out += ["", "Ablations (same zoo, same space):", "", ablation_markdown(r, variants[r.experiment])]
        if r.frontier:
            out += ["", frontier_markdown(r)]
        out += [x for t in r.transfer for x in ("", transfer_markdown(t))]
        evr = r.zoo.explained_variance_ratio
        out += ["", f"Parameters per net: {r.zoo.n_params}; fitting members: {r.zoo.n_fit}, held out: "
                f"{len(r.zoo.held_out)}; PCA components: {r.zoo.n_components} ({100 * sum(evr):.1f} % of the "
                "fitting members' variance).", "", "Timings (s): " + _timings(r.timings), ""]
    return "\n".join(out).rstrip() + "\n"


def _timings(t: dict[str, float]) -> str:
    keys = [k for k in STAGES if k in t] + sorted(k for k in t if k not in STAGES)
    return ", ".join(f"{k} {t[k]:.1f}" for k in keys)


def results_json(reports: Sequence[Report], figure_files: dict[str, list[str]] | None = None,
                 replicated: Sequence[ReplicatedReport] = ()) -> dict:
    """Every report's summary: populations with intervals, gap, verdicts, timings, figure files;
    and the experiments repeated over independent zoos."""
    return strict_json({"zoo_replicates": [{**to_json(rep), "verdicts": rep.verdicts()} for rep in replicated],
                        "experiments": [
        {"experiment": r.experiment, "variant": r.variant, "profile": r.profile, "task": r.task,
         "run": r.config.get("name", r.experiment),   # a conditional flow's labels share one run
         "metric": r.metric, "replicates": r.replicates, "gap": to_json(r.gap), "verdicts": r.verdicts(),
         "noisy_copies": _dominance_json(r),
         "populations": [{**{k: v for k, v in to_json(p).items() if k != "per_net"}, "collapsed": p.collapsed,
                          "memorizes": p.memorizes} for p in r.populations],
         "timings": r.timings, "n_params": r.zoo.n_params, "n_components": r.zoo.n_components,
         "n_fit": r.zoo.n_fit, "n_held_out": len(r.zoo.held_out),
         "barrier": ({"naive": r.barrier.naive_barrier, "aligned": r.barrier.aligned_barrier} if r.barrier else None),
         "transfer": [{k: t[k] for k in ("target", "rows", "unavailable") if k in t} for t in r.transfer],
         "figures": [] if r.variant else (figure_files or {}).get(r.experiment, [])} for r in reports]})


def _dominance_json(r: Report) -> dict:
    d = dominance.of(r)
    return {"outcome": d.outcome, "novelty": d.novelty, "generated": to_json(d.generated),
            "noisy": to_json(d.noisy) if d.noisy else None, "dominated_by": list(d.dominated_by),
            "sentence": dominance.sentence(r, d)}
