"""Figures of populations of nets: scores, novelty, spread, error similarity (one trace per
population, colors from `style.population_colors`)."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import plotly.graph_objects as go

from ..report import COLLAPSE_SPREAD, PerNet, PopulationResult, score_format
from .style import COLORS, OTHERS, bars, layout, population_colors, scaled, score_label


def zoo_accuracy_histogram(test_acc: Sequence[float], val_acc: Sequence[float] | None = None,
                           title: str = "Zoo accuracy", metric: str = "accuracy") -> go.Figure:
    fig = go.Figure(go.Histogram(x=scaled(test_acc, metric), name="test", nbinsx=30, bingroup="acc",
                                 marker_color=COLORS["zoo"], opacity=0.75))
    if val_acc is not None:
        fig.add_histogram(x=scaled(val_acc, metric), name="validation", nbinsx=30, bingroup="acc",
                          opacity=0.5)
    fig.update_layout(barmode="overlay")
    return layout(fig, title, score_format(metric)[2], "models")


def accuracy_distributions(populations: Mapping[str, Sequence[float]],
                           title: str = "Accuracy of originals, generated nets and baselines",
                           metric: str = "accuracy") -> go.Figure:
    """Box + points of per-net score (accuracy, or Spearman ρ) for each named population."""
    fig = go.Figure()
    colors = population_colors(list(populations))
    for name, acc in populations.items():
        fig.add_trace(go.Box(y=scaled(acc, metric), name=name, boxpoints="all", jitter=0.4,
                             pointpos=0, marker=dict(size=4, color=colors[name]), line=dict(width=1)))
    fig.update_layout(showlegend=False)
    return layout(fig, title, "", score_label(metric))


def score_histograms(samples: Mapping[str, Sequence[float]], metric: str = "accuracy",
                     title: str = "Per-net score of two samples") -> go.Figure:
    """Overlaid histograms of per-net score, one per named sample (e.g. the app's last two)."""
    fig = go.Figure()
    for (name, scores), color in zip(samples.items(), (COLORS["generated"], COLORS["zoo"], *OTHERS)):
        fig.add_histogram(x=scaled(scores, metric), name=name, opacity=0.6, marker_color=color, nbinsx=30)
    fig.update_layout(barmode="overlay")
    return layout(fig, title, score_label(metric), "nets")


def novelty_scatter(populations: Sequence[PopulationResult], metric: str = "accuracy",
                    title: str = "Score vs novelty") -> go.Figure:
    """Mean score against novelty for every population, both with 95 % intervals over replicates."""
    fig = go.Figure()
    colors = population_colors([p.name for p in populations])
    f = score_format(metric)[0]
    for p in populations:
        fig.add_trace(go.Scatter(x=[p.novelty.mean], y=[f * p.score.mean], mode="markers", name=p.name,
                                 error_x=bars([p.novelty]), error_y=bars([p.score], f),
                                 marker=dict(size=11, opacity=0.85, color=colors[p.name])))
    return layout(fig, title, "novelty: NN distance to the fitting members / their own NN distance",
                  score_label(metric))


def spread_novelty(populations: Sequence[PopulationResult], title: str = "Collapse and memorization map") -> go.Figure:
    """Spread within each population against its novelty (95 % intervals), marker size the
    memorized fraction; the shaded band is collapse (spread below COLLAPSE_SPREAD)."""
    fig = go.Figure()
    colors = population_colors([p.name for p in populations])
    for p in populations:
        fig.add_trace(go.Scatter(
            x=[p.novelty.mean], y=[p.spread.mean], mode="markers", name=p.name,
            error_x=bars([p.novelty]), error_y=bars([p.spread]),
            hovertext=[f"memorized {100 * p.memorized.mean:.0f} %"],
            marker=dict(size=8 + 16 * (p.memorized.mean if math.isfinite(p.memorized.mean) else 0.0),
                        opacity=0.8, color=colors[p.name])))
    fig.add_hrect(y0=0, y1=COLLAPSE_SPREAD, fillcolor="#d62728", opacity=0.08, line_width=0,
                  annotation_text="collapsed", annotation_position="bottom right")
    return layout(fig, title + " (marker size: memorized fraction)", "novelty (vs fitting members)",
                  "spread within the population")


def nn_distance_histogram(populations: Mapping[str, Sequence[float]],
                          title: str = "Distance to the nearest fitting member") -> go.Figure:
    """populations: name -> per-net NN distance / the fitting members' median NN distance."""
    fig = go.Figure()
    colors = population_colors(list(populations))
    for name, d in populations.items():
        fig.add_histogram(x=list(d), name=name, opacity=0.6, nbinsx=60,
                          bingroup="nn", marker_color=colors[name])
    fig.update_layout(barmode="overlay")
    return layout(fig, title, "NN distance / zoo median NN distance", "nets")


def novelty_per_net(populations: Mapping[str, PerNet], title: str = "Every net: score against distance to the zoo",
                    metric: str = "accuracy") -> go.Figure:
    """populations: name -> PerNet (a report population's per-net values)."""
    fig = go.Figure()
    colors = population_colors(list(populations))
    for name, p in populations.items():
        fig.add_scatter(x=p.novelty, y=scaled(p.score, metric), mode="markers", name=name,
                        marker=dict(size=6, opacity=0.7, color=colors[name]))
    return layout(fig, title, "NN distance to the fitting members / their median NN distance", score_label(metric))


def error_similarity_accuracy(populations: Mapping[str, PerNet],
                              title: str = "Every net: score against max error similarity with a zoo member",
                              metric: str = "accuracy") -> go.Figure:
    """populations: name -> PerNet. Near 1: the net makes the same mistakes as some original
    (error-set IoU; residual correlation for regression)."""
    fig = go.Figure()
    colors = population_colors(list(populations))
    for name, p in populations.items():
        fig.add_scatter(x=p.error_similarity, y=scaled(p.score, metric), mode="markers", name=name,
                        marker=dict(size=6, opacity=0.7, color=colors[name]))
    x = "max IoU of error sets with a zoo member" if metric == "accuracy" else "max residual correlation with a zoo member"
    return layout(fig, title, x, score_label(metric))


def error_similarity_heatmap(sim, rows: Sequence[str], cols: Sequence[str], metric: str = "accuracy",
                             title: str = "Error similarity with each zoo member") -> go.Figure:
    """sim: (m, n) array, net i against zoo member j (error-set IoU, or residual correlation)."""
    label = "error-set IoU" if metric == "accuracy" else "residual correlation"
    fig = go.Figure(go.Heatmap(z=sim.tolist(), x=list(cols), y=list(rows), zmin=0, zmax=1,
                               colorscale="Viridis", colorbar=dict(title=label)))
    fig.update_yaxes(autorange="reversed", dtick=1)
    fig.update_xaxes(dtick=1)
    fig = layout(fig, title, "zoo member", "")
    fig.update_layout(height=max(440, 14 * len(rows) + 160))
    return fig
