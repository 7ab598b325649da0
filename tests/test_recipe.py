"""Flow recipes (dwf.recipe): what a recipe changes, the choice rule, and a sweep that never
needs the test split."""
import io
from dataclasses import replace

import pytest
import torch

from dwf import archs, baselines, figures, pipeline, recipe, stacked
from dwf.errors import ConfigError, DwfError
from dwf.interval import Interval
from dwf.novelty import radius, spread
from dwf.sample import generate
from dwf.task import task_for

from test_scaling import tiny


def test_a_recipe_changes_only_what_it_names():
    exp = tiny(12)
    assert recipe.PAPER.apply(exp) is exp
    e = recipe.Recipe("r", hidden=128, batch_size=4, standardize=True, source_std=1.0, n_components=5,
                      ode_steps=7, snapshot="last").apply(exp)
    assert e.variant == "recipe-r" and e.zoo == exp.zoo and e.align == exp.align
    assert e.flow == replace(exp.flow, hidden=128, batch_size=4, standardize=True, source_std=1.0,
                                 snapshot="last")
    assert e.pca.n_components == 5 and e.sample.steps == 7
    assert e.sample.source_std is None    # sampled at the training std
    assert e.stage_hash("zoo") == exp.stage_hash("zoo") and e.stage_hash("flow") != exp.stage_hash("flow")
    reg = recipe.Recipe("reg", dropout=0.4, weight_decay=1e-2).apply(exp)
    assert reg.flow == replace(exp.flow, dropout=0.4, weight_decay=1e-2) and reg.sample == exp.sample
    # a temperature samples the same flow from a narrower source: τ times its training std
    cold = recipe.Recipe("cold", temperature=0.4).apply(exp)
    assert cold.flow == exp.flow and cold.variant == "recipe-cold"
    assert cold.sample == replace(exp.sample, source_std=0.4 * exp.flow.source_std)
    white_cold, = recipe.named(["whitened+t0.5"])
    assert white_cold.apply(exp).sample.source_std == 0.5 * 1.0       # of the recipe's own training std
    with pytest.raises(ConfigError, match="temperature"):
        recipe.Recipe("bad", temperature=0.0).apply(exp)


def test_a_zoo_recipe_is_another_experiment_whose_zoo_trains_at_its_learning_rate(tmp_path, monkeypatch):
    from dwf import experiments

    exp = tiny(12)
    z = recipe.Recipe("z", zoo_lr_factor=3.0)
    e = z.apply(exp)
    assert e.name == f"{exp.name}-zoo-lr3x" and e.variant == ""
    assert e.zoo == replace(exp.zoo, lr=3 * exp.zoo.lr)
    assert (e.data, e.arch, e.align, e.pca, e.flow, e.sample) == (exp.data, exp.arch, exp.align, exp.pca, exp.flow, exp.sample)
    assert pipeline.stage_dir(e, "zoo", tmp_path) != pipeline.stage_dir(exp, "zoo", tmp_path)
    longer = recipe.Recipe("ze", zoo_lr_factor=3.0, zoo_epochs_factor=2).apply(exp)
    assert longer.name == f"{exp.name}-zoo-lr3x-ep2x" and longer.zoo == replace(e.zoo, epochs=2 * exp.zoo.epochs)
    assert recipe.Recipe("e", zoo_epochs_factor=2).apply(exp).name == f"{exp.name}-zoo-ep2x"
    for bad in (dict(zoo_lr_factor=0.0), dict(zoo_epochs_factor=0), dict(zoo_epochs_factor=1.5)):
        with pytest.raises(DwfError, match="factor"):
            recipe.Recipe("bad", **bad).apply(exp)
    with_flow = recipe.Recipe("zh", zoo_lr_factor=3.0, hidden=16).apply(exp)
    assert with_flow.name == e.name and with_flow.variant == "recipe-zh" and with_flow.flow.hidden == 16
    monkeypatch.setattr(experiments, "SCALE_SIZES", (6, 12))
    small = z.apply(experiments.scaling(exp)[0])             # one size of the study: its first members
    assert small.name == e.name and small.members == 6 and small.zoo == e.zoo
    trained = pipeline.build(e, tmp_path, progress=False, evaluate=False).zoo
    assert not pipeline.stage_dir(exp, "zoo", tmp_path).exists()      # the experiment's own zoo untouched
    own = pipeline.build(exp, tmp_path, progress=False, evaluate=False).zoo
    assert not torch.equal(trained.params["fc.0.weight"], own.params["fc.0.weight"])


