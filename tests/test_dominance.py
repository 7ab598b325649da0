"""dwf.dominance: the generated nets against the noisy-copy curve at their own novelty, on a real
smoke report whose populations are replaced by chosen intervals (so every outcome is known)."""
from dataclasses import replace

import pytest

from dwf import Interval, PopulationSpec, dominance, readme, tables


def iv(mean: float, half: float = 0.0) -> Interval:
    return Interval(mean, mean - half, mean + half, 3, half > 0)


def with_populations(report, *, zoo=0.80, noisy=((0.2, 0.72, 0.02),), generated=(0.1, 0.78, 0.01),
                     points=(), memorized=0.0):
    """`report` with a zoo scoring `zoo`, noisy copies (novelty, score, half-width) per σ,
    the generated nets at (novelty, score, half-width) with a `memorized` share, and point
    baselines (source, novelty, score)."""
    template = report.generated
    pops = [replace(template, spec=PopulationSpec("zoo", "own"), name="zoo", score=iv(zoo), novelty=iv(0.0))]
    pops += [replace(template, spec=PopulationSpec("noisy", sigma=0.01 * (i + 1)), name=f"noisy {i}",
                     score=iv(s, h), novelty=iv(n)) for i, (n, s, h) in enumerate(noisy)]
    n, s, h = generated
    pops.append(replace(template, spec=report.generated.spec, name="generated", score=iv(s, h), novelty=iv(n),
                        memorized=iv(memorized)))
    pops += [replace(template, spec=PopulationSpec(src), name=src, score=iv(s), novelty=iv(n)) for src, n, s in points]
    return replace(report, populations=pops)


@pytest.fixture(scope="module")
def report(fmnist_smoke_run):
    return fmnist_smoke_run.report


def test_the_curve_interpolates_between_the_members_and_each_sigma():
    noisy = [(0.4, iv(0.60, 0.04)), (0.2, iv(0.72, 0.02))]      # any order
    c = dominance.noisy_curve(0.80, noisy, 0.1)           # halfway from the members to σ₁
    assert (c.mean, c.lo, c.hi) == pytest.approx((0.76, 0.75, 0.77))
    c = dominance.noisy_curve(0.80, noisy, 0.3)           # halfway from σ₁ to σ₂
    assert (c.mean, c.lo, c.hi) == pytest.approx((0.66, 0.63, 0.69))
    assert dominance.noisy_curve(0.80, noisy, 0.0).mean == pytest.approx(0.80)
    assert dominance.noisy_curve(0.80, noisy, 0.41) is None


@pytest.mark.parametrize("generated, outcome", [
    ((0.1, 0.785, 0.005), "beats"),     # [0.78, 0.79] above the curve's [0.75, 0.77]
    ((0.1, 0.72, 0.02), "loses"),       # [0.70, 0.74] below it
    ((0.1, 0.77, 0.01), "ties"),        # [0.76, 0.78] overlaps it
    ((0.3, 0.79, 0.001), "beyond"),     # no σ made copies that novel
])
def test_each_outcome(report, generated, outcome):
    d = dominance.of(with_populations(report, generated=generated))
    assert d.outcome == outcome
    assert d.beats_noisy_copies == {"beats": True, "loses": False}.get(outcome)
    assert (d.noisy is None) == (outcome == "beyond")


def test_nets_above_the_curve_that_memorize_only_copy_and_are_not_a_win(report):
    """A flow that copies one better-than-average member lies above copies of every member."""
    r = with_populations(report, generated=(0.1, 0.785, 0.005), memorized=0.9)
    d = dominance.of(r)
    assert d.outcome == "copies" and d.beats_noisy_copies is None
    assert "only by COPYING" in dominance.sentence(r, d) and "90% of them are near-copies" in dominance.sentence(r, d)


def test_noisy_copies_themselves_tie_with_the_curve(report):
    """A 'generator' that is one of the noisy populations sits on the curve: never beats it."""
    r = with_populations(report, noisy=((0.2, 0.72, 0.02), (0.5, 0.55, 0.03)), generated=(0.2, 0.72, 0.02))
    assert dominance.of(r).outcome == "ties"


def test_point_baselines_dominate_only_when_as_accurate_and_as_novel(report):
    r = with_populations(report, points=(("code_gaussian", 0.9, 0.79), ("interpolation", 0.5, 0.60),
                                         ("encode_decode", 0.0, 0.80)))
    assert dominance.of(r).dominated_by == ("code_gaussian",)


def test_results_md_and_json_state_it_per_experiment(report):
    r = with_populations(report, generated=(0.1, 0.72, 0.02))
    md = tables.results_markdown([r])
    assert "## Against noisy copies" in md and "LOSE to noisy copies" in md
    summary = tables.results_json([r])
    row = summary["experiments"][0]["noisy_copies"]
    assert row["outcome"] == "loses" and row["noisy"]["mean"] == pytest.approx(0.76)
    assert f"- {row['sentence']}." in readme.block(summary).splitlines()   # README says it too
