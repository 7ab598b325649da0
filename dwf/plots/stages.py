"""Figures of the pipeline's stages: data, alignment, PCA, flow training and sampling, the paths
between nets, transfer, ablations and run time."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..interval import Interval
from ..report import Barrier, score_format
from .style import COLORS, OTHERS, TEMPLATE, bars, layout, log_axis, population_colors, scaled, score_label


def pca_spectrum(ratio: Sequence[float], title: str = "Dual PCA explained variance") -> go.Figure:
    k = list(range(1, len(ratio) + 1))
    cum, acc = [], 0.0
    for r in ratio:
        acc += r
        cum.append(100 * acc)
    fig = go.Figure([go.Bar(x=k, y=[100 * r for r in ratio], name="per component"),
                     go.Scatter(x=k, y=cum, name="cumulative", mode="lines+markers", yaxis="y2")])
    fig.update_layout(yaxis2=dict(overlaying="y", side="right", range=[0, 102], dtick=20, showgrid=False,
                                  title="cumulative (%)"))
    return layout(fig, title, "component", "explained variance (%) of the full trace")


def flow_loss(history: Mapping[str, Sequence[float]], title: str = "Flow-matching loss") -> go.Figure:
    """Train loss (running mean) and held-out loss; the held-out curve is left out when the zoo
    was too small to hold codes out (all NaN)."""
    fig = go.Figure(go.Scatter(x=history["step"], y=history["train_loss"], name="train (running mean)"))
    val = history.get("val_loss") or []
    if any(v is not None and math.isfinite(v) for v in val):
        fig.add_scatter(x=history["step"], y=val, name="held-out codes (EMA net)")
    log_axis(fig, [*history["train_loss"], *val], "y")
    return layout(fig, title, "step", "loss")


def alignment_distances(before: Sequence[float], after: Sequence[float],
                        title: str = "Distance to the reference before and after re-basin",
                        reference: int = 0) -> go.Figure:
    """Histograms of each member's distance to the reference member (left out: the reference)."""
    b = [v for i, v in enumerate(before) if i != reference]
    a = [v for i, v in enumerate(after) if i != reference]
    fig = go.Figure([go.Histogram(x=b, name="before alignment", opacity=0.6, nbinsx=40, bingroup="d"),
                     go.Histogram(x=a, name="after weight matching", opacity=0.6, nbinsx=40,
                                  bingroup="d")])
    fig.update_layout(barmode="overlay")
    return layout(fig, title, "‖θ_i − θ_ref‖₂", "models")


def flow_trajectories(traj, dims: tuple[int, int] = (0, 1), targets=None,
                      title: str = "Flow trajectories in the first two latent dimensions") -> go.Figure:
    """traj: (steps + 1, n, k) array of ODE states; targets: (m, k) zoo codes. With one latent
    dimension (k = 1) the paths are drawn against the ODE step instead."""
    fig = go.Figure()
    a, b = dims
    one = traj.shape[2] < 2
    steps = list(range(traj.shape[0]))
    for i in range(traj.shape[1]):
        fig.add_trace(go.Scatter(x=steps if one else traj[:, i, a], y=traj[:, i, a if one else b], mode="lines",
                                 showlegend=i == 0, name="sample paths", line=dict(width=1, color="rgba(214,39,40,0.35)")))
    if targets is not None:
        fig.add_trace(go.Scatter(x=[steps[-1]] * len(targets) if one else targets[:, a],
                                 y=targets[:, a if one else b], mode="markers", name="zoo codes",
                                 marker=dict(color=COLORS["zoo"], size=6)))
    return layout(fig, title, "ODE step" if one else f"z{a}", f"z{a}" if one else f"z{b}")


