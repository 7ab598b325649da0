"""Artifact files: atomic writes (temp file + rename) and validated safetensors / JSON reads.

Never unpickles: user-supplied files are read with safetensors and json only.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save as st_save

from .errors import ArtifactError


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_tensors(path: str | Path, tensors: Mapping[str, torch.Tensor],
                 metadata: Mapping[str, str] | None = None) -> None:
    data = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write_bytes(path, st_save(data, metadata=dict(metadata) if metadata else None))


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
