"""Plotly figure builders: data in, Figure out. No computation beyond arranging what is given."""
from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go

from .report import Report

TEMPLATE = "plotly_white"
COLORS = {"zoo": "#1f77b4", "generated": "#d62728", "interpolation": "#2ca02c"}


def _layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title=x, yaxis_title=y,
                      width=760, height=440, legend=dict(orientation="h", y=-0.2))
    return fig


def zoo_accuracy_histogram(test_acc: Sequence[float], val_acc: Sequence[float] | None = None,
                           title: str = "Zoo accuracy") -> go.Figure:
    fig = go.Figure(go.Histogram(x=[100 * a for a in test_acc], name="test", nbinsx=30,
                                 marker_color=COLORS["zoo"], opacity=0.75))
    if val_acc is not None:
        fig.add_histogram(x=[100 * a for a in val_acc], name="validation", nbinsx=30, opacity=0.5)
    fig.update_layout(barmode="overlay")
    return _layout(fig, title, "accuracy (%)", "models")


def accuracy_distributions(populations: Mapping[str, Sequence[float]],
                           title: str = "Accuracy of originals, generated nets and baselines") -> go.Figure:
    """Box + points of per-net accuracy for each named population."""
    fig = go.Figure()
    for name, acc in populations.items():
        fig.add_trace(go.Box(y=[100 * a for a in acc], name=name, boxpoints="all", jitter=0.4,
                             pointpos=0, marker=dict(size=4, color=COLORS.get(name)), line=dict(width=1)))
    fig.update_layout(showlegend=False)
    return _layout(fig, title, "", "test accuracy (%)")


def pca_spectrum(ratio: Sequence[float], title: str = "Dual PCA explained variance") -> go.Figure:
    k = list(range(1, len(ratio) + 1))
    cum, acc = [], 0.0
    for r in ratio:
        acc += r
        cum.append(100 * acc)
    fig = go.Figure([go.Bar(x=k, y=[100 * r for r in ratio], name="per component"),
                     go.Scatter(x=k, y=cum, name="cumulative", mode="lines+markers", yaxis="y2")])
    fig.update_layout(yaxis2=dict(overlaying="y", side="right", range=[0, 101], title="cumulative (%)"))
    return _layout(fig, title, "component", "explained variance (%) of the full trace")


def flow_loss(history: Mapping[str, Sequence[float]], title: str = "Flow-matching loss") -> go.Figure:
    fig = go.Figure([go.Scatter(x=history["step"], y=history["train_loss"], name="train (running mean)"),
                     go.Scatter(x=history["step"], y=history["val_loss"], name="held-out codes (EMA net)")])
    fig.update_yaxes(type="log")
    return _layout(fig, title, "step", "loss")


def novelty_scatter(report: Report, title: str = "Accuracy vs novelty") -> go.Figure:
    """Mean accuracy against novelty (NN-distance ratio) for every population of a report."""
    fig = go.Figure()
    for r in report.rows:
        fig.add_trace(go.Scatter(x=[r["novelty"]], y=[100 * r["acc_mean"]], mode="markers+text",
                                 text=[r["name"]], textposition="top center", name=r["name"],
                                 error_y=dict(type="data", array=[100 * r["acc_std"]]),
                                 marker=dict(size=11, color=COLORS.get(r["name"]))))
    fig.update_layout(showlegend=False)
    return _layout(fig, title, "novelty: NN distance to zoo / zoo's own NN distance", "test accuracy (%)")


def nn_distance_histogram(populations: Mapping[str, Sequence[float]], zoo_median_nn: float,
                          title: str = "Distance to the nearest zoo member") -> go.Figure:
    fig = go.Figure()
    for name, d in populations.items():
        fig.add_histogram(x=[v / zoo_median_nn for v in d], name=name, opacity=0.6, nbinsx=40,
                          marker_color=COLORS.get(name))
    fig.update_layout(barmode="overlay")
    return _layout(fig, title, "NN distance / zoo median NN distance", "nets")


def alignment_distances(before: Sequence[float], after: Sequence[float],
                        title: str = "Distance to the reference before and after re-basin") -> go.Figure:
    fig = go.Figure([go.Histogram(x=before[1:], name="before alignment", opacity=0.6),
                     go.Histogram(x=after[1:], name="after weight matching", opacity=0.6)])
    fig.update_layout(barmode="overlay")
    return _layout(fig, title, "‖θ_i − θ_ref‖₂", "models")


def flow_trajectories(traj, dims: tuple[int, int] = (0, 1), targets=None,
                      title: str = "Flow trajectories in the first two latent dimensions") -> go.Figure:
    """traj: (steps + 1, n, k) array of ODE states; targets: (m, k) zoo codes."""
    fig = go.Figure()
    a, b = dims
    for i in range(traj.shape[1]):
        fig.add_trace(go.Scatter(x=traj[:, i, a], y=traj[:, i, b], mode="lines", showlegend=i == 0,
                                 name="sample paths", line=dict(width=1, color="rgba(214,39,40,0.35)")))
    if targets is not None:
        fig.add_trace(go.Scatter(x=targets[:, a], y=targets[:, b], mode="markers", name="zoo codes",
                                 marker=dict(color=COLORS["zoo"], size=6)))
    return _layout(fig, title, f"z{a}", f"z{b}")
