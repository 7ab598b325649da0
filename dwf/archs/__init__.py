"""Model builders, one per architecture family, all seeded explicitly."""
from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import nn

from ..config import ArchSpec
from ..errors import ArtifactError, ConfigError
from .cnn import CNN
from .mlp import MLP
from .resnet import ResNet, resnet18, resnet20
from .bert import MINILM, BertRegressor, bert_regressor
from .vit import ViT

__all__ = ["CNN", "KINDS", "MINILM", "MLP", "BertRegressor", "ResNet", "ViT", "bert_regressor", "build",
           "load_weights", "resnet18", "resnet20"]


def _mlp(arch: ArchSpec) -> nn.Module:
    return MLP(arch.in_dim, tuple(arch.hidden), arch.out_dim)


def _cnn(arch: ArchSpec) -> nn.Module:
    if not arch.hidden:
        raise ConfigError("a cnn needs its channels per conv block in `hidden`, e.g. (16, 32, 64)")
    channels = tuple(max(1, round(c * arch.width)) for c in arch.hidden)
    return CNN(arch.in_dim, channels, arch.out_dim)


def _resnet(make: Callable[..., nn.Module]) -> Callable[[ArchSpec], nn.Module]:
    def builder(arch: ArchSpec) -> nn.Module:
        if arch.hidden:
            raise ConfigError(f"{arch.kind} has fixed stage widths; leave `hidden` empty and "
                              f"scale the channels with `width` (got hidden={arch.hidden})")
        return make(arch.in_dim, arch.out_dim, arch.width)
    return builder


def _vit(arch: ArchSpec) -> nn.Module:
    if len(arch.hidden) != 1 or min(arch.depth, arch.heads, arch.patch, arch.image_size) < 1:
        raise ConfigError("a vit needs hidden=(dim,) and positive depth, heads, patch and image_size, "
                          f"got hidden={arch.hidden}, depth={arch.depth}, heads={arch.heads}, "
                          f"patch={arch.patch}, image_size={arch.image_size}")
    return ViT(arch.in_dim, arch.image_size, arch.patch, arch.hidden[0], arch.depth, arch.heads, arch.out_dim)


def _bert(arch: ArchSpec) -> nn.Module:
    if arch.out_dim != 1:
        raise ConfigError(f"a bert regressor predicts one number: out_dim must be 1, got {arch.out_dim}")
    if arch.pretrained:
        return bert_regressor(0, 0, 1, 0, 0, pretrained=arch.pretrained)
    if len(arch.hidden) != 1 or min(arch.depth, arch.heads, arch.vocab, arch.max_len) < 1:
        raise ConfigError("a random-init bert needs hidden=(dim,) and positive depth, heads, vocab "
                          f"and max_len, got hidden={arch.hidden}, depth={arch.depth}, "
                          f"heads={arch.heads}, vocab={arch.vocab}, max_len={arch.max_len}")
    return bert_regressor(arch.hidden[0], arch.depth, arch.heads, arch.vocab, arch.max_len)


_BUILDERS: dict[str, Callable[[ArchSpec], nn.Module]] = {
    "mlp": _mlp, "cnn": _cnn, "resnet20": _resnet(resnet20), "resnet18": _resnet(resnet18),
    "vit": _vit, "bert": _bert}
KINDS = tuple(_BUILDERS)


def load_weights(model: nn.Module, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """Load `state` into `model`. Integer buffers (BatchNorm counters) may be absent, as in
    weights rebuilt from flat vectors; a missing float tensor or an unexpected key is an
    ArtifactError naming them."""
    try:
        res = model.load_state_dict(dict(state), strict=False)
    except RuntimeError as e:
        raise ArtifactError(f"the weights do not fit the {type(model).__name__} ({e})") from e
    own = model.state_dict()
    missing = [k for k in res.missing_keys if own[k].is_floating_point()]
    if missing or res.unexpected_keys:
        raise ArtifactError(f"the weights do not fit the {type(model).__name__}: missing {missing[:5]}, "
                            f"unexpected {res.unexpected_keys[:5]}; pass weights of its architecture")
    return model


def build(arch: ArchSpec, seed: int | None = None) -> nn.Module:
    """A fresh model for `arch`; with `seed`, its initialization is reproducible and isolated
    from the global RNG. `arch.width` scales the channels of convnets (cnn, resnets)."""
    if arch.kind not in _BUILDERS:
        raise ConfigError(f"unknown architecture kind {arch.kind!r}; known: {', '.join(KINDS)}")
    if arch.width <= 0:
        raise ConfigError(f"width must be positive, got {arch.width}")
    if seed is None:
        return _BUILDERS[arch.kind](arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _BUILDERS[arch.kind](arch)