def test_two_named_recipes_join_with_a_plus_into_one_that_makes_both_changes():
    exp = tiny(12)
    both, = recipe.named(["zoo-lr3x+whitened"])
    zoo, flow = recipe.named(["zoo-lr3x", "whitened"])
    assert both.name == "zoo-lr3x+whitened" and recipe.named(["whitened"]) == [flow]
    e = both.apply(exp)
    assert e.name == zoo.apply(exp).name and e.zoo == zoo.apply(exp).zoo       # the 3x zoo ...
    assert e.flow == flow.apply(exp).flow and e.variant == "recipe-zoo-lr3x+whitened"   # ... with the whitened flow
    assert recipe.combined([flow, recipe.named(["last"])[0]]).snapshot == "last"   # equal settings agree
    with pytest.raises(ConfigError, match="both set source_std"):
        recipe.named(["whitened+source0.1"])
    with pytest.raises(ConfigError, match=r"unknown recipes \['fast'\]"):
        recipe.named(["zoo-lr3x+fast"])


def test_each_size_of_the_scaling_study_keeps_its_own_recipe_runs(monkeypatch):
    from dwf import experiments

    monkeypatch.setattr(experiments, "SCALE_SIZES", (6, 12))
    small, whole = experiments.scaling(tiny(12))
    r = recipe.Recipe("r", hidden=128)
    assert (r.apply(small).variant, r.apply(whole).variant) == ("n6-recipe-r", "recipe-r")
    assert r.apply(small).members == 6


def test_every_candidate_has_its_own_name_and_changes_something_but_the_paper_recipe():
    names = [r.name for r in recipe.CANDIDATES]
    assert len(set(names)) == len(names) and names[0] == "paper"
    exp = tiny(12)
    assert all(r.apply(exp) is not exp for r in recipe.CANDIDATES[1:])


def scored(name, gap, nov, mem, floor=0.0, spread=0.8):
    one = lambda v: Interval.of([v, v])  # noqa: E731
    return recipe.Scored(recipe.Recipe(name), one(gap), one(nov), floor, one(1.0), one(mem), one(0.1), one(1.0), -0.1,
                         spread=one(spread))


def test_the_rule_takes_the_best_validation_gap_among_new_recipes_that_work():
    s = [scored("paper", 0.0, 0.02, 1.0),            # copies: the best gap, not new
         scored("a", -0.009, 0.7, 0.0),
         scored("b", -0.004, 0.6, 0.0),
         scored("c", -0.001, 0.9, 0.5),              # new-looking but memorizes half its nets
         scored("d", -0.001, 0.6, 0.0, floor=0.3),   # only 0.3 above its encode → decode floor
         scored("e", -0.125, 0.71, 0.02),            # new, but 12.5 pp worse: does not work
         scored("f", -0.001, 0.75, 0.0, spread=0.1)]  # new to the members, but crowded onto a few nets
    assert recipe.choose(s) == "b"
    assert recipe.choose(s[:1] + s[3:]) == "paper"   # none new and working: the experiment's own
    assert recipe.choose(s[3:]) == "paper"           # ... even where the sweep did not run it
    table = recipe.Sweep("x", 64, s[3:], recipe.choose(s[3:])).markdown()
    assert "(chosen)" not in table and "the experiment keeps its own (paper)" in table
    assert [x.works for x in s] == [True, True, True, True, True, False, True]
    assert [x.new for x in s] == [False, True, True, False, False, True, False]
    assert "| e | -12.50 " in recipe.Sweep("x", 64, s, recipe.choose(s)).markdown().replace("−", "-")
    # the noisy copies' best gap at least as novel as the recipe: linear between their points
    x = replace(scored("x", -0.01, 0.5, 0.0), noisy=((0.8, -0.041), (0.2, -0.001)))
    assert x.noisy_gap == pytest.approx(-0.021) and replace(x, noisy=((0.3, -0.02), (0.4, -0.04))).noisy_gap is None
    assert replace(x, noisy=((0.6, -0.02), (0.8, -0.04))).noisy_gap == pytest.approx(-0.02)   # more novel, as good
    assert recipe.Sweep("x", 64, [x], "x").markdown().endswith("| -2.10 | — | — |")
    # ... and the fitted Gaussian's and the crossover's, the other trivial generators, in the last columns
    xg = replace(x, gaussian=((0.4, -0.03), (0.6, -0.05)), crossover=((0.45, -0.002), (0.65, -0.012)))
    assert xg.gaussian_gap == pytest.approx(-0.04) and xg.crossover_gap == pytest.approx(-0.0045)
    assert recipe.Sweep("x", 64, [xg], "x").markdown().endswith("| -2.10 | -4.00 | -0.45 |")