def image_grid(images, labels: Sequence[int], class_names: Sequence[str] | None = None,
               cols: int = 8, title: str = "Training examples") -> go.Figure:
    """images: (n, H, W) or (n, 1, H, W) array or tensor; one grey panel per image, titled by its
    label."""
    n = len(images)
    rows = max(1, -(-n // cols))
    names = [class_names[int(y)] if class_names else str(int(y)) for y in labels]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, horizontal_spacing=0.01,
                        vertical_spacing=0.08)
    for i in range(n):
        img = images[i]
        img = img[0] if img.ndim == 3 else img
        fig.add_trace(go.Heatmap(z=img.tolist(), colorscale="gray_r", showscale=False),
                      row=i // cols + 1, col=i % cols + 1)
        fig.update_yaxes(scaleanchor=f"x{i + 1}" if i else "x", row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    fig.update_annotations(font_size=10)
    fig.update_layout(template=TEMPLATE, title=title, width=760, height=120 + 110 * rows,
                      margin=dict(l=10, r=10, t=70, b=10))
    return fig


def interpolation_barrier(path: Barrier,
                          title: str = "Loss along the straight line between two zoo members") -> go.Figure:
    """Naive vs aligned linear-interpolation paths (the re-basin barrier plot)."""
    fig = go.Figure([
        go.Scatter(x=path.lambdas, y=path.naive_loss, mode="lines+markers",
                   name=f"naive (barrier {path.naive_barrier:.3f})"),
        go.Scatter(x=path.lambdas, y=path.aligned_loss, mode="lines+markers",
                   name=f"aligned (barrier {path.aligned_barrier:.3f})"),
    ])
    return layout(fig, title, "λ  (θ = (1 − λ) θ_a + λ θ_b)", "test loss")


def interpolation_scores(lambdas: Sequence[float], scores: Sequence[float], losses: Sequence[float],
                         metric: str = "accuracy", title: str = "Between two generated nets") -> go.Figure:
    """Score (left axis) and loss (right axis) of θ(λ) = (1 − λ) θ_a + λ θ_b along one path."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_scatter(x=list(lambdas), y=scaled(scores, metric), mode="lines+markers", name=score_label(metric),
                    line=dict(color=COLORS["generated"]))
    fig.add_scatter(x=list(lambdas), y=list(losses), mode="lines+markers", name="test loss",
                    line=dict(color="#7f7f7f", dash="dot"), secondary_y=True)
    fig.update_yaxes(title_text="test loss", secondary_y=True)
    return layout(fig, title, "λ  (θ = (1 − λ) θ_a + λ θ_b)", score_label(metric))


def transfer_curves(result: Mapping, title: str = "Few-shot transfer") -> go.Figure:
    """Mean ± std test accuracy after each fine-tuning epoch (0: linear probe) for each
    initialization. result: a TransferResult as a dict (a report's extras["transfer"][i])."""
    fig = go.Figure()
    colors = population_colors(list(result["test_acc"]))
    for init, acc in result["test_acc"].items():
        n, epochs = len(acc), result["epochs"]
        mean = [100 * sum(a[e] for a in acc) / n for e in epochs]
        std = [math.sqrt(sum((100 * a[e] - m) ** 2 for a in acc) / max(1, n - 1)) for e, m in zip(epochs, mean)]
        fig.add_trace(go.Scatter(x=epochs, y=mean, error_y=dict(type="data", array=std), mode="lines+markers",
                                 name=f"{init} (n={n})", line=dict(color=colors[init])))
    return layout(fig, f"{title}: {result['target']}", "fine-tuning epochs (0: linear probe on frozen features)",
                  "test accuracy (%)")


def latent_scatter(codes: Mapping[str, object], dims: tuple[int, int] = (0, 1),
                   title: str = "Nets in the first two PCA coordinates") -> go.Figure:
    """One marker per net: codes {population: (n, k) array} projected on latent dims `dims`."""
    fig = go.Figure()
    colors = population_colors(list(codes))
    a, b = dims
    for name, z in codes.items():
        y = z[:, b].tolist() if z.shape[1] > b else [0.0] * len(z)   # one component: a line
        fig.add_scatter(x=z[:, a].tolist(), y=y, mode="markers", name=name,
                        marker=dict(size=9 if name == "zoo" else 6, opacity=0.75, color=colors[name],
                                    symbol="diamond" if name == "zoo" else "circle"))
    return layout(fig, title, f"PCA coordinate {a + 1}", f"PCA coordinate {b + 1}")


def flow_alignment(cells: Mapping[tuple[str, str], Interval], zoo_score: float,
                   metric: str = "accuracy",
                   title: str = "Generated nets by flow width, with and without re-basin") -> go.Figure:
    """Grouped bars of the mean generated score with its 95 % interval over replicates:
    cells {(flow width label, alignment label): Interval} (the paper's alignment ablation)."""
    f = score_format(metric)[0]
    fig = go.Figure()
    series = list(dict.fromkeys(s for _, s in cells))
    colors = dict(zip(series, (COLORS["generated"], "#7f7f7f", *OTHERS)))
    for s in series:
        xs = [x for x, s2 in cells if s2 == s]
        fig.add_bar(x=xs, y=[f * cells[x, s].mean for x in xs], name=s, marker_color=colors[s],
                    error_y=bars([cells[x, s] for x in xs], f),
                    text=[f"{f * cells[x, s].mean:.{score_format(metric)[1]}f}" for x in xs],
                    textposition="inside", insidetextanchor="start")
    fig.add_hline(y=f * zoo_score, line_dash="dash", line_color=COLORS["zoo"],
                  annotation_text="zoo mean", annotation_position="top right")
    fig.update_layout(barmode="group")
    return layout(fig, title, "velocity network", score_label(metric))


def stage_timings(timings: Mapping[str, float], title: str = "Where the time goes") -> go.Figure:
    """Seconds per pipeline stage as horizontal bars (log axis: stages span milliseconds to hours)."""
    names = list(timings)
    fig = go.Figure(go.Bar(x=[max(timings[k], 1e-3) for k in names], y=names, orientation="h",
                           text=[f"{timings[k]:.2f} s" for k in names], textposition="outside",
                           cliponaxis=False, marker_color=COLORS["zoo"]))
    log_axis(fig, [max(timings[k], 1e-3) for k in names])
    fig.update_yaxes(autorange="reversed")
    fig = layout(fig, title, "seconds (log)", "")
    fig.update_layout(margin=dict(r=90))
    return fig
