"""Aligned crossover (dwf.crossover): every unit of a child comes whole from one member, blended
toward the members' mean; one member gives copies, λ = 1 the mean."""
import pytest
import torch

from dwf import archs, families
from dwf.config import ArchSpec
from dwf.crossover import crossover, unit_groups
from dwf.errors import ConfigError
from dwf.layout import ParamLayout

RESNET = ArchSpec("resnet20", 1, (), 10, width=0.25)
MLP = ArchSpec("mlp", 6, (8, 5), 3)


def labelled_members(arch, m):
    """m members whose every entry is their own index: a child's entry names its donor."""
    layout = ParamLayout.from_module(archs.build(arch), buffers="include")
    return {name: torch.arange(m, dtype=torch.float).view(m, *[1] * len(shape)).expand(m, *shape).clone()
            for name, shape in layout.shapes().items()}


def spec_of(arch):
    return families.symmetry(arch, torch.zeros(2, 1, 28, 28) if arch.kind == "resnet20" else torch.zeros(2, arch.in_dim))


@pytest.mark.parametrize("arch", [MLP, RESNET], ids=["mlp", "resnet20"])
def test_each_unit_comes_whole_from_one_member_and_members_donate_alike(arch):
    m, n = 5, 400
    params, spec = labelled_members(arch, m), spec_of(arch)
    kids = crossover(params, spec, n, 0.0, torch.Generator().manual_seed(0))
    groups = unit_groups(spec, list(params))
    donors = {}                                              # group -> (n, units) donor per unit
    for t, c in kids.items():
        assert c.shape == (n, *params[t].shape[1:])
        rows = c.reshape(n, c.shape[1] if c.ndim > 1 else 1, -1)
        assert (rows == rows[..., :1]).all(), f"{t}: a row mixes members"
        d = rows[..., 0]
        assert torch.equal(donors.setdefault(groups[t], d), d), f"{t}: its unit group {groups[t]} has other donors"
    # a unit spans tensors: a BatchNorm channel follows its conv row, a bias its weight row
    if arch is RESNET:
        assert groups["conv1.weight"] == groups["bn1.running_var"] == groups["layer1.0.bn2.bias"]
    assert groups[f"{'fc' if arch is RESNET else 'fc.2'}.bias"] == groups[f"{'fc' if arch is RESNET else 'fc.2'}.weight"]
    per_child = torch.cat(list(donors.values()), dim=1)                       # (n, all units)
    assert all(len(set(row.tolist())) > 1 for row in per_child), "a child copied one member"
    share = torch.bincount(torch.cat([d.flatten() for d in donors.values()]).long(), minlength=m).float()
    assert torch.allclose(share / share.sum(), torch.full((m,), 1 / m), atol=0.02)


@pytest.mark.parametrize("blend", [0.0, 0.3, 1.0])
def test_the_blend_moves_a_child_toward_the_members_mean(blend):
    m = 4
    g = torch.Generator().manual_seed(1)
    params = {k: torch.randn(m, *v.shape, generator=g) for k, v in archs.build(MLP).state_dict().items()}
    spec = spec_of(MLP)
    pure = crossover(params, spec, 6, 0.0, torch.Generator().manual_seed(2))
    kids = crossover(params, spec, 6, blend, torch.Generator().manual_seed(2))   # same donors
    for t, W in params.items():
        assert torch.allclose(kids[t], (1 - blend) * pure[t] + blend * W.mean(0), atol=1e-6)
    if blend == 1.0:
        assert all(torch.allclose(kids[t], W.mean(0).expand_as(kids[t]), atol=1e-6) for t, W in params.items())


def test_one_member_gives_copies_of_it():
    params = {k: v[None] for k, v in archs.build(MLP).state_dict().items()}
    for blend in (0.0, 0.5):
        kids = crossover(params, spec_of(MLP), 3, blend, torch.Generator().manual_seed(0))
        assert all(torch.allclose(kids[t], params[t].expand_as(kids[t])) for t in params)


def test_bad_input_is_named():
    params = {k: v[None] for k, v in archs.build(MLP).state_dict().items()}
    with pytest.raises(ConfigError, match=r"blend λ must lie in \[0, 1\]"):
        crossover(params, spec_of(MLP), 2, 1.5, torch.Generator())
    vit = families.symmetry(ArchSpec("vit", 1, (24,), 10, depth=2, heads=3, patch=7, image_size=28),
                            torch.zeros(2, 1, 28, 28))
    with pytest.raises(ConfigError, match="TransformerSpec"):
        crossover(params, vit, 2, 0.0, torch.Generator())


def test_a_batchnorm_zoos_integer_counters_are_taken_from_a_donor_not_blended():
    """A ResNet zoo's stacked state holds BatchNorm's int64 batch counters beside its floats: a
    blended child keeps them integers, each one member's (`dwf recipes` on a ResNet crashed here)."""
    members = [archs.build(RESNET, seed=s).state_dict() for s in range(3)]
    for i, sd in enumerate(members):
        for k in sd:
            if k.endswith("num_batches_tracked"):
                sd[k].fill_(10 * (i + 1))
    params = {k: torch.stack([sd[k] for sd in members]) for k in members[0]}
    children = crossover(params, spec_of(RESNET), 6, 0.5, torch.Generator().manual_seed(0))
    counter = children["bn1.num_batches_tracked"]
    assert counter.dtype == torch.long and set(counter.tolist()) <= {10, 20, 30}
    assert all(children[k].dtype == v.dtype and children[k].shape[1:] == v.shape[1:] for k, v in params.items())
