"""Git Re-Basin weight matching: coordinate descent over permutation groups.

For a group P with the other permutations fixed, maximizing sum_tensors <W_ref, perm(W)> is a
linear assignment problem on the n x n similarity matrix A[i, j] = <ref unit i, other unit j>,
solved exactly by the Hungarian method. Sweep the groups in random order until none improves.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .spec import PermutationSpec, apply_perms, check_compatible, identity_perms


def _unit_rows(w: torch.Tensor, axis: int) -> torch.Tensor:
    """(units, rest) view of w with `axis` first."""
    return w.movedim(axis, 0).reshape(w.shape[axis], -1).double()


def weight_matching(spec: PermutationSpec, reference_sd: Mapping[str, torch.Tensor],
                    sd: Mapping[str, torch.Tensor], max_iter: int = 100,
                    generator: torch.Generator | None = None,
                    exclude: Iterable[str] = ()) -> dict[str, torch.Tensor]:
    """Permutations that align `sd` to `reference_sd` (apply them with `apply_perms`).

    exclude: tensor names left out of the cost (e.g. BatchNorm running statistics); they are
    still permuted by `apply_perms`.
    """
    check_compatible(spec, sd)
    check_compatible(spec, reference_sd)
    skip = set(exclude)
    perms = identity_perms(spec)
    p2a = {p: [(n, ax) for n, ax in axes if n not in skip] for p, axes in spec.perm_to_axes.items()}
    names = list(spec.sizes)
    ref_rows = {(name, ax): _unit_rows(reference_sd[name], ax)          # (units, rest) float64
                for axes in p2a.values() for name, ax in axes}
    for _ in range(max_iter):
        improved = False
        order = torch.randperm(len(names), generator=generator).tolist()
        for p in (names[i] for i in order):
            A = torch.zeros(spec.sizes[p], spec.sizes[p], dtype=torch.float64)
            for name, ax in p2a[p]:
                # permute every other axis of the tensor, leave axis `ax` as is
                others = {q: perms[q] for q in spec.sizes if q != p}
                w = _permute_except(spec.axes[name], others, sd[name], ax)
                A += ref_rows[name, ax] @ _unit_rows(w, ax).T
            _, cols = linear_sum_assignment(A.numpy(), maximize=True)
            old = A[torch.arange(len(cols)), perms[p]].sum()
            new = A[torch.arange(len(cols)), torch.from_numpy(cols)].sum()
            if new > old + 1e-12 * max(1.0, abs(float(old))):
                perms[p] = torch.from_numpy(cols.astype(np.int64))
                improved = True
        if not improved:
            break
    return perms


def _permute_except(axes, perms, w: torch.Tensor, keep: int) -> torch.Tensor:
    for ax, p in enumerate(axes):
        if ax != keep and p is not None and p in perms:
            w = torch.index_select(w, ax, perms[p])
    return w


def align_to(spec: PermutationSpec, reference_sd, sd, **kw) -> dict[str, torch.Tensor]:
    """`sd` permuted to match `reference_sd` (same function as `sd`)."""
    return apply_perms(spec, weight_matching(spec, reference_sd, sd, **kw), sd)
