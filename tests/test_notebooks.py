"""The walkthrough (marimo) and reproduce (papermill) notebooks end to end on the smoke runs, and
dwf.paper's writers on a hand-made report."""
from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import papermill
import pytest

from dwf import experiments, paper, pipeline, plots
from dwf.errors import DwfError
from dwf.report import Report

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["fmnist_mlp", "fmnist_resnet20", "fmnist_vit", "vader_tinybert"])
def test_walkthrough_runs_headless(artifacts, experiment):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "notebooks" / "walkthrough.py"), "--",
         "--experiment", experiment, "--profile", "smoke", "--artifacts", str(artifacts)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    # the symmetry demo ran: permuting hidden units leaves the outputs unchanged
    m = re.search(r"max \|f\(x\) - f_permuted\(x\)\| over \d+ test inputs: (\S+)", proc.stdout)
    assert m, proc.stdout[-2000:]
    assert float(m.group(1)) < 1e-4
    # the ablation section found the experiment's variants: default and small flow, aligned and not
    cells = re.search(r"^ablation (.*)$", proc.stdout, re.M)
    assert cells, proc.stdout[-2000:]
    small = {"fmnist_mlp": ", flow h=64", "fmnist_vit": ", flow h=128"}.get(experiment)
    assert cells.group(1).count("flow h=") == (4 if small else 2) and "unaligned" in cells.group(1)
    if small:
        assert small + " aligned" in cells.group(1) and small + " unaligned" in cells.group(1)
    # the conditional section: each label's nets beat the nets generated for the other label
    rows = re.findall(r"conditional label \d \((\w+)\): zoo (\S+), generated (\S+), generated for \w+ (\S+)",
                      proc.stdout)
    assert [r[0] for r in rows] == ["fmnist", "digits28"], proc.stdout[-2000:]
    assert all(float(own) > float(cross) for _, _, own, cross in rows)


@pytest.mark.slow
def test_reproduce_notebook_writes_figures_and_results(artifacts, tmp_path):
    """Two MLPs and a BatchNorm ResNet (with its unaligned variant and transfer table), then the
    conditional flow over two MLP zoos (one report per label)."""
    names = ["iris_mlp", "fmnist_mlp", "fmnist_resnet20"]
    out = tmp_path / "paper_figures"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "reproduce.ipynb"), str(tmp_path / "reproduce-smoke.ipynb"),
        parameters={"profile": "smoke", "experiments": names, "out_dir": str(out),
                    "artifacts": str(artifacts)},
        kernel_name="python3", progress_bar=False, cwd=str(ROOT))
    md = (out / "results.md").read_text()
    summary = json.loads((out / "results.json").read_text())
    mlp_variants = ["", "unaligned", "flow-h64", "flow-h64-unaligned"]   # the paper's flow-width ablation
    assert [(e["experiment"], e["variant"]) for e in summary["experiments"]] == [
        *(("iris_mlp", v) for v in mlp_variants), *(("fmnist_mlp", v) for v in mlp_variants),
        ("fmnist_resnet20", ""), ("fmnist_resnet20", "unaligned"),
        ("fmnist_digits_mlp_fmnist", ""), ("fmnist_digits_mlp_digits28", "")]   # the conditional flow
    assert "Conditional flow over the fmnist + digits28 zoos" in md and "generated for digits28" in md
    assert "Accuracy–novelty frontier" in md and "fmnist_mlp/frontier.png" in " ".join(summary["experiments"][4]["figures"])
    resnet = summary["experiments"][8]
    assert [r["init"] for r in resnet["transfer"][0]["rows"]] == ["generated", "zoo", "random"]
    assert "transfer_digits" in " ".join(resnet["figures"])
    assert "Few-shot transfer to **digits**" in md and "| unaligned | align.method: none |" in md
    assert "| flow-h64-unaligned | align.method: none, flow.hidden: 64 |" in md
    assert "generated, no BN recalibration" in md
    assert "fmnist_mlp/ablation_flow_alignment.png" in summary["experiments"][4]["figures"]
    assert (out / "fmnist_mlp" / "ablation_flow_alignment.png").read_bytes().startswith(paper.PNG_MAGIC)
    for section in ("## The paper's numbers beside ours", "## Novelty against the trivial baselines", "## Timings"):
        assert section in md
    assert "| Fashion-MNIST MLP, flow h=64: aligned vs unaligned" in md
    for name in names:
        rep = json.loads((pipeline.experiment_dir(experiments.get(name, "smoke"), artifacts)
                          / "report.json").read_text())
        figs = paper.figures(Report(**rep))
        assert len(figs) >= 7
        for fig in figs:
            png = (out / name / f"{fig}.png").read_bytes()
            assert png.startswith(paper.PNG_MAGIC) and len(png) > 10_000, (name, fig, len(png))
            html = (out / name / f"{fig}.html").read_text()
            assert f'id="{name}-{fig}"' in html and "cdn.plot.ly" in html
        gen = next(r for r in rep["rows"] if r["name"] == "generated")
        row = [line for line in md.splitlines() if line.startswith(f"| {name} | smoke |")]
        assert len(row) == 1, md
        assert f"{100 * gen['acc_mean']:.2f} ± {100 * gen['acc_std']:.2f}" in row[0]
        assert f"## {name} [smoke]" in md
    assert not list(out.glob(".*")), "scratch files left behind"


