"""The reproduce run's jobs (dwf.reproduce): built side by side on Ray they give the reports built
here one after another, in job order, with every stage line copied to the driver's stream; a job
that fails stops the run with an error naming it; a worker's lines reach the queue whole."""
from __future__ import annotations

import io

import pytest

from dwf import DwfError, reproduce, shards
from dwf.reproduce import Job, _Lines

JOBS = [Job("iris_mlp", "smoke"), Job("digits_mlp", "smoke")]


def _generated(report):
    return next(p for p in report.populations if p.name == "generated")


def test_jobs_on_ray_give_the_reports_built_here_in_job_order(tmp_path, one_thread, local_ray):
    here_log, there_log = io.StringIO(), io.StringIO()
    here = reproduce.build_all(JOBS, tmp_path / "here", stream=here_log)
    there = reproduce.build_all(JOBS, tmp_path / "there", engine=shards.Engine(max_retries=0), stream=there_log)

    variants = ["", "unaligned", "flow-h64", "flow-h64-unaligned"]
    expected = [(job.name, v) for job in JOBS for v in variants]
    assert [(r.experiment, r.variant) for r in here] == expected
    assert [(r.experiment, r.variant) for r in there] == expected
    for a, b in zip(here, there):   # built in another process at one thread: the same nets
        ga, gb = _generated(a), _generated(b)
        assert gb.score.mean == pytest.approx(ga.score.mean, abs=1e-6), (a.experiment, a.variant)
        assert gb.novelty.mean == pytest.approx(ga.novelty.mean, rel=1e-4), (a.experiment, a.variant)
    assert (tmp_path / "there" / "iris_mlp" / "smoke" / "seed0" / "report.json").is_file()

    # every stage line of both jobs reached the driver, each job's in its own order, stamped with
    # the seconds since the run began (never decreasing)
    for log in (here_log.getvalue(), there_log.getvalue()):
        stamps = [float(line[1:line.index(" s]")]) for line in log.splitlines()]
        assert stamps == sorted(stamps) and stamps[0] >= 0
        lines = [line.split("] ", 1)[1] for line in log.splitlines()]
        for job in JOBS:
            own = [line for line in lines if line.startswith(job.name)]
            assert own[0].startswith(f"{job.name} and its variants [smoke]  codes")
            assert own[-1].startswith(f"{job.name} / flow-h64-unaligned [smoke]  total")
            assert sum("total" in line for line in own) == 1 + len(variants)


def test_a_failing_job_stops_the_run_with_an_error_naming_it(tmp_path, local_ray):
    jobs = [Job("iris_mlp", "smoke"), Job("no_such_experiment", "smoke")]
    with pytest.raises(DwfError, match="reproduce jobs failed on Ray.*unknown experiment 'no_such_experiment'"):
        reproduce.build_all(jobs, tmp_path, engine=shards.Engine(max_retries=0), stream=io.StringIO())


def test_a_workers_lines_reach_the_queue_whole_however_they_are_written():
    class ListQueue(list):
        put = list.append

    queue = ListQueue()
    stream = _Lines(queue.put)
    print("fmnist_mlp [quick]  zoo", end="", file=stream)
    assert queue == []                       # half a line is held back
    print("   21.3 s", file=stream, flush=True)
    stream.write("a\nb\nc")
    assert queue == ["fmnist_mlp [quick]  zoo   21.3 s", "a", "b"]
