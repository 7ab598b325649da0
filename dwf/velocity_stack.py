"""R velocity networks of one shape as one stack of parameters, evaluated in one pass.

Replicate flows (same codes, same spec, other seeds) are tiny MLPs whose training step is
dominated by per-call overhead, not arithmetic, so R of them trained as one stack cost about
what one does. Every parameter of `VelocityNet` gets a leading replicate axis,

    W (out, in) → Wᵀ (R, in, out),   x (B, in) → x (R, B, in),    y = x Wᵀ + b  → baddbmm,

(Linear weights are stacked transposed, so neither the forward nor the gradient pays for a
transposed copy), and the forward walks the module's own layer list (Linear, LayerNorm, GELU, Dropout), so the
stack always computes what the module defines. Each replicate draws its dropout masks from its
own generator: a replicate trained in a stack sees the randomness it would see alone.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError


class VelocityStack:
    """Stacked parameters {name: (R, ...)} of R VelocityNets built alike (`template`'s shape)."""

    def __init__(self, nets: list[nn.Module], device: torch.device | str = "cpu"):
        if not nets:
            raise ConfigError("a velocity stack needs at least one net")
        self.template = nets[0]
        self.transposed = {f"{name}.weight" for name, m in self.template.named_modules()
                           if isinstance(m, nn.Linear)}
        names = [k for k, _ in self.template.named_parameters()]
        self.params = {k: torch.stack([self._stacked(k, dict(n.named_parameters())[k].detach()) for n in nets])
                       .contiguous().to(device).requires_grad_() for k in names}

    @property
    def device(self) -> torch.device:
        return next(iter(self.params.values())).device

    def _stacked(self, name: str, v: torch.Tensor) -> torch.Tensor:
        return v.T if name in self.transposed else v

    @property
    def size(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def state_dict(self, r: int, params: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Replicate r's parameters as a VelocityNet state dict (from `params`, e.g. an EMA copy)."""
        return {k: self._stacked(k, v[r].detach()).clone() for k, v in (params or self.params).items()}

    def forward(self, params: dict[str, torch.Tensor], x: torch.Tensor, t: torch.Tensor,
                y: torch.Tensor | None = None, gens: list[torch.Generator] | None = None) -> torch.Tensor:
        # x (R, B, d), t (R, B), y (R, B) labels or None (all null) -> (R, B, d); gens: dropout on
        net = self.template
        h = [x, self._seq(net.time, "time", params, t[..., None], None)]
        if net.label is not None:
            W = params["label.weight"]                                         # (R, L + 1, td)
            labels = torch.full_like(t, net.n_labels, dtype=torch.long) if y is None else y
            h.append(W[torch.arange(W.shape[0], device=W.device)[:, None], labels])   # (R, B, td)
        return self._seq(net.net, "net", params, torch.cat(h, dim=-1), gens)

    @staticmethod
    def _seq(seq: nn.Sequential, prefix: str, params: dict[str, torch.Tensor], h: torch.Tensor,
             gens: list[torch.Generator] | None) -> torch.Tensor:
        for i, m in enumerate(seq):
            p = lambda name: params[f"{prefix}.{i}.{name}"]  # noqa: E731
            if isinstance(m, nn.Linear):
                h = torch.baddbmm(p("bias")[:, None, :], h, p("weight"))   # (R, B, in) @ (R, in, out)
            elif isinstance(m, nn.LayerNorm):
                h = F.layer_norm(h, m.normalized_shape, eps=m.eps) * p("weight")[:, None] + p("bias")[:, None]
            elif isinstance(m, nn.GELU):
                h = F.gelu(h)
            elif isinstance(m, nn.Dropout):
                if gens is not None and m.p > 0:
                    keep = torch.stack([torch.rand(h.shape[1:], generator=g) >= m.p for g in gens]).to(h.device)
                    h = h * keep / (1 - m.p)
            else:
                raise ConfigError(f"the velocity stack has no rule for {type(m).__name__}")
        return h


__all__ = ["VelocityStack"]
