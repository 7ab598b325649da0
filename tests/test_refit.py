"""A generator refit to its own guided nets (dwf.refit): the Gaussian kind's draws and refits follow
their moments analytically, a chain hands each round's guided nets to the next fit, and the study
scores both kinds alike at round 0 and the last round."""
import pytest
import torch

from dwf import recipe, refit
from dwf.errors import ConfigError
from dwf.guidance import Guidance
from dwf.interval import Interval
from dwf.guided import Nets
from dwf.pca import DualPCA

from test_scaling import tiny


def codes_and_pca(m=40, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(m, d, generator=g) * torch.linspace(3.0, 0.5, d) + 2.0      # (m, d) members
    pca = DualPCA().fit(X)
    return pca.transform(X), pca                                               # (m, k) codes


def test_the_gaussian_draws_its_codes_mean_plus_temperature_times_their_std():
    Z, _ = codes_and_pca()
    g = refit.GaussianGenerator(Z)
    one, half = g.draw(500, 1.0, seed=3), g.draw(500, 0.5, seed=3)
    mu = Z.mean(0)
    assert torch.allclose(half - mu, 0.5 * (one - mu), atol=1e-5)             # τ scales the std, same noise
    big = g.draw(40_000, 1.0, seed=4)
    assert torch.allclose(big.mean(0), mu, atol=0.05 * Z.std(0).max())
    spanned = Z.std(0) > 1e-3
    assert torch.allclose(big.std(0)[spanned] / Z.std(0)[spanned], torch.ones(int(spanned.sum())), atol=0.03)


def test_a_chain_of_gaussians_shrinks_by_the_temperature_each_round_when_guidance_does_nothing():
    Z, pca = codes_and_pca()
    seen = []

    def identity(V):
        seen.append(V.shape)
        return V

    last = refit.chain(refit.GaussianGenerator(Z), rounds=2, M=20_000, temperature=0.5, pca=pca, guided=identity, seed=1)
    assert seen == [(20_000, pca.mean_.shape[0])] * 2                          # M decoded nets per round
    ratio = last.codes.std(0) / Z.std(0)
    big = Z.std(0) > 1e-3                                                      # components the members span
    assert torch.allclose(ratio[big], torch.full_like(ratio[big], 0.25), rtol=0.05)
    assert torch.allclose(last.codes.mean(0), Z.mean(0), atol=0.05 * Z.std(0).max())


def test_a_chain_fits_each_round_to_the_guided_nets_codes():
    Z, pca = codes_and_pca()
    shift = pca.inverse_transform(Z[:1]) - pca.mean_                         # a direction inside the span
    last = refit.chain(refit.GaussianGenerator(Z), rounds=1, M=5_000, temperature=1.0, pca=pca,
                       guided=lambda V: V + shift, seed=2)
    assert torch.allclose(last.codes.mean(0), Z.mean(0) + Z[0], atol=0.1 * Z.std(0).max())


def test_bad_rounds_are_named():
    for bad in (0, -1, 1.5):
        with pytest.raises(ConfigError, match="whole number >= 1"):
            refit.Refit(bad)
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        refit.Refit(2, 0.0)


def row(kind, rnd, nov, gap, lo=None, hi=None):
    nets = Nets(Interval(nov, nov, nov, 3), Interval(gap, gap if lo is None else lo, gap if hi is None else hi, 3),
                Interval(0.5, 0.5, 0.5, 3), Interval(0.0, 0.0, 0.0, 3))
    return refit.Row(kind, rnd, 1.0, False, nets)


def test_a_row_is_ahead_only_when_its_whole_interval_is_above_the_other_kinds_curve_of_its_round():
    gauss = (row("Gaussian", 2, 0.4, -0.001), row("Gaussian", 2, 0.8, -0.011),  # −0.006 at novelty 0.6
             row("Gaussian", 0, 0.4, -0.5), row("Gaussian", 0, 0.8, -0.6))      # another round: not compared
    study = lambda r: refit.RefitStudy("x", 64, "paper", Guidance(), refit.Refit(2), (*gauss, r), 0.0)  # noqa: E731
    assert study(f := row("flow", 2, 0.6, -0.002, -0.004, 0.0)).verdict(f) == "ahead"
    assert study(f := row("flow", 2, 0.6, -0.01, -0.012, -0.008)).verdict(f) == "behind"
    assert study(f := row("flow", 2, 0.6, -0.006, -0.01, -0.002)).verdict(f) == "tied"
    assert study(f := row("flow", 2, 0.9, 0.0, -0.01, 0.01)).verdict(f) == "—"    # no Gaussian point as novel
    g = row("Gaussian", 2, 0.5, -0.02, -0.03, -0.015)                          # and the Gaussian against the flow
    assert study(row("flow", 2, 0.6, -0.002, -0.004, 0.0)).verdict(g) == "behind"


def test_the_study_refits_both_kinds_alike_and_scores_round_zero_and_the_last(tmp_path):
    exp = tiny(12)
    rs = refit.study(exp, recipe.PAPER, Guidance(steps=5, lr=0.05), refit.Refit(1), tmp_path)
    keys = [(r.kind, r.round, r.temperature, r.guided) for r in rs.rows]
    assert sorted(keys) == sorted((k, j, t, g) for k in refit.KINDS for j in (0, 1)
                                  for t in refit.TEMPERATURES for g in (False, True))
    assert all(r.nets.gap.n == exp.eval.replicates for r in rs.rows)
    flow = {(r.round, r.temperature, r.guided): r.nets for r in rs.rows if r.kind == "flow"}
    assert flow[(1, 1.0, False)].novelty.mean != flow[(0, 1.0, False)].novelty.mean   # the refit flow is another
    assert flow[(0, 1.0, True)].gap.mean != flow[(0, 1.0, False)].gap.mean             # guidance moved the nets
    assert "| flow | 1 | 1 | yes |" in rs.markdown()
    fig = rs.figure()
    assert len(fig.data) == 8 and {t.line.dash for t in fig.data} == {"dot", "solid"}


def test_the_refit_command_checks_its_input_before_any_work(tmp_path, capsys):
    from dwf.cli import main

    assert main(["refit", "digits_mlp", "--rounds", "0", "--artifacts", str(tmp_path)]) == 2
    assert "whole number >= 1" in capsys.readouterr().err
    assert main(["refit", "fmnist_resnet20", "--artifacts", str(tmp_path)]) == 2
    assert "without BatchNorm" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_the_target_asks_for_every_number_at_once():
    from dataclasses import replace

    iv = lambda m, lo=None, hi=None: Interval(m, m if lo is None else lo, m if hi is None else hi, 3)  # noqa: E731
    good = Nets(novelty=iv(0.62), gap=iv(-0.001, -0.0025, 0.0), spread=iv(0.6), memorized=iv(0.05))
    assert refit.on_target(good, floor=0.0)
    assert not refit.on_target(good, floor=0.2)                                # only 0.42 above the floor
    assert not refit.on_target(replace(good, gap=iv(-0.001, -0.004, 0.002)), floor=0.0)   # reaches −0.4 pp
    assert not refit.on_target(replace(good, spread=iv(0.4)), floor=0.0)
    assert not refit.on_target(replace(good, memorized=iv(0.2)), floor=0.0)
