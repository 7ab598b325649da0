"""Distances in aligned weight space: how new a set of nets is, how varied, how often a copy.

For nets V (m, d) and a reference set R (n, d) of zoo members (same aligned coordinates):

    d₁(v) = min_j ‖v − R_j‖,  d₂(v) = second smallest           nearest, second-nearest member
    δ_R   = median_j min_{j' ≠ j} ‖R_j − R_j'‖                   R's leave-one-out NN distance

    novelty(V, R)            = median_i d₁(V_i) / δ_R            1: as far from R as R's members
                                                                 are from each other; 0: copies
    spread(V, R)             = median_i min_{i' ≠ i} ‖V_i − V_i'‖ / δ_R   0: one net repeated
    memorized_fraction(V, R) = mean_i [d₁(V_i) < τ · d₂(V_i)]    share of nets far closer to one
                                                                 member than to any other (τ = 1/3)
    coverage(V, R)           = |{argmin_j ‖V_i − R_j‖ : i}| / n   share of members that are some
                                                                 net's nearest (1/n: all on one)
    radius(V, R)             = median_i ‖V_i − R̄‖ / median_j ‖R_j − R̄‖   (R̄: R's mean) 1: as far
                                                                 out as members; < 1: pulled toward
                                                                 the members' average (a blur)

Everything is computed in float64 from one distance matrix per call; `Distances` keeps that
matrix, so a caller reading d₁, novelty, memorized fraction and coverage of one population pays
for one (m, n) matrix, not four. With `exclude_self` a
population is compared with itself (V is R, row i's own distance ignored): the zoo's novelty is
then 1 by construction and its memorized fraction says how clustered members are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import DwfError

MEMORIZED_THRESHOLD = 1 / 3


def _as_rows(X, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X).double()
    if t.ndim != 2 or t.shape[0] == 0:
        raise DwfError(f"{name} must be a 2-D array of nets (rows) by weights, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise DwfError(f"{name} holds NaN or inf weights; drop the diverged nets before measuring novelty")
    return t


def _distances(V, ref, exclude_self: bool = False) -> torch.Tensor:
    """(m, n) Euclidean distances; with exclude_self (V is ref) the diagonal is +inf."""
    V, R = _as_rows(V, "V"), _as_rows(ref, "ref")
    if V.shape[1] != R.shape[1]:
        raise DwfError(f"V has {V.shape[1]} weights per net and ref {R.shape[1]}: compare nets of one "
                       "architecture, in the same aligned coordinates")
    D = torch.cdist(V, R)
    if exclude_self:
        if D.shape[0] != D.shape[1]:
            raise DwfError("exclude_self needs V to be ref itself")
        D.fill_diagonal_(float("inf"))
    return D


def _median(x: torch.Tensor) -> float:
    """The usual median (the mean of the two middle values for an even count)."""
    return float(torch.quantile(x, 0.5))


@dataclass(frozen=True)
class Distances:
    """D (m, n): from V's rows to ref's, float64; with `exclude_self` (V is ref) the diagonal is +inf."""
    D: torch.Tensor
    exclude_self: bool = False

    @classmethod
    def of(cls, V, ref, exclude_self: bool = False) -> "Distances":
        return cls(_distances(V, ref, exclude_self), exclude_self)

    def nearest(self) -> torch.Tensor:
        """d₁ per row of V. (m,) float64"""
        return self.D.min(1).values

    def novelty(self, scale: float) -> float:
        """median d₁ / `scale` (ref's leave-one-out median NN distance)."""
        return _median(self.nearest()) / scale

    def memorized_fraction(self, threshold: float = MEMORIZED_THRESHOLD) -> float:
        """Share of rows with d₁ < threshold · d₂."""
        if not 0 < threshold <= 1:
            raise DwfError(f"threshold must be in (0, 1], got {threshold}")
        if self.D.shape[1] - int(self.exclude_self) < 2:
            raise DwfError("memorized_fraction needs at least 2 reference nets besides the net itself")
        d12 = self.D.topk(2, dim=1, largest=False).values          # (m, 2)
        return float((d12[:, 0] < threshold * d12[:, 1]).double().mean())

    def coverage(self) -> float:
        """Share of ref's rows that are some row's nearest."""
        return float(self.D.argmin(1).unique().numel()) / self.D.shape[1]


def nn_distances(V, ref, exclude_self: bool = False) -> torch.Tensor:
    """d₁: distance from each row of V to its nearest row of ref. (m,) float64"""
    return Distances.of(V, ref, exclude_self).nearest()


def loo_median_nn(ref) -> float:
    """δ_R: median distance from each member of ref to its nearest other member."""
    R = _as_rows(ref, "ref")
    if R.shape[0] < 2:
        raise DwfError(f"ref needs at least 2 nets to have a nearest-neighbour scale, got {R.shape[0]}")
    delta = _median(nn_distances(R, R, exclude_self=True))
    if delta <= 0:
        raise DwfError("ref holds duplicate nets (leave-one-out NN distance 0); novelty has no scale")
    return delta


def novelty(V, ref, exclude_self: bool = False, scale: float | None = None) -> float:
    """median NN distance V → ref / ref's leave-one-out median NN distance (`scale`: that
    distance, `loo_median_nn(ref)`, where the caller keeps it: it costs an (n, n) distance matrix)."""
    return Distances.of(V, ref, exclude_self).novelty(loo_median_nn(ref) if scale is None else scale)


def spread(V, ref, scale: float | None = None) -> float:
    """median NN distance within V (self excluded) / ref's leave-one-out median NN distance
    (`scale` as for `novelty`)."""
    V = _as_rows(V, "V")
    if V.shape[0] < 2:
        raise DwfError(f"spread needs at least 2 nets, got {V.shape[0]}")
    return _median(nn_distances(V, V, exclude_self=True)) / (loo_median_nn(ref) if scale is None else scale)


def memorized_fraction(V, ref, threshold: float = MEMORIZED_THRESHOLD, exclude_self: bool = False) -> float:
    """Share of rows of V whose nearest member of ref is closer than `threshold` times the
    second-nearest: near-copies of one member rather than nets between members."""
    return Distances.of(V, ref, exclude_self).memorized_fraction(threshold)


def coverage(V, ref, exclude_self: bool = False) -> float:
    """Share of ref's members that are the nearest member of at least one row of V: copies of
    every member cover 1, nets collapsed onto one member cover 1/n."""
    return Distances.of(V, ref, exclude_self).coverage()


def radius(V, ref) -> float:
    """median distance of V's rows to ref's centroid / ref's own median distance to it. Copies
    and new members alike score about 1; nets blended toward the members' average score below."""
    V, R = _as_rows(V, "V"), _as_rows(ref, "ref")
    if V.shape[1] != R.shape[1]:
        raise DwfError(f"V has {V.shape[1]} weights per net and ref {R.shape[1]}: compare nets of one "
                       "architecture, in the same aligned coordinates")
    centre = R.mean(0)
    scale = _median((R - centre).norm(dim=1))
    if scale <= 0:
        raise DwfError("ref's nets all coincide; radius has no scale")
    return _median((V - centre).norm(dim=1)) / scale