def test_the_sweep_scores_on_validation_and_distances_only(tmp_path):
    """The run's test split stays locked (reading it raises), so scoring cannot select on it;
    the novelty it reports is the one of the nets the flow generates against the fitting members."""
    exp = tiny(12)
    rs = [recipe.PAPER, recipe.Recipe("k4", n_components=4), recipe.Recipe("k20", n_components=20),
          recipe.Recipe("zoo-lr3x", zoo_lr_factor=3.0)]
    sw = recipe.sweep(exp, rs, tmp_path)
    assert [s.recipe.name for s in sw.scored] == ["paper", "k4", "zoo-lr3x"] and sw.n == 12
    assert sw.skipped == ("k20",)                            # k = 20 needs more than 20 fitting members
    paper, k4, other_zoo = sw.scored
    assert paper.floor == pytest.approx(0.0, abs=1e-3)      # k = n − 1: members are exactly representable
    assert k4.floor > 0.05                                   # k = 4 < n − 1: projection error
    run = pipeline.build(exp, tmp_path, progress=False, evaluate=False)
    with pytest.raises(Exception):
        run.data.x_test
    assert paper.val_gap.n == exp.eval.replicates
    # noisy copies of the same members: novelty near each target at the low end, rising with σ;
    # the smallest noise barely changes the members' score
    novs = [nv for nv, _ in paper.noisy]
    assert len(novs) == len(baselines.NOISY_NOVELTY) and novs[0] == pytest.approx(baselines.NOISY_NOVELTY[0], rel=0.5)
    assert novs[0] < novs[2] < novs[-1] and abs(paper.noisy[0][1]) < 0.02
    # the Gaussian fitted to the recipe's own codes: one point per std factor, wider ones farther out
    gnovs = [nv for nv, _ in paper.gaussian]
    assert len(gnovs) == len(baselines.GAUSSIAN_SCALES) and gnovs[0] < gnovs[-1]
    # the members' crossover: one point per blend, farther out as the blend toward their mean falls;
    # it reads the aligned members only, so every recipe on the same zoo gets the same curve
    cnovs = [nv for nv, _ in paper.crossover]
    assert len(cnovs) == len(baselines.CROSSOVER_BLENDS) and cnovs == sorted(cnovs) and cnovs[0] < cnovs[-1]
    assert k4.crossover == paper.crossover and other_zoo.crossover != paper.crossover
    # radius: the generated nets' distance to the fitting members' centroid, recomputed per replicate
    fit = run.fit.vectors()
    radii = [radius(generate(f, run.pca, exp.arch, replace(exp.sample, seed=exp.sample.seed + r),
                             run.data.x_train).vectors, fit) for r, f in enumerate(run.flows)]
    assert paper.radius.mean == pytest.approx(sum(radii) / len(radii), rel=1e-6)
    spreads = [spread(generate(f, run.pca, exp.arch, replace(exp.sample, seed=exp.sample.seed + r),
                               run.data.x_train).vectors, fit) for r, f in enumerate(run.flows)]
    assert paper.spread.mean == pytest.approx(sum(spreads) / len(spreads), rel=1e-6)
    # the centroid's gap: the members' mean net scored like any generated net, the same for every recipe
    task, model = task_for(run.data), archs.build(exp.arch)
    val = lambda p: float(task.score(stacked.predict(model, p, run.data.x_val, task=task), run.data.y_val).mean())  # noqa: E731
    mean_net = run.fit.layout.unflatten_stacked(fit.mean(0, keepdim=True))
    assert paper.centroid_gap == pytest.approx(val(mean_net) - val(run.fit.params), abs=1e-9)
    assert k4.centroid_gap == paper.centroid_gap
    assert paper.zoo_val == pytest.approx(val(run.fit.params), abs=1e-9) and k4.zoo_val == paper.zoo_val
    # a zoo recipe's gaps are measured from its own members, which the table shows
    zrun = pipeline.build(recipe.Recipe("zoo-lr3x", zoo_lr_factor=3.0).apply(exp), tmp_path, progress=False,
                          evaluate=False)
    assert other_zoo.zoo_val == pytest.approx(val(zrun.fit.params), abs=1e-9) and other_zoo.zoo_val != paper.zoo_val
    assert sw.chosen in ("paper", "k4")
    md = sw.markdown()
    assert "| paper" in md and "| k4" in md and "(chosen)" in md
    assert "Not run at N = 12" in md and "k20" in md
    # a sweep over some of the candidates names the ones it left out
    assert f"| {100 * other_zoo.centroid_gap:+.2f} | {other_zoo.zoo_val:.4f} |" in md
    assert sw.omitted == tuple(c.name for c in recipe.CANDIDATES if c.name not in ("paper", "zoo-lr3x"))
    assert md.endswith("Not asked for in this sweep (`--recipes`): " + ", ".join(sw.omitted) + ".")
    # the figure: the first recipe's trivial-generator curves, and a point per recipe on its zoo
    fig = sw.figure()
    names = [t.name for t in fig.data]
    assert names == ["noisy copies", "fitted Gaussian", "crossover", "paper", "k4"] and "not drawn: zoo-lr3x" in fig.layout.title.text
    point = fig.data[names.index("k4")]
    assert point.x == (k4.novelty.mean,) and point.y == pytest.approx((100 * k4.val_gap.mean,))
    assert fig.data[2].x == tuple(sorted(nv for nv, _ in paper.crossover))
    written = figures.write_figure(tmp_path / "sweep" / "recipes", fig)
    assert [p.name for p in written] == ["recipes.png", "recipes.html"] and written[0].read_bytes()[:4] == b"\x89PNG"


def test_a_logged_sweep_tells_each_stage_as_it_ends(tmp_path):
    """A sweep that trains a zoo for an hour is not silent: every stage of each recipe's build is
    a line in the log as it ends (the zoo first), then the recipe's scores."""
    exp, log = tiny(12), io.StringIO()
    recipe.sweep(exp, [recipe.PAPER], tmp_path, log=log)
    lines = log.getvalue().splitlines()
    stages = [ln.split()[3] for ln in lines if ln.startswith(f"{exp.name} N=12 paper ")]
    assert stages == ["data", "zoo", "align", "pca", "flow", "total"]
    assert lines[-1].startswith(f"{exp.name} N=12 recipe paper: validation gap")


@pytest.mark.parametrize("args, words", [
    (["--n", "100"], "--n 100 is not a size of the scaling study"),
    (["--recipes", "paper,fast"], "unknown recipes ['fast']"),
])
def test_the_recipes_command_checks_its_input_before_any_work(tmp_path, capsys, args, words):
    from dwf.cli import main

    assert main(["recipes", "digits_mlp", "--artifacts", str(tmp_path), *args]) == 2
    assert words in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
