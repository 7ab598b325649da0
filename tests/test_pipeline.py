"""The pipeline end to end on smoke runs: held-out split, replicates, declared populations, the
cache (reuse checked by file times), variants measured in the aligned space, BatchNorm controls."""
import dataclasses
import json
import math

import pytest
import torch

from dwf import (AlignSpec, ConfigError, EvalSpec, Generated, PopulationSpec as S, Report, archs, evaluate,
                 experiments, families, pipeline, stacked)
from dwf.cli import main
from dwf.record import to_json
from dwf.task import task_for


def _trained_scores(run, idx):
    """Test scores of the trained (unaligned) members `idx`, computed directly."""
    d = run.data.for_reporting()
    task = task_for(d)
    preds = stacked.predict(archs.build(run.experiment.arch), run.zoo.select(idx).params, d.x_test, task=task)
    return task.score(preds, d.y_test)


def test_iris_smoke_pipeline_split_replicates_and_cache(artifacts):
    exp = experiments.get("iris_mlp", "smoke")
    run = pipeline.build(exp, artifacts, progress=False)
    rep = run.report
    # held-out members: a seeded quarter, disjoint from the fitting members, never the reference
    n = exp.zoo.n_models
    assert sorted(run.fit_idx + run.held_idx) == list(range(n)) and len(run.held_idx) == math.ceil(0.25 * n)
    assert rep.zoo.reference in run.fit_idx and rep.zoo.held_out == run.held_idx
    assert run.pca.n_components_ == len(run.fit_idx) - 1           # PCA saw only the fitting members
    assert [p.spec for p in rep.populations] == evaluate.declared(exp.eval, has_bn=False)
    assert rep.replicates == exp.eval.replicates == len(run.flows) == 2
    assert rep.zoo_population.n == len(run.fit_idx) and rep.held_out.n == len(run.held_idx)
    assert rep.generated.n == exp.sample.n
    # aligned members compute the functions they were trained to
    assert torch.allclose(torch.tensor(rep.zoo_population.per_net.score), _trained_scores(run, run.fit_idx))
    # members against themselves: novelty 1 by construction; a full-rank PCA decodes them exactly
    assert rep.zoo_population.novelty.mean == pytest.approx(1.0)
    assert rep.held_out.novelty_held_out.mean == pytest.approx(1.0)
    floor = rep.population(S("encode_decode"))
    assert floor.novelty.mean < 1e-3 and floor.per_net.score == rep.zoo_population.per_net.score
    # replicate flows are fitted with their own seeds
    assert not torch.equal(run.flows[0].net.net[-1].weight, run.flows[1].net.net[-1].weight)
    # the second build loads every stage from the cache: identical report and flows
    again = pipeline.build(exp, artifacts, progress=False)
    assert to_json(again.report) == to_json(rep)
    for k, v in run.flow.net.state_dict().items():
        assert torch.equal(v, again.flow.net.state_dict()[k])
    on_disk = Report.load(pipeline.experiment_dir(exp, artifacts) / "report.json")
    assert on_disk.gap == rep.gap and [p.name for p in on_disk.populations] == [p.name for p in rep.populations]
    gen = Generated.load(pipeline.stage_dir(exp, "report", artifacts) / "generated" / "r1")
    assert gen.spec.seed == exp.sample.seed + 1 and gen.n == exp.sample.n


def test_changed_config_recomputes_only_downstream_and_new_replicates_reuse_old_flows(tmp_path):
    exp = experiments.get("iris_mlp", "smoke")
    pipeline.build(exp, tmp_path, progress=False, evaluate=False)
    d = tmp_path / "iris_mlp/smoke/seed0"
    mtime = lambda rel: (d / rel).stat().st_mtime_ns  # noqa: E731
    before = {f: mtime(f) for f in ("zoo/weights.safetensors", "align/weights.safetensors",
                                    "pca/pca.safetensors", "flow/r0/flow.safetensors", "flow/r1/flow.safetensors")}
    more = dataclasses.replace(exp, eval=dataclasses.replace(exp.eval, replicates=3))
    run = pipeline.build(more, tmp_path, progress=False, evaluate=False)
    assert len(run.flows) == 3 and {f: mtime(f) for f in before} == before     # only r2 was fitted
    flow_hash = json.loads((d / "flow/r0/stage.json").read_text())["hash"]
    longer = dataclasses.replace(exp, flow=dataclasses.replace(exp.flow, steps=exp.flow.steps + 10))
    pipeline.build(longer, tmp_path, progress=False, evaluate=False)
    for f in ("zoo/weights.safetensors", "align/weights.safetensors", "pca/pca.safetensors"):
        assert mtime(f) == before[f], f
    assert json.loads((d / "flow/r0/stage.json").read_text())["hash"] != flow_hash


