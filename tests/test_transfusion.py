"""Transformer symmetry (heads, separate QK and VO within heads, FFN, residual stream) and
TransFusion recovering planted permutations, on dwf's ViT and a Hugging Face BERT."""
import pytest
import torch

from dwf import ArchSpec, ConfigError, archs
from dwf.rebasin import (apply_transformer_perms, bert_spec, random_transformer_perms, transfusion,
                         vit_spec)
from dwf.rebasin.transformer import identity_transformer_perms

TINY = ArchSpec("vit", 1, (24,), 10, depth=2, heads=3, patch=7, image_size=28)
SMALL = ArchSpec("vit", 3, (192,), 10, depth=6, heads=3, patch=4, image_size=32)
BERT = ArchSpec("bert", 0, (24,), 1, depth=2, heads=3, vocab=50, max_len=12)


def spec_of(arch: ArchSpec, model):
    return bert_spec(model.bert) if arch.kind == "bert" else vit_spec(model)


def inputs(arch: ArchSpec, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if arch.kind == "bert":       # token ids, a few of them padding (id 0)
        ids = torch.randint(1, arch.vocab, (n, arch.max_len), generator=g)
        ids[:, -2:] = 0
        return ids
    return torch.randn(n, arch.in_dim, arch.image_size, arch.image_size, generator=g)


def randomized(arch: ArchSpec, seed: int):
    """A ViT with every tensor random (LayerNorms, class token and biases included), so a
    permutation that forgot any tensor would change the outputs."""
    model = archs.build(arch, seed=seed).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name.lower() and name.endswith("weight"):  # LayerNorm scales near 1
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1 or "token" in name:                     # biases, class token
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return model


def outputs(arch, sd, x):
    model = archs.build(arch).eval()
    model.load_state_dict(sd)
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("kinds, stream", [
    (("heads",), False), (("qk",), False), (("vo",), False), (("ffn",), False), ((), True),
    (("heads", "qk", "vo", "ffn"), True),
])
@pytest.mark.parametrize("arch", [TINY, SMALL, BERT], ids=["tiny", "vit-small-192", "bert"])
def test_each_kind_of_permutation_leaves_the_transformer_unchanged(arch, kinds, stream):
    model = randomized(arch, 0)
    spec, sd = spec_of(arch, model), model.state_dict()
    perms = random_transformer_perms(spec, sd, torch.Generator().manual_seed(1), stream=stream, kinds=kinds)
    permuted = apply_transformer_perms(spec, perms, sd)
    x = inputs(arch, 4, 2)
    y, y_p = outputs(arch, sd, x), outputs(arch, permuted, x)
    assert (y - y_p).abs().max() <= 1e-4 * y.abs().max()
    moved = [k for k in sd if not torch.equal(sd[k], permuted[k])]
    assert moved, "the permutation changed no tensor"


def test_qk_and_vo_are_separate_symmetries():
    """A QK permutation with the VO units left in place is a symmetry by itself: Q, K and V need
    not share one permutation (as the original TransFusion code forced)."""
    model = randomized(TINY, 3)
    spec, sd = vit_spec(model), model.state_dict()
    p = random_transformer_perms(spec, sd, torch.Generator().manual_seed(0), stream=False, kinds=("qk",))
    assert all(not torch.equal(q, v) for q, v in zip(p.qk, p.vo))     # VO left as identity
    x = torch.randn(3, 1, 28, 28)
    assert torch.allclose(outputs(TINY, sd, x), outputs(TINY, apply_transformer_perms(spec, p, sd), x),
                          rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", [TINY, SMALL, BERT], ids=["tiny", "vit-small-192", "bert"])
@pytest.mark.parametrize("stream", [True, False])
def test_transfusion_recovers_a_planted_permutation_exactly(arch, stream):
    model = randomized(arch, 5)
    spec, sd = spec_of(arch, model), model.state_dict()
    planted = random_transformer_perms(spec, sd, torch.Generator().manual_seed(7), stream=stream)
    copy = apply_transformer_perms(spec, planted, sd)
    found = transfusion(spec, sd, copy, stream=stream)
    realigned = apply_transformer_perms(spec, found, copy)
    for k in sd:
        assert torch.equal(realigned[k], sd[k]), k


def test_transfusion_of_a_net_with_itself_is_the_identity():
    model = randomized(TINY, 1)
    spec, sd = vit_spec(model), model.state_dict()
    found, ident = transfusion(spec, sd, sd), identity_transformer_perms(spec, sd)
    assert torch.equal(found.stream, ident.stream)
    assert all(torch.equal(a, b) for a, b in zip(found.heads + found.qk + found.vo + found.ffn,
                                                 ident.heads + ident.qk + ident.vo + ident.ffn))


def test_transfusion_brings_independent_nets_closer():
    spec = vit_spec(archs.build(TINY))
    a, b = randomized(TINY, 10).state_dict(), randomized(TINY, 11).state_dict()
    aligned = apply_transformer_perms(spec, transfusion(spec, a, b), b)

    def dist(u, v):
        return sum(float(((u[k] - v[k]) ** 2).sum()) for k in u)

    assert dist(a, aligned) < dist(a, b)


def test_vit_config_errors():
    with pytest.raises(ConfigError, match="divisible"):
        archs.build(ArchSpec("vit", 1, (25,), 10, depth=1, heads=3, patch=7, image_size=28))
    with pytest.raises(ConfigError, match="patch size"):
        archs.build(ArchSpec("vit", 1, (24,), 10, depth=1, heads=3, patch=5, image_size=28))
    with pytest.raises(ConfigError, match="hidden=\\(dim,\\)"):
        archs.build(ArchSpec("vit", 1, (24, 24), 10, depth=1, heads=3, patch=7, image_size=28))
    with pytest.raises(ConfigError, match="residual stream"):
        transfusion(vit_spec(archs.build(TINY)), archs.build(TINY).state_dict(),
                    archs.build(ArchSpec("vit", 1, (12,), 10, depth=2, heads=3, patch=7, image_size=28)).state_dict())


def test_pretrained_minilm_keeps_its_function_and_is_realigned_exactly():
    arch = ArchSpec("bert", 0, (), 1, pretrained="minilm-l6")
    model = archs.build(arch, seed=0).eval()
    spec, sd = bert_spec(model.bert), model.state_dict()
    assert spec.dim == 384 and len(spec.blocks) == 6 and spec.blocks[0].heads == 12
    planted = random_transformer_perms(spec, sd, torch.Generator().manual_seed(0))
    copy = apply_transformer_perms(spec, planted, sd)
    ids = torch.tensor([[101, 2204, 102, 0], [101, 6659, 2154, 102]])      # [CLS] good [SEP] / ...
    permuted = archs.build(arch, seed=0).eval()
    permuted.load_state_dict(copy)
    with torch.no_grad():
        y, y_p = model(ids), permuted(ids)
    assert (y - y_p).abs().max() <= 1e-4 * y.abs().max()
    realigned = apply_transformer_perms(spec, transfusion(spec, sd, copy), copy)
    assert all(torch.equal(realigned[k], sd[k]) for k in sd)
