"""Loss guidance in the PCA span: generated nets moved downhill on their training loss, only along
the directions the zoo's members span.

A net's weights X ∈ R^d split into its code Z ∈ R^k on the PCA's orthonormal components V (k, d),
the members' mean μ and a remainder outside the span:

    X = μ + Z V + X_⊥,    Z = (X − μ) Vᵀ,    X_⊥ = X − μ − Z V    (0 for a decoded code)

Guidance takes S Adam steps on Z, X_⊥ fixed, of each net's mean training loss on B random training
examples (one batch per step, shared by all nets), and returns μ + Z V + X_⊥. It is an operator on
nets, not on a generator: applied alike to the flow's nets, the fitted Gaussian's and noisy copies',
it asks whether the flow still gains anything once every generator may look at the training loss
(`dwf.guided` compares them). It reads the training split only, as BatchNorm recalibration does;
nets with BatchNorm are refused (their batch statistics would be fitted along with the weights).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from . import archs, stacked
from .config import ArchSpec
from .errors import ConfigError
from .layout import ParamLayout
from .pca import DualPCA
from .task import Task


@dataclass(frozen=True)
class Guidance:
    steps: int = 60            # Adam steps S on the codes (chosen on validation, wide digits N = 1024)
    lr: float = 1e-2           # Adam's learning rate (in code units: the members' PCA coordinates)
    batch_size: int = 256      # training examples per step B
    seed: int = 0              # the batches' draw

    def __post_init__(self):
        if self.steps < 0 or self.steps != int(self.steps):
            raise ConfigError(f"guidance steps must be a whole number >= 0, got {self.steps!r}")
        if not self.lr > 0:
            raise ConfigError(f"the guidance learning rate must be > 0, got {self.lr!r}")
        if self.batch_size < 1:
            raise ConfigError(f"the guidance batch size must be >= 1, got {self.batch_size!r}")


def check(arch: ArchSpec) -> None:
    """Refuse an architecture guidance is not defined for (one with BatchNorm), before any work."""
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in archs.build(arch).modules()):
        raise ConfigError(f"loss guidance is defined for nets without BatchNorm; {arch.kind} has it (its "
                          "statistics are re-estimated after decoding): guide an MLP or a transformer")


def guide(X: torch.Tensor, pca: DualPCA, arch: ArchSpec, x_train: torch.Tensor, y_train: torch.Tensor,
          task: Task, guidance: Guidance) -> torch.Tensor:
    """The nets X (n, d) after `guidance`: S Adam steps on their codes of the mean training loss."""
    check(arch)
    model = archs.build(arch).eval()
    if getattr(pca, "components_", None) is None:
        raise ConfigError("loss guidance needs the PCA's components in memory; fit it with keep_components=True")
    if guidance.steps == 0:
        return X
    layout = ParamLayout.from_module(model)
    V, mu = pca.components_, pca.mean_                                          # (k, d), (d,)
    Z0 = (X - mu) @ V.T                                                         # (n, k)
    rest = X - mu - Z0 @ V                                                      # (n, d) X_⊥
    Z = Z0.clone().requires_grad_()
    opt = torch.optim.Adam([Z], lr=guidance.lr)
    g = torch.Generator().manual_seed(guidance.seed)
    B = min(guidance.batch_size, len(x_train))
    with torch.enable_grad():
        for _ in range(guidance.steps):
            idx = torch.randperm(len(x_train), generator=g)[:B]
            out = stacked.forward(model, layout.unflatten_stacked(mu + Z @ V + rest), x_train[idx])  # (n, B, C)
            y = y_train[idx].expand(out.shape[0], *y_train[idx].shape)                           # (n, B)
            loss = task.loss(out, y).mean(1).sum()      # a sum of per-net means: each net's own gradient
            opt.zero_grad()
            loss.backward()
            opt.step()
    return (mu + Z.detach() @ V + rest).detach()


__all__ = ["Guidance", "check", "guide"]
