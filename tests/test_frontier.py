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
