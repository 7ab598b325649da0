"""The accuracy-novelty frontier: every family swept, baselines move away from the zoo as their
knob turns, the paper's recipe is one marked point, and the report shows it all."""
import torch

from dwf import frontier, paper, plots


def test_interpolations_at_lambda_zero_are_zoo_members_and_halfway_is_the_midpoint():
    V = torch.randn(5, 7, generator=torch.Generator().manual_seed(0))
    same = frontier.interpolations_at(V, 6, 0.0, torch.Generator().manual_seed(1))
    assert all(any(torch.equal(r, v) for v in V) for r in same)
    g1, g2 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    mid = frontier.interpolations_at(V, 6, 0.5, g1)
    i = torch.randint(5, (6,), generator=g2)
    j = (i + 1 + torch.randint(4, (6,), generator=g2)) % 5
    assert torch.allclose(mid, (V[i] + V[j]) / 2)


def test_frontier_sweeps_every_family_in_the_report(fmnist_smoke_run):
    rep = fmnist_smoke_run.report
    pts = rep.extras["frontier"]
    fams = {p["family"] for p in pts}
    assert fams == {"generated", "generated, standardized codes", "noisy copies", "interpolation"}
    recipe = [p for p in pts if p["recipe"]]
    assert len(recipe) == 1 and recipe[0]["family"] == "generated"
    assert recipe[0]["param"] == fmnist_smoke_run.flow.spec.source_std
    assert {p["param"] for p in pts if p["family"] == "generated"} >= set(fmnist_smoke_run.experiment.eval.frontier_stds)
    # turning a baseline's knob moves its nets away from the zoo (λ up to 1/2, σ up)
    for fam, key in (("noisy copies", "param"), ("interpolation", "param")):
        nov = [p["novelty"] for p in sorted((p for p in pts if p["family"] == fam), key=lambda p: p[key])]
        assert nov == sorted(nov), (fam, nov)
    assert all(0.0 <= p["acc_mean"] <= 1.0 and p["novelty"] >= 0 for p in pts)
    fig = plots.frontier(pts, rep.row("zoo")["acc_mean"])
    assert {t.name for t in fig.data} == fams | {"paper recipe"}
    md = paper.results_markdown([rep])
    assert "Accuracy–novelty frontier" in md and "(paper recipe)" in md
    assert "frontier" in paper.figures(rep)
