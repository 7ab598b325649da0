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

from . import (bench_align, bench_cofit, bench_convzoo, bench_families, bench_pca, bench_pca_stream, bench_stream,
               bench_transfusion, bench_zoo)

OUT = Path("artifacts/bench/results.json")


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def report(zoos: list[bench_zoo.ZooResult], pca: bench_pca.PCAResult,
           convs: list[bench_convzoo.ConvZooResult], aligns: list[bench_align.AlignResult],
           stream: bench_pca_stream.StreamResult,
           fusions: list[bench_transfusion.TransFusionResult],
           families: list[bench_families.FamilyResult],
           streamed: bench_stream.StreamRunResult | str, agree: bench_stream.AgreementResult,
           cofits: list[bench_cofit.CofitResult]) -> str:
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
    conv_rows = [("nets", "loop s / step", "vmap s / step", "forward_stacked s / step",
                  "loop models × epochs / min", "forward_stacked models × epochs / min", "loop / forward_stacked",
                  "predict s / net: loop", "forward_stacked")]
    for c in convs:
        conv_rows.append((f"{c.n_models} × {c.case}", f"{c.loop_s_per_step:.3f}", f"{c.vmap_s_per_step:.3f}",
                          f"{c.stacked_s_per_step:.3f}", f"{c.loop_models_epochs_per_min:.1f}",
                          f"{c.stacked_models_epochs_per_min:.1f}", f"{c.ratio:.2f}x",
                          f"{c.predict_loop_s_per_net:.3f}", f"{c.predict_stacked_s_per_net:.3f}"))
    align_rows = [("zoo", "params", "models", "s / model", "train step s", "ratio", "recovered")]
    for a in aligns:
        align_rows.append((a.case, f"{a.n_params:,}", str(a.n_models), f"{a.s_per_model:.4f}",
                           f"{a.train_step_s:.3f}", f"{a.ratio:.3f}", f"{a.recovered}/{a.n_models}"))
    fusion_rows = [("zoo", "params", "models", "s / model", "recovered")]
    for f in fusions:
        fusion_rows.append((f.case, f"{f.n_params:,}", str(f.n_models), f"{f.s_per_model:.3f}",
                            f"{f.recovered}/{f.n_models}"))
    family_rows = [("experiment (quick)", "family", "models", "batch", "batched s / step", "loop s / step",
                    "loop / batched")]
    for f in families:
        family_rows.append((f.experiment, f.family, str(f.n_models), str(f.batch_size),
                            f"{f.batched_s_per_step:.4f}", f"{f.loop_s_per_step:.4f}", f"{f.ratio:.2f}x"))
    cofit_rows = [("flow", "runs × replicates", "steps", "one stack per run s", "one stack s", "ratio",
                   "max |Δ param|")]
    for c in cofits:
        cofit_rows.append((c.case, f"{c.runs} × {c.replicates}", str(c.steps), f"{c.apart_s:.2f}",
                           f"{c.together_s:.2f}", f"{c.ratio:.2f}x", f"{c.max_abs_param_diff:.1e}"))
    return "\n".join([
        f"One training step of {bench_families.N_MODELS} models per family: train_zoo's batched step vs "
        f"a per-model loop of nn.Modules (best of {bench_families.REPEATS} × {bench_families.STEPS} steps)",
        _table(family_rows),
        "",
        f"Convnet zoo training step (fmnist_resnet20 quick recipe: batch {convs[0].batch_size}, "
        f"{convs[0].train_samples} training images per epoch; CPU, best of {bench_convzoo.REPEATS}): "
        "one functional call per model vs torch.func.vmap vs the ResNet's channels-last grouped "
        "forward_stacked (train_zoo's and predict's choice for narrow ResNets on the CPU; the loop for wide ones)",
        _table(conv_rows),
        "",
        "Weight matching against member 0 (synthetic zoos: permuted noisy copies of one net); "
        "ratio = seconds per model / seconds of one training step (batch 128, 32x32)",
        _table(align_rows),
        "",
        f"TransFusion against member 0, one pass (synthetic zoos: permuted copies of one net with "
        f"{bench_transfusion.NOISE:g}·std noise)",
        _table(fusion_rows),
        "",
        "Zoo training: dwf.train_zoo (all models in one batched pass) vs an ordinary per-model "
        f"loop with the same init, batch order, AdamW and selection (CPU, {torch.get_num_threads()} "
        f"threads, best of {bench_zoo.REPEATS}); ratio = sequential / batched",
        _table(zoo_rows),
        f"models equal: weights within {bench_zoo.MATCH_TOL:g} of the sequential run's",
        "",
        "Flows of an experiment and its unaligned variant (dwf.pipeline.fit_flows): one stack over both "
        f"runs' replicates vs one stack per run (best of {bench_cofit.REPEATS}); ratio = per run / together",
        _table(cofit_rows),
        "",
        f"PCA: n={pca.n} vectors, d={pca.d} float32, k={pca.k} components (CPU, best of "
        f"{bench_pca.REPEATS})",
        _table(pca_rows),
        f"speed ratio sklearn / DualPCA: {pca.ratio:.2f}x",
        f"subspace error ||P_dual - P_sklearn||_2: {pca.subspace_error:.2e}; memmap vs in-memory: "
        f"{pca.memmap_subspace_error:.2e}; max |explained_variance_ratio_ diff|: "
        f"{pca.max_abs_evr_diff:.2e}",
        "",
        f"Streamed DualPCA on a MiniLM zoo file ({stream.zoo}: {stream.n_models} × {stream.n_params:,} "
        f"float32, {stream.file_gb:.2f} GB; slabs of {stream.chunk:,} columns; each fit in its own process)",
        _table([("fit", "seconds", "read GB/s", "peak RSS MB"),
                ("streamed (StackedColumns, keep_components=False)", f"{stream.stream_s:.1f}",
                 f"{stream.stream_gb_per_s:.2f}", f"{stream.stream_peak_rss_mb:.0f}"),
                ("in memory (whole matrix loaded)", f"{stream.memory_s:.1f}", "—",
                 f"{stream.memory_peak_rss_mb:.0f}")]),
        f"RSS before the fit (imports, layout): {stream.rss_before_fit_mb:.0f} MB; the streamed fit adds "
        f"{stream.stream_peak_rss_mb - stream.rss_before_fit_mb:.0f} MB: one slab of "
        f"{stream.n_models * stream.chunk * 4 / 2**20:.0f} MB, the mean ({stream.n_params * 4 / 2**20:.0f} MB, "
        f"an output) and the n × n Gram; the file is never mapped; subspace error streamed vs in memory: "
        f"{stream.subspace_error:.2e}; max |explained_variance_ratio_ diff|: {stream.max_abs_evr_diff:.2e}",
        "",
        _streamed(streamed, agree),
    ])


