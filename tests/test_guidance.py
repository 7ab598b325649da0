"""Loss guidance in the PCA span (dwf.guidance) and the study that applies it alike to every
generator (dwf.guided): guidance moves a net only inside the span, lowers its training loss, treats
each net on its own, and the study's verdicts follow the curves."""
import pytest
import torch

from dwf import archs, baselines, guided, recipe, stacked
from dwf.config import ArchSpec
from dwf.errors import ConfigError
from dwf.guidance import Guidance, guide
from dwf.interval import Interval
from dwf.layout import ParamLayout
from dwf.pca import DualPCA
from dwf.task import Task

from test_scaling import tiny

MLP = ArchSpec("mlp", 6, (8,), 3)
TASK = Task("classification")


def members_and_data(m=12, n_data=200):
    """m random nets of MLP, their PCA (k = m − 1) and a labelled training set."""
    torch.manual_seed(0)
    model = archs.build(MLP)
    X = ParamLayout.from_module(model).flatten([archs.build(MLP, seed=i).state_dict() for i in range(m)])
    x = torch.randn(n_data, 6)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return X, DualPCA().fit(X), x, y


def training_loss(X, x, y):
    """(n,) mean training loss of each net."""
    model = archs.build(MLP).eval()
    out = stacked.forward(model, ParamLayout.from_module(model).unflatten_stacked(X), x)
    return TASK.loss(out, y.expand(len(X), -1)).mean(1)


def test_guidance_lowers_each_nets_training_loss_and_moves_it_only_inside_the_span():
    X, pca, x, y = members_and_data()
    inside = pca.inverse_transform(torch.randn(5, pca.n_components_) * pca.explained_variance_.sqrt())
    outside = torch.randn_like(inside) * 0.05
    outside -= (outside @ pca.components_.T) @ pca.components_                 # orthogonal to the span
    G = guide(inside + outside, pca, MLP, x, y, TASK, Guidance(steps=60, lr=0.05, batch_size=64))
    assert (training_loss(G, x, y) < training_loss(inside + outside, x, y) - 0.05).all()
    rest = (G - pca.mean_) - ((G - pca.mean_) @ pca.components_.T) @ pca.components_
    assert torch.allclose(rest, outside, atol=1e-5)                             # X_⊥ kept exactly
    assert not torch.allclose(G, inside + outside, atol=1e-3)


def test_each_net_is_guided_on_its_own_and_zero_steps_change_nothing():
    X, pca, x, y = members_and_data()
    g = Guidance(steps=15, lr=0.05, batch_size=32, seed=3)
    both = guide(X[:2], pca, MLP, x, y, TASK, g)
    assert torch.allclose(both[1], guide(X[1:2], pca, MLP, x, y, TASK, g)[0], atol=1e-5)
    assert torch.equal(guide(X, pca, MLP, x, y, TASK, Guidance(steps=0)), X)
    assert torch.equal(guide(X[:2], pca, MLP, x, y, TASK, g), both)               # seeded batches


@pytest.mark.parametrize("kwargs, words", [({"steps": -1}, "whole number >= 0"), ({"lr": 0.0}, "learning rate must be > 0"),
                                           ({"batch_size": 0}, "batch size must be >= 1")])
def test_bad_guidance_settings_are_named(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        Guidance(**kwargs)


def test_nets_with_batchnorm_are_refused():
    X, pca, x, y = members_and_data()
    with pytest.raises(ConfigError, match="without BatchNorm"):
        guide(X, pca, ArchSpec("resnet20", 1, (), 10, width=0.25), x, y, TASK, Guidance())


def study_with(gap: Interval) -> guided.GuidedStudy:
    """A study whose guided flow sits at novelty 0.6 with this validation gap."""
    nets = guided.Nets(Interval(0.6, 0.6, 0.6, 3), gap, Interval(0.5, 0.5, 0.5, 3), Interval(0.0, 0.0, 0.0, 3))
    return guided.GuidedStudy("x", 64, "paper", Guidance(), nets, nets, {}, {})


def test_the_guided_flow_is_ahead_of_a_curve_only_when_its_whole_interval_is_above_it():
    curve = ((0.4, -0.001), (0.8, -0.011))                                      # -0.006 at novelty 0.6
    assert study_with(Interval(-0.002, -0.004, 0.0, 3)).verdict(curve) == "ahead"
    assert study_with(Interval(-0.01, -0.012, -0.008, 3)).verdict(curve) == "behind"
    assert study_with(Interval(-0.006, -0.01, -0.002, 3)).verdict(curve) == "tied"
    assert study_with(Interval(0.0, -0.01, 0.01, 3)).verdict(((0.1, 0.0), (0.3, -0.01))) == "—"   # none as novel


def test_the_study_guides_every_generator_alike_on_validation_data(tmp_path):
    exp = tiny(12)
    gs = guided.study(exp, recipe.PAPER, Guidance(steps=10, lr=0.05), tmp_path)
    assert set(gs.curves) == set(gs.guided_curves) == {"noisy copies", "fitted Gaussian"}
    assert len(gs.guided_curves["noisy copies"]) == len(baselines.NOISY_NOVELTY)
    assert gs.flow.gap.n == gs.flow_guided.gap.n == exp.eval.replicates
    assert gs.flow_guided.novelty.mean != gs.flow.novelty.mean                  # guidance moved the nets
    text = gs.markdown()
    assert "| flow, guided |" in text and "fitted Gaussian, guided" in text
    fig = gs.figure()
    assert [t.name for t in fig.data] == ["noisy copies", "fitted Gaussian", "noisy copies, guided",
                                          "fitted Gaussian, guided", "flow", "flow, guided"]
    assert fig.data[0].line.color == fig.data[2].line.color and fig.data[2].line.dash == "solid"


@pytest.mark.parametrize("args, words", [(["--steps", "-3"], "whole number >= 0"),
                                         (["--recipe", "fast"], "unknown recipes ['fast']"),
                                         (["--n", "100"], "--n 100 is not a size of the scaling study")])
def test_the_guide_command_checks_its_input_before_any_work(tmp_path, capsys, args, words):
    from dwf.cli import main

    assert main(["guide", "digits_mlp", "--artifacts", str(tmp_path), *args]) == 2
    assert words in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_the_guide_command_refuses_a_net_with_batchnorm_before_building_anything(tmp_path, capsys):
    from dwf.cli import main

    assert main(["guide", "fmnist_resnet20", "--artifacts", str(tmp_path)]) == 2
    assert "without BatchNorm" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
