"""The distance metrics against brute-force references and on populations whose answer is known:
fresh samples of the reference's distribution, copies, one net repeated."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from dwf import evaluate
from dwf.errors import DwfError
from dwf.interval import Interval
from dwf.novelty import Distances, loo_median_nn, radius


def _gauss(n: int, d: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _brute(V: np.ndarray, R: np.ndarray, self_excluded: bool = False) -> np.ndarray:
    D = np.sqrt(((V[:, None, :] - R[None, :, :]) ** 2).sum(-1))
    if self_excluded:
        np.fill_diagonal(D, np.inf)
    return np.sort(D, axis=1)


def test_metrics_match_a_brute_force_reference():
    V, R = _gauss(9, 5, 1).numpy(), _gauss(12, 5, 2).numpy()
    loo = np.median(_brute(R, R, True)[:, 0])
    assert loo_median_nn(R) == pytest.approx(loo)
    assert evaluate.novelty(V, R) == pytest.approx(np.median(_brute(V, R)[:, 0]) / loo)
    assert evaluate.spread(V, R) == pytest.approx(np.median(_brute(V, V, True)[:, 0]) / loo)
    # a scale the caller keeps is the one divided by (a unit of 1 gives the raw distances)
    assert evaluate.novelty(V, R, scale=loo) == evaluate.novelty(V, R)
    assert evaluate.novelty(V, R, scale=1.0) == pytest.approx(np.median(_brute(V, R)[:, 0]))
    assert evaluate.spread(V, R, scale=1.0) == pytest.approx(np.median(_brute(V, V, True)[:, 0]))
    d = _brute(V, R)
    for tau in (1 / 3, 0.8):
        assert evaluate.memorized_fraction(V, R, tau) == pytest.approx(np.mean(d[:, 0] < tau * d[:, 1]))


def test_one_distance_matrix_reads_off_what_the_four_separate_metrics_give():
    # evaluate.measure takes d1, novelty, memorized fraction and coverage from one matrix
    V, R = _gauss(9, 5, 1), _gauss(12, 5, 2)
    R_near = R[torch.arange(9) % 12] + 0.05 * _gauss(9, 5, 3)     # some nets near members, so memorized > 0
    for X, ref, self_ in ((V, R, False), (R_near, R, False), (R, R, True)):
        dist, loo = Distances.of(X, ref, exclude_self=self_), loo_median_nn(ref)
        assert torch.allclose(dist.nearest(), torch.as_tensor(_brute(X.numpy(), ref.numpy(), self_)[:, 0]))
        assert dist.novelty(loo) == evaluate.novelty(X, ref, exclude_self=self_, scale=loo)
        assert dist.memorized_fraction() == evaluate.memorized_fraction(X, ref, exclude_self=self_)
        assert dist.coverage() == evaluate.coverage(X, ref, exclude_self=self_)
    assert Distances.of(R_near, R).memorized_fraction() > 0
    with pytest.raises(DwfError, match="threshold"):
        Distances.of(V, R).memorized_fraction(0.0)


def test_fresh_samples_of_the_reference_distribution_are_as_new_as_members():
    ref = _gauss(300, 12, 0)
    fresh = _gauss(300, 12, 1)
    assert 0.9 < evaluate.novelty(fresh, ref) < 1.1
    assert 0.9 < evaluate.spread(fresh, ref) < 1.1
    assert evaluate.memorized_fraction(fresh, ref) < 0.05
    # the reference against itself, each member's own entry left out: 1 by construction
    assert evaluate.novelty(ref, ref, exclude_self=True) == pytest.approx(1.0)


def test_copies_have_novelty_zero_and_are_memorized():
    ref = _gauss(50, 12, 0)
    copies = ref[torch.arange(40) % 50] + 1e-6 * _gauss(40, 12, 3)
    assert evaluate.novelty(copies, ref) < 1e-4
    assert evaluate.memorized_fraction(copies, ref) == 1.0
    assert evaluate.novelty(ref, ref) == 0.0        # without exclude_self a member finds itself


def test_coverage_counts_the_members_the_nets_sit_by():
    ref = _gauss(20, 8, 0)
    assert evaluate.coverage(ref[:5] + 1e-6, ref) == pytest.approx(5 / 20)     # copies of 5 members
    assert evaluate.coverage(ref[3:4].repeat(10, 1), ref) == pytest.approx(1 / 20)   # all on one
    assert evaluate.coverage(ref, ref) == 1.0


def test_one_net_repeated_has_spread_zero():
    ref = _gauss(30, 8, 0)
    one = _gauss(1, 8, 5).repeat(10, 1)
    assert evaluate.spread(one, ref) == 0.0
    # interpolations between two members: spread far below fresh samples
    t = torch.linspace(0, 1, 10, dtype=torch.float64)[:, None]
    line = (1 - t) * ref[0] + t * ref[1]
    assert evaluate.spread(line, ref) < 0.5 * evaluate.spread(_gauss(10, 8, 6), ref)


def test_radius_is_one_for_copies_and_new_members_and_shrinks_with_blending():
    ref = _gauss(400, 32, 0)
    centre = ref.mean(0)
    assert radius(ref, ref) == pytest.approx(1.0)
    assert radius(ref[:50] + 1e-6, ref) == pytest.approx(
        np.median((ref[:50] - centre).norm(dim=1).numpy()) / np.median((ref - centre).norm(dim=1).numpy()), rel=1e-4)
    assert 0.9 < radius(_gauss(400, 32, 1), ref) < 1.1                # fresh samples: as far out as members
    # every net pulled halfway to the centroid: radius 1/2 exactly; the centroid itself: 0
    assert radius(centre + 0.5 * (ref - centre), ref) == pytest.approx(0.5)
    assert radius(centre[None], ref) == pytest.approx(0.0, abs=1e-12)
    # blends of two members sit inside: about 1/sqrt(2) of the way out in high dimension
    pairs = 0.5 * (ref[:200] + ref[200:])
    assert 0.6 < radius(pairs, ref) < 0.8
    with pytest.raises(DwfError, match="coincide"):
        radius(ref[:3], ref[:1].repeat(4, 1))


def test_metrics_accept_arrays_and_tensors_alike():
    V, R = _gauss(7, 4, 1), _gauss(9, 4, 2)
    assert math.isclose(evaluate.novelty(V.numpy(), R.numpy()), evaluate.novelty(V.float(), R.float()), rel_tol=1e-5)


@pytest.mark.parametrize("bad", [
    lambda R: evaluate.novelty(_gauss(3, 5), R),                       # other width
    lambda R: evaluate.novelty(_gauss(3, 4), R[:1]),                    # no NN scale
    lambda R: evaluate.novelty(_gauss(3, 4), torch.cat([R[:1], R[:1]])),  # duplicates only
    lambda R: evaluate.spread(_gauss(1, 4), R),                         # one net has no spread
    lambda R: evaluate.memorized_fraction(_gauss(3, 4), R, threshold=0),
    lambda R: evaluate.novelty(torch.full((2, 4), float("nan")), R),
])
def test_bad_input_is_a_clear_error(bad):
    with pytest.raises(DwfError):
        bad(_gauss(6, 4))


def test_interval_is_the_student_t_interval():
    iv = Interval.of([1.0, 2.0, 3.0])
    h = stats.t.ppf(0.975, 2) / math.sqrt(3)
    assert (iv.mean, iv.lo, iv.hi) == pytest.approx((2.0, 2.0 - h, 2.0 + h))
    assert iv.contains(2.5) and not iv.within(2.0) and Interval.of([0.1, -0.1, 0.0]).within(1.0)
    fixed = Interval.of([0.5, 0.5, 0.5], replicated=False)
    assert (fixed.lo, fixed.hi, fixed.replicated) == (0.5, 0.5, False) and fixed.text() == "0.500"
    assert math.isnan(Interval.of([1.0, float("nan")]).mean)
