"""The zoo-scaling profile on a tiny N: one zoo in the independent data order, grown rather than
retrained when it gets bigger, and smaller zoos read as its first members."""
from dataclasses import replace

import pytest
import torch

from dwf import ArtifactError, Cancelled, ConfigError, EvalSpec, FlowSpec, SampleSpec, dominance, experiments, pipeline
from dwf.zoo import Zoo


def tiny(n_models: int):
    """digits_mlp's scale profile shrunk to seconds: n_models members, 2 epochs, a short flow."""
    exp = experiments.get("digits_mlp", "scale")
    return replace(exp, zoo=replace(exp.zoo, n_models=n_models, epochs=2),
                   flow=FlowSpec(steps=40, eval_every=20, hidden=32), sample=SampleSpec(n=8, steps=4),
                   eval=EvalSpec(noise_sigmas=(0.01,), n_baseline=4, replicates=2, interpolation=False))


def test_the_scale_profile_is_one_large_zoo_in_the_independent_order():
    largest = {"digits_mlp": 4096, "fmnist_mlp": 4096, "digits_wide_mlp": 1024, "fmnist_wide_mlp": 1024,
               "fmnist_resnet20": experiments.SCALE_NETS, "fmnist_vit": experiments.SCALE_NETS}
    assert {n for n in experiments.names() if "scale" in experiments.profiles(n)} == set(largest)
    for name, n in largest.items():
        exp, quick = experiments.get(name, "scale"), experiments.get(name, "quick")
        assert exp.zoo.data_order == "independent" and exp.zoo.n_models == n
        # the quick recipe, N changed (the MLPs with the flow steps their committed studies ran with)
        steps = experiments.SCALE_FLOW_STEPS if quick.arch.kind == "mlp" else quick.flow.steps
        assert exp.flow == replace(quick.flow, steps=steps)
        assert replace(exp, profile="quick", zoo=quick.zoo, flow=quick.flow) == quick
        runs = experiments.scaling(exp)
        assert [r.members for r in runs] == [*(s for s in experiments.SCALE_SIZES if s < n), None]
        assert len({pipeline.stage_dir(r, "zoo") for r in runs}) == 1       # one zoo for every size
    with pytest.raises(ConfigError, match="no 'scale' profile"):
        experiments.get("iris_mlp", "scale")
    with pytest.raises(ConfigError, match="rotated data order"):
        experiments.scaling(experiments.get("digits_mlp", "quick"))


def test_a_zoo_that_grows_trains_only_its_new_members_and_equals_the_zoo_built_at_full_size(tmp_path, caplog):
    small, large = tiny(6), tiny(12)
    pipeline.build(small, tmp_path / "grown", progress=False, evaluate=False)
    with caplog.at_level("INFO", logger="dwf.zoo_stage"):
        grown = pipeline.build(large, tmp_path / "grown", progress=False, evaluate=False)
    assert "growing the zoo" in caplog.text and grown.zoo.info["grown_from"] == 6
    fresh = pipeline.build(large, tmp_path / "fresh", progress=False, evaluate=False)
    for k, v in fresh.zoo.params.items():
        assert torch.allclose(grown.zoo.params[k], v, atol=1e-6, rtol=0), k
    assert [m["best_epoch"] for m in grown.zoo.models] == [m["best_epoch"] for m in fresh.zoo.models]
    # the first 6 members of the 12-member zoo are the 6-member zoo, from alignment on
    part = pipeline.build(large.ablation("n6", members=6), tmp_path / "fresh", progress=False)
    alone = pipeline.build(small, tmp_path / "alone", progress=False)
    for k, v in alone.zoo.params.items():
        assert torch.allclose(part.zoo.params[k], v, atol=1e-6, rtol=0), k
    assert part.report.zoo.n_fit == alone.report.zoo.n_fit and part.report.zoo.held_out == alone.report.zoo.held_out
    assert part.report.zoo.val_score == alone.report.zoo.val_score
    assert part.report.generated.score.mean == pytest.approx(alone.report.generated.score.mean, abs=1e-6)


