"""Generated BERT regressors as Hugging Face folders: `save_pretrained` of the encoder (config +
safetensors), the regression head beside it, and the tokenizer, so `transformers` alone can load
the encoder and `load_bert` the whole regressor.

The folder is written to a temporary sibling and renamed into place: a failure leaves nothing
half-written.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Mapping

import torch

from . import archs
from .archs.bert import BertRegressor, minilm_dir
from .config import ArchSpec
from .errors import ArtifactError, ConfigError
from .io import load_tensors, save_tensors

HEAD = "regression_head.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def save_bert(arch: ArchSpec, state: Mapping[str, torch.Tensor], directory: str | Path,
              tokenizer=None) -> Path:
    """Write one BERT regressor (state dict of `dwf.archs.BertRegressor`) as a HF folder, with
    `tokenizer` (a HF tokenizer whose ids the model reads; default MiniLM-L6's own)."""
    if arch.kind != "bert":
        raise ConfigError(f"save_bert exports bert regressors, got a {arch.kind}; save other nets "
                          "with safetensors (dwf.io.save_tensors)")
    if tokenizer is not None and len(tokenizer) > arch.vocab > 0:
        raise ConfigError(f"the tokenizer has {len(tokenizer)} ids but the model embeds {arch.vocab}; "
                          "pass the tokenizer its data was encoded with (dwf.data.vader_tokenizer)")
    model = archs.load_weights(archs.build(arch), state)
    out = Path(directory)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        model.bert.save_pretrained(tmp, safe_serialization=True)
        save_tensors(tmp / HEAD, {"weight": model.head.weight, "bias": model.head.bias})
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        else:
            for name in TOKENIZER_FILES:
                if (minilm_dir() / name).exists():
                    shutil.copy2(minilm_dir() / name, tmp / name)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_bert(directory: str | Path) -> BertRegressor:
    """A BERT regressor from a folder written by `save_bert` (no network access)."""
    from transformers import BertModel

    d = Path(directory)
    if not (d / "config.json").exists() or not (d / HEAD).exists():
        raise ArtifactError(f"{d} is not a dwf BERT export (config.json and {HEAD} expected); "
                            "write one with dwf.export.save_bert")
    if not (d / "model.safetensors").exists():
        pickles = sorted(p.name for p in d.glob("*.bin")) or ["no model.safetensors"]
        raise ArtifactError(f"{d} holds {', '.join(pickles)} but no model.safetensors; dwf reads weights "
                            "from safetensors only (a pickle file can run code when loaded). Export the "
                            "net with dwf.export.save_bert")
    model = BertRegressor(BertModel.from_pretrained(str(d), local_files_only=True, use_safetensors=True))
    head = load_tensors(d / HEAD)
    with torch.no_grad():
        model.head.weight.copy_(head["weight"])
        model.head.bias.copy_(head["bias"])
    return model.eval()
