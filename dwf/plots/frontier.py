"""Figures of the accuracy-novelty frontier: one run's families of nets, and how far each family
reaches as the zoo grows (the scaling study)."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..interval import Interval
from ..report import FrontierPoint, score_format
from .style import COLORS, OTHERS, TEMPLATE, bars, layout, log_axis, score_label


_FAMILY_COLORS = {"flow": COLORS["generated"], "noisy copies": OTHERS[0], "interpolations": COLORS["interpolation"],
                  "fitted Gaussian": OTHERS[1], "crossover": OTHERS[2]}


def frontier(points: Sequence[FrontierPoint], zoo_score: float, metric: str = "accuracy",
             title: str = "Accuracy–novelty frontier") -> go.Figure:
    """Mean score against novelty, one line per family of nets (dwf.frontier points), each
    point labelled with its setting; the paper's recipe circled, the zoo mean dashed."""
    f = score_format(metric)[0]
    fig = go.Figure()
    families = list(dict.fromkeys(p.family for p in points))
    colors = {"generated": COLORS["generated"], "interpolation": COLORS["interpolation"],
              **dict(zip([x for x in families if x not in ("generated", "interpolation")], OTHERS))}
    symbol = {"generated": "s=", "generated, standardized codes": "s=", "noisy copies": "σ=",
              "interpolation": "λ="}
    for fam in families:   # each point's setting on hover, not as a label (labels overlap)
        ps = sorted((p for p in points if p.family == fam), key=lambda p: p.novelty)
        fig.add_trace(go.Scatter(
            x=[p.novelty for p in ps], y=[f * p.score for p in ps], mode="lines+markers",
            name=fam,
            hovertext=[f"{fam}: {symbol.get(fam, '')}{p.param:g}" for p in ps], hoverinfo="text+x+y",
            line=dict(color=colors[fam]), marker=dict(size=8, color=colors[fam])))
    recipe = [p for p in points if p.recipe]
    if recipe:
        fig.add_trace(go.Scatter(x=[p.novelty for p in recipe], y=[f * p.score for p in recipe],
                                 mode="markers", name="paper recipe",
                                 marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(width=2, color="black"))))
    fig.add_hline(y=f * zoo_score, line_dash="dash", line_color=COLORS["zoo"],
                  annotation_text="zoo mean", annotation_position="bottom right")
    log_axis(fig, [p.novelty for p in points])
    fig = layout(fig, title, "novelty: NN distance to the fitting members / their own NN distance (log)",
                 score_label(metric))
    fig.update_layout(height=520, legend=dict(orientation="h", y=-0.25))
    return fig


def reach_scaling(sizes: Sequence[int], reaches: Mapping[tuple[str, float], Sequence[Interval]],
                  title: str = "How far each generator reaches as the zoo grows") -> go.Figure:
    """Largest novelty within an accuracy loss against zoo size N, 95 % intervals: one line per
    (family, loss), solid at the smallest loss, dotted, dashed at the next (dwf.reach), broken at
    the sizes where it reaches nothing; the lines that reach nothing at any N are named under the title."""
    fig = go.Figure()
    levels = sorted({lv for _, lv in reaches})
    dashes = dict(zip(levels, ("solid", "dot", "dash", "dashdot")))
    nowhere = []
    for (family, level), ivs in reaches.items():
        name = f"{family}, loss ≤ {100 * level:g} pp"
        if not any(math.isfinite(iv.mean) for iv in ivs):
            nowhere.append(name)
        reached = lambda v, iv: v if math.isfinite(iv.mean) else None  # noqa: E731  (a gap breaks the line)
        fig.add_trace(go.Scatter(
            x=list(sizes), y=[reached(iv.mean, iv) for iv in ivs], connectgaps=False,
            error_y=dict(type="data", symmetric=False, array=[reached(iv.hi - iv.mean, iv) for iv in ivs],
                         arrayminus=[reached(iv.mean - iv.lo, iv) for iv in ivs]),
            mode="lines+markers", name=name,
            line=dict(color=_FAMILY_COLORS.get(family, OTHERS[1]), dash=dashes.get(level, "solid")),
            marker=dict(size=8)))
    if nowhere:
        title += "<br><sup>reached at no N: " + "; ".join(nowhere) + "</sup>"
    fig.add_hline(y=1.0, line_dash="dash", line_color=COLORS["held-out members"],
                  annotation_text="a held-out member", annotation_position="top left")
    log_axis(fig, list(sizes))
    fig = layout(fig, title, "zoo size N (log)", "largest novelty within the loss")
    fig.update_layout(height=520, legend=dict(orientation="h", y=-0.25))
    return fig