def test_one_size_of_the_study_trains_only_the_members_it_reads_and_a_larger_size_grows_them(tmp_path, caplog):
    large = tiny(12)
    small = large.ablation("n6", members=6)
    part = pipeline.build(small, tmp_path, progress=False, evaluate=False)
    folder = pipeline.stage_dir(large, "zoo", tmp_path)
    assert part.zoo.n == 6 and Zoo.load(folder).n == 6                   # 6 members trained, not 12
    with caplog.at_level("INFO", logger="dwf.zoo_stage"):
        whole = pipeline.build(large, tmp_path, progress=False, evaluate=False)
    assert "growing the zoo" in caplog.text and whole.zoo.info["grown_from"] == 6 and whole.zoo.n == 12
    fresh = pipeline.build(large, tmp_path / "fresh", progress=False, evaluate=False)
    for k, v in fresh.zoo.params.items():
        assert torch.allclose(whole.zoo.params[k], v, atol=1e-6, rtol=0), k
    # the smaller size now reads the first 6 of the 12 and keeps its cached stages
    align_record = pipeline.stage_dir(small, "align", tmp_path) / "stage.json"
    stamp = align_record.stat().st_mtime_ns
    again = pipeline.build(small, tmp_path, progress=False, evaluate=False)
    assert again.zoo.n == 6 and align_record.stat().st_mtime_ns == stamp
    for k, v in part.zoo.params.items():
        assert torch.equal(again.zoo.params[k], v), k
    assert Zoo.load(folder).n == 12


def test_a_growth_cut_short_keeps_the_smaller_zoo_and_resumes_where_it_stopped(tmp_path, caplog):
    small, large = tiny(6), tiny(12)
    pipeline.build(small, tmp_path, progress=False, evaluate=False)
    folder = pipeline.stage_dir(large, "zoo", tmp_path)
    with pytest.raises(Cancelled):   # stopped after the new members' first epoch (its checkpoint)
        pipeline.build(large, tmp_path, progress=False, evaluate=False,
                       cancel=lambda: (folder / "checkpoint.safetensors").exists())
    assert Zoo.load(folder / pipeline.GROWN_FROM).n == 6 and not (folder / "stage.json").exists()
    with caplog.at_level("INFO"):
        whole = pipeline.build(large, tmp_path, progress=False, evaluate=False)
    assert "growing the zoo" in caplog.text and "resuming zoo training at epoch 1" in caplog.text
    assert whole.zoo.n == 12 and not (folder / pipeline.GROWN_FROM).exists()
    fresh = pipeline.build(large, tmp_path / "fresh", progress=False, evaluate=False)
    for k, v in fresh.zoo.params.items():
        assert torch.allclose(whole.zoo.params[k], v, atol=1e-6, rtol=0), k


def test_members_must_fit_the_zoo():
    with pytest.raises(ConfigError, match="members must be from 3"):
        tiny(6).ablation("n8", members=8)


def test_the_study_runs_every_size_and_compares_with_noisy_copies_at_least_as_novel(tmp_path, monkeypatch):
    from dwf import scaling
    monkeypatch.setattr(experiments, "SCALE_SIZES", (6, 12))
    written = []
    monkeypatch.setattr(scaling.figures_mod, "write_study", lambda *args: written.append(args))
    points = scaling.write(tiny(12), tmp_path / "study", tmp_path, progress=False)
    assert [p.n for p in points] == [6, 12]
    # the study's folder gets its two figures and the table below (rendering: test_notebooks)
    assert [(out, sorted(figs), md) for out, figs, md in written] == [
        (tmp_path / "study", ["frontier_by_size", "reach_scaling"], scaling.markdown(points))]
    assert [p.report.zoo.n_fit + len(p.report.zoo.held_out) for p in points] == [6, 12]
    table = scaling.markdown(points).splitlines()
    assert table[2].startswith("| 6 |") and table[3].startswith("| 12 |")
    for p, row in zip(points, table[2:4]):     # each size's row ends with dwf.dominance's outcome
        assert row.endswith(f"| {dominance.of(p.report).outcome} |")
    reach_rows = [line for line in table if "pp |" in line]
    assert [row.split(" | ")[:2] for row in reach_rows] == [[f"| {n}", lv] for n in (6, 12)
                                                             for lv in ("0.3 pp", "1 pp", "10 pp")]
    figs = scaling.figures(points)
    lines = {t.name for t in figs["reach_scaling"].data}
    assert lines == {f"{f}, loss ≤ {lv} pp" for f in ("flow", "noisy copies", "fitted Gaussian")
                     for lv in ("0.3", "1", "10")}
    # each reach row says whether the flow beats each trivial generator, as Reach.beats decides
    for p, row in zip([p for p in points for _ in range(3)], reach_rows):
        lv = float(row.split(" | ")[1].split(" ")[0]) / 100
        said = row.rstrip(" |").split(" | ")[-2:]
        assert said == [{True: "yes", False: "no", None: "undecided"}[p.reach.beats("flow", r, lv)]
                        for r in ("noisy copies", "fitted Gaussian")]
    panels = figs["frontier_by_size"]
    assert [a.text for a in panels.layout.annotations] == ["N = 6", "N = 12"]
    noisy = [t for t in panels.data if t.name == "noisy copies"]
    assert len(noisy) == 2 and list(noisy[1].x) == [v.mean for v in points[1].reach.curve("noisy copies").novelty]


