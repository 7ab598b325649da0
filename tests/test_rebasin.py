import random

import pytest
import torch

from dwf import ArchSpec, archs
from dwf.rebasin import apply_perms, mlp_spec, random_perms, weight_matching


def random_mlp(seed: int):
    rnd = random.Random(seed)
    arch = ArchSpec("mlp", rnd.randint(2, 12), tuple(rnd.randint(2, 24) for _ in range(rnd.randint(1, 4))),
                    rnd.randint(2, 6))
    return arch, archs.build(arch, seed=seed)


@pytest.mark.parametrize("seed", range(8))
def test_permuting_hidden_units_keeps_the_function(seed):
    arch, model = random_mlp(seed)
    sd = model.state_dict()
    spec = mlp_spec({k: tuple(v.shape) for k, v in sd.items()})
    perms = random_perms(spec, torch.Generator().manual_seed(seed))
    assert any(not torch.equal(p, torch.arange(len(p))) for p in perms.values())
    x = torch.randn(64, arch.in_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x)
        permuted = archs.build(arch)
        permuted.load_state_dict(apply_perms(spec, perms, sd))
        y_p = permuted(x)
    assert (y - y_p).abs().max() <= 1e-5
    assert not torch.equal(sd["fc.0.weight"], permuted.state_dict()["fc.0.weight"])


@pytest.mark.parametrize("seed", range(6))
def test_weight_matching_recovers_a_planted_permutation(seed):
    arch, model = random_mlp(100 + seed)
    sd = model.state_dict()
    spec = mlp_spec({k: tuple(v.shape) for k, v in sd.items()})
    planted = random_perms(spec, torch.Generator().manual_seed(seed))
    copy = apply_perms(spec, planted, sd)
    found = weight_matching(spec, sd, copy, generator=torch.Generator().manual_seed(0))
    realigned = apply_perms(spec, found, copy)
    for k in sd:
        assert torch.equal(realigned[k], sd[k]), k
    for p in planted:  # found is the inverse of the planted permutation
        assert torch.equal(planted[p][found[p]], torch.arange(len(found[p])))


def test_weight_matching_reduces_distance_between_different_nets():
    arch = ArchSpec("mlp", 10, (32, 32), 4)
    a, b = (archs.build(arch, seed=s).state_dict() for s in (0, 1))
    spec = mlp_spec({k: tuple(v.shape) for k, v in a.items()})
    b_al = apply_perms(spec, weight_matching(spec, a, b), b)

    def dist(u, v):
        return sum(((u[k] - v[k]) ** 2).sum() for k in u)

    assert dist(a, b_al) < dist(a, b)
