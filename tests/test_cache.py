"""The stage cache and the folder lock: a stage is done only with its files as it wrote them,
a run never trains into another's files, and damaged or missing artifacts are recomputed or
refused by name, never reported as this run's result."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from dwf import ArtifactError, Report, cache, experiments, lock, pipeline


@dataclass(frozen=True)
class Toy:
    """The part of an experiment the cache reads."""
    tag: str = "a"
    seed: int = 0
    name: str = "toy"
    profile: str = "smoke"

    def stage_hash(self, stage: str) -> str:
        return f"{stage}-{self.tag}"

    def to_dict(self) -> dict:
        return {"tag": self.tag}


def _stage(folder: Path, exp: Toy, calls: list, fail: bool = False):
    def compute(d: Path) -> str:
        calls.append(d)
        (d / "sub").mkdir(exist_ok=True)
        (d / "sub" / "value.txt").write_text(exp.tag)
        if fail:
            raise RuntimeError("killed")
        return exp.tag

    return cache.cached_stage(folder, exp, "zoo", lambda d: (d / "sub" / "value.txt").read_text(), compute,
                              lambda name: None)


def test_a_finished_stage_is_loaded_and_records_its_files_seed_threads_and_cpu(tmp_path):
    calls = []
    assert _stage(tmp_path / "s", Toy(), calls)[0] == "a"
    assert _stage(tmp_path / "s", Toy(), calls)[0] == "a" and len(calls) == 1
    rec = cache.read(tmp_path / "s")
    assert rec.seed == 0 and rec.threads == torch.get_num_threads() and list(rec.files) == ["sub/value.txt"]
    assert rec.cpu == torch.backends.cpu.get_cpu_capability() != ""
    assert rec.files["sub/value.txt"].sha256 == cache.digest(tmp_path / "s" / "sub" / "value.txt")


def test_a_deleted_file_makes_the_stage_run_again(tmp_path):
    calls = []
    _stage(tmp_path / "s", Toy(), calls)
    (tmp_path / "s" / "sub" / "value.txt").unlink()
    assert not cache.is_cached(tmp_path / "s", Toy(), "zoo")
    assert _stage(tmp_path / "s", Toy(), calls)[0] == "a" and len(calls) == 2


def test_a_changed_file_is_refused_by_name(tmp_path):
    _stage(tmp_path / "s", Toy(), [])
    (tmp_path / "s" / "sub" / "value.txt").write_text("b")           # same size, other bytes
    with pytest.raises(ArtifactError, match=r"value.txt changed after stage 'zoo'.*Delete"):
        _stage(tmp_path / "s", Toy(), [])


@pytest.mark.parametrize("other", [Toy(tag="b"), Toy(seed=1)])
def test_another_config_or_seed_recomputes_in_a_cleared_folder(tmp_path, other):
    calls = []
    _stage(tmp_path / "s", Toy(), calls)
    (tmp_path / "s" / "stray.txt").write_text("left over")
    assert _stage(tmp_path / "s", other, calls)[0] == other.tag and len(calls) == 2
    assert not (tmp_path / "s" / "stray.txt").exists()


def test_an_unfinished_folder_is_kept_for_the_same_config_only(tmp_path):
    with pytest.raises(RuntimeError):
        _stage(tmp_path / "s", Toy(), [], fail=True)
    assert (tmp_path / "s" / cache.PENDING).exists() and not (tmp_path / "s" / cache.RECORD).exists()
    cache.open_stage(tmp_path / "s", Toy(), "zoo")                     # same config: partial work kept
    assert (tmp_path / "s" / "sub" / "value.txt").exists()
    cache.open_stage(tmp_path / "s", Toy(tag="b"), "zoo")              # another: cleared
    assert not (tmp_path / "s" / "sub").exists()


def test_the_lock_is_reentrant_in_one_thread_and_excludes_other_threads(tmp_path):
    order, errors = [], []

    def try_without_waiting():
        try:
            with lock.locked(tmp_path, wait=False):
                order.append("not excluded")
        except lock.FolderBusy as e:
            errors.append(str(e))

    def wait_then_hold():
        with lock.locked(tmp_path):
            order.append("waiter")

    with lock.locked(tmp_path):
        with lock.locked(tmp_path):                                    # a variant inside its experiment
            order.append("inner")
        other = threading.Thread(target=try_without_waiting)
        other.start()
        other.join()
        waiter = threading.Thread(target=wait_then_hold)
        waiter.start()
        time.sleep(0.2)
        order.append("outer done")
    waiter.join()
    assert order == ["inner", "outer done", "waiter"]
    assert len(errors) == 1 and "another thread" in errors[0]


def test_a_locked_folder_names_its_holder_and_a_killed_holder_frees_it(tmp_path):
    code = ("import sys, time; from dwf.lock import locked\n"
            "with locked(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(lock.FolderBusy, match=f"PID {holder.pid}"):
            with lock.locked(tmp_path, wait=False):
                pass
        os.kill(holder.pid, signal.SIGKILL)                            # a crash: the lock file stays behind
        holder.wait()
        t0 = time.perf_counter()
        with lock.locked(tmp_path, wait=False):                        # ... but the lock is free at once
            assert (tmp_path / lock.LOCK).read_text().split()[0] == str(os.getpid())
        assert time.perf_counter() - t0 < 5
    finally:
        holder.kill()


@pytest.fixture
def iris(artifacts, tmp_path):
    """A private copy of the suite's iris_mlp smoke run, to damage."""
    exp = experiments.get("iris_mlp", "smoke")
    shutil.copytree(Path(artifacts) / exp.name, tmp_path / exp.name)
    return exp, tmp_path, Report.load(pipeline.experiment_dir(exp, artifacts) / "report.json")


