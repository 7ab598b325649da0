"""The accuracy-novelty frontier: every family swept, baselines move away from the zoo as their
knob turns, the paper's recipe is one marked point, and the report shows it all."""
import torch

from dwf import PopulationSpec, evaluate, figures, plots, reporting, tables


def test_interpolations_at_lambda_zero_are_members_and_halfway_is_a_midpoint(fmnist_smoke_run):
    ctx = reporting.context(fmnist_smoke_run)
    fit = ctx.layout.flatten(ctx.fit, stacked=True)
    same = ctx.layout.flatten(evaluate.build(ctx, PopulationSpec("interpolation", lam=0.0)), stacked=True)
    assert all(any(torch.allclose(r, v) for v in fit) for r in same)
    mid = ctx.layout.flatten(evaluate.build(ctx, PopulationSpec("interpolation", lam=0.5)), stacked=True)
    # each midpoint is the average of two distinct members: twice it minus some member is a member
    for m in mid:
        assert any(any(torch.allclose(2 * m - a, b, atol=1e-5) for b in fit if not torch.equal(a, b)) for a in fit)


def test_frontier_sweeps_every_family_in_the_report(fmnist_smoke_run):
    rep = fmnist_smoke_run.report
    pts = rep.frontier
    fams = {p.family for p in pts}
    assert fams == {"generated", "generated, standardized codes", "noisy copies", "interpolation"}
    recipe = [p for p in pts if p.recipe]
    assert len(recipe) == 1 and recipe[0].family == "generated"
    assert recipe[0].param == fmnist_smoke_run.flow.spec.source_std
    assert {p.param for p in pts if p.family == "generated"} >= set(fmnist_smoke_run.experiment.eval.frontier_stds)
    # turning a baseline's knob moves its nets away from the zoo (λ up to 1/2, σ up)
    for fam in ("noisy copies", "interpolation"):
        nov = [p.novelty for p in sorted((p for p in pts if p.family == fam), key=lambda p: p.param)]
        assert nov == sorted(nov), (fam, nov)
    fig = plots.frontier(pts, rep.zoo_population.score.mean)
    assert {t.name for t in fig.data} == fams | {"paper recipe"}
    md = tables.results_markdown([rep])
    assert "Accuracy–novelty frontier" in md and "(paper recipe)" in md
    assert "frontier" in figures.figures(rep)


def test_frontier_reuses_the_reports_measurements_exactly(fmnist_smoke_run):
    """The recipe point is the report's generated population, and a noisy-copy point the report
    shares (same σ, same size) is the very same nets: measuring it again gives the same numbers."""
    rep, exp = fmnist_smoke_run.report, fmnist_smoke_run.experiment
    g = rep.generated
    recipe = next(p for p in rep.frontier if p.recipe)
    assert abs(recipe.score - sum(g.per_net.score) / g.n) < 1e-6 and recipe.novelty > 0
    sigma = exp.eval.noise_sigmas[0]
    point = next(p for p in rep.frontier if p.family == "noisy copies" and p.param == sigma)
    ctx = reporting.context(fmnist_smoke_run)
    spec = PopulationSpec("noisy", sigma=sigma)
    again = evaluate.measure(ctx, evaluate.Reference.of(ctx), spec, evaluate.build(ctx, spec, 0))
    assert point.score == float(again.score.mean()) and point.novelty == again.novelty


def test_frontier_plot_has_no_point_labels_and_clean_log_ticks(fmnist_smoke_run):
    pts = fmnist_smoke_run.report.frontier
    fig = plots.frontier(pts, 0.8)
    lines = [t for t in fig.data if t.name != "paper recipe"]
    assert all("text" not in t.mode for t in lines)                       # settings on hover only
    assert all(len(t.hovertext) == len(t.x) for t in lines)
    assert fig.layout.xaxis.type == "log"
    ax = fig.layout.xaxis
    if ax.tickvals is not None:                                           # under a decade: 1-2-5 ticks
        assert {f"{v:g}"[0] for v in ax.tickvals} <= {"1", "2", "5"}
    else:
        assert ax.dtick == 1                                              # powers of ten only
