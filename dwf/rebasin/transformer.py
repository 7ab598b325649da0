"""The permutation symmetry of a transformer, declared per block.

Four kinds of permutation leave a pre- or post-LN transformer's function unchanged:
- heads: reorder the attention heads of a block (their Q, K, V rows and the output projection's
  columns move together);
- within a head, the QK pair: one permutation of the head's query and key units (q . k is a sum
  over them);
- within a head, the VO pair: a *separate* permutation of its value units and the output
  projection's columns that read them;
- FFN hidden units; and optionally the residual stream: one permutation of the model width,
  applied to the embeddings, every LayerNorm, and every matrix that reads or writes the stream.

A `TransformerSpec` says where these live (tensor names, row offsets for fused QKV weights), so
one implementation serves dwf's ViT and Hugging Face BERT alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch

from ..errors import ConfigError


@dataclass(frozen=True)
class Rows:
    """Rows [offset, offset + n) of a Linear's weight (out, in) and of its bias (out,)."""
    weight: str
    bias: str | None
    offset: int = 0


@dataclass(frozen=True)
class AttentionBlock:
    heads: int
    head_dim: int
    q: Rows
    k: Rows
    v: Rows
    o: str                   # output projection weight (dim, heads * head_dim): columns read heads
    ffn_in: Rows             # first FFN Linear: rows are the hidden units
    ffn_out: str             # second FFN Linear weight (dim, hidden): columns read them


@dataclass(frozen=True)
class TransformerSpec:
    dim: int                                  # residual stream width
    blocks: tuple[AttentionBlock, ...]
    stream: tuple[tuple[str, int], ...]       # (tensor, axis) pairs carrying the residual stream

    def block_tensors(self) -> set[str]:
        """Tensors with an axis permuted by a block (heads, QK, VO or FFN)."""
        out = set()
        for b in self.blocks:
            for r in (b.q, b.k, b.v, b.ffn_in):
                out |= {r.weight} | ({r.bias} if r.bias else set())
            out |= {b.o, b.ffn_out}
        return out


@dataclass
class TransformerPerms:
    """new[..., j, ...] = old[..., perm[j], ...] on every permuted axis, as in `apply_perms`.
    heads[b][h] is the old head that becomes head h of block b; qk[b][h] and vo[b][h] reorder the
    units inside that (old) head."""
    stream: torch.Tensor            # (dim,)
    heads: list[torch.Tensor]       # per block (H,)
    qk: list[torch.Tensor]          # per block (H, head_dim)
    vo: list[torch.Tensor]          # per block (H, head_dim)
    ffn: list[torch.Tensor]         # per block (F,)


def ffn_size(spec: TransformerSpec, sd: Mapping[str, torch.Tensor], b: int) -> int:
    return sd[spec.blocks[b].ffn_out].shape[1]


def identity_transformer_perms(spec: TransformerSpec, sd: Mapping[str, torch.Tensor]) -> TransformerPerms:
    return TransformerPerms(torch.arange(spec.dim),
                            [torch.arange(b.heads) for b in spec.blocks],
                            [torch.arange(b.head_dim).repeat(b.heads, 1) for b in spec.blocks],
                            [torch.arange(b.head_dim).repeat(b.heads, 1) for b in spec.blocks],
                            [torch.arange(ffn_size(spec, sd, i)) for i in range(len(spec.blocks))])


def random_transformer_perms(spec: TransformerSpec, sd: Mapping[str, torch.Tensor],
                             generator: torch.Generator | None = None, stream: bool = True,
                             kinds: tuple[str, ...] = ("heads", "qk", "vo", "ffn")) -> TransformerPerms:
    """Random permutations of the given kinds (the others stay identities)."""
    p = identity_transformer_perms(spec, sd)

    def rand_rows(n_rows: int, n: int) -> torch.Tensor:
        return torch.stack([torch.randperm(n, generator=generator) for _ in range(n_rows)])

    if stream:
        p.stream = torch.randperm(spec.dim, generator=generator)
    for i, b in enumerate(spec.blocks):
        if "heads" in kinds:
            p.heads[i] = torch.randperm(b.heads, generator=generator)
        if "qk" in kinds:
            p.qk[i] = rand_rows(b.heads, b.head_dim)
        if "vo" in kinds:
            p.vo[i] = rand_rows(b.heads, b.head_dim)
        if "ffn" in kinds:
            p.ffn[i] = torch.randperm(ffn_size(spec, sd, i), generator=generator)
    return p


