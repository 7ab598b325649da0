"""BatchNorm folding (dwf.fold): the folded nets compute the function of the original ones."""
import pytest
import torch
from torch import nn

from dwf import ArchSpec, archs, stacked
from dwf.fold import Folding

from test_trace import randomize_bn

CONVNETS = [ArchSpec("resnet20", 1, (), 10, width=0.25), ArchSpec("resnet18", 3, (), 10, width=0.125),
            ArchSpec("cnn", 1, (8, 16), 10)]


def stacked_states(arch: ArchSpec, n: int, seed: int) -> dict[str, torch.Tensor]:
    """n nets with their own weights, non-trivial BatchNorm affine parameters and statistics."""
    rows = []
    for i in range(n):
        torch.manual_seed(1000 * seed + i)
        rows.append(randomize_bn(archs.build(arch), 1000 * seed + i).state_dict())
    return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}


@pytest.mark.parametrize("arch", CONVNETS, ids=lambda a: a.kind)
def test_every_batchnorm_after_a_conv_is_folded(arch):
    model = archs.build(arch)
    folding = Folding.of(model)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert len(folding.pairs) == n_bn
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folding.template.modules())


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("arch", CONVNETS, ids=lambda a: a.kind)
def test_folded_nets_compute_the_same_logits(arch, seed):
    model = archs.build(arch).eval()
    states = stacked_states(arch, 3, seed)
    x = torch.randn(16, arch.in_dim, 32 if arch.in_dim == 3 else 28, 32 if arch.in_dim == 3 else 28,
                    generator=torch.Generator().manual_seed(seed))
    folding = Folding.of(model)
    with torch.no_grad():
        want = stacked.forward_loop(model, states, x)
        got = stacked.forward_loop(folding.template, folding.params(states),
                                   x.contiguous(memory_format=torch.channels_last))
    assert got.shape == want.shape == (3, 16, 10)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(want[0], want[1])   # the nets differ, so the check compares real functions


def test_predict_folds_and_matches_the_unfolded_argmax():
    arch = CONVNETS[0]
    model = archs.build(arch)
    states = stacked_states(arch, 2, 0)
    x = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = stacked.forward_loop(model.eval(), states, x)                   # (2, 64, 10)
    top2 = logits.topk(2, dim=-1).values
    clear = (top2[..., 0] - top2[..., 1]) > 1e-3                                 # no near-ties
    preds = stacked.predict(model, states, x)
    assert clear.float().mean() > 0.9
    assert torch.equal(preds[clear], logits.argmax(-1)[clear])


def test_folded_weights_are_channels_last_per_net():
    arch = CONVNETS[0]
    folded = Folding.of(archs.build(arch)).params(stacked_states(arch, 2, 0))
    for w in folded["conv1.weight"].unbind(0):
        assert w.is_contiguous(memory_format=torch.channels_last)
