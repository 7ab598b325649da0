"""The trivial generators (dwf.baselines): the fitted Gaussian against its definition, and the
curves' interpolation."""
import pytest
import torch

from dwf import baselines
from dwf.config import PopulationSpec
from dwf.errors import ConfigError
from dwf.pca import DualPCA


def fitted(n=40, d=30, k=6):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, d, generator=g) @ torch.randn(d, d, generator=g)
    pca = DualPCA(k).fit(X)
    return pca, pca.transform(X)


def test_at_std_factor_zero_every_net_is_the_members_mean_code_decoded():
    pca, codes = fitted()
    V = baselines.code_gaussian(pca, codes, 5, 0.0, torch.Generator().manual_seed(1))
    mean_net = pca.inverse_transform(codes.mean(0, keepdim=True))
    assert torch.allclose(V, mean_net.expand_as(V), atol=1e-5)


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
def test_the_codes_of_its_nets_have_the_members_mean_and_scaled_std(scale):
    pca, codes = fitted()
    V = baselines.code_gaussian(pca, codes, 20_000, scale, torch.Generator().manual_seed(2))
    c = pca.transform(V)                                          # decode then encode is exact in the span
    assert torch.allclose(c.mean(0), codes.mean(0), atol=0.05 * scale * codes.std(0).max())
    assert torch.allclose(c.std(0), scale * codes.std(0), rtol=0.03)


def test_the_code_gaussian_population_takes_the_std_factor_and_nothing_else_does():
    assert PopulationSpec("code_gaussian").key == "code_gaussian|recalibrate"       # reports before it
    assert PopulationSpec("code_gaussian", scale=0.5).key == "code_gaussian|recalibrate|c=0.5"
    with pytest.raises(ConfigError, match="scale"):
        PopulationSpec("noisy", sigma=0.01, scale=0.5)
    with pytest.raises(ConfigError, match="scale"):
        PopulationSpec("code_gaussian", scale=-1.0)


def test_a_curve_offers_its_best_gap_at_least_as_novel_as_asked():
    curve = ((0.2, -0.01), (0.6, -0.05), (0.4, -0.02))             # any order
    assert baselines.best_gap_from(curve, 0.5) == pytest.approx(-0.035)     # between 0.4 and 0.6
    assert baselines.best_gap_from(curve, 0.2) == pytest.approx(-0.01)
    assert baselines.best_gap_from(curve, 0.1) == pytest.approx(-0.01)      # every point is more novel
    assert baselines.best_gap_from(curve, 0.7) is None and baselines.best_gap_from((), 0.5) is None
    # a curve that regains accuracy farther out (the Gaussian can): the far point counts
    assert baselines.best_gap_from(((0.5, -0.04), (0.9, -0.01)), 0.6) == pytest.approx(-0.01)
