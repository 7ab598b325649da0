"""Jobs fanned out as Ray tasks (dwf.fanout) return what the same calls return here, in job order,
computed in Ray's worker processes; a failing job stops the whole with an error naming it; and a
report's populations, frontier and transfer, and a zoo's alignment, computed on Ray equal those
computed here."""
from __future__ import annotations

import os

import pytest
import torch

from dwf import DwfError, archs, evaluate as ev, fanout, reporting, shards
from dwf.sample import generate


def test_jobs_here_and_on_ray_give_the_same_results_in_job_order(local_ray):
    def _affine(shared: torch.Tensor, scale: float, shift: float) -> tuple[torch.Tensor, int]:
        return shared * scale + shift, os.getpid()   # (a local function: Ray ships it by value)

    x = torch.arange(6.0)
    jobs = [(float(s), float(-s)) for s in range(5)]
    here = fanout.map_jobs(None, _affine, (x,), jobs)
    there = fanout.map_jobs(shards.Engine(), _affine, (x,), jobs)
    assert [pid for _, pid in here] == [os.getpid()] * len(jobs)
    assert all(pid != os.getpid() for _, pid in there)              # ran in Ray's workers
    for (a, _), (b, _), (s, t) in zip(here, there, jobs):
        assert torch.equal(a, b) and torch.equal(b, x * s + t)


def test_a_failing_job_on_ray_is_a_dwf_error_naming_it(local_ray):
    def _fails(shared, i):
        if i == 2:
            raise ValueError("job 2 is broken")
        return i

    with pytest.raises(DwfError, match="a task of numbers failed on Ray.*job 2 is broken"):
        fanout.map_jobs(shards.Engine(max_retries=0), _fails, (None,), [(i,) for i in range(4)], desc="numbers")


def test_populations_measured_on_ray_equal_those_measured_here(fmnist_smoke_run, one_thread, local_ray):
    run = fmnist_smoke_run
    ctx = reporting.context(run)
    exp = run.experiment
    gens = [{(None, None): generate(f, run.pca, exp.arch, reporting.sample_spec(exp, r), ctx.data.x_train)}
            for r, f in enumerate(run.flows)]
    specs = ev.declared(exp.eval, has_bn=False, held_out=True)
    here, _, _ = ev.evaluate(ctx, specs, gens)
    there, _, _ = ev.evaluate(ctx, specs, gens, shards.Engine())
    assert [p.spec for p in here] == [p.spec for p in there] == specs
    for a, b in zip(here, there):
        assert a.score.mean == pytest.approx(b.score.mean, abs=1e-6), a.name
        assert a.novelty.mean == pytest.approx(b.novelty.mean, rel=1e-5), a.name
        assert a.per_net.score == pytest.approx(b.per_net.score, abs=1e-6), a.name


def test_a_zoo_aligned_on_ray_equals_the_zoo_aligned_here(fmnist_smoke_run, one_thread, local_ray):
    from dwf import align, families
    from dwf.config import AlignSpec

    run = fmnist_smoke_run
    spec = families.symmetry(run.experiment.arch, run.data.x_train)
    here = align.align_zoo(run.zoo, spec, AlignSpec(reference="medoid"))
    there = align.align_zoo(run.zoo, spec, AlignSpec(reference="medoid"), engine=shards.Engine())
    assert here.info["reference"] == there.info["reference"]
    for k in here.params:
        assert torch.allclose(here.params[k], there.params[k], atol=1e-6), k
    assert not torch.allclose(here.vectors(), run.zoo.vectors())       # members did move


def test_a_frontier_swept_on_ray_equals_the_frontier_swept_here(fmnist_smoke_run, one_thread, local_ray):
    from dwf import frontier

    run = fmnist_smoke_run
    ctx = reporting.context(run)
    ref = ev.Reference.of(ctx)
    here = frontier.sweep(run.experiment, ctx, ref, run.flow)
    there = frontier.sweep(run.experiment, ctx, ref, run.flow, engine=shards.Engine())
    assert [(p.family, p.param, p.recipe) for p in here] == [(p.family, p.param, p.recipe) for p in there]
    for a, b in zip(here, there):
        assert a.score == pytest.approx(b.score, abs=1e-6) and a.novelty == pytest.approx(b.novelty, rel=1e-5), a


def test_transfer_fine_tuned_on_ray_equals_transfer_here(one_thread, local_ray):
    from dwf import data as data_mod
    from dwf.config import ArchSpec, DataSpec, TransferSpec
    from dwf.transfer import few_shot, transfer

    digits = data_mod.load(DataSpec("digits")).for_reporting()
    arch = ArchSpec("mlp", 64, (16,), 10)
    task = few_shot(digits, shots=3, val_shots=3, seed=1)
    spec = TransferSpec(DataSpec("digits"), epochs=(0, 2), n_models=2, lr=1e-3, batch_size=10)
    given = [{k: v + 0.1 for k, v in archs.build(arch, seed=s).state_dict().items()} for s in (5, 6)]
    inits = {"random": 2, "given": given}
    here = transfer(arch, inits, task, spec)
    there = transfer(arch, inits, task, spec, engine=shards.Engine())
    assert here.selected_epoch == there.selected_epoch
    for name in inits:
        assert here.test_acc[name] == there.test_acc[name] and here.val_acc[name] == there.val_acc[name], name


def test_a_session_leaves_a_ray_it_did_not_start_running(local_ray):
    import ray

    with fanout.session(shards.Engine()) as r:
        assert r.is_initialized()
    assert ray.is_initialized()                      # the fixture's cluster, still up for others


def test_a_session_ends_the_local_ray_it_started_so_a_killed_process_prints_no_stack_trace():
    """What papermill does to the reproduce notebook's kernel at its end: a SIGTERM. With Ray still
    up that printed a 'SIGTERM received' stack trace under a successful run."""
    import signal
    import subprocess
    import sys

    script = ("import os, signal, ray\n"
              "from dwf import fanout, shards\n"
              "with fanout.session(shards.Engine()) as r:\n"
              "    assert r.is_initialized()\n"
              "assert not ray.is_initialized()\n"
              "os.kill(os.getpid(), signal.SIGTERM)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGTERM, done.stderr[-2000:]
    assert "SIGTERM received" not in done.stderr
