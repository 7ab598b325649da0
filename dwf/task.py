"""What a net's outputs mean: classification (logits, scored by accuracy) or regression (one
value, scored by Spearman's rank correlation, as the paper scores its BERT). Everything that
trains, scores or compares nets asks the task, so both kinds share one pipeline.

A net's *signature* is what behavioural novelty compares: the set of examples it gets wrong
(classification, compared by IoU) or its residuals (regression, compared by correlation).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .data import Dataset


@dataclass(frozen=True)
class Task:
    kind: str                      # "classification" | "regression"

    @property
    def metric(self) -> str:
        return "accuracy" if self.kind == "classification" else "Spearman ρ"

    def loss(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example loss. outputs (..., C), y (...) -> (...)"""
        if self.kind == "classification":
            return F.cross_entropy(outputs.flatten(0, -2), y.flatten(), reduction="none").view(y.shape)
        return (outputs[..., 0] - y) ** 2

    def predictions(self, outputs: torch.Tensor) -> torch.Tensor:
        """What is cached per net and example: the class (int64) or the value (float32)."""
        return outputs.argmax(-1) if self.kind == "classification" else outputs[..., 0].float()

    def score(self, preds: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(n, N) predictions of n nets -> (n,) accuracy or Spearman ρ."""
        if self.kind == "classification":
            return (preds == y).float().mean(1)
        return _pearson(_ranks(preds), _ranks(y.expand_as(preds)))

    def signature(self, preds: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(n, N): the errors a net makes, as a bool mask or as residuals."""
        return preds != y if self.kind == "classification" else (preds - y).float()

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(na, nb) behavioural similarity of signatures: IoU of error sets, or the correlation
        of residuals (1: the same mistakes)."""
        if self.kind == "classification":
            fa, fb = a.float(), b.float()
            inter = fa @ fb.T
            union = fa.sum(1, keepdim=True) + fb.sum(1)[None] - inter
            return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(inter))
        za = (a - a.mean(1, keepdim=True)) / a.std(1, keepdim=True).clamp_min(1e-12)
        zb = (b - b.mean(1, keepdim=True)) / b.std(1, keepdim=True).clamp_min(1e-12)
        return ((za @ zb.T) / (a.shape[1] - 1)).clamp(-1.0, 1.0)   # rounding can step past 1

    def diversity(self, preds: torch.Tensor, y: torch.Tensor) -> float:
        """Functional diversity of n nets (preds (n, N)): the mean over pairs of nets of the share
        of examples on which their predicted classes differ, or for regression of 1 − the
        correlation of their residuals. 0: one function repeated. NaN for fewer than 2 nets."""
        n = preds.shape[0]
        if n < 2:
            return float("nan")
        if self.kind == "classification":
            onehot = torch.nn.functional.one_hot(preds, int(max(preds.max(), y.max())) + 1).float()
            o = onehot.reshape(n, -1)                                             # (n, N·C)
            agree = (o @ o.T).double() / preds.shape[1]                           # (n, n) shares agreed
            off = agree.sum() - agree.diagonal().sum()
            return float(1 - off / (n * (n - 1)))
        sim = self.similarity(self.signature(preds, y), self.signature(preds, y)).double()
        return float(1 - (sim.sum() - sim.diagonal().sum()) / (n * (n - 1)))


CLASSIFICATION, REGRESSION = Task("classification"), Task("regression")


def task_for(data: Dataset) -> Task:
    """Regression when the dataset has no classes (float targets), else classification."""
    return REGRESSION if data.n_classes == 0 else CLASSIFICATION


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Average ranks (ties share their mean rank) along the last axis, float64."""
    x = x.double()
    order = x.argsort(-1)
    ranks = torch.empty_like(x).scatter_(-1, order, torch.arange(x.shape[-1], dtype=x.dtype).expand_as(x).contiguous())
    # average the ranks of tied values
    out = torch.empty_like(ranks)
    for i in range(x.shape[0]):
        _, inverse, counts = torch.unique(x[i], return_inverse=True, return_counts=True)
        sums = torch.zeros(len(counts), dtype=x.dtype).index_add_(0, inverse, ranks[i])
        out[i] = (sums / counts)[inverse]
    return out


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Pearson correlation of (n, N) tensors -> (n,)."""
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-300)).float()
