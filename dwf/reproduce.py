"""The reproduce run's builds as independent jobs, run side by side on Ray or one after another here.

    job = an experiment with its ablation variants  (flows fitted as stacks, then each build)
        | a conditional experiment                  (one report per label)
    reports = [*reports(job) for job in jobs]       in job order, wherever each job ran

On 2 cores one build uses the second core poorly: flow fitting is bound by per-step overhead
(two threads fit no faster than one), and only the conv and attention stages gain from a second
thread (1.5× on the ResNet-20 zoo). Two jobs at one thread each keep both cores busy, so
`make reproduce` hands the jobs to a local Ray (`dwf.fanout`; one CPU, hence one thread, per job)
and pulls the next job as soon as a worker is free. The jobs share nothing but the artifacts
folder, where each stage is cached under its own lock (`dwf.lock`): a conditional experiment
that needs a member zoo another job is training waits for it, and a job whose worker died is
retried by Ray and resumes from its cached stages. With $DWF_RAY_ADDRESS set the jobs go to that
cluster instead (`shards.Engine.from_env`), whose workers must see the same artifacts folder.

Every job's stage lines (`dwf.progress.StageLog`) reach this process's console as they happen,
through a Ray actor, each stamped with the seconds since the run began (`[  312 s] ...`), so a
long run shows where it is and when each stage ended.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, TextIO

from . import conditional as conditional_mod, experiments, fanout, pipeline, progress
from .report import Report
from .shards import Engine


@dataclass(frozen=True)
class Job:
    """One experiment of the run with its ablation variants, or one conditional experiment."""
    name: str
    profile: str
    conditional: bool = False

    @property
    def label(self) -> str:
        return f"{self.name}{' (conditional)' if self.conditional else ''} [{self.profile}]"


def build_job(job: Job, artifacts: str | Path, stream: TextIO | None = None) -> list[Report]:
    """Build (or load) the job's runs in this process; one stage line per stage on `stream`."""
    if job.conditional:
        log = progress.StageLog(job.label, stream)
        crun = conditional_mod.build(experiments.conditional(job.name, job.profile), artifacts,
                                     progress=False, on_stage=log)
        log.done()
        return list(crun.reports)                           # one report per label (dataset)
    exp = experiments.get(job.name, job.profile)
    group = [exp, *experiments.ablations(exp)]              # the experiment, then its variants
    log = progress.StageLog(f"{job.name} and its variants [{job.profile}]", stream)
    pipeline.fit_flows(group, artifacts, on_stage=log)      # their flows as few stacks (cheaper together)
    log.done()
    reports = []
    for e in group:
        log = progress.StageLog(f"{job.name}{' / ' + e.variant if e.variant else ''} [{job.profile}]", stream)
        reports.append(pipeline.build(e, artifacts, progress=False, on_stage=log).report)
        log.done()
    return reports


def build_all(jobs: list[Job], artifacts: str | Path, engine: Engine | None = None,
              stream: TextIO | None = None, seconds: Mapping[str, float] | None = None) -> list[Report]:
    """Every job's reports, in job order. With an `engine` the jobs run as Ray tasks (one CPU
    each) and their stage lines are copied to `stream` as they arrive; without, here in turn.
    `seconds` (a previous run's seconds per job name, `readme.run_seconds`) starts the jobs on
    Ray longest first, jobs it does not name before all, so the longest is not left to run alone
    at the end; the reports still come back in job order."""
    stream = stream or sys.stdout
    t0 = time.perf_counter()

    def stamped(line: str) -> None:
        print(f"[{time.perf_counter() - t0:5.0f} s] {line}", file=stream, flush=True)

    artifacts = str(Path(artifacts).resolve())             # workers need not share our directory
    if engine is None:
        return [r for job in jobs for r in build_job(job, artifacts, _Lines(stamped))]
    with fanout.session(engine) as ray:                   # a local Ray it starts ends with the jobs
        lines = line_buffer(ray)
        task = fanout.remote(ray, engine, _build_remote)
        refs: list = [None] * len(jobs)
        for i in start_order(jobs, seconds or {}):      # Ray starts tasks in the order they came
            refs[i] = task.remote(jobs[i], artifacts, lines)

        def copy_lines() -> None:
            for line in ray.get(lines.drain.remote()):
                stamped(line)

        done = fanout.wait_all(ray, refs, "reproduce jobs", False, engine, poll=copy_lines,
                               hint="; rerun to resume from the cached stages")
        copy_lines()
    return [r for reports in done for r in reports]


def start_order(jobs: list[Job], seconds: Mapping[str, float]) -> list[int]:
    """Indices of `jobs`, longest first by `seconds` (jobs it does not name first, in job order)."""
    return sorted(range(len(jobs)), key=lambda i: -seconds.get(jobs[i].name, math.inf))


class _Lines:
    """A text stream that hands each complete line to `sink` (a worker's StageLog output to a Ray
    queue's `put`, or to the stamped console)."""

    def __init__(self, sink: Callable[[str], None]):
        self.sink, self.buffer = sink, ""

    def write(self, text: str) -> int:
        self.buffer += text
        *complete, self.buffer = self.buffer.split("\n")
        for line in complete:
            self.sink(line)
        return len(text)

    def flush(self) -> None:
        pass


def _build_remote(job: Job, artifacts: str, lines) -> list[Report]:
    sink = LineSink(lines)
    try:
        return build_job(job, artifacts, _Lines(sink))
    finally:
        sink.wait()


class _LineBuffer:
    """The jobs' stage lines, appended as they happen and drained by the driver."""

    def __init__(self):
        self.lines: list[str] = []

    def append(self, line: str) -> None:
        self.lines.append(line)

    def drain(self) -> list[str]:
        out, self.lines = self.lines, []
        return out

    def sync(self) -> None:
        """Returns once every append made before it by the same caller is in."""


def line_buffer(ray):
    """A Ray actor (`_LineBuffer`, no CPU of its own) that collects the jobs' lines."""
    return ray.remote(num_cpus=0)(_LineBuffer).remote()


class LineSink:
    """Appends lines to a `line_buffer` actor without waiting for them. A task that waits in
    `ray.get` (as `ray.util.queue.Queue.put` does) lends its CPU back to Ray, which then starts
    another job: each stage line let one more job in, and three and more ran at once on 2 CPUs.
    One caller's lines stay in order (a plain, not async, actor runs one caller's calls in order);
    `wait()`, at a job's end, returns once they are all in, so the driver's last drain has them."""

    def __init__(self, lines):
        self.lines = lines

    def __call__(self, line: str) -> None:
        self.lines.append.remote(line)

    def wait(self) -> None:
        import ray

        ray.get(self.lines.sync.remote())


__all__ = ["Job", "build_all", "build_job"]
