"""Training checkpoints: one safetensors file per checkpoint, written atomically.

The tensors (weights, optimizer moments, generator states) and, in the file's header, the
JSON-able rest (epoch or step, loss history, scheduler state) and a fingerprint of what is
being trained travel as one unit, so a crash leaves either the previous checkpoint or the new
one, never weights of one step with the bookkeeping of another. A checkpoint whose fingerprint
differs (another configuration, other data) is never resumed.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch

from .errors import ArtifactError
from .io import load_metadata, load_tensors, save_tensors

log = logging.getLogger(__name__)


def fingerprint(*parts: Any) -> str:
    """A short hash of JSON-able parts and tensors (by their bytes)."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, torch.Tensor):
            t = p.detach().cpu().contiguous()
            h.update(str((t.dtype, tuple(t.shape))).encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def save(path: Path, fp: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    save_tensors(path, tensors, metadata={"fingerprint": fp, "meta": json.dumps(meta)})


def load(path: Path, fp: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """(tensors, meta) of the checkpoint at `path` when it was written for fingerprint `fp`;
    None when there is none, or it belongs to another configuration (then it is ignored)."""
    if not path.exists():
        return None
    header = load_metadata(path)
    if header.get("fingerprint") != fp:
        log.warning("%s was written for another configuration; starting from the beginning", path)
        return None
    try:
        meta = json.loads(header["meta"])
    except (KeyError, json.JSONDecodeError) as e:
        raise ArtifactError(f"checkpoint {path} has a damaged header ({e}); delete it to start afresh") from e
    return load_tensors(path, check_finite=False), meta


def optimizer_tensors(opt: torch.optim.Optimizer, prefix: str = "opt") -> dict[str, torch.Tensor]:
    """The optimizer's per-parameter state (step, moments) as flat tensors."""
    return {f"{prefix}.{i}.{k}": torch.as_tensor(v) for i, st in opt.state_dict()["state"].items()
            for k, v in st.items()}


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list | None = None,
                      prefix: str = "opt") -> None:
    """Load `optimizer_tensors` back (and the param groups' hyperparameters, e.g. a scheduled lr)."""
    sd = opt.state_dict()
    for i in range(sum(len(g["params"]) for g in opt.param_groups)):
        sd["state"][i] = {k.split(".")[-1]: v for k, v in tensors.items() if k.startswith(f"{prefix}.{i}.")}
    if groups is not None:
        sd["param_groups"] = [{**g, **{k: tuple(v) if isinstance(v, list) and k != "params" else v
                                        for k, v in saved.items()}} for g, saved in zip(sd["param_groups"], groups)]
    opt.load_state_dict(sd)


__all__ = ["fingerprint", "load", "optimizer_tensors", "restore_optimizer", "save"]
