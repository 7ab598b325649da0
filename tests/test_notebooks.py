"""The walkthrough (marimo) and reproduce (papermill) notebooks end to end on the smoke runs, and
the writers of results.md / results.json / figures on hand-made typed reports."""
from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import papermill
import plotly.graph_objects as go
import pytest

from dwf import PopulationSpec as S, experiments, figures, plots, published, readme, tables
from dwf.errors import ArtifactError, DwfError
from dwf.interval import Interval
from dwf.report import (COLLAPSE_SPREAD, ConditionalInfo, FlowSummary, PerNet, PopulationResult, Report,
                        ZooSummary)

ROOT = Path(__file__).resolve().parents[1]


def test_reproduce_notebook_runs_the_scaling_study_only_for_experiments_with_a_scale_profile(tmp_path):
    """profile "scale" takes the study's branch (dwf.scaling.write per experiment, tested in
    test_scaling): an experiment without the profile is skipped, and no results.md is written."""
    out = tmp_path / "paper_figures"
    nb = papermill.execute_notebook(
        str(ROOT / "notebooks" / "reproduce.ipynb"), str(tmp_path / "reproduce-scale.ipynb"),
        parameters={"profile": "scale", "experiments": ["iris_mlp"], "out_dir": str(out),
                    "artifacts": str(tmp_path / "artifacts")},
        kernel_name="python3", progress_bar=False, cwd=str(ROOT))
    printed = "".join(o.get("text", "") for c in nb["cells"] for o in c.get("outputs", []))
    assert "iris_mlp: no scale profile, skipped" in printed
    assert not (out / "results.md").exists() and not (tmp_path / "artifacts").exists()


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["fmnist_mlp", "fmnist_resnet20", "fmnist_vit", "vader_tinybert"])
def test_walkthrough_runs_headless(artifacts, experiment):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "notebooks" / "walkthrough.py"), "--",
         "--experiment", experiment, "--profile", "smoke", "--artifacts", str(artifacts)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    # the symmetry demo ran: permuting hidden units leaves the outputs unchanged
    m = re.search(r"max \|f\(x\) - f_permuted\(x\)\| over \d+ validation inputs: (\S+)", proc.stdout)
    assert m, proc.stdout[-2000:]
    assert float(m.group(1)) < 1e-4
    # the novelty section says in words whether the flow collapsed or memorizes
    assert re.search(r"^verdicts: ", proc.stdout, re.M), proc.stdout[-2000:]
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
    assert summary["reproduce"]["side_by_side"] is True     # the default: built as Ray jobs (dwf.reproduce)
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
    assert "one member's BN statistics" in md and "zoo-mean BN statistics" in md
    assert "fmnist_mlp/ablation_flow_alignment.png" in summary["experiments"][4]["figures"]
    assert (out / "fmnist_mlp" / "ablation_flow_alignment.png").read_bytes().startswith(figures.PNG_MAGIC)
    for section in ("## Collapse and memorization", "## The paper's numbers beside ours",
                    "## Novelty against the trivial baselines", "## Timings"):
        assert section in md
    assert "| Fashion-MNIST MLP, flow h=64: aligned vs unaligned" in md
    for e in summary["experiments"]:
        pops = {p["name"]: p for p in e["populations"]}
        assert e["replicates"] == 2 and "held-out members" in pops
        gen = pops["generated"] if "generated" in pops else next(p for k, p in pops.items() if k.startswith("generated for"))
        assert gen["collapsed"] == (gen["spread"]["mean"] < COLLAPSE_SPREAD)
    for name in names:
        rep = Report.load(Path(artifacts) / name / "smoke" / "seed0" / "report.json")
        figs = figures.figures(rep)
        assert len(figs) >= 9
        for fig in figs:
            png = (out / name / f"{fig}.png").read_bytes()
            assert png.startswith(figures.PNG_MAGIC) and len(png) > 10_000, (name, fig, len(png))
            html = (out / name / f"{fig}.html").read_text()
            assert f'id="{name}-{fig}"' in html and "cdn.plot.ly" in html
        row = [line for line in md.splitlines() if line.startswith(f"| {name} | smoke |")]
        assert len(row) == 1, md
        g = rep.generated.score
        assert f"{100 * g.mean:.2f} [{100 * g.lo:.2f}, {100 * g.hi:.2f}]" in row[0]
        assert f"## {name} [smoke]" in md
    assert not list(out.glob(".*")), "scratch files left behind"


