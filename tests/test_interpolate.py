import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dwf
from dwf import data
from dwf.bn import recalibrate_bn
from dwf.config import DataSpec, ZooSpec
from dwf.errors import DwfError
from dwf.interpolate import (InterpolationPath, barrier, interpolate, interpolation_path,
                             naive_vs_aligned)
from dwf.rebasin import PermutationSpec, mlp_spec


@pytest.fixture(scope="module")
def digits():
    return data.load(DataSpec("digits")).for_reporting()   # interpolation paths are reported on test


def trained_pair(ds, seed: int):
    """Two MLPs 64-32-10 trained independently (own init, own batch order) on digits."""
    arch = dwf.ArchSpec("mlp", 64, (32,), 10)
    zoo = dwf.train_zoo(ds, arch, ZooSpec(n_models=2, epochs=10, batch_size=32, seed=seed),
                        progress=False)
    a, b = zoo.state_dicts()
    return zoo.module(), a, b


@pytest.fixture(scope="module")
def pair(digits):
    return trained_pair(digits, 0)


def direct(model: nn.Module, sd, x, y) -> tuple[float, float]:
    """Loss and accuracy of one net, the plain way."""
    m = copy.deepcopy(model).eval()
    m.load_state_dict(sd)
    with torch.no_grad():
        logits = m(x)
    return float(F.cross_entropy(logits, y)), float((logits.argmax(-1) == y).float().mean())


def test_endpoints_and_inner_points_match_direct_evaluation(digits, pair):
    model, a, b = pair
    x, y = digits.x_test, digits.y_test
    path = interpolation_path(model, a, b, x, y, lambdas=[0.0, 0.3, 1.0], batch_size=100)
    for i, sd in enumerate([a, interpolate(a, b, 0.3), b]):
        loss, acc = direct(model, sd, x, y)
        assert path.loss[i].item() == pytest.approx(loss, rel=1e-5)
        assert path.acc[i].item() == pytest.approx(acc, abs=1e-6)
    default = interpolation_path(model, a, b, x, y)
    assert default.lambdas.tolist() == pytest.approx([i / 10 for i in range(11)])
    assert default.loss[0] == pytest.approx(path.loss[0].item(), rel=1e-6)


def test_a_net_with_itself_is_flat(digits, pair):
    model, a, _ = pair
    path = interpolation_path(model, a, a, digits.x_test, digits.y_test, lambdas=torch.linspace(0, 1, 21))
    torch.testing.assert_close(path.loss, path.loss[0].expand(21), rtol=1e-5, atol=1e-6)
    assert (path.acc == path.acc[0]).all()
    assert abs(path.barrier) < 1e-5


def test_barrier_formula_on_a_hand_made_curve():
    lam = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    p = InterpolationPath(lam, torch.tensor([1.0, 2.0, 4.0, 2.0, 3.0]), torch.ones(5))
    # the line from 1 to 3 is 2 at λ = 0.5, where the loss is 4
    assert barrier(p) == pytest.approx(2.0) and p.barrier == pytest.approx(2.0)
    below = InterpolationPath(lam, torch.tensor([1.0, 0.9, 0.8, 0.9, 1.0]), torch.ones(5))
    assert below.barrier == pytest.approx(0.0)
    grid = InterpolationPath(torch.tensor([-1.0, 0.0, 1.0]), torch.tensor([2.0, 5.0, 0.0]), torch.ones(3))
    assert grid.barrier == pytest.approx(4.0)   # endpoints are the grid's ends: line is 1 at λ = 0


@pytest.mark.parametrize("seed", [0, 1])
def test_alignment_lowers_the_barrier(digits, seed):
    model, a, b = trained_pair(digits, seed)
    spec = mlp_spec({k: tuple(v.shape) for k, v in a.items()})
    naive, aligned = naive_vs_aligned(model, spec, a, b, digits.x_test, digits.y_test)
    # permuting b keeps its function, so both paths share their endpoints
    torch.testing.assert_close(naive.loss[[0, -1]], aligned.loss[[0, -1]], rtol=1e-5, atol=1e-6)
    # seen over 20 seeds: naive 0.44-0.65, aligned 0.05-0.18 (ratio <= 0.29)
    assert aligned.barrier < 0.5 * naive.barrier
    assert aligned.acc[5] > naive.acc[5]


class ConvBN(nn.Module):
    """conv - BN - ReLU - global pool - linear; the head reads channels, so one permutation
    (spec below) covers the whole net."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


SPEC = PermutationSpec({"conv.weight": ("P", None, None, None), "conv.bias": ("P",),
                        "bn.weight": ("P",), "bn.bias": ("P",), "bn.running_mean": ("P",),
                        "bn.running_var": ("P",), "fc.weight": (None, "P")}, {"P": 6})


def bn_net(seed: int) -> dict[str, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ConvBN()
        with torch.no_grad():
            net.bn.weight.uniform_(0.5, 2)
            net.bn.running_mean.normal_()
            net.bn.running_var.uniform_(0.5, 2)
        return net.state_dict()


def test_bn_path_recalibrates_each_point():
    g = torch.Generator().manual_seed(0)
    x_tr, x_ev = torch.randn(300, 1, 8, 8, generator=g), torch.randn(100, 1, 8, 8, generator=g)
    y_ev = torch.randint(3, (100,), generator=g)
    model, a, b = ConvBN(), bn_net(1), bn_net(2)
    kw = dict(calib_samples=128, calib_batch_size=32)
    path = interpolation_path(model, a, b, x_ev, y_ev, lambdas=[0, 0.5, 1], x_calib=x_tr, **kw)
    for i, sd in ((0, a), (2, b)):
        m = copy.deepcopy(model)
        m.load_state_dict(sd)
        recalibrate_bn(m, x_tr, n_samples=128, batch_size=32)
        loss, acc = direct(m, m.state_dict(), x_ev, y_ev)
        assert path.loss[i].item() == pytest.approx(loss, rel=1e-5)
        assert path.acc[i].item() == pytest.approx(acc, abs=1e-6)
    # without calibration data the stored statistics are used (and interpolated)
    raw = interpolation_path(model, a, b, x_ev, y_ev, lambdas=[0, 1])
    assert raw.loss[0].item() == pytest.approx(direct(model, a, x_ev, y_ev)[0], rel=1e-5)
    assert not torch.allclose(raw.loss, path.loss[[0, 2]])
    # aligned path with BN: running stats follow their channels, so the λ = 1 end is unchanged
    naive, aligned = naive_vs_aligned(model, SPEC, a, b, x_ev, y_ev, x_calib=x_tr, lambdas=[0, 1], **kw)
    torch.testing.assert_close(naive.loss, aligned.loss, rtol=1e-5, atol=1e-6)


def test_bad_input_raises(digits, pair):
    model, a, b = pair
    x, y = digits.x_test, digits.y_test
    with pytest.raises(DwfError):
        interpolation_path(model, a, {k: v for k, v in b.items() if k != "fc.0.bias"}, x, y)
    with pytest.raises(DwfError):
        interpolation_path(model, a, b, x, y, lambdas=[0.5, 0.2])
    with pytest.raises(DwfError):
        interpolation_path(model, a, b, x[:0], y[:0])
    with pytest.raises(DwfError):
        interpolation_path(model, a, b, x, y[:-1])
