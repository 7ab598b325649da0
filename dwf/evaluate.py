"""Accuracy and novelty of a population of nets, from predictions computed once and cached.

Novelty has two faces:
- distance: median nearest-neighbour distance (aligned weight space) from each net to the zoo,
  divided by the zoo's own leave-one-out median NN distance (1.0 = as far from the zoo as zoo
  members are from each other; near 0 = near-copies);
- behaviour: max similarity of a net's errors with any zoo member's (self excluded for zoo
  members): IoU of the sets of misclassified test examples, or for regression the correlation
  of residuals; near 1 = makes the same mistakes as some original.

`acc` holds the task's score: accuracy, or Spearman ρ for regression (`dwf.task`).
"""
from __future__ import annotations

from dataclasses import dataclass, asdict

import torch

from .task import CLASSIFICATION, Task


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


def nn_distances(V: torch.Tensor, ref: torch.Tensor, exclude_self: bool = False) -> torch.Tensor:
    """Euclidean distance from each row of V (m, d) to its nearest row of ref (n, d) -> (m,).
    With `exclude_self`, V is ref and each row's distance to itself is ignored."""
    D = torch.cdist(V.double(), ref.double())
    if exclude_self:
        D.fill_diagonal_(float("inf"))
    return D.min(1).values.float()


@dataclass
class ZooReference:
    """What every population is compared with: the zoo's vectors and error signatures."""
    vectors: torch.Tensor   # (n, d) aligned zoo weights
    errors: torch.Tensor    # (n, N) errors on the evaluation split (Task.signature)
    median_nn: float        # zoo's leave-one-out median NN distance
    task: Task = CLASSIFICATION

    @classmethod
    def build(cls, vectors: torch.Tensor, preds: torch.Tensor, y: torch.Tensor,
              task: Task = CLASSIFICATION) -> "ZooReference":
        return cls(vectors, task.signature(preds, y), float(nn_distances(vectors, vectors, True).median()),
                   task)


def population(name: str, vectors: torch.Tensor, preds: torch.Tensor, y: torch.Tensor,
               ref: ZooReference, is_zoo: bool = False) -> Population:
    """Metrics of nets with flat weights `vectors` (m, d) and cached predictions `preds` (m, N)."""
    task = ref.task
    sim = task.similarity(task.signature(preds, y), ref.errors)
    if is_zoo:
        sim.fill_diagonal_(-float("inf"))
    return Population(name, task.score(preds, y).tolist(),
                      nn_distances(vectors, ref.vectors, exclude_self=is_zoo).tolist(),
                      sim.max(1).values.tolist())


def error_similarity(preds: torch.Tensor, ref_preds: torch.Tensor, y: torch.Tensor,
                     task: Task = CLASSIFICATION) -> torch.Tensor:
    """(m, n) similarity of each net's errors (preds (m, N)) with each reference net's
    (ref_preds (n, N)): IoU of the misclassified sets, or the correlation of residuals."""
    return task.similarity(task.signature(preds, y), task.signature(ref_preds, y))


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