# --- hand-made typed reports -------------------------------------------------------------------

def _iv(mean: float, half: float = 0.0) -> Interval:
    return Interval(mean, mean - half, mean + half, 3, half > 0)


def _pop(spec: S, name: str, score: float, novelty: float, spread: float = 0.5, memorized: float = 0.0,
         sim: float = 0.8, half: float = 0.01) -> PopulationResult:
    return PopulationResult(spec, name, 4, _iv(score, half if spec.replicated else 0), 0.02, score - 0.03,
                            score + 0.03, _iv(novelty), _iv(1.1 * novelty), _iv(spread), _iv(memorized), _iv(sim),
                            _iv(0.1), PerNet([score - 0.01, score + 0.01], [novelty, novelty], [sim, sim]))


def _report(name: str = "toy", metric: str = "accuracy") -> Report:
    pops = [_pop(S("zoo", "own"), "zoo (fitting members)", 0.90, 1.0, spread=1.0, sim=0.70),
            _pop(S("held_out", "own"), "held-out members", 0.89, 1.05, spread=1.2),
            _pop(S("generated"), "generated", 0.885, 0.05, spread=0.04, memorized=0.9, sim=0.93),
            _pop(S("noisy", sigma=0.001), "noisy copies σ=0.001", 0.90, 0.01, sim=0.99),
            _pop(S("noisy", sigma=0.01), "noisy copies σ=0.01", 0.89, 0.15, sim=0.85),
            _pop(S("interpolation"), "interpolations", 0.70, 0.45, sim=0.5),
            _pop(S("encode_decode"), "zoo through encode → decode", 0.90, 0.0)]
    zoo = ZooSummary(10, [3, 7], 0, [0.9, 0.91], [0.0, 5.0, 6.0], [0.0, 3.0, 3.5], 2.0, 1234, 3, [0.5, 0.3, 0.1])
    flow = FlowSummary({"step": [1, 2], "train_loss": [1.0, 0.5], "val_loss": [float("nan")] * 2}, [0.1, 0.2, 0.3])
    return Report(name, "smoke", "MLP / toy data", metric, {"align": {"reference": 0}}, 3, pops, S("generated").key,
                  Interval(-0.015, -0.025, -0.005, 3), zoo, flow, {"flow": 2.5, "zoo": 1.0, "align": 0.3, "custom": 0.1})


def test_results_markdown_on_a_handmade_report():
    a, b = _report("toy"), _report("other")
    md = tables.results_markdown([a, b])
    toy = [line for line in md.splitlines() if line.startswith("| toy | smoke |")]
    assert toy == ["| toy | smoke | 1234 | accuracy (%) | 90.00 | 89.00 | 88.50 [87.50, 89.50] | -1.50 pp "
                   "[-2.50, -0.50] | 0.050 | 0.040 | 0.90 |"]
    assert tables.population_markdown(a) in md
    assert "## toy [smoke] — MLP / toy data" in md
    # collapse and memorization are said in words, with the thresholds
    assert "toy: generated COLLAPSED: spread 0.040 < 0.1" in md and "toy: generated MEMORIZES: 90 %" in md
    assert "| zoo (fitting members) | 4 | 90.00 ± 2.00 | fixed |" in md
    assert "| generated | 4 | 88.50 ± 2.00 | [87.50, 89.50] |" in md
    assert "the encode → decode floor is at novelty 0.000" in md
    assert "Timings (s): zoo 1.0, align 0.3, flow 2.5, custom 0.1" in md
    assert "fitting members: 10, held out: 2; PCA components: 3 (90.0 % of the fitting members' variance)" in md
    assert md.index("| toy | smoke |") < md.index("| other | smoke |") < md.index("## toy")


def test_no_verdict_when_the_flow_neither_collapses_nor_memorizes():
    rep = _report()
    rep.populations[2] = _pop(S("generated"), "generated", 0.885, 0.8, spread=0.9, memorized=0.1)
    assert rep.verdicts() == []
    assert "No flow collapsed or memorizes" in tables.results_markdown([rep])


