"""Hyperparameters are chosen on validation data: every candidate scored, the best chosen, the
experiment's own cache untouched."""
import pytest

from dwf import ConfigError, experiments, pipeline, selection


def test_select_scores_every_candidate_on_validation_and_keeps_the_best(artifacts):
    exp = experiments.get("iris_mlp", "smoke")
    report_file = pipeline.experiment_dir(exp, artifacts) / "report.json"
    before = report_file.read_bytes()
    result = selection.select(exp, "hidden", [32, 64], artifacts)
    assert [c.value for c in result.candidates] == ["32", "64"]
    assert result.chosen == max(result.candidates, key=lambda c: c.val_score.mean).value
    assert all(c.val_score.n == exp.eval.replicates for c in result.candidates)
    assert report_file.read_bytes() == before                      # the experiment itself untouched
    assert (pipeline.experiment_dir(exp, artifacts) / "variants" / "select-hidden-32" / "flow" / "r1").exists()
    assert "| 64" in result.markdown() and "(chosen)" in result.markdown()
    with pytest.raises(ConfigError, match="unknown flow field"):
        selection.select(exp, "width", [1], artifacts)
