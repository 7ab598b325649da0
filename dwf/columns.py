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
    returns_copies = True          # every X[:, j0:j1] is a new tensor (DualPCA works on it in place)

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
        """X[:, j0:j1] as a float32 tensor (n, j1 - j0); only all-row column slices are supported.
        The slab is allocated once and each model's byte range is read straight into its row
        (float16/bfloat16 files go through one row-sized buffer), so a read costs one slab."""
        if not (isinstance(key, tuple) and len(key) == 2 and key[0] == slice(None)
                and isinstance(key[1], slice) and key[1].step in (None, 1)):
            raise ConfigError("StackedColumns reads column slabs only: X[:, j0:j1]")
        n, d = self.shape
        j0, j1, _ = key[1].indices(d)
        out = torch.empty(n, max(0, j1 - j0), dtype=torch.float32)
        with open(self.path, "rb", buffering=0) as f:
            for e in self.layout.entries:
                a, b = max(j0, e.offset), min(j1, e.offset + e.numel)
                if a < b:
                    self._read_into(f.fileno(), e, a - e.offset, b - e.offset, out[:, a - j0:b - j0])
        return out

    def _read_into(self, fd: int, e, a: int, b: int, out: torch.Tensor) -> None:
        """Flat entries [a, b) of one tensor for every model into out (n, b - a), whose rows are
        contiguous: one positioned read per model, straight into the row for float32 files."""
        meta = self._meta[e.name]
        np_dtype, view = _DTYPES[meta["dtype"]]
        item = np.dtype(np_dtype).itemsize
        size = (b - a) * item
        start = self._data + meta["data_offsets"][0]
        staging = None if np_dtype == np.float32 else np.empty(b - a, dtype=np_dtype)
        for i in range(self.shape[0]):
            target = out[i].numpy() if staging is None else staging
            if os.preadv(fd, [target], start + (i * e.numel + a) * item) != size:
                raise ArtifactError(f"{self.path} is truncated inside {e.name!r}; delete it and "
                                    "re-run the stage that wrote it")
            if staging is not None:
                row = torch.from_numpy(staging)
                out[i] = row.view(view) if view is not None else row
            self.bytes_read += size
