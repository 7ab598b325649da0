from dataclasses import replace

import pytest
import torch

from dwf import ArchSpec, archs, stacked
from dwf.errors import ConfigError


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet_parameter_counts_match_the_paper_architectures():
    counts = {kind: n_params(archs.build(ArchSpec(kind, 3))) for kind in ("resnet20", "resnet18")}
    print(f"parameters: {counts}")
    assert counts["resnet20"] == 272_474       # ResNet-20 with 1x1-conv shortcuts, as in the paper
    assert counts["resnet18"] == 11_173_962    # ResNet-18, CIFAR stem
    # one input channel only shrinks the stem conv: 16 * 2 * 9 weights fewer
    assert n_params(archs.build(ArchSpec("resnet20", 1))) == 272_474 - 16 * 2 * 9


@pytest.mark.parametrize("arch", [
    ArchSpec("mlp", 784, (16,), 10),
    ArchSpec("cnn", 1, (8, 16, 32), 10),
    ArchSpec("cnn", 3, (8, 16), 7, width=0.5),
    ArchSpec("resnet20", 1, out_dim=10, width=0.25),
    ArchSpec("resnet20", 3, out_dim=100, width=0.25),
    ArchSpec("resnet18", 3, out_dim=10, width=0.125),
])
@pytest.mark.parametrize("side", [28, 32])
def test_build_gives_logits_for_every_kind(arch, side):
    channels = 1 if arch.kind == "mlp" else arch.in_dim
    x = torch.randn(2, channels, side, side)
    if arch.kind == "mlp":
        arch = ArchSpec("mlp", side * side, arch.hidden, arch.out_dim)
    assert archs.build(arch, seed=0)(x).shape == (2, arch.out_dim)


def test_width_scales_channels():
    model = archs.build(ArchSpec("resnet20", 3, width=0.5))
    assert [model.conv1.out_channels, model.layer2[0].conv1.out_channels,
            model.layer3[2].conv2.out_channels] == [8, 16, 32]
    cnn = archs.build(ArchSpec("cnn", 3, (8, 16), width=0.5))
    assert [c.out_channels for c in cnn.convs] == [4, 8]


def test_shortcut_is_a_projection_only_where_the_shape_changes():
    model = archs.build(ArchSpec("resnet20", 3))
    projections = sorted(k.removesuffix(".shortcut.0.weight") for k in model.state_dict()
                         if k.endswith("shortcut.0.weight"))
    assert projections == ["layer2.0", "layer3.0"]


def test_seeded_build_is_reproducible_and_leaves_the_global_rng_alone():
    arch = ArchSpec("resnet20", 3, width=0.25)
    torch.manual_seed(123)
    a = archs.build(arch, seed=5).state_dict()
    after = torch.rand(1)
    torch.manual_seed(123)
    b = archs.build(arch, seed=5).state_dict()
    assert torch.equal(torch.rand(1), after)
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = archs.build(arch, seed=6).state_dict()
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])


@pytest.mark.parametrize("arch, match", [
    (ArchSpec("vgg", 3), "known: mlp, cnn, resnet20, resnet18"),
    (ArchSpec("cnn", 3), "channels"),
    (ArchSpec("resnet20", 3, hidden=(16, 32, 64)), "width"),
    (ArchSpec("resnet18", 3, width=0.0), "positive"),
])
def test_bad_arch_specs_raise_config_errors(arch, match):
    with pytest.raises(ConfigError, match=match):
        archs.build(arch)


@pytest.mark.parametrize("arch", [ArchSpec("cnn", 1, (4, 8)), ArchSpec("resnet20", 1, width=0.25)])
def test_convnets_train_as_a_vmapped_stack(arch):
    """The zoo trains n nets at once through torch.func: BatchNorm statistics update per model."""
    model = archs.build(arch).train()
    inits = [archs.build(arch, seed=i).state_dict() for i in range(3)]
    names = dict(model.named_parameters())
    state = {k: torch.stack([sd[k] for sd in inits]).requires_grad_(k in names) for k in inits[0]}
    x = torch.randn(3, 4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    logits = stacked.forward(model, state, x, shared_input=False)        # (n, B, C)
    logits.sum().backward()
    assert logits.shape == (3, 4, 10)
    assert all(state[k].grad is not None for k in names)
    mean = next(v for k, v in state.items() if k.endswith("running_mean"))
    assert not torch.equal(mean[0], mean[1]) and mean.abs().sum() > 0


def test_load_weights_allows_missing_counters_only():
    from dwf import ArtifactError
    arch = ArchSpec("cnn", 1, (3, 4), 10)
    sd = archs.build(arch, seed=1).state_dict()
    no_counters = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    model = archs.load_weights(archs.build(arch, seed=2), no_counters)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in no_counters.items())
    with pytest.raises(ArtifactError, match="missing.*convs.0.weight"):
        archs.load_weights(archs.build(arch), {k: v for k, v in sd.items() if k != "convs.0.weight"})
    with pytest.raises(ArtifactError, match="unexpected.*extra"):
        archs.load_weights(archs.build(arch), {**sd, "extra": torch.zeros(1)})