def _streamed(r: bench_stream.StreamRunResult | str, agree: bench_stream.AgreementResult) -> str:
    head = (f"Streamed pipeline end to end (dwf.stream: align → PCA → flow → decode, one member or slab at a "
            f"time) on {bench_stream.N_MODELS} synthetic BERT-base nets")
    same = (f"Against the in-memory path on a zoo that fits both ({agree.n_models} × {agree.n_params:,}): "
            f"PCA subspace error {agree.subspace_error:.2e}; generated weights differ by at most "
            f"{agree.max_weight_diff:.2e} (largest weight {agree.weight_scale:.2f})")
    if isinstance(r, str):
        return f"{head}: not run ({r})\n{same}"
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in r.stages.items())
    return "\n".join([
        f"{head} ({r.n_params:,} parameters each, {r.file_gb:.1f} GB; writing the zoo took {r.write_zoo_s:.0f} s)",
        f"{r.seconds:.0f} s ({stages}); read {r.read_gb:.1f} GB, wrote {r.written_gb:.1f} GB: "
        f"{r.gb_per_s:.2f} GB/s; peak RSS {r.peak_rss_mb:.0f} MB; {r.k} PCA components",
        same])


def main() -> None:
    t0 = time.perf_counter()
    zoos = [bench_zoo.run(arch, spec, data, case) for case, arch, data, spec in bench_zoo.CASES]
    pca = bench_pca.run()
    convs = [bench_convzoo.run(*case) for case in bench_convzoo.CASES]
    aligns = [bench_align.run(*case) for case in bench_align.CASES]
    stream = bench_pca_stream.run()
    fusions = [bench_transfusion.run(*case) for case in bench_transfusion.CASES]
    families = [bench_families.run(name) for name in bench_families.CASES]
    streamed = bench_stream.run_if_room()
    agree = bench_stream.agreement()
    cofits = [bench_cofit.run(*case) for case in bench_cofit.CASES]
    print(report(zoos, pca, convs, aligns, stream, fusions, families, streamed, agree, cofits))
    total = time.perf_counter() - t0
    print(f"\ntotal {total:.1f} s; results in {OUT}")
    save_json(OUT, {
        "zoo": [{**asdict(z), "arch": asdict(arch), "data": asdict(data), "spec": asdict(spec),
                 "repeats": bench_zoo.REPEATS}
                for z, (_, arch, data, spec) in zip(zoos, bench_zoo.CASES)],
        "convnet_zoo": [{**asdict(c), "repeats": bench_convzoo.REPEATS, "steps": bench_convzoo.STEPS}
                        for c in convs],
        "align": [{**asdict(a), "noise": bench_align.NOISE, "repeats": bench_align.REPEATS} for a in aligns],
        "pca_stream": {**asdict(stream), "noise": bench_pca_stream.NOISE},
        "streamed_pipeline": {"run": streamed if isinstance(streamed, str) else asdict(streamed),
                              "agreement": asdict(agree), "noise": bench_stream.NOISE},
        "families": [{**asdict(f), "steps": bench_families.STEPS, "repeats": bench_families.REPEATS}
                     for f in families],
        "transfusion": [{**asdict(f), "noise": bench_transfusion.NOISE, "repeats": bench_transfusion.REPEATS}
                        for f in fusions],
        "cofit": [{**asdict(c), "repeats": bench_cofit.REPEATS} for c in cofits],
        "pca": {**asdict(pca), "signal_rank": bench_pca.SIGNAL_RANK, "decay": bench_pca.DECAY,
                "noise": bench_pca.NOISE, "seed": bench_pca.SEED, "repeats": bench_pca.REPEATS},
        "environment": {"python": platform.python_version(), "platform": platform.platform(),
                        "torch": torch.__version__, "numpy": np.__version__,
                        "sklearn": sklearn.__version__, "torch_threads": torch.get_num_threads()},
        "total_seconds": total,
    })


if __name__ == "__main__":
    main()