def frontier_by_size(sizes: Sequence[int], curves: Sequence[Mapping[str, tuple[Sequence[Interval], Sequence[Interval]]]],
                     held_out: Sequence[tuple[float, float] | None], metric: str = "accuracy",
                     title: str = "Accuracy loss against novelty at each zoo size") -> go.Figure:
    """One panel per zoo size: each family's curve (novelty, loss in the metric's units; 95 %
    intervals over replicates on both) and the held-out members (novelty, loss), the ideal."""
    f = score_format(metric)[0]
    fig = make_subplots(rows=1, cols=len(sizes), shared_yaxes=True, subplot_titles=[f"N = {n}" for n in sizes])
    for col, (by_family, ho) in enumerate(zip(curves, held_out), start=1):
        for family, (nov, loss) in by_family.items():
            fig.add_trace(go.Scatter(
                x=[v.mean for v in nov], y=[f * v.mean for v in loss], error_y=bars(loss, f), error_x=bars(nov),
                mode="lines+markers", name=family, legendgroup=family, showlegend=col == 1,
                line=dict(color=_FAMILY_COLORS.get(family, OTHERS[1]))), row=1, col=col)
        if ho is not None:
            fig.add_trace(go.Scatter(x=[ho[0]], y=[f * ho[1]], mode="markers", name="held-out members",
                                     legendgroup="held", showlegend=col == 1,
                                     marker=dict(size=12, symbol="star", color=COLORS["held-out members"])),
                          row=1, col=col)
        fig.update_xaxes(type="log", dtick=1, exponentformat="power", minor=dict(showgrid=False), row=1, col=col)
    fig.update_layout(template=TEMPLATE, title=title, width=max(360 * len(sizes), 720), height=460,
                      legend=dict(orientation="h", y=-0.2))
    fig.update_yaxes(title_text=f"{score_label(metric)} lost vs the fitting members", row=1, col=1)
    fig.update_xaxes(title_text="novelty (log)")
    return fig


def generators(curves: Mapping[str, Sequence[tuple[float, float]]],
               recipes: Sequence[tuple[str, Interval, Interval]],
               title: str = "Validation gap against novelty: each recipe beside the trivial generators",
               guided: Mapping[str, Sequence[tuple[float, float]]] | None = None) -> go.Figure:
    """The trivial generators' curves {family: ((novelty, gap), ...)} and each recipe's nets
    (name, novelty, gap; 95 % intervals over flow replicates), gaps in pp on the validation split;
    `guided`: the same families after loss guidance (`dwf.guided`), solid in the family's colour."""
    fig = go.Figure()
    for dash, suffix, family_curves in (("dot", "", curves), ("solid", ", guided", guided or {})):
        for i, (family, pts) in enumerate(family_curves.items()):
            pts = sorted(pts)
            fig.add_trace(go.Scatter(x=[v for v, _ in pts], y=[100 * g for _, g in pts], mode="lines+markers",
                                     name=family + suffix,
                                     line=dict(color=_FAMILY_COLORS.get(family, OTHERS[2 + i]), dash=dash)))
    for i, (name, nov, gap) in enumerate(recipes):
        fig.add_trace(go.Scatter(x=[nov.mean], y=[100 * gap.mean], error_x=bars([nov]), error_y=bars([gap], 100),
                                 mode="markers", name=name, hovertext=[name], hoverinfo="text+x+y",
                                 marker=dict(size=10, symbol="diamond", color=OTHERS[(5 + i) % len(OTHERS)])))
    return _gap_against_novelty(fig, title)


