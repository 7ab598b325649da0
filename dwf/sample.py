"""Generation: fresh noise -> ODE -> inverse PCA -> weight vectors (-> state dicts, see
`dwf.pipeline.sample`, which also recalibrates BatchNorm)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .errors import DwfError
from .flow import Flow
from .pca import DualPCA


@dataclass
class Generated:
    codes: torch.Tensor     # (n, k) latent codes
    vectors: torch.Tensor   # (n, d) flat weights
    seconds: float          # wall time of sampling + decoding
    params: dict[str, torch.Tensor] = field(default_factory=dict)  # {name: (n, ...)}, with BN statistics
    bn_seconds: float = 0.0  # wall time of BatchNorm recalibration (0 for nets without BN)


def generate(flow: Flow, pca: DualPCA, n: int, steps: int = 100, method: str = "rk4",
             source_std: float | None = None, seed: int = 0, label: int | None = None,
             guidance: float = 1.0) -> Generated:
    """n nets' codes and flat weights; a conditional flow generates for `label` with
    classifier-free guidance weight `guidance`."""
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    Z = flow.sample(n, steps=steps, method=method, generator=g, source_std=source_std,
                    label=label, guidance=guidance)
    X = pca.inverse_transform(Z)
    if not torch.isfinite(X).all():
        raise DwfError("generated weights hold NaN or inf: the flow diverged while sampling; "
                       "use fewer/larger-step-safe settings (rk4, more steps) or a smaller source std")
    return Generated(Z, X, time.perf_counter() - t0)