def _report(name: str = "toy", paper_numbers: bool = True) -> Report:
    def pop(n, acc, dist, iou):
        return {"name": n, "acc": [acc - 0.01, acc + 0.01], "nn_dist": [dist, dist], "max_iou": [iou, iou]}

    rows = [
        {"name": "zoo", "n": 10, "acc_mean": 0.90, "acc_std": 0.01, "acc_min": 0.88, "acc_max": 0.92,
         "novelty": 1.0, "max_iou": 0.70},
        {"name": "generated", "n": 20, "acc_mean": 0.885, "acc_std": 0.02, "acc_min": 0.85,
         "acc_max": 0.91, "novelty": 0.05, "max_iou": 0.93},
        {"name": "noisy σ=0.001", "n": 8, "acc_mean": 0.9, "acc_std": 0.01, "acc_min": 0.88,
         "acc_max": 0.92, "novelty": 0.01, "max_iou": 0.99},
        {"name": "noisy σ=0.01", "n": 8, "acc_mean": 0.89, "acc_std": 0.01, "acc_min": 0.87,
         "acc_max": 0.91, "novelty": 0.15, "max_iou": 0.85},
        {"name": "interpolation", "n": 8, "acc_mean": 0.7, "acc_std": 0.05, "acc_min": 0.6,
         "acc_max": 0.8, "novelty": 0.45, "max_iou": 0.5},
    ]
    pops = {r["name"]: pop(r["name"], r["acc_mean"], r["novelty"] * 2.0, r["max_iou"]) for r in rows}
    extras = {"explained_variance_ratio": [0.5, 0.3, 0.1], "n_params": 1234, "n_components": 3,
              "zoo_median_nn": 2.0, "zoo_val_acc": [0.9, 0.91],
              "flow_history": {"step": [1, 2], "train_loss": [1.0, 0.5], "val_loss": [float("nan")] * 2,
                               "best_val_loss": float("inf")},
              "dist_to_ref_before": [0.0, 5.0, 6.0], "dist_to_ref_after": [0.0, 3.0, 3.5]}
    pn = ({"task": "MLP / MNIST", "zoo": 96.32, "zoo_std": 0.20, "generated": 96.17, "generated_std": 0.31}
          if paper_numbers else {"task": "Iris", "note": "shown only qualitatively"})
    return Report(name, "smoke", {"align": {"reference": 0}}, rows, pops,
                  {"flow": 2.5, "zoo": 1.0, "align": 0.3, "custom": 0.1}, extras, pn)


def test_results_markdown_on_a_handmade_report():
    a, b = _report("toy"), _report("other", paper_numbers=False)
    md = paper.results_markdown([a, b])
    lines = md.splitlines()
    toy = [line for line in lines if line.startswith("| toy | smoke |")]
    assert toy == ["| toy | smoke | 1234 | accuracy (%) | 90.00 ± 1.00 | 88.50 ± 2.00 | -1.50 pp | 0.050 | "
                   "0.930 | 96.32 ± 0.20 | 96.17 ± 0.31 | -0.15 |"]
    other = [line for line in lines if line.startswith("| other | smoke |")]
    assert len(other) == 1 and other[0].endswith("| — | — | — |")
    assert a.markdown_rows() in md and b.markdown_rows() in md
    assert "## toy [smoke] — MLP / MNIST" in md and "Paper note: shown only qualitatively." in md
    assert "The paper: zoo 96.32 ± 0.20, generated 96.17 ± 0.31 (-0.15 pp)" in md
    assert "between noisy σ=0.001 (0.010) and noisy σ=0.01 (0.150)" in md
    assert "Timings (s): zoo 1.0, align 0.3, flow 2.5, custom 0.1" in md
    assert "PCA components: 3 (90.0 % of the variance)" in md
    assert "*Novelty*" in md and "*Max error-IoU*" in md
    assert md.index("| toy | smoke |") < md.index("| other | smoke |") < md.index("## toy")