def test_cli_list_and_run(artifacts, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "fmnist_mlp" in out and "iris_mlp" in out and "MLP 64-32-32-10" in out
    assert main(["run", "iris_mlp", "--profile", "smoke", "--artifacts", str(artifacts), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "held-out members" in out and "noisy copies" in out and "report.json" in out
    assert "generated − zoo" in out


def test_pipeline_on_a_batchnorm_cnn(tmp_path):
    """Traced symmetry, alignment with running statistics out of the cost, BN recalibration of
    generated nets on the training split, and the two BatchNorm controls on members and nets."""
    from dwf import ArchSpec, DataSpec, Experiment, FlowSpec, SampleSpec, ZooSpec
    exp = Experiment("fmnist_cnn_test", "smoke", DataSpec("fmnist", train_limit=1024, val_limit=500, test_limit=2000),
                     ArchSpec("cnn", 1, (4, 8), 10), ZooSpec(n_models=6, epochs=1, batch_size=64, lr=3e-3),
                     flow=FlowSpec(steps=100, eval_every=50), sample=SampleSpec(n=6, steps=10, bn_samples=256),
                     eval=EvalSpec(noise_sigmas=(0.01,), n_baseline=4, replicates=2))
    run = pipeline.build(exp, tmp_path, progress=False)
    rep = run.report
    assert [p.spec for p in rep.populations][:8] == [
        S("zoo", "own"), S("held_out", "own"), S("generated"), S("zoo", "recalibrate"), S("zoo", "member"),
        S("generated", "member"), S("zoo", "mean"), S("generated", "mean")]
    # alignment permuted weights and BN statistics together: the members compute the same functions
    assert torch.allclose(torch.tensor(rep.zoo_population.per_net.score), _trained_scores(run, run.fit_idx))
    # the paper's control copies the reference member's statistics: for that member, nothing changes
    i = run.fit_idx.index(rep.zoo.reference)
    assert rep.population(S("zoo", "member")).per_net.score[i] == rep.zoo_population.per_net.score[i]
    # the controls change statistics only: every member keeps its own weights (same vectors)
    for bn in ("member", "mean", "recalibrate"):
        assert rep.population(S("zoo", bn)).novelty.mean == pytest.approx(1.0), bn
        assert rep.population(S("zoo", bn)).per_net.novelty == rep.zoo_population.per_net.novelty
    saved = Generated.load(pipeline.stage_dir(exp, "report", tmp_path) / "generated" / "r0")
    bn_mean = [k for k in saved.params if k.endswith("running_mean")]
    assert bn_mean and saved.n == 6 and saved.bn_seconds > 0
    # recalibrated statistics are per-net, not one shared copy
    assert not torch.allclose(saved.params[bn_mean[0]][0], saved.params[bn_mean[0]][1])


def test_a_variant_shares_the_zoo_and_is_measured_in_the_aligned_space(artifacts, tmp_path):
    import shutil

    exp = experiments.get("iris_mlp", "smoke")
    root = tmp_path / "a"
    shutil.copytree(artifacts / "iris_mlp", root / "iris_mlp")
    zoo_file = root / "iris_mlp/smoke/seed0/zoo/weights.safetensors"
    before = zoo_file.stat().st_mtime_ns
    base = pipeline.build(exp, root, progress=False).report
    base_json = (root / "iris_mlp/smoke/seed0/report.json").read_text()
    var = exp.ablation("unaligned", align=AlignSpec(method="none"),
                       eval=dataclasses.replace(exp.eval, noise_sigmas=(), n_baseline=0, interpolation=False))
    run = pipeline.build(var, root, progress=False)
    assert zoo_file.stat().st_mtime_ns == before                      # the zoo was reused
    assert pipeline.experiment_dir(var, root) == root / "iris_mlp/smoke/seed0/variants/unaligned"
    assert (root / "iris_mlp/smoke/seed0/report.json").read_text() == base_json   # untouched
    assert run.report.variant == "unaligned" and not run.aligned.info["aligned"]
    assert [p.spec for p in run.report.populations] == [S("zoo", "own"), S("held_out", "own"), S("generated")]
    assert run.report.barrier is None
    # one space: the unaligned flow's nets are aligned to the reference before distances are
    # taken, so the members' scale is the aligned experiment's (one hidden layer: one exact LAP)
    assert run.report.zoo.median_nn == pytest.approx(base.zoo.median_nn, rel=1e-5)
    assert pipeline.is_built(var, root) and pipeline.is_built(exp, root)
    with pytest.raises(ConfigError, match="shares the zoo"):
        exp.ablation("bigger", zoo=dataclasses.replace(exp.zoo, n_models=9))
    with pytest.raises(ConfigError, match="plain, non-empty name"):
        exp.ablation("a/b", align=AlignSpec(method="none"))


def test_a_variant_that_only_samples_colder_copies_its_twins_stages_instead_of_refitting(artifacts, tmp_path,
                                                                                       monkeypatch):
    """A recipe that changes only the sampling temperature has the experiment's alignment, PCA
    and flows: they are copied (bit for bit, record included), not recomputed, while its report
    is its own; a variant with another flow still fits one."""
    import shutil

    from dwf import recipe

    exp = experiments.get("iris_mlp", "smoke")
    shutil.copytree(artifacts / "iris_mlp", tmp_path / "iris_mlp")
    base = pipeline.build(exp, tmp_path, progress=False)
    cold = recipe.named(["t0.5"])[0].apply(exp)
    assert cold.flow == exp.flow and cold.sample.source_std == 0.5 * exp.flow.source_std

    def refit(*args, **kwargs):
        raise AssertionError("a stage with a finished twin was computed again")

    monkeypatch.setattr(pipeline.flow_mod, "fit_many", refit)
    monkeypatch.setattr(pipeline, "align_zoo", refit)
    monkeypatch.setattr(pipeline.DualPCA, "fit", refit)
    run = pipeline.build(cold, tmp_path, progress=False)
    here, there = pipeline.experiment_dir(cold, tmp_path), pipeline.experiment_dir(exp, tmp_path)
    for rel in ("align", "pca", *(f"flow/r{r}" for r in range(exp.eval.replicates))):
        files = sorted(p.relative_to(there / rel) for p in (there / rel).rglob("*") if p.is_file())
        assert files and all((here / rel / f).read_bytes() == (there / rel / f).read_bytes() for f in files), rel
    assert not list(here.rglob(".*copying"))
    for f, g in zip(run.flows, base.flows):
        assert all(torch.equal(v, g.net.state_dict()[k]) for k, v in f.net.state_dict().items())
    # its own samples, from the colder source: same flows, other nets
    assert run.report.generated.per_net.novelty != base.report.generated.per_net.novelty
    # no twin for another flow: that variant fits its own
    wide = recipe.Recipe("h8", hidden=8).apply(exp)
    with pytest.raises(AssertionError, match="computed again"):
        pipeline.build(wide, tmp_path, progress=False)
    assert not pipeline.reuse_twin(pipeline.flow_folders(wide, tmp_path)[0], wide, "flow", tmp_path)


def test_an_experiment_and_its_ablations_fit_their_flows_together(tmp_path, artifacts):
    """fit_flows stacks the flows of runs of one flow shape; each is the flow its run fits alone
    (the session's artifacts built every run on its own), and build then loads it."""
    exp = experiments.get("iris_mlp", "smoke")
    group = [exp, *experiments.ablations(exp)]   # unaligned, flow-h64, flow-h64-unaligned
    assert pipeline.fit_flows(group, tmp_path) == sum(e.eval.replicates for e in group)
    assert all(pipeline.is_built(e, tmp_path, "flow") for e in group)
    assert pipeline.fit_flows(group, tmp_path) == 0                      # cached: nothing refitted
    for e in group:
        together, alone = (pipeline.build(e, root, progress=False, evaluate=False) for root in (tmp_path, artifacts))
        for f, g in zip(together.flows, alone.flows):
            assert f.spec == g.spec and torch.equal(f.scale, g.scale)
            for k, v in g.net.state_dict().items():
                assert torch.allclose(f.net.state_dict()[k], v, atol=1e-4), (e.variant, k)


def test_pipeline_on_a_vit_aligns_with_transfusion(artifacts):
    """The ViT smoke run: TransFusion aligns the zoo without changing any member's function,
    the unaligned variant shares the zoo, and weight matching is refused for a transformer."""
    from dwf.align import align_zoo
    exp = experiments.get("fmnist_vit", "smoke")
    assert exp.align.method == "transfusion"
    run = pipeline.build(exp, artifacts, progress=False)
    rep = run.report
    assert torch.allclose(torch.tensor(rep.zoo_population.per_net.score), _trained_scores(run, run.fit_idx))
    after, before = run.aligned.info["dist_to_ref_after"], run.aligned.info["dist_to_ref_before"]
    assert sum(after) < sum(before)
    unaligned = pipeline.build(experiments.ablations(exp)[0], artifacts, progress=False)
    assert not unaligned.aligned.info["aligned"] and unaligned.report.variant == "unaligned"
    with pytest.raises(ConfigError, match="does not fit this architecture"):
        align_zoo(run.zoo, families.symmetry(exp.arch, run.data.x_train), AlignSpec(method="weight_matching"))


def test_pipeline_on_a_bert_regressor_scores_spearman(artifacts):
    """vader_tinybert smoke: a regression zoo (MSE, validation Spearman), TransFusion on HF BERT,
    reports in Spearman ρ with residual-correlation error similarity."""
    from scipy.stats import spearmanr

    exp = experiments.get("vader_tinybert", "smoke")
    run = pipeline.build(exp, artifacts, progress=False)
    rep = run.report
    assert rep.metric == "Spearman ρ" and rep.transfer == []
    # the members' score is Spearman's ρ of each aligned member's predictions (scipy agrees)
    d = run.data.for_reporting()
    preds = stacked.predict(archs.build(exp.arch), run.fit.params, d.x_test, task=task_for(d))
    rho = [spearmanr(p.numpy(), d.y_test.numpy()).statistic for p in preds]
    assert torch.allclose(torch.tensor(rep.zoo_population.per_net.score), torch.tensor(rho, dtype=torch.float32),
                          atol=1e-5)
    # aligned members compute the same functions (ρ moves only where float rounding reorders
    # near-tied predictions of these barely trained nets)
    assert torch.allclose(torch.tensor(rep.zoo_population.per_net.score), _trained_scores(run, run.fit_idx),
                          atol=1e-3)
    assert "Spearman ρ" in rep.table()