def _scores(report: Report) -> list:
    return [p.per_net.score for p in report.populations]


def test_a_stage_file_deleted_as_advised_is_recomputed_to_the_same_result(iris):
    exp, root, before = iris
    (pipeline.stage_dir(exp, "align", root) / "weights.safetensors").unlink()
    after = pipeline.build(exp, root, progress=False).report
    assert _scores(after) == _scores(before)
    assert cache.check(pipeline.stage_dir(exp, "align", root), exp, "align") is not None


def test_a_zoo_swapped_for_another_is_refused(iris, artifacts):
    exp, root, _ = iris
    other = pipeline.stage_dir(experiments.get("fmnist_mlp", "smoke"), "zoo", artifacts)
    for name in ("weights.safetensors", "manifest.json"):
        shutil.copy(other / name, pipeline.stage_dir(exp, "zoo", root) / name)
    with pytest.raises(ArtifactError, match="changed after stage 'zoo'"):
        pipeline.build(exp, root, progress=False)


@pytest.mark.parametrize("damage", [lambda p: p.unlink(), lambda p: p.write_text("{}")])
def test_the_top_level_report_is_rewritten_when_missing_or_edited(iris, damage):
    exp, root, before = iris
    top = pipeline.experiment_dir(exp, root) / "report.json"
    damage(top)
    pipeline.build(exp, root, progress=False)
    assert top.read_bytes() == (pipeline.stage_dir(exp, "report", root) / "report.json").read_bytes()
    assert _scores(Report.load(top)) == _scores(before)


def test_concurrent_cli_runs_into_one_folder_each_end_with_their_own_report(iris):
    """Two runs of seed 0 (one waits for the other's lock, then reuses its stages) and one of
    seed 1 (its own folder), all at once: every run exits 0 with its own seed's numbers."""
    exp, root, before = iris
    shutil.rmtree(root / exp.name)
    runs = [subprocess.Popen([sys.executable, "-m", "dwf", "run", exp.name, "--profile", "smoke", "--seed", str(s),
                              "--artifacts", str(root), "--no-progress"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for s in (0, 0, 1)]
    outs = [r.communicate(timeout=600) for r in runs]
    assert [r.returncode for r in runs] == [0, 0, 0], [err[-2000:] for _, err in outs]
    seed0 = Report.load(pipeline.experiment_dir(exp, root) / "report.json")
    seed1 = Report.load(pipeline.experiment_dir(exp.with_seed(1), root) / "report.json")
    assert _scores(seed0) == _scores(before) and _scores(seed1) != _scores(before)
    assert outs[0][0] == outs[1][0]                                    # both seed-0 runs print the same table
    assert any("waiting for PID" in err for _, err in outs[:2])
    json.loads((root / exp.name / "smoke" / "seed1" / "report.json").read_text())


def test_a_cancelled_build_keeps_its_work_and_resumes_to_the_same_report(artifacts, tmp_path):
    """`cancel` is asked at stage starts, zoo epochs and flow checkpoints: cancelled inside the
    flow stage, the build raises Cancelled; building again resumes from the flow checkpoint and
    gives the report of an uninterrupted build."""
    from dwf import Cancelled
    exp = experiments.get("iris_mlp", "smoke")
    seen = []
    with pytest.raises(Cancelled, match="building again resumes"):
        pipeline.build(exp, tmp_path, progress=False, on_stage=seen.append, cancel=lambda: "flow" in seen)
    assert seen[-1] == "flow" and cache.is_cached(pipeline.stage_dir(exp, "pca", tmp_path), exp, "pca")
    assert (pipeline.stage_dir(exp, "flow", tmp_path) / "r0" / "checkpoint.safetensors").exists()
    resumed = pipeline.build(exp, tmp_path, progress=False).report
    assert _scores(resumed) == _scores(Report.load(pipeline.experiment_dir(exp, artifacts) / "report.json"))
