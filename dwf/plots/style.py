"""What every dwf figure shares: the template, a fixed color per population, axis and error-bar
helpers."""
from __future__ import annotations

import math
from typing import Sequence

import plotly.graph_objects as go

from ..interval import Interval
from ..report import score_format


TEMPLATE = "plotly_white"
COLORS = {"zoo": "#1f77b4", "zoo (fitting members)": "#1f77b4", "held-out members": "#17becf",
          "generated": "#d62728", "interpolation": "#2ca02c", "interpolations": "#2ca02c"}
OTHERS = ("#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#aec7e8", "#ffbb78",
          "#98df8a", "#c5b0d5")


def population_colors(names: Sequence[str]) -> dict[str, str]:
    """A fixed color per population: zoo blue, held-out cyan, generated red, interpolations green,
    the others (noisy copies...) from a palette without those, in the order given."""
    others = iter(OTHERS * (1 + len(names) // len(OTHERS)))
    return {n: COLORS[n] if n in COLORS else next(others) for n in names}


def layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title=x, yaxis_title=y,
                      width=760, height=440, legend=dict(orientation="h", y=-0.2))
    return fig


def log_axis(fig: go.Figure, values: Sequence[float], axis: str = "x") -> None:
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


def scaled(values: Sequence[float], metric: str) -> list[float]:
    f = score_format(metric)[0]
    return [f * v for v in values]


def score_label(metric: str) -> str:
    return f"test {score_format(metric)[2]}"


def bars(ivs: Sequence[Interval], f: float = 1.0) -> dict:
    """Asymmetric error bars of 95 % intervals (none for values fixed over replicates)."""
    return dict(type="data", symmetric=False, array=[f * (i.hi - i.mean) for i in ivs],
                arrayminus=[f * (i.mean - i.lo) for i in ivs])