def test_variants_and_transfer_in_results_markdown():
    base, var = _report("toy"), _report("toy")
    var.variant = "unaligned"
    var.config = {"align": {"reference": 0, "method": "none"}}
    var.populations[2] = _pop(S("generated"), "generated", 0.80, 0.3)
    base.transfer = [
        {"target": "digits", "report_epochs": [0, 5], "spec": {"shots": 10},
         "rows": [{"init": "generated", "n": 4, "acc_e0": 0.6, "std_e0": 0.01, "acc_e5": 0.7,
                   "std_e5": 0.02, "acc_selected": 0.69, "std_selected": 0.03}]},
        {"target": "stl10", "unavailable": "stl10 is not on disk"}]
    md = tables.results_markdown([base, var])
    assert not [line for line in md.splitlines() if line.startswith("| toy | smoke") and "80.00" in line]
    assert "| unaligned | align.method: none | 80.00 [79.00, 81.00] |" in md
    assert "| as configured | — | 88.50 [87.50, 89.50] | -1.50 pp [-2.50, -0.50] | 0.050 |" in md
    assert "| generated | 4 | 60.00 ± 1.00 | 70.00 ± 2.00 | 69.00 ± 3.00 |" in md
    assert "Transfer to stl10: skipped, the data is not on disk (stl10 is not on disk)" in md


def test_regression_reports_show_spearman_rho():
    rep = _report("vader", metric="Spearman ρ")
    md = tables.results_markdown([rep])
    row = [line for line in md.splitlines() if line.startswith("| vader |")][0]
    assert "| Spearman ρ | 0.9000 | 0.8900 | 0.8850 [0.8750, 0.8950] | -0.0150 ρ [-0.0250, -0.0050] |" in row
    figs = figures.figures(rep)
    assert figs["accuracy_distributions"].layout.yaxis.title.text == "test Spearman ρ"
    assert max(figs["accuracy_distributions"].data[0].y) < 1.0


def test_report_round_trips_and_a_damaged_file_names_the_field(tmp_path):
    rep = _report()
    rep.save(tmp_path / "r.json")
    back = Report.load(tmp_path / "r.json")
    assert back.populations == rep.populations and back.gap == rep.gap and back.zoo == rep.zoo
    raw = json.loads((tmp_path / "r.json").read_text())
    del raw["populations"][1]["spread"]
    (tmp_path / "bad.json").write_text(json.dumps(raw))
    with pytest.raises(ArtifactError, match=r"populations\[1\].*missing field 'spread'"):
        Report.load(tmp_path / "bad.json")
    raw = json.loads((tmp_path / "r.json").read_text())
    raw["gap"]["surprise"] = 1
    (tmp_path / "bad.json").write_text(json.dumps(raw))
    with pytest.raises(ArtifactError, match="unknown field"):
        Report.load(tmp_path / "bad.json")