def head_rows(heads: torch.Tensor, within: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Source index of each new (head, unit) position, head-major: (H * head_dim,)."""
    return (heads[:, None] * head_dim + within[heads]).flatten()


def axis_indices(spec: TransformerSpec, perms: TransformerPerms,
                 sd: Mapping[str, torch.Tensor]) -> dict[tuple[str, int], torch.Tensor]:
    """The full source-index vector of every permuted (tensor, axis)."""
    out: dict[tuple[str, int], torch.Tensor] = {}

    def rows(r: Rows, idx: torch.Tensor) -> None:
        for name in (r.weight, r.bias):
            if name is None:
                continue
            full = out.setdefault((name, 0), torch.arange(sd[name].shape[0]))
            full[r.offset:r.offset + len(idx)] = r.offset + idx

    for name, ax in spec.stream:
        out[name, ax] = perms.stream
    for i, b in enumerate(spec.blocks):
        qk = head_rows(perms.heads[i], perms.qk[i], b.head_dim)
        vo = head_rows(perms.heads[i], perms.vo[i], b.head_dim)
        rows(b.q, qk)
        rows(b.k, qk)
        rows(b.v, vo)
        out[b.o, 1] = vo
        rows(b.ffn_in, perms.ffn[i])
        out[b.ffn_out, 1] = perms.ffn[i]
    return out


def apply_transformer_perms(spec: TransformerSpec, perms: TransformerPerms,
                            sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict with every permuted axis reordered; other tensors pass through."""
    out = dict(sd)
    for (name, ax), idx in axis_indices(spec, perms, sd).items():
        out[name] = torch.index_select(out[name], ax, idx.to(out[name].device))
    return out


def check_transformer_spec(spec: TransformerSpec, sd: Mapping[str, torch.Tensor]) -> None:
    """Every tensor the spec names exists and has the sizes the spec implies."""
    for name, ax in spec.stream:
        if name not in sd or sd[name].ndim <= ax or sd[name].shape[ax] != spec.dim:
            raise ConfigError(f"the transformer spec puts the residual stream ({spec.dim} wide) on "
                              f"axis {ax} of {name!r}, which the state dict does not have")
    for b in spec.blocks:
        width = b.heads * b.head_dim
        for r in (b.q, b.k, b.v):
            if r.weight not in sd or sd[r.weight].shape[0] < r.offset + width:
                raise ConfigError(f"{r.weight!r} lacks rows {r.offset}..{r.offset + width} for "
                                  f"{b.heads} heads of {b.head_dim}")
        if b.o not in sd or sd[b.o].shape[1] != width:
            raise ConfigError(f"output projection {b.o!r} must read {width} head units")


def vit_spec(model) -> TransformerSpec:
    """The symmetry of `dwf.archs.ViT`: fused QKV rows [q | k | v], head-major; the residual
    stream runs through the patch embedding, class token, position embedding, every LayerNorm,
    every block's reading and writing matrices, and the head's input."""
    dim = model.cls_token.shape[-1]
    stream = [("patch_embed.weight", 0), ("patch_embed.bias", 0), ("cls_token", 2), ("pos_embed", 2),
              ("norm.weight", 0), ("norm.bias", 0), ("head.weight", 1)]
    blocks = []
    for i, blk in enumerate(model.blocks):
        p = f"blocks.{i}."
        stream += [(p + "norm1.weight", 0), (p + "norm1.bias", 0), (p + "norm2.weight", 0),
                   (p + "norm2.bias", 0), (p + "attn.qkv.weight", 1), (p + "attn.proj.weight", 0),
                   (p + "attn.proj.bias", 0), (p + "fc1.weight", 1), (p + "fc2.weight", 0),
                   (p + "fc2.bias", 0)]
        qkv = (p + "attn.qkv.weight", p + "attn.qkv.bias")
        H = blk.attn.heads
        blocks.append(AttentionBlock(H, dim // H, Rows(*qkv, 0), Rows(*qkv, dim), Rows(*qkv, 2 * dim),
                                     p + "attn.proj.weight", Rows(p + "fc1.weight", p + "fc1.bias"),
                                     p + "fc2.weight"))
    return TransformerSpec(dim, tuple(blocks), tuple(stream))


def bert_spec(model, prefix: str = "bert.") -> TransformerSpec:
    """The symmetry of a Hugging Face `BertModel` (post-LN; separate query, key and value
    Linears) under `prefix`: the residual stream runs through the word, position and token-type
    embeddings, every LayerNorm, each layer's reading and writing matrices, and the pooler's
    input."""
    cfg = model.config
    dim, H = cfg.hidden_size, cfg.num_attention_heads
    e = prefix + "embeddings."
    stream = [(e + "word_embeddings.weight", 1), (e + "position_embeddings.weight", 1),
              (e + "token_type_embeddings.weight", 1), (e + "LayerNorm.weight", 0),
              (e + "LayerNorm.bias", 0), (prefix + "pooler.dense.weight", 1)]
    blocks = []
    for i in range(cfg.num_hidden_layers):
        p = f"{prefix}encoder.layer.{i}."
        a = p + "attention."
        stream += [(a + "self.query.weight", 1), (a + "self.key.weight", 1), (a + "self.value.weight", 1),
                   (a + "output.dense.weight", 0), (a + "output.dense.bias", 0),
                   (a + "output.LayerNorm.weight", 0), (a + "output.LayerNorm.bias", 0),
                   (p + "intermediate.dense.weight", 1), (p + "output.dense.weight", 0),
                   (p + "output.dense.bias", 0), (p + "output.LayerNorm.weight", 0),
                   (p + "output.LayerNorm.bias", 0)]
        blocks.append(AttentionBlock(
            H, dim // H, Rows(a + "self.query.weight", a + "self.query.bias"),
            Rows(a + "self.key.weight", a + "self.key.bias"), Rows(a + "self.value.weight", a + "self.value.bias"),
            a + "output.dense.weight", Rows(p + "intermediate.dense.weight", p + "intermediate.dense.bias"),
            p + "output.dense.weight"))
    return TransformerSpec(dim, tuple(blocks), tuple(stream))
