"""ParamLayout: a model's state dict <-> one flat vector, for one model or a stacked batch.

The layout records which tensors are part of the vector, their shapes and offsets. Buffers are an
explicit choice: float buffers (BatchNorm running statistics) are in the vector when
`buffers="include"`; integer buffers (`num_batches_tracked`) never are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import nn

from .errors import ArtifactError, ConfigError


@dataclass(frozen=True)
class Entry:
    name: str
    shape: tuple[int, ...]
    offset: int

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


@dataclass(frozen=True)
class ParamLayout:
    entries: tuple[Entry, ...]

    @classmethod
    def from_module(cls, model: nn.Module, buffers: str = "exclude") -> "ParamLayout":
        if buffers not in ("exclude", "include"):
            raise ConfigError(f"buffers must be 'exclude' or 'include', got {buffers!r}")
        named = list(model.named_parameters())
        if buffers == "include":
            named += [(n, b) for n, b in model.named_buffers() if b.is_floating_point()]
        return cls.from_shapes({n: tuple(t.shape) for n, t in named})

    @classmethod
    def from_shapes(cls, shapes: Mapping[str, Sequence[int]]) -> "ParamLayout":
        entries, offset = [], 0
        for name, shape in shapes.items():
            e = Entry(name, tuple(int(s) for s in shape), offset)
            entries.append(e)
            offset += e.numel
        return cls(tuple(entries))

    @property
    def dim(self) -> int:
        return sum(e.numel for e in self.entries)

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {e.name: e.shape for e in self.entries}

    def check(self, stacked: Mapping[str, torch.Tensor]) -> int:
        """Validate a stacked dict {name: (n, *shape)} against the layout; return n."""
        missing = [e.name for e in self.entries if e.name not in stacked]
        if missing:
            raise ArtifactError(f"tensors missing for this architecture: {missing[:5]}; "
                                "the weights were saved for a different model")
        ns = {stacked[e.name].shape[0] for e in self.entries}
        if len(ns) != 1:
            raise ArtifactError(f"tensors disagree on the number of models: {sorted(ns)}")
        for e in self.entries:
            got = tuple(stacked[e.name].shape[1:])
            if got != e.shape:
                raise ArtifactError(f"{e.name!r} has shape {got}, the architecture expects "
                                    f"{e.shape}; the weights were saved for a different model")
        return ns.pop()

    def flatten(self, state_dicts: Mapping[str, torch.Tensor] | Sequence[Mapping[str, torch.Tensor]],
                stacked: bool = False) -> torch.Tensor:
        """(n, d) float32. Accepts one state dict, a list of them, or (stacked=True) one dict
        whose tensors carry a leading model axis."""
        if not stacked:
            sds = [state_dicts] if isinstance(state_dicts, Mapping) else list(state_dicts)
            state_dicts = {e.name: torch.stack([sd[e.name] for sd in sds]) for e in self.entries}
        n = self.check(state_dicts)
        return torch.cat([state_dicts[e.name].reshape(n, -1).float() for e in self.entries], dim=1)

    def unflatten_stacked(self, X: torch.Tensor) -> dict[str, torch.Tensor]:
        """(n, d) -> {name: (n, *shape)}."""
        if X.ndim == 1:
            X = X[None]
        if X.shape[1] != self.dim:
            raise ArtifactError(f"vectors have {X.shape[1]} entries, the layout has {self.dim}")
        return {e.name: X[:, e.offset:e.offset + e.numel].reshape(X.shape[0], *e.shape).clone()
                for e in self.entries}

    def unflatten(self, X: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """(n, d) -> n state dicts."""
        st = self.unflatten_stacked(X)
        return [{k: v[i] for k, v in st.items()} for i in range(X.shape[0] if X.ndim == 2 else 1)]
