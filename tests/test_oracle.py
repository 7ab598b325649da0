"""The leading-codes oracle (dwf.oracle): its heads are the members' own, its tail is the fitted
Gaussian's (at k = 0 the Gaussian's very draws), and the study scores every generator alike."""
import pytest
import torch

from dwf import oracle, pipeline, recipe
from dwf.errors import ConfigError
from dwf.guided import Nets
from dwf.interval import Interval
from dwf.refit import GaussianGenerator

from test_refit import codes_and_pca
from test_scaling import tiny


def test_the_oracle_draws_whole_member_heads():
    Z, _ = codes_and_pca()
    heads = oracle.Copies(Z[:, :3]).draw(200, 0.4, seed=1)                   # (200, 3)
    same = (heads[:, None, :] == Z[None, :, :3]).all(-1)                      # (200, M) equal to member j's head
    assert torch.all(same.any(1))                                             # every head is one member's, exactly
    assert len({int(i) for i in same.float().argmax(1)}) > len(Z) // 2       # drawn from many members


def test_marginals_keep_each_component_and_break_their_dependence():
    Z, _ = codes_and_pca()
    H = Z[:, :3]                                                              # (M, 3)
    m = oracle.Marginals(H).draw(20_000, 0.4, seed=2)                         # (20000, 3)
    for c in range(3):   # every value is one of that component's own, each member's about equally often
        hits = (m[:, c, None] == H[None, :, c]).float()                       # (20000, M)
        assert torch.all(hits.sum(1) >= 1)
        share = hits.mean(0) * len(H)                                         # 1 for a uniform draw
        assert share.min() > 0.7 and share.max() < 1.3
    # drawn independently: whole rows of H are as rare as chance makes them (1 / M per draw, not 1)
    whole = (m[:, None, :] == H[None]).all(-1).any(1).float().mean()
    assert whole < 5 / len(H)


def test_the_tail_is_the_fitted_gaussians_and_k_zero_is_the_gaussian_itself():
    Z, _ = codes_and_pca()
    K = Z.shape[1]
    assert torch.equal(oracle.with_tail(None, Z, 0, 50, 0.7, seed=5), GaussianGenerator(Z).draw(50, 0.7, seed=5))
    head = oracle.Copies(Z[:, :4])
    z = oracle.with_tail(head, Z, 4, 40_000, 0.5, seed=6)                     # (n, K)
    assert z.shape == (40_000, K)
    assert torch.equal(z[:, :4], head.draw(40_000, 1.0, seed=7))              # the head's own draws
    tail, sd = z[:, 4:], Z[:, 4:].std(0)
    assert torch.allclose(tail.mean(0), Z[:, 4:].mean(0), atol=0.05 * sd.max())
    spanned = sd > 1e-3
    assert torch.allclose(tail.std(0)[spanned] / sd[spanned], torch.full((int(spanned.sum()),), 0.5), atol=0.02)
    # a head that has a temperature is drawn at 1 all the same, or at the size it is given: only the tail is cooled
    g = oracle.with_tail(GaussianGenerator(Z[:, :4]), Z, 4, 40_000, 0.5, seed=6)
    assert torch.equal(g[:, 4:], tail)
    assert torch.allclose(g[:, :4].std(0) / Z[:, :4].std(0), torch.ones(4), atol=0.02)
    sized = oracle.with_tail(oracle.AtSize(GaussianGenerator(Z[:, :4]), 0.8), Z, 4, 40_000, 0.5, seed=6)
    assert torch.equal(sized[:, 4:], tail)
    assert torch.equal(sized[:, :4], GaussianGenerator(Z[:, :4]).draw(40_000, 0.8, seed=7))
    assert torch.allclose(sized[:, :4].std(0) / Z[:, :4].std(0), torch.full((4,), 0.8), atol=0.02)


def test_head_sizes_outside_the_codes_are_named():
    for bad in ((), (0,), (8,), (2, 9)):
        with pytest.raises(ConfigError, match="between 1 and 7"):
            oracle.check_heads(bad, 8)
    oracle.check_heads((1, 7), 8)


