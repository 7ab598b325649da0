"""One console line per finished stage, for long runs (`make reproduce`, `python -m dwf run`).

`pipeline.build` and `conditional.build` call `on_stage(name)` as each stage starts; a
`StageLog` turns those calls into lines such as

    fmnist_mlp [quick]  zoo      21.3 s
    fmnist_mlp [quick]  align     0.4 s

(each stage's wall time, cached stages included: loading is what they cost), flushed at once so
they show while a notebook runs under papermill (`--log-output`) or in a terminal.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO


class StageLog:
    """An `on_stage` callback; call `done()` after the build to print the last stage's line."""

    def __init__(self, label: str, stream: TextIO | None = None):
        self.label = label
        self.stream = stream or sys.stdout
        self.stage: str | None = None
        self.t0 = time.perf_counter()
        self.start = self.t0
        self.seconds: dict[str, float] = {}

    def __call__(self, stage: str) -> None:
        self._finish()
        self.stage, self.t0 = stage, time.perf_counter()

    def done(self) -> float:
        """Print the last stage's line and return the whole build's seconds."""
        self._finish()
        self.stage = None
        total = time.perf_counter() - self.start
        self._print(f"{self.label}  {'total':<10}{total:8.1f} s")
        return total

    def _finish(self) -> None:
        if self.stage is None:
            return
        dt = time.perf_counter() - self.t0
        self.seconds[self.stage] = self.seconds.get(self.stage, 0.0) + dt
        self._print(f"{self.label}  {self.stage:<10}{dt:8.1f} s")

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


__all__ = ["StageLog"]
