"""Device choice: `device="auto"` means CUDA when present, else the CPU."""
from __future__ import annotations

import torch


def resolve(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
