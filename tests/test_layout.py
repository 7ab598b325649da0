import torch

from dwf import ArchSpec, ParamLayout, archs


def test_flatten_unflatten_round_trip():
    model = archs.build(ArchSpec("mlp", 7, (5, 3), 2), seed=0)
    layout = ParamLayout.from_module(model)
    sds = [archs.build(ArchSpec("mlp", 7, (5, 3), 2), seed=s).state_dict() for s in range(4)]
    X = layout.flatten(sds)
    assert X.shape == (4, layout.dim) == (4, 7 * 5 + 5 + 5 * 3 + 3 + 3 * 2 + 2)
    back = layout.unflatten(X)
    for sd, sd2 in zip(sds, back):
        assert sd.keys() == sd2.keys()
        for k in sd:
            assert torch.equal(sd[k], sd2[k])
    assert torch.equal(layout.flatten(sds[0]), X[:1])
    assert torch.equal(layout.flatten(layout.unflatten_stacked(X), stacked=True), X)


def test_offsets_are_contiguous():
    layout = ParamLayout.from_module(archs.build(ArchSpec("mlp", 3, (4,), 2)))
    ends = [e.offset + e.numel for e in layout.entries]
    assert [e.offset for e in layout.entries][1:] == ends[:-1]
    assert ends[-1] == layout.dim


def test_hand_batched_mlp_matches_vmap_and_single_models():
    from torch.func import functional_call, vmap

    from dwf import stacked
    arch = ArchSpec("mlp", 12, (7, 5), 3)
    model = archs.build(arch)
    sds = [archs.build(arch, seed=s).state_dict() for s in range(4)]
    params = {k: torch.stack([sd[k] for sd in sds]) for k in sds[0]}
    x = torch.randn(9, 12)
    xs = torch.randn(4, 9, 12)
    ref_shared = vmap(lambda p: functional_call(model, p, (x,)))(params)
    ref_own = vmap(lambda p, xb: functional_call(model, p, (xb,)))(params, xs)
    assert torch.allclose(stacked.forward(model, params, x), ref_shared, atol=1e-6)
    assert torch.allclose(stacked.forward(model, params, xs, shared_input=False), ref_own, atol=1e-6)
    single = archs.build(arch)
    single.load_state_dict(sds[2])
    assert torch.allclose(stacked.forward(model, params, x)[2], single(x), atol=1e-6)


def test_stacked_convnet_forward_matches_vmap_and_updates_each_models_bn_stats():
    from torch.func import functional_call, vmap

    from dwf import stacked
    arch = ArchSpec("cnn", 1, (4, 8), 3)
    model = archs.build(arch)
    sds = [archs.build(arch, seed=s).state_dict() for s in range(3)]
    x = torch.randn(3, 5, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    states = [{k: torch.stack([sd[k] for sd in sds]) for k in sds[0]} for _ in range(2)]
    model.train()
    ours = stacked.forward(model, states[0], x, shared_input=False)
    ref = vmap(lambda p, xb: functional_call(model, p, (xb,)))(states[1], x)
    assert torch.allclose(ours, ref, atol=1e-5)
    mean = [k for k in sds[0] if k.endswith("running_mean")][0]
    assert torch.allclose(states[0][mean], states[1][mean], atol=1e-6)
    assert not torch.allclose(states[0][mean][0], states[0][mean][1])     # per-model statistics
    assert not torch.equal(states[0][mean], torch.stack([sd[mean] for sd in sds]))  # updated
