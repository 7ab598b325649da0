"""Wall-clock timing as best of several runs: the minimum is the least noisy estimate of what a
computation costs on a shared machine (noise only ever adds time)."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def best_of(fn: Callable[[], T], repeats: int) -> tuple[float, T]:
    """(fastest seconds over `repeats` calls, result of the last call)."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out
