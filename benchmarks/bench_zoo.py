"""Batched zoo training (`dwf.train_zoo`: vmap over stacked weights, one AdamW) against an
ordinary PyTorch loop that trains the same models one after another.

The loop follows train_zoo's recipe exactly: same init per model (`archs.build(seed=model_seed)`),
same per-model minibatch order (`epoch_order`), same AdamW settings, same best-epoch selection on
validation accuracy. Both therefore end at the same weights up to float rounding (bmm vs mm),
and the timing measures only what batching the models buys. Rounding can still grow in a model
whose ReLU unit is on the edge of dying, which is why the per-model match is reported.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from dwf import archs, stacked, train_zoo
from dwf.config import ArchSpec, DataSpec, ZooSpec
from dwf.data import Dataset, load
from dwf.batches import epoch_order, model_seed

from .timing import best_of

ARCH = ArchSpec("mlp", 784, (32, 32), 10)
DATA = DataSpec("fmnist", train_limit=20_000)
SPEC = ZooSpec(n_models=32, epochs=2, batch_size=128, lr=1e-3, weight_decay=0.0, seed=0)
# (name, arch, data, spec): the fmnist_mlp quick architecture, where the first layer's matmuls
# dominate, and the digits_mlp one, where per-step overhead does.
CASES = (
    ("fmnist 784-32-32-10", ARCH, DATA, SPEC),
    ("digits 64-32-32-10", ArchSpec("mlp", 64, (32, 32), 10), DataSpec("digits"),
     ZooSpec(n_models=32, epochs=6, batch_size=32, lr=1e-3, weight_decay=0.0, seed=0)),
)
WARMUP = ZooSpec(n_models=2, epochs=1, batch_size=128, lr=1e-3, seed=0)
REPEATS = 3        # best of, per timing
MATCH_TOL = 1e-4   # a model "matches" when its largest weight difference is below this


@dataclass
class ZooResult:
    case: str
    n_models: int
    epochs: int
    train_samples: int
    steps_per_model: int
    batched_s: float
    sequential_s: float
    ratio: float                     # sequential_s / batched_s
    batched_test_acc: float          # mean over the models
    sequential_test_acc: float
    max_abs_weight_diff: float       # between the two runs' selected weights, over all models
    median_model_weight_diff: float  # median over models of each model's max abs difference
    models_matching: int             # models whose max abs difference is below MATCH_TOL
    max_abs_test_acc_diff: float     # per model


def train_sequential(data: Dataset, arch: ArchSpec, spec: ZooSpec
                     ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """train_zoo's recipe, one nn.Module and one AdamW per model.

    Returns the selected weights stacked like a Zoo's params {name: (n, *shape)} and the (n,)
    test accuracies.
    """
    xtr, ytr = data.x_train, data.y_train
    n_train, batch = len(xtr), min(spec.batch_size, len(xtr))
    selected, test_acc = [], []
    for i in range(spec.n_models):
        seed = model_seed(spec.seed, i)
        model = archs.build(arch, seed=seed)
        opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
        best_val, best = -1.0, None
        for epoch in range(spec.epochs):
            order = epoch_order(spec.seed, epoch, i, spec.n_models, n_train)
            for s in range(n_train // batch):
                idx = order[s * batch:(s + 1) * batch]
                loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            val = _accuracy(model, data.x_val, data.y_val)
            if val > best_val:
                best_val, best = val, {k: v.detach().clone() for k, v in model.named_parameters()}
        model.load_state_dict(best)
        selected.append(best)
        test_acc.append(_accuracy(model, *data.for_reporting().split("test")))
    params = {k: torch.stack([sd[k] for sd in selected]) for k in selected[0]}
    return params, torch.tensor(test_acc)


@torch.no_grad()
def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return (model(x).argmax(1) == y).float().mean().item()


def run(arch: ArchSpec = ARCH, spec: ZooSpec = SPEC, data_spec: DataSpec = DATA,
        case: str = CASES[0][0]) -> ZooResult:
    """Time both ways on the CPU (each best of REPEATS) after one small warm-up of each
    (first-call overheads)."""
    data = load(data_spec)
    train_zoo(data, arch, WARMUP, progress=False, device="cpu")
    train_sequential(data, arch, WARMUP)

    batched_s, zoo = best_of(lambda: train_zoo(data, arch, spec, progress=False, device="cpu"), REPEATS)
    sequential_s, (params, seq_acc) = best_of(lambda: train_sequential(data, arch, spec), REPEATS)

    report_data = data.for_reporting()   # the benchmark reports test accuracy; nothing selects on it
    zoo_acc = stacked.predict(zoo.module(), zoo.params, report_data.x_test).eq(report_data.y_test).float().mean(1)
    per_model = torch.stack([(zoo.params[k] - params[k]).abs().flatten(1).amax(1) for k in params]).amax(0)
    n_train = len(data.x_train)
    return ZooResult(
        case=case,
        n_models=spec.n_models, epochs=spec.epochs, train_samples=n_train,
        steps_per_model=spec.epochs * (n_train // min(spec.batch_size, n_train)),
        batched_s=batched_s, sequential_s=sequential_s, ratio=sequential_s / batched_s,
        batched_test_acc=float(zoo_acc.mean()), sequential_test_acc=float(seq_acc.mean()),
        max_abs_weight_diff=float(per_model.max()),
        median_model_weight_diff=float(per_model.median()),
        models_matching=int((per_model < MATCH_TOL).sum()),
        max_abs_test_acc_diff=float((zoo_acc - seq_acc).abs().max()))


if __name__ == "__main__":
    print(asdict(run()))
