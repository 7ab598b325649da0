"""Run every benchmark, print a results table and write artifacts/bench/results.json."""
from __future__ import annotations

import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import sklearn
import torch

from dwf.io import save_json

from . import bench_pca, bench_zoo

OUT = Path("artifacts/bench/results.json")


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def report(zoos: list[bench_zoo.ZooResult], pca: bench_pca.PCAResult) -> str:
    zoo_rows = [("MLPs", "train samples", "epochs", "batched s", "sequential s", "ratio",
                 "acc batched", "acc sequential", "models equal")]
    for z in zoos:
        zoo_rows.append((f"{z.n_models} × {z.case}", str(z.train_samples), str(z.epochs),
                         f"{z.batched_s:.2f}", f"{z.sequential_s:.2f}", f"{z.ratio:.2f}x",
                         f"{z.batched_test_acc:.4f}", f"{z.sequential_test_acc:.4f}",
                         f"{z.models_matching}/{z.n_models}"))
    pca_rows = [
        ("method", "seconds"),
        ("dwf.DualPCA (in memory)", f"{pca.dual_s:.3f}"),
        ("dwf.DualPCA (numpy memmap)", f"{pca.dual_memmap_s:.3f}"),
        (f"sklearn PCA (svd_solver={pca.sklearn_solver!r})", f"{pca.sklearn_s:.3f}"),
    ]
    return "\n".join([
        "Zoo training: dwf.train_zoo (all models in one batched pass) vs an ordinary per-model "
        f"loop with the same init, batch order, AdamW and selection (CPU, {torch.get_num_threads()} "
        f"threads, best of {bench_zoo.REPEATS}); ratio = sequential / batched",
        _table(zoo_rows),
        f"models equal: weights within {bench_zoo.MATCH_TOL:g} of the sequential run's",
        "",
        f"PCA: n={pca.n} vectors, d={pca.d} float32, k={pca.k} components (CPU, best of "
        f"{bench_pca.REPEATS})",
        _table(pca_rows),
        f"speed ratio sklearn / DualPCA: {pca.ratio:.2f}x",
        f"subspace error ||P_dual - P_sklearn||_2: {pca.subspace_error:.2e}; memmap vs in-memory: "
        f"{pca.memmap_subspace_error:.2e}; max |explained_variance_ratio_ diff|: "
        f"{pca.max_abs_evr_diff:.2e}",
    ])


def main() -> None:
    t0 = time.perf_counter()
    zoos = [bench_zoo.run(arch, spec, data, case) for case, arch, data, spec in bench_zoo.CASES]
    pca = bench_pca.run()
    print(report(zoos, pca))
    total = time.perf_counter() - t0
    print(f"\ntotal {total:.1f} s; results in {OUT}")
    save_json(OUT, {
        "zoo": [{**asdict(z), "arch": asdict(arch), "data": asdict(data), "spec": asdict(spec),
                 "repeats": bench_zoo.REPEATS}
                for z, (_, arch, data, spec) in zip(zoos, bench_zoo.CASES)],
        "pca": {**asdict(pca), "signal_rank": bench_pca.SIGNAL_RANK, "decay": bench_pca.DECAY,
                "noise": bench_pca.NOISE, "seed": bench_pca.SEED, "repeats": bench_pca.REPEATS},
        "environment": {"python": platform.python_version(), "platform": platform.platform(),
                        "torch": torch.__version__, "numpy": np.__version__,
                        "sklearn": sklearn.__version__, "torch_threads": torch.get_num_threads()},
        "total_seconds": total,
    })


if __name__ == "__main__":
    main()
