"""Plotly figure builders: data in, Figure out. No computation beyond arranging what is given."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .interval import Interval
from .report import COLLAPSE_SPREAD, Barrier, FrontierPoint, PerNet, PopulationResult, score_format

TEMPLATE = "plotly_white"
COLORS = {"zoo": "#1f77b4", "zoo (fitting members)": "#1f77b4", "held-out members": "#17becf",
          "generated": "#d62728", "interpolation": "#2ca02c", "interpolations": "#2ca02c"}
_OTHERS = ("#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#aec7e8", "#ffbb78",
           "#98df8a", "#c5b0d5")


def population_colors(names: Sequence[str]) -> dict[str, str]:
    """A fixed color per population: zoo blue, held-out cyan, generated red, interpolations green,
    the others (noisy copies...) from a palette without those, in the order given."""
    others = iter(_OTHERS * (1 + len(names) // len(_OTHERS)))
    return {n: COLORS[n] if n in COLORS else next(others) for n in names}


def _layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title=x, yaxis_title=y,
                      width=760, height=440, legend=dict(orientation="h", y=-0.2))
    return fig


def _log_axis(fig: go.Figure, values: Sequence[float], axis: str = "x") -> None:
    """A log axis labelled only at clean major ticks: each power of ten when the values span a
    decade or more, else 1-2-5 steps (plotly would label minor ticks such as '2' and '5')."""
    pos = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    lo, hi = (min(pos), max(pos)) if pos else (1.0, 10.0)
    if math.log10(hi) - math.log10(lo) >= 1:
        ticks = dict(dtick=1, exponentformat="power")
    else:
        e0, e1 = math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1
        vals = [m * 10.0 ** e for e in range(e0, e1 + 1) for m in (1, 2, 5)]
        ticks = dict(tickmode="array", tickvals=vals, ticktext=[f"{v:g}" for v in vals])
    (fig.update_xaxes if axis == "x" else fig.update_yaxes)(type="log", minor=dict(showgrid=False), **ticks)


def _scaled(values: Sequence[float], metric: str) -> list[float]:
    f = score_format(metric)[0]
    return [f * v for v in values]


def _score_label(metric: str) -> str:
    return f"test {score_format(metric)[2]}"


def zoo_accuracy_histogram(test_acc: Sequence[float], val_acc: Sequence[float] | None = None,
                           title: str = "Zoo accuracy", metric: str = "accuracy") -> go.Figure:
    fig = go.Figure(go.Histogram(x=_scaled(test_acc, metric), name="test", nbinsx=30, bingroup="acc",
                                 marker_color=COLORS["zoo"], opacity=0.75))
    if val_acc is not None:
        fig.add_histogram(x=_scaled(val_acc, metric), name="validation", nbinsx=30, bingroup="acc",
                          opacity=0.5)
    fig.update_layout(barmode="overlay")
    return _layout(fig, title, score_format(metric)[2], "models")


def accuracy_distributions(populations: Mapping[str, Sequence[float]],
                           title: str = "Accuracy of originals, generated nets and baselines",
                           metric: str = "accuracy") -> go.Figure:
    """Box + points of per-net score (accuracy, or Spearman ρ) for each named population."""
    fig = go.Figure()
    colors = population_colors(list(populations))
    for name, acc in populations.items():
        fig.add_trace(go.Box(y=_scaled(acc, metric), name=name, boxpoints="all", jitter=0.4,
                             pointpos=0, marker=dict(size=4, color=colors[name]), line=dict(width=1)))
    fig.update_layout(showlegend=False)
    return _layout(fig, title, "", _score_label(metric))


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
    return _layout(fig, title, "component", "explained variance (%) of the full trace")


def flow_loss(history: Mapping[str, Sequence[float]], title: str = "Flow-matching loss") -> go.Figure:
    """Train loss (running mean) and held-out loss; the held-out curve is left out when the zoo
    was too small to hold codes out (all NaN)."""
    fig = go.Figure(go.Scatter(x=history["step"], y=history["train_loss"], name="train (running mean)"))
    val = history.get("val_loss") or []
    if any(v is not None and math.isfinite(v) for v in val):
        fig.add_scatter(x=history["step"], y=val, name="held-out codes (EMA net)")
    _log_axis(fig, [*history["train_loss"], *val], "y")
    return _layout(fig, title, "step", "loss")


def _bars(ivs: Sequence[Interval], f: float = 1.0) -> dict:
    """Asymmetric error bars of 95 % intervals (none for values fixed over replicates)."""
    return dict(type="data", symmetric=False, array=[f * (i.hi - i.mean) for i in ivs],
                arrayminus=[f * (i.mean - i.lo) for i in ivs])


def score_histograms(samples: Mapping[str, Sequence[float]], metric: str = "accuracy",
                     title: str = "Per-net score of two samples") -> go.Figure:
    """Overlaid histograms of per-net score, one per named sample (e.g. the app's last two)."""
    fig = go.Figure()
    for (name, scores), color in zip(samples.items(), (COLORS["generated"], COLORS["zoo"], *_OTHERS)):
        fig.add_histogram(x=_scaled(scores, metric), name=name, opacity=0.6, marker_color=color, nbinsx=30)
    fig.update_layout(barmode="overlay")
    return _layout(fig, title, _score_label(metric), "nets")


def novelty_scatter(populations: Sequence[PopulationResult], metric: str = "accuracy",
                    title: str = "Score vs novelty") -> go.Figure:
    """Mean score against novelty for every population, both with 95 % intervals over replicates."""
    fig = go.Figure()
    colors = population_colors([p.name for p in populations])
    f = score_format(metric)[0]
    for p in populations:
        fig.add_trace(go.Scatter(x=[p.novelty.mean], y=[f * p.score.mean], mode="markers", name=p.name,
                                 error_x=_bars([p.novelty]), error_y=_bars([p.score], f),
                                 marker=dict(size=11, opacity=0.85, color=colors[p.name])))
    return _layout(fig, title, "novelty: NN distance to the fitting members / their own NN distance",
                   _score_label(metric))


def spread_novelty(populations: Sequence[PopulationResult], title: str = "Collapse and memorization map") -> go.Figure:
    """Spread within each population against its novelty (95 % intervals), marker size the
    memorized fraction; the shaded band is collapse (spread below COLLAPSE_SPREAD)."""
    fig = go.Figure()
    colors = population_colors([p.name for p in populations])
    for p in populations:
        fig.add_trace(go.Scatter(
            x=[p.novelty.mean], y=[p.spread.mean], mode="markers", name=p.name,
            error_x=_bars([p.novelty]), error_y=_bars([p.spread]),
            hovertext=[f"memorized {100 * p.memorized.mean:.0f} %"],
            marker=dict(size=8 + 16 * (p.memorized.mean if math.isfinite(p.memorized.mean) else 0.0),
                        opacity=0.8, color=colors[p.name])))
    fig.add_hrect(y0=0, y1=COLLAPSE_SPREAD, fillcolor="#d62728", opacity=0.08, line_width=0,
                  annotation_text="collapsed", annotation_position="bottom right")
    return _layout(fig, title + " (marker size: memorized fraction)", "novelty (vs fitting members)",
                   "spread within the population")


def frontier(points: Sequence[FrontierPoint], zoo_score: float, metric: str = "accuracy",
             title: str = "Accuracy–novelty frontier") -> go.Figure:
    """Mean score against novelty, one line per family of nets (dwf.frontier points), each
    point labelled with its setting; the paper's recipe circled, the zoo mean dashed."""
    f = score_format(metric)[0]
    fig = go.Figure()
    families = list(dict.fromkeys(p.family for p in points))
    colors = {"generated": COLORS["generated"], "interpolation": COLORS["interpolation"],
              **dict(zip([x for x in families if x not in ("generated", "interpolation")], _OTHERS))}
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
    _log_axis(fig, [p.novelty for p in points])
    fig = _layout(fig, title, "novelty: NN distance to the fitting members / their own NN distance (log)",
                  _score_label(metric))
    fig.update_layout(height=520, legend=dict(orientation="h", y=-0.25))
    return fig


def nn_distance_histogram(populations: Mapping[str, Sequence[float]],
                          title: str = "Distance to the nearest fitting member") -> go.Figure:
    """populations: name -> per-net NN distance / the fitting members' median NN distance."""
    fig = go.Figure()
    colors = population_colors(list(populations))
    for name, d in populations.items():
        fig.add_histogram(x=list(d), name=name, opacity=0.6, nbinsx=60,
                          bingroup="nn", marker_color=colors[name])
    fig.update_layout(barmode="overlay")
    return _layout(fig, title, "NN distance / zoo median NN distance", "nets")


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
    return _layout(fig, title, "‖θ_i − θ_ref‖₂", "models")


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
    return _layout(fig, title, "ODE step" if one else f"z{a}", f"z{a}" if one else f"z{b}")


def novelty_per_net(populations: Mapping[str, PerNet], title: str = "Every net: score against distance to the zoo",
                    metric: str = "accuracy") -> go.Figure:
    """populations: name -> PerNet (a report population's per-net values)."""
    fig = go.Figure()
    colors = population_colors(list(populations))
    for name, p in populations.items():
        fig.add_scatter(x=p.novelty, y=_scaled(p.score, metric), mode="markers", name=name,
                        marker=dict(size=6, opacity=0.7, color=colors[name]))
    return _layout(fig, title, "NN distance to the fitting members / their median NN distance", _score_label(metric))


def error_similarity_accuracy(populations: Mapping[str, PerNet],
                              title: str = "Every net: score against max error similarity with a zoo member",
                              metric: str = "accuracy") -> go.Figure:
    """populations: name -> PerNet. Near 1: the net makes the same mistakes as some original
    (error-set IoU; residual correlation for regression)."""
    fig = go.Figure()
    colors = population_colors(list(populations))
    for name, p in populations.items():
        fig.add_scatter(x=p.error_similarity, y=_scaled(p.score, metric), mode="markers", name=name,
                        marker=dict(size=6, opacity=0.7, color=colors[name]))
    x = "max IoU of error sets with a zoo member" if metric == "accuracy" else "max residual correlation with a zoo member"
    return _layout(fig, title, x, _score_label(metric))


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
    return _layout(fig, title, "λ  (θ = (1 − λ) θ_a + λ θ_b)", "test loss")


def interpolation_scores(lambdas: Sequence[float], scores: Sequence[float], losses: Sequence[float],
                         metric: str = "accuracy", title: str = "Between two generated nets") -> go.Figure:
    """Score (left axis) and loss (right axis) of θ(λ) = (1 − λ) θ_a + λ θ_b along one path."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_scatter(x=list(lambdas), y=_scaled(scores, metric), mode="lines+markers", name=_score_label(metric),
                    line=dict(color=COLORS["generated"]))
    fig.add_scatter(x=list(lambdas), y=list(losses), mode="lines+markers", name="test loss",
                    line=dict(color="#7f7f7f", dash="dot"), secondary_y=True)
    fig.update_yaxes(title_text="test loss", secondary_y=True)
    return _layout(fig, title, "λ  (θ = (1 − λ) θ_a + λ θ_b)", _score_label(metric))


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
    return _layout(fig, f"{title}: {result['target']}", "fine-tuning epochs (0: linear probe on frozen features)",
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
    return _layout(fig, title, f"PCA coordinate {a + 1}", f"PCA coordinate {b + 1}")


def flow_alignment(cells: Mapping[tuple[str, str], Interval], zoo_score: float,
                   metric: str = "accuracy",
                   title: str = "Generated nets by flow width, with and without re-basin") -> go.Figure:
    """Grouped bars of the mean generated score with its 95 % interval over replicates:
    cells {(flow width label, alignment label): Interval} (the paper's alignment ablation)."""
    f = score_format(metric)[0]
    fig = go.Figure()
    series = list(dict.fromkeys(s for _, s in cells))
    colors = dict(zip(series, (COLORS["generated"], "#7f7f7f", *_OTHERS)))
    for s in series:
        xs = [x for x, s2 in cells if s2 == s]
        fig.add_bar(x=xs, y=[f * cells[x, s].mean for x in xs], name=s, marker_color=colors[s],
                    error_y=_bars([cells[x, s] for x in xs], f),
                    text=[f"{f * cells[x, s].mean:.{score_format(metric)[1]}f}" for x in xs],
                    textposition="inside", insidetextanchor="start")
    fig.add_hline(y=f * zoo_score, line_dash="dash", line_color=COLORS["zoo"],
                  annotation_text="zoo mean", annotation_position="top right")
    fig.update_layout(barmode="group")
    return _layout(fig, title, "velocity network", _score_label(metric))


def stage_timings(timings: Mapping[str, float], title: str = "Where the time goes") -> go.Figure:
    """Seconds per pipeline stage as horizontal bars (log axis: stages span milliseconds to hours)."""
    names = list(timings)
    fig = go.Figure(go.Bar(x=[max(timings[k], 1e-3) for k in names], y=names, orientation="h",
                           text=[f"{timings[k]:.2f} s" for k in names], textposition="outside",
                           cliponaxis=False, marker_color=COLORS["zoo"]))
    _log_axis(fig, [max(timings[k], 1e-3) for k in names])
    fig.update_yaxes(autorange="reversed")
    fig = _layout(fig, title, "seconds (log)", "")
    fig.update_layout(margin=dict(r=90))
    return fig


def error_similarity_heatmap(sim, rows: Sequence[str], cols: Sequence[str], metric: str = "accuracy",
                             title: str = "Error similarity with each zoo member") -> go.Figure:
    """sim: (m, n) array, net i against zoo member j (error-set IoU, or residual correlation)."""
    label = "error-set IoU" if metric == "accuracy" else "residual correlation"
    fig = go.Figure(go.Heatmap(z=sim.tolist(), x=list(cols), y=list(rows), zmin=0, zmax=1,
                               colorscale="Viridis", colorbar=dict(title=label)))
    fig.update_yaxes(autorange="reversed", dtick=1)
    fig.update_xaxes(dtick=1)
    fig = _layout(fig, title, "zoo member", "")
    fig.update_layout(height=max(440, 14 * len(rows) + 160))
    return fig


_FAMILY_COLORS = {"flow": COLORS["generated"], "noisy copies": _OTHERS[0], "interpolations": COLORS["interpolation"]}


def reach_scaling(sizes: Sequence[int], reaches: Mapping[tuple[str, float], Sequence[Interval]],
                  title: str = "How far each generator reaches as the zoo grows") -> go.Figure:
    """Largest novelty within an accuracy loss against zoo size N, 95 % intervals: one line per
    (family, loss), solid at the smallest loss, dotted, dashed at the next (dwf.reach); the lines
    that reach nothing at any N are named under the title."""
    fig = go.Figure()
    levels = sorted({lv for _, lv in reaches})
    dashes = dict(zip(levels, ("solid", "dot", "dash", "dashdot")))
    nowhere = []
    for (family, level), ivs in reaches.items():
        ok = [(n, iv) for n, iv in zip(sizes, ivs) if math.isfinite(iv.mean)]
        name = f"{family}, loss ≤ {100 * level:g} pp"
        if not ok:
            nowhere.append(name)
        fig.add_trace(go.Scatter(
            x=[n for n, _ in ok], y=[iv.mean for _, iv in ok], error_y=_bars([iv for _, iv in ok]),
            mode="lines+markers", name=name,
            line=dict(color=_FAMILY_COLORS.get(family, _OTHERS[1]), dash=dashes.get(level, "solid")),
            marker=dict(size=8)))
    if nowhere:
        title += "<br><sup>reached at no N: " + "; ".join(nowhere) + "</sup>"
    fig.add_hline(y=1.0, line_dash="dash", line_color=COLORS["held-out members"],
                  annotation_text="a held-out member", annotation_position="top left")
    _log_axis(fig, list(sizes))
    fig = _layout(fig, title, "zoo size N (log)", "largest novelty within the loss")
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
                x=[v.mean for v in nov], y=[f * v.mean for v in loss], error_y=_bars(loss, f), error_x=_bars(nov),
                mode="lines+markers", name=family, legendgroup=family, showlegend=col == 1,
                line=dict(color=_FAMILY_COLORS.get(family, _OTHERS[1]))), row=1, col=col)
        if ho is not None:
            fig.add_trace(go.Scatter(x=[ho[0]], y=[f * ho[1]], mode="markers", name="held-out members",
                                     legendgroup="held", showlegend=col == 1,
                                     marker=dict(size=12, symbol="star", color=COLORS["held-out members"])),
                          row=1, col=col)
        fig.update_xaxes(type="log", dtick=1, exponentformat="power", minor=dict(showgrid=False), row=1, col=col)
    fig.update_layout(template=TEMPLATE, title=title, width=360 * len(sizes), height=460,
                      legend=dict(orientation="h", y=-0.2))
    fig.update_yaxes(title_text=f"{_score_label(metric)} lost vs the fitting members", row=1, col=1)
    fig.update_xaxes(title_text="novelty (log)")
    return fig
