import copy

import pytest
import torch
from torch import nn

from dwf import ArchSpec, archs
from dwf.bn import recalibrate_bn, recalibrate_stacked
from dwf.errors import DwfError


class ConvBN(nn.Module):
    """conv - BN - ReLU - pool - linear on (B, 1, 8, 8) inputs."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x)))              # (B, 4, 8, 8)
        return self.fc(nn.functional.avg_pool2d(h, 2).flatten(1))


def make(seed: int = 0) -> ConvBN:
    torch.manual_seed(seed)
    return ConvBN()


def x_train(n: int = 200) -> torch.Tensor:
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(7)) * 2 + 0.5


def record(model: ConvBN):
    """Capture model inputs and the BN layer's inputs (pre-BN activations) per forward call."""
    seen = {"x": [], "h": []}
    model.register_forward_pre_hook(lambda m, a: seen["x"].append(a[0].clone()))
    model.bn.register_forward_hook(lambda m, a, out: seen["h"].append(a[0].clone()))
    return seen


def test_single_batch_stats_are_the_exact_subset_statistics():
    model, x = make(), x_train()
    seen = record(model)
    recalibrate_bn(model, x, n_samples=64, batch_size=64)
    (xs,), (h,) = seen["x"], seen["h"]
    assert xs.shape[0] == 64
    # the calibration inputs are 64 distinct rows of the training inputs
    match = (xs.flatten(1)[:, None] == x.flatten(1)[None]).all(-1)   # (64, 200)
    assert (match.sum(1) == 1).all() and match.any(0).sum() == 64
    torch.testing.assert_close(model.bn.running_mean, h.mean((0, 2, 3)), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.bn.running_var, h.var((0, 2, 3), unbiased=True),
                               rtol=1e-5, atol=1e-6)


def test_several_batches_are_averaged_cumulatively():
    model, x = make(), x_train()
    model.bn.momentum = 0.1
    seen = record(model)
    recalibrate_bn(model, x, n_samples=96, batch_size=32)
    hs = seen["h"]
    assert [len(h) for h in hs] == [32, 32, 32]
    h = torch.cat(hs)
    # equal batches: the mean of batch means is the subset mean; the variance is the plain
    # average of the per-batch unbiased variances (an EMA with momentum 0.1 would weight them 0.1/0.9)
    torch.testing.assert_close(model.bn.running_mean, h.mean((0, 2, 3)), rtol=1e-5, atol=1e-6)
    avg_var = torch.stack([hb.var((0, 2, 3), unbiased=True) for hb in hs]).mean(0)
    torch.testing.assert_close(model.bn.running_var, avg_var, rtol=1e-5, atol=1e-6)
    assert int(model.bn.num_batches_tracked) == 3


def test_deterministic_for_a_seed():
    x = x_train()
    a, b, c = (recalibrate_bn(make(), x, n_samples=50, batch_size=16, seed=s) for s in (3, 3, 4))
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    assert not torch.equal(a.bn.running_mean, c.bn.running_mean)


def test_momentum_restored_and_eval_mode():
    model = make()
    model.bn.momentum = 0.3
    model.train()
    out = recalibrate_bn(model, x_train(), n_samples=40, batch_size=16)
    assert out is model and model.bn.momentum == 0.3
    assert not any(m.training for m in model.modules())
    with pytest.raises(DwfError):                      # a failed pass still restores momentum
        recalibrate_bn(model, torch.randn(10, 3, 8, 8))
    assert model.bn.momentum == 0.3 and not model.bn.training


