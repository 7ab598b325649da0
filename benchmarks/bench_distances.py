"""A population's four distance metrics (d₁, novelty, memorized fraction, coverage) read off one
distance matrix (`dwf.novelty.Distances`, what `evaluate.measure` does) against the four module
functions called one after another, each building its own float64 matrix (what it did before):

    python -m benchmarks.bench_distances

At the size of a scaled Fashion-MNIST MLP zoo (1024 fitting members of 118k weights, 32 nets) the
matrix is the cost, so the ratio is about 4 or more (each separate call also converts the members to
float64); both paths give the same numbers, bit for bit.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from dwf import novelty as nv

from .timing import best_of

N_FIT, N_NETS, D = 1024, 32, 118_000
REPEATS = 2


@dataclass
class DistancesResult:
    n_fit: int
    n_nets: int
    d: int
    separate_s: float
    one_matrix_s: float
    ratio: float                      # separate_s / one_matrix_s
    same_numbers: bool


def run(n_fit: int = N_FIT, n_nets: int = N_NETS, d: int = D, repeats: int = REPEATS) -> DistancesResult:
    g = torch.Generator().manual_seed(0)
    fit = torch.randn(n_fit, d, generator=g)                                   # (n_fit, d) float32, as the zoo is
    V = fit[:n_nets // 2] + 0.1 * torch.randn(n_nets // 2, d, generator=g)     # half near-copies, half fresh
    V = torch.cat([V, torch.randn(n_nets - n_nets // 2, d, generator=g)])      # (n_nets, d)
    scale = 1.0

    def separate():
        return (nv.nn_distances(V, fit), nv.novelty(V, fit, scale=scale), nv.memorized_fraction(V, fit),
                nv.coverage(V, fit))

    def one_matrix():
        dist = nv.Distances.of(V, fit)
        return dist.nearest(), dist.novelty(scale), dist.memorized_fraction(), dist.coverage()

    t_sep, a = best_of(separate, repeats)
    t_one, b = best_of(one_matrix, repeats)
    return DistancesResult(n_fit, n_nets, d, t_sep, t_one, t_sep / t_one, bool(torch.equal(a[0], b[0]) and a[1:] == b[1:]))


if __name__ == "__main__":
    r = run()
    print(f"{r.n_nets} nets against {r.n_fit} members of {r.d} weights: four metrics, separate matrices "
          f"{r.separate_s:.2f} s, one matrix {r.one_matrix_s:.2f} s ({r.ratio:.2f}x), same numbers: {r.same_numbers}")
    print(asdict(r))
