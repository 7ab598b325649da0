"""Architecture families: what the pipeline needs to know about a kind of net, declared once.

A `Family` says how to read its symmetry (declared for transformers, traced from the graph with
torch.fx for everything else) and how to describe an `ArchSpec` of it in words. What follows from
the built model itself (its BatchNorm layers, which state entries are buffers) is derived from
the model, so no caller switches on `arch.kind`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from . import archs, bn
from .config import ArchSpec
from .errors import ConfigError
from .rebasin import bert_spec, spec_from_module, vit_spec
from .rebasin.symmetry import Symmetry


@dataclass(frozen=True)
class Family:
    name: str
    symmetry: Callable[[nn.Module, torch.Tensor], Symmetry]   # (model, two example inputs) -> spec
    describe: Callable[[ArchSpec], str]
    align_method: str = "weight_matching"                      # or "transfusion" (AlignSpec.method)


def _traced(model: nn.Module, example: torch.Tensor) -> Symmetry:
    return spec_from_module(model, example)


def _mlp(a: ArchSpec) -> str:
    return f"MLP {a.in_dim}-{'-'.join(map(str, a.hidden))}-{a.out_dim}"


def _convnet(a: ArchSpec) -> str:
    return f"{a.kind} at width {a.width:g} with BatchNorm, {a.in_dim} input channel(s)"


def _vit(a: ArchSpec) -> str:
    return (f"ViT of width {a.hidden[0] if a.hidden else '?'}, {a.depth} blocks × {a.heads} heads, "
            f"{a.patch}×{a.patch} patches")


def _bert(a: ArchSpec) -> str:
    body = (f"pretrained {a.pretrained} (BERT family)" if a.pretrained else
            f"BERT of width {a.hidden[0] if a.hidden else '?'}, {a.depth} layers × {a.heads} heads, "
            f"vocabulary {a.vocab}")
    return body + " with a regression head"


FAMILIES: dict[str, Family] = {
    "mlp": Family("mlp", _traced, _mlp),
    "cnn": Family("cnn", _traced, _convnet),
    "resnet20": Family("resnet20", _traced, _convnet),
    "resnet18": Family("resnet18", _traced, _convnet),
    "vit": Family("vit", lambda model, x: vit_spec(model), _vit, "transfusion"),
    "bert": Family("bert", lambda model, x: bert_spec(model.bert), _bert, "transfusion"),
}


def family(arch: ArchSpec) -> Family:
    if arch.kind not in FAMILIES:
        raise ConfigError(f"unknown architecture kind {arch.kind!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[arch.kind]


def symmetry(arch: ArchSpec, example: torch.Tensor) -> Symmetry:
    """The permutation symmetry of `arch`; `example` is two inputs of the data it runs on."""
    return family(arch).symmetry(archs.build(arch), example[:2])


def describe(arch: ArchSpec) -> str:
    return family(arch).describe(arch)


def buffer_names(arch: ArchSpec) -> list[str]:
    """Saved buffers (BatchNorm running statistics and counters): permuted with their channels,
    never part of the matching cost, the PCA vectors or the flow (they are recalibrated)."""
    model = archs.build(arch)
    params = {k for k, _ in model.named_parameters()}
    return [k for k in model.state_dict() if k not in params]


def has_batchnorm(arch: ArchSpec) -> bool:
    return bool(bn.batchnorms(archs.build(arch)))