def test_bert_drops_all_padding_columns_without_changing_its_output():
    arch = ArchSpec("bert", 0, (24,), 1, depth=2, heads=3, vocab=60, max_len=12)
    model = archs.build(arch, seed=1).eval()
    ids = torch.tensor([[2, 7, 9, 3, 0, 0], [2, 5, 3, 0, 0, 0]])          # right-padded with 0
    wider = torch.cat([ids, torch.zeros(2, 6, dtype=torch.long)], 1)       # 6 more pad columns
    with torch.no_grad():
        out = model(ids)
        assert torch.allclose(model(wider), out, atol=1e-6)
        # the same nets under vmap (no trimming there) agree with the trimmed per-model loop
        params = {k: torch.stack([v, v + 0.01 * torch.randn_like(v)]) for k, v in model.state_dict().items()
                  if v.is_floating_point()}
        loop = stacked.forward_loop(model, params, wider)
        assert torch.allclose(stacked.forward_vmap(model, params, wider), loop, atol=1e-5)
        assert torch.allclose(loop[0], out, atol=1e-6)


def _stacked_step(forward, model, inits, x, shared_input, dtype=torch.float64):
    """Outputs, parameter gradients and buffers (statistics, counters) after one forward of the
    stacked nets `inits` through `forward` and a backward of the squared outputs."""
    model = model.to(dtype)
    state = {k: torch.stack([sd[k] for sd in inits]).clone() for k in inits[0]}
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    params = {k: v.requires_grad_() for k, v in state.items() if k in dict(model.named_parameters())}
    out = forward(model, state, x.to(dtype), shared_input=shared_input)
    if model.training:
        out.square().sum().backward()
    return (out.detach(), {k: v.grad for k, v in params.items()},
            {k: v for k, v in state.items() if k not in params})


@pytest.mark.parametrize("training, channels, n", [(True, 1, 3), (False, 1, 3), (True, 3, 3),
                                                   (True, 1, stacked.GROUPED_NETS + 2)])
def test_narrow_resnets_run_as_one_grouped_resnet_computing_the_per_model_loop(training, channels, n):
    """The hand-batched ResNet (grouped channels-last convs) that train_zoo and predict take for
    narrow ResNets on the CPU: in float64 the per-model loop's outputs, gradients and BatchNorm
    running statistics and counters (training: one batch per model; inference: a shared batch;
    more than GROUPED_NETS nets run in chunks that write back into the whole stack)."""
    arch = ArchSpec("resnet20", channels, (), 10, width=0.25)
    model = archs.build(arch).train(training)
    assert stacked.stacked_pays(model, "cpu") and not stacked.stacked_pays(model, "cuda")
    assert not stacked.stacked_pays(archs.build(replace(arch, width=1.0)), "cpu")   # wide: the loop
    inits = [archs.build(arch, seed=s).state_dict() for s in range(1, n + 1)]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, channels, 28, 28, generator=g) if training else torch.randn(8, channels, 28, 28, generator=g)
    out_l, grad_l, buf_l = _stacked_step(stacked.forward_loop, model, inits, x, shared_input=not training)
    out_s, grad_s, buf_s = _stacked_step(stacked.forward, model, inits, x, shared_input=not training)
    assert torch.allclose(out_s, out_l, atol=1e-12)
    assert grad_s.keys() == grad_l.keys() and buf_s.keys() == buf_l.keys()
    if training:
        assert all(torch.allclose(grad_s[k], grad_l[k], atol=1e-11) for k in grad_l)
    assert all(torch.equal(buf_s[k], buf_l[k]) if not buf_l[k].is_floating_point()
               else torch.allclose(buf_s[k], buf_l[k], atol=1e-14) for k in buf_l)
    before = torch.stack([sd["bn1.running_mean"] for sd in inits]).double()
    assert torch.equal(buf_l["bn1.running_mean"], before) != training   # a training step moved them


def test_narrow_resnets_stacked_in_float32_stay_close_to_float64():
    """Float32 accuracy of the grouped channels-last path: the CPU's channels-last BatchNorm
    sums its statistics' gradients in float32 (about 1e-4 relative error on the first stage's
    BatchNorm weights, against 1e-5 for the loop), far below a training step's batch noise."""
    arch = ArchSpec("resnet20", 1, (), 10, width=0.25)
    inits = [archs.build(arch, seed=s).state_dict() for s in (1, 2, 3)]
    x = torch.randn(3, 8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    out64, grad64, _ = _stacked_step(stacked.forward_loop, archs.build(arch).train(), inits, x, False)
    out32, grad32, _ = _stacked_step(stacked.forward, archs.build(arch).train(), inits, x, False, torch.float32)
    assert torch.allclose(out32.double(), out64, rtol=1e-4, atol=1e-4)
    assert all((grad32[k].double() - grad64[k]).abs().max() <= 1e-3 * grad64[k].abs().max() for k in grad64)


def test_predict_through_grouped_resnets_crosses_its_chunks_as_the_loop():
    """stacked.predict runs narrow ResNets GROUPED_NETS at a time on GROUPED_BATCH images: 20 nets
    and 70 images cross both chunk edges and still get the per-net module's classes (float64)."""
    arch = ArchSpec("resnet20", 1, (), 10, width=0.25)
    nets = [archs.build(arch, seed=s).double().eval() for s in range(stacked.GROUPED_NETS + 4)]
    state = {k: torch.stack([n.state_dict()[k] for n in nets]) for k in nets[0].state_dict()}
    x = torch.randn(stacked.GROUPED_BATCH + 6, 1, 28, 28, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(0))
    preds = stacked.predict(archs.build(arch).double(), state, x)                 # (20, 70)
    with torch.no_grad():
        expected = torch.stack([n(x).argmax(1) for n in nets])
    assert preds.shape == (len(nets), len(x)) and torch.equal(preds, expected)
