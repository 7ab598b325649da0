"""The reproduce run's jobs (dwf.reproduce): built side by side on Ray they give the reports built
here one after another, in job order, with every stage line copied to the driver's stream; a job
that fails stops the run with an error naming it; a worker's lines reach the queue whole."""
from __future__ import annotations

import io

import pytest

from dwf import DwfError, fanout, reproduce, shards
from dwf.reproduce import Job, LineSink, _Lines, line_buffer

JOBS = [Job("iris_mlp", "smoke"), Job("digits_mlp", "smoke")]


def _generated(report):
    return next(p for p in report.populations if p.name == "generated")


def test_jobs_on_ray_give_the_reports_built_here_in_job_order(tmp_path, one_thread, local_ray):
    here_log, there_log = io.StringIO(), io.StringIO()
    here = reproduce.build_all(JOBS, tmp_path / "here", stream=here_log)
    there = reproduce.build_all(JOBS, tmp_path / "there", engine=shards.Engine(max_retries=0), stream=there_log,
                                seconds={"iris_mlp": 1.0, "digits_mlp": 2.0})      # started in reverse

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


def test_jobs_start_longest_first_by_a_previous_runs_seconds_and_unknown_ones_before_all():
    jobs = [Job(n, "quick") for n in ("a", "b", "c", "d")] + [Job("e", "quick", conditional=True)]
    assert reproduce.start_order(jobs, {"a": 5.0, "b": 50.0, "c": 5.0, "e": 20.0}) == [3, 1, 4, 0, 2]
    assert reproduce.start_order(jobs, {}) == [0, 1, 2, 3, 4]


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


def test_jobs_writing_lines_never_outnumber_the_cpus(local_ray):
    """Each job holds one of the cluster's 2 CPUs while it writes its lines: no third job starts
    beside two (a `Queue.put` waiting in ray.get lent the CPU back to Ray), and each job's lines
    arrive in the order it wrote them, all of them by the time it returns."""
    import ray

    def _chatty_job(i: int, lines, seconds: float) -> tuple[float, float]:
        """Computes for `seconds`, writing a line every few milliseconds as a build's stage lines
        do (a local function: Ray ships it by value); returns when it started and ended."""
        import time

        sink, t0, k = LineSink(lines), time.time(), 0
        while time.time() - t0 < seconds:
            sink(f"job {i} line {k}")
            k += 1
            time.sleep(0.02)
        t1 = time.time()
        sink.wait()                         # as a reproduce job ends: every line is in
        return t0, t1

    lines = line_buffer(ray)
    task = fanout.remote(ray, shards.Engine(max_retries=0), _chatty_job)
    spans = ray.get([task.remote(i, lines, 0.6) for i in range(5)])
    moments = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    running = [sum(d for _, d in moments[:j + 1]) for j in range(len(moments))]
    assert max(running) <= 2
    written = ray.get(lines.drain.remote())
    for i in range(5):
        mine = [int(line.rsplit(" ", 1)[1]) for line in written if line.startswith(f"job {i} ")]
        assert mine and mine == list(range(len(mine)))