def test_a_figure_whose_name_holds_a_dot_keeps_its_whole_name(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "render_pngs", lambda figs, scratch: [figures.PNG_MAGIC + b"x"])
    written = figures.write_figure(tmp_path / "refit_n256_t0.4", go.Figure())
    assert [p.name for p in written] == ["refit_n256_t0.4.png", "refit_n256_t0.4.html"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["refit_n256_t0.4.html", "refit_n256_t0.4.png"]


def test_write_is_atomic_and_html_byte_stable(tmp_path, monkeypatch):
    rep = _report()
    names = list(figures.figures(rep))
    fake = [figures.PNG_MAGIC + bytes([i]) * 64 for i in range(len(names))]
    with monkeypatch.context() as m:
        m.setattr(figures, "render_pngs", lambda figs, scratch: fake[:len(figs)])
        first = figures.write([rep], tmp_path / "a")
        figures.write([rep], tmp_path / "b")
    for n in names:
        assert (tmp_path / "a/toy" / f"{n}.html").read_bytes() == (tmp_path / "b/toy" / f"{n}.html").read_bytes()
        assert (tmp_path / "a/toy" / f"{n}.png").read_bytes() == fake[names.index(n)]
    data = json.loads((tmp_path / "a/results.json").read_text())   # strict JSON: NaN/inf became null
    assert data == first and data["experiments"][0]["gap"]["mean"] == pytest.approx(-0.015)
    assert data["experiments"][0]["verdicts"] == _report().verdicts()
    assert "toy/flow_loss.png" in data["experiments"][0]["figures"]

    def broken(*args, **kwargs):
        raise RuntimeError("browser crashed")

    monkeypatch.setattr(figures.pio, "write_images", broken)
    with pytest.raises(DwfError, match="browser crashed.*chromium"):
        figures.write([rep], tmp_path / "c")
    assert not [p for p in (tmp_path / "c").rglob("*") if p.is_file()]


def _variant(base: Report, name: str, score: float, **changes) -> Report:
    var = copy.deepcopy(base)
    var.variant = name
    for key, value in changes.items():
        stage, field = key.split("__")
        var.config.setdefault(stage, {})[field] = value
    var.populations[2] = _pop(S("generated"), "generated", score, 0.2, half=0.02)
    return var


def test_cross_experiment_tables_set_paper_numbers_beside_ours():
    base = _report("digits_mlp")
    base.config = {"align": {"method": "weight_matching"}, "flow": {"hidden": 512}}
    base.timings = {"zoo": 24.0, "sample": 0.5, "flow": 3.0}
    variants = [_variant(base, "unaligned", 0.80, align__method="none"),
                _variant(base, "flow-h64", 0.60, flow__hidden=64),
                _variant(base, "flow-h64-unaligned", 0.20, flow__hidden=64, align__method="none"),
                _variant(base, "other", 0.5, pca__n_components=3)]      # not part of the grid
    md = tables.results_markdown([base, *variants])
    rows = {line.split(" | ")[0]: line for line in md.splitlines() if line.startswith("| MNIST MLP, flow")}
    assert "| 96.17 vs 96.19 | 88.50 [87.50, 89.50] vs 80.00 [78.00, 82.00] | sklearn digits 8×8 |" in \
        rows["| MNIST MLP, flow h=512: aligned vs unaligned"]
    assert "| 60.00 [58.00, 62.00] vs 20.00 [18.00, 22.00] |" in rows["| MNIST MLP, flow h=64: aligned vs unaligned"]
    assert "| ViT, flow h=128: aligned vs unaligned" in md and "not in this run |" in md
    assert "| 0.930 vs 0.850 |" in md                        # error similarity: generated vs σ=0.01 copies
    assert "| digits_mlp | 88.50 / 0.050 | 89.00 / 1.050 | 90.00 / 0.010 | 89.00 / 0.150 | 70.00 / 0.450 |" in md
    # timings: 24 s for 12 zoo nets (10 fitting + 2 held out), 0.5 s for 4 generated nets
    assert "| digits_mlp | 12 | 3 | 24.0 | — | — | 3.0 | 0.5 | — | — | — | 2.00 | 125.0 |" in md
    # a conditional flow's two label reports make one timing row, its member zoos summed
    labels = []
    for k, name in enumerate(["fmnist", "digits_28"]):
        r = _report(f"cond_{name}")
        r.conditional = ConditionalInfo(k, ["fmnist", "digits_28"], 1.0, [0.0, 2.0], 20)
        r.timings = {"zoo fmnist_mlp": 8.0, "zoo digits28_mlp": 12.0, "flow": 1.0, "sample": 0.2}
        labels.append(r)
    assert tables.timing_markdown(labels).splitlines()[2:] == [
        "| cond | 20 | 3 | 20.0 | — | — | 1.0 | 0.2 | — | — | — | 1.00 | 50.0 |"]
    cells = tables.flow_alignment_cells(base, variants)
    assert list(cells) == [("flow h=512", "aligned (weight_matching)"), ("flow h=512", "unaligned"),
                           ("flow h=64", "aligned (weight_matching)"), ("flow h=64", "unaligned")]
    assert cells["flow h=64", "unaligned"].mean == 0.20
    fig = plots.flow_alignment(cells, 0.9)
    assert [t.name for t in fig.data] == ["aligned (weight_matching)", "unaligned"]
    assert list(fig.data[1].y) == [80.0, 20.0] and list(fig.data[1].error_y.array) == pytest.approx([2.0, 2.0])
    assert len(published.COMPARISONS) == len({c.what for c in published.COMPARISONS})
    assert all(c.setting for c in published.COMPARISONS)    # every row names how our setting differs


def test_stage_timings_and_latent_scatter_figures():
    fig = plots.stage_timings({"zoo": 10.0, "pca": 0.0, "flow": 2.0})
    assert list(fig.data[0].y) == ["zoo", "pca", "flow"] and fig.data[0].x[1] == 1e-3   # log axis floor
    z = np.arange(12.0).reshape(4, 3)
    fig = plots.latent_scatter({"zoo": z, "generated": z + 1}, dims=(1, 2))
    assert list(fig.data[1].x) == [2.0, 5.0, 8.0, 11.0] and fig.layout.yaxis.title.text == "PCA coordinate 3"


def test_ablation_changes_ignore_tuples_read_back_as_lists():
    exp = experiments.get("iris_mlp", "smoke")
    var = experiments.ablations(exp)[1]
    fresh, base = _report(), _report()
    fresh.config, fresh.variant = var.to_dict(), var.variant
    base.config = json.loads(json.dumps(exp.to_dict()))
    assert isinstance(fresh.config["flow"]["betas"], tuple)
    assert "| flow-h64 | flow.hidden: 64 |" in tables.ablation_markdown(base, [fresh])


def test_readme_results_block_is_generated_from_the_committed_results_json(tmp_path):
    summary = json.loads((ROOT / "paper_figures" / "results.json").read_text())
    assert readme.current(ROOT / "README.md") == readme.block(summary), "run `python -m dwf readme`"
    # update() rewrites only the block
    doc = tmp_path / "README.md"
    doc.write_text(f"intro\n{readme.BEGIN}\nstale 99.99\n{readme.END}\noutro\n")
    assert readme.update(doc, ROOT / "paper_figures" / "results.json")
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n") and "stale" not in text
    assert not readme.update(doc, ROOT / "paper_figures" / "results.json")      # already current


def test_readme_timing_table_sums_variants_and_shows_a_conditional_run_once():
    t = {"zoo": 10.0, "flow": 5.0, "evaluate": 2.0, "barrier": 1.0}
    exps = [{"experiment": "a", "variant": "", "run": "a", "timings": t},
            {"experiment": "a", "variant": "unaligned", "run": "a", "timings": {"zoo": 10.0, "flow": 4.0}},
            {"experiment": "c_x", "variant": "", "run": "c", "timings": {"zoo x": 3.0, "zoo y": 4.0, "flow": 6.0}},
            {"experiment": "c_y", "variant": "", "run": "c", "timings": {"zoo x": 3.0, "zoo y": 4.0, "flow": 6.0}}]
    lines = readme.timing_lines({"experiments": exps, "reproduce": {"profile": "quick", "seconds": 300.0}})
    rows = [line for line in lines if line.startswith("| a |") or line.startswith("| c |")]
    assert rows == ["| a | 10 | 0 | 0 | 5 | 0 | 2 | 0 | 0 | 1 | 4 | 22 |",     # the variant's zoo is shared
                    "| c | 7 | 0 | 0 | 6 | 0 | 0 | 0 | 0 | 0 | 0 | 13 |"]      # both member zoos, one row
    assert lines[-1].endswith("took **5.0 minutes** there.")
    side = readme.timing_lines({"experiments": exps,
                                "reproduce": {"profile": "quick", "seconds": 300.0, "side_by_side": True}})
    assert "took **5.0 minutes** there, its experiments built side by side" in side[-1]
    # the total column per run, which the next `make reproduce` starts longest first
    quick = [{**e, "profile": "quick"} for e in exps]
    assert readme.run_seconds({"experiments": quick}, "quick") == {"a": 22.0, "c": 13.0}
    assert readme.run_seconds({"experiments": quick}, "paper") == {}


def test_a_study_is_written_as_pngs_html_and_its_table(tmp_path):
    import plotly.graph_objects as go

    figs = {"one": go.Figure(go.Scatter(x=[1, 2], y=[3, 4])), "two": go.Figure(go.Bar(x=["a"], y=[1]))}
    written = figures.write_study(tmp_path / "s", figs, "| a |\n|---|")
    assert sorted(p.name for p in written) == ["one.html", "one.png", "results.md", "two.html", "two.png"]
    assert (tmp_path / "s/one.png").read_bytes().startswith(figures.PNG_MAGIC)
    assert (tmp_path / "s/results.md").read_text() == "| a |\n|---|\n"
    assert not list((tmp_path / "s").glob(".render-*"))
