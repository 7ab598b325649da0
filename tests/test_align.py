"""Zoo alignment: reference policies, independence of members, and unchanged functions."""
import dataclasses

import pytest
import torch

from dwf import AlignSpec, ArchSpec, ConfigError, Zoo, archs, stacked
from dwf.align import align_zoo, medoid
from dwf.rebasin import apply_perms, mlp_spec, random_perms

ARCH = ArchSpec("mlp", 6, (12, 10), 3)


def planted_zoo(n: int = 6, noise: float = 0.05, seed: int = 0) -> tuple[Zoo, dict]:
    """Permuted noisy copies of one net: member i = P_i(base + noise_i)."""
    g = torch.Generator().manual_seed(seed)
    base = archs.build(ARCH, seed=seed).state_dict()
    spec = mlp_spec({k: tuple(v.shape) for k, v in base.items()})
    sds = [apply_perms(spec, random_perms(spec, g),
                       {k: v + noise * torch.randn(v.shape, generator=g) for k, v in base.items()})
           for _ in range(n)]
    return Zoo(ARCH, {k: torch.stack([sd[k] for sd in sds]) for k in base}), spec


def test_medoid_is_the_row_with_the_smallest_summed_distance():
    V = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.4, 0.1], [0.0, 1.0], [5.0, 5.0]])
    sums = torch.cdist(V, V).sum(1)
    assert medoid(V) == int(sums.argmin()) == 2


@pytest.mark.parametrize("reference", [0, 3, "medoid"])
def test_aligned_zoo_computes_the_same_functions_and_is_tighter(reference):
    zoo, spec = planted_zoo()
    aligned = align_zoo(zoo, spec, AlignSpec(reference=reference))
    ref = aligned.info["reference"]
    assert ref == (medoid(aligned.vectors()) if reference == "medoid" else reference)
    x = torch.randn(50, ARCH.in_dim, generator=torch.Generator().manual_seed(1))
    model = archs.build(ARCH)
    assert torch.allclose(stacked.forward(model, zoo.params, x), stacked.forward(model, aligned.params, x),
                          atol=1e-5)
    before, after = aligned.info["dist_to_ref_before"], aligned.info["dist_to_ref_after"]
    assert before[ref] == after[ref] == 0.0
    # copies of one net: aligned, members differ from the reference by the two noises alone,
    # about 0.05 * sqrt(2 d); unaligned, by far more
    noise_scale = 0.05 * (2 * zoo.layout.dim) ** 0.5
    assert max(after) < 1.3 * noise_scale < 3 * noise_scale < min(b for i, b in enumerate(before) if i != ref)


def test_medoid_reference_is_the_medoid_of_the_aligned_zoo():
    zoo, spec = planted_zoo(n=7, seed=3)
    aligned = align_zoo(zoo, spec, AlignSpec(reference="medoid"))
    assert aligned.info["reference"] == medoid(aligned.vectors())


def test_each_member_is_matched_independently():
    zoo, spec = planted_zoo()
    full = align_zoo(zoo, spec, AlignSpec(reference=0))
    sub = Zoo(ARCH, {k: v[[0, 4]] for k, v in zoo.params.items()})
    part = align_zoo(sub, spec, dataclasses.replace(AlignSpec(reference=0)))
    # member 4 alone gets a different generator seed index (1), yet the same answer on planted copies
    for k in zoo.params:
        assert torch.equal(full.params[k][4], part.params[k][1])


@pytest.mark.parametrize("reference", [-1, 6, "centre", True])
def test_bad_reference_is_a_config_error(reference):
    zoo, spec = planted_zoo()
    with pytest.raises(ConfigError, match="reference"):
        align_zoo(zoo, spec, AlignSpec(reference=reference))


def test_unknown_method_is_a_config_error():
    zoo, spec = planted_zoo()
    with pytest.raises(ConfigError, match="alignment method"):
        align_zoo(zoo, spec, AlignSpec(method="sinkhorn"))