def test_variants_and_transfer_in_results_markdown():
    base = _report("toy")
    var = _report("toy")
    var.variant = "unaligned"
    var.config = {"align": {"reference": 0, "method": "none"}}
    var.rows = [dict(r, acc_mean=0.80) if r["name"] == "generated" else r for r in var.rows]
    base.extras["transfer"] = [
        {"target": "digits", "report_epochs": [0, 5], "spec": {"shots": 10},
         "rows": [{"init": "generated", "n": 4, "acc_e0": 0.6, "std_e0": 0.01, "acc_e5": 0.7,
                   "std_e5": 0.02, "acc_selected": 0.69, "std_selected": 0.03}]},
        {"target": "stl10", "unavailable": "stl10 is not on disk"}]
    md = paper.results_markdown([base, var])
    assert [line for line in md.splitlines() if line.startswith("| toy |")] != []
    assert not [line for line in md.splitlines() if line.startswith("| toy | smoke") and "80.00" in line]
    assert "| unaligned | align.method: none | 80.00 ± 2.00 | -10.00 pp | 0.050 | — |" in md
    assert "| as configured | — | 88.50 ± 2.00 | -1.50 pp |" in md
    assert "| generated | 4 | 60.00 ± 1.00 | 70.00 ± 2.00 | 69.00 ± 3.00 |" in md
    assert "Transfer to stl10: skipped, the data is not on disk (stl10 is not on disk)" in md


def test_regression_reports_show_spearman_rho():
    rep = _report("vader")
    rep.metric = "Spearman ρ"
    rep.rows = [dict(r, acc_mean=r["acc_mean"] - 0.2, acc_std=0.0123) for r in rep.rows]
    md = paper.results_markdown([rep])
    row = [line for line in md.splitlines() if line.startswith("| vader |")][0]
    assert "| Spearman ρ | 0.7000 ± 0.0123 | 0.6850 ± 0.0123 | -0.0150 ρ |" in row
    assert "| population | n | Spearman ρ | min–max | novelty | max residual correlation |" in md
    assert "Generated − zoo: **-0.0150 ρ**" in md and "max residual correlation is" in md
    figs = paper.figures(rep)
    assert figs["accuracy_distributions"].layout.yaxis.title.text == "test Spearman ρ"
    assert max(figs["accuracy_distributions"].data[0].y) < 1.0


def test_write_is_atomic_and_html_byte_stable(tmp_path, monkeypatch):
    rep = _report()
    names = list(paper.figures(rep))
    fake = [paper.PNG_MAGIC + bytes([i]) * 64 for i in range(len(names))]
    with monkeypatch.context() as m:
        m.setattr(paper, "render_pngs", lambda figs, scratch: fake[:len(figs)])
        first = paper.write([rep], tmp_path / "a")
        paper.write([rep], tmp_path / "b")
    for n in names:
        assert (tmp_path / "a/toy" / f"{n}.html").read_bytes() == (tmp_path / "b/toy" / f"{n}.html").read_bytes()
        assert (tmp_path / "a/toy" / f"{n}.png").read_bytes() == fake[names.index(n)]
    data = json.loads((tmp_path / "a/results.json").read_text())   # strict JSON: NaN/inf became null
    assert data == first and data["experiments"][0]["gap_pp"] == pytest.approx(-1.5)
    assert "toy/flow_loss.png" in data["experiments"][0]["figures"]

    def broken(*args, **kwargs):
        raise RuntimeError("browser crashed")

    monkeypatch.setattr(paper.pio, "write_images", broken)
    with pytest.raises(DwfError, match="browser crashed.*chromium"):
        paper.write([rep], tmp_path / "c")
    assert not [p for p in (tmp_path / "c").rglob("*") if p.is_file()]


def _variant(base: Report, name: str, acc: float, **changes) -> Report:
    var = copy.deepcopy(base)
    var.variant = name
    for key, value in changes.items():
        stage, field = key.split("__")
        var.config.setdefault(stage, {})[field] = value
    var.rows = [dict(r, acc_mean=acc) if r["name"] == "generated" else r for r in var.rows]
    return var


