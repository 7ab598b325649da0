import json

import torch

from dwf import experiments, pipeline
from dwf.cli import main


def test_iris_smoke_pipeline_and_cache(artifacts):
    exp = experiments.get("iris_mlp", "smoke")
    run = pipeline.build(exp, artifacts, progress=False)
    rep = run.report
    names = [r["name"] for r in rep.rows]
    assert names[:2] == ["zoo", "generated"] and "interpolation" in names
    assert any(n.startswith("noisy") for n in names)
    assert rep.row("zoo")["n"] == exp.zoo.n_models and rep.row("generated")["n"] == exp.sample.n
    assert 0.0 <= rep.row("generated")["acc_mean"] <= 1.0
    # aligned zoo computes the same functions as the trained zoo
    assert abs(rep.row("zoo")["acc_mean"] - float(run.zoo.metric("test_acc").mean())) < 1e-6
    # the second build loads every stage from the cache: identical flow weights, same report
    again = pipeline.build(exp, artifacts, progress=False)
    assert again.report.rows == rep.rows
    for k, v in run.flow.net.state_dict().items():
        assert torch.equal(v, again.flow.net.state_dict()[k])
    assert json.loads((pipeline.experiment_dir(exp, artifacts) / "report.json").read_text())["rows"] == rep.rows


def test_changed_config_recomputes_only_downstream(artifacts, tmp_path):
    import dataclasses
    exp = experiments.get("iris_mlp", "smoke")
    pipeline.build(exp, tmp_path, progress=False)
    zoo_mtime = (tmp_path / "iris_mlp/smoke/zoo/weights.safetensors").stat().st_mtime_ns
    flow_hash = json.loads((tmp_path / "iris_mlp/smoke/flow/stage.json").read_text())["hash"]
    exp2 = dataclasses.replace(exp, flow=dataclasses.replace(exp.flow, steps=exp.flow.steps + 10))
    pipeline.build(exp2, tmp_path, progress=False)
    assert (tmp_path / "iris_mlp/smoke/zoo/weights.safetensors").stat().st_mtime_ns == zoo_mtime
    assert json.loads((tmp_path / "iris_mlp/smoke/flow/stage.json").read_text())["hash"] != flow_hash


