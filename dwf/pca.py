"""Dual PCA: principal components of n weight vectors in d >> n dimensions via the n x n Gram.

One pass over column chunks accumulates the Gram matrix G = X0 X0^T (X0 = X - x_0, a shift that
keeps the products well conditioned) and the mean; centering is algebraic, G_c = H G H with
H = I - 11^T/n (a shift by any row cancels under H). An exact `eigh` of G_c gives the
eigenvalues; components V = diag(lambda)^(-1/2) U^T H X are formed in a second chunked pass.
X may be a tensor, a numpy array, a numpy memmap or a `dwf.columns.StackedColumns` view of a
zoo file: only one (n, chunk) slab is in memory.

With `keep_components=False` the (k, d) component matrix is never formed: the fit keeps the
(k, n) coefficients W (V = W X) and decoding streams X again, chunk by chunk:
X_hat = (Z W) X + mean. The training codes come from the Gram alone (Z = H G H W^T).
Slabs can be moved and multiplied in float16/bfloat16 (`dtype`); the Gram is accumulated in
float64 across slabs either way.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .devices import resolve
from .errors import ArtifactError, ConfigError, DwfError
from .io import load_tensors, save_tensors


def _slab(X, j0: int, j1: int, device, dtype) -> torch.Tensor:
    """X[:, j0:j1] as a tensor of `dtype` on `device` that the caller owns (modifies in place):
    copied unless the reader already made a fresh one (StackedColumns, converted slabs)."""
    part = X[:, j0:j1]
    owned = getattr(X, "returns_copies", False)
    if isinstance(part, np.ndarray):
        writable = np.require(part, requirements=("C", "W"))   # copies read-only / strided memmaps
        owned = owned or not np.shares_memory(writable, part)
        part = torch.from_numpy(writable)
    t = part.to(device=device, dtype=dtype)
    return t if owned or t.data_ptr() != part.data_ptr() else t.clone()


class DualPCA:
    """PCA through the dual (Gram) problem. Attributes after `fit` follow scikit-learn names:
    mean_ (d,), components_ (k, d), explained_variance_ (k,), explained_variance_ratio_ (k,)
    where the ratio is over the FULL variance (trace of the covariance), not the retained part."""

    def __init__(self, n_components: int | None = None, variance: float | None = None,
                 device: str = "auto", dtype: torch.dtype = torch.float32, chunk: int = 1 << 16,
                 keep_components: bool = True):
        if n_components is not None and variance is not None:
            raise ConfigError("give n_components or variance, not both")
        if n_components is not None and n_components < 1:
            raise ConfigError(f"n_components must be >= 1, got {n_components}")
        if variance is not None and not 0.0 < variance <= 1.0:
            raise ConfigError(f"variance must be in (0, 1], got {variance}")
        self.n_components, self.variance = n_components, variance
        self.device, self.dtype, self.chunk = resolve(device), dtype, chunk
        self.keep_components = keep_components

    def fit(self, X) -> "DualPCA":
        n, d = X.shape
        if n < 2:
            raise ConfigError(f"PCA needs at least 2 vectors, got {n}")
        G = torch.zeros(n, n, dtype=torch.float64, device=self.device)
        mean = torch.zeros(d, dtype=torch.float32)
        for j0 in range(0, d, self.chunk):
            S = _slab(X, j0, min(d, j0 + self.chunk), self.device, self.dtype)   # (n, c)
            x0 = S[0].clone()
            S -= x0                                   # S0 = S - x_0, in place: one slab in memory
            g = (S @ S.T).double()                    # (n, n)
            # NaN/inf anywhere in the slab reaches its row's diagonal entry (checked on this small
            # matrix: torch.isfinite on the slab would briefly need ~2 more slabs of memory)
            if not bool(torch.isfinite(g).all()):
                raise DwfError(f"the weight vectors hold NaN or inf (columns {j0}..); "
                               "check the zoo for diverged models")
            mean[j0:j0 + S.shape[1]] = (x0.float() + S.float().mean(0)).cpu()
            G += g
            del S                                     # before the next slab is read: one at a time
        H = torch.eye(n, dtype=torch.float64, device=self.device) - 1.0 / n
        Gc = H @ G @ H
        evals, evecs = torch.linalg.eigh(Gc)                       # ascending
        evals, evecs = evals.flip(0).clamp_min(0), evecs.flip(1)  # descending
        total = float(Gc.trace().clamp_min(1e-300))
        ratio = evals / total
        rank = int((evals > evals[0] * 1e-10).sum()) if evals[0] > 0 else 0
        k = self._choose_k(ratio, n, rank)
        self.n_samples_ = n
        self.mean_ = mean
        self.explained_variance_ = (evals[:k] / (n - 1)).float().cpu()
        self.explained_variance_ratio_ = ratio[:k].float().cpu()
        self.total_variance_ = total / (n - 1)
        self.singular_values_ = evals[:k].sqrt().float().cpu()
        # components: V = Lambda^-1/2 U^T H X = W X   (k, d)
        W = ((H @ evecs[:, :k]) / evals[:k].sqrt()).T          # (k, n) float64
        self.coef_ = W.float().cpu()
        self.train_codes_ = (Gc @ W.T).float().cpu()           # (n, k) = (X - mean) V^T
        self.dim_ = d
        if not self.keep_components:
            return self
        comps = torch.empty(k, d, dtype=torch.float32)
        for j0 in range(0, d, self.chunk):
            S = _slab(X, j0, min(d, j0 + self.chunk), self.device, self.dtype).double()
            comps[:, j0:j0 + S.shape[1]] = (W @ S).float().cpu()
        self.components_ = comps
        return self

    def _choose_k(self, ratio: torch.Tensor, n: int, rank: int) -> int:
        if rank == 0:
            raise DwfError("all weight vectors are identical: there is no variance to model")
        if self.n_components is not None:
            if self.n_components > n - 1:
                raise ConfigError(f"n_components={self.n_components} exceeds n - 1 = {n - 1} "
                                  "(n vectors span at most n - 1 centered directions)")
            return min(self.n_components, rank)
        if self.variance is not None:
            cum = ratio.cumsum(0)
            return min(int((cum < self.variance - 1e-12).sum()) + 1, rank)
        return min(n - 1, rank)

    def _fitted(self):
        if not hasattr(self, "mean_"):
            raise DwfError("this DualPCA is not fitted yet; call fit(X) first")

    def _components(self) -> torch.Tensor:
        self._fitted()
        if not hasattr(self, "components_"):
            raise DwfError("this DualPCA was fitted with keep_components=False: decode with "
                           "inverse_transform_streamed(Z, X) over the training vectors")
        return self.components_

    def transform(self, X) -> torch.Tensor:
        """(m, d) -> (m, k) codes."""
        V = self._components()
        X = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X).float()
        return (X - self.mean_) @ V.T

    def inverse_transform(self, Z: torch.Tensor) -> torch.Tensor:
        """(m, k) -> (m, d) weight vectors."""
        return Z.float() @ self._components() + self.mean_

    def inverse_transform_streamed(self, Z: torch.Tensor, X, out=None):
        """(m, k) -> (m, d) decoded chunk by chunk from the training vectors X (the same matrix,
        or view, that was fitted), without the (k, d) components: X_hat = (Z W) X + mean.
        `out` may be a preallocated (m, d) array or memmap to write into; returned."""
        self._fitted()
        if tuple(X.shape) != (self.n_samples_, self.dim_):
            raise ConfigError(f"decoding needs the {self.n_samples_} x {self.dim_} training vectors, "
                              f"got {tuple(X.shape)}")
        A = (Z.double() @ self.coef_.double()).to(self.device)                    # (m, n)
        m, d = Z.shape[0], self.dim_
        out = torch.empty(m, d, dtype=torch.float32) if out is None else out
        for j0 in range(0, d, self.chunk):
            S = _slab(X, j0, min(d, j0 + self.chunk), self.device, self.dtype).double()
            part = (A @ S).float().cpu() + self.mean_[j0:j0 + S.shape[1]]
            out[:, j0:j0 + S.shape[1]] = part.numpy() if isinstance(out, np.ndarray) else part
        return out

    @property
    def n_components_(self) -> int:
        self._fitted()
        return self.coef_.shape[0]

    def save(self, path: str | Path) -> None:
        """The fitted PCA; a streamed one (keep_components=False) without components, so it
        decodes with `inverse_transform_streamed` over its training vectors after `load` too."""
        self._fitted()
        parts = {"components": self.components_} if hasattr(self, "components_") else {}
        save_tensors(path, {"mean": self.mean_, **parts,
                            "coef": self.coef_, "train_codes": self.train_codes_,
                            "explained_variance": self.explained_variance_,
                            "explained_variance_ratio": self.explained_variance_ratio_,
                            "singular_values": self.singular_values_,
                            "total_variance": torch.tensor(self.total_variance_),
                            "n_samples": torch.tensor(self.n_samples_)})

    @classmethod
    def load(cls, path: str | Path) -> "DualPCA":
        """A saved PCA, its tensors checked against each other: mean (d,), components (k, d)
        (absent for a streamed PCA, which then needs coef), coef (k, n), train codes (n, k),
        per-component statistics (k,)."""
        t = load_tensors(path)
        need = ("mean", "components" if "coef" not in t else "coef", "explained_variance",
                "explained_variance_ratio", "singular_values", "total_variance", "n_samples")
        missing = [key for key in need if key not in t]
        if missing:
            raise ArtifactError(f"{path} lacks {missing}; it was not written by DualPCA.save or is damaged: "
                                "delete the pca folder and re-run")
        basis = t["components"] if "components" in t else t["coef"]            # (k, d) or (k, n)
        k = basis.shape[0] if basis.ndim == 2 else -1
        # d from the components (the mean must match them); a streamed PCA has only the mean
        d = (basis.shape[1] if basis.ndim == 2 else -1) if "components" in t else (
            t["mean"].shape[0] if t["mean"].ndim == 1 else -1)
        n = int(t["n_samples"]) if t["n_samples"].numel() == 1 else -1
        expected = {"mean": (d,), "components": (k, d) if "components" in t else None, "explained_variance": (k,),
                    "explained_variance_ratio": (k,), "singular_values": (k,), "total_variance": (),
                    "n_samples": (), "coef": (k, n) if "coef" in t and t["coef"].numel() else None,
                    "train_codes": (n, k) if "train_codes" in t else None}
        wrong = [f"{key} {tuple(t[key].shape)} (expected {shape})" for key, shape in expected.items()
                 if shape is not None and (k < 0 or n < 0 or tuple(t[key].shape) != shape)]
        if wrong:
            raise ArtifactError(f"{path} has inconsistent shapes: {', '.join(wrong)}; delete the pca folder "
                                "and re-run")
        pca = cls(device="cpu", keep_components="components" in t)
        pca.mean_ = t["mean"]
        if "components" in t:
            pca.components_ = t["components"]
        pca.dim_ = d
        pca.coef_ = t.get("coef", torch.empty(k, 0))
        if "train_codes" in t:
            pca.train_codes_ = t["train_codes"]
        pca.explained_variance_ = t["explained_variance"]
        pca.explained_variance_ratio_ = t["explained_variance_ratio"]
        pca.singular_values_ = t["singular_values"]
        pca.total_variance_ = float(t["total_variance"])
        pca.n_samples_ = n
        return pca
