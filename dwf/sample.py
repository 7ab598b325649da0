"""Generation, the only way dwf makes nets: fresh noise → ODE → inverse PCA → state dicts →
BatchNorm statistics.

    z₀ ~ N(0, s² I) (k,)  ──flow ODE──▶  z₁ (k,)  ──PCA⁻¹──▶  θ (d,)  ──unflatten──▶  {name: tensor}

For a conditional flow the field is guided toward `label`. Nets of an architecture with
BatchNorm get running statistics re-estimated on a seeded subset of the training split (the
flow generates weights only). The result is a frozen `Generated` that saves and loads itself
like a `Zoo` (safetensors + JSON manifest) with every setting that produced it.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import archs, bn
from .config import ArchSpec, SampleSpec
from .errors import ArtifactError, DwfError
from .flow import Flow
from .io import load_json, load_tensors, save_json, save_tensors
from .layout import ParamLayout
from .pca import DualPCA

WEIGHTS, CODES, MANIFEST = "weights.safetensors", "codes.safetensors", "manifest.json"


@dataclass(frozen=True)
class Generated:
    arch: ArchSpec
    spec: SampleSpec                  # every sampling setting (n, steps, solver, std, guidance, seed)
    codes: torch.Tensor               # (n, k) latent codes
    params: dict[str, torch.Tensor]   # {name: (n, ...)} ready state dicts, BatchNorm statistics set
    label: int | None = None          # conditional flows: the label generated for
    seconds: float = 0.0              # wall time of sampling + decoding
    bn_seconds: float = 0.0           # wall time of BatchNorm recalibration (0 without BatchNorm)

    @property
    def n(self) -> int:
        return self.codes.shape[0]

    @functools.cached_property
    def layout(self) -> ParamLayout:
        return ParamLayout.from_module(archs.build(self.arch))

    @functools.cached_property
    def vectors(self) -> torch.Tensor:
        """(n, d) flat weights (parameters only, the space the flow generates in)."""
        return self.layout.flatten(self.params, stacked=True)

    def state_dict(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.params.items()}

    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        save_tensors(d / WEIGHTS, self.params)
        save_tensors(d / CODES, {"codes": self.codes})
        save_json(d / MANIFEST, {"arch": dataclasses.asdict(self.arch), "spec": dataclasses.asdict(self.spec),
                                 "label": self.label, "seconds": self.seconds, "bn_seconds": self.bn_seconds})

    @classmethod
    def load(cls, directory: str | Path) -> "Generated":
        d = Path(directory)
        man = load_json(d / MANIFEST)
        try:
            arch = ArchSpec(**{**man["arch"], "hidden": tuple(man["arch"]["hidden"])})
            spec = SampleSpec(**man["spec"])
            out = cls(arch, spec, load_tensors(d / CODES)["codes"], load_tensors(d / WEIGHTS),
                      man["label"], float(man["seconds"]), float(man["bn_seconds"]))
        except (KeyError, TypeError) as e:
            raise ArtifactError(f"{d / MANIFEST} is not a manifest of generated nets ({e}); "
                                "delete the folder and generate again") from e
        if out.layout.check(out.params) != out.n:
            raise ArtifactError(f"{d} holds {out.layout.check(out.params)} nets but {out.n} codes; "
                                "delete the folder and generate again")
        return out


def states(arch: ArchSpec, vectors: torch.Tensor, bn_mode: str = "recalibrate", *,
           x_train: torch.Tensor | None = None, bn_samples: int = 1024, seed: int = 0,
           zoo_buffers: dict[str, torch.Tensor] | None = None, member: int = 0) -> dict[str, torch.Tensor]:
    """Stacked state dicts {name: (n, ...)} of flat weight vectors (n, d), with BatchNorm
    statistics by `bn_mode` (`dwf.bn.stacked_statistics`); nets without BatchNorm as they are."""
    model = archs.build(arch)
    params = ParamLayout.from_module(model).unflatten_stacked(vectors)
    return {**params, **bn.stacked_statistics(model, params, bn_mode, x_train=x_train, n_samples=bn_samples,
                                              seed=seed, zoo_buffers=zoo_buffers, member=member)}


def generate(flow: Flow, pca: DualPCA, arch: ArchSpec, spec: SampleSpec,
             x_train: torch.Tensor | None = None, label: int | None = None) -> Generated:
    """`spec.n` new nets: noise (seed `spec.seed`, std `spec.source_std` or the flow's own) →
    `spec.steps` steps of `spec.method` → decoded weights → BatchNorm statistics re-estimated on
    `x_train` (needed only by architectures with BatchNorm). A conditional flow generates for
    `label` with guidance weight `spec.guidance`."""
    t0 = time.perf_counter()
    Z = flow.sample(spec.n, steps=spec.steps, method=spec.method,
                    generator=torch.Generator().manual_seed(spec.seed), source_std=spec.source_std,
                    label=label, guidance=spec.guidance if label is not None else 1.0)
    X = pca.inverse_transform(Z)
    if not torch.isfinite(X).all():
        raise DwfError("generated weights hold NaN or inf: the flow diverged while sampling; use "
                       "rk4 with more steps, or a smaller source std")
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    params = states(arch, X, x_train=x_train, bn_samples=spec.bn_samples, seed=spec.seed)
    has_bn = len(params) > len(ParamLayout.from_module(archs.build(arch)).names)
    return Generated(arch, spec, Z, params, label, seconds, time.perf_counter() - t0 if has_bn else 0.0)