def test_a_zoo_edited_since_it_was_saved_is_refused_before_it_is_grown(tmp_path):
    small, large = tiny(6), tiny(12)
    pipeline.build(small, tmp_path, progress=False, evaluate=False)
    weights = pipeline.stage_dir(large, "zoo", tmp_path) / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF                       # same size, other bytes
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="changed after stage 'zoo'"):
        pipeline.build(large, tmp_path, progress=False, evaluate=False)


def test_the_study_with_a_recipe_runs_the_recipe_sweeps_runs_at_every_size(tmp_path, monkeypatch):
    from dwf import recipe, scaling
    from dwf.cli import main
    monkeypatch.setattr(experiments, "SCALE_SIZES", (6, 12))
    zoo_recipe = recipe.Recipe("zoo-lr3x", zoo_lr_factor=3.0)
    points = scaling.run(tiny(12), tmp_path, progress=False, recipe=zoo_recipe)
    assert [p.n for p in points] == [6, 12]
    assert {p.report.experiment for p in points} == {"digits_mlp-zoo-lr3x"}
    sized = [zoo_recipe.apply(e) for e in experiments.scaling(tiny(12))]
    for p, e in zip(points, sized):    # the same runs (and caches) as `dwf recipes` at that size
        assert pipeline.experiment_dir(e, tmp_path).joinpath("report.json").exists()
        assert p.report.zoo.n_fit + len(p.report.zoo.held_out) == (e.members or e.zoo.n_models)
    assert Zoo.load(pipeline.stage_dir(sized[-1], "zoo", tmp_path)).n == 12            # one zoo, grown
    assert not pipeline.stage_dir(tiny(12), "zoo", tmp_path).exists()                  # not the plain one
    # the command refuses a recipe outside the scale profile, before any work
    assert main(["run", "digits_mlp", "--recipe", "zoo-lr3x", "--artifacts", str(tmp_path / "q")]) == 2
    assert not (tmp_path / "q").exists() or not any((tmp_path / "q").iterdir())


def test_a_reach_line_breaks_at_a_size_where_nothing_is_reached():
    from dwf import plots
    from dwf.interval import Interval
    nothing = Interval.of([float("nan")] * 3)
    fig = plots.reach_scaling([64, 256, 1024], {("flow", 0.1): [Interval.of([0.1, 0.2, 0.3]), nothing,
                                                                Interval.of([0.5, 0.6, 0.7])],
                                                ("flow", 0.003): [nothing] * 3})
    line, = [t for t in fig.data if t.name == "flow, loss ≤ 10 pp"]
    assert line.x == (64, 256, 1024) and line.connectgaps is False
    assert list(line.y) == [pytest.approx(0.2), None, pytest.approx(0.6)]
    assert line.error_y.array[1] is None and line.error_y.array[2] > 0
    assert "reached at no N: flow, loss ≤ 0.3 pp" in fig.layout.title.text
