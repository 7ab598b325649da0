"""Hyperparameters are chosen on validation data: every candidate scored, the best chosen, the
experiment's own cache untouched."""
import pytest

from dwf import ConfigError, experiments, pipeline, selection
from dwf.interval import Interval


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


def _candidate(value: str, mean: float, half: float) -> selection.Candidate:
    iv = Interval(mean, mean - half, mean + half, 3)
    return selection.Candidate(value, iv, iv, iv)


def test_cheapest_rule_takes_the_first_candidate_whose_mean_lies_in_the_best_interval():
    cands = [_candidate("1500", 0.858, 0.010), _candidate("3000", 0.8615, 0.003), _candidate("6000", 0.863, 0.002)]
    assert selection.choose(cands, "best").value == "6000"
    # 1500's interval overlaps 6000's, but its mean lies outside it; 3000's mean lies inside
    assert selection.choose(cands, "cheapest").value == "3000"
    # a best candidate that is also the cheapest is chosen by both rules
    assert selection.choose([_candidate("a", 0.9, 0.0), _candidate("b", 0.5, 0.1)], "cheapest").value == "a"
    # a replicate-free best (zero-width interval) leaves only itself and exact ties
    assert selection.choose([_candidate("a", 0.89, 0.0), _candidate("b", 0.9, 0.0)], "cheapest").value == "b"
    sel = selection.Selection("x", "steps", cands, "3000", "cheapest")
    assert "inside the best candidate's interval" in sel.markdown() and "| 3000 (chosen)" in sel.markdown()
