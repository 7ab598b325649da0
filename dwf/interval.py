"""A mean over replicates with its 95 % confidence interval (Student's t).

For values x₁..x_R from R independent replicates (flow fits with their own seeds):

    mean = x̄,   half-width = t_{0.975, R−1} · s / √R,   s the sample standard deviation.

One value (R = 1) or a quantity that does not depend on the replicate (the fixed zoo) has a
zero-width interval and `replicated = False`, so a table can say so instead of printing ± 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from scipy import stats


@dataclass(frozen=True)
class Interval:
    mean: float
    lo: float
    hi: float
    n: int                    # replicates behind the mean
    replicated: bool = True   # False: the same value in every replicate (no sampling variation)

    @classmethod
    def of(cls, values: Sequence[float], replicated: bool = True) -> "Interval":
        xs = [float(v) for v in values]
        if not xs:
            raise ValueError("an interval needs at least one value")
        finite = [v for v in xs if math.isfinite(v)]
        if len(finite) < len(xs):
            return cls(math.nan, math.nan, math.nan, len(xs), replicated)
        m = sum(xs) / len(xs)
        if len(xs) < 2 or not replicated:
            return cls(m, m, m, len(xs), False)
        s = math.sqrt(sum((v - m) ** 2 for v in xs) / (len(xs) - 1))
        h = float(stats.t.ppf(0.975, len(xs) - 1)) * s / math.sqrt(len(xs))
        return cls(m, m - h, m + h, len(xs), True)

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    def contains(self, value: float) -> bool:
        return self.lo <= value <= self.hi

    def within(self, bound: float) -> bool:
        """Whether the whole interval lies within ±bound of 0 (e.g. a gap within 0.3 pp)."""
        return -bound <= self.lo and self.hi <= bound

    def text(self, scale: float = 1.0, decimals: int = 3) -> str:
        """'0.512 [0.498, 0.526]', or the plain value when it does not vary over replicates."""
        f = lambda v: f"{scale * v:.{decimals}f}"  # noqa: E731
        if not self.replicated:
            return f(self.mean)
        return f"{f(self.mean)} [{f(self.lo)}, {f(self.hi)}]"
