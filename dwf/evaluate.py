"""Accuracy and novelty of a population of nets, from predictions computed once and cached.

Novelty has two faces:
- distance: median nearest-neighbour distance (aligned weight space) from each net to the zoo,
  divided by the zoo's own leave-one-out median NN distance (1.0 = as far from the zoo as zoo
  members are from each other; near 0 = near-copies);
- behaviour: max IoU of a net's set of misclassified test examples with any zoo member's set
  (self excluded for zoo members); near 1 = makes the same mistakes as some original.
"""
from __future__ import annotations

from dataclasses import dataclass, asdict

import torch


@dataclass
class Population:
    """Per-net metrics of one named set of nets."""
    name: str
    acc: list[float]
    nn_dist: list[float]
    max_iou: list[float]

    def summary(self, zoo_median_nn: float) -> dict:
        a = torch.tensor(self.acc)
        return {"name": self.name, "n": len(self.acc),
                "acc_mean": float(a.mean()), "acc_std": float(a.std()) if len(a) > 1 else 0.0,
                "acc_min": float(a.min()), "acc_max": float(a.max()),
                "novelty": float(torch.tensor(self.nn_dist).median() / zoo_median_nn),
                "max_iou": float(torch.tensor(self.max_iou).mean())}

    def to_dict(self) -> dict:
        return asdict(self)


def error_iou(wrong_a: torch.Tensor, wrong_b: torch.Tensor) -> torch.Tensor:
    """IoU of error sets. wrong_a (na, N), wrong_b (nb, N) bool -> (na, nb)."""
    a, b = wrong_a.float(), wrong_b.float()
    inter = a @ b.T
    union = a.sum(1, keepdim=True) + b.sum(1)[None] - inter
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(inter))


def nn_distances(V: torch.Tensor, ref: torch.Tensor, exclude_self: bool = False) -> torch.Tensor:
    """Euclidean distance from each row of V (m, d) to its nearest row of ref (n, d) -> (m,).
    With `exclude_self`, V is ref and each row's distance to itself is ignored."""
    D = torch.cdist(V.double(), ref.double())
    if exclude_self:
        D.fill_diagonal_(float("inf"))
    return D.min(1).values.float()


@dataclass
class ZooReference:
    """What every population is compared with: the zoo's vectors and error sets."""
    vectors: torch.Tensor   # (n, d) aligned zoo weights
    wrong: torch.Tensor     # (n, N) bool, errors on the evaluation split
    median_nn: float        # zoo's leave-one-out median NN distance

    @classmethod
    def build(cls, vectors: torch.Tensor, preds: torch.Tensor, y: torch.Tensor) -> "ZooReference":
        return cls(vectors, preds != y, float(nn_distances(vectors, vectors, True).median()))


def population(name: str, vectors: torch.Tensor, preds: torch.Tensor, y: torch.Tensor,
               ref: ZooReference, is_zoo: bool = False) -> Population:
    """Metrics of nets with flat weights `vectors` (m, d) and cached predictions `preds` (m, N)."""
    wrong = preds != y
    iou = error_iou(wrong, ref.wrong)
    if is_zoo:
        iou.fill_diagonal_(-1.0)
    return Population(name, (~wrong).float().mean(1).tolist(),
                      nn_distances(vectors, ref.vectors, exclude_self=is_zoo).tolist(),
                      iou.max(1).values.tolist())


def noisy_copies(vectors: torch.Tensor, n: int, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Baseline: zoo members (cycled) plus N(0, sigma^2) weight noise. (n, d)"""
    idx = torch.arange(n) % vectors.shape[0]
    return vectors[idx] + sigma * torch.randn(n, vectors.shape[1], generator=generator)


def interpolations(vectors: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Baseline: midpoint-ish mixes (1 - l) v_i + l v_j of random aligned pairs, l ~ U[0.25, 0.75]."""
    i = torch.randint(vectors.shape[0], (n,), generator=generator)
    j = (i + 1 + torch.randint(vectors.shape[0] - 1, (n,), generator=generator)) % vectors.shape[0]
    lam = 0.25 + 0.5 * torch.rand(n, 1, generator=generator)
    return (1 - lam) * vectors[i] + lam * vectors[j]
