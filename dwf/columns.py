"""StackedColumns: the (n, d) matrix of flattened weights of a stacked safetensors zoo file, read
column slab by column slab, so DualPCA can fit a zoo that does not fit in memory.

Only the slices of the tensors that overlap the requested columns are read (safetensors slices
of the file, memory-mapped); `bytes_read` counts what was read, for throughput measurements.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from .errors import ArtifactError, ConfigError
from .layout import ParamLayout


class StackedColumns:
    def __init__(self, path: str | Path, layout: ParamLayout):
        self.path, self.layout = Path(path), layout
        try:
            self._file = safe_open(str(self.path), framework="pt")
        except (SafetensorError, OSError, ValueError) as e:
            raise ArtifactError(f"{self.path} is not a readable safetensors file ({e}); it is "
                                "probably truncated or corrupt: delete it and re-run the stage") from e
        ns = set()
        for e in layout.entries:
            if e.name not in self._file.keys():
                raise ArtifactError(f"{self.path} lacks {e.name!r}; it was saved for another model")
            shape = tuple(self._file.get_slice(e.name).get_shape())
            if shape[1:] != e.shape:
                raise ArtifactError(f"{e.name!r} in {self.path} has shape {shape[1:]}, the layout "
                                    f"expects {e.shape}")
            ns.add(shape[0])
        if len(ns) != 1:
            raise ArtifactError(f"tensors in {self.path} disagree on the number of models: {sorted(ns)}")
        self.shape = (ns.pop(), layout.dim)
        self.bytes_read = 0

    def __getitem__(self, key) -> torch.Tensor:
        """X[:, j0:j1] as a float32 tensor (n, j1 - j0); only all-row column slices are supported."""
        if not (isinstance(key, tuple) and len(key) == 2 and key[0] == slice(None)
                and isinstance(key[1], slice) and key[1].step in (None, 1)):
            raise ConfigError("StackedColumns reads column slabs only: X[:, j0:j1]")
        n, d = self.shape
        j0, j1, _ = key[1].indices(d)
        parts = []
        for e in self.layout.entries:
            a, b = max(j0, e.offset), min(j1, e.offset + e.numel)
            if a >= b:
                continue
            parts.append(self._read(e, a - e.offset, b - e.offset))
        out = torch.cat(parts, dim=1) if parts else torch.empty(n, 0)
        return out.float()

    def _read(self, e, a: int, b: int) -> torch.Tensor:
        """Flat entries [a, b) of one tensor for every model: read whole rows of its first axis
        (after the model axis) and trim. (n, b - a)"""
        sl = self._file.get_slice(e.name)
        n = self.shape[0]
        if len(e.shape) == 0:
            t = sl[:]
            self.bytes_read += t.numel() * t.element_size()
            return t.reshape(n, 1)
        row = math.prod(e.shape[1:])
        r0, r1 = a // row, -(-b // row)
        t = sl[:, r0:r1]                                        # (n, r1 - r0, *rest)
        self.bytes_read += t.numel() * t.element_size()
        return t.reshape(n, -1)[:, a - r0 * row:b - r0 * row]
