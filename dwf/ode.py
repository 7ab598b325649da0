"""Fixed-step ODE solvers for dx/dt = v(x, t) on t in [t0, t1]: exactly `steps` steps each."""
from __future__ import annotations

from typing import Callable

import torch

from .config import SOLVERS as METHODS
from .errors import ConfigError

Field = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x (B, d), t (B,)) -> (B, d)


def _step(v: Field, x: torch.Tensor, t: float, h: float, method: str) -> torch.Tensor:
    def f(xx, tt):
        return v(xx, torch.full((x.shape[0],), tt, dtype=x.dtype, device=x.device))

    if method == "euler":
        return x + h * f(x, t)
    if method == "midpoint":
        return x + h * f(x + 0.5 * h * f(x, t), t + 0.5 * h)
    k1 = f(x, t)
    k2 = f(x + 0.5 * h * k1, t + 0.5 * h)
    k3 = f(x + 0.5 * h * k2, t + 0.5 * h)
    k4 = f(x + h * k3, t + h)
    return x + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


def integrate(v: Field, x0: torch.Tensor, steps: int = 100, method: str = "rk4",
              t0: float = 0.0, t1: float = 1.0, trajectory: bool = False) -> torch.Tensor:
    """x(t1) (B, d), or with `trajectory` every state (steps + 1, B, d)."""
    if method not in METHODS:
        raise ConfigError(f"unknown ODE method {method!r}; use one of {METHODS}")
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    h = (t1 - t0) / steps
    x, xs = x0, [x0]
    for i in range(steps):
        x = _step(v, x, t0 + i * h, h, method)
        if trajectory:
            xs.append(x)
    return torch.stack(xs) if trajectory else x