def test_cli_list_and_run(artifacts, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "fmnist_mlp" in out and "iris_mlp" in out and "digits_mlp" in out
    assert main(["run", "iris_mlp", "--profile", "smoke", "--artifacts", str(artifacts), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "generated" in out and "noisy" in out and "report.json" in out


def test_pipeline_on_a_batchnorm_cnn(tmp_path):
    """Traced symmetry, alignment with running statistics out of the cost, BN recalibration of
    generated nets on the training split, and the no-recalibration row for comparison."""
    from dwf import ArchSpec, DataSpec, EvalSpec, Experiment, FlowSpec, SampleSpec, ZooSpec, Zoo
    exp = Experiment("fmnist_cnn_test", "smoke", DataSpec("fmnist", train_limit=1024),
                     ArchSpec("cnn", 1, (4, 8), 10), ZooSpec(n_models=6, epochs=1, batch_size=64, lr=3e-3),
                     flow=FlowSpec(steps=100, eval_every=50), sample=SampleSpec(n=6, steps=10, bn_samples=256),
                     eval=EvalSpec(noise_sigmas=(0.01,), n_baseline=4))
    run = pipeline.build(exp, tmp_path, progress=False)
    rep = run.report
    names = [r["name"] for r in rep.rows]
    assert names[:4] == ["zoo", "zoo, BN recalibrated", "generated", "generated, no BN recalibration"]
    # alignment permuted weights and BN statistics together: the zoo computes the same functions
    assert abs(rep.row("zoo")["acc_mean"] - float(run.zoo.metric("test_acc").mean())) < 1e-6
    assert max(run.aligned.info["dist_to_ref_after"]) <= max(run.aligned.info["dist_to_ref_before"]) + 1e-6
    assert rep.extras["interpolation"]["aligned_barrier"] >= 0.0
    saved = Zoo.load(pipeline.experiment_dir(exp, tmp_path) / "report" / "generated")
    bn_mean = [k for k in saved.params if k.endswith("running_mean")]
    assert bn_mean and saved.n == 6
    # recalibrated statistics are per-net, not one shared copy
    assert not torch.allclose(saved.params[bn_mean[0]][0], saved.params[bn_mean[0]][1])


def test_a_variant_shares_the_zoo_and_keeps_its_own_later_stages(artifacts, tmp_path):
    import dataclasses
    import shutil

    import pytest

    from dwf import AlignSpec, ConfigError, EvalSpec
    exp = experiments.get("iris_mlp", "smoke")
    root = tmp_path / "a"
    shutil.copytree(artifacts / "iris_mlp", root / "iris_mlp")
    zoo_file = root / "iris_mlp/smoke/zoo/weights.safetensors"
    before = zoo_file.stat().st_mtime_ns
    base_report = (root / "iris_mlp/smoke/report.json").read_text()
    var = exp.ablation("unaligned", align=AlignSpec(method="none"),
                       eval=EvalSpec(noise_sigmas=(), n_baseline=0, interpolation=False))
    run = pipeline.build(var, root, progress=False)
    assert zoo_file.stat().st_mtime_ns == before                      # the zoo was reused
    assert pipeline.experiment_dir(var, root) == root / "iris_mlp/smoke/variants/unaligned"
    assert (pipeline.experiment_dir(var, root) / "flow" / "stage.json").exists()
    assert (root / "iris_mlp/smoke/report.json").read_text() == base_report   # untouched
    assert run.report.variant == "unaligned" and not run.aligned.info["aligned"]
    assert [r["name"] for r in run.report.rows] == ["zoo", "generated"]   # no baselines asked for
    assert "interpolation" not in run.report.extras
    assert pipeline.is_built(var, root) and pipeline.is_built(exp, root)
    with pytest.raises(ConfigError, match="shares the zoo"):
        exp.ablation("bigger", zoo=dataclasses.replace(exp.zoo, n_models=9))
    with pytest.raises(ConfigError, match="plain, non-empty name"):
        exp.ablation("a/b", align=AlignSpec(method="none"))


def test_pipeline_on_a_vit_aligns_with_transfusion(artifacts):
    """The ViT smoke run: TransFusion aligns the zoo without changing any member's function,
    the unaligned variant shares the zoo, and weight matching is refused for a transformer."""
    import pytest

    from dwf import AlignSpec, ConfigError
    from dwf.align import align_zoo
    exp = experiments.get("fmnist_vit", "smoke")
    assert exp.align.method == "transfusion"
    run = pipeline.build(exp, artifacts, progress=False)
    rep = run.report
    assert abs(rep.row("zoo")["acc_mean"] - float(run.zoo.metric("test_acc").mean())) < 1e-6
    after, before = run.aligned.info["dist_to_ref_after"], run.aligned.info["dist_to_ref_before"]
    assert sum(after) < sum(before)
    assert rep.extras["interpolation"]["aligned_barrier"] >= 0.0
    unaligned = pipeline.build(experiments.ablations(exp)[0], artifacts, progress=False)
    assert not unaligned.aligned.info["aligned"] and unaligned.report.variant == "unaligned"
    with pytest.raises(ConfigError, match="does not fit this architecture"):
        align_zoo(run.zoo, pipeline.symmetry(exp, run.data), AlignSpec(method="weight_matching"))


def test_pipeline_on_a_bert_regressor_scores_spearman(artifacts):
    """vader_tinybert smoke: a regression zoo (MSE, validation Spearman), TransFusion on HF BERT,
    reports in Spearman ρ with residual-correlation novelty."""
    from scipy.stats import spearmanr

    from dwf import archs, stacked
    from dwf.task import REGRESSION
    exp = experiments.get("vader_tinybert", "smoke")
    run = pipeline.build(exp, artifacts, progress=False)
    rep = run.report
    assert rep.metric == "Spearman ρ" and "transfer" not in rep.extras
    # the zoo row's score is Spearman's ρ of each aligned member's predictions (scipy agrees)
    preds = stacked.predict(archs.build(exp.arch), run.aligned.params, run.data.x_test, task=REGRESSION)
    rho = [spearmanr(p.numpy(), run.data.y_test.numpy()).statistic for p in preds]
    assert torch.allclose(torch.tensor(rep.populations["zoo"]["acc"]), torch.tensor(rho, dtype=torch.float32), atol=1e-5)
    # aligned members compute the same functions (ρ moves only where float rounding reorders
    # near-tied predictions of these barely trained nets)
    assert abs(rep.row("zoo")["acc_mean"] - float(run.zoo.metric("test_acc").mean())) < 1e-3
    assert all(-1.0 <= r["max_iou"] <= 1.0 for r in rep.rows)
    assert "| Spearman ρ |" in rep.markdown_rows()
