"""TransFusion: align one transformer to a reference in a single pass.

1. Residual stream (optional): a linear assignment over the stream units, scored on the tensors
   whose every other axis is unpermuted (embeddings, LayerNorms, biases, the head's input); it
   is applied before anything else so every block matrix reads an aligned stream.
2. Per block, heads: Hungarian over the distance between the heads' singular-value spectra of
   W_Q, W_K and W_V (invariant to every within-head and stream permutation, so no iteration).
3. Per matched head pair, two separate assignments: the QK units (query and key rows together)
   and the VO units (value rows and the output projection's columns).
4. FFN hidden units: an assignment on the first layer's rows and bias and the second's columns.

Each assignment maximizes the summed inner products of the matched units' weights, exactly like
one step of weight matching; nothing is revisited, so one pass is the whole algorithm.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .transformer import (AttentionBlock, TransformerPerms, TransformerSpec, apply_transformer_perms,
                          check_transformer_spec, identity_transformer_perms)

StateDict = Mapping[str, torch.Tensor]


def _assign(score: torch.Tensor, maximize: bool = True) -> torch.Tensor:
    """Column assigned to each row of an (n, n) score matrix by the Hungarian method."""
    _, cols = linear_sum_assignment(score.double().cpu().numpy(), maximize=maximize)
    return torch.from_numpy(cols.astype(np.int64))


def _units(w: torch.Tensor, axis: int) -> torch.Tensor:
    """(units, features) float64 view with `axis` as the units."""
    return w.movedim(axis, 0).reshape(w.shape[axis], -1).double()


def _rows(sd: StateDict, weight: str, bias: str | None, start: int, n: int) -> torch.Tensor:
    """Rows start..start+n of a Linear as unit features (weight row, bias). (n, in + 1)"""
    w = sd[weight][start:start + n].double()
    b = sd[bias][start:start + n, None].double() if bias else w[:, :0]
    return torch.cat([w, b], dim=1)


def match_stream(spec: TransformerSpec, ref: StateDict, sd: StateDict) -> torch.Tensor:
    """Stream permutation from the tensors no block permutation touches. (dim,)"""
    busy = spec.block_tensors()
    score = torch.zeros(spec.dim, spec.dim, dtype=torch.float64)
    for name, ax in spec.stream:
        if name not in busy:
            score += _units(ref[name], ax) @ _units(sd[name], ax).T
    return _assign(score)


def _spectra(sd: StateDict, b: AttentionBlock) -> torch.Tensor:
    """Per head, the singular values of its W_Q, W_K and W_V rows, concatenated. (H, 3 * hd)"""
    out = []
    for h in range(b.heads):
        s = [torch.linalg.svdvals(sd[r.weight][r.offset + h * b.head_dim:
                                               r.offset + (h + 1) * b.head_dim].double())
             for r in (b.q, b.k, b.v)]
        out.append(torch.cat(s))
    return torch.stack(out)


def _qk_units(s: StateDict, b: AttentionBlock, head: int) -> torch.Tensor:
    """A head's QK units: query and key rows (with biases) side by side. (hd, 2 * (dim + 1))"""
    hd = b.head_dim
    return torch.cat([_rows(s, b.q.weight, b.q.bias, b.q.offset + head * hd, hd),
                      _rows(s, b.k.weight, b.k.bias, b.k.offset + head * hd, hd)], dim=1)


def _vo_units(s: StateDict, b: AttentionBlock, head: int) -> torch.Tensor:
    """A head's VO units: value rows (with bias) and the output projection's columns. (hd, 2 dim + 1)"""
    hd = b.head_dim
    cols = s[b.o][:, head * hd:(head + 1) * hd].T.double()                 # (hd, dim)
    return torch.cat([_rows(s, b.v.weight, b.v.bias, b.v.offset + head * hd, hd), cols], dim=1)


def _ffn_units(s: StateDict, b: AttentionBlock) -> torch.Tensor:
    """FFN hidden units: first-layer rows (with bias) and second-layer columns. (F, 2 dim + 1)"""
    n = s[b.ffn_out].shape[1]
    return torch.cat([_rows(s, b.ffn_in.weight, b.ffn_in.bias, b.ffn_in.offset, n),
                      s[b.ffn_out].T.double()], dim=1)


def match_block(b: AttentionBlock, ref: StateDict, sd: StateDict) -> tuple[torch.Tensor, ...]:
    """(heads (H,), qk (H, hd), vo (H, hd), ffn (F,)) aligning one block of `sd` (whose stream
    is already aligned) to the reference's; qk and vo are indexed by `sd`'s own head order."""
    heads = _assign(torch.cdist(_spectra(ref, b), _spectra(sd, b)), maximize=False)
    qk = torch.zeros(b.heads, b.head_dim, dtype=torch.long)
    vo = torch.zeros(b.heads, b.head_dim, dtype=torch.long)
    for h, g in enumerate(heads.tolist()):          # the reference's head h is sd's head g
        qk[g] = _assign(_qk_units(ref, b, h) @ _qk_units(sd, b, g).T)
        vo[g] = _assign(_vo_units(ref, b, h) @ _vo_units(sd, b, g).T)
    ffn = _assign(_ffn_units(ref, b) @ _ffn_units(sd, b).T)
    return heads, qk, vo, ffn


def transfusion(spec: TransformerSpec, reference_sd: StateDict, sd: StateDict,
                stream: bool = True) -> TransformerPerms:
    """Permutations that align `sd` to `reference_sd` (apply them with
    `apply_transformer_perms`). With `stream=False` the residual stream is left as it is."""
    check_transformer_spec(spec, sd)
    check_transformer_spec(spec, reference_sd)
    perms = identity_transformer_perms(spec, sd)
    if stream:
        perms.stream = match_stream(spec, reference_sd, sd)
    # the blocks see the stream-aligned weights (their own perms are still identities)
    streamed = apply_transformer_perms(spec, perms, sd)
    for i, b in enumerate(spec.blocks):
        perms.heads[i], perms.qk[i], perms.vo[i], perms.ffn[i] = match_block(b, reference_sd, streamed)
    return perms


def align_transformer(spec: TransformerSpec, reference_sd: StateDict, sd: StateDict,
                      stream: bool = True) -> dict[str, torch.Tensor]:
    """`sd` permuted to match `reference_sd` (same function as `sd`)."""
    return apply_transformer_perms(spec, transfusion(spec, reference_sd, sd, stream), sd)
