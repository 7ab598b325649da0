"""StackedColumns: the (n, d) matrix of flattened weights of a stacked safetensors zoo file, read
column slab by column slab (or one model at a time), so DualPCA can fit a zoo that does not fit
in memory; StackedWriter writes such a file the same two ways.

Only the byte ranges of the tensors that overlap the requested columns are read, with plain
positioned reads (no memory map: the file's pages never count against the process), so memory
stays at one (n, chunk) slab. The safetensors layout makes this simple: an 8-byte header length,
a JSON header giving each tensor's dtype, shape and byte range, then the row-major data; model i's
rows [r0, r1) of a stacked tensor are one contiguous range. `bytes_read` counts what was read.
The writer lays out the header first (float32, every tensor (n, *shape)), so any model's range
or column slab can be written in place in any order; the file appears at its path only when the
writer closes without error.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

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

    def __init__(self, path: str | Path, layout: ParamLayout, rows: Sequence[int] | None = None):
        """The whole file, or only the models `rows` (in that order) as the matrix's rows."""
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
        self.n_file = ns.pop()
        self.rows = range(self.n_file) if rows is None else list(rows)
        if any(not 0 <= i < self.n_file for i in self.rows) or not self.rows:
            raise ConfigError(f"rows must be model indices in [0, {self.n_file}) of {self.path}, got {list(self.rows)[:8]}")
        self.shape = (len(self.rows), layout.dim)
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

    def row(self, i: int) -> dict[str, torch.Tensor]:
        """Model i of the file: its tensors {name: shape} as float32 (one model in memory)."""
        n, d = self.n_file, self.layout.dim
        if not 0 <= i < n:
            raise ConfigError(f"model {i} is not in {self.path} ({n} models)")
        out = torch.empty(1, d, dtype=torch.float32)
        with open(self.path, "rb", buffering=0) as f:
            for e in self.layout.entries:
                self._read_into(f.fileno(), e, 0, e.numel, out[:, e.offset:e.offset + e.numel], rows=range(i, i + 1))
        return {e.name: out[0, e.offset:e.offset + e.numel].view(e.shape) for e in self.layout.entries}

    def _read_into(self, fd: int, e, a: int, b: int, out: torch.Tensor, rows: Sequence[int] | None = None) -> None:
        """Flat entries [a, b) of one tensor for the models `rows` (default: this view's) into
        out (len(rows), b - a), whose rows are contiguous: one positioned read per model,
        straight into the row for float32 files."""
        meta = self._meta[e.name]
        np_dtype, view = _DTYPES[meta["dtype"]]
        item = np.dtype(np_dtype).itemsize
        size = (b - a) * item
        start = self._data + meta["data_offsets"][0]
        staging = None if np_dtype == np.float32 else np.empty(b - a, dtype=np_dtype)
        for r, i in enumerate(self.rows if rows is None else rows):
            target = out[r].numpy() if staging is None else staging
            if os.preadv(fd, [target], start + (i * e.numel + a) * item) != size:
                raise ArtifactError(f"{self.path} is truncated inside {e.name!r}; delete it and "
                                    "re-run the stage that wrote it")
            if staging is not None:
                row = torch.from_numpy(staging)
                out[r] = row.view(view) if view is not None else row
            self.bytes_read += size


class StackedWriter:
    """Writes an (n, d) float32 zoo file of `layout` in place: `write_row(i, state)` (one model)
    or `w[:, j0:j1] = slab` (all models' columns j0..j1), in any order. Use as a context manager:
    the file appears at `path` only when the block ends without error (nothing half-written)."""

    def __init__(self, path: str | Path, layout: ParamLayout, n: int):
        if n < 1:
            raise ConfigError(f"a zoo file holds at least one model, got n = {n}")
        self.path, self.layout, self.shape = Path(path), layout, (n, layout.dim)
        header, self._start, offset = {}, {}, 0
        for e in layout.entries:                     # tensor e: models 0..n-1, each e.numel floats
            header[e.name] = {"dtype": "F32", "shape": [n, *e.shape], "data_offsets": [offset, offset + 4 * n * e.numel]}
            self._start[e.name] = offset
            offset += 4 * n * e.numel
        head = json.dumps(header, separators=(",", ":")).encode()
        head += b" " * (-len(head) % 8)              # the data starts 8-byte aligned
        self._head, self._data, self._size = len(head).to_bytes(8, "little") + head, 8 + len(head), offset
        self._fd, self._tmp = None, None
        self.bytes_written = 0

    def __enter__(self) -> "StackedWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd, self._tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        os.pwrite(self._fd, self._head, 0)
        os.ftruncate(self._fd, self._data + self._size)   # sparse until written
        return self

    def __exit__(self, kind, value, trace) -> None:
        fd, self._fd = self._fd, None
        try:
            if kind is None:
                os.fsync(fd)
        finally:
            os.close(fd)
        if kind is None:
            os.chmod(self._tmp, 0o644)
            os.replace(self._tmp, self.path)
        else:
            Path(self._tmp).unlink(missing_ok=True)

    def _write(self, data: np.ndarray, e, flat: int) -> None:
        """data (float32, contiguous) at flat float index `flat` of tensor e's (n * numel) block."""
        if self._fd is None:
            raise ConfigError("write inside `with StackedWriter(...) as w:`")
        view, at, done = memoryview(data).cast("B"), self._data + self._start[e.name] + 4 * flat, 0
        while done < len(view):                      # one call writes at most ~2 GB on Linux
            wrote = os.pwrite(self._fd, view[done:], at + done)
            if wrote <= 0:
                raise ArtifactError(f"could not write {self.path} (is the disk full?)")
            done += wrote
        self.bytes_written += data.nbytes

    def write_row(self, i: int, state: Mapping[str, torch.Tensor]) -> None:
        """Model i's tensors (every layout entry, in its own shape)."""
        n = self.shape[0]
        if not 0 <= i < n:
            raise ConfigError(f"model {i} is outside this file's {n} models")
        for e in self.layout.entries:
            t = state[e.name]
            if tuple(t.shape) != e.shape:
                raise ConfigError(f"{e.name!r} has shape {tuple(t.shape)}, the layout expects {e.shape}")
            self._write(np.ascontiguousarray(t.detach().to(torch.float32).cpu().numpy()).reshape(-1), e, i * e.numel)

    def __setitem__(self, key, slab) -> None:
        """w[:, j0:j1] = slab (n, j1 - j0): every model's flat entries j0..j1."""
        if not (isinstance(key, tuple) and len(key) == 2 and key[0] == slice(None)
                and isinstance(key[1], slice) and key[1].step in (None, 1)):
            raise ConfigError("StackedWriter writes column slabs only: w[:, j0:j1] = slab")
        n, d = self.shape
        j0, j1, _ = key[1].indices(d)
        slab = np.asarray(slab.detach().cpu() if isinstance(slab, torch.Tensor) else slab, dtype=np.float32)
        if slab.shape != (n, j1 - j0):
            raise ConfigError(f"a slab for columns {j0}..{j1} has shape {(n, j1 - j0)}, got {slab.shape}")
        for e in self.layout.entries:
            a, b = max(j0, e.offset), min(j1, e.offset + e.numel)
            for i in range(n) if a < b else ():
                self._write(np.ascontiguousarray(slab[i, a - j0:b - j0]), e, i * e.numel + a - e.offset)
