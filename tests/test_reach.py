"""Reach (dwf.reach): the largest novelty within an accuracy loss, exact on hand-made curves, and
measured on a tiny scaling run."""
import math

import pytest

from dwf import baselines, cache, pipeline, reach
from dwf.interval import Interval

from test_scaling import tiny


def test_reach_interpolates_where_the_curve_crosses_the_loss_level():
    loss, nov = [0.001, 0.005, 0.02], [0.1, 0.3, 0.6]
    assert reach.reach_at(loss, nov, 0.003, from_origin=False) == pytest.approx(0.1 + 0.5 * 0.2)
    assert reach.reach_at(loss, nov, 0.05, from_origin=False) == pytest.approx(0.6)    # all within
    assert math.isnan(reach.reach_at(loss, nov, 0.0005, from_origin=False))           # none within
    assert reach.reach_at(loss, nov, 0.0005, from_origin=True) == pytest.approx(0.05)  # from the members
    assert reach.reach_at([0.01], [0.5], 0.003, from_origin=True) == pytest.approx(0.15)


def test_reach_takes_the_farthest_point_of_a_curve_that_turns_back():
    # loses accuracy, then regains it farther out (a second basin): the far point counts
    loss, nov = [0.0, 0.02, 0.001], [0.2, 0.5, 0.9]
    assert reach.reach_at(loss, nov, 0.003, from_origin=False) == pytest.approx(0.9)


def interval(v, half=0.01):
    return Interval(v, v - half, v + half, 3, True)


def test_a_generator_beats_a_rival_only_with_intervals_apart():
    def run(flow, noisy):
        curve = lambda f, v: reach.Curve(f, (1.0,), [interval(0.0)], [interval(0.0)], {0.01: v})  # noqa: E731
        return reach.Reach(64, 0.9, [curve("flow", flow), curve("noisy copies", noisy)])

    assert run(interval(0.6), interval(0.4)).beats("flow", "noisy copies", 0.01) is True
    assert run(interval(0.4), interval(0.6)).beats("flow", "noisy copies", 0.01) is False
    assert run(interval(0.5), interval(0.505)).beats("flow", "noisy copies", 0.01) is None
    nan = Interval(math.nan, math.nan, math.nan, 3, True)
    assert run(nan, interval(0.4)).beats("flow", "noisy copies", 0.01) is False   # the flow reaches nothing


def test_measured_curves_move_away_from_the_members_as_their_knob_turns(tmp_path, monkeypatch):
    exp = tiny(12)
    run = pipeline.build(exp, tmp_path, progress=False)
    r = reach.stored(run, tmp_path)
    assert r.n == 12 and [c.family for c in r.curves] == list(reach.FAMILIES)
    noisy = r.curve("noisy copies")
    assert len(noisy.loss) == len(reach.SIGMAS) and all(iv.n == exp.eval.replicates for iv in noisy.novelty)
    assert noisy.novelty[-1].mean > 10 * noisy.novelty[0].mean         # σ = 0.1 vs 0.001
    assert abs(noisy.loss[0].mean) < 0.02                              # σ = 0.001 changes almost nothing
    lerp = r.curve("interpolations")
    assert lerp.novelty[0].mean < lerp.novelty[-1].mean                # λ = 0.02 vs 0.5
    gauss = r.curve("fitted Gaussian")                                 # std factor 0.25 vs 1.5
    assert gauss.params == baselines.GAUSSIAN_SCALES and gauss.novelty[0].mean < gauss.novelty[-1].mean
    for c in r.curves:
        for level, iv in c.reach.items():
            assert math.isnan(iv.mean) or iv.mean <= max(v.hi for v in c.novelty) + 1e-9

    # stored as a stage: loaded again exactly, without measuring
    measured = reach.measure
    monkeypatch.setattr(reach, "measure", lambda run: pytest.fail("a stored reach was measured again"))
    assert reach.stored(run, tmp_path) == r
    # a reach measured on other knob values (the module's grid changed since) is measured again
    monkeypatch.setattr(reach, "SIGMAS", reach.SIGMAS[:3])
    monkeypatch.setattr(reach, "measure", measured)
    again = reach.stored(run, tmp_path)
    assert again.curve("noisy copies").params == reach.SIGMAS[:3]
    assert again.curve("flow").reach == r.curve("flow").reach                  # the rest measures the same
    # one this version cannot read (another version's fields) is measured again too
    folder = pipeline.stage_dir(exp, "reach", tmp_path)
    (folder / "reach.json").write_text((folder / "reach.json").read_text().replace('"zoo_score"', '"zoo_accuracy"'))
    cache.finish(folder, exp, "reach", 0.0)
    assert reach.stored(run, tmp_path) == again
