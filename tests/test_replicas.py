"""Zoo replicates: the whole run repeated over independent zoos, each in its own seed folder,
combined into intervals over the zoos' means."""
import dataclasses

import pytest
import torch

from dwf import ConfigError, Interval, Report, Zoo, experiments, pipeline, replicas
from dwf.cli import main
from dwf.record import to_json


def test_zoo_replicates_run_every_stage_per_seed_and_combine_over_zoos(tmp_path, capsys):
    exp = experiments.get("iris_mlp", "smoke")
    assert main(["run", "iris_mlp", "--profile", "smoke", "--zoo-replicates", "2", "--artifacts", str(tmp_path),
                 "--no-progress"]) == 0
    assert "over 2 zoos" in capsys.readouterr().out
    runs = [exp.with_seed(s) for s in (0, 1)]
    # each seed has its own folder and its own zoo: other initializations, other weights
    zoos = [Zoo.load(pipeline.stage_dir(e, "zoo", tmp_path)) for e in runs]
    assert pipeline.experiment_dir(runs[1], tmp_path) == tmp_path / "iris_mlp/smoke/seed1"
    assert not torch.equal(zoos[0].params["fc.0.weight"], zoos[1].params["fc.0.weight"])
    reports = [Report.load(pipeline.experiment_dir(e, tmp_path) / "report.json") for e in runs]
    rep = replicas.ReplicatedReport.load(replicas.path(exp, tmp_path))
    assert rep.seeds == [0, 1] and rep.flow_replicates == exp.eval.replicates
    # the interval is Student's t over the zoo-level means (each the mean over that zoo's flows)
    assert rep.gap == Interval.of([r.gap.mean for r in reports])
    gen = rep.generated
    assert gen.score == Interval.of([r.generated.score.mean for r in reports])
    assert gen.novelty == Interval.of([r.generated.novelty.mean for r in reports])
    assert [p.spec for p in rep.populations] == [p.spec for p in reports[0].populations]
    assert to_json(replicas.combine(reports)) == to_json(rep)
    assert rep.markdown().count("\n| ") == len(rep.populations) + 1   # a header and one row per population


def test_combine_arithmetic_and_refusals(artifacts):
    rep = Report.load(pipeline.experiment_dir(experiments.get("iris_mlp", "smoke"), artifacts) / "report.json")
    g = rep.generated
    shifted = [dataclasses.replace(rep, gap=Interval(m, m, m, 2, False), config={**rep.config, "zoo": {"seed": s}},
                                   populations=[dataclasses.replace(g, score=Interval(0.5 + m, 0, 1, 2))
                                                if p is g else p for p in rep.populations])
               for s, m in enumerate((0.01, 0.03, 0.02))]
    out = replicas.combine(shifted)
    assert out.seeds == [0, 1, 2]
    assert out.gap.mean == pytest.approx(0.02) and out.gap.replicated and out.gap.lo < 0.02 < out.gap.hi
    assert out.generated.score.mean == pytest.approx(0.52)
    one = replicas.combine(shifted[:1])                 # one zoo: no interval to claim
    assert not one.gap.replicated and one.gap.lo == one.gap.hi
    with pytest.raises(ConfigError, match="one experiment"):
        replicas.combine([rep, dataclasses.replace(rep, experiment="other")])
    with pytest.raises(ConfigError, match="missing"):
        replicas.combine([rep, dataclasses.replace(rep, populations=rep.populations[:2])])
    with pytest.raises(ConfigError, match=">= 1"):
        replicas.seeds(experiments.get("iris_mlp", "smoke"), 0)


def test_paper_profile_replicates_the_zoo():
    assert experiments.get("fmnist_mlp", "paper").zoo_replicates == experiments.PAPER_ZOO_REPLICATES >= 3
    assert experiments.get("fmnist_mlp", "quick").zoo_replicates == 1
    q = experiments.get("fmnist_mlp", "quick")
    # the count is not part of any stage's config: no cached stage is invalidated by it
    assert all(dataclasses.replace(q, zoo_replicates=3).stage_hash(s) == q.stage_hash(s) for s in q.STAGES)
