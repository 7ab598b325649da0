"""The trivial generators a weight generator must beat, as curves of (novelty, validation gap).

Zeng et al. (CVPR 2026) show that published weight generators lose to two generators that learn
nothing: copies of the training nets with weight noise, and simple fits to them. Each of these
traces a curve as one knob turns:

    noisy copies     W_i + σ ε,  ε ~ N(0, I_d),   σ = t · m / √d,   t ∈ NOISY_NOVELTY
    fitted Gaussian  decode(μ + s · sd ⊙ ε),  ε ~ N(0, I_k),        s ∈ GAUSSIAN_SCALES
    crossover        each unit from a random member, blended λ toward the members' mean
                     (`dwf.crossover`),                               λ ∈ CROSSOVER_BLENDS

with W_i a random fitting member (aligned vectors, d weights), m the members' leave-one-out
median nearest-neighbour distance (a copy's distance to its source is about σ√d, so its novelty
lands near t), and μ, sd the mean and per-component std of the members' PCA codes (k of them).
A generated population at novelty ν beats a curve when its validation gap is higher than the best
the curve attains at novelty ≥ ν (`best_gap_from`: linear between the curve's points, and every
point beyond ν): no population of the trivial generator is then both as new and as accurate.
Noisy copies start at the members themselves (novelty 0), the other two at the members' mean.
Every point is scored on the validation split only, so these curves may steer a choice of recipe.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch

from . import families, stacked
from .crossover import crossover
from .novelty import loo_median_nn, novelty
from .pca import DualPCA
from .rebasin import PermutationSpec
from .sample import states
from .task import task_for

if TYPE_CHECKING:
    from .interval import Interval
    from .pipeline import Run

NOISY_NOVELTY = (0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2)   # the noisy-copy curve's novelty targets t
GAUSSIAN_SCALES = (0.25, 0.5, 0.75, 1.0, 1.5)         # the fitted Gaussian's std factors s
CROSSOVER_BLENDS = (0.75, 0.5, 0.25, 0.0)             # the crossover's blends λ toward the members' mean

Curve = tuple[tuple[float, float], ...]                # (novelty, validation gap) per knob value
Transform = Callable[[torch.Tensor], torch.Tensor]      # nets (n, d) -> nets (n, d), applied before scoring


def code_gaussian(pca: DualPCA, codes: torch.Tensor, n: int, scale: float, g: torch.Generator) -> torch.Tensor:
    """(n, d) nets decoded from a Gaussian over the codes (k per member, codes (n_fit, k)):
    their mean plus `scale` times their per-component std times standard normal draws."""
    mu, sd = codes.mean(0), codes.std(0)                                       # (k,), (k,)
    return pca.inverse_transform(mu + scale * sd * torch.randn(n, codes.shape[1], generator=g))


def best_gap_from(curve: Curve, nov: float) -> float | None:
    """The best validation gap the curve attains at novelty ≥ `nov`: at `nov` itself (linear
    between its neighbouring points) or at any point beyond; None when the whole curve is less novel."""
    pts = sorted(curve)
    beyond = [gap for v, gap in pts if v >= nov]
    if not beyond:
        return None
    if pts[0][0] <= nov:
        beyond.append(float(np.interp(nov, [p[0] for p in pts], [p[1] for p in pts])))
    return max(beyond)


def standing(gap: Interval, nov: float, curve: Curve) -> str:
    """Nets at novelty `nov` with validation gap `gap` (95 % interval) against a curve: "ahead"
    where the interval lies above the curve's best gap at least as novel (`best_gap_from`),
    "behind" where below, "tied" otherwise; "—" when no point of the curve is as novel."""
    best = best_gap_from(curve, nov)
    if best is None:
        return "—"
    return "ahead" if gap.lo > best else "behind" if gap.hi < best else "tied"


def validation_gap(run: "Run", model, V: torch.Tensor, zoo_val: float) -> float:
    """Mean validation score of the nets V (n, d), BatchNorm recalibrated, minus the members'."""
    e, task = run.experiment, task_for(run.data)
    nets = states(e.arch, V, x_train=run.data.x_train, bn_samples=e.sample.bn_samples)
    return float(task.score(stacked.predict(model, nets, run.data.x_val, task=task), run.data.y_val).mean()) - zoo_val


def noisy_copies(run: "Run", model, zoo_val: float, n: int = 100,
                 targets: Sequence[float] = NOISY_NOVELTY, transform: Transform | None = None) -> Curve:
    """The noisy-copy curve of the run's fitting members: n copies per target, one seeded draw each
    (each population passed through `transform` before it is scored, e.g. `dwf.guidance`)."""
    fit = run.fit.vectors()                                                    # (n_fit, d)
    unit = loo_median_nn(fit)                                                  # novelty's unit
    step = unit / math.sqrt(fit.shape[1])
    g = torch.Generator().manual_seed(run.experiment.eval.seed)
    out = []
    for t in targets:
        V = fit[torch.randint(fit.shape[0], (n,), generator=g)] + t * step * torch.randn(n, fit.shape[1], generator=g)
        V = V if transform is None else transform(V)
        out.append((novelty(V, fit, scale=unit), validation_gap(run, model, V, zoo_val)))
    return tuple(out)


def fitted_gaussian(run: "Run", model, zoo_val: float, n: int = 100,
                    scales: Sequence[float] = GAUSSIAN_SCALES, transform: Transform | None = None) -> Curve:
    """The fitted-Gaussian curve over the run's own PCA codes: n nets per std factor (through
    `transform`, as `noisy_copies`)."""
    fit = run.fit.vectors()
    unit, g = loo_median_nn(fit), torch.Generator().manual_seed(run.experiment.eval.seed)
    out = []
    for s in scales:
        V = code_gaussian(run.pca, run.codes, n, s, g)
        V = V if transform is None else transform(V)
        out.append((novelty(V, fit, scale=unit), validation_gap(run, model, V, zoo_val)))
    return tuple(out)


def crossovers(run: "Run", model, zoo_val: float, n: int = 100, blends: Sequence[float] = CROSSOVER_BLENDS) -> Curve:
    """The crossover curve of the run's fitting members (aligned): n children per blend; empty
    for families whose symmetry has no simple units (transformers)."""
    spec = families.symmetry(run.experiment.arch, run.data.x_train)
    if not isinstance(spec, PermutationSpec):
        return ()
    fit = run.fit.vectors()
    unit, g = loo_median_nn(fit), torch.Generator().manual_seed(run.experiment.eval.seed)
    out = []
    for lam in blends:
        V = run.fit.layout.flatten(crossover(run.fit.params, spec, n, lam, g), stacked=True)
        out.append((novelty(V, fit, scale=unit), validation_gap(run, model, V, zoo_val)))
    return tuple(out)


__all__ = ["CROSSOVER_BLENDS", "GAUSSIAN_SCALES", "NOISY_NOVELTY", "Curve", "Transform", "best_gap_from", "code_gaussian",
           "crossovers", "fitted_gaussian", "noisy_copies", "validation_gap"]
