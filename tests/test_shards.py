"""A zoo trained in shards (here, and as tasks on a local Ray cluster) is the zoo trained at once:
same members, same best epochs, weights equal up to the summation order of batched kernels
(~1e-8 at one thread); a shard whose worker dies is retried and resumes from its last epoch; a
pipeline run on Ray reports what a run without it reports."""
from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest
import torch

from dwf import ConfigError, data, experiments, pipeline, shards
from dwf.zoo import train_zoo


def _assert_same_zoo(a, b):
    assert a.n == b.n
    for k, v in b.params.items():
        assert torch.allclose(a.params[k], v, atol=1e-6, rtol=0), k
    assert [(m["seed"], m["best_epoch"]) for m in a.models] == [(m["seed"], m["best_epoch"]) for m in b.models]
    for ma, mb in zip(a.models, b.models):
        assert ma["val_acc"] == pytest.approx(mb["val_acc"], abs=1e-9)
        assert ma["train_loss"] == pytest.approx(mb["train_loss"], rel=1e-5)


def test_shards_cover_the_zoo_in_order_and_the_engine_reads_its_address(monkeypatch):
    monkeypatch.setenv("DWF_RAY_ADDRESS", "head:6379")
    assert shards.Engine.from_env("").address == "head:6379"          # --ray alone: the environment's
    assert shards.Engine.from_env("other:1", 4) == shards.Engine("other:1", 4)
    monkeypatch.delenv("DWF_RAY_ADDRESS")
    assert shards.Engine.from_env("").address is None                  # a local Ray
    assert shards.shard_ranges(8, 3) == [range(0, 3), range(3, 6), range(6, 8)]
    assert shards.shard_ranges(4, 8) == [range(0, 4)]
    with pytest.raises(ConfigError, match="cannot be split"):
        shards.shard_ranges(4, 0)
    with pytest.raises(ConfigError, match="shard_size >= 1"):
        shards.Engine(shard_size=0)


@pytest.mark.parametrize("order", ["rotated", "independent"])
def test_a_zoo_trained_in_shards_here_is_the_zoo_trained_at_once(tmp_path, one_thread, order):
    exp = experiments.get("iris_mlp", "smoke")
    spec = replace(exp.zoo, data_order=order)
    ds = data.load(exp.data)
    whole = train_zoo(ds, exp.arch, spec, progress=False)
    sharded = shards.train_sharded(ds, exp.data, exp.arch, spec, tmp_path, shards.Engine(shard_size=3), on_ray=False)
    _assert_same_zoo(sharded, whole)
    assert sharded.info["shards"] == [3, 3, 2] and not (tmp_path / "shards").exists()


def test_shards_on_ray_survive_a_killed_worker_and_equal_the_zoo_trained_at_once(tmp_path, one_thread, local_ray,
                                                                                   capfd):
    exp = experiments.get("iris_mlp", "smoke")
    ds = data.load(exp.data)
    died, seen = tmp_path / "died", tmp_path / "epochs.log"

    def hook(members, epoch):          # runs on the worker; the shard [3, 6) dies once, after epoch 0
        with open(seen, "a") as f:
            f.write(f"{members.start}:{epoch}\n")
        if members.start == 3 and epoch == 0 and not died.exists():
            died.touch()
            os._exit(1)

    zoo = shards.train_sharded(ds, exp.data, exp.arch, exp.zoo, tmp_path / "zoo", shards.Engine(shard_size=3),
                               on_epoch_end=hook, progress=True)
    assert died.exists()                                   # a worker was killed mid-shard …
    total = exp.zoo.n_models * exp.zoo.epochs              # the bar counts the workers' member-epochs
    assert f"{total}/{total}" in capfd.readouterr().err
    epochs = [line for line in seen.read_text().split() if line.startswith("3:")]
    assert sorted(epochs) == [f"3:{e}" for e in range(exp.zoo.epochs)]   # … and its retry resumed at epoch 1
    _assert_same_zoo(zoo, train_zoo(ds, exp.arch, exp.zoo, progress=False))


def test_a_run_on_ray_reports_what_a_run_without_it_reports(tmp_path, one_thread, local_ray):
    exp = experiments.get("iris_mlp", "smoke")
    here = pipeline.build(exp, tmp_path / "here", progress=False)
    on_ray = pipeline.build(exp, tmp_path / "ray", progress=False, engine=shards.Engine(shard_size=3))
    _assert_same_zoo(on_ray.zoo, here.zoo)
    report = lambda root: json.loads((pipeline.experiment_dir(exp, root) / "report.json").read_text())  # noqa: E731
    a, b = report(tmp_path / "ray"), report(tmp_path / "here")
    assert a.pop("timings") and b.pop("timings")
    assert _leaves(a).keys() == _leaves(b).keys()
    for k, v in _leaves(b).items():      # every number the same up to float noise, every text the same
        assert _leaves(a)[k] == (pytest.approx(v, rel=1e-4, abs=1e-6) if isinstance(v, float) else v), k


def _leaves(tree, path="") -> dict:
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _leaves(sub, f"{path}.{key}").items()}
    if isinstance(tree, list):
        return {k: v for i, sub in enumerate(tree) for k, v in _leaves(sub, f"{path}[{i}]").items()}
    return {path: tree}


def test_ray_is_refused_with_a_reason_where_it_does_not_apply(capsys, tmp_path):
    from dwf import cli
    assert cli.main(["run", "digits_mlp", "--profile", "scale", "--ray", "--artifacts", str(tmp_path)]) == 2
    assert "--ray trains one experiment's zoo in shards" in capsys.readouterr().err
    assert cli.main(["run", "fmnist_digits_mlp", "--ray", "--artifacts", str(tmp_path)]) == 2
    assert "run them with --ray first" in capsys.readouterr().err