def test_recalibration_repairs_corrupted_stats():
    x = x_train(128)
    good = make()
    with torch.no_grad():
        h = good.conv(x)                                                 # (128, 4, 8, 8)
        good.bn.running_mean.copy_(h.mean((0, 2, 3)))
        good.bn.running_var.copy_(h.var((0, 2, 3), unbiased=True))
    bad = copy.deepcopy(good)
    with torch.no_grad():
        bad.bn.running_mean.normal_(0, 3)
        bad.bn.running_var.uniform_(5, 10)
    good.eval(), bad.eval()
    with torch.no_grad():
        want = good(x)
        assert (bad(x) - want).abs().max() > 0.1
        recalibrate_bn(bad, x, n_samples=len(x), batch_size=len(x))
        torch.testing.assert_close(bad(x), want, rtol=1e-4, atol=1e-5)


def test_model_without_bn_is_unchanged():
    model = archs.build(ArchSpec("mlp", 64, (8,), 3), seed=0).train()
    before = copy.deepcopy(model.state_dict())
    out = recalibrate_bn(model, torch.randn(20, 64))
    assert out is model and not model.training
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("kw", [
    {"x_train": torch.empty(0, 1, 8, 8)},
    {"x_train": torch.zeros(10, 1, 8, 8, dtype=torch.long)},
    {"x_train": torch.randn(10, 3, 8, 8)},               # wrong channel count
    {"x_train": torch.randn(10, 1, 8, 8), "n_samples": 0},
    {"x_train": torch.randn(10, 1, 8, 8), "batch_size": 0},
])
def test_bad_input_raises(kw):
    with pytest.raises(DwfError):
        recalibrate_bn(make(), **kw)


def test_stacked_matches_one_at_a_time():
    x = x_train()
    nets = [make(s) for s in range(3)]
    for net in nets:                                       # stale stats that must be replaced
        with torch.no_grad():
            net.bn.running_mean.fill_(5.0)
    template = make(9)
    before = copy.deepcopy(template.state_dict())
    params = {k: torch.stack([n.state_dict()[k] for n in nets]) for k, _ in template.named_parameters()}
    out = recalibrate_stacked(template, params, x, n_samples=60, batch_size=20)
    assert set(out) == {"bn.running_mean", "bn.running_var", "bn.num_batches_tracked"}
    for i, net in enumerate(nets):
        recalibrate_bn(net, x, n_samples=60, batch_size=20)
        for k, v in out.items():
            assert torch.equal(v[i], net.state_dict()[k]), (i, k)
    assert all(torch.equal(v, before[k]) for k, v in template.state_dict().items())
    mlp = archs.build(ArchSpec("mlp", 4, (3,), 2))
    assert recalibrate_stacked(mlp, {k: v[None] for k, v in mlp.state_dict().items()}, x) == {}
    with pytest.raises(DwfError):
        recalibrate_stacked(template, {"conv.weight": params["conv.weight"]}, x)


def test_control_statistics_replace_only_the_batchnorm_buffers():
    """The "member" and "mean" controls swap running statistics, never weights: a regression
    once copied the member's whole state (every net became that member)."""
    from dwf import ArchSpec, archs
    from dwf.bn import buffer_names, stacked_statistics
    arch = ArchSpec("cnn", 1, (4, 8), 10)
    sds = [archs.build(arch, seed=i).state_dict() for i in range(3)]
    for i, sd in enumerate(sds):
        for k in buffer_names(archs.build(arch)):
            if sd[k].is_floating_point():
                sd[k].fill_(float(i + 1))
    zoo = {k: torch.stack([sd[k] for sd in sds]) for k in sds[0]}
    model = archs.build(arch)
    stats = {k for k in buffer_names(model) if zoo[k].is_floating_point()}
    params = {k: v for k, v in zoo.items() if k not in buffer_names(model)}
    member = stacked_statistics(model, params, "member", zoo_buffers=zoo, member=2)
    mean = stacked_statistics(model, params, "mean", zoo_buffers=zoo)
    assert set(member) == set(mean) == stats                      # no weight among them
    assert all(torch.equal(member[k], torch.full_like(member[k], 3.0)) for k in stats)
    assert all(torch.allclose(mean[k], torch.full_like(mean[k], 2.0)) for k in stats)
