import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dwf import ArchSpec, archs
from dwf.errors import ConfigError
from dwf.rebasin import (PermutationSpec, apply_perms, mlp_spec, random_perms, resnet_spec,
                         spec_from_module, weight_matching)


def partition(spec: PermutationSpec) -> set[tuple[frozenset, int]]:
    """The spec up to renaming: which (tensor, axis) pairs share a permutation, and its size."""
    return {(frozenset(axes), spec.sizes[p]) for p, axes in spec.perm_to_axes.items()}


def shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def randomize_bn(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial BatchNorm affine parameters and running statistics, so a permutation that
    forgot any of them would change the function."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0.0, 0.2, generator=g)
                m.running_mean.normal_(0.0, 0.2, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
    return model


# the traced spec equals the hand-written ones ---------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_traced_mlp_spec_equals_mlp_spec(seed):
    rnd = random.Random(seed)
    hidden = tuple(rnd.randint(2, 24) for _ in range(rnd.randint(1, 4)))
    arch = ArchSpec("mlp", rnd.randint(2, 12), hidden, rnd.randint(2, 6))
    model = archs.build(arch, seed=seed)
    traced = spec_from_module(model, torch.randn(2, arch.in_dim))
    assert partition(traced) == partition(mlp_spec(shapes(model)))


@pytest.mark.parametrize("arch", [ArchSpec("resnet20", 3, width=0.25),
                                  ArchSpec("resnet20", 1, width=1.0),
                                  ArchSpec("resnet18", 3, width=0.125)])
def test_traced_resnet_spec_equals_hand_written(arch):
    model = archs.build(arch, seed=0)
    traced = spec_from_module(model, torch.randn(2, arch.in_dim, 32, 32))
    assert partition(traced) == partition(resnet_spec(shapes(model)))
    # one stream permutation per stage, one inside each block; BN counters are never permuted
    n_blocks = 9 if arch.kind == "resnet20" else 8
    assert len(traced.sizes) == n_blocks + (3 if arch.kind == "resnet20" else 4)
    assert not any(k.endswith("num_batches_tracked") for k in traced.axes)
    assert traced.axes["layer1.0.conv2.weight"] == ("P_conv1", "P_layer1.0.conv1", None, None)


def test_tracing_leaves_the_model_untouched():
    model = randomize_bn(archs.build(ArchSpec("cnn", 3, (4, 8)), seed=0), 0).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    spec_from_module(model, torch.randn(2, 3, 32, 32))
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# a permutation from the traced spec keeps the function ------------------------------------------

@pytest.mark.parametrize("arch, side", [
    (ArchSpec("cnn", 1, (8, 16, 32)), 28),
    (ArchSpec("cnn", 3, (5, 7, 6, 9)), 32),
    (ArchSpec("resnet20", 1, width=0.5), 28),
    (ArchSpec("resnet20", 3, width=0.5), 32),
    (ArchSpec("resnet18", 3), 32),                     # the real one, batch 2
])
def test_permuted_model_computes_the_same_function(arch, side):
    x = torch.randn(2, arch.in_dim, side, side, generator=torch.Generator().manual_seed(1))
    model = randomize_bn(archs.build(arch, seed=0), seed=1).eval()
    spec = spec_from_module(model, x)
    sd = model.state_dict()
    perms = random_perms(spec, torch.Generator().manual_seed(2))
    permuted = archs.build(arch).eval()
    permuted.load_state_dict(apply_perms(spec, perms, sd))
    with torch.no_grad():
        y, y_p = model(x), permuted(x)
    assert (y - y_p).abs().max() <= 1e-4 * y.abs().max()
    changed = [k for k, v in permuted.state_dict().items() if not torch.equal(v, sd[k])]
    assert set(changed) == set(spec.axes)                 # every tensor in the spec really moved


@pytest.mark.parametrize("arch, side", [(ArchSpec("cnn", 1, (6, 8, 10)), 28),
                                        (ArchSpec("resnet20", 3, width=0.25), 32),
                                        (ArchSpec("resnet18", 3, width=0.25), 32)])
def test_weight_matching_recovers_a_planted_permutation(arch, side):
    model = randomize_bn(archs.build(arch, seed=0), seed=1)
    spec = spec_from_module(model, torch.randn(2, arch.in_dim, side, side))
    sd = model.state_dict()
    copy = apply_perms(spec, random_perms(spec, torch.Generator().manual_seed(3)), sd)
    stats = [k for k in sd if k.endswith(("running_mean", "running_var"))]
    found = weight_matching(spec, sd, copy, generator=torch.Generator().manual_seed(0),
                            exclude=stats)
    realigned = apply_perms(spec, found, copy)
    assert all(torch.equal(realigned[k], sd[k]) for k in sd)


# graph rules beyond the built-in architectures --------------------------------------------------

class Residual(nn.Module):
    """Shared module, `+=` residual, functional pooling and a `view` flatten."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.body = nn.Conv2d(6, 6, 3, padding=1)          # called twice: one weight, one group
        self.bn = nn.BatchNorm2d(6)
        self.head = nn.Linear(6, 4)

    def forward(self, x):
        h = F.relu(self.stem(x))
        h += self.bn(self.body(h))
        h = h + torch.sigmoid(self.body(h)) * 0.5
        h = F.adaptive_avg_pool2d(h, 1)
        return self.head(h.view(h.size(0), -1))


def test_shared_modules_and_in_place_residuals_share_one_permutation():
    model = randomize_bn(Residual(), 0).eval()
    x = torch.randn(2, 3, 8, 8)
    spec = spec_from_module(model, x)
    assert spec.sizes == {"P_stem": 6}
    assert spec.axes["body.weight"] == ("P_stem", "P_stem", None, None)
    permuted = Residual().eval()
    permuted.load_state_dict(apply_perms(spec, random_perms(spec, torch.Generator().manual_seed(0)),
                                         model.state_dict()))
    with torch.no_grad():
        assert torch.allclose(model(x), permuted(x), rtol=1e-5, atol=1e-6)


class TokenMean(nn.Module):
    """Linear on the last axis of (B, T, D), BatchNorm1d on (B, D), mean over tokens."""

    def __init__(self):
        super().__init__()
        self.fc1, self.bn, self.fc2 = nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)

    def forward(self, x):
        h = F.gelu(self.fc1(x)).mean(dim=-2)               # (B, T, 8) -> (B, 8)
        return self.fc2(self.bn(h))


def test_permuted_axis_is_followed_through_reductions():
    model = TokenMean().eval()
    with torch.no_grad():
        model.bn.running_mean.normal_()
        model.bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 5, 4)
    spec = spec_from_module(model, x)
    assert spec.axes["bn.running_var"] == ("P_fc1",) and spec.axes["fc2.weight"] == (None, "P_fc1")
    permuted = TokenMean().eval()
    permuted.load_state_dict(apply_perms(spec, random_perms(spec, torch.Generator().manual_seed(0)),
                                         model.state_dict()))
    with torch.no_grad():
        assert torch.allclose(model(x), permuted(x), rtol=1e-5, atol=1e-6)


class InputResidual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(5, 5), nn.Linear(5, 7), nn.Linear(7, 2)

    def forward(self, x):
        x = torch.sort(x, dim=-1).values * 2.0               # any op on the unpermuted input
        h = x + F.relu(self.a(x))                            # stream holds the input: fixed
        return self.c(F.gelu(self.b(h)))


def test_groups_meeting_the_input_are_fixed_and_input_ops_are_allowed():
    spec = spec_from_module(InputResidual(), torch.randn(3, 5))
    assert spec.sizes == {"P_b": 7}
    assert "a.weight" not in spec.axes


class Sorts(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(torch.sort(self.fc1(x), dim=-1).values)


class Shuffles(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.shuffle = nn.Conv2d(3, 8, 3), nn.PixelShuffle(2)
        self.head = nn.Conv2d(2, 2, 1)

    def forward(self, x):
        return self.head(self.shuffle(self.conv(x)))


class FlattensMap(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4 * 8 * 8, 2)

    def forward(self, x):
        return self.fc(torch.flatten(self.conv(x), 1))


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.dw = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 3, groups=4)

    def forward(self, x):
        return self.dw(self.conv(x))


@pytest.mark.parametrize("model, shape, match", [
    (Sorts(), (2, 4), r"node 'sort' \(function torch.sort"),
    (Shuffles(), (2, 3, 8, 8), r"node 'shuffle' \(module PixelShuffle"),
    (FlattensMap(), (2, 3, 8, 8), r"node 'flatten'.*pool it to 1x1"),
    (Grouped(), (2, 3, 8, 8), r"node 'dw' \(module Conv2d"),
])
def test_unsupported_ops_on_permuted_tensors_name_the_node(model, shape, match):
    with pytest.raises(ConfigError, match=match):
        spec_from_module(model, torch.randn(*shape))


def test_untraceable_model_and_wrong_input_raise_config_errors():
    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(ConfigError, match="cannot trace"):
        spec_from_module(Branchy(), torch.randn(2, 3))
    with pytest.raises(ConfigError, match="does not run through"):
        spec_from_module(archs.build(ArchSpec("cnn", 3, (4,))), torch.randn(2, 1, 8, 8))