def test_cross_experiment_tables_set_paper_numbers_beside_ours():
    base = _report("digits_mlp")
    base.config = {"align": {"method": "weight_matching"}, "flow": {"hidden": 512}}
    base.timings = {"zoo": 20.0, "sample": 0.5, "flow": 3.0}
    variants = [_variant(base, "unaligned", 0.80, align__method="none"),
                _variant(base, "flow-h64", 0.60, flow__hidden=64),
                _variant(base, "flow-h64-unaligned", 0.20, flow__hidden=64, align__method="none"),
                _variant(base, "other", 0.5, pca__n_components=3)]      # not part of the grid
    md = paper.results_markdown([base, *variants])
    rows = {line.split(" | ")[0]: line for line in md.splitlines() if line.startswith("| MNIST MLP, flow")}
    assert rows["| MNIST MLP, flow h=512: aligned vs unaligned (ours: sklearn digits)"].endswith(
        "| 96.17 vs 96.19 | 88.50 ± 2.00 vs 80.00 ± 2.00 |")
    assert rows["| MNIST MLP, flow h=64: aligned vs unaligned (ours: sklearn digits)"].endswith(
        "| 60.00 ± 2.00 vs 20.00 ± 2.00 |")
    assert "| ViT, flow h=128: aligned vs unaligned" in md and "not in this run |" in md
    assert "| 0.930 vs 0.850 |" in md                        # max error-IoU: generated vs σ=0.01 copies
    assert "| digits_mlp | accuracy (%) | 88.50 / 0.050 | 90.00 / 0.010 | 89.00 / 0.150 | 70.00 / 0.450 |" in md
    # timings: 20 s for 10 zoo nets, 0.5 s for 20 generated nets
    assert "| digits_mlp | 10 | 20.0 | — | — | 3.0 | 0.5 | — | — | — | 2.00 | 25.0 |" in md
    # a conditional flow's two label reports make one timing row, its member zoos summed
    labels = []
    for k, name in enumerate(["fmnist", "digits_28"]):
        r = _report(f"cond_{name}")
        r.extras["conditional"] = {"label": k, "labels": ["fmnist", "digits_28"], "n_zoo_nets": 20}
        r.timings = {"zoo fmnist_mlp": 8.0, "zoo digits28_mlp": 12.0, "flow": 1.0, "sample": 0.2}
        labels.append(r)
    assert paper.timing_markdown(labels).splitlines()[2:] == [
        "| cond | 20 | 20.0 | — | — | 1.0 | 0.2 | — | — | — | 1.00 | 10.0 |"]
    cells = paper.flow_alignment_cells(base, variants)
    assert list(cells) == [("flow h=512", "aligned (weight_matching)"), ("flow h=512", "unaligned"),
                           ("flow h=64", "aligned (weight_matching)"), ("flow h=64", "unaligned")]
    assert cells["flow h=64", "unaligned"] == (0.20, 0.02)
    fig = plots.flow_alignment(cells, 0.9)
    assert [t.name for t in fig.data] == ["aligned (weight_matching)", "unaligned"]
    assert list(fig.data[1].y) == [80.0, 20.0]


def test_stage_timings_and_latent_scatter_figures():
    fig = plots.stage_timings({"zoo": 10.0, "pca": 0.0, "flow": 2.0})
    assert list(fig.data[0].y) == ["zoo", "pca", "flow"] and fig.data[0].x[1] == 1e-3   # log axis floor
    z = np.arange(12.0).reshape(4, 3)
    fig = plots.latent_scatter({"zoo": z, "generated": z + 1}, dims=(1, 2))
    assert list(fig.data[1].x) == [2.0, 5.0, 8.0, 11.0] and fig.layout.yaxis.title.text == "PCA coordinate 3"


def test_ablation_changes_ignore_tuples_read_back_as_lists():
    exp = experiments.get("iris_mlp", "smoke")
    var = experiments.ablations(exp)[1]
    fresh = Report(var.name, var.profile, var.to_dict(), [], {}, {}, variant=var.variant)
    base = Report(exp.name, exp.profile, json.loads(json.dumps(exp.to_dict())), [], {}, {})
    assert isinstance(fresh.config["flow"]["betas"], tuple)
    assert paper._changes(base, fresh) == "flow.hidden: 64"
