"""`dwf.DualPCA` (n x n Gram, chunked over columns) against scikit-learn's exact `PCA`
(svd_solver="full": LAPACK SVD of the centered n x d matrix) on n << d float32 vectors.

The data are seeded low-rank-plus-noise with a decaying spectrum whose top `K` directions are
well separated, so both solvers' subspaces are well defined and directly comparable. DualPCA is
also timed on a numpy memmap of the same data, the out-of-core path the pipeline relies on (the
file was just written, so it sits in the OS page cache: this shows the path works and what it
costs in copies, not disk speed).
"""
from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA

from dwf import DualPCA

from .timing import best_of

N, D, K = 100, 400_000, 20
SIGNAL_RANK, DECAY, NOISE = 20, 0.85, 0.05   # singular scales DECAY**j, iid noise std NOISE
SEED = 0
SKLEARN_SOLVER = "full"                       # exact; "auto" would pick "randomized" here
REPEATS = 3                                   # best of, per timing


@dataclass
class PCAResult:
    n: int
    d: int
    k: int
    sklearn_solver: str
    dual_s: float
    sklearn_s: float
    ratio: float                      # sklearn_s / dual_s
    dual_memmap_s: float
    subspace_error: float             # ||P_dual - P_sklearn||_2 = sin(largest principal angle)
    memmap_subspace_error: float      # memmap fit vs in-memory fit
    max_abs_evr_diff: float           # explained_variance_ratio_, dual vs sklearn


def make_data(n: int = N, d: int = D, seed: int = SEED) -> np.ndarray:
    """(n, d) float32: an offset mean plus a rank-SIGNAL_RANK part plus isotropic noise."""
    rng = np.random.default_rng(seed)
    scales = (DECAY ** np.arange(SIGNAL_RANK)).astype(np.float32)
    codes = rng.standard_normal((n, SIGNAL_RANK), dtype=np.float32) * scales
    X = codes @ rng.standard_normal((SIGNAL_RANK, d), dtype=np.float32)
    X += NOISE * rng.standard_normal((n, d), dtype=np.float32)
    X += rng.standard_normal(d, dtype=np.float32)
    return X


def subspace_error(V1: np.ndarray, V2: np.ndarray) -> float:
    """Spectral norm of P1 - P2, the projections onto the row spaces of (k, d) V1 and V2, without
    a d x d matrix: sin of the largest principal angle, computed as the norm of V1's residual
    after projecting onto V2 (accurate for tiny angles, unlike sqrt(1 - min svd(V1 V2^T)^2)).
    Rows are orthonormalized in float64 first, so float32 storage error is not counted."""
    Q1, Q2 = (np.linalg.qr(V.astype(np.float64).T)[0].T for V in (V1, V2))
    return float(np.linalg.norm(Q1 - (Q1 @ Q2.T) @ Q2, 2))


def run(n: int = N, d: int = D, k: int = K) -> PCAResult:
    """Time the three fits on the CPU (each best of REPEATS, after a small warm-up)."""
    X = make_data(n, d)
    warm = make_data(n, 1000, seed=SEED + 1)
    DualPCA(k, device="cpu").fit(warm)
    PCA(k, svd_solver=SKLEARN_SOLVER).fit(warm)

    dual_s, dual = best_of(lambda: DualPCA(k, device="cpu").fit(X), REPEATS)
    sk_s, sk = best_of(lambda: PCA(k, svd_solver=SKLEARN_SOLVER).fit(X), REPEATS)
    with tempfile.TemporaryDirectory() as tmp:
        mm = np.lib.format.open_memmap(Path(tmp) / "X.npy", mode="w+", dtype=np.float32, shape=X.shape)
        mm[:] = X
        mm.flush()
        del mm
        mm_s, dual_mm = best_of(lambda: DualPCA(k, device="cpu").fit(np.load(Path(tmp) / "X.npy", mmap_mode="r")),
                                REPEATS)

    V_dual = dual.components_.numpy()
    return PCAResult(
        n=n, d=d, k=k, sklearn_solver=SKLEARN_SOLVER,
        dual_s=dual_s, sklearn_s=sk_s, ratio=sk_s / dual_s, dual_memmap_s=mm_s,
        subspace_error=subspace_error(V_dual, sk.components_),
        memmap_subspace_error=subspace_error(dual_mm.components_.numpy(), V_dual),
        max_abs_evr_diff=float(np.abs(dual.explained_variance_ratio_.numpy()
                                      - sk.explained_variance_ratio_).max()))


if __name__ == "__main__":
    print(asdict(run()))
