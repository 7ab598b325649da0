"""BatchNorm folded into the convolution before it, for inference.

In eval mode a BatchNorm after a convolution is an affine map per output channel c,

    bn(conv(x))_c = γ_c (W_c * x + b_c − μ_c) / √(σ²_c + ε) + β_c = (s_c W_c) * x + (β_c + s_c (b_c − μ_c)),

    s_c = γ_c / √(σ²_c + ε),

so the pair is one convolution with weight s_c W_c and bias β_c + s_c (b_c − μ_c): the same
function, one pass over the activations instead of two. `Folding.of(model)` finds the pairs in
the module's traced graph (a BatchNorm whose input is a convolution nobody else reads) and builds
the folded template (each such BatchNorm an identity, its convolution with a bias);
`Folding.params` folds stacked weights {name: (n, ...)} of any number of nets in one pass. Folded
convolution weights are stored channels-last per net, the layout the CPU convolution kernels
run fastest in for the narrow convnets of the quick profile (`make bench`).

Only for predictions (running statistics fixed): training and BatchNorm recalibration need
the BatchNorm layers themselves.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import fx, nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["Folding"]

_STATS = ("weight", "bias", "running_mean", "running_var")


@dataclass(frozen=True)
class Folding:
    """The (convolution, BatchNorm) pairs of one architecture and its folded template."""
    template: nn.Module                      # the model with each folded BatchNorm an identity
    pairs: tuple[tuple[str, str, float], ...]   # (conv name, bn name, eps)

    @classmethod
    def of(cls, model: nn.Module) -> "Folding":
        modules = dict(model.named_modules())
        graph = fx.symbolic_trace(model).graph
        pairs = []
        for node in graph.nodes:
            if node.op != "call_module" or not isinstance(modules[node.target], _BatchNorm):
                continue
            src = node.args[0]
            if (isinstance(src, fx.Node) and src.op == "call_module" and len(src.users) == 1
                    and type(modules[src.target]) is nn.Conv2d and modules[node.target].track_running_stats):
                pairs.append((src.target, node.target, modules[node.target].eps))
        template = copy.deepcopy(model)
        for conv, bn, _ in pairs:
            c = template.get_submodule(conv)
            if c.bias is None:
                c.bias = nn.Parameter(torch.zeros(c.out_channels))
            parent, _, leaf = bn.rpartition(".")
            setattr(template.get_submodule(parent) if parent else template, leaf, nn.Identity())
        return cls(template.eval(), tuple(pairs))

    def params(self, params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Stacked weights {name: (n, ...)} of the original model → those of the folded template.
        A pair whose BatchNorm has no entries in `params` is an error of the caller (the
        statistics live in the stacked weights, never in the template)."""
        out = dict(params)
        for conv, bn, eps in self.pairs:
            gamma, beta, mu, var = (out.pop(f"{bn}.{k}") for k in _STATS)            # (n, C) each
            out.pop(f"{bn}.num_batches_tracked", None)
            s = gamma / torch.sqrt(var + eps)                                           # (n, C)
            W = out[f"{conv}.weight"]                                                   # (n, C, Cin, kh, kw)
            b = out.get(f"{conv}.bias", torch.zeros_like(s))
            out[f"{conv}.weight"] = _channels_last(W * s[:, :, None, None, None])
            out[f"{conv}.bias"] = beta + s * (b - mu)
        return out


def _channels_last(W: torch.Tensor) -> torch.Tensor:
    """(n, C, Cin, kh, kw) with every net's (C, Cin, kh, kw) slice laid out channels-last."""
    return W.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
