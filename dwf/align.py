"""Aligning a whole zoo: every member's hidden units permuted to match one reference member.

Each member is matched independently against the reference, with its own seeded generator (so
the result does not depend on which members are matched, or in which order). On one machine
members are matched one after another: the float64 matmuls inside weight matching already use
every CPU thread, and worker processes measured slower on 2 cores (0.66x for ResNet-18, 0.06x for
ResNet-20, where process start-up dominates). With an `engine` (a Ray cluster, `dwf.fanout`)
each member is one task, which pays where a cluster has many machines.
The reference is a member index, or the *medoid*: the member with the smallest summed distance
to all others once they are aligned to member 0; everyone is then re-matched against it, which
puts the reference at the centre of the cloud the flow has to learn.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Iterable, Mapping

import torch

from . import fanout
from .config import AlignSpec
from .errors import ConfigError
from .rebasin import TransformerSpec
from .rebasin.symmetry import Symmetry, align as align_one
from .zoo import Zoo

if TYPE_CHECKING:
    from .shards import Engine

StateDict = Mapping[str, torch.Tensor]


def match_all(spec: Symmetry, reference: StateDict, sds: list[StateDict], ref_index: int,
              max_iter: int, seed: int, exclude: Iterable[str] = (), stream: bool = True,
              progress: bool = False, engine: "Engine | None" = None) -> list[dict[str, torch.Tensor]]:
    """Every state dict aligned to `reference` (the one at `ref_index` passed through as is).
    Model i's coordinate-descent order comes from a generator seeded with (seed, i). With
    `engine`, each member is matched as a Ray task."""
    jobs = [(sd, member_seed(seed, i)) for i, sd in enumerate(sds) if i != ref_index]
    matched = iter(fanout.map_jobs(engine, _match_one, (spec, reference, max_iter, tuple(exclude), stream),
                                   jobs, desc="align", progress=progress))
    return [dict(sd) if i == ref_index else next(matched) for i, sd in enumerate(sds)]


def member_seed(seed: int, i: int) -> int:
    """The seed of member i's matching (its coordinate-descent order) under alignment seed `seed`."""
    return seed * 1_000_003 + i


def match_member(spec: Symmetry, reference: StateDict, sd: StateDict, i: int, max_iter: int, seed: int,
                 exclude: Iterable[str] = (), stream: bool = True) -> dict[str, torch.Tensor]:
    """Member i aligned to `reference` exactly as `match_all` aligns it (one member in memory)."""
    return _match_one(spec, reference, max_iter, tuple(exclude), stream, sd, member_seed(seed, i))


def _match_one(spec: Symmetry, reference: StateDict, max_iter: int, exclude: tuple[str, ...], stream: bool,
               sd: StateDict, seed: int) -> dict[str, torch.Tensor]:
    return align_one(spec, reference, sd, max_iter=max_iter, exclude=exclude, stream=stream,
                     generator=torch.Generator().manual_seed(seed))


def medoid(vectors: torch.Tensor) -> int:
    """Index of the row with the smallest summed Euclidean distance to all rows. (n, d) -> int"""
    return int(torch.cdist(vectors.double(), vectors.double()).sum(1).argmin())


def align_zoo(zoo: Zoo, spec: Symmetry, align: AlignSpec, exclude: Iterable[str] = (),
              progress: bool = False, engine: "Engine | None" = None) -> Zoo:
    """The zoo with every member permuted to match the reference (same functions).

    exclude: tensors left out of the matching cost (BatchNorm running statistics); they are
    permuted with their channels all the same. info records the reference, the wall time and
    each member's distance to the reference before and after.
    """
    t0 = time.perf_counter()
    n = zoo.n
    if align.method == "none":
        return Zoo(zoo.arch, dict(zoo.params), zoo.models,
                   {**zoo.info, "aligned": False, "align_seconds": 0.0})
    expected = "transfusion" if isinstance(spec, TransformerSpec) else "weight_matching"
    if align.method != expected:
        raise ConfigError(f"alignment method {align.method!r} does not fit this architecture: use "
                          f"{expected!r} (or 'none')")
    sds = zoo.state_dicts()
    kw = dict(max_iter=align.max_iter, seed=align.seed, exclude=exclude, stream=align.stream,
              progress=progress, engine=engine)
    if align.reference == "medoid":
        first = match_all(spec, sds[0], sds, 0, **kw)
        ref = medoid(Zoo(zoo.arch, _stack(first, zoo.params)).vectors())
        sds_ref = first                    # re-match the members aligned to 0 against the medoid
        out = match_all(spec, sds_ref[ref], sds_ref, ref, **kw)
    elif isinstance(align.reference, int) and not isinstance(align.reference, bool) and 0 <= align.reference < n:
        ref = align.reference
        out = match_all(spec, sds[ref], sds, ref, **kw)
    else:
        raise ConfigError(f"alignment reference must be a member index in [0, {n}) or 'medoid', "
                          f"got {align.reference!r}")
    aligned = Zoo(zoo.arch, _stack(out, zoo.params), zoo.models)
    V0, V1 = zoo.vectors(), aligned.vectors()
    aligned.info = {**zoo.info, "aligned": True, "reference": ref,
                    "align_seconds": time.perf_counter() - t0,
                    "dist_to_ref_before": (V0 - V0[ref]).norm(dim=1).tolist(),
                    "dist_to_ref_after": (V1 - V1[ref]).norm(dim=1).tolist()}
    return aligned


def _stack(sds: list[StateDict], like: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([sd[k] for sd in sds]) for k in like}
