"""Do the generated nets beat noisy copies of the zoo on the score–novelty plane?

Noisy copies (fitting members plus N(0, σ²) weight noise) trace a curve: from the members
themselves (novelty 0, the members' score) through one point per σ of the report, each with its
replicate-mean novelty ν_σ and score interval S_σ = [lo, hi]. At the generated nets' mean novelty
ν_g the curve's score C(ν_g) is the linear interpolation of (lo, mean, hi) between the two points
whose novelties enclose ν_g. With G the generated nets' score interval:

    beats    G.lo > C.hi      the generated nets are more accurate than noisy copies as novel
    loses    G.hi < C.lo      noisy copies as novel are more accurate
    ties     otherwise        the intervals overlap: as accurate, within what the replicates resolve
    beyond   ν_g > max ν_σ    no σ of the report made copies that novel: the question stays open
    copies   beats, but the generated nets memorize (most are near-copies of one member): they
             score what the members they copy score, which is no win over copies of every member

The other trivial generators of a report (interpolations, a Gaussian over the PCA codes, the
members through encode → decode) are single points: one dominates the generated nets when its mean
score and its mean novelty are both at least theirs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .interval import Interval
from .report import Report

Outcome = Literal["beats", "loses", "ties", "beyond", "copies"]
POINT_BASELINES = ("interpolation", "code_gaussian", "encode_decode")


@dataclass(frozen=True)
class Dominance:
    name: str                       # experiment[/variant]
    novelty: float                  # ν_g, the generated nets' mean novelty
    generated: Interval             # G, their score
    noisy: Interval | None          # C(ν_g), the noisy-copy curve's score there (None: beyond)
    outcome: Outcome
    dominated_by: tuple[str, ...]   # display names of point baselines as accurate and as novel

    @property
    def beats_noisy_copies(self) -> bool | None:
        """True / False where the intervals decide; None where they overlap or no σ was that novel."""
        return {"beats": True, "loses": False}.get(self.outcome)


def noisy_curve(zoo_score: float, noisy: list[tuple[float, Interval]], novelty: float) -> Interval | None:
    """C(ν): the noisy-copy score interval at `novelty`, linear between the (novelty, score)
    points around it (the first point is the members: novelty 0, score `zoo_score`); None beyond
    the last point."""
    pts = [(0.0, Interval(zoo_score, zoo_score, zoo_score, 1, False))] + sorted(noisy, key=lambda t: t[0])
    for (n0, s0), (n1, s1) in zip(pts, pts[1:]):
        if n0 <= novelty <= n1:
            w = 0.0 if n1 == n0 else (novelty - n0) / (n1 - n0)
            lerp = lambda a, b: (1 - w) * a + w * b  # noqa: E731
            return Interval(lerp(s0.mean, s1.mean), lerp(s0.lo, s1.lo), lerp(s0.hi, s1.hi),
                            min(s0.n, s1.n), s0.replicated or s1.replicated)
    return None


def of(report: Report) -> Dominance:
    """Where the report's generated nets sit against its noisy copies and point baselines."""
    g = report.generated
    noisy = [(p.novelty.mean, p.score) for p in report.populations if p.spec.source == "noisy"]
    c = noisy_curve(report.zoo_population.score.mean, noisy, g.novelty.mean) if noisy else None
    if c is None:
        outcome: Outcome = "beyond"
    elif g.score.lo > c.hi:
        outcome = "copies" if g.memorizes else "beats"
    elif g.score.hi < c.lo:
        outcome = "loses"
    else:
        outcome = "ties"
    rivals = tuple(p.name for p in report.populations if p.spec.source in POINT_BASELINES
                   and p.score.mean >= g.score.mean and p.novelty.mean >= g.novelty.mean)
    name = report.experiment + (f"/{report.variant}" if report.variant else "")
    return Dominance(name, g.novelty.mean, g.score, c, outcome, rivals)


def sentence(report: Report, d: Dominance | None = None) -> str:
    """One line for results.md and README: the outcome, the two scores and the novelty."""
    d = d or of(report)
    g = report.fmt_interval(d.generated)
    if d.noisy is None:
        head = (f"{d.name}: no noisy copies as novel as the generated nets (novelty {d.novelty:.3f}; "
                "the largest σ stays below), so the comparison is open")
    else:
        word = {"beats": "BEAT noisy copies", "loses": "LOSE to noisy copies",
                "ties": "TIE with noisy copies (intervals overlap)",
                "copies": "score above noisy copies only by COPYING members"}[d.outcome]
        head = (f"{d.name}: generated nets {word}: at their novelty {d.novelty:.3f} noisy copies score "
                f"{report.fmt_interval(d.noisy)}, the generated nets {g}")
        if d.outcome == "copies":
            head += (f", but {report.generated.memorized.mean:.0%} of them are near-copies of one member, "
                     "so that is the score of the members copied, not a win")
    tail = ("; also at least as accurate and as novel: " + ", ".join(d.dominated_by)) if d.dominated_by else ""
    return head + tail


EXPLAINED = ("Noisy copies of the fitting members trace a curve of score against novelty (one point per σ of "
             "the report, starting from the members). The generated nets beat them where their score "
             "interval lies above the curve's at the same novelty, lose where it lies below, and tie where "
             "the intervals overlap. Nets above the curve that memorize (most are near-copies of one member) "
             "only copy a better-than-average member; that is not counted as a win (`dwf.dominance`).")


def markdown(reports: list[Report]) -> str:
    return "\n".join(f"- {sentence(r)}." for r in reports) if reports else "- No experiments."


__all__ = ["Dominance", "EXPLAINED", "POINT_BASELINES", "markdown", "noisy_curve", "of", "sentence"]
