"""PermutationSpec: which axes of which tensors each hidden-unit permutation acts on.

A permutation P of a hidden group reorders the output axis of the tensors that write the group
and the input axis of the tensors that read it; the network computes the same function.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import torch

from ..errors import ConfigError

Axes = tuple[str | None, ...]  # per tensor axis: the permutation acting on it, or None


@dataclass(frozen=True)
class PermutationSpec:
    axes: dict[str, Axes]            # tensor name -> permutation per axis
    sizes: dict[str, int]            # permutation name -> number of units

    @property
    def perm_to_axes(self) -> dict[str, list[tuple[str, int]]]:
        out: dict[str, list[tuple[str, int]]] = {p: [] for p in self.sizes}
        for name, axes in self.axes.items():
            for ax, p in enumerate(axes):
                if p is not None:
                    out[p].append((name, ax))
        return out


def mlp_spec(shapes: Mapping[str, tuple[int, ...]], prefix: str = "fc") -> PermutationSpec:
    """Hand-written spec for `dwf.archs.MLP`: hidden layer i has permutation P_i."""
    n_layers = len([k for k in shapes if k.startswith(f"{prefix}.") and k.endswith(".weight")])
    axes, sizes = {}, {}
    for i in range(n_layers):
        p_in = f"P_{i - 1}" if i > 0 else None
        p_out = f"P_{i}" if i < n_layers - 1 else None
        axes[f"{prefix}.{i}.weight"] = (p_out, p_in)
        axes[f"{prefix}.{i}.bias"] = (p_out,)
        if p_out is not None:
            sizes[p_out] = shapes[f"{prefix}.{i}.weight"][0]
    return PermutationSpec(axes, sizes)


def resnet_spec(shapes: Mapping[str, tuple[int, ...]]) -> PermutationSpec:
    """Hand-written spec for `dwf.archs.ResNet` (ResNet-20, ResNet-18): one permutation per
    residual stream segment (the stem and every projection shortcut start a new one; blocks with
    an identity shortcut keep it) and one inside each block (conv1 -> bn1 -> conv2). BatchNorm
    weight, bias and running statistics follow their channels; num_batches_tracked is left out."""
    axes: dict[str, Axes] = {}
    sizes: dict[str, int] = {}

    def conv_bn(conv: str, bn: str, p_out: str, p_in: str | None) -> None:
        axes[f"{conv}.weight"] = (p_out, p_in, None, None)
        for t in ("weight", "bias", "running_mean", "running_var"):
            axes[f"{bn}.{t}"] = (p_out,)
        sizes[p_out] = shapes[f"{conv}.weight"][0]

    stream = "P_stem"
    conv_bn("conv1", "bn1", stream, None)
    blocks = sorted((tuple(map(int, m.groups())), m.group(0)[:-len(".conv1.weight")])
                    for k in shapes if (m := re.fullmatch(r"layer(\d+)\.(\d+)\.conv1\.weight", k)))
    for _, b in blocks:
        inner = f"P_{b}.inner"
        conv_bn(f"{b}.conv1", f"{b}.bn1", inner, stream)
        if f"{b}.shortcut.0.weight" in shapes:
            p_in, stream = stream, f"P_{b}.out"
            conv_bn(f"{b}.shortcut.0", f"{b}.shortcut.1", stream, p_in)
        conv_bn(f"{b}.conv2", f"{b}.bn2", stream, inner)
    axes["fc.weight"] = (None, stream)
    return PermutationSpec(axes, sizes)


def apply_perms(spec: PermutationSpec, perms: Mapping[str, torch.Tensor],
                sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict with every permuted axis reordered: new[..., j, ...] = old[..., perm[j], ...].
    Tensors the spec does not mention are passed through unchanged."""
    out = dict(sd)
    for name, axes in spec.axes.items():
        w = sd[name]
        for ax, p in enumerate(axes):
            if p is not None:
                w = torch.index_select(w, ax, perms[p].to(w.device))
        out[name] = w
    return out


def random_perms(spec: PermutationSpec, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    return {p: torch.randperm(n, generator=generator) for p, n in spec.sizes.items()}


def identity_perms(spec: PermutationSpec) -> dict[str, torch.Tensor]:
    return {p: torch.arange(n) for p, n in spec.sizes.items()}


def check_compatible(spec: PermutationSpec, sd: Mapping[str, torch.Tensor]) -> None:
    for name, axes in spec.axes.items():
        if name not in sd:
            raise ConfigError(f"the permutation spec names {name!r}, absent from the state dict")
        if len(axes) != sd[name].ndim:
            raise ConfigError(f"{name!r} has {sd[name].ndim} axes, the spec gives {len(axes)}")
        for ax, p in enumerate(axes):
            if p is not None and sd[name].shape[ax] != spec.sizes[p]:
                raise ConfigError(f"{name!r} axis {ax} has {sd[name].shape[ax]} units, "
                                  f"permutation {p} has {spec.sizes[p]}")