def test_a_row_counts_as_ahead_only_when_its_interval_clears_the_gaussians_curve():
    def row(gen, k, nov, gap, lo, hi):
        iv = lambda m: Interval(m, m, m, 3)  # noqa: E731
        return oracle.Row(gen, k, 1.0, Nets(iv(nov), Interval(gap, lo, hi, 3), iv(0.5), iv(0.0)))

    gauss = (row("Gaussian", 0, 0.4, -0.01, -0.01, -0.01), row("Gaussian", 0, 0.8, -0.05, -0.05, -0.05))  # −0.03 at 0.6
    control = (row("Gaussian head", 16, 0.5, -0.015, -0.015, -0.015), row("Gaussian head", 16, 0.7, -0.025, -0.025, -0.025))
    ahead, tied = row("oracle", 16, 0.6, -0.02, -0.025, -0.015), row("flow", 16, 0.6, -0.03, -0.04, -0.025)
    s = oracle.OracleStudy("x", 64, "paper", 47, (*gauss, *control, ahead, tied))
    assert [s.verdict(r) for r in s.rows] == ["—", "—", "ahead", "ahead", "ahead", "tied"]
    # the control's curve is −0.02 at 0.6: the oracle ties it there, the flow is behind it
    assert [s.against_control(r) for r in s.rows] == ["—", "—", "—", "—", "tied", "behind"]
    assert s.markdown().splitlines()[-2:] == [
        "Ahead of the Gaussian's curve somewhere: Gaussian head k = 16, oracle k = 16.",
        "Ahead of the Gaussian head's curve at its k somewhere: none."]


def test_the_study_scores_every_generator_at_every_temperature(tmp_path):
    exp = tiny(12)
    with pytest.raises(ConfigError, match="head sizes between 1 and"):
        oracle.study(exp, recipe.PAPER, (2, 100), tmp_path)
    s = oracle.study(exp, recipe.PAPER, (2, 7), tmp_path)
    assert s.K == 8
    keys = [(r.generator, r.k, r.temperature) for r in s.rows]
    assert sorted(keys) == sorted([("Gaussian", 0, t) for t in oracle.TEMPERATURES]
                                  + [(g, k, t) for g in ("Gaussian head", "oracle", "held-out", "marginals", "flow")
                                     for k in (2, 7)
                                     for t in oracle.TEMPERATURES])
    assert all(r.nets.gap.n == exp.eval.replicates for r in s.rows)
    by = {(r.generator, r.k, r.temperature): r.nets for r in s.rows}
    assert by[("oracle", 2, 1.0)].novelty.mean != by[("flow", 2, 1.0)].novelty.mean
    # all but one component drawn: the oracle's nets are near-copies of fitting members, while
    # heads of members no generator saw make nets as new as those members
    for t in oracle.TEMPERATURES:
        assert by[("held-out", 7, t)].novelty.mean > 2 * by[("oracle", 7, t)].novelty.mean
    assert by[("oracle", 7, 0.25)].novelty.mean < 0.3 and by[("held-out", 7, 0.25)].novelty.mean > 0.4
    # 9 fitting members span little of a new member: its head is shorter than theirs, and the table says so
    assert [k for k, _ in s.head_scale] == [2, 7] and all(0 < scale < 1 for _, scale in s.head_scale)
    assert "The held-out heads' rms over the fitting heads'" in s.markdown()
    assert not any(f.exists() for f in pipeline.flow_folders(recipe.PAPER.apply(exp), tmp_path))  # nor the recipe's flows
    fig = s.figure()
    assert len(fig.data) == 11 and {t.line.dash for t in fig.data if t.name.startswith("held-out")} == {"dashdot"}
    assert {t.marker.symbol for t in fig.data if t.name.startswith("Gaussian head")} == {"square"}
    assert {t.marker.symbol for t in fig.data if t.name.startswith("marginals")} == {"diamond"}


def test_the_oracle_command_refuses_bad_head_sizes_before_any_work(tmp_path, capsys):
    from dwf.cli import main

    for bad in ("0", "a,b", ""):
        with pytest.raises(SystemExit):
            main(["oracle", "digits_mlp", "--k", bad, "--artifacts", str(tmp_path)])
        assert "head sizes >= 1" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
