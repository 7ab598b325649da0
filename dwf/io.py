"""Artifact files: atomic writes (temp file + rename) and validated safetensors / JSON reads.

Never unpickles: user-supplied files are read with safetensors and json only.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from contextlib import contextmanager
from typing import Any, BinaryIO, Iterator, Mapping

import torch
from safetensors import SafetensorError
from safetensors import safe_open
from safetensors.torch import load_file

from .errors import ArtifactError


@contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file that appears at `path` only when the block finishes without error (temp
    file + rename); on failure nothing is left behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_file(path) as f:
        f.write(data)


_ST_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
              torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
              torch.uint8: "U8", torch.bool: "BOOL"}


def save_tensors(path: str | Path, tensors: Mapping[str, torch.Tensor],
                 metadata: Mapping[str, str] | None = None) -> None:
    """Write a safetensors file tensor by tensor, straight from each tensor's memory: a zoo
    checkpoint of 20 MiniLMs (7 GB) needs no second in-memory copy of itself."""
    data = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for k, v in data.items():
        if v.dtype not in _ST_DTYPES:
            raise ArtifactError(f"cannot save {k!r}: dtype {v.dtype} has no safetensors code")
        size = v.numel() * v.element_size()
        header[k] = {"dtype": _ST_DTYPES[v.dtype], "shape": list(v.shape), "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)                      # the data starts 8-byte aligned
    with atomic_file(path) as f:
        f.write(len(head).to_bytes(8, "little"))
        f.write(head)
        for v in data.values():
            if v.numel():
                f.write(memoryview(v.reshape(-1).view(torch.uint8).numpy()))


def load_tensors(path: str | Path, check_finite: bool = True) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path} does not exist; run the stage that writes it "
                            "(e.g. `python -m dwf run EXPERIMENT`) or check the path")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ArtifactError(f"{path} is not a readable safetensors file ({e}); it is probably "
                            "truncated or corrupt: delete it and re-run the stage") from e
    if check_finite:
        bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise ArtifactError(f"{path} holds NaN or infinite values in {bad[:5]}; the run that "
                                "wrote it diverged: delete it and re-run (lower the learning rate?)")
    return tensors


def load_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata a safetensors file carries in its header (`save_tensors(metadata=)`)."""
    try:
        with safe_open(str(path), "pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise ArtifactError(f"{path} is not a readable safetensors file ({e}); delete it and re-run the stage") from e


def strict_json(obj: Any) -> Any:
    """NaN and inf become null, so the file is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def save_json(path: str | Path, obj: Any) -> None:
    """Strict JSON, keys in insertion order (pipeline order reads naturally)."""
    text = json.dumps(strict_json(obj), indent=2, default=str, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())


def load_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path} does not exist; re-run the stage that writes it")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{path} is not valid JSON ({e}); delete it and re-run the stage") from e