def refit_rounds(curves: Mapping[tuple[str, int, bool], Sequence[tuple[Interval, Interval]]],
                 title: str = "Refit to guided nets: validation gap against novelty") -> go.Figure:
    """Each generator's (novelty, gap) across its temperatures, 95 % intervals over chains, keyed by
    (kind, round, guided) (`dwf.refit`): colour by kind ("flow" or "Gaussian"), dotted at round 0 and
    solid at the last, open markers as drawn and filled after guidance."""
    color = {"flow": _FAMILY_COLORS["flow"], "Gaussian": _FAMILY_COLORS["fitted Gaussian"]}
    last = max(r for _, r, _ in curves)
    fig = go.Figure()
    for (kind, rnd, guided), pts in curves.items():
        _interval_curve(fig, pts, f"{kind}, round {rnd}{', guided' if guided else ''}", color.get(kind, OTHERS[2]),
                        "solid" if rnd == last else "dot", "circle" if guided else "circle-open")
    return _gap_against_novelty(fig, title)


def leading_codes(curves: Mapping[tuple[str, int], Sequence[tuple[Interval, Interval]]],
                  title: str = "The leading-codes oracle: validation gap against novelty") -> go.Figure:
    """Each generator's (novelty, gap) across its temperatures, 95 % intervals over replicates, keyed
    by (generator, k) (`dwf.oracle`): the Gaussian (k = 0) dotted in its colour; one colour per head
    size k, solid for the oracle, dash-dotted for held-out heads (diamonds for their marginals),
    dashed for the flow and dotted with square markers for the Gaussian head."""
    ks = sorted({k for _, k in curves if k})
    fig = go.Figure()
    for (gen, k), pts in curves.items():
        color = _FAMILY_COLORS["fitted Gaussian"] if not k else OTHERS[(2 + ks.index(k)) % len(OTHERS)]
        _interval_curve(fig, pts, gen if not k else f"{gen}, k = {k}", color,
                        "dot" if not k else {"oracle": "solid", "held-out": "dashdot", "marginals": "dashdot",
                                             "Gaussian head": "dot"}.get(gen, "dash"),
                        {"Gaussian head": "square", "marginals": "diamond"}.get(gen, "circle"))
    return _gap_against_novelty(fig, title)


def _interval_curve(fig: go.Figure, pts: Sequence[tuple[Interval, Interval]], name: str, color: str, dash: str,
                    symbol: str) -> None:
    """One line of (novelty, gap) points with their 95 % intervals as error bars, gaps in pp."""
    fig.add_trace(go.Scatter(
        x=[nov.mean for nov, _ in pts], y=[100 * gap.mean for _, gap in pts],
        error_x=bars([nov for nov, _ in pts]), error_y=bars([gap for _, gap in pts], 100), mode="lines+markers",
        name=name, line=dict(color=color, dash=dash), marker=dict(size=8, symbol=symbol)))


def _gap_against_novelty(fig: go.Figure, title: str) -> go.Figure:
    """Axes, the members' line at 0 and the legend below, for validation gap against novelty."""
    fig.add_hline(y=0.0, line_dash="dash", line_color=COLORS["zoo"], annotation_text="fitting members",
                  annotation_position="bottom right")
    fig = layout(fig, title, "novelty: NN distance to the fitting members / their own NN distance",
                 "validation gap (pp)")
    fig.update_layout(height=560, legend=dict(orientation="h", y=-0.22))
    return fig
