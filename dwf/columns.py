"""StackedColumns: the (n, d) matrix of flattened weights of a stacked safetensors zoo file, read
column slab by column slab, so DualPCA can fit a zoo that does not fit in memory.

Only the byte ranges of the tensors that overlap the requested columns are read, with plain
positioned reads (no memory map: the file's pages never count against the process), so memory
stays at one (n, chunk) slab. The safetensors layout makes this simple: an 8-byte header length,
a JSON header giving each tensor's dtype, shape and byte range, then the row-major data; model i's
rows [r0, r1) of a stacked tensor are one contiguous range. `bytes_read` counts what was read.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from .errors import ArtifactError, ConfigError
from .layout import ParamLayout

_DTYPES = {"F32": (np.float32, None), "F64": (np.float64, None), "F16": (np.float16, None),
           "BF16": (np.uint16, torch.bfloat16)}   # numpy has no bfloat16: read bits, view in torch


def _header(path: Path) -> tuple[dict, int]:
    """(tensor name -> {dtype, shape, data_offsets}, byte offset of the data)."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size))
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{path} is not a readable safetensors file ({e}); it is probably "
                            "truncated or corrupt: delete it and re-run the stage") from e
    header.pop("__metadata__", None)
    return header, 8 + size


class StackedColumns:
    def __init__(self, path: str | Path, layout: ParamLayout):
        self.path, self.layout = Path(path), layout
        self._meta, self._data = _header(self.path)
        ns = set()
        for e in layout.entries:
            if e.name not in self._meta:
                raise ArtifactError(f"{self.path} lacks {e.name!r}; it was saved for another model")
            if self._meta[e.name]["dtype"] not in _DTYPES:
                raise ArtifactError(f"{e.name!r} in {self.path} is {self._meta[e.name]['dtype']}; "
                                    f"StackedColumns reads {', '.join(_DTYPES)}")
            shape = tuple(self._meta[e.name]["shape"])
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
        """Flat entries [a, b) of one tensor for every model: one positioned read per model.
        (n, b - a)"""
        meta = self._meta[e.name]
        np_dtype, view = _DTYPES[meta["dtype"]]
        item = np.dtype(np_dtype).itemsize
        n = self.shape[0]
        start = self._data + meta["data_offsets"][0]
        out = np.empty((n, b - a), dtype=np_dtype)
        with open(self.path, "rb", buffering=0) as f:
            fd = f.fileno()
            for i in range(n):
                pos = start + (i * e.numel + a) * item
                buf = os.pread(fd, (b - a) * item, pos)
                if len(buf) != (b - a) * item:
                    raise ArtifactError(f"{self.path} is truncated inside {e.name!r}; delete it and "
                                        "re-run the stage that wrote it")
                out[i] = np.frombuffer(buf, dtype=np_dtype)
        self.bytes_read += out.nbytes
        t = torch.from_numpy(out)
        return t.view(view) if view is not None else t
